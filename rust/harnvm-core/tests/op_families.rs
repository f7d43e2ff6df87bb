//! The family column of `define_ops!`: every form of an adaptive binary op
//! is named after its plain op, and the derived lookups agree with it.

use harnvm_core::bytecode::chunk::{BinaryForm, Family, Op};
use harnvm_core::vm::ic::BinaryOp;

fn suffix(form: BinaryForm) -> &'static str {
    match form {
        BinaryForm::Stack => "",
        BinaryForm::Const => "_CONST",
        BinaryForm::Local => "_LOCAL",
        BinaryForm::StackJump => "_JUMP_IF_FALSE",
        BinaryForm::ConstJump => "_CONST_JUMP_IF_FALSE",
        BinaryForm::LocalConstJump => "_LOCAL_CONST_JUMP_IF_FALSE",
        BinaryForm::LocalConstSet => "",
    }
}

#[test]
fn every_binary_form_is_named_after_its_plain_op() {
    for &op in Op::ALL {
        let Family::Binary(bop, form) = op.family() else { continue };
        assert_eq!(Op::binary_form(bop, form), Some(op));
        assert_eq!(op.with_form(BinaryForm::Stack), Some(bop.op()));
        let plain = bop.op().name();
        match form {
            // `ADD_CONST_TO_LOCAL`, `SUB_CONST_FROM_LOCAL`
            BinaryForm::LocalConstSet => assert!(op.name().starts_with(&format!("{plain}_CONST_"))),
            _ => assert_eq!(op.name(), format!("{plain}{}", suffix(form))),
        }
    }
}

#[test]
fn the_plain_ops_are_the_adaptive_binary_ops() {
    for bop in BinaryOp::ALL {
        assert_eq!(bop.op().binary(), Some((bop, BinaryForm::Stack)));
    }
    let compares = [BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Lt, BinaryOp::Gt, BinaryOp::Le, BinaryOp::Ge];
    for bop in BinaryOp::ALL {
        // Only compares fuse with a jump.
        assert_eq!(Op::binary_form(bop, BinaryForm::StackJump).is_some(), compares.contains(&bop));
    }
    assert_eq!(Op::Pow.family(), Family::Plain);
    assert_eq!(Op::Pow.with_form(BinaryForm::Const), None);
}
