//! The `Program`, `Vm` and `InterruptHandle` Python classes.
//!
//! A compiled program and a VM are webs of `Rc`s (constants, function
//! prototypes, values, caches), so they are not `Send`: each object is pinned
//! to the thread that created it. Rather than `#[pyclass(unsendable)]`
//! (cross-thread use would raise `PanicException`, which is not an
//! `Exception`), the `Rc` data sits in a `Pinned` (see `pinned.rs`), so use
//! from another thread raises an ordinary `RuntimeError` and a drop on
//! another thread leaks instead of racing.
//!
//! `Vm.run` releases the GIL while Harn code runs, so other Python threads
//! keep going (see `AssertSend` for why that is sound with `Rc` data), and
//! re-attaches only to deliver output and to call registered host functions.
//!
//! A run is driven step by step: `_start` sets it up, `_step` runs Harn
//! tasks until all of them wait and reports the host calls and the next
//! timer; `harnvm._driver` awaits those (asyncio for `run_async`, a plain
//! loop with a private event loop for `run`) and hands results back with
//! `_complete`/`_fail`.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use harnvm_core::vm::{HostFn, HostReply, RunState};
use harnvm_core::{CompiledModule, ModuleCache, Value, Vm as CoreVm, VmError, VmOptions, VmResult};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyUnicodeDecodeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::entry::{self, PyLoader};
use crate::export::ExportHandle;
use crate::pinned::Pinned;
use crate::{convert, errors, internals};

pub(crate) fn wrong_thread(class: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "this harnvm.{class} belongs to another thread; create a {class} in each thread that needs one"
    ))
}

// ---------------------------------------------------------------------------
// Program

/// A compiled Harn source file. Create one with `harnvm.compile`.
#[pyclass(module = "harnvm", name = "Program", frozen)]
pub struct Program {
    inner: Pinned<Rc<harnvm_core::Program>>,
    filename: String,
}

impl Program {
    pub fn new(inner: Rc<harnvm_core::Program>) -> Program {
        let filename = inner.file.clone();
        Program { inner: Pinned::new(inner), filename }
    }

    fn get(&self) -> PyResult<&Rc<harnvm_core::Program>> {
        self.inner.get().ok_or_else(|| wrong_thread("Program"))
    }
}

#[pymethods]
impl Program {
    /// The file name the program was compiled under.
    #[getter]
    fn filename(&self) -> &str {
        &self.filename
    }

    /// The source text.
    #[getter]
    fn source(&self) -> PyResult<String> {
        Ok(self.get()?.source.to_string())
    }

    /// Readable bytecode listing.
    fn disassemble(&self, py: Python<'_>) -> PyResult<String> {
        let program = self.get()?;
        errors::guard(py, || Ok(harnvm_core::disassemble(program)))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<harnvm.Program {}>", PyString::new(py, &self.filename).repr()?))
    }
}

thread_local! {
    /// Compiled modules of everything compiled on this thread (`harnvm.compile`
    /// and every `Vm`). Entries are revalidated against their sources, through
    /// the resolver of the compilation at hand, before reuse: sharing them
    /// across Vms with different resolvers is safe, and a new Vm does not
    /// recompile the std modules.
    static THREAD_MODULES: RefCell<ModuleCache> = RefCell::new(ModuleCache::new());
}

/// Runs `f` with the thread's compiled-module cache.
fn with_module_cache<T>(f: impl FnOnce(&mut ModuleCache) -> PyResult<T>) -> PyResult<T> {
    THREAD_MODULES.with(|cache| {
        let mut cache = cache
            .try_borrow_mut()
            .map_err(|_| PyRuntimeError::new_err("harnvm: compilation re-entered from a module provider"))?;
        f(&mut cache)
    })
}

/// The module resolver used without a `Vm`: `harnvm._modules.DEFAULT_RESOLVER`.
fn default_resolver(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("harnvm._modules")?.getattr("DEFAULT_RESOLVER")
}

/// Compiles `source` with its imports resolved by `resolver` and compiled
/// modules kept in `cache`. Failures become `HarnSyntaxError` (or
/// `HarnImportError` / `HarnModuleNotFoundError` for imports).
pub fn compile_with(
    py: Python<'_>,
    source: &str,
    filename: &str,
    resolver: Bound<'_, PyAny>,
    cache: &mut ModuleCache,
) -> PyResult<Rc<harnvm_core::Program>> {
    let mut loader = PyLoader::new(resolver);
    let result = errors::guard(py, || Ok(harnvm_core::compile_with_loader(source, filename, &mut loader, cache)))?;
    result.map_err(|e| {
        let err = errors::vm_error(py, &e, 0);
        loader.with_cause(py, err)
    })
}

/// Compiles `source` (imports: the default resolver), mapping failures to
/// `HarnSyntaxError`.
pub fn compile_source(py: Python<'_>, source: &str, filename: &str) -> PyResult<Rc<harnvm_core::Program>> {
    let resolver = default_resolver(py)?;
    with_module_cache(|cache| compile_with(py, source, filename, resolver, cache))
}

/// Accepts a `Program` or source text.
pub fn program_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, filename: &str) -> PyResult<Rc<harnvm_core::Program>> {
    if let Ok(p) = obj.cast::<Program>() {
        return p.get().get().cloned();
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return compile_source(py, s.to_str()?, filename);
    }
    Err(PyTypeError::new_err(format!("expected a harnvm.Program or Harn source text (str), got {}", obj.get_type().name()?)))
}

/// Reads a source file as UTF-8, raising the usual `OSError`s and
/// `UnicodeDecodeError`.
pub fn read_source(py: Python<'_>, path: &PathBuf) -> PyResult<String> {
    let bytes = std::fs::read(path)?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let err = e.utf8_error();
            Err(PyErr::from_value(PyUnicodeDecodeError::new_utf8(py, e.as_bytes(), err)?.into_any()))
        }
    }
}

// ---------------------------------------------------------------------------
// Interrupts

