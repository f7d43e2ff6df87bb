//! Bytecode: the opcode table, `Chunk` and `FunctionProto`, and the disassembler.
//!
//! Every opcode is defined once, in `define_ops!`: that one table yields the
//! `Op` enum, its mnemonic, its operand layout (and so its size) and the
//! disassembler. Operands follow the opcode byte inline, little-endian.
//! Cold data (source lines, names) lives in side tables that the dispatch
//! loop never touches.
//!
//! Cacheable ops (adaptive binary ops, property reads, method calls, calls)
//! end with a `Cache` operand: the op's inline-cache slot, assigned by
//! `Chunk::emit`, so the dispatch loop reads its slot straight from the code
//! stream, which is the only place the slot is kept (tools walk the code to
//! list the sites, see `inline_cache_sites`); see `ic.rs`.

use std::fmt::Write as _;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use crate::runtime::ops::BinaryOp;
use crate::runtime::value::Value;
use crate::syntax::pos::Pos;

/// The kinds of inline operands. The width of each is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// An immediate byte (argument counts, small flags).
    U8,
    /// An immediate u16 (element counts).
    U16,
    /// Index into the chunk's constant pool.
    Const,
    /// Index into the constant pool naming a string (property, method, variable).
    Name,
    /// A frame-local slot.
    Local,
    /// A captured value of the running closure.
    Capture,
    /// A module-global slot.
    Global,
    /// A builtin function id.
    Builtin,
    /// Index into the chunk's nested functions.
    Func,
    /// An absolute code offset (u32).
    Jump,
    /// The op's inline-cache slot (u16), always the last operand; `emit`
    /// fills it in. `NO_CACHE_OPERAND` means the site has no slot.
    Cache,
}

impl Operand {
    pub const fn width(self) -> usize {
        match self {
            Operand::U8 => 1,
            Operand::Jump => 4,
            _ => 2,
        }
    }
}

/// How a form of an adaptive binary op takes its operands. The dispatch
/// loop has one handler per form; the compiler picks forms by these names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BinaryForm {
    /// `a b -- r`
    Stack,
    /// `a -- r`: the right operand is a constant
    Const,
    /// `a -- r`: the right operand is a local, read in place
    Local,
    /// `a b --`: then `JUMP_IF_FALSE` on the result
    StackJump,
    /// `a --`: a constant right operand, then `JUMP_IF_FALSE`
    ConstJump,
    /// `--`: a local (read in place) against a constant, then `JUMP_IF_FALSE`
    LocalConstJump,
    /// `--`: `local = local OP k` in place
    LocalConstSet,
}

impl BinaryForm {
    pub const COUNT: usize = 7;
}

/// An op's family, from the last column of `define_ops!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Its own operation.
    Plain,
    /// One form of an adaptive binary op; all forms share the op's cache semantics.
    Binary(BinaryOp, BinaryForm),
}

macro_rules! op_family {
    () => {
        Family::Plain
    };
    ($bop:ident, $form:ident) => {
        Family::Binary(BinaryOp::$bop, BinaryForm::$form)
    };
}

macro_rules! define_ops {
    ($( $(#[doc = $doc:literal])* $name:ident = $mnemonic:literal [$($operand:ident),*] $(binary($bop:ident, $form:ident))?; )*) => {
        /// One-byte opcodes. See the table in `define_ops!` for operands and stack effects.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Op {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$name),*];
            pub const COUNT: usize = Op::ALL.len();

            /// The mnemonic used by the disassembler and `harnvm.internals.Op`.
            pub const fn name(self) -> &'static str {
                match self { $(Op::$name => $mnemonic,)* }
            }

            /// The op's family: for an adaptive binary op, which operation in which form.
            pub const fn family(self) -> Family {
                match self { $(Op::$name => op_family!($($bop, $form)?),)* }
            }

            /// Operand kinds, in encoding order.
            pub const fn operands(self) -> &'static [Operand] {
                match self { $(Op::$name => &[$(Operand::$operand),*],)* }
            }

            /// Decodes an opcode byte of compiled code. Chunks are only built
            /// by the compiler and `Chunk::emit`, which write `Op` values, so
            /// every opcode byte is valid; out-of-range bytes still fail safely.
            #[inline(always)]
            pub fn decode(b: u8) -> Op {
                if (b as usize) < Op::COUNT {
                    // SAFETY: `Op` is `repr(u8)` with discriminants 0..COUNT.
                    unsafe { std::mem::transmute::<u8, Op>(b) }
                } else {
                    panic!("invalid opcode byte {b}")
                }
            }

            /// Decodes an opcode byte of compiled code without the range check.
            ///
            /// # Safety
            /// `b` must be a byte written as an `Op` (an opcode position of a
            /// chunk built by `Chunk::emit`); debug builds check the range.
            #[inline(always)]
            pub unsafe fn decode_unchecked(b: u8) -> Op {
                debug_assert!((b as usize) < Op::COUNT, "invalid opcode byte {b}");
                // SAFETY: the caller's contract; `Op` is `repr(u8)` with discriminants 0..COUNT.
                unsafe { std::mem::transmute::<u8, Op>(b) }
            }

            #[inline(always)]
            pub fn from_byte(b: u8) -> Option<Op> {
                Op::ALL.get(b as usize).copied()
            }

            pub fn from_name(name: &str) -> Option<Op> {
                Op::ALL.iter().copied().find(|op| op.name() == name)
            }

            /// Does this op own an inline-cache slot (a trailing `Cache` operand)?
            pub const fn is_cacheable(self) -> bool {
                let ops = self.operands();
                !ops.is_empty() && matches!(ops[ops.len() - 1], Operand::Cache)
            }

            /// The operands a caller passes to `Chunk::emit` (the `Cache` slot is added by `emit`).
            pub fn explicit_operands(self) -> &'static [Operand] {
                let ops = self.operands();
                if self.is_cacheable() { &ops[..ops.len() - 1] } else { ops }
            }

            /// Instruction length in bytes, opcode included.
            pub const fn size(self) -> usize {
                let ops = self.operands();
                let mut n = 1;
                let mut i = 0;
                while i < ops.len() {
                    n += ops[i].width();
                    i += 1;
                }
                n
            }
        }
    };
}

