//! Modules: compile-time import resolution and the compiled-module cache.
//!
//! Imports are resolved while compiling, so imported names stay statically
//! resolved (module-global slots, never a runtime name lookup). The host
//! supplies module *sources* through a `ModuleLoader` (the Python package
//! resolves `std/...`, relative paths, search paths and providers); this
//! file turns them into `CompiledModule`s: each module is parsed and
//! compiled once per `ModuleCache`, keyed by the loader's canonical key,
//! and reused while its source and its dependencies are unchanged.
//!
//! At run time each module is instantiated once per VM (see
//! `vm_modules.rs`): its init code runs its imports, defines its top-level
//! fns and runs its top-level `let`/`var`s into module globals that all its
//! fns share. Exports follow Harn: the `pub fn`s if the module has any,
//! otherwise all its fns, plus whatever `pub import` re-exports.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::bytecode::chunk::FunctionProto;
use crate::compile::compiler;
use crate::runtime::error::{ErrorKind, Phase, VmError, VmResult};
use crate::syntax::ast::{ImportDecl, StmtKind};
use crate::syntax::parser;
use crate::syntax::pos::Pos;

/// A module's source as found by the host.
pub struct ModuleSource {
    /// Stable identity of the module (canonical file path, `std/NAME`, ...):
    /// the cache key, and the file name in errors and stack traces.
    pub key: String,
    pub source: String,
}

/// Finds module sources for import paths. Implemented by the host.
pub trait ModuleLoader {
    /// The module `spec` (the import path as written) imported from the
    /// module or file `importer` (a key, or the entry file's name).
    /// `Ok(None)`: no such module. `Err(message)`: it exists but cannot be loaded.
    fn load(&mut self, spec: &str, importer: &str) -> Result<Option<ModuleSource>, String>;
}

/// One exported name of a compiled module.
#[derive(Clone)]
pub struct Export {
    pub name: String,
    /// The module-global slot holding the exported value.
    pub slot: u16,
    /// The exported fn's code (for hosts that check arity before calling).
    pub proto: Option<Rc<FunctionProto>>,
}

/// A module compiled once and instantiated once per VM.
pub struct CompiledModule {
    pub key: String,
    /// How errors name it: the import path with `.harn` (`lib/helpers.harn`, `std/math`).
    pub display_name: String,
    pub source: Rc<str>,
    /// Runs the module's imports, defines its fns, runs its top-level `let`/`var`s.
    pub init: Rc<FunctionProto>,
    /// Names of the module-global slots.
    pub globals: Vec<String>,
    exports: Vec<Export>,
    /// Imports as written and the modules they resolved to (cache validation).
    deps: Vec<(String, Rc<CompiledModule>)>,
}

impl CompiledModule {
    pub fn export(&self, name: &str) -> Option<&Export> {
        self.exports.iter().find(|e| e.name == name)
    }

    pub fn exports(&self) -> &[Export] {
        &self.exports
    }
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<module {}>", self.key)
    }
}

/// What one `import` statement binds, as the compiler needs it.
#[derive(Clone)]
pub struct ResolvedImport {
    pub module: Rc<CompiledModule>,
    /// (name, slot in the imported module) for every name this import binds.
    pub names: Vec<(String, u16)>,
    pub is_pub: bool,
    pub pos: Pos,
}

/// The runtime form of one import: copy these slots of the module instance
/// into these slots of the importer (`ImportModule`/`BindImports` operand).
pub struct ImportDesc {
    pub module: Rc<CompiledModule>,
    /// (slot in the module, slot in the importer).
    pub bindings: Vec<(u16, u16)>,
}