/// The interrupt flag of the current core VM. The VM is replaced after a
/// panic, so handles hold this shared slot rather than the flag itself.
type InterruptSlot = Arc<Mutex<Arc<AtomicBool>>>;

fn raise_interrupt(slot: &InterruptSlot) {
    let flag = match slot.lock() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    flag.store(true, AtomicOrdering::Relaxed);
}

/// Stops a `Vm`'s run in progress; usable from any thread:
/// `handle = vm.interrupt_handle()`, later `handle.interrupt()`. The run ends
/// with `HarnInterruptedError` at the VM's next check (every few thousand
/// calls or loop iterations).
#[pyclass(module = "harnvm", name = "InterruptHandle", frozen)]
pub struct InterruptHandle {
    slot: InterruptSlot,
}

#[pymethods]
impl InterruptHandle {
    /// Asks the run in progress to stop. A run that starts later is not affected.
    fn interrupt(&self) {
        raise_interrupt(&self.slot);
    }

    fn __repr__(&self) -> &'static str {
        "<harnvm.InterruptHandle>"
    }
}

// ---------------------------------------------------------------------------
// Vm

/// Lets the GIL-released section carry the VM's `Rc` data.
///
/// SAFETY argument: `Python::detach` runs its closure synchronously on the
/// *current* thread; it only releases the GIL meanwhile. Everything
/// `Rc`-based that the closure touches (the core VM, the program, values)
/// is `Pinned` to this thread, so no other thread can reach it while the GIL
/// is released. Python objects are only touched inside `Python::attach`
/// (the output sink).
struct AssertSend<T>(T);
unsafe impl<T> Send for AssertSend<T> {}
impl<T> AssertSend<T> {
    // A method (not `.0`) so closures capture the whole wrapper, not the field.
    fn into_inner(self) -> T {
        self.0
    }
}

static NEXT_VM_ID: AtomicU64 = AtomicU64::new(1);

/// `harnvm._typed.decode_result`, imported once.
static DECODE_RESULT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn next_vm_id() -> u64 {
    NEXT_VM_ID.fetch_add(1, AtomicOrdering::Relaxed)
}

/// Where the core's output goes. The core's sink closure is installed once
/// per core VM and forwards to the Vm's output callable, or to
/// `sys.stdout.write` as looked up at the first output of a run or crossing
/// (so redirection works). Output outside a run or crossing is dropped.
/// Nothing is looked up or allocated for a run or crossing that writes no
/// output: a short crossing only flips `active`.
struct OutputSlot {
    /// The Vm's `output` callable: a second reference to what `Vm.output`
    /// holds, so it adds no reference cycle of its own.
    configured: Option<Py<PyAny>>,
    /// A run or crossing is in progress.
    active: Cell<bool>,
    /// `sys.stdout.write`, looked up at this run's first output; dropped at
    /// its end (it may reference objects that reference this Vm, and such a
    /// cycle through Rust would be invisible to Python's GC).
    stdout_write: RefCell<Option<Py<PyAny>>>,
    /// The first exception the output target raised in this run (shared
    /// with host functions during a run, see `Vm::run_failure`).
    failure: Rc<RefCell<Option<PyErr>>>,
}

impl OutputSlot {
    /// Starts routing output (a run or crossing begins).
    fn open(&self) {
        self.failure.borrow_mut().take();
        self.active.set(true);
    }

    /// Stops routing output and forgets the `sys.stdout.write` looked up.
    fn close(&self) {
        self.active.set(false);
        if self.stdout_write.borrow().is_some() {
            self.stdout_write.borrow_mut().take();
        }
    }

    /// The exception the output target raised, if any (taken).
    fn take_failure(&self) -> Option<PyErr> {
        self.failure.borrow_mut().take()
    }

    /// Where output goes now: the configured callable, or the current
    /// `sys.stdout.write` (None when `sys.stdout` is None).
    fn target(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(cb) = &self.configured {
            return Ok(Some(cb.clone_ref(py)));
        }
        if let Some(write) = self.stdout_write.borrow().as_ref() {
            return Ok(Some(write.clone_ref(py)));
        }
        let stdout = py.import("sys")?.getattr("stdout")?;
        if stdout.is_none() {
            return Ok(None);
        }
        let write = stdout.getattr("write")?.unbind();
        *self.stdout_write.borrow_mut() = Some(write.clone_ref(py));
        Ok(Some(write))
    }

    /// Hands output the core still buffers at the end of a run or crossing
    /// to the target.
    fn deliver_rest(&self, py: Python<'_>, rest: String) -> PyResult<()> {
        if rest.is_empty() {
            return Ok(());
        }
        if let Some(target) = self.target(py)? {
            target.call1(py, (rest,))?;
        }
        Ok(())
    }
}

struct VmState {
    core: CoreVm,
    /// Shared with the sink closure installed on `core` (see `OutputSlot`).
    output: Rc<OutputSlot>,
    /// Identifies this VM's module state, so function handles are only
    /// called (or passed back) on the VM that made them.
    id: u64,
    /// Host import paths (`call_export`, `warm_module`) → their compiled
    /// module: a warm crossing never touches the file system.
    host_modules: rustc_hash::FxHashMap<String, HostModule>,
    /// The run in progress (between `_start` and its end).
    run: Option<RunCtx>,
}

/// A module loaded for host calls, with where its instance lives in the
/// core VM (`ExportMemo`, shared by every by-name call of its exports).
struct HostModule {
    module: Rc<CompiledModule>,
    memo: Rc<RefCell<harnvm_core::vm::ExportMemo>>,
}

/// Per-run state of the binding: the output callable's first failure (the
/// output slot's, shared with host functions).
struct RunCtx {
    failure: Rc<RefCell<Option<PyErr>>>,
}

/// What registered Python functions hand to the driver: awaitables to
/// schedule, and the Python exceptions behind Harn errors (for `__cause__`).
#[derive(Default)]
struct HostShared {
    pending: Vec<(u64, Py<PyAny>)>,
    errors: Vec<(String, PyErr)>,
}