define_ops! {
    /// `-- const`
        Const = "CONST" [Const];
    /// `-- nil`
        Nil = "NIL" [];
    /// `-- true`
        True = "TRUE" [];
    /// `-- false`
        False = "FALSE" [];
    /// `v --`
        Pop = "POP" [];
    /// `v -- v v`
        Dup = "DUP" [];
    /// `a b -- b a`
        Swap = "SWAP" [];

    /// `-- local`
        GetLocal = "GET_LOCAL" [Local];
    /// `v --` store into a local slot
        SetLocal = "SET_LOCAL" [Local];
    /// `-- local` taking the value out of the slot (left nil): a read after
    /// which the slot is dead (`compile::liveness`)
        MoveLocal = "MOVE_LOCAL" [Local];
    /// `-- capture` read a captured (snapshot) value of the running closure
        GetCapture = "GET_CAPTURE" [Capture];
    /// `-- closure` the running closure itself (a fn referring to its own name)
        GetSelf = "GET_SELF" [];
    /// `-- global`; an unset global is `Undefined variable: <name>`
        GetGlobal = "GET_GLOBAL" [Global];
    /// `v --`
        SetGlobal = "SET_GLOBAL" [Global];
    /// `-- v` read through the cell held in a local slot (forward-referenced fn decl)
        GetLocalCell = "GET_LOCAL_CELL" [Local];
    /// `v --` write through the cell held in a local slot
        SetLocalCell = "SET_LOCAL_CELL" [Local];
    /// `--` put a fresh empty cell into a local slot
        NewCell = "NEW_CELL" [Local];
    /// `-- v` read through a captured cell
        GetCaptureCell = "GET_CAPTURE_CELL" [Capture];
    /// `-- builtin` a builtin used as a value
        GetBuiltin = "GET_BUILTIN" [Builtin];
    /// `--` raise `Undefined variable: <name>`
        ThrowUndefined = "THROW_UNDEFINED" [Name];
    /// `--` raise `Undefined builtin: <text>` (the constant holds name and hint)
        ThrowUndefinedBuiltin = "THROW_UNDEFINED_BUILTIN" [Name];
    /// `--` raise `Cannot assign to immutable binding: <name>`
        ThrowImmutable = "THROW_IMMUTABLE" [Name];
    /// `--` raise `Cannot redeclare immutable variable '<name>' in the same scope ...`
        ThrowRedeclare = "THROW_REDECLARE" [Name];

    /// `a b -- a+b`
    Add = "ADD" [Cache] binary(Add, Stack);
    /// `a b -- a-b`
    Sub = "SUB" [Cache] binary(Sub, Stack);
    /// `a b -- a*b`
    Mul = "MUL" [Cache] binary(Mul, Stack);
    /// `a b -- a/b`
    Div = "DIV" [Cache] binary(Div, Stack);
    /// `a b -- a%b`
    Mod = "MOD" [Cache] binary(Mod, Stack);
    /// `a b -- a**b`
        Pow = "POW" [];
    /// `a -- -a`
        Neg = "NEG" [];
    /// `a -- !a`
        Not = "NOT" [];
    /// `a b -- a==b`
    Eq = "EQ" [Cache] binary(Eq, Stack);
    /// `a b -- a!=b`
    Ne = "NE" [Cache] binary(Ne, Stack);
    /// `a b -- a<b`
    Lt = "LT" [Cache] binary(Lt, Stack);
    /// `a b -- a>b`
    Gt = "GT" [Cache] binary(Gt, Stack);
    /// `a b -- a<=b`
    Le = "LE" [Cache] binary(Le, Stack);
    /// `a b -- a>=b`
    Ge = "GE" [Cache] binary(Ge, Stack);
    /// `a -- a+k`: `ADD` with its right operand a constant (the same cache site semantics)
    AddConst = "ADD_CONST" [Const, Cache] binary(Add, Const);
    /// `a -- a-k`
    SubConst = "SUB_CONST" [Const, Cache] binary(Sub, Const);
    /// `a -- a*k`
    MulConst = "MUL_CONST" [Const, Cache] binary(Mul, Const);
    /// `a -- a/k`
    DivConst = "DIV_CONST" [Const, Cache] binary(Div, Const);
    /// `a -- a%k`
    ModConst = "MOD_CONST" [Const, Cache] binary(Mod, Const);
    /// `a -- a==k`
    EqConst = "EQ_CONST" [Const, Cache] binary(Eq, Const);
    /// `a -- a!=k`
    NeConst = "NE_CONST" [Const, Cache] binary(Ne, Const);
    /// `a -- a<k`
    LtConst = "LT_CONST" [Const, Cache] binary(Lt, Const);
    /// `a -- a>k`
    GtConst = "GT_CONST" [Const, Cache] binary(Gt, Const);
    /// `a -- a<=k`
    LeConst = "LE_CONST" [Const, Cache] binary(Le, Const);
    /// `a -- a>=k`
    GeConst = "GE_CONST" [Const, Cache] binary(Ge, Const);
    /// `a b --` `EQ` then `JUMP_IF_FALSE` (a condition's compare, one dispatch)
    EqJumpIfFalse = "EQ_JUMP_IF_FALSE" [Jump, Cache] binary(Eq, StackJump);
    /// `a b --` `NE` then `JUMP_IF_FALSE`
    NeJumpIfFalse = "NE_JUMP_IF_FALSE" [Jump, Cache] binary(Ne, StackJump);
    /// `a b --` `LT` then `JUMP_IF_FALSE`
    LtJumpIfFalse = "LT_JUMP_IF_FALSE" [Jump, Cache] binary(Lt, StackJump);
    /// `a b --` `GT` then `JUMP_IF_FALSE`
    GtJumpIfFalse = "GT_JUMP_IF_FALSE" [Jump, Cache] binary(Gt, StackJump);
    /// `a b --` `LE` then `JUMP_IF_FALSE`
    LeJumpIfFalse = "LE_JUMP_IF_FALSE" [Jump, Cache] binary(Le, StackJump);
    /// `a b --` `GE` then `JUMP_IF_FALSE`
    GeJumpIfFalse = "GE_JUMP_IF_FALSE" [Jump, Cache] binary(Ge, StackJump);
    /// `a --` `EQ_CONST` then `JUMP_IF_FALSE`
    EqConstJumpIfFalse = "EQ_CONST_JUMP_IF_FALSE" [Const, Jump, Cache] binary(Eq, ConstJump);
    /// `a --` `NE_CONST` then `JUMP_IF_FALSE`
    NeConstJumpIfFalse = "NE_CONST_JUMP_IF_FALSE" [Const, Jump, Cache] binary(Ne, ConstJump);
    /// `a --` `LT_CONST` then `JUMP_IF_FALSE`
    LtConstJumpIfFalse = "LT_CONST_JUMP_IF_FALSE" [Const, Jump, Cache] binary(Lt, ConstJump);
    /// `a --` `GT_CONST` then `JUMP_IF_FALSE`
    GtConstJumpIfFalse = "GT_CONST_JUMP_IF_FALSE" [Const, Jump, Cache] binary(Gt, ConstJump);
    /// `a --` `LE_CONST` then `JUMP_IF_FALSE`
    LeConstJumpIfFalse = "LE_CONST_JUMP_IF_FALSE" [Const, Jump, Cache] binary(Le, ConstJump);
    /// `a --` `GE_CONST` then `JUMP_IF_FALSE`
    GeConstJumpIfFalse = "GE_CONST_JUMP_IF_FALSE" [Const, Jump, Cache] binary(Ge, ConstJump);
    /// `--` `GET_LOCAL` then `EQ_CONST_JUMP_IF_FALSE`, the local read in place (a loop or `if` test of a local against a literal)
    EqLocalConstJumpIfFalse = "EQ_LOCAL_CONST_JUMP_IF_FALSE" [Local, Const, Jump, Cache] binary(Eq, LocalConstJump);
    /// `--` `GET_LOCAL` then `NE_CONST_JUMP_IF_FALSE`
    NeLocalConstJumpIfFalse = "NE_LOCAL_CONST_JUMP_IF_FALSE" [Local, Const, Jump, Cache] binary(Ne, LocalConstJump);
    /// `--` `GET_LOCAL` then `LT_CONST_JUMP_IF_FALSE`
    LtLocalConstJumpIfFalse = "LT_LOCAL_CONST_JUMP_IF_FALSE" [Local, Const, Jump, Cache] binary(Lt, LocalConstJump);
    /// `--` `GET_LOCAL` then `GT_CONST_JUMP_IF_FALSE`
    GtLocalConstJumpIfFalse = "GT_LOCAL_CONST_JUMP_IF_FALSE" [Local, Const, Jump, Cache] binary(Gt, LocalConstJump);
    /// `--` `GET_LOCAL` then `LE_CONST_JUMP_IF_FALSE`
    LeLocalConstJumpIfFalse = "LE_LOCAL_CONST_JUMP_IF_FALSE" [Local, Const, Jump, Cache] binary(Le, LocalConstJump);
    /// `--` `GET_LOCAL` then `GE_CONST_JUMP_IF_FALSE`
    GeLocalConstJumpIfFalse = "GE_LOCAL_CONST_JUMP_IF_FALSE" [Local, Const, Jump, Cache] binary(Ge, LocalConstJump);
    /// `a -- a+local`: `GET_LOCAL` then `ADD`, the local read in place
    AddLocal = "ADD_LOCAL" [Local, Cache] binary(Add, Local);
    /// `a -- a-local`
    SubLocal = "SUB_LOCAL" [Local, Cache] binary(Sub, Local);
    /// `a -- a*local`
    MulLocal = "MUL_LOCAL" [Local, Cache] binary(Mul, Local);
    /// `--` `local = local + k` in place (`x = x + 1`, `x += 1`): `GET_LOCAL`, `ADD_CONST`, `SET_LOCAL`
    AddConstToLocal = "ADD_CONST_TO_LOCAL" [Local, Const, Cache] binary(Add, LocalConstSet);
    /// `--` `local = local - k` in place
    SubConstFromLocal = "SUB_CONST_FROM_LOCAL" [Local, Const, Cache] binary(Sub, LocalConstSet);
    /// `item coll -- bool`
        In = "IN" [];
    /// `item coll -- bool`
        NotIn = "NOT_IN" [];
    /// `v -- bool` normalize to a bool (`&&`, `||`)
        ToBool = "TO_BOOL" [];
    /// `start end -- range` (flag: 1 = inclusive)
        BuildRange = "BUILD_RANGE" [U8];

    /// `--` jump
        Jump = "JUMP" [Jump];
    /// `cond --` jump if falsy
        JumpIfFalse = "JUMP_IF_FALSE" [Jump];
    /// `cond --` jump if truthy
        JumpIfTrue = "JUMP_IF_TRUE" [Jump];
    /// `v -- v` jump (keeping v) if v is not nil; else pop v and fall through (`??`)
        JumpIfNotNil = "JUMP_IF_NOT_NIL" [Jump];
    /// `v -- v` jump (keeping v) if v is nil (optional chaining short-cut)
        JumpIfNil = "JUMP_IF_NIL" [Jump];

    /// `callee a1..an -- result`
        Call = "CALL" [U8, Cache];
    /// `callee a1..an --` call reusing the current frame (`return f(x)`)
        TailCall = "TAIL_CALL" [U8];
    /// `a1..an -- result` call a builtin by id
        CallBuiltin = "CALL_BUILTIN" [Builtin, U8, Cache];
    /// `callee args_list -- result`
        CallSpread = "CALL_SPREAD" [];
    /// `v --` return from the current function
        Return = "RETURN" [];
    /// `-- closure` build a closure from a nested function, capturing per its capture list
        Closure = "CLOSURE" [Func];
    /// `--` jump past a default-value initializer when argument `U8` was passed
        JumpIfArg = "JUMP_IF_ARG" [U8, Jump];

    /// `recv a1..an -- result`
        CallMethod = "CALL_METHOD" [Name, U8, Cache];
    /// `recv a1..an -- result`; nil receiver gives nil
        CallMethodOpt = "CALL_METHOD_OPT" [Name, U8, Cache];
    /// `recv args_list -- result`
        CallMethodSpread = "CALL_METHOD_SPREAD" [Name, Cache];

    /// `a1..an -- list`
        BuildList = "BUILD_LIST" [U16];
    /// `list v -- list` append
        ListAppend = "LIST_APPEND" [];
    /// `list other -- list` spread `...other` into list
        ListExtend = "LIST_EXTEND" [];
    /// `k1 v1..kn vn -- dict`
        BuildDict = "BUILD_DICT" [U16];
    /// `dict k v -- dict`
        DictInsert = "DICT_INSERT" [];
    /// `dict other -- dict` spread `...other` into dict
        DictExtend = "DICT_EXTEND" [];
    /// `p1..pn -- string` concatenate the display of n parts (interpolation)
        Concat = "CONCAT" [U16];
    /// `f1..fn -- enum` build `Enum.Variant(f...)`: name const is "Enum.Variant"
        BuildEnum = "BUILD_ENUM" [Name, U8];
    /// `fields_dict -- struct` build a struct of the declared struct named by the constant
        BuildStruct = "BUILD_STRUCT" [Name];
    /// `k1 v1..kn vn -- struct` a literal of the declared struct named by the
    /// constant from its distinct field names and values, without a dict in between
        BuildStructFields = "BUILD_STRUCT_FIELDS" [Name, U16];

    /// `obj -- obj.name`
        GetProp = "GET_PROP" [Name, Cache];
    /// `obj -- obj?.name`
        GetPropOpt = "GET_PROP_OPT" [Name, Cache];
    /// `-- local.name`: `GET_LOCAL` then `GET_PROP` (the same cache site semantics), without copying the local
        GetLocalProp = "GET_LOCAL_PROP" [Local, Name, Cache];
    /// `obj idx -- obj[idx]`
        Index = "INDEX" [];
    /// `obj idx -- obj?[idx]`
        IndexOpt = "INDEX_OPT" [];
    /// `obj start end -- obj[start:end]` (nil bounds are open)
        Slice = "SLICE" [];
    /// `k1..kn v --` assign `local.k1...kn = v` in place (copy-on-write)
        SetPathLocal = "SET_PATH_LOCAL" [Local, U8];
    /// `k1..kn v --` the same for a module global
        SetPathGlobal = "SET_PATH_GLOBAL" [Global, U8];
    /// `v --` `local.name = v`: `SET_PATH_LOCAL` with one name key, a struct
    /// field found through the site's cache (layout pointer → slot), in place when unshared
        SetLocalField = "SET_LOCAL_FIELD" [Local, Name, Cache];
    /// `v --` `local = local.push(v)` for a list local: appends in place (copying
    /// first only when the list is shared) and jumps; any other value leaves
    /// `local v` for the `CALL_METHOD push` and `SET_LOCAL` that follow
        ListPushLocal = "LIST_PUSH_LOCAL" [Local, Jump];
    /// `a1..an --` `local = local + [a1..an]` (also `+=`) for a list local: extends in
    /// place and jumps; any other value leaves `local [a1..an]` for the `ADD` and `SET_LOCAL` that follow
        ListExtendLocal = "LIST_EXTEND_LOCAL" [Local, U16, Jump];

    /// `iterable --` start a `for` loop, keeping the iterator in a hidden local
        IterInit = "ITER_INIT" [Local];
    /// `-- item`, or jump when the iterator in the local is exhausted
        IterNext = "ITER_NEXT" [Local, Jump];
    /// `value callee -- result` the pipe operator `value |> callee`
        Pipe = "PIPE" [];
    /// `methods_dict --` register the methods of `impl Name`
        DefineImpl = "DEFINE_IMPL" [Name];
    /// `field_names_list --` declare `struct Name`
        DefineStruct = "DEFINE_STRUCT" [Name];

    /// `--` push an exception handler whose catch code is at Jump
        TryBegin = "TRY_BEGIN" [Jump];
    /// `--` pop the innermost exception handler
        TryEnd = "TRY_END" [];
    /// `v --` throw v
        Throw = "THROW" [];
    /// `err --` re-raise a caught error object unchanged
        Rethrow = "RETHROW" [];
    /// `err -- value` turn a caught error object into what `catch (e)` binds
        ErrValue = "ERR_VALUE" [];
    /// `err -- err bool` does the caught error carry an enum value of the named enum?
        ErrIs = "ERR_IS" [Name];
    /// `v -- Result` wrap for bare `try { }`: Ok(v) unless v already is a Result
        WrapOk = "WRAP_OK" [];
    /// `err -- Result.Err(value)`
        WrapErr = "WRAP_ERR" [];
    /// `v -- inner` postfix `?`: unwrap Ok, return Err from the function
        TryUnwrap = "TRY_UNWRAP" [];
    /// `--` save the stack height into a local (loops, for break/continue from nested expressions)
        SaveHeight = "SAVE_HEIGHT" [Local];
    /// `--` truncate the stack to the height saved in a local
        RestoreHeight = "RESTORE_HEIGHT" [Local];

    /// `v -- bool` does v match `Enum.Variant` (name const)?
        IsVariant = "IS_VARIANT" [Name];
    /// `v -- bool` is v of the Harn type named by the constant (`dict`, `list`, ...)?
        IsType = "IS_TYPE" [Name];
    /// `v -- v` raise the destructuring type error unless v is a dict (U8=0) / list (U8=1)
        CheckDestructure = "CHECK_DESTRUCTURE" [U8];
    /// `dict keys_list -- dict` the entries of dict whose keys are not in keys_list
        DictRest = "DICT_REST" [];
    /// `v schema --` check a typed parameter (name const) against a schema value
        CheckParam = "CHECK_PARAM" [Name];
    /// `v --` `yield v` / `emit v`: hand v to the generator's puller and suspend
        Yield = "YIELD" [];

    /// `-- nil|result` instantiate the module of the import constant once per VM (runs its init code)
        ImportModule = "IMPORT_MODULE" [Const];
    /// `--` copy the imported module's exports named by the import constant into this module's globals
        BindImports = "BIND_IMPORTS" [Const];
    /// `a1..an -- result` call a function the host registered on the Vm, by
    /// name (`Undefined builtin: <name>` when there is none)
        CallHost = "CALL_HOST" [Name, U8];
}

