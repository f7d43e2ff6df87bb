//! Move-on-last-use: a local's read that no later instruction can observe
//! becomes `MOVE_LOCAL`, which takes the value out of the slot (leaving nil)
//! instead of copying its reference. A value passed on that way stays
//! uniquely owned, so the in-place write paths (`SET_LOCAL_FIELD`,
//! `SET_PATH_LOCAL`, a builtin's unique receiver) find it unshared: after
//! `heap = pop(heap)` or `var task = t; task.n = 1` nothing is copied.
//!
//! The pass runs on a finished function's bytecode: a backward liveness
//! analysis over its control-flow graph, one bit per local slot. It is
//! conservative wherever the bytecode hides control flow or reads:
//! every operand naming a local other than `SET_LOCAL`'s is a read, a
//! `CLOSURE` reads the locals it captures, and when the function installs a
//! `try` handler, each instruction may continue at any of its catch targets
//! (an error can unwind there from anywhere in the frame). A slot is only
//! written by `SET_LOCAL`; nothing outside the frame's own code reads its
//! locals, and a return or tail call ends them all.

use crate::bytecode::chunk::{CaptureSource, Chunk, Op, Operand};

/// One decoded instruction: where it is, the local it reads through a
/// `GET_LOCAL` (the move candidate), its reads and write, and where control
/// goes next.
struct Insn {
    at: usize,
    op: Op,
    reads: Vec<u16>,
    write: Option<u16>,
    targets: Vec<usize>,
    falls_through: bool,
}

/// A fixed-size set of local slots.
#[derive(Clone, PartialEq)]
struct Slots(Vec<u64>);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, s: u16) {
        self.0[s as usize / 64] |= 1 << (s % 64);
    }
    fn remove(&mut self, s: u16) {
        self.0[s as usize / 64] &= !(1 << (s % 64));
    }
    fn contains(&self, s: u16) -> bool {
        self.0[s as usize / 64] & (1 << (s % 64)) != 0
    }
    fn union_with(&mut self, other: &Slots) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= *b;
        }
    }
}

/// Rewrites every `GET_LOCAL` whose slot is dead after it into `MOVE_LOCAL`
/// (same size and operand, so no offset moves). `num_locals` is the
/// function's slot count. Code it cannot decode is left as it is.
pub fn move_last_uses(chunk: &mut Chunk, num_locals: u16) {
    if num_locals == 0 {
        return;
    }
    let Some(insns) = decode(chunk, num_locals) else { return };
    let mut index_at = vec![usize::MAX; chunk.code.len() + 1];
    for (i, insn) in insns.iter().enumerate() {
        index_at[insn.at] = i;
    }
    // Every jump lands on an instruction start (else: leave the code alone).
    if insns.iter().flat_map(|i| &i.targets).any(|&t| index_at.get(t).is_none_or(|&i| i == usize::MAX)) {
        return;
    }
    let catch_targets: Vec<usize> =
        insns.iter().filter(|i| i.op == Op::TryBegin).flat_map(|i| i.targets.iter().map(|&t| index_at[t])).collect();

    let n = num_locals as usize;
    let mut live_in = vec![Slots::new(n); insns.len()];
    let mut live_out = vec![Slots::new(n); insns.len()];
    loop {
        let mut changed = false;
        let mut at_catch = Slots::new(n);
        for &c in &catch_targets {
            at_catch.union_with(&live_in[c]);
        }
        for i in (0..insns.len()).rev() {
            let insn = &insns[i];
            let mut out = at_catch.clone();
            if insn.falls_through && i + 1 < insns.len() {
                out.union_with(&live_in[i + 1]);
            }
            for &t in &insn.targets {
                out.union_with(&live_in[index_at[t]]);
            }
            let mut inn = out.clone();
            if let Some(w) = insn.write {
                inn.remove(w);
            }
            for &r in &insn.reads {
                inn.insert(r);
            }
            if inn != live_in[i] {
                live_in[i] = inn;
                changed = true;
            }
            live_out[i] = out;
        }
        if !changed {
            break;
        }
    }

    for (insn, out) in insns.iter().zip(&live_out) {
        if insn.op == Op::GetLocal && !out.contains(insn.reads[0]) {
            chunk.code[insn.at] = Op::MoveLocal as u8;
        }
    }
}

/// The function's instructions in order, or None if the code does not
/// decode cleanly (an unknown byte, a truncated operand, a slot out of range).
fn decode(chunk: &Chunk, num_locals: u16) -> Option<Vec<Insn>> {
    let mut insns = Vec::new();
    let mut at = 0;
    while at < chunk.code.len() {
        let (op, vals) = chunk.decode(at)?;
        let mut reads = Vec::new();
        let mut write = None;
        let mut targets = Vec::new();
        for (kind, &v) in op.operands().iter().zip(&vals) {
            match kind {
                Operand::Local if op == Op::SetLocal => write = Some(v as u16),
                Operand::Local => reads.push(v as u16),
                Operand::Jump => targets.push(v as usize),
                _ => {}
            }
        }
        if op == Op::Closure {
            let child = chunk.functions.get(vals[0] as usize)?;
            reads.extend(child.captures.iter().filter_map(|c| match c {
                CaptureSource::Local(s) => Some(*s),
                _ => None,
            }));
        }
        if reads.iter().chain(&write).any(|&s| s >= num_locals) {
            return None;
        }
        let falls_through = !matches!(op, Op::Jump | Op::Return | Op::Throw | Op::Rethrow | Op::TailCall);
        insns.push(Insn { at, op, reads, write, targets, falls_through });
        at += op.size();
    }
    Some(insns)
}
