//! harnvm-core: the Harn language without Python.
//!
//! The crate is built in floors; each imports only from the floors below it
//! (`tests/layers.rs` enforces this):
//!
//! | floor       | holds                                                         |
//! |-------------|---------------------------------------------------------------|
//! | `vm`        | the `Vm`, dispatch, inline caches, scheduler, generators      |
//! | `compile`   | source → `Program`: compiler, imports, prelude names          |
//! | `builtins`  | the library: builtin table, methods, iterators, schemas       |
//! | `bytecode`  | `define_ops!`, `Chunk`, `FunctionProto`, `Program`, disassembly |
//! | `syntax`    | positions, lexer, parser, AST                                 |
//! | `runtime`   | values, objects, fibers as data, native calls, errors, ops    |
//!
//! The pipeline: `compile::compile` (lex, parse, compile) gives a `Program`;
//! `Vm::run` runs it. Every failure is a `VmError`.

pub mod builtins;
pub mod bytecode;
pub mod compile;
pub mod runtime;
pub mod syntax;
pub mod vm;

pub use bytecode::Program;
pub use compile::modules::{load_module, CompiledModule, ModuleCache, ModuleLoader, ModuleSource};
pub use compile::{compile, compile_with_loader};
pub use runtime::error::{ErrorKind, LimitKind, Phase, StackEntry, VmError, VmResult};
pub use runtime::value::Value;
pub use vm::{Vm, VmOptions};

/// Readable disassembly of every function of a program, then of the
/// modules it imports (their init code and fns).
pub fn disassemble(program: &Program) -> String {
    let mut out = bytecode::chunk::disassemble(&program.main, builtins::builtin_name);
    out.push_str(&compile::modules::disassemble_imports(&program.main));
    out
}