/// Every form of every adaptive binary op, by (op, form), derived from the
/// family column; building it checks that no (op, form) is given twice and
/// that every op has its plain `Stack` form.
const BINARY_FORMS: [[Option<Op>; BinaryForm::COUNT]; BinaryOp::COUNT] = {
    let mut table = [[None; BinaryForm::COUNT]; BinaryOp::COUNT];
    let mut i = 0;
    while i < Op::COUNT {
        if let Family::Binary(bop, form) = Op::ALL[i].family() {
            assert!(table[bop as usize][form as usize].is_none(), "an (op, form) pair appears twice in define_ops!");
            table[bop as usize][form as usize] = Some(Op::ALL[i]);
        }
        i += 1;
    }
    let mut b = 0;
    while b < BinaryOp::COUNT {
        assert!(table[b][BinaryForm::Stack as usize].is_some(), "an adaptive binary op lacks its plain form");
        b += 1;
    }
    table
};

impl Op {
    /// The adaptive binary op this op performs and its operand form.
    #[inline(always)]
    pub const fn binary(self) -> Option<(BinaryOp, BinaryForm)> {
        match self.family() {
            Family::Binary(bop, form) => Some((bop, form)),
            Family::Plain => None,
        }
    }

    /// `bop` in `form`, if the table defines that form.
    pub const fn binary_form(bop: BinaryOp, form: BinaryForm) -> Option<Op> {
        BINARY_FORMS[bop as usize][form as usize]
    }