/// Python exceptions remembered for error chaining (the most recent ones).
const KEPT_HOST_ERRORS: usize = 32;

type Host = Rc<RefCell<HostShared>>;

/// A Python exception raised by a host function → a Harn error `catch` can
/// bind: the string `"<ExceptionType>: <message>"`. Non-`Exception`s
/// (KeyboardInterrupt, SystemExit) stop the run instead.
fn host_exception(py: Python<'_>, err: PyErr, host: &Host, failure: Option<&Rc<RefCell<Option<PyErr>>>>) -> VmError {
    if !err.is_instance_of::<pyo3::exceptions::PyException>(py) {
        if let Some(slot) = failure {
            slot.borrow_mut().get_or_insert(err);
        }
        return VmError::new(harnvm_core::ErrorKind::Interrupted);
    }
    let type_name = err.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".to_string());
    let text = err.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    let message = if text.is_empty() { type_name } else { format!("{type_name}: {text}") };
    let mut shared = host.borrow_mut();
    if shared.errors.len() >= KEPT_HOST_ERRORS {
        shared.errors.remove(0);
    }
    shared.errors.push((message.clone(), err));
    VmError::thrown(Value::str(message))
}

/// The Python function behind `vm.register(name, fn)`, as a core host function.
fn host_fn(func: Py<PyAny>, host: Host, vm_id: u64, failure: Rc<RefCell<Option<Rc<RefCell<Option<PyErr>>>>>>) -> HostFn {
    Box::new(move |call, args: &[Value]| {
        Python::attach(|py| {
            let failure = failure.borrow().clone();
            let converted: PyResult<Vec<Bound<'_, PyAny>>> = args.iter().map(|v| convert::to_py(py, v, vm_id)).collect();
            let outcome = converted.and_then(|a| PyTuple::new(py, a)).and_then(|a| func.bind(py).call1(a));
            let obj = match outcome {
                Ok(obj) => obj,
                Err(e) => return Err(host_exception(py, e, &host, failure.as_ref())),
            };
            if obj.hasattr("__await__").unwrap_or(false) {
                host.borrow_mut().pending.push((call, obj.unbind()));
                return Ok(HostReply::Pending);
            }
            match convert::from_py(&obj, Some(vm_id)) {
                Ok(v) => Ok(HostReply::Ready(v)),
                Err(e) => Err(host_exception(py, e, &host, failure.as_ref())),
            }
        })
    })
}

/// A Harn virtual machine. Reusable: each `run` executes a program with the
/// options given here. Usable on the thread that created it; `interrupt` and
/// `interrupt_handle` work from any thread.
#[pyclass(module = "harnvm", name = "Vm", frozen)]
pub struct Vm {
    state: Pinned<RefCell<VmState>>,
    /// Registered host functions (kept to re-register after a core reset).
    hosts: Pinned<RefCell<Vec<(String, Py<PyAny>)>>>,
    host: Pinned<Host>,
    /// The failure slot of the run in progress, for host functions.
    run_failure: Pinned<Rc<RefCell<Option<Rc<RefCell<Option<PyErr>>>>>>>,
    interrupt: InterruptSlot,
    options: VmOptions,
    output: Option<Py<PyAny>>,
    time_limit: Option<f64>,
    /// A `harnvm._modules.ModuleResolver`: finds module sources.
    resolver: Py<PyAny>,
    virtual_clock: bool,
    /// Run the static checker before compiling source text.
    typecheck: bool,
}

/// What `_step` returns: `(done, value, new_calls, cancelled_calls, timer_seconds)`.
type StepTuple = (bool, Py<PyAny>, Vec<(u64, Py<PyAny>)>, Vec<u64>, Option<f64>);

