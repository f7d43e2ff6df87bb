//! The `Vm` class: its options, host functions, module crossings and the
//! entry points that run Harn code.
//!
//! A VM is a web of `Rc`s (values, caches, module instances), so it is not
//! `Send`: its state sits in a `Pinned` (see `pinned.rs`), so use from
//! another thread raises an ordinary `RuntimeError` and a drop on another
//! thread leaks instead of racing.
//!
//! Running releases the GIL while Harn code runs, so other Python threads
//! keep going, and re-attaches only to deliver output, call registered host
//! functions and await their awaitables. Every blocking entry point goes
//! through `Vm::execute` (see `driver.rs`); `run_async` is driven from
//! `harnvm._driver` with `_start`/`_step`/`_complete`/`_fail`/`_abort`.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use harnvm_core::compile::check::CheckOptions;
use harnvm_core::runtime::deep::grow_large;
use harnvm_core::vm::RunState;
use harnvm_core::{CompiledModule, Value, Vm as CoreVm, VmOptions, VmResult};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple};

use crate::driver::{AssertSend, BlockingWait, RunFailure, SharedWait};
use crate::entry::{self, PyLoader};
use crate::export::ExportHandle;
use crate::host::{chain_cause, close_awaitables, host_exception, host_fn, Host};
use crate::interrupt::{raise_interrupt, InterruptHandle, InterruptSlot};
use crate::output::OutputSlot;
use crate::pinned::{wrong_thread, Pinned};
use crate::program::{compile_with, program_arg, read_source, with_module_cache, Program};
use crate::{convert, errors};

static NEXT_VM_ID: AtomicU64 = AtomicU64::new(1);

/// `harnvm._typed.decode_result`, imported once.
static DECODE_RESULT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn next_vm_id() -> u64 {
    NEXT_VM_ID.fetch_add(1, AtomicOrdering::Relaxed)
}

struct VmState {
    core: CoreVm,
    /// Shared with the sink closure installed on `core` (see `OutputSlot`).
    output: Rc<OutputSlot>,
    /// Shared with the waiter installed on `core` (see `BlockingWait`).
    wait: SharedWait,
    /// Identifies this VM's module state, so function handles are only
    /// called (or passed back) on the VM that made them.
    id: u64,
    /// Host import paths (`call_export`, `warm_module`) → their compiled
    /// module: a warm crossing never touches the file system.
    host_modules: rustc_hash::FxHashMap<String, HostModule>,
    /// A `run_async` run is in progress (between `_start` and its end).
    async_run: bool,
}

/// A module loaded for host calls, with where its instance lives in the
/// core VM (`ExportMemo`, shared by every by-name call of its exports).
struct HostModule {
    module: Rc<CompiledModule>,
    memo: Rc<RefCell<harnvm_core::vm::ExportMemo>>,
}

/// A registered host function: its Harn name and the Python callable.
type HostEntry = (String, Py<PyAny>);

/// A Harn virtual machine. Reusable: each `run` executes a program with the
/// options given here. Usable on the thread that created it; `interrupt` and
/// `interrupt_handle` work from any thread.
#[pyclass(module = "harnvm", name = "Vm", frozen, weakref)]
pub struct Vm {
    state: Pinned<RefCell<VmState>>,
    /// Registered host functions (kept to re-register after a core reset).
    hosts: Pinned<RefCell<Vec<HostEntry>>>,
    host: Pinned<Host>,
    /// The Python exception that ends the run in progress, shared by the
    /// output sink, host functions and the waiter.
    failure: Pinned<RunFailure>,
    interrupt: InterruptSlot,
    options: VmOptions,
    output: Option<Py<PyAny>>,
    time_limit: Option<f64>,
    /// A `harnvm._modules.ModuleResolver`: finds module sources.
    resolver: Py<PyAny>,
    virtual_clock: bool,
    /// Run the static checker before compiling source text.
    typecheck: bool,
    /// Made on the main thread: runs check Python's signals (Ctrl-C).
    on_main: bool,
}

/// How long `run_async` runs Harn code before the event loop gets a turn.
const ASYNC_SLICE: std::time::Duration = std::time::Duration::from_millis(5);