    /// This op's sibling in `form` (`ADD` → `ADD_CONST`); None when this op
    /// is not an adaptive binary op or the form does not exist for it.
    pub const fn with_form(self, form: BinaryForm) -> Option<Op> {
        match self.binary() {
            Some((bop, _)) => Op::binary_form(bop, form),
            None => None,
        }
    }
}

impl BinaryOp {
    /// The plain (stack operand) op.
    pub const fn op(self) -> Op {
        match Op::binary_form(self, BinaryForm::Stack) {
            Some(op) => op,
            None => unreachable!(),
        }
    }
}

/// A constant-pool entry.
pub type Constant = Value;

/// `Cache` operand of a site beyond the u16 slot range: such a site runs uncached.
pub const NO_CACHE_OPERAND: u16 = u16::MAX;

static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique chunk identity; VMs key their cache sets by it.
pub fn next_cache_id() -> u64 {
    NEXT_CACHE_ID.fetch_add(1, AtomicOrdering::Relaxed)
}

/// Compiled code of one function body.
pub struct Chunk {
    pub code: Vec<u8>,
    pub constants: Vec<Constant>,
    /// Parallel to instruction starts: (offset, position), sorted by offset.
    pub positions: Vec<(u32, Pos)>,
    /// Nested functions, referenced by `Closure`.
    pub functions: Vec<Rc<FunctionProto>>,
    /// Identity for the VM-side cache sets (the chunk itself holds no cache state).
    pub cache_id: u64,
    /// Inline-cache slots handed out so far (the slots themselves are the
    /// `Cache` operands in `code`).
    cache_slots: u32,
    /// Where each deduplicated constant sits in `constants`, so adding one
    /// is a hash lookup, not a scan (a scan made compiling quadratic in the
    /// constants of a function).
    const_index: rustc_hash::FxHashMap<ConstKey, u16>,
}