#[pymethods]
impl Vm {
    #[new]
    #[pyo3(signature = (*, output = None, inline_caches = true, max_frames = 512, time_limit = None, module_paths = None, module_providers = None, clock = "real", typecheck = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        output: Option<Bound<'_, PyAny>>,
        inline_caches: bool,
        max_frames: i64,
        time_limit: Option<f64>,
        module_paths: Option<Bound<'_, PyAny>>,
        module_providers: Option<Bound<'_, PyAny>>,
        clock: &str,
        typecheck: bool,
    ) -> PyResult<Self> {
        let virtual_clock = match clock {
            "real" => false,
            "virtual" => true,
            other => return Err(PyValueError::new_err(format!("clock must be \"real\" or \"virtual\", got {other:?}"))),
        };
        let resolver = py.import("harnvm._modules")?.getattr("ModuleResolver")?.call1((module_paths, module_providers))?.unbind();
        if let Some(cb) = &output {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("output must be a callable taking one str, or None"));
            }
        }
        if max_frames < 1 {
            return Err(PyValueError::new_err(format!("max_frames must be at least 1, got {max_frames}")));
        }
        let time_limit_ms = match time_limit {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(((t * 1000.0).ceil() as u64).max(1)),
            Some(t) => {
                return Err(PyValueError::new_err(format!("time_limit must be a positive number of seconds or None, got {t}")))
            }
        };
        let options = VmOptions {
            max_frames: usize::try_from(max_frames).unwrap_or(usize::MAX),
            inline_caches,
            time_limit_ms,
            ..Default::default()
        };
        let mut core = errors::guard(py, || {
            let mut core = CoreVm::new(options.clone());
            core.set_virtual_clock(virtual_clock);
            Ok(core)
        })?;
        let interrupt = Arc::new(Mutex::new(core.interrupt_handle()));
        let output_slot = installed_output_slot(&mut core, output.as_ref().map(|o| o.clone().unbind()));
        Ok(Vm {
            state: Pinned::new(RefCell::new(VmState {
                core,
                id: next_vm_id(),
                host_modules: rustc_hash::FxHashMap::default(),
                run: None,
                output: output_slot,
            })),
            hosts: Pinned::new(RefCell::new(Vec::new())),
            host: Pinned::new(Rc::new(RefCell::new(HostShared::default()))),
            run_failure: Pinned::new(Rc::new(RefCell::new(None))),
            interrupt,
            options,
            output: output.map(Bound::unbind),
            time_limit,
            resolver,
            virtual_clock,
            typecheck,
        })
    }

    /// Runs a `Program` (or compiles and runs source text) and returns the
    /// entry pipeline's value converted to Python. Drives async host
    /// functions on a private event loop when there are any.
    #[pyo3(signature = (program, *, filename = "<string>"))]
    fn run(slf: &Bound<'_, Self>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        slf.get()._start(py, program, filename)?;
        drive_sync(slf)
    }

    /// `await vm.run_async(program)`: runs under the current asyncio loop;
    /// other Harn tasks and the loop keep running while Harn awaits Python.
    #[pyo3(signature = (program, *, filename = "<string>"))]
    fn run_async(slf: &Bound<'_, Self>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let driver = py.import("harnvm._driver")?;
        Ok(driver.getattr("run_async")?.call1((slf, program, filename))?.unbind())
    }

    /// Reads, compiles and runs a `.harn` file. Imports resolve relative to it.
    fn run_file(slf: &Bound<'_, Self>, path: PathBuf) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        slf.get().state()?;
        let source = read_source(py, &path)?;
        let program = Program::new(slf.get().compile_here(py, &source, &path.to_string_lossy())?);
        let program = Bound::new(py, program)?;
        slf.get()._start(py, program.as_any(), "<string>")?;
        drive_sync(slf)
    }

    /// Compiles source text with this Vm's module resolver (its
    /// `module_paths` and `module_providers`) and module cache.
    #[pyo3(signature = (source, filename = "<string>"))]
    fn compile(&self, py: Python<'_>, source: &str, filename: &str) -> PyResult<Program> {
        Ok(Program::new(self.compile_here(py, source, filename)?))
    }

    /// Calls the export `export_name` of the module `import_path` (an
    /// import path as Harn code writes it: `"std/semver"`, `"lib/x"`,
    /// resolved against the current directory and `module_paths`) with
    /// Python arguments converted straight to Harn values. The module is
    /// loaded and instantiated once per Vm; later calls reuse it.
    #[pyo3(signature = (import_path, export_name, /, *args))]
    fn call_export(
        &self,
        py: Python<'_>,
        import_path: &str,
        export_name: &str,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        let (module, memo, id) = self.host_module_memo(py, import_path)?;
        let export = find_export(py, &module, import_path, export_name)?;
        entry::check_arity(py, import_path, export, args.len())?;
        let slot = export.slot;
        let args = args.iter().map(|a| convert::from_py(&a, Some(id))).collect::<PyResult<Vec<_>>>()?;
        self.execute(py, move |core| match memo.try_borrow_mut() {
            Ok(mut memo) => core.call_export_memo(&module, slot, &mut memo, args),
            Err(_) => core.call_export_at(&module, slot, args),
        })
    }

    /// The typed crossing: `payload` (one JSON-compatible value) is passed
    /// as the export's single argument with JSON marshalling, and the result
    /// (JSON-marshalled back) is decoded into `result_type` (a dataclass,
    /// TypedDict, plain annotated class, or a type like `list[int]`).
    fn call_export_typed(
        &self,
        py: Python<'_>,
        import_path: &str,
        export_name: &str,
        payload: &Bound<'_, PyAny>,
        result_type: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let (module, memo, _) = self.host_module_memo(py, import_path)?;
        let export = find_export(py, &module, import_path, export_name)?;
        entry::check_arity(py, import_path, export, 1)?;
        let slot = export.slot;
        let arg = errors::guard(py, || entry::payload_to_value(payload))?;
        let (result, _) = self.execute_value(py, true, move |core| match memo.try_borrow_mut() {
            Ok(mut memo) => core.call_export_memo(&module, slot, &mut memo, vec![arg]),
            Err(_) => core.call_export_at(&module, slot, vec![arg]),
        })?;
        decode_typed(py, result, import_path, export_name, result_type)
    }

    /// A pre-resolved handle on export `export_name` of module `import_path`
    /// (loaded as by `call_export`): `handle(*args)` is `call_export` without
    /// the per-call module and export lookups, `handle.typed(payload, type)`
    /// is `call_export_typed`. Raises `HarnImportError` for an unknown export.
    ///
    /// `release_gil=False` keeps the GIL while the handle's calls run, which
    /// saves a few hundred nanoseconds per call; other Python threads then
    /// wait until each call returns (also through any Harn `sleep`), so use it
    /// only for short exports called often.
    #[pyo3(signature = (import_path, export_name, *, release_gil = true))]
    fn export(slf: &Bound<'_, Self>, import_path: &str, export_name: &str, release_gil: bool) -> PyResult<ExportHandle> {
        let py = slf.py();
        let (module, _) = slf.get().host_module(py, import_path)?;
        let export = find_export(py, &module, import_path, export_name)?.clone();
        Ok(ExportHandle::new(slf.clone().unbind(), import_path, module, export, release_gil))
    }

    /// Loads and instantiates the module `import_path` now (running its
    /// top-level `let`/`var`s), so the first `call_export` is warm.
    fn warm_module(&self, py: Python<'_>, import_path: &str) -> PyResult<()> {
        let (module, _) = self.host_module(py, import_path)?;
        self.execute(py, move |core| core.instantiate_module(&module).map(|_| Value::Nil))?;
        Ok(())
    }

    /// Whether this Vm holds an instance of the module `import_path`
    /// (loaded by `call_export`, `warm_module` or an `import` in a run).
    fn module_is_cached(&self, py: Python<'_>, import_path: &str) -> PyResult<bool> {
        let state = self.state()?.try_borrow().map_err(|_| already_running())?;
        if let Some(m) = state.host_modules.get(import_path) {
            return Ok(state.core.has_module_instance(&m.module));
        }
        let found = self.resolver.bind(py).call_method1("resolve", (import_path, HOST_IMPORTER))?;
        if found.is_none() {
            return Ok(false);
        }
        let (key, _source): (String, Bound<'_, PyAny>) = found.extract()?;
        Ok(state.core.is_module_cached(&key))
    }

    /// Calls a Harn function (a `HarnFunction` this Vm returned) with
    /// Python arguments and returns its result converted to Python.
    #[pyo3(signature = (function, /, *args))]
    fn call(slf: &Bound<'_, Self>, function: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        slf.get()._start_call(slf.py(), function, args)?;
        drive_sync(slf)
    }

    /// Makes a Python callable available to Harn code as `name(...)`. Plain
    /// functions run at once; a result that is awaitable (an `async def`)
    /// is awaited by the driver while other Harn tasks go on. A Python
    /// exception becomes a Harn error (`"<Type>: <message>"`) that `catch`
    /// can bind; uncaught, it is the `__cause__` of the `HarnRuntimeError`.
    fn register(&self, py: Python<'_>, name: &str, function: &Bound<'_, PyAny>) -> PyResult<()> {
        if !function.is_callable() {
            return Err(PyTypeError::new_err("register expects a callable"));
        }
        let mut state = self.state()?.try_borrow_mut().map_err(|_| already_running())?;
        let host = self.host.get().ok_or_else(|| wrong_thread("Vm"))?.clone();
        let failure = self.run_failure.get().ok_or_else(|| wrong_thread("Vm"))?.clone();
        let id = state.id;
        state.core.register_host(name, host_fn(function.clone().unbind(), host, id, failure));
        if let Some(hosts) = self.hosts.get() {
            hosts.borrow_mut().retain(|(n, _)| n != name);
            hosts.borrow_mut().push((name.to_string(), function.clone().unbind()));
        }
        let _ = py;
        Ok(())
    }

    /// Starts a run (driver API; `run`/`run_async` call it).
    #[pyo3(signature = (program, filename = "<string>"))]
    fn _start(&self, py: Python<'_>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<()> {
        self.state()?;
        let program = match program.cast::<PyString>() {
            Ok(s) => self.compile_here(py, s.to_str()?, filename)?,
            Err(_) => program_arg(py, program, filename)?,
        };
        self.begin_run(py, move |core| core.start(&program))
    }

    /// Starts a call of a Harn function as a run (driver API).
    fn _start_call(&self, py: Python<'_>, function: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        if !function.is_instance_of::<convert::HarnFunction>() {
            return Err(PyTypeError::new_err(format!("Vm.call expects a HarnFunction, got {}", function.get_type().name()?)));
        }
        let id = self.state()?.try_borrow().map(|s| s.id).map_err(|_| already_running())?;
        let closure = match &convert::from_py(function, Some(id))? {
            Value::Closure(c) => c.clone(),
            _ => return Err(PyTypeError::new_err("Vm.call can only call Harn closures, not builtins")),
        };
        let args = args.iter().map(|a| convert::from_py(&a, Some(id))).collect::<PyResult<Vec<_>>>()?;
        self.begin_run(py, move |core| core.start_call(Value::Closure(closure), args))
    }

    /// Runs Harn tasks (GIL released) until the run ends or every task
    /// waits (driver API). Returns `(done, value, new_calls, cancelled_calls,
    /// timer_seconds)`: awaitables to schedule by call id, call ids whose
    /// awaitables must be cancelled, and when to step again at the latest.
    fn _step(&self, py: Python<'_>) -> PyResult<StepTuple> {
        let mut state = self.state()?.try_borrow_mut().map_err(|_| already_running())?;
        if state.run.is_none() {
            return Err(PyRuntimeError::new_err("no run in progress on this harnvm.Vm"));
        }
        let task = AssertSend(&mut state.core);
        let outcome = py
            .detach(move || {
                let core = task.into_inner();
                AssertSend(catch_unwind(AssertUnwindSafe(|| core.step())))
            })
            .into_inner();
        let host = self.host.get().ok_or_else(|| wrong_thread("Vm"))?.clone();
        let new_calls = std::mem::take(&mut host.borrow_mut().pending);
        let step = match outcome {
            Ok(s) => s,
            Err(payload) => {
                self.reset_core(&mut state);
                return Err(errors::panic_error(py, &*payload));
            }
        };
        let cancelled = state.core.take_cancelled_host_calls();
        let failed = state.run.as_ref().and_then(|r| r.failure.borrow_mut().take());
        if let Some(e) = failed {
            state.core.abort_run();
            self.end_run(py, &mut state);
            close_awaitables(py, &new_calls);
            return Err(e);
        }
        match step {
            RunState::Waiting { timer_ms, .. } => Ok((false, py.None(), new_calls, cancelled, timer_ms.map(|ms| ms / 1000.0))),
            RunState::Done(result) => {
                close_awaitables(py, &new_calls);
                let late = self.end_run(py, &mut state);
                if let Some(e) = late {
                    return Err(e);
                }
                let id = state.id;
                drop(state);
                match result {
                    Ok(v) => {
                        let value = errors::guard(py, || convert::to_py(py, &v, id).map(Bound::unbind))?;
                        Ok((true, value, Vec::new(), cancelled, None))
                    }
                    Err(e) => {
                        let err = errors::vm_error(py, &e, id);
                        if let Some(text) = e.thrown_value().and_then(|v| v.as_str().map(str::to_string)) {
                            let cause = host.borrow_mut().errors.iter().rposition(|(m, _)| *m == text);
                            if let Some(i) = cause {
                                let (_, cause) = host.borrow_mut().errors.remove(i);
                                err.set_cause(py, Some(cause));
                            }
                        }
                        host.borrow_mut().errors.clear();
                        Err(err)
                    }
                }
            }
        }
    }

    /// Delivers the result of an awaited host call (driver API).
    fn _complete(&self, call: u64, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut state = self.state()?.try_borrow_mut().map_err(|_| already_running())?;
        let id = state.id;
        let result = match convert::from_py(value, Some(id)) {
            Ok(v) => Ok(v),
            Err(e) => {
                let host = self.host.get().ok_or_else(|| wrong_thread("Vm"))?.clone();
                Err(host_exception(value.py(), e, &host, None))
            }
        };
        state.core.complete_host_call(call, result);
        Ok(())
    }

    /// Delivers the exception an awaited host call raised (driver API).
    fn _fail(&self, call: u64, exception: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = exception.py();
        let mut state = self.state()?.try_borrow_mut().map_err(|_| already_running())?;
        let host = self.host.get().ok_or_else(|| wrong_thread("Vm"))?.clone();
        let err = PyErr::from_value(exception.clone());
        let failure = state.run.as_ref().map(|r| r.failure.clone());
        let verr = host_exception(py, err, &host, failure.as_ref());
        state.core.complete_host_call(call, Err(verr));
        Ok(())
    }

    /// Cancels every task of the run in progress (driver API).
    fn _abort(&self, py: Python<'_>) -> PyResult<Vec<u64>> {
        let Ok(mut state) = self.state()?.try_borrow_mut() else {
            return Ok(Vec::new());
        };
        state.core.abort_run();
        let cancelled = state.core.take_cancelled_host_calls();
        self.end_run(py, &mut state);
        Ok(cancelled)
    }

    /// Harn tasks of the current (or last) run that have not finished.
    #[getter]
    fn live_tasks(&self) -> PyResult<usize> {
        Ok(self.state()?.try_borrow().map(|s| s.core.live_tasks()).unwrap_or(0))
    }

    /// `"real"` or `"virtual"`.
    #[getter]
    fn clock(&self) -> &'static str {
        if self.virtual_clock {
            "virtual"
        } else {
            "real"
        }
    }

    /// The scheduler clock in seconds (virtual time on a virtual clock).
    #[getter]
    fn now(&self) -> PyResult<f64> {
        Ok(self.state()?.try_borrow().map(|s| s.core.clock_ms() / 1000.0).unwrap_or(0.0))
    }

    /// Stops the run in progress (from any thread); it raises `HarnInterruptedError`.
    fn interrupt(&self) {
        raise_interrupt(&self.interrupt);
    }

    /// A handle that can stop this Vm's run in progress from any thread.
    fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle { slot: self.interrupt.clone() }
    }

    // --- inline caches (`harnvm.internals`)

    /// The index of `chunk`'s inline-cache set on this Vm (made on first use).
    fn cache_set_index_for_chunk(&self, chunk: &Bound<'_, internals::InternalChunk>) -> PyResult<usize> {
        let mut state = self.borrow_state_mut()?;
        chunk.get().with(|c| state.core.ic.set_index_for_chunk(c, None))
    }

    /// Installs `entry` (an entry object, or None for empty) in slot `slot` of set `cache_set`.
    fn set_inline_cache_entry(&self, cache_set: usize, slot: usize, entry: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut state = self.borrow_state_mut()?;
        let id = state.id;
        internals::set_entry(&mut state.core.ic, id, cache_set, slot, entry)
    }

    /// The slot's adaptive-binary entry, or None if it holds another kind.
    fn peek_adaptive_binary_cache(&self, cache_set: usize, slot: usize) -> PyResult<Option<internals::AdaptiveBinaryCacheEntry>> {
        internals::peek_binary(&self.borrow_state_mut()?.core.ic, cache_set, slot)
    }

    /// The slot's property entry, or None if it holds another kind.
    fn peek_property_cache(&self, cache_set: usize, slot: usize) -> PyResult<Option<internals::PropertyCacheEntry>> {
        internals::peek_property(&self.borrow_state_mut()?.core.ic, cache_set, slot)
    }

    /// The slot's method entry, or None if it holds another kind.
    fn peek_method_cache(&self, cache_set: usize, slot: usize) -> PyResult<Option<internals::MethodCacheEntry>> {
        internals::peek_method(&self.borrow_state_mut()?.core.ic, cache_set, slot)
    }

    /// The slot's direct-call entry, or None if it holds another kind.
    fn peek_direct_call_cache(
        &self,
        py: Python<'_>,
        cache_set: usize,
        slot: usize,
    ) -> PyResult<Option<internals::DirectCallCacheEntry>> {
        let state = self.borrow_state_mut()?;
        internals::peek_direct_call(py, &state.core.ic, state.id, cache_set, slot)
    }

    /// Every inline-cache site of the functions this Vm has run: dicts with
    /// function, line, offset, op, set, slot, family, state, hits, misses.
    fn inline_cache_report<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        internals::report(py, &self.borrow_state_mut()?.core.ic)
    }

    /// The program's disassembly with each cache site's state on this Vm
    /// (run the program first; `python -m harnvm dis --ic`).
    #[pyo3(signature = (program, *, filename = "<string>"))]
    fn inline_cache_disassembly(&self, py: Python<'_>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<String> {
        let program = program_arg(py, program, filename)?;
        let state = self.borrow_state_mut()?;
        let ic = &state.core.ic;
        errors::guard(py, || {
            Ok(harnvm_core::bytecode::chunk::disassemble_annotated(
                &program.main,
                harnvm_core::builtins::builtin_name,
                &mut |proto, offset| ic.describe_site(proto, offset),
            ))
        })
    }

    /// The output callable given to the constructor (None: `sys.stdout`).
    #[getter]
    fn output(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.output.as_ref().map(|o| o.clone_ref(py))
    }
    #[getter]
    fn inline_caches(&self) -> bool {
        self.options.inline_caches
    }
    #[getter]
    fn max_frames(&self) -> usize {
        self.options.max_frames
    }
    /// Wall-clock limit per run, in seconds (None: unlimited).
    #[getter]
    fn time_limit(&self) -> Option<f64> {
        self.time_limit
    }

    fn __repr__(&self) -> String {
        let limit = match self.time_limit {
            Some(t) => format!("{t}"),
            None => "None".to_string(),
        };
        format!(
            "harnvm.Vm(max_frames={}, inline_caches={}, time_limit={}{})",
            self.options.max_frames,
            if self.options.inline_caches { "True" } else { "False" },
            limit,
            if self.virtual_clock { ", clock='virtual'" } else { "" }
        )
    }
}

