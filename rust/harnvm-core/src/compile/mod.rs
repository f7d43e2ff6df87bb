//! Source to `Program`. The front doors (`compile`, `compile_with_loader`,
//! and `compile_checked`, which parses once for the checker and the
//! compiler) all end in `compile_ast`. Below them: the static checker, the
//! bytecode compiler, import resolution and module units, type lowering and
//! the prelude's names.

pub mod check;
pub mod compiler;
pub mod liveness;
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

/// What `compile_checked` produced.
pub struct Checked {
    /// The checker's findings in walk order (empty when the check was off or
    /// the source did not parse).
    pub diagnostics: Vec<check::Diagnostic>,
    /// The program; `Ok(None)` when the checker found an error, in which case
    /// nothing was compiled (as `harn run`). A lex, parse, import or compile
    /// error is the `Err`.
    pub program: VmResult<Option<Rc<Program>>>,
}

/// The checked front door: parses once, runs the static checker over the
/// tree (unless `check` is `None`), then compiles the same tree, loading
/// imports through `loader`. Imported modules are not checked: harn 0.9.11
/// checks only the file being run.
pub fn compile_checked(
    source: &str,
    file: &str,
    loader: &mut dyn ModuleLoader,
    cache: &mut ModuleCache,
    check: Option<&check::CheckOptions>,
) -> Checked {
    let ast = match parser::parse(source, file) {
        Ok(ast) => ast,
        Err(e) => return Checked { diagnostics: Vec::new(), program: Err(modules::with_source_line(e, file, source)) },
    };
    let diagnostics = check.map(|o| check::check_program(&ast, file, o)).unwrap_or_default();
    if diagnostics.iter().any(check::Diagnostic::is_error) {
        return Checked { diagnostics, program: Ok(None) };
    }
    let program = compile_ast(&ast, source, file, Some((loader, cache))).map(Some);
    Checked { diagnostics, program }
}

/// Parses, then compiles (`compile_ast`) without the checker.
fn compile_source(source: &str, file: &str, modules: Option<(&mut dyn ModuleLoader, &mut ModuleCache)>) -> VmResult<Rc<Program>> {
    let ast = parser::parse(source, file).map_err(|e| modules::with_source_line(e, file, source))?;
    compile_ast(&ast, source, file, modules)
}

/// Every compilation ends here: compiles a parsed entry program (imports
/// resolved through `modules`). Errors carry file, line, column and the
/// offending source line.
fn compile_ast(
    ast: &crate::syntax::ast::Program,
    source: &str,
    file: &str,
    modules: Option<(&mut dyn ModuleLoader, &mut ModuleCache)>,
) -> VmResult<Rc<Program>> {
    let result = (|| {
        let imports = match modules {
            Some((loader, cache)) => modules::resolve_entry_imports(ast, file, loader, cache)?,
            None => Vec::new(),
        };
        compiler::compile_entry_program(ast, source, file, imports)
    })();
    result.map_err(|e| modules::with_source_line(e, file, source))
}