/// The identity of a deduplicated constant: strings and ints by value,
/// floats by bit pattern, durations by value.
#[derive(PartialEq, Eq, Hash)]
enum ConstKey {
    Str(Rc<String>),
    Int(i64),
    Float(u64),
    Duration(i64),
}

impl Default for Chunk {
    fn default() -> Self {
        Chunk {
            code: Vec::new(),
            constants: Vec::new(),
            positions: Vec::new(),
            functions: Vec::new(),
            cache_id: next_cache_id(),
            cache_slots: 0,
            const_index: rustc_hash::FxHashMap::default(),
        }
    }
}

/// How a closure obtains one captured value when it is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureSource {
    /// From a local slot of the creating frame.
    Local(u16),
    /// From a capture of the creating closure.
    Capture(u16),
    /// The creating closure itself.
    SelfClosure,
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub has_default: bool,
    pub rest: bool,
}

/// A compiled function: code plus what calls need to know.
#[derive(Default)]
pub struct FunctionProto {
    pub name: String,
    pub params: Vec<Param>,
    /// Local slots including parameters.
    pub num_locals: u16,
    pub captures: Vec<CaptureSource>,
    /// Names of the captures (for the disassembler and error hints).
    pub capture_names: Vec<String>,
    /// Names of the local slots (cold; for the disassembler and error hints).
    pub local_names: Vec<String>,
    pub has_rest: bool,
    /// The body contains `yield` (or `emit`): a call returns a generator.
    pub is_generator: bool,
    /// Declared with `gen fn`: the generator is a stream.
    pub is_stream: bool,
    /// Output written while its generator body runs reaches the consumer
    /// instead of being dropped: set for the prelude's operators, whose
    /// bodies run the user's callbacks (`stream.tap(xs, log)`).
    pub forwards_output: bool,
    pub chunk: Chunk,
    pub file: Rc<str>,
}