/// Runs the synchronous driver (`harnvm._driver.run_sync`) on a started run.
fn drive_sync(slf: &Bound<'_, Vm>) -> PyResult<Py<PyAny>> {
    let py = slf.py();
    let driver = py.import("harnvm._driver")?;
    Ok(driver.getattr("run_sync")?.call1((slf,))?.unbind())
}

/// Closes coroutines that will never be awaited (the run ended first), so
/// Python does not warn about them.
fn close_awaitables(py: Python<'_>, calls: &[(u64, Py<PyAny>)]) {
    for (_, aw) in calls {
        let aw = aw.bind(py);
        if aw.hasattr("close").unwrap_or(false) {
            let _ = aw.call_method0("close");
        }
    }
}

fn already_running() -> PyErr {
    PyRuntimeError::new_err("this harnvm.Vm is already running (called from its own output callback?)")
}

/// A fresh `OutputSlot` (for the Vm's `configured` output callable) with
/// the forwarding sink installed on `core`.
fn installed_output_slot(core: &mut CoreVm, configured: Option<Py<PyAny>>) -> Rc<OutputSlot> {
    let slot = Rc::new(OutputSlot {
        configured,
        active: Cell::new(false),
        stdout_write: RefCell::new(None),
        failure: Rc::new(RefCell::new(None)),
    });
    let shared = slot.clone();
    let interrupt = core.interrupt_handle();
    core.set_output(Box::new(move |text: &str| {
        if !shared.active.get() || shared.failure.borrow().is_some() {
            return;
        }
        Python::attach(|py| {
            // Also give Python's signal handlers a chance to run (Ctrl-C →
            // KeyboardInterrupt), which they otherwise only get between
            // bytecodes: a printing program stays interruptible.
            let delivered = shared.target(py).and_then(|target| match target {
                Some(target) => target.call1(py, (text,)).and_then(|_| py.check_signals()),
                None => Ok(()),
            });
            if let Err(e) = delivered {
                *shared.failure.borrow_mut() = Some(e);
                interrupt.store(true, AtomicOrdering::Relaxed);
            }
        });
    }));
    slot
}

