//! The compiler's side of modules (a child of `compiler`, so it shares the
//! `Compiler` internals): imported names become module-global slots of the
//! importer, filled at run time by `ImportModule` + `BindImports`; an
//! imported module's top level compiles to one init function whose
//! `let`/`var`s are module globals shared by all the module's fns.

use std::rc::Rc;

use super::Compiler;
use crate::bytecode::chunk::Op;
use crate::compile::modules::{ImportDesc, ModuleUnit, ResolvedImport};
use crate::runtime::error::VmResult;
use crate::runtime::value::{Object, Value};
use crate::syntax::ast::{Pattern, Program as Ast, StmtKind};
use crate::syntax::pos::Pos;

/// Compiles an imported module's top level: imports, then its fns, then its
/// `let`/`var`s in order. Pipelines and other statements are ignored (Harn).
pub fn compile_module_unit(program: &Ast, _source: &str, key: &str, imports: &[ResolvedImport]) -> VmResult<ModuleUnit> {
    let mut c = Compiler::new(key);
    c.module_mode = true;
    c.imports = imports.to_vec();
    c.declare_import_globals();
    for s in &program.items {
        match &s.kind {
            StmtKind::Let { pattern, .. } => c.declare_pattern_globals(pattern, false),
            StmtKind::Var { pattern, .. } => c.declare_pattern_globals(pattern, true),
            _ => {}
        }
    }
    c.prescan(&program.items);
    c.begin_function(format!("<module {key}>"), None, Pos { line: 1, column: 1 });
    c.emit_imports()?;
    for s in &program.items {
        if matches!(s.kind, StmtKind::FnDecl(_)) {
            c.compile_stmt(s)?;
        }
    }
    for s in &program.items {
        if matches!(s.kind, StmtKind::Let { .. } | StmtKind::Var { .. }) {
            c.compile_stmt(s)?;
        }
    }
    c.emit(Op::Nil, &[]);
    let init = c.end_function();
    Ok(ModuleUnit { init: Rc::new(init), globals: c.globals.clone() })
}

impl Compiler {
    fn declare_global(&mut self, name: &str) -> u16 {
        if let Some(&g) = self.global_index.get(name) {
            return g;
        }
        let g = self.globals.len() as u16;
        self.global_index.insert(name.to_string(), g);
        self.globals.push(name.to_string());
        g
    }

    /// Every imported name is a module global of the importer.
    pub(super) fn declare_import_globals(&mut self) {
        let names: Vec<String> = self.imports.iter().flat_map(|i| i.names.iter().map(|(n, _)| n.clone())).collect();
        for n in names {
            self.declare_global(&n);
        }
    }

    fn declare_pattern_globals(&mut self, pattern: &Pattern, mutable: bool) {
        let mut names = Vec::new();
        pattern_names(pattern, &mut names);
        for n in names {
            let g = self.declare_global(&n);
            if mutable {
                self.mutable_globals.insert(g);
            } else {
                self.mutable_globals.remove(&g);
            }
        }
    }

    /// In an imported module's top level, `let`/`var` bind module globals.
    pub(super) fn module_global_binding(&mut self, name: &str) -> Option<u16> {
        if self.module_mode && self.fns.len() == 1 && self.f().scopes.len() == 1 {
            self.global_index.get(name).copied()
        } else {
            None
        }
    }

    /// `ImportModule d; Pop; BindImports d` for every import: instantiate the
    /// module (once per VM), then copy its exports into our globals.
    pub(super) fn emit_imports(&mut self) -> VmResult<()> {
        let imports = std::mem::take(&mut self.imports);
        for imp in &imports {
            self.pos = imp.pos;
            let bindings = imp.names.iter().map(|(n, from)| (*from, self.global_index[n.as_str()])).collect();
            let desc = Rc::new(ImportDesc { module: imp.module.clone(), bindings });
            let display = format!("<module {}>", imp.module.key);
            let value = Value::Object(Rc::new(Object::Opaque {
                type_name: "module",
                display,
                data: std::cell::RefCell::new(Box::new(desc)),
            }));
            let k = self.constant(value)?;
            self.emit(Op::ImportModule, &[k]);
            self.emit(Op::Pop, &[]);
            self.emit(Op::BindImports, &[k]);
        }
        self.imports = imports;
        Ok(())
    }
}

fn pattern_names(p: &Pattern, out: &mut Vec<String>) {
    match p {
        Pattern::Ident(n) => out.push(n.clone()),
        Pattern::Wildcard => {}
        Pattern::Dict { entries, rest } => {
            for e in entries {
                if let Some(b) = &e.binding {
                    out.push(b.clone());
                }
            }
            if let Some(r) = rest {
                out.push(r.clone());
            }
        }
        Pattern::List { elements, rest } => {
            for e in elements {
                if let Some(b) = &e.binding {
                    out.push(b.clone());
                }
            }
            if let Some(r) = rest {
                out.push(r.clone());
            }
        }
        Pattern::Pair(a, b) => {
            out.extend(a.iter().cloned());
            out.extend(b.iter().cloned());
        }
    }
}