impl Chunk {
    pub fn add_constant(&mut self, v: Value) -> u16 {
        // Dedup strings and ints; floats by bit pattern.
        let key = match &v {
            Value::Str(s) => Some(ConstKey::Str(Rc::clone(s))),
            Value::Int(i) => Some(ConstKey::Int(*i)),
            Value::Float(f) => Some(ConstKey::Float(f.to_bits())),
            Value::Duration(d) => Some(ConstKey::Duration(*d)),
            _ => None,
        };
        if let Some(&idx) = key.as_ref().and_then(|k| self.const_index.get(k)) {
            return idx;
        }
        let idx = u16::try_from(self.constants.len()).expect("constant pool overflow is checked by the compiler");
        self.constants.push(v);
        if let Some(k) = key {
            self.const_index.insert(k, idx);
        }
        idx
    }

    /// Emits an opcode with its explicit operands (each given as a u32 and
    /// encoded per its kind). A cacheable op also gets an inline-cache slot,
    /// written as its `Cache` operand.
    pub fn emit(&mut self, op: Op, operands: &[u32], pos: Pos) -> usize {
        let at = self.code.len();
        debug_assert_eq!(op.explicit_operands().len(), operands.len(), "{op:?}");
        if self.positions.last().is_none_or(|(_, p)| *p != pos) {
            self.positions.push((at as u32, pos));
        }
        self.code.push(op as u8);
        for (kind, &v) in op.explicit_operands().iter().zip(operands) {
            match kind.width() {
                1 => self.code.push(v as u8),
                2 => self.code.extend_from_slice(&(v as u16).to_le_bytes()),
                _ => self.code.extend_from_slice(&v.to_le_bytes()),
            }
        }
        if op.is_cacheable() {
            // Slots stop at the u16 operand range; later sites run uncached.
            let operand = match u16::try_from(self.cache_slots) {
                Ok(slot) if slot < NO_CACHE_OPERAND => {
                    self.cache_slots += 1;
                    slot
                }
                _ => NO_CACHE_OPERAND,
            };
            self.code.extend_from_slice(&operand.to_le_bytes());
        }
        at
    }

