//! Source to `Program`: the one front door (`compile_source`), the bytecode
//! compiler, import resolution and module units, and the prelude's names.

pub mod check;
pub mod compiler;
pub mod modules;
pub mod prelude;
pub mod types;

use std::rc::Rc;

use crate::bytecode::Program;
use crate::compile::modules::{ModuleCache, ModuleLoader};
use crate::runtime::error::VmResult;
use crate::syntax::parser;

/// Lexes, parses and compiles `source` (a program without a module loader:
/// an `import` fails as unresolvable).
pub fn compile(source: &str, file: &str) -> VmResult<Rc<Program>> {
    compile_source(source, file, None)
}

/// Lexes, parses and compiles `source`, loading its imports through `loader`.
pub fn compile_with_loader(
    source: &str,
    file: &str,
    loader: &mut dyn ModuleLoader,
    cache: &mut ModuleCache,
) -> VmResult<Rc<Program>> {
    compile_source(source, file, Some((loader, cache)))
}

/// Parses `source` and runs the static checker over it (`check`). A lex or
/// parse error is the `Err`; type findings are the diagnostics, errors and
/// warnings in walk order.
pub fn check_source(source: &str, file: &str, options: &check::CheckOptions) -> VmResult<Vec<check::Diagnostic>> {
    let ast = parser::parse(source, file).map_err(|e| modules::with_source_line(e, file, source))?;
    Ok(check::check_program(&ast, file, options))
}

/// Every compilation goes through here. Errors carry file, line, column and
/// the offending source line.
fn compile_source(source: &str, file: &str, modules: Option<(&mut dyn ModuleLoader, &mut ModuleCache)>) -> VmResult<Rc<Program>> {
    let result = parser::parse(source, file).and_then(|ast| {
        let imports = match modules {
            Some((loader, cache)) => modules::resolve_entry_imports(&ast, file, loader, cache)?,
            None => Vec::new(),
        };
        compiler::compile_entry_program(&ast, source, file, imports)
    });
    result.map_err(|e| modules::with_source_line(e, file, source))
}
