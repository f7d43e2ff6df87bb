//! The static checker: what `harn check` / `harn run` verify before a
//! program runs (see the reference `static-checker.md`; messages are the
//! conformance-era wording).
//!
//! It works on the parsed AST in one forward walk: a pre-pass registers
//! every type-like declaration and every callable's signature (so forward
//! references work), then statements are walked in order, inferring
//! expression types and applying the rules. Whenever a type cannot be told
//! the checker infers "no type" and the rules that would need it stay
//! silent: a checker that errs on valid programs is worse than none.

mod compat;
mod decls;
mod names;
mod render;
pub mod ty;
mod walk;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

pub use render::render;

use crate::compile::check::decls::Decls;
use crate::compile::check::ty::Ty;
use crate::syntax::ast::{Program, StmtKind};
use crate::syntax::pos::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding of the checker.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable id such as `HARN-TYP-007`.
    pub code: Option<&'static str>,
    pub message: String,
    pub file: String,
    /// 1-based; 0 when the diagnostic has no location.
    pub line: u32,
    pub column: u32,
    /// End of the span (line, column, exclusive) when known.
    pub end: Option<(u32, u32)>,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// What the checker is told about the program's surroundings.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Callable names defined outside the file (host functions registered on
    /// the Vm); they count as defined call targets.
    pub extra_names: Vec<String>,
}

/// Checks a parsed program. Diagnostics come in walk order.
pub fn check_program(program: &Program, file: &str, options: &CheckOptions) -> Vec<Diagnostic> {
    let decls = Decls::collect(&program.items);
    // A file with imports gets no undefined-call check: its imported names
    // are not enumerated statically (the reference's own fallback).
    let strict = !program.items.iter().any(|s| matches!(s.kind, StmtKind::Import(_)));
    // The declared names stay in `decls` (not copied): `known` holds the rest.
    let known: HashSet<String> = options.extra_names.iter().cloned().collect();
    let mut c = Checker {
        file: file.to_string(),
        decls: &decls,
        diags: Vec::new(),
        scopes: vec![HashMap::default()],
        barriers: Vec::new(),
        generics: Vec::new(),
        fns: Vec::new(),
        strict,
        known,
        entry_only: false,
        depth: 0,
        undefined: Vec::new(),
    };
    c.check_items(&program.items);
    c.finish_undefined();
    c.diags
}

/// A variable as the checker sees it.
#[derive(Clone, Debug)]
pub(crate) struct Var {
    /// Current (possibly narrowed) type.
    pub ty: Option<Ty>,
    /// The declared type, which assignments are checked against.
    pub declared: Option<Ty>,
    pub mutable: bool,
    /// Declared inside a function body (not a parameter): the conformance-era
    /// return check types values without them.
    pub local: bool,
    /// `var x = nil` without annotation: the first non-nil assignment widens it.
    pub nil_widen: bool,
    /// An entry that only narrows an outer variable.
    pub refinement: bool,
    /// A nested `fn` declaration's signature (calls of it are checked).
    pub sig: Option<std::rc::Rc<decls::FnSig>>,
}

/// The function-like body being walked.
#[derive(Clone, Debug)]
pub(crate) struct FnCtx {
    pub ret: Option<Ty>,
    /// A `gen fn`; its `Stream<T>` item type when declared.
    pub stream: Option<Option<Ty>>,
    /// Returns are checked only at the body's top level and inside `if`
    /// branches (conformance-era rule); this counts other enclosing constructs.
    pub nesting: u32,
    pub closure: bool,
}

pub(crate) struct Checker<'a> {
    pub file: String,
    pub decls: &'a Decls,
    pub diags: Vec<Diagnostic>,
    pub scopes: Vec<HashMap<String, Var>>,
    /// Scope indices where a fn body starts: lookups stop there and continue at the root.
    pub barriers: Vec<usize>,
    pub generics: Vec<String>,
    pub fns: Vec<FnCtx>,
    pub strict: bool,
    /// With `decls.bound_names`: every name that may be called without being a builtin.
    pub known: HashSet<String>,
    /// Typing a `return` value: locals of the fn body count as untyped.
    pub entry_only: bool,
    /// Recursion depth of the walk (the parser bounds tree height).
    pub depth: u32,
    /// Calls of names not defined so far: (diagnostic index, name). Names
    /// bound anywhere later in the file (closures, nested fns) are dropped at the end.
    pub undefined: Vec<(usize, String)>,
}

impl Checker<'_> {
    pub(crate) fn report(&mut self, severity: Severity, code: &'static str, message: String, pos: Pos) {
        self.diags.push(Diagnostic {
            severity,
            code: Some(code),
            message,
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            end: None,
            help: None,
            notes: Vec::new(),
        });
    }
    pub(crate) fn error(&mut self, code: &'static str, message: String, pos: Pos) {
        self.report(Severity::Error, code, message, pos)
    }
    pub(crate) fn warn(&mut self, code: &'static str, message: String, pos: Pos) {
        self.report(Severity::Warning, code, message, pos)
    }
}