    /// The inline-cache slot of the instruction starting at `op_offset`
    /// (its `Cache` operand), or None if it has none. `op_offset` must be an
    /// instruction start (as the disassembler's offsets are).
    pub fn inline_cache_slot(&self, op_offset: usize) -> Option<u32> {
        let op = Op::from_byte(*self.code.get(op_offset)?)?;
        if !op.is_cacheable() {
            return None;
        }
        let at = op_offset + op.size() - 2;
        let operand = u16::from_le_bytes([*self.code.get(at)?, *self.code.get(at + 1)?]);
        (operand != NO_CACHE_OPERAND).then_some(operand as u32)
    }

    /// Every inline-cache site as `(instruction offset, slot)`, in code order
    /// (walks the code: for reports and tools, not the dispatch loop).
    pub fn inline_cache_sites(&self) -> Vec<(usize, u32)> {
        let mut sites = Vec::new();
        let mut at = 0;
        while let Some(op) = self.code.get(at).and_then(|&b| Op::from_byte(b)) {
            if let Some(slot) = self.inline_cache_slot(at) {
                sites.push((at, slot));
            }
            at += op.size();
        }
        sites
    }

    /// How many inline-cache slots this chunk's sites use.
    pub fn inline_cache_slot_count(&self) -> usize {
        self.cache_slots as usize
    }

    /// Rewrites the jump operand at operand-offset `at` to `target`.
    pub fn patch_u32(&mut self, at: usize, target: u32) {
        self.code[at..at + 4].copy_from_slice(&target.to_le_bytes());
    }

    /// Source position of the instruction at `offset` (cold path).
    #[cold]
    pub fn pos_at(&self, offset: usize) -> Pos {
        match self.positions.binary_search_by_key(&(offset as u32), |(o, _)| *o) {
            Ok(i) => self.positions[i].1,
            Err(0) => Pos::default(),
            Err(i) => self.positions[i - 1].1,
        }
    }

    /// Decodes the operands of the instruction at `offset`.
    pub fn decode(&self, offset: usize) -> Option<(Op, Vec<u32>)> {
        let op = Op::from_byte(*self.code.get(offset)?)?;
        let mut at = offset + 1;
        let mut vals = Vec::new();
        for kind in op.operands() {
            let v = match kind.width() {
                1 => *self.code.get(at)? as u32,
                2 => u16::from_le_bytes([*self.code.get(at)?, *self.code.get(at + 1)?]) as u32,
                _ => u32::from_le_bytes(self.code.get(at..at + 4)?.try_into().ok()?),
            };
            vals.push(v);
            at += kind.width();
        }
        Some((op, vals))
    }
}

// ---------------------------------------------------------------------------
// Disassembler

/// Readable listing of a function and, recursively, its nested functions.
pub fn disassemble(proto: &FunctionProto, builtin_name: BuiltinName) -> String {
    let mut out = String::new();
    disassemble_into(proto, builtin_name, &mut |_, _| None, &mut out);
    out
}

/// The listing with a note after each instruction for which `annotate`
/// (given the function and the instruction's offset) returns one; `dis --ic`
/// uses it to show each cache site's state.
pub fn disassemble_annotated(
    proto: &FunctionProto,
    builtin_name: BuiltinName,
    annotate: &mut dyn FnMut(&FunctionProto, usize) -> Option<String>,
) -> String {
    let mut out = String::new();
    disassemble_into(proto, builtin_name, annotate, &mut out);
    out
}

/// Names a builtin id. The builtin table is a floor above bytecode, so the
/// caller supplies it (the crate-level `disassemble` passes `builtins::builtin_name`).
pub type BuiltinName = fn(u32) -> &'static str;