/// `Vm()`'s time limit per run, in seconds.
const DEFAULT_TIME_LIMIT: Option<f64> = Some(30.0);
/// `Vm()`'s memory budget per run: 512 MiB of heap growth.
const DEFAULT_MAX_MEMORY: Option<i64> = Some(512 << 20);
/// `Vm()`'s output budget per run: 64 MiB.
const DEFAULT_MAX_OUTPUT: Option<i64> = Some(64 << 20);

fn is_main_thread(py: Python<'_>) -> PyResult<bool> {
    let threading = py.import("threading")?;
    Ok(threading.call_method0("current_thread")?.is(&threading.call_method0("main_thread")?))
}

/// Makes the core's poll points look at Python's pending signals (at most
/// every few ms): a `KeyboardInterrupt` from the SIGINT handler stops the
/// run and is re-raised as is when it ends.
fn install_signal_check(core: &mut CoreVm, failure: RunFailure) {
    core.set_host_check(Rc::new(move || {
        Python::attach(|py| match py.check_signals() {
            Ok(()) => Ok(()),
            Err(e) => {
                failure.record(e);
                Err(harnvm_core::VmError::new(harnvm_core::ErrorKind::Interrupted))
            }
        })
    }));
}

/// What `_step` returns: `(done, value, new_calls, cancelled_calls, timer_seconds)`.
type StepTuple = (bool, Py<PyAny>, Vec<(u64, Py<PyAny>)>, Vec<u64>, Option<f64>);

