//! Parts of the language that are written in Harn and compiled into the core.
//!
//! The `stream` namespace (harn-language §11) is a global dict of operators
//! over lists, channels and streams. Its operators are coroutines that wait
//! on channels and spawn pump tasks, which the scheduler and generator
//! fibers already do well, so they are Harn code (`prelude/stream.harn`)
//! rather than a second, native implementation of the same machinery.
//!
//! The module is compiled once per thread, on the first use of the name
//! `stream`, and instantiated once per VM (`Vm::stream_namespace`).

use std::cell::RefCell;
use std::rc::Rc;

use crate::error::VmResult;
use crate::modules::{load_module, CompiledModule, ModuleCache, ModuleLoader, ModuleSource};

/// File names of prelude modules start with this. Generators compiled from
/// them hand their body's output to the consumer (see `FunctionProto::forwards_output`).
pub const FILE_PREFIX: &str = "harnvm:prelude/";

const STREAM_KEY: &str = "harnvm:prelude/stream";
const STREAM_SOURCE: &str = include_str!("prelude/stream.harn");

/// Serves the embedded prelude sources; prelude modules import nothing else.
struct EmbeddedLoader;

impl ModuleLoader for EmbeddedLoader {
    fn load(&mut self, spec: &str, _importer: &str) -> Result<Option<ModuleSource>, String> {
        Ok((spec == STREAM_KEY).then(|| ModuleSource { key: STREAM_KEY.to_string(), source: STREAM_SOURCE.to_string() }))
    }
}

thread_local! {
    static STREAM_MODULE: RefCell<Option<Rc<CompiledModule>>> = const { RefCell::new(None) };
}

/// The compiled `stream` module (compiled on first use in this thread).
pub fn stream_module() -> VmResult<Rc<CompiledModule>> {
    if let Some(m) = STREAM_MODULE.with(|m| m.borrow().clone()) {
        return Ok(m);
    }
    let module = load_module(STREAM_KEY, STREAM_KEY, &mut EmbeddedLoader, &mut ModuleCache::new())?;
    STREAM_MODULE.with(|m| *m.borrow_mut() = Some(module.clone()));
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_module_compiles_and_exports_every_operator() {
        let module = stream_module().expect("prelude compiles");
        let names: Vec<&str> = module.exports().iter().map(|e| e.name.as_str()).collect();
        for op in [
            "map", "filter", "tap", "scan", "fold", "collect", "first", "take", "take_until", "zip", "merge", "interleave",
            "race", "broadcast", "throttle", "debounce",
        ] {
            assert!(names.contains(&op), "missing stream.{op}: {names:?}");
        }
        assert!(names.iter().all(|n| !n.starts_with('_')), "helpers stay private: {names:?}");
    }
}