fn disassemble_into(
    proto: &FunctionProto,
    builtin_name: BuiltinName,
    annotate: &mut dyn FnMut(&FunctionProto, usize) -> Option<String>,
    out: &mut String,
) {
    let params: Vec<&str> = proto.params.iter().map(|p| p.name.as_str()).collect();
    let _ = writeln!(
        out,
        "== {}({}) locals={} captures={} ==",
        proto.name,
        params.join(", "),
        proto.num_locals,
        proto.captures.len()
    );
    let chunk = &proto.chunk;
    let mut offset = 0;
    let mut last_line = 0;
    while offset < chunk.code.len() {
        let Some((op, vals)) = chunk.decode(offset) else {
            let _ = writeln!(out, "{offset:05}      <bad opcode {}>", chunk.code[offset]);
            break;
        };
        let line = chunk.pos_at(offset).line;
        let line_col = if line != last_line { format!("{line:4}") } else { "   |".to_string() };
        last_line = line;
        let mut text = format!("{offset:05} {line_col}  {:<20}", op.name());
        for (kind, v) in op.operands().iter().zip(&vals) {
            let _ = write!(text, " {}", describe_operand(proto, builtin_name, *kind, *v));
        }
        if let Some(note) = annotate(proto, offset) {
            let _ = write!(text, "    ; {note}");
        }
        let _ = writeln!(out, "{}", text.trim_end());
        offset += op.size();
    }
    for f in &chunk.functions {
        out.push('\n');
        disassemble_into(f, builtin_name, annotate, out);
    }
}

fn describe_operand(proto: &FunctionProto, builtin_name: BuiltinName, kind: Operand, v: u32) -> String {
    let chunk = &proto.chunk;
    match kind {
        Operand::Const => match chunk.constants.get(v as usize) {
            Some(Value::Str(s)) => format!("{v} ({:?})", s.as_str()),
            Some(c) => format!("{v} ({})", c.display()),
            None => format!("{v} (?)"),
        },
        Operand::Name => match chunk.constants.get(v as usize) {
            Some(c) => format!("{v} '{}'", c.display()),
            None => format!("{v} '?'"),
        },
        Operand::Local => match proto.local_names.get(v as usize) {
            Some(n) => format!("{v} ({n})"),
            None => v.to_string(),
        },
        Operand::Capture => match proto.capture_names.get(v as usize) {
            Some(n) => format!("{v} ({n})"),
            None => v.to_string(),
        },
        Operand::Builtin => format!("{v} ({})", builtin_name(v)),
        Operand::Func => match chunk.functions.get(v as usize) {
            Some(f) => format!("{v} <fn {}>", f.name),
            None => v.to_string(),
        },
        Operand::Jump => format!("-> {v:05}"),
        Operand::Cache if v == NO_CACHE_OPERAND as u32 => "ic-".to_string(),
        Operand::Cache => format!("ic{v}"),
        Operand::U8 | Operand::U16 | Operand::Global => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_table_is_consistent() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i);
            assert_eq!(Op::from_byte(i as u8), Some(*op));
            assert_eq!(Op::from_name(op.name()), Some(*op));
        }
        const { assert!(Op::COUNT < 256) };
        assert_eq!(Op::Jump.size(), 5);
        assert_eq!(Op::CallMethod.size(), 6);
        assert!(Op::Add.is_cacheable() && !Op::Pow.is_cacheable() && !Op::TailCall.is_cacheable());
    }

    #[test]
    fn emit_and_decode_roundtrip() {
        let mut c = Chunk::default();
        let k = c.add_constant(Value::Int(7));
        c.emit(Op::Const, &[k as u32], Pos { line: 1, column: 1 });
        c.emit(Op::Jump, &[123456], Pos { line: 2, column: 1 });
        assert_eq!(c.decode(0), Some((Op::Const, vec![k as u32])));
        assert_eq!(c.decode(3), Some((Op::Jump, vec![123456])));
        assert_eq!(c.pos_at(3).line, 2);
        assert_eq!(c.pos_at(1).line, 1);
    }

    #[test]
    fn cacheable_ops_carry_their_slot_as_operand() {
        let mut c = Chunk::default();
        let p = Pos { line: 1, column: 1 };
        let add = c.emit(Op::Add, &[], p);
        let pow = c.emit(Op::Pow, &[], p);
        let prop = c.emit(Op::GetProp, &[0], p);
        let call = c.emit(Op::Call, &[2], p);
        assert_eq!((c.inline_cache_slot(add), c.inline_cache_slot(pow)), (Some(0), None));
        assert_eq!((c.inline_cache_slot(prop), c.inline_cache_slot(call)), (Some(1), Some(2)));
        assert_eq!(c.decode(prop), Some((Op::GetProp, vec![0, 1])));
        assert_eq!(c.inline_cache_sites(), vec![(add, 0), (prop, 1), (call, 2)]);
        assert_eq!(c.inline_cache_slot(c.code.len()), None);
        assert_eq!(c.inline_cache_slot_count(), 3);
        assert_ne!(c.cache_id, Chunk::default().cache_id);
    }
}