#[pymethods]
impl Vm {
    #[new]
    #[pyo3(signature = (*, output = None, inline_caches = true, max_frames = 512, time_limit = DEFAULT_TIME_LIMIT, module_paths = None, module_providers = None, clock = "real", typecheck = true, max_memory = DEFAULT_MAX_MEMORY, max_instructions = None, max_output = DEFAULT_MAX_OUTPUT, seed = None, allow_file_imports = true))]
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
        max_memory: Option<i64>,
        max_instructions: Option<i64>,
        max_output: Option<i64>,
        seed: Option<u64>,
        allow_file_imports: bool,
    ) -> PyResult<Self> {
        let virtual_clock = match clock {
            "real" => false,
            "virtual" => true,
            other => return Err(PyValueError::new_err(format!("clock must be \"real\" or \"virtual\", got {other:?}"))),
        };
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("allow_files", allow_file_imports)?;
        let resolver = py
            .import("harnvm._modules")?
            .getattr("ModuleResolver")?
            .call((module_paths, module_providers), Some(&kwargs))?
            .unbind();
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
        let budget = |name: &str, v: Option<i64>| -> PyResult<Option<u64>> {
            match v {
                None => Ok(None),
                Some(n) if n >= 0 => Ok(Some(n as u64)),
                Some(n) => Err(PyValueError::new_err(format!("{name} must be a non-negative integer or None, got {n}"))),
            }
        };
        let options = VmOptions {
            max_frames: usize::try_from(max_frames).unwrap_or(usize::MAX),
            inline_caches,
            time_limit_ms,
            max_memory: budget("max_memory", max_memory)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_instructions: budget("max_instructions", max_instructions)?,
            max_output: budget("max_output", max_output)?,
            seed,
            ..Default::default()
        };
        let mut core = errors::guard(py, || {
            let mut core = CoreVm::new(options.clone());
            core.set_virtual_clock(virtual_clock);
            Ok(core)
        })?;
        let interrupt = Arc::new(Mutex::new(core.interrupt_handle()));
        let failure = RunFailure::default();
        let host = Host::default();
        let id = next_vm_id();
        let output_slot = OutputSlot::install(&mut core, output.as_ref().map(|o| o.clone().unbind()), failure.clone());
        let wait = BlockingWait::install(&mut core, host.clone(), failure.clone(), id);
        let on_main = is_main_thread(py)?;
        if on_main {
            install_signal_check(&mut core, failure.clone());
        }
        Ok(Vm {
            state: Pinned::new(RefCell::new(VmState {
                core,
                id,
                host_modules: rustc_hash::FxHashMap::default(),
                async_run: false,
                output: output_slot,
                wait,
            })),
            hosts: Pinned::new(RefCell::new(Vec::new())),
            host: Pinned::new(host),
            failure: Pinned::new(failure),
            interrupt,
            options,
            output: output.map(Bound::unbind),
            time_limit,
            resolver,
            virtual_clock,
            typecheck,
            on_main,
        })
    }

    /// Runs a `Program` (or compiles and runs source text) and returns the
    /// entry pipeline's value converted to Python. Drives async host
    /// functions on a private event loop when there are any. `inputs` (a
    /// dict with str keys) binds the entry pipeline's parameters by name and
    /// is what the program's `run_inputs()` returns.
    #[pyo3(signature = (program, *, filename = "<string>", inputs = None))]
    fn run(
        slf: &Bound<'_, Self>,
        program: &Bound<'_, PyAny>,
        filename: &str,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let (py, this) = (slf.py(), Vm::remember(slf)?);
        let started = std::time::Instant::now();
        let program = this.program_here(py, program, filename)?;
        this.run_compiled(py, program, started.elapsed(), inputs)
    }

    /// `await vm.run_async(program)`: runs under the current asyncio loop;
    /// other Harn tasks and the loop keep running while Harn awaits Python.
    #[pyo3(signature = (program, *, filename = "<string>", inputs = None))]
    fn run_async(
        slf: &Bound<'_, Self>,
        program: &Bound<'_, PyAny>,
        filename: &str,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let driver = py.import("harnvm._driver")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("inputs", inputs)?;
        Ok(driver.getattr("run_async")?.call((slf, program, filename), Some(&kwargs))?.unbind())
    }

    /// Reads, compiles and runs a `.harn` file. Imports resolve relative to
    /// it. `inputs` as for `run`.
    #[pyo3(signature = (path, *, inputs = None))]
    fn run_file(slf: &Bound<'_, Self>, path: PathBuf, inputs: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let (py, this) = (slf.py(), Vm::remember(slf)?);
        this.state()?;
        let started = std::time::Instant::now();
        let source = read_source(py, &path)?;
        let program = this.compile_here(py, &source, &path.to_string_lossy())?;
        this.run_compiled(py, program, started.elapsed(), inputs)
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
        slf: &Bound<'_, Self>,
        import_path: &str,
        export_name: &str,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        let (py, this) = (slf.py(), Vm::remember(slf)?);
        let (module, memo, id) = this.host_module_memo(py, import_path)?;
        let export = find_export(py, &module, import_path, export_name)?;
        entry::check_arity(py, import_path, export, args.len())?;
        let slot = export.slot;
        let args = args.iter().map(|a| convert::from_py(&a, Some(id))).collect::<PyResult<Vec<_>>>()?;
        this.execute(py, move |core| match memo.try_borrow_mut() {
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
    /// `function(*args)` is the same call.
    #[pyo3(signature = (function, /, *args))]
    fn call(slf: &Bound<'_, Self>, function: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let (py, this) = (slf.py(), Vm::remember(slf)?);
        this.call_handle(py, function, args)
    }

    /// Makes a Python callable available to Harn code as `name(...)`. Plain
    /// functions run at once; a result that is awaitable (an `async def`)
    /// is awaited by the driver while other Harn tasks go on. A Python
    /// exception becomes a Harn error (`"<Type>: <message>"`) that `catch`
    /// can bind; uncaught, it is the `__cause__` of the `HarnRuntimeError`.
    ///
    /// The name of a Harn builtin (`len`, `println`, ...) is refused with
    /// `ValueError`: Harn resolves builtins before host functions, so such a
    /// registration could never be called.
    fn register(&self, py: Python<'_>, name: &str, function: &Bound<'_, PyAny>) -> PyResult<()> {
        if !function.is_callable() {
            return Err(PyTypeError::new_err("register expects a callable"));
        }
        if harnvm_core::builtins::builtin_id(name).is_some() {
            return Err(PyValueError::new_err(format!(
                "cannot register {name:?}: it is the name of a Harn builtin, which Harn code would keep calling; \
                 register the function under another name"
            )));
        }
        let mut state = self.state()?.try_borrow_mut().map_err(|_| already_running())?;
        let host = self.host.get().ok_or_else(|| wrong_thread("Vm"))?.clone();
        let failure = self.failure.get().ok_or_else(|| wrong_thread("Vm"))?.clone();
        let id = state.id;
        state.core.register_host(name, host_fn(function.clone().unbind(), host, id, failure));
        if let Some(hosts) = self.hosts.get() {
            hosts.borrow_mut().retain(|(n, _)| n != name);
            hosts.borrow_mut().push((name.to_string(), function.clone().unbind()));
        }
        let _ = py;
        Ok(())
    }

    /// Starts a `run_async` run (driver API).
    #[pyo3(signature = (program, filename = "<string>", inputs = None))]
    fn _start(
        slf: &Bound<'_, Self>,
        program: &Bound<'_, PyAny>,
        filename: &str,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let (py, this) = (slf.py(), Vm::remember(slf)?);
        let program = this.program_here(py, program, filename)?;
        let inputs = this.inputs_value(inputs)?;
        this.begin_async_run(py, move |core| {
            core.set_run_inputs(inputs);
            core.start(&program)
        })
    }

    /// Starts a call of a Harn function as a `run_async` run (driver API).
    fn _start_call(slf: &Bound<'_, Self>, function: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let (py, this) = (slf.py(), Vm::remember(slf)?);
        let (closure, args) = this.call_args(function, args)?;
        this.begin_async_run(py, move |core| core.start_call(Value::Closure(closure), args))
    }

    /// Runs Harn tasks (GIL released) until the run ends or every task
    /// waits (driver API). Returns `(done, value, new_calls, cancelled_calls,
    /// timer_seconds)`: awaitables to schedule by call id, call ids whose
    /// awaitables must be cancelled, and when to step again at the latest.
    fn _step(&self, py: Python<'_>) -> PyResult<StepTuple> {
        let mut state = self.borrow_state_mut()?;
        if !state.async_run {
            return Err(PyRuntimeError::new_err("no run in progress on this harnvm.Vm"));
        }
        let task = AssertSend(&mut state.core);
        let outcome = py
            .detach(move || {
                let core = task.into_inner();
                // Sliced, so the asyncio loop gets a turn every few ms even
                // while a Harn task computes (`asyncio.wait_for` can stop it).
                AssertSend(grow_large(|| catch_unwind(AssertUnwindSafe(|| core.step_sliced(ASYNC_SLICE)))))
            })
            .into_inner();
        let host = self.host()?;
        let new_calls = std::mem::take(&mut host.borrow_mut().pending);
        let step = match outcome {
            Ok(s) => s,
            Err(payload) => {
                self.reset_core(&mut state);
                return Err(errors::panic_error(py, &*payload));
            }
        };
        let cancelled = state.core.take_cancelled_host_calls();
        if let Some(e) = state.output.failure.take() {
            state.core.abort_run();
            self.end_async_run(py, &mut state);
            close_awaitables(py, &new_calls);
            return Err(e);
        }
        match step {
            RunState::Waiting { timer_ms, .. } => Ok((false, py.None(), new_calls, cancelled, timer_ms.map(|ms| ms / 1000.0))),
            RunState::Done(result) => {
                close_awaitables(py, &new_calls);
                if let Some(e) = self.end_async_run(py, &mut state) {
                    return Err(e);
                }
                let id = state.id;
                drop(state);
                let value = self.finish_value(py, &host, result, id)?;
                Ok((true, value, Vec::new(), cancelled, None))
            }
        }
    }

    /// Delivers the result of an awaited host call (driver API).
    fn _complete(&self, call: u64, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut state = self.borrow_state_mut()?;
        let id = state.id;
        let result = match convert::from_py(value, Some(id)) {
            Ok(v) => Ok(v),
            Err(e) => Err(host_exception(value.py(), e, &self.host()?, &state.output.failure)),
        };
        state.core.complete_host_call(call, result);
        Ok(())
    }

    /// Delivers the exception an awaited host call raised (driver API).
    fn _fail(&self, call: u64, exception: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut state = self.borrow_state_mut()?;
        let err = PyErr::from_value(exception.clone());
        let verr = host_exception(exception.py(), err, &self.host()?, &state.output.failure);
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
        self.end_async_run(py, &mut state);
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
    /// Heap growth allowed per run, in bytes (None: unlimited).
    #[getter]
    fn max_memory(&self) -> Option<usize> {
        self.options.max_memory
    }
    /// Steps (calls and loop iterations) allowed per run (None: unlimited).
    #[getter]
    fn max_instructions(&self) -> Option<u64> {
        self.options.max_instructions
    }
    /// Output bytes allowed per run (None: unlimited).
    #[getter]
    fn max_output(&self) -> Option<u64> {
        self.options.max_output
    }
    /// Steps of `max_instructions` the last run used (counted only when
    /// `max_instructions` is set; 0 otherwise).
    #[getter]
    fn instructions_used(&self) -> PyResult<u64> {
        Ok(self
            .state()?
            .try_borrow()
            .map(|s| if self.options.max_instructions.is_some() { s.core.instructions_used() } else { 0 })
            .unwrap_or(0))
    }

    fn __repr__(&self) -> String {
        let limit = match self.time_limit {
            Some(t) => format!("{t:?}"),
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

fn already_running() -> PyErr {
    PyRuntimeError::new_err("this harnvm.Vm is already running (called from its own output callback?)")
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

thread_local! {
    /// Vm id → the Vm (weakly), for `HarnFunction.__call__`: a function
    /// handle knows the id of the Vm that made it, and each entry point that
    /// can hand out handles records its Vm here. Vms are thread-bound, so one
    /// table per thread.
    static LIVE_VMS: RefCell<rustc_hash::FxHashMap<u64, Py<pyo3::types::PyWeakrefReference>>> = RefCell::default();
}

impl Vm {
    /// Records `slf` as the Vm behind its current id (see `LIVE_VMS`).
    pub(crate) fn remember<'a>(slf: &'a Bound<'_, Self>) -> PyResult<&'a Vm> {
        let this = slf.get();
        let id = this.current_id()?;
        let known = LIVE_VMS.with(|m| m.borrow().contains_key(&id));
        if !known {
            let weak = pyo3::types::PyWeakrefReference::new(slf)?.unbind();
            LIVE_VMS.with(|m| {
                let mut m = m.borrow_mut();
                // Forget the Vms that are gone.
                m.retain(|_, w| w.bind(slf.py()).upgrade().is_some());
                m.insert(id, weak);
            });
        }
        Ok(this)
    }

    /// The live Vm whose current id is `id`, if any.
    pub(crate) fn find(py: Python<'_>, id: u64) -> Option<Bound<'_, Vm>> {
        let weak = LIVE_VMS.with(|m| m.borrow().get(&id).map(|w| w.clone_ref(py)))?;
        weak.bind(py).upgrade()?.cast_into::<Vm>().ok()
    }

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
        let check = self.typecheck.then(|| {
            let hosts = self.hosts.get().map(|h| h.borrow().iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default();
            CheckOptions { extra_names: hosts }
        });
        let resolver = self.resolver.bind(py).clone();
        with_module_cache(|cache| compile_with(py, source, filename, resolver, cache, check))
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

    /// Runs `f` on this Vm's inline caches and id (`harnvm.internals`).
    pub(crate) fn with_caches<R>(
        &self,
        f: impl FnOnce(&mut harnvm_core::vm::ic::InlineCaches, u64) -> PyResult<R>,
    ) -> PyResult<R> {
        let mut state = self.borrow_state_mut()?;
        let id = state.id;
        f(&mut state.core.ic, id)
    }

    /// The timer waits (ms) the blocking driver was handed since the last
    /// call (`harnvm.internals.take_timer_waits`).
    pub(crate) fn take_timer_waits(&self) -> PyResult<Vec<f64>> {
        let state = self.borrow_state_mut()?;
        let waits = state.wait.borrow_mut().take_timer_waits();
        Ok(waits)
    }

    fn host(&self) -> PyResult<Host> {
        Ok(self.host.get().ok_or_else(|| wrong_thread("Vm"))?.clone())
    }

    /// The program to run: source text is compiled with this Vm's resolver.
    fn program_here(&self, py: Python<'_>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<Rc<harnvm_core::Program>> {
        self.state()?;
        match program.cast::<PyString>() {
            Ok(s) => self.compile_here(py, s.to_str()?, filename),
            Err(_) => program_arg(py, program, filename),
        }
    }

    /// The Harn dict of a run's `inputs=` (None: no inputs).
    /// Runs `program` with `inputs` bound; `compiling` (the time spent
    /// reading and compiling it) counts against the run's time limit.
    fn run_compiled(
        &self,
        py: Python<'_>,
        program: Rc<harnvm_core::Program>,
        compiling: std::time::Duration,
        inputs: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let inputs = self.inputs_value(inputs)?;
        self.execute(py, move |core| {
            core.charge_time_before_run(compiling);
            core.set_run_inputs(inputs);
            core.run(&program)
        })
    }

    fn inputs_value(&self, inputs: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
        let Some(inputs) = inputs.filter(|i| !i.is_none()) else { return Ok(Value::Nil) };
        if !inputs.is_instance_of::<pyo3::types::PyDict>() {
            return Err(PyTypeError::new_err(format!(
                "inputs must be a dict of input names to values, got {}",
                inputs.get_type().name()?
            )));
        }
        convert::from_py(inputs, Some(self.current_id()?))
    }

    /// `Vm.call(function, *args)` (also `function(*args)`).
    pub(crate) fn call_handle(
        &self,
        py: Python<'_>,
        function: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        let (closure, args) = self.call_args(function, args)?;
        self.execute(py, move |core| core.call_closure(closure, args))
    }

    /// The closure and arguments of `Vm.call(function, *args)`.
    fn call_args(
        &self,
        function: &Bound<'_, PyAny>,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<(Rc<harnvm_core::runtime::value::Closure>, Vec<Value>)> {
        let Ok(handle) = function.cast::<convert::HarnFunction>() else {
            return Err(PyTypeError::new_err(format!("Vm.call expects a HarnFunction, got {}", function.get_type().name()?)));
        };
        let id = self.current_id()?;
        // Straight to the handle's value: no trip through the general conversion.
        let closure = match &convert::function_value(function.py(), handle.get(), id)? {
            Value::Closure(c) => c.clone(),
            _ => return Err(PyTypeError::new_err("Vm.call can only call Harn closures, not builtins")),
        };
        let args = args.iter().map(|a| convert::from_py(&a, Some(id))).collect::<PyResult<Vec<_>>>()?;
        Ok((closure, args))
    }

    /// Routes output to the sink and sets up a `run_async` run with `start`.
    fn begin_async_run(&self, py: Python<'_>, start: impl FnOnce(&mut CoreVm)) -> PyResult<()> {
        let mut state = self.borrow_state_mut()?;
        if state.async_run {
            // Called from a host function while this Vm's run is in progress.
            return Err(already_running());
        }
        state.output.open();
        state.async_run = true;
        errors::guard(py, || {
            start(&mut state.core);
            Ok(())
        })
    }

    /// Ends a `run_async` run: drops the sink, flushes buffered output.
    /// Returns the exception the output callable raised, if any.
    fn end_async_run(&self, py: Python<'_>, state: &mut VmState) -> Option<PyErr> {
        if !std::mem::take(&mut state.async_run) {
            state.output.close();
            return None;
        }
        let outcome = match state.output.failure.take() {
            Some(e) => Some(e),
            None => {
                let rest = state.core.take_output();
                state.output.deliver_rest(py, rest).err()
            }
        };
        state.output.close();
        outcome
    }

    /// A finished run's result as Python: its value, or its error with the
    /// host function's exception as `__cause__`.
    fn finish_value(&self, py: Python<'_>, host: &Host, result: VmResult<Value>, id: u64) -> PyResult<Py<PyAny>> {
        match result {
            Ok(Value::Nil) => Ok(py.None()),
            Ok(v) => errors::guard(py, || convert::to_py(py, &v, id).map(Bound::unbind)),
            Err(e) => {
                let err = errors::vm_error(py, &e, id);
                chain_cause(py, host, &e, &err);
                Err(err)
            }
        }
    }

    /// The VM state after a panic is unknown: start over with a fresh one
    /// (and a new id, so old handles are refused); host functions stay.
    fn reset_core(&self, state: &mut VmState) {
        let (Some(hosts), Some(host), Some(failure)) = (self.hosts.get(), self.host.get(), self.failure.get()) else {
            return;
        };
        failure.take();
        state.core = CoreVm::new(self.options.clone());
        state.core.set_virtual_clock(self.virtual_clock);
        state.id = next_vm_id();
        let configured = Python::attach(|py| self.output.as_ref().map(|o| o.clone_ref(py)));
        state.output = OutputSlot::install(&mut state.core, configured, failure.clone());
        state.wait = BlockingWait::install(&mut state.core, host.clone(), failure.clone(), state.id);
        if self.on_main {
            install_signal_check(&mut state.core, failure.clone());
        }
        state.async_run = false;
        if let Ok(mut flag) = self.interrupt.lock() {
            *flag = state.core.interrupt_handle();
        }
        for (name, f) in hosts.borrow().iter() {
            let f = Python::attach(|py| f.clone_ref(py));
            state.core.register_host(name, host_fn(f, host.clone(), state.id, failure.clone()));
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
        let (result, id) = self.execute_result(py, release_gil, work)?;
        self.finish_value(py, &self.host()?, result, id)
    }

    /// `execute_with` without the final conversion: the Harn value and the Vm id.
    pub(crate) fn execute_value(
        &self,
        py: Python<'_>,
        release_gil: bool,
        work: impl FnOnce(&mut CoreVm) -> VmResult<Value>,
    ) -> PyResult<(Value, u64)> {
        let (result, id) = self.execute_result(py, release_gil, work)?;
        match result {
            Ok(v) => Ok((v, id)),
            Err(e) => {
                let err = errors::vm_error(py, &e, id);
                chain_cause(py, &self.host()?, &e, &err);
                Err(err)
            }
        }
    }

    /// The one way into running: `work` (a run, call or crossing, which
    /// the core drives to its end with this Vm's waiter) runs on the core
    /// VM, GIL released unless `release_gil` is false, with output routed
    /// and panics caught. Returns the Harn outcome and the Vm id; Python
    /// exceptions that ended the run (a failing output callable, a
    /// `KeyboardInterrupt` in a host function or wait) are raised instead.
    fn execute_result(
        &self,
        py: Python<'_>,
        release_gil: bool,
        work: impl FnOnce(&mut CoreVm) -> VmResult<Value>,
    ) -> PyResult<(VmResult<Value>, u64)> {
        let mut state = self.borrow_state_mut()?;
        if state.async_run {
            // Called from a host function while this Vm's run is in progress.
            return Err(already_running());
        }
        let VmState { core, output, .. } = &mut *state;
        output.open();
        let outcome = if release_gil {
            let task = AssertSend((&mut *core, work));
            py.detach(move || {
                let (core, work) = task.into_inner();
                AssertSend(grow_large(|| catch_unwind(AssertUnwindSafe(|| work(core)))))
            })
            .into_inner()
        } else {
            // Releasing and re-taking the GIL is a large part of a short
            // crossing; a caller that opted out keeps it (the output sink and
            // host functions attach as usual: they find it held).
            grow_large(|| catch_unwind(AssertUnwindSafe(|| work(&mut *core))))
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
        // Awaited host calls end with the run (a short crossing has none).
        let settled = if state.wait.borrow().is_idle() { Ok(()) } else { state.wait.borrow_mut().finish(py) };
        let VmState { core, output, .. } = &mut *state;
        let delivered = match output.failure.take() {
            Some(e) => Err(e),
            // Output the core still buffers (e.g. after `call_closure`, which
            // does not flush at the end the way `run` does).
            None if core.has_output() => output.deliver_rest(py, core.take_output()),
            None => Ok(()),
        };
        output.close();
        delivered?;
        settled?;
        Ok((result, state.id))
    }
}
