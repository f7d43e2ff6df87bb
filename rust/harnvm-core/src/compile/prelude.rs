//! Parts of the language that are written in Harn and compiled into the core.
//!
//! The `stream` namespace (harn-language §11), `parallel_race` (§10) and the
//! iter over a channel are coroutines and tasks that wait on channels, which
//! the scheduler and generator fibers already do well, so they are Harn code
//! (`prelude/*.harn`) rather than a second, native implementation of the
//! same machinery.
//!
//! A prelude module is compiled once per thread, when a program first uses
//! one of its globals, and instantiated once per VM (`Vm::prelude_global`).
//! Free names listed in `GLOBALS` compile to a lookup of that global.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::compile::modules::{load_module, CompiledModule, ModuleCache, ModuleLoader, ModuleSource};
use crate::runtime::error::{VmError, VmResult};

/// File names of prelude modules start with this. Generators compiled from
/// them hand their body's output to the consumer (see `FunctionProto::forwards_output`).
pub const FILE_PREFIX: &str = "harnvm:prelude/";

const SOURCES: &[(&str, &str)] =
    &[("harnvm:prelude/stream", include_str!("prelude/stream.harn")), ("harnvm:prelude/core", include_str!("prelude/core.harn"))];

/// What a prelude global is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// A dict of every export of the module (`stream`), marked `_namespace`.
    Namespace,
    /// One export of the module, under the global's name.
    Export,
}

/// (global name, module key, shape). Names the runtime itself needs (the
/// channel iter) are listed too; a program reaches them only by that name.
pub const GLOBALS: &[(&str, &str, Shape)] = &[
    ("stream", "harnvm:prelude/stream", Shape::Namespace),
    ("parallel_race", "harnvm:prelude/core", Shape::Export),
    ("__channel_items", "harnvm:prelude/core", Shape::Export),
];

/// The module key and shape of prelude global `name`.
pub fn global(name: &str) -> Option<(&'static str, Shape)> {
    GLOBALS.iter().find(|g| g.0 == name).map(|g| (g.1, g.2))
}

/// Serves the embedded prelude sources; prelude modules import nothing else.
struct EmbeddedLoader;

impl ModuleLoader for EmbeddedLoader {
    fn load(&mut self, spec: &str, _importer: &str) -> Result<Option<ModuleSource>, String> {
        let found = SOURCES.iter().find(|(key, _)| *key == spec);
        Ok(found.map(|(key, source)| ModuleSource { key: key.to_string(), source: source.to_string() }))
    }
}

thread_local! {
    static COMPILED: RefCell<HashMap<&'static str, Rc<CompiledModule>>> = RefCell::new(HashMap::new());
}

/// The compiled prelude module `key` (compiled on first use in this thread).
pub fn module(key: &'static str) -> VmResult<Rc<CompiledModule>> {
    if let Some(m) = COMPILED.with(|c| c.borrow().get(key).cloned()) {
        return Ok(m);
    }
    if !SOURCES.iter().any(|(k, _)| *k == key) {
        return Err(VmError::runtime(format!("no prelude module {key}")));
    }
    let module = load_module(key, key, &mut EmbeddedLoader, &mut ModuleCache::new())?;
    COMPILED.with(|c| c.borrow_mut().insert(key, module.clone()));
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prelude_module_compiles_and_every_global_is_exported() {
        for (name, key, shape) in GLOBALS {
            let module = module(key).expect("prelude compiles");
            if *shape == Shape::Export {
                assert!(module.export(name).is_some(), "{key} does not export {name}");
            }
        }
    }

    #[test]
    fn the_stream_namespace_has_every_operator_and_no_helpers() {
        let module = module("harnvm:prelude/stream").expect("prelude compiles");
        let names: Vec<&str> = module.exports().iter().map(|e| e.name.as_str()).collect();
        for op in [
            "map",
            "filter",
            "tap",
            "scan",
            "fold",
            "collect",
            "first",
            "take",
            "take_until",
            "zip",
            "merge",
            "interleave",
            "race",
            "broadcast",
            "throttle",
            "debounce",
        ] {
            assert!(names.contains(&op), "missing stream.{op}: {names:?}");
        }
        assert!(names.iter().all(|n| !n.starts_with('_')), "helpers stay private: {names:?}");
    }
}