/// The modules a function's code imports (its import constants), in order.
pub fn imports_of(proto: &FunctionProto) -> Vec<Rc<CompiledModule>> {
    proto
        .chunk
        .constants
        .iter()
        .filter_map(|c| match c {
            crate::runtime::value::Value::Object(o) => match &**o {
                crate::runtime::value::Object::Opaque { data, .. } => {
                    data.borrow().downcast_ref::<Rc<ImportDesc>>().map(|d| d.module.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Disassembly of every module `proto` imports, directly or not (each once).
pub fn disassemble_imports(proto: &FunctionProto) -> String {
    let mut out = String::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut pending = imports_of(proto);
    pending.reverse();
    while let Some(m) = pending.pop() {
        if !seen.insert(m.key.clone()) {
            continue;
        }
        out.push('\n');
        out.push_str(&crate::bytecode::chunk::disassemble(&m.init, crate::builtins::builtin_name));
        let mut more = imports_of(&m.init);
        more.reverse();
        pending.extend(more);
    }
    out
}

/// Compiled modules by key. Keep one alive to reuse compiled modules (and
/// so VM module instances) across compilations.
#[derive(Default)]
pub struct ModuleCache {
    modules: HashMap<String, Rc<CompiledModule>>,
}

impl ModuleCache {
    pub fn new() -> ModuleCache {
        ModuleCache::default()
    }

    pub fn len(&self) -> usize {
        self.modules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
}

/// The resolved imports of an entry file (`importer`), loaded through `loader`.
pub fn resolve_entry_imports(
    ast: &crate::syntax::ast::Program,
    file: &str,
    loader: &mut dyn ModuleLoader,
    cache: &mut ModuleCache,
) -> VmResult<Vec<ResolvedImport>> {
    let mut r = Resolver { loader, cache, in_progress: vec![file.to_string()], validated: HashSet::new() };
    Ok(r.resolve_imports(&ast.items, file)?.into_iter().map(|(_, imp)| imp).collect())
}

/// Loads (or reuses) the compiled module for an import path given by the
/// host (`importer` is what relative paths are resolved against).
pub fn load_module(
    spec: &str,
    importer: &str,
    loader: &mut dyn ModuleLoader,
    cache: &mut ModuleCache,
) -> VmResult<Rc<CompiledModule>> {
    let mut r = Resolver { loader, cache, in_progress: Vec::new(), validated: HashSet::new() };
    r.module(spec, importer)
}

pub fn with_source_line(mut e: VmError, file: &str, source: &str) -> VmError {
    if e.0.file.is_empty() {
        e.0.file = file.to_string();
    }
    if e.0.source_line.is_none() && e.0.line > 0 && e.0.file == file {
        e.0.source_line = source.lines().nth(e.0.line as usize - 1).map(str::to_string);
    }
    e
}

/// `lib/helpers` → `lib/helpers.harn`; `std/...` and paths with an extension unchanged.
pub fn display_name(spec: &str) -> String {
    let last = spec.rsplit('/').next().unwrap_or(spec);
    if spec.starts_with("std/") || last.contains('.') {
        spec.to_string()
    } else {
        format!("{spec}.harn")
    }
}

fn import_error(module: &str, export: Option<&str>, message: String, pos: Pos) -> VmError {
    let mut e = VmError::new(ErrorKind::Import { module: module.to_string(), export: export.map(str::to_string), message });
    e.0.phase = Phase::Compile;
    e.0.line = pos.line;
    e.0.column = pos.column;
    e
}

struct Resolver<'a> {
    loader: &'a mut dyn ModuleLoader,
    cache: &'a mut ModuleCache,
    /// Keys of the modules being compiled, outermost first (cycle detection).
    in_progress: Vec<String>,
    /// Modules already checked or compiled by this resolver.
    validated: HashSet<String>,
}

impl Resolver<'_> {
    /// The compiled module for `spec` imported from `importer`.
    fn module(&mut self, spec: &str, importer: &str) -> VmResult<Rc<CompiledModule>> {
        let found = self
            .loader
            .load(spec, importer)
            .map_err(|message| VmError::new(ErrorKind::Import { module: spec.to_string(), export: None, message }))?;
        let Some(ModuleSource { key, source }) = found else {
            let message = format!("Import error: module '{spec}' not found (imported from {importer})");
            return Err(VmError::new(ErrorKind::ModuleNotFound { module: spec.to_string(), message }));
        };
        if let Some(at) = self.in_progress.iter().position(|k| *k == key) {
            let mut chain: Vec<&str> = self.in_progress[at..].iter().map(String::as_str).collect();
            chain.push(&key);
            let message = format!("Import error: import cycle: {}", chain.join(" -> "));
            return Err(VmError::new(ErrorKind::Import { module: spec.to_string(), export: None, message }));
        }
        if self.validated.contains(&key) {
            if let Some(m) = self.cache.modules.get(&key) {
                return Ok(m.clone());
            }
        }
        if let Some(cached) = self.cache.modules.get(&key).cloned() {
            if *cached.source == *source && self.deps_unchanged(&cached)? {
                self.validated.insert(key);
                return Ok(cached);
            }
        }
        let compiled = self.compile(spec, &key, &source)?;
        self.cache.modules.insert(key.clone(), compiled.clone());
        self.validated.insert(key);
        Ok(compiled)
    }

    /// Whether every import of a cached module still resolves to the same compiled module.
    fn deps_unchanged(&mut self, m: &Rc<CompiledModule>) -> VmResult<bool> {
        self.in_progress.push(m.key.clone());
        let mut same = true;
        for (spec, dep) in &m.deps {
            let now = self.module(spec, &m.key);
            match now {
                Ok(now) if Rc::ptr_eq(&now, dep) => {}
                Ok(_) => {
                    same = false;
                    break;
                }
                Err(e) => {
                    self.in_progress.pop();
                    return Err(e);
                }
            }
        }
        self.in_progress.pop();
        Ok(same)
    }

    fn compile(&mut self, spec: &str, key: &str, source: &str) -> VmResult<Rc<CompiledModule>> {
        let ast = parser::parse(source, key).map_err(|e| with_source_line(e, key, source))?;
        self.in_progress.push(key.to_string());
        let imports = self.resolve_imports(&ast.items, key);
        self.in_progress.pop();
        let imports = imports.map_err(|e| with_source_line(e, key, source))?;
        let deps = imports.iter().map(|(spec, imp)| (spec.clone(), imp.module.clone())).collect();
        let imports: Vec<ResolvedImport> = imports.into_iter().map(|(_, imp)| imp).collect();
        let unit = compiler::compile_module_unit(&ast, source, key, &imports).map_err(|e| with_source_line(e, key, source))?;
        // Own fns: the `pub` ones if any fn is `pub`, else all.
        let fns: Vec<(&str, bool)> = ast
            .items
            .iter()
            .filter_map(|s| match &s.kind {
                StmtKind::FnDecl(f) => Some((f.name.as_str(), f.is_pub)),
                _ => None,
            })
            .collect();
        let any_pub = fns.iter().any(|(_, p)| *p);
        let mut exports: Vec<Export> = Vec::new();
        let mut add = |name: &str, slot: u16, proto: Option<Rc<FunctionProto>>| match exports.iter_mut().find(|e| e.name == name)
        {
            Some(e) => {
                e.slot = slot;
                e.proto = proto;
            }
            None => exports.push(Export { name: name.to_string(), slot, proto }),
        };
        for imp in imports.iter().filter(|i| i.is_pub) {
            for (name, from) in &imp.names {
                let proto = imp.module.exports.iter().find(|e| e.slot == *from).and_then(|e| e.proto.clone());
                add(name, unit.global_slot(name), proto);
            }
        }
        for (name, is_pub) in fns {
            if is_pub || !any_pub {
                let proto = unit.init.chunk.functions.iter().rev().find(|p| p.name == name).cloned();
                add(name, unit.global_slot(name), proto);
            }
        }
        Ok(Rc::new(CompiledModule {
            key: key.to_string(),
            display_name: display_name(spec),
            source: Rc::from(source),
            init: unit.init,
            globals: unit.globals,
            exports,
            deps,
        }))
    }

    /// Resolves the top-level imports of a file, in order; checks selective
    /// names and collisions between imports.
    fn resolve_imports(&mut self, items: &[crate::syntax::ast::Stmt], importer: &str) -> VmResult<Vec<(String, ResolvedImport)>> {
        let mut out: Vec<(String, ResolvedImport)> = Vec::new();
        // name → (module key, slot) it was imported from.
        let mut bound: HashMap<String, (String, u16)> = HashMap::new();
        for s in items {
            let StmtKind::Import(ImportDecl { path, names, is_pub }) = &s.kind else { continue };
            let module = self.module(path, importer).map_err(|mut e| {
                if e.0.line == 0 {
                    e.0.line = s.pos.line;
                    e.0.column = s.pos.column;
                    e.0.phase = Phase::Compile;
                    e.0.file = importer.to_string();
                }
                e
            })?;
            let shown = module.display_name.clone();
            let selected: Vec<(String, u16)> = match names {
                Some(names) => {
                    let mut v = Vec::new();
                    for n in names {
                        match module.export(n) {
                            Some(e) => v.push((n.clone(), e.slot)),
                            None => {
                                let msg = format!("Import error: '{n}' is not defined in {shown}");
                                return Err(import_error(path, Some(n), msg, s.pos));
                            }
                        }
                    }
                    v
                }
                None => module.exports.iter().map(|e| (e.name.clone(), e.slot)).collect(),
            };
            for (n, slot) in &selected {
                let origin = (module.key.clone(), *slot);
                if let Some(prev) = bound.get(n) {
                    if *prev != origin {
                        let msg = format!(
                            "Import collision: '{n}' is already defined when importing {shown}. \
                             Use selective imports to disambiguate: import {{ {n} }} from \"...\""
                        );
                        return Err(import_error(path, Some(n), msg, s.pos));
                    }
                }
                bound.insert(n.clone(), origin);
            }
            out.push((path.clone(), ResolvedImport { module, names: selected, is_pub: *is_pub, pos: s.pos }));
        }
        Ok(out)
    }
}

/// The output of compiling one imported module's top level.
pub struct ModuleUnit {
    pub init: Rc<FunctionProto>,
    pub globals: Vec<String>,
}

impl ModuleUnit {
    pub fn global_slot(&self, name: &str) -> u16 {
        self.globals.iter().position(|g| g == name).expect("exported names are module globals") as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile_with_loader;
    use crate::{Value, Vm, VmOptions};

    /// Modules from a map; keys are the import paths themselves.
    struct MapLoader(HashMap<&'static str, String>);

    impl ModuleLoader for MapLoader {
        fn load(&mut self, spec: &str, _importer: &str) -> Result<Option<ModuleSource>, String> {
            Ok(self.0.get(spec).map(|s| ModuleSource { key: spec.to_string(), source: s.clone() }))
        }
    }

    fn loader() -> MapLoader {
        let mut m = HashMap::new();
        m.insert(
            "counter",
            "var count = 0\nfn _step() { return 1 }\npub fn bump() { count = count + _step()\n return count }\n".to_string(),
        );
        m.insert("facade", "pub import { bump } from \"counter\"\n".to_string());
        m.insert("a", "import \"b\"\nfn fa() { return 1 }\n".to_string());
        m.insert("b", "import \"a\"\nfn fb() { return 2 }\n".to_string());
        m.insert("mean_lib", "fn mean(xs) { return \"mine\" }\n".to_string());
        MapLoader(m)
    }

    fn run(vm: &mut Vm, source: &str, l: &mut MapLoader, cache: &mut ModuleCache) -> VmResult<Value> {
        let program = compile_with_loader(source, "main.harn", l, cache)?;
        vm.run(&program)
    }

    #[test]
    fn module_state_is_shared_by_its_fns_and_kept_per_vm() {
        let (mut l, mut cache) = (loader(), ModuleCache::new());
        let mut vm = Vm::new(VmOptions::default());
        let src = "import { bump } from \"facade\"\nbump()\nbump()";
        assert_eq!(run(&mut vm, src, &mut l, &mut cache).unwrap().display(), "2");
        // Same VM: the instance (and its state) is reused.
        assert_eq!(run(&mut vm, src, &mut l, &mut cache).unwrap().display(), "4");
        let mut other = Vm::new(VmOptions::default());
        assert_eq!(run(&mut other, src, &mut l, &mut cache).unwrap().display(), "2");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn unchanged_modules_are_reused_and_changed_ones_recompiled() {
        let (mut l, mut cache) = (loader(), ModuleCache::new());
        let first = load_module("facade", "<host>", &mut l, &mut cache).unwrap();
        let again = load_module("facade", "<host>", &mut l, &mut cache).unwrap();
        assert!(Rc::ptr_eq(&first, &again));
        l.0.insert("counter", "pub fn bump() { return 99 }\n".to_string());
        let changed = load_module("facade", "<host>", &mut l, &mut cache).unwrap();
        assert!(!Rc::ptr_eq(&first, &changed), "a changed dependency recompiles its importers");
        let mut vm = Vm::new(VmOptions::default());
        assert_eq!(vm.call_export(&changed, "bump", vec![]).unwrap().display(), "99");
    }

    #[test]
    fn import_errors() {
        let (mut l, mut cache) = (loader(), ModuleCache::new());
        let err = |src: &str, l: &mut MapLoader, c: &mut ModuleCache| {
            compile_with_loader(src, "main.harn", l, c).err().expect("must fail").message()
        };
        assert!(err("import \"a\"", &mut l, &mut cache).contains("import cycle: a -> b -> a"));
        assert_eq!(
            err("import { nope } from \"counter\"", &mut l, &mut cache),
            "Import error: 'nope' is not defined in counter.harn"
        );
        assert!(err("import \"missing\"", &mut l, &mut cache).contains("module 'missing' not found"));
        assert!(err("import \"counter\"\nimport { bump } from \"facade\"", &mut l, &mut cache)
            .starts_with("Import collision: 'bump' is already defined when importing facade.harn"));
        // Private fns are not exported when the module has `pub fn`s.
        assert!(err("import { _step } from \"counter\"", &mut l, &mut cache).contains("'_step' is not defined"));
    }

    #[test]
    fn imported_fns_shadow_builtins() {
        let (mut l, mut cache) = (loader(), ModuleCache::new());
        let mut vm = Vm::new(VmOptions::default());
        let v = run(&mut vm, "import \"mean_lib\"\nmean([1, 2])", &mut l, &mut cache).unwrap();
        assert_eq!(v.display(), "mine");
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("lib/helpers"), "lib/helpers.harn");
        assert_eq!(display_name("lib/helpers.harn"), "lib/helpers.harn");
        assert_eq!(display_name("std/math"), "std/math");
    }

    /// Host crossings through `call_export_memo` (the idle VM's inline root
    /// path): waits, spawns, output, errors and limits behave as through the
    /// scheduler, module state carries over, and a memo follows a replaced
    /// module instance.
    #[test]
    fn memoized_crossings_wait_spawn_print_fail_and_keep_module_state() {
        let mut m = HashMap::new();
        m.insert(
            "svc",
            "var count = 0\n\
             pub fn bump() { count = count + 1\n return count }\n\
             pub fn nap() { println(\"a\")\n sleep(5)\n println(\"b\")\n return count }\n\
             pub fn fork() { let h = spawn { println(\"child\")\n 2 }\n println(\"parent\")\n return await(h) }\n\
             pub fn leave() { spawn { sleep(1)\n println(\"lost\") }\n return 1 }\n\
             pub fn fail() { println(\"x\")\n throw \"boom\" }\n\
             pub fn deep() { return 1 + deep() }\n"
                .to_string(),
        );
        let mut l = MapLoader(m);
        let mut cache = ModuleCache::new();
        let module = load_module("svc", "<host>", &mut l, &mut cache).unwrap();
        let mut vm = Vm::new(VmOptions { max_frames: 50, ..VmOptions::default() });
        vm.set_virtual_clock(true);
        let mut memos: HashMap<&str, crate::vm::ExportMemo> = HashMap::new();
        let mut call = |vm: &mut Vm, name: &'static str| {
            let slot = module.export(name).unwrap().slot;
            let memo = memos.entry(name).or_default();
            let result = vm.call_export_memo(&module, slot, memo, Vec::new()).map(|v| v.display()).map_err(|e| e.to_string());
            (result, vm.take_output(), vm.live_tasks())
        };
        let ok = |r: &str, out: &str| (Ok(r.to_string()), out.to_string(), 0);
        assert_eq!(call(&mut vm, "bump"), ok("1", ""));
        assert_eq!(call(&mut vm, "bump"), ok("2", ""));
        assert_eq!(call(&mut vm, "nap"), ok("2", "a\nb\n"));
        assert_eq!(call(&mut vm, "fork"), ok("2", "parent\nchild\n"));
        assert_eq!(call(&mut vm, "leave"), ok("1", ""));
        assert_eq!(call(&mut vm, "nap"), ok("2", "a\nb\n"));
        let (failed, out, live) = call(&mut vm, "fail");
        assert!(failed.unwrap_err().contains("boom"));
        assert_eq!((out.as_str(), live), ("x\n", 0));
        let (overflow, _, _) = call(&mut vm, "deep");
        assert!(overflow.unwrap_err().to_lowercase().contains("stack overflow"));
        assert_eq!(call(&mut vm, "bump"), ok("3", ""));
        assert_eq!(vm.call_export(&module, "bump", Vec::new()).unwrap().display(), "4");
        // A run re-instantiates the module from changed source under the same
        // key: the memo is stale, and the handle's own module is instantiated
        // again (as a lookup per call does).
        l.0.insert("svc", "var count = 100\npub fn bump() { count = count + 1\n return count }\n".to_string());
        run(&mut vm, "import { bump } from \"svc\"\nbump()", &mut l, &mut cache).unwrap();
        assert_eq!(call(&mut vm, "bump"), ok("1", ""));
        assert_eq!(call(&mut vm, "bump"), ok("2", ""));
    }
}
