//! harnvm-core: the Harn language without Python.
//!
//! Pipeline: `lexer` → `parser` (producing `ast`) → `compiler` (producing
//! `chunk::FunctionProto`s) → `vm` (running them with `value`s and
//! `builtins`). Every failure is an `error::VmError`. Imports are resolved
//! while compiling (`modules`), with sources from a host `ModuleLoader`.

pub mod ast;
pub mod builtins;
pub mod chunk;
pub mod compiler;
pub mod error;
pub mod ic;
pub mod iter;
pub mod lexer;
pub mod methods;
pub mod modules;
pub mod ops;
pub mod parser;
pub mod prelude;
pub mod schema;
pub mod value;
pub mod vm;

use std::rc::Rc;

pub use error::{ErrorKind, Phase, StackEntry, VmError, VmResult};
pub use modules::{compile_with_loader, load_module, CompiledModule, ModuleCache, ModuleLoader, ModuleSource};
pub use value::Value;
pub use vm::{Vm, VmOptions};

/// A compiled Harn source file, ready to run on any `Vm`.
pub struct Program {
    /// The entry code: imports, top-level bindings and declarations, then the
    /// entry pipeline's body (or, in script mode, the top-level statements).
    pub main: Rc<chunk::FunctionProto>,
    pub file: String,
    pub source: Rc<str>,
    /// Names of the module-global slots (top-level fns and, for imported modules, vars).
    pub globals: Vec<String>,
}

/// Lexes, parses and compiles `source`. Errors carry file, line, column and
/// the offending source line.
pub fn compile(source: &str, file: &str) -> VmResult<Rc<Program>> {
    let result = parser::parse(source, file).and_then(|ast| compiler::compile_program(&ast, source, file));
    result.map_err(|mut e| {
        if e.0.file.is_empty() {
            e.0.file = file.to_string();
        }
        if e.0.source_line.is_none() && e.0.line > 0 {
            e.0.source_line = source.lines().nth(e.0.line as usize - 1).map(str::to_string);
        }
        e
    })
}

/// Readable disassembly of every function of a program, then of the
/// modules it imports (their init code and fns).
pub fn disassemble(program: &Program) -> String {
    let mut out = chunk::disassemble(&program.main);
    out.push_str(&modules::disassemble_imports(&program.main));
    out
}
