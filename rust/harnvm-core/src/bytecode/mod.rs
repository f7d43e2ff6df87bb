//! Compiled code: the opcode table (`define_ops!`), `Chunk`, `FunctionProto`,
//! the whole compiled `Program`, and the disassembler.

pub mod chunk;

use std::rc::Rc;

pub use chunk::{Chunk, FunctionProto, Op};

/// A compiled Harn source file, ready to run on any `Vm`.
pub struct Program {
    /// The entry code: imports, top-level bindings and declarations, then the
    /// entry pipeline's body (or, in script mode, the top-level statements).
    pub main: Rc<FunctionProto>,
    pub file: String,
    pub source: Rc<str>,
    /// Names of the module-global slots (top-level fns and, for imported modules, vars).
    pub globals: Vec<String>,
}