/// JSON-marshals a typed crossing's result and decodes it into `result_type`
/// (`harnvm._typed.decode_result`).
pub(crate) fn decode_typed(
    py: Python<'_>,
    result: Value,
    import_path: &str,
    export_name: &str,
    result_type: &Bound<'_, PyAny>,
) -> PyResult<Py<PyAny>> {
    let json = errors::guard(py, || entry::value_to_json(py, &result))?;
    drop(result);
    let label = format!("{import_path}.{export_name}");
    DECODE_RESULT.import(py, "harnvm._typed", "decode_result")?.call1((json, result_type, label)).map(Bound::unbind)
}

/// The export `export_name` of `module`, or `HarnImportError` listing the exports.
fn find_export<'m>(
    py: Python<'_>,
    module: &'m CompiledModule,
    import_path: &str,
    export_name: &str,
) -> PyResult<&'m harnvm_core::compile::modules::Export> {
    match module.export(export_name) {
        Some(e) => Ok(e),
        None => {
            let names: Vec<&str> = module.exports().iter().map(|e| e.name.as_str()).collect();
            Err(errors::import(
                py,
                import_path,
                Some(export_name),
                format!("module '{import_path}' has no export '{export_name}' (exports: {})", names.join(", ")),
            ))
        }
    }
}

/// What host import paths are resolved relative to (the current directory).
const HOST_IMPORTER: &str = "<host>";

impl Vm {
    fn state(&self) -> PyResult<&RefCell<VmState>> {
        self.state.get().ok_or_else(|| wrong_thread("Vm"))
    }

    /// The id of this Vm's current module state (changes when a panic resets it).
    pub(crate) fn current_id(&self) -> PyResult<u64> {
        Ok(self.state()?.try_borrow().map_err(|_| already_running())?.id)
    }

    /// Compiles with this Vm's resolver and module cache.
    fn compile_here(&self, py: Python<'_>, source: &str, filename: &str) -> PyResult<Rc<harnvm_core::Program>> {
        self.state()?.try_borrow().map_err(|_| already_running())?;
        if self.typecheck {
            let hosts = self.hosts.get().map(|h| h.borrow().iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
            crate::check::gate(py, source, filename, hosts)?;
        }
        let resolver = self.resolver.bind(py).clone();
        with_module_cache(|cache| compile_with(py, source, filename, resolver, cache))
    }

    /// The compiled module for a host import path (memoized per Vm), and this Vm's id.
    fn host_module(&self, py: Python<'_>, import_path: &str) -> PyResult<(Rc<CompiledModule>, u64)> {
        let (module, _, id) = self.host_module_memo(py, import_path)?;
        Ok((module, id))
    }

    /// `host_module`, with the module's instance memo.
    #[allow(clippy::type_complexity)]
    fn host_module_memo(
        &self,
        py: Python<'_>,
        import_path: &str,
    ) -> PyResult<(Rc<CompiledModule>, Rc<RefCell<harnvm_core::vm::ExportMemo>>, u64)> {
        let mut state = self.state()?.try_borrow_mut().map_err(|_| already_running())?;
        if let Some(m) = state.host_modules.get(import_path) {
            return Ok((m.module.clone(), m.memo.clone(), state.id));
        }
        let mut loader = PyLoader::new(self.resolver.bind(py).clone());
        let loaded = with_module_cache(|cache| {
            errors::guard(py, || Ok(harnvm_core::load_module(import_path, HOST_IMPORTER, &mut loader, cache)))
        })?;
        let module = loaded.map_err(|e| {
            let err = errors::vm_error(py, &e, 0);
            loader.with_cause(py, err)
        })?;
        let memo = Rc::new(RefCell::new(harnvm_core::vm::ExportMemo::default()));
        let entry = HostModule { module: module.clone(), memo: memo.clone() };
        state.host_modules.insert(import_path.to_string(), entry);
        Ok((module, memo, state.id))
    }

    fn borrow_state_mut(&self) -> PyResult<std::cell::RefMut<'_, VmState>> {
        self.state()?.try_borrow_mut().map_err(|_| already_running())
    }

    /// Routes output to the sink and sets up a run with `start`.
    fn begin_run(&self, py: Python<'_>, start: impl FnOnce(&mut CoreVm)) -> PyResult<()> {
        let mut state = self.state()?.try_borrow_mut().map_err(|_| already_running())?;
        if state.run.is_some() {
            // Called from a host function while this Vm's run is in progress.
            return Err(already_running());
        }
        state.output.open();
        let failure = state.output.failure.clone();
        if let Some(f) = self.run_failure.get() {
            *f.borrow_mut() = Some(failure.clone());
        }
        state.run = Some(RunCtx { failure });
        errors::guard(py, || {
            start(&mut state.core);
            Ok(())
        })
    }

    /// Ends the run: drops the sink, flushes buffered output. Returns the
    /// exception the output callable raised, if any.
    fn end_run(&self, py: Python<'_>, state: &mut VmState) -> Option<PyErr> {
        if let Some(f) = self.run_failure.get() {
            *f.borrow_mut() = None;
        }
        let Some(run) = state.run.take() else {
            state.output.close();
            return None;
        };
        let failed = run.failure.borrow_mut().take();
        let outcome = match failed {
            Some(e) => Some(e),
            None => {
                let rest = state.core.take_output();
                state.output.deliver_rest(py, rest).err()
            }
        };
        state.output.close();
        outcome
    }

    /// The VM state after a panic is unknown: start over with a fresh one
    /// (and a new id, so old handles are refused); host functions stay.
    fn reset_core(&self, state: &mut VmState) {
        state.core = CoreVm::new(self.options.clone());
        let configured = Python::attach(|py| self.output.as_ref().map(|o| o.clone_ref(py)));
        state.output = installed_output_slot(&mut state.core, configured);
        state.core.set_virtual_clock(self.virtual_clock);
        state.id = next_vm_id();
        state.run = None;
        if let Ok(mut flag) = self.interrupt.lock() {
            *flag = state.core.interrupt_handle();
        }
        if let (Some(hosts), Some(host), Some(failure)) = (self.hosts.get(), self.host.get(), self.run_failure.get()) {
            for (name, f) in hosts.borrow().iter() {
                let f = Python::attach(|py| f.clone_ref(py));
                state.core.register_host(name, host_fn(f, host.clone(), state.id, failure.clone()));
            }
        }
    }

    /// Runs `work` on the core VM with the GIL released, output routed to
    /// the sink, panics caught, and the result converted to Python.
    pub(crate) fn execute(&self, py: Python<'_>, work: impl FnOnce(&mut CoreVm) -> VmResult<Value>) -> PyResult<Py<PyAny>> {
        self.execute_with(py, true, work)
    }

    /// `execute`, keeping the GIL for the call when `release_gil` is false
    /// (`Vm.export(..., release_gil=False)`).
    pub(crate) fn execute_with(
        &self,
        py: Python<'_>,
        release_gil: bool,
        work: impl FnOnce(&mut CoreVm) -> VmResult<Value>,
    ) -> PyResult<Py<PyAny>> {
        let (v, id) = self.execute_value(py, release_gil, work)?;
        if let Value::Nil = v {
            return Ok(py.None());
        }
        errors::guard(py, || convert::to_py(py, &v, id).map(Bound::unbind))
    }

    /// `execute_with` without the final conversion: the Harn value and the Vm id.
    pub(crate) fn execute_value(
        &self,
        py: Python<'_>,
        release_gil: bool,
        work: impl FnOnce(&mut CoreVm) -> VmResult<Value>,
    ) -> PyResult<(Value, u64)> {
        let mut state = self.state()?.try_borrow_mut().map_err(|_| already_running())?;
        if state.run.is_some() {
            // Called from a host function while this Vm's run is in progress.
            return Err(already_running());
        }
        let VmState { core, output, .. } = &mut *state;
        output.open();
        let outcome = if release_gil {
            let task = AssertSend((&mut *core, work));
            py.detach(move || {
                let (core, work) = task.into_inner();
                AssertSend(catch_unwind(AssertUnwindSafe(|| work(core))))
            })
            .into_inner()
        } else {
            // Releasing and re-taking the GIL is a large part of a short
            // crossing; a caller that opted out keeps it (the output sink and
            // host functions attach as usual: they find it held).
            catch_unwind(AssertUnwindSafe(|| work(&mut *core)))
        };
        let result = match outcome {
            Ok(r) => r,
            Err(payload) => {
                output.close();
                // The VM state after a panic is unknown: start over with a
                // fresh one (and a new id, so old handles are refused).
                self.reset_core(&mut state);
                return Err(errors::panic_error(py, &*payload));
            }
        };
        let delivered = match output.take_failure() {
            Some(e) => Err(e),
            // Output the core still buffers (e.g. after `call_closure`, which
            // does not flush at the end the way `run` does).
            None if core.has_output() => output.deliver_rest(py, core.take_output()),
            None => Ok(()),
        };
        output.close();
        delivered?;
        let id = state.id;
        drop(state);
        match result {
            Ok(v) => Ok((v, id)),
            Err(e) => Err(errors::vm_error(py, &e, id)),
        }
    }
}
