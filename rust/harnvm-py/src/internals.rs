//! `harnvm.internals`: bytecode chunks, opcode names and inline-cache entries
//! exposed for tests and tools.
//!
//! A bare `Chunk` lets tests emit op sequences and read the inline-cache
//! slots their instructions carry. The entry classes are
//! immutable snapshots of one cache slot: `peek_*(vm, set, slot)` returns
//! them and `set_inline_cache_entry(vm, ...)` installs them. These hooks
//! take the `Vm` as an argument so the public class carries none of them.
//!
//! `panic_for_test` panics on purpose inside the panic guard, so tests can
//! check that a Rust panic surfaces as `harnvm.HarnInternalError` and that
//! the fuzz oracles count it as a failure.

use std::cell::RefCell;

use harnvm_core::bytecode::chunk::{Chunk, Op, Operand};
use harnvm_core::syntax::Pos;
use harnvm_core::vm::ic::{
    BinaryOp, BinaryState, CallTarget, CallTargetId, DirectCallState, Entry, InlineCaches, MethodTarget, PropertyTarget, Shape,
};
use harnvm_core::Value;
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert;
use crate::errors;
use crate::pinned::Pinned;
use crate::vm::Vm;

/// `(mnemonic, byte)` of every opcode, in table order (`harnvm.internals.Op`).
#[pyfunction]
pub fn _op_table() -> Vec<(&'static str, u8)> {
    Op::ALL.iter().map(|op| (op.name(), *op as u8)).collect()
}

/// Panics on purpose with `message` (test hook, `harnvm.internals.panic_for_test`).
///
/// Without `vm`, the panic happens inside `errors::guard`, the guard around
/// `compile`, `disassemble` and every conversion. With `vm`, it happens in
/// the core call of that Vm (`Vm::execute`, the path of `Vm.call` and
/// `Vm.call_export`), so the Vm recovers the way it does after a real
/// panic: its state is reset. Either way Python sees `HarnInternalError`.
#[pyfunction]
#[pyo3(signature = (message, vm = None))]
pub fn panic_for_test(py: Python<'_>, message: &str, vm: Option<&Bound<'_, Vm>>) -> PyResult<()> {
    match vm {
        None => errors::guard(py, || panic!("{message}")),
        Some(vm) => vm.get().execute(py, |_core| panic!("{message}")).map(drop),
    }
}

fn op_arg(op: u8) -> PyResult<Op> {
    Op::from_byte(op).ok_or_else(|| PyValueError::new_err(format!("no opcode with value {op}")))
}

// ---------------------------------------------------------------------------
// Chunk

/// A bare bytecode chunk: emit ops and inspect its inline-cache side tables.
#[pyclass(module = "harnvm.internals", name = "Chunk", frozen)]
pub struct InternalChunk {
    inner: Pinned<RefCell<Chunk>>,
}

impl InternalChunk {
    pub fn with<R>(&self, f: impl FnOnce(&mut Chunk) -> R) -> PyResult<R> {
        let cell =
            self.inner.get().ok_or_else(|| PyRuntimeError::new_err("this harnvm.internals.Chunk belongs to another thread"))?;
        Ok(f(&mut cell.borrow_mut()))
    }

    fn emit_checked(&self, op: u8, want: &[Operand], operands: &[u32], line: u32, helper: &str) -> PyResult<usize> {
        let op = op_arg(op)?;
        let explicit = op.explicit_operands();
        let fits = explicit.len() == want.len()
            && explicit
                .iter()
                .zip(want)
                .all(|(have, w)| have.width() == w.width() && (*w != Operand::U8 || *have == Operand::U8));
        if !fits {
            return Err(PyValueError::new_err(format!("{} takes operands {:?}; {helper} cannot emit it", op.name(), explicit)));
        }
        self.with(|c| c.emit(op, operands, Pos { line, column: 1 }))
    }
}

#[pymethods]
impl InternalChunk {
    #[new]
    fn new() -> Self {
        InternalChunk { inner: Pinned::new(RefCell::new(Chunk::default())) }
    }

    /// Emits an op without operands; returns its offset.
    fn emit(&self, op: u8, line: u32) -> PyResult<usize> {
        self.emit_checked(op, &[], &[], line, "emit")
    }

    /// Emits an op with one u8 operand (e.g. `CALL argc`); returns its offset.
    fn emit_u8(&self, op: u8, arg: u8, line: u32) -> PyResult<usize> {
        self.emit_checked(op, &[Operand::U8], &[arg as u32], line, "emit_u8")
    }

    /// Emits an op with one u16 operand (e.g. `GET_PROP name_idx`); returns its offset.
    fn emit_u16(&self, op: u8, arg: u16, line: u32) -> PyResult<usize> {
        self.emit_checked(op, &[Operand::U16], &[arg as u32], line, "emit_u16")
    }

    /// Emits `CALL_METHOD name_idx argc`; returns its offset.
    fn emit_method_call(&self, name_idx: u16, argc: u8, line: u32) -> PyResult<usize> {
        self.with(|c| c.emit(Op::CallMethod, &[name_idx as u32, argc as u32], Pos { line, column: 1 }))
    }

    /// The inline-cache slot of the instruction at `offset` (None for an
    /// offset inside an instruction or without a site).
    fn inline_cache_slot(&self, offset: usize) -> PyResult<Option<u32>> {
        self.with(|c| c.inline_cache_sites().into_iter().find(|&(at, _)| at == offset).map(|(_, slot)| slot))
    }

    /// Every `(offset, slot)` inline-cache site, in code order.
    fn inline_cache_sites(&self) -> PyResult<Vec<(usize, u32)>> {
        self.with(|c| c.inline_cache_sites())
    }

    fn inline_cache_slot_count(&self) -> PyResult<usize> {
        self.with(|c| c.inline_cache_slot_count())
    }

    #[getter]
    fn code_len(&self) -> PyResult<usize> {
        self.with(|c| c.code.len())
    }

    #[getter]
    fn cache_id(&self) -> PyResult<u64> {
        self.with(|c| c.cache_id)
    }

    fn __repr__(&self) -> PyResult<String> {
        self.with(|c| format!("<harnvm.internals.Chunk code_len={} slots={}>", c.code.len(), c.inline_cache_slot_count()))
    }
}

// ---------------------------------------------------------------------------
// Entries

fn binary_op_name(op: BinaryOp) -> &'static str {
    op.op().name()
}

fn binary_op_arg(name: &str) -> PyResult<BinaryOp> {
    BinaryOp::ALL
        .into_iter()
        .find(|b| b.op().name() == name)
        .ok_or_else(|| PyValueError::new_err(format!("not an adaptive binary op: {name:?}")))
}

/// An adaptive binary op's cache: `state` is `"warmup"` or `"specialized"`,
/// `shape` one of `"int"`, `"float"`, `"bool"`, `"string"`.
#[pyclass(module = "harnvm.internals", name = "AdaptiveBinaryCacheEntry", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct AdaptiveBinaryCacheEntry {
    #[pyo3(get)]
    op: &'static str,
    #[pyo3(get)]
    state: &'static str,
    #[pyo3(get)]
    shape: &'static str,
    #[pyo3(get)]
    hits: u64,
    #[pyo3(get)]
    misses: u64,
}

#[pymethods]
impl AdaptiveBinaryCacheEntry {
    #[new]
    #[pyo3(signature = (op, state, shape, hits = 0, misses = 0))]
    fn new(op: &str, state: &str, shape: &str, hits: u64, misses: u64) -> PyResult<Self> {
        let entry = Self::to_entry_parts(op, state, shape, hits, misses)?;
        Ok(Self::from_core(entry.0, entry.1))
    }

    fn __repr__(&self) -> String {
        format!(
            "AdaptiveBinaryCacheEntry(op={:?}, state={:?}, shape={:?}, hits={}, misses={})",
            self.op, self.state, self.shape, self.hits, self.misses
        )
    }
}

impl AdaptiveBinaryCacheEntry {
    fn to_entry_parts(op: &str, state: &str, shape: &str, hits: u64, misses: u64) -> PyResult<(BinaryOp, BinaryState)> {
        let op = binary_op_arg(op)?;
        let shape = Shape::from_name(shape).ok_or_else(|| PyValueError::new_err(format!("unknown shape: {shape:?}")))?;
        let state = match state {
            "warmup" if misses == 0 => BinaryState::Warmup { shape, hits },
            "warmup" => return Err(PyValueError::new_err("a warmup state has no misses")),
            "specialized" => BinaryState::Specialized { shape, hits, misses },
            other => return Err(PyValueError::new_err(format!("unknown state: {other:?}"))),
        };
        Ok((op, state))
    }

    fn from_core(op: BinaryOp, state: BinaryState) -> Self {
        let (state, shape, hits, misses) = match state {
            BinaryState::Warmup { shape, hits } => ("warmup", shape, hits, 0),
            BinaryState::Specialized { shape, hits, misses } => ("specialized", shape, hits, misses),
        };
        AdaptiveBinaryCacheEntry { op: binary_op_name(op), state, shape: shape.name(), hits, misses }
    }
}

/// A property read's cache: the site's name constant index and the resolved
/// target (`"list_count"`, `"dict_field"`, `"struct_field"`, ...).
#[pyclass(module = "harnvm.internals", name = "PropertyCacheEntry", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PropertyCacheEntry {
    #[pyo3(get)]
    name_idx: u16,
    #[pyo3(get)]
    target: &'static str,
    #[pyo3(get)]
    hits: u64,
    #[pyo3(get)]
    misses: u64,
}

#[pymethods]
impl PropertyCacheEntry {
    /// `struct_field` targets are only made by the VM (they guard a layout).
    #[new]
    #[pyo3(signature = (name_idx, target, hits = 0, misses = 0))]
    fn new(name_idx: u16, target: &str, hits: u64, misses: u64) -> PyResult<Self> {
        let t = PropertyTarget::from_name(target)
            .ok_or_else(|| PyValueError::new_err(format!("unknown or VM-only property target: {target:?}")))?;
        Ok(PropertyCacheEntry { name_idx, target: t.name(), hits, misses })
    }

    fn __repr__(&self) -> String {
        format!(
            "PropertyCacheEntry(name_idx={}, target={:?}, hits={}, misses={})",
            self.name_idx, self.target, self.hits, self.misses
        )
    }
}

/// A method call's cache: name constant index, argc and the bound builtin method.
#[pyclass(module = "harnvm.internals", name = "MethodCacheEntry", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct MethodCacheEntry {
    #[pyo3(get)]
    name_idx: u16,
    #[pyo3(get)]
    argc: u8,
    #[pyo3(get)]
    target: &'static str,
    #[pyo3(get)]
    hits: u64,
    #[pyo3(get)]
    misses: u64,
}

#[pymethods]
impl MethodCacheEntry {
    #[new]
    #[pyo3(signature = (name_idx, argc, target, hits = 0, misses = 0))]
    fn new(name_idx: u16, argc: u8, target: &str, hits: u64, misses: u64) -> PyResult<Self> {
        let t =
            MethodTarget::from_name(target).ok_or_else(|| PyValueError::new_err(format!("unknown method target: {target:?}")))?;
        if t.argc() != argc as usize {
            return Err(PyValueError::new_err(format!("{target} takes {} argument(s), not {argc}", t.argc())));
        }
        Ok(MethodCacheEntry { name_idx, argc, target: t.name(), hits, misses })
    }

    fn __repr__(&self) -> String {
        format!(
            "MethodCacheEntry(name_idx={}, argc={}, target={:?}, hits={}, misses={})",
            self.name_idx, self.argc, self.target, self.hits, self.misses
        )
    }
}

/// A call site's cache, guarded by the callee's identity (`target_id`).
#[pyclass(module = "harnvm.internals", name = "DirectCallCacheEntry", frozen)]
pub struct DirectCallCacheEntry {
    #[pyo3(get)]
    state: &'static str,
    #[pyo3(get)]
    argc: u32,
    /// The cached callee (a `HarnFunction`).
    #[pyo3(get)]
    target: Py<PyAny>,
    #[pyo3(get)]
    hits: u64,
    #[pyo3(get)]
    misses: u64,
    /// Opaque identity of the callee: equal ids mean the same closure (or builtin).
    #[pyo3(get)]
    target_id: u64,
}

#[pymethods]
impl DirectCallCacheEntry {
    #[new]
    #[pyo3(signature = (state, argc, target, hits = 0, misses = 0))]
    fn new(state: &str, argc: u32, target: Bound<'_, PyAny>, hits: u64, misses: u64) -> PyResult<Self> {
        let state = match state {
            "warmup" if misses == 0 => "warmup",
            "warmup" => return Err(PyValueError::new_err("a warmup state has no misses")),
            "specialized" => "specialized",
            other => return Err(PyValueError::new_err(format!("unknown state: {other:?}"))),
        };
        if !target.is_instance_of::<convert::HarnFunction>() {
            return Err(PyTypeError::new_err("target must be a HarnFunction"));
        }
        let target_id = match CallTargetId::of(&convert::from_py(&target, None)?) {
            Some(id) => id_number(id),
            None => return Err(PyTypeError::new_err("target must be a HarnFunction")),
        };
        Ok(DirectCallCacheEntry { state, argc, target: target.unbind(), hits, misses, target_id })
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<DirectCallCacheEntry>() {
            Ok(o) => {
                let o = o.get();
                (self.state, self.argc, self.target_id, self.hits, self.misses)
                    == (o.state, o.argc, o.target_id, o.hits, o.misses)
            }
            Err(_) => false,
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DirectCallCacheEntry(state={:?}, argc={}, target={}, hits={}, misses={})",
            self.state,
            self.argc,
            self.target.bind(py).repr()?,
            self.hits,
            self.misses
        ))
    }
}

/// A stable number for a callee identity (closure address, or builtin id tagged).
fn id_number(id: CallTargetId) -> u64 {
    match id {
        CallTargetId::Closure(p) => p as usize as u64,
        CallTargetId::Builtin(b) => (1u64 << 63) | b as u64,
    }
}

// ---------------------------------------------------------------------------
// Vm-side operations (called from the `Vm` methods)

fn slot_error(set: usize, slot: usize) -> PyErr {
    PyIndexError::new_err(format!("no inline-cache slot {slot} in cache set {set}"))
}

pub fn set_entry(ic: &mut InlineCaches, vm_id: u64, set: usize, slot: usize, entry: &Bound<'_, PyAny>) -> PyResult<()> {
    let new = if let Ok(e) = entry.cast::<AdaptiveBinaryCacheEntry>() {
        let e = e.get();
        let (op, state) = AdaptiveBinaryCacheEntry::to_entry_parts(e.op, e.state, e.shape, e.hits, e.misses)?;
        Entry::Binary { op, state }
    } else if let Ok(e) = entry.cast::<PropertyCacheEntry>() {
        let e = e.get();
        let target = PropertyTarget::from_name(e.target).ok_or_else(|| PyValueError::new_err("VM-only property target"))?;
        Entry::Property { name_idx: e.name_idx, target, hits: e.hits, misses: e.misses, layout: None }
    } else if let Ok(e) = entry.cast::<MethodCacheEntry>() {
        let e = e.get();
        let target = MethodTarget::from_name(e.target).ok_or_else(|| PyValueError::new_err("unknown method target"))?;
        Entry::Method { name_idx: e.name_idx, argc: e.argc, target, hits: e.hits, misses: e.misses }
    } else if let Ok(e) = entry.cast::<DirectCallCacheEntry>() {
        let e = e.get();
        let value = convert::from_py(e.target.bind(entry.py()), Some(vm_id))?;
        let target = CallTarget::of(&value).ok_or_else(|| PyTypeError::new_err("target must be a HarnFunction"))?;
        Entry::DirectCall(match e.state {
            "warmup" => DirectCallState::Warmup { argc: e.argc, target, hits: e.hits },
            _ => DirectCallState::Specialized { argc: e.argc, target, hits: e.hits, misses: e.misses },
        })
    } else if entry.is_none() {
        Entry::Empty
    } else {
        return Err(PyTypeError::new_err(format!(
            "expected an inline-cache entry (AdaptiveBinaryCacheEntry, PropertyCacheEntry, MethodCacheEntry, DirectCallCacheEntry) or None, got {}",
            entry.get_type().name()?
        )));
    };
    *ic.get_mut(set, slot).ok_or_else(|| slot_error(set, slot))? = new;
    Ok(())
}

fn check_slot(ic: &InlineCaches, set: usize, slot: usize) -> PyResult<()> {
    ic.get(set, slot).map(|_| ()).ok_or_else(|| slot_error(set, slot))
}

pub fn peek_binary(ic: &InlineCaches, set: usize, slot: usize) -> PyResult<Option<AdaptiveBinaryCacheEntry>> {
    check_slot(ic, set, slot)?;
    Ok(ic.peek_binary(set, slot).map(|(op, state)| AdaptiveBinaryCacheEntry::from_core(op, state)))
}

pub fn peek_property(ic: &InlineCaches, set: usize, slot: usize) -> PyResult<Option<PropertyCacheEntry>> {
    check_slot(ic, set, slot)?;
    Ok(ic.peek_property(set, slot).map(|(name_idx, target, hits, misses)| PropertyCacheEntry {
        name_idx,
        target: target.name(),
        hits,
        misses,
    }))
}

pub fn peek_method(ic: &InlineCaches, set: usize, slot: usize) -> PyResult<Option<MethodCacheEntry>> {
    check_slot(ic, set, slot)?;
    Ok(ic.peek_method(set, slot).map(|(name_idx, argc, target, hits, misses)| MethodCacheEntry {
        name_idx,
        argc,
        target: target.name(),
        hits,
        misses,
    }))
}

pub fn peek_direct_call(
    py: Python<'_>,
    ic: &InlineCaches,
    vm_id: u64,
    set: usize,
    slot: usize,
) -> PyResult<Option<DirectCallCacheEntry>> {
    check_slot(ic, set, slot)?;
    let Some(Entry::DirectCall(state)) = ic.get(set, slot) else {
        return Ok(None);
    };
    let peek = state.peek();
    let target: Value = state.target().value();
    Ok(Some(DirectCallCacheEntry {
        state: if peek.specialized { "specialized" } else { "warmup" },
        argc: peek.argc,
        target: convert::to_py(py, &target, vm_id)?.unbind(),
        hits: peek.hits,
        misses: peek.misses,
        target_id: id_number(peek.target),
    }))
}

/// Every cache site as a dict: function, line, offset, op, set, slot, family, state, hits, misses.
pub fn report<'py>(py: Python<'py>, ic: &InlineCaches) -> PyResult<Vec<Bound<'py, PyDict>>> {
    ic.report()
        .into_iter()
        .map(|site| {
            let d = PyDict::new(py);
            d.set_item("function", site.function)?;
            d.set_item("line", site.line)?;
            d.set_item("offset", site.offset)?;
            d.set_item("op", site.op)?;
            d.set_item("set", site.set)?;
            d.set_item("slot", site.slot)?;
            d.set_item("family", site.family)?;
            d.set_item("state", site.state)?;
            d.set_item("hits", site.hits)?;
            d.set_item("misses", site.misses)?;
            Ok(d)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Error mapping

/// The exception a core limit error of `kind` (`"time"`, `"memory"`,
/// `"instructions"` or `"output"`) with
/// detail `message` converts to: lets tests check that the class follows the
/// kind, whatever the message says.
#[pyfunction]
pub fn _limit_error(py: Python<'_>, kind: &str, message: &str) -> PyResult<Py<PyAny>> {
    let kind = match kind {
        "time" => harnvm_core::LimitKind::Time,
        "memory" => harnvm_core::LimitKind::Memory,
        "instructions" => harnvm_core::LimitKind::Instructions,
        "output" => harnvm_core::LimitKind::Output,
        other => return Err(PyValueError::new_err(format!("no limit kind {other:?}"))),
    };
    let err = crate::errors::vm_error(py, &harnvm_core::VmError::limit(kind, message), 0);
    Ok(err.into_value(py).into_any())
}

// ---------------------------------------------------------------------------
// A Vm's inline caches

/// The index of `chunk`'s inline-cache set on `vm` (made on first use).
#[pyfunction]
pub fn cache_set_index_for_chunk(vm: &Bound<'_, Vm>, chunk: &Bound<'_, InternalChunk>) -> PyResult<usize> {
    vm.get().with_caches(|ic, _| chunk.get().with(|c| ic.set_index_for_chunk(c, None)))
}

/// Installs `entry` (an entry object, or None for empty) in slot `slot` of set `cache_set`.
#[pyfunction]
pub fn set_inline_cache_entry(vm: &Bound<'_, Vm>, cache_set: usize, slot: usize, entry: &Bound<'_, PyAny>) -> PyResult<()> {
    vm.get().with_caches(|ic, id| set_entry(ic, id, cache_set, slot, entry))
}

/// The slot's adaptive-binary entry, or None if it holds another kind.
#[pyfunction]
pub fn peek_adaptive_binary_cache(
    vm: &Bound<'_, Vm>,
    cache_set: usize,
    slot: usize,
) -> PyResult<Option<AdaptiveBinaryCacheEntry>> {
    vm.get().with_caches(|ic, _| peek_binary(ic, cache_set, slot))
}

/// The slot's property entry, or None if it holds another kind.
#[pyfunction]
pub fn peek_property_cache(vm: &Bound<'_, Vm>, cache_set: usize, slot: usize) -> PyResult<Option<PropertyCacheEntry>> {
    vm.get().with_caches(|ic, _| peek_property(ic, cache_set, slot))
}

/// The slot's method entry, or None if it holds another kind.
#[pyfunction]
pub fn peek_method_cache(vm: &Bound<'_, Vm>, cache_set: usize, slot: usize) -> PyResult<Option<MethodCacheEntry>> {
    vm.get().with_caches(|ic, _| peek_method(ic, cache_set, slot))
}

/// The slot's direct-call entry, or None if it holds another kind.
#[pyfunction]
pub fn peek_direct_call_cache(vm: &Bound<'_, Vm>, cache_set: usize, slot: usize) -> PyResult<Option<DirectCallCacheEntry>> {
    let py = vm.py();
    vm.get().with_caches(|ic, id| peek_direct_call(py, ic, id, cache_set, slot))
}

/// The timer waits, in seconds, that `vm`'s blocking driver was handed since
/// the last call, oldest first (at most the last 256).
#[pyfunction]
pub fn take_timer_waits(vm: &Bound<'_, Vm>) -> PyResult<Vec<f64>> {
    Ok(vm.get().take_timer_waits()?.into_iter().map(|ms| ms / 1000.0).collect())
}

/// Every inline-cache site of the functions `vm` has run: dicts with
/// function, line, offset, op, set, slot, family, state, hits, misses.
#[pyfunction]
pub fn inline_cache_report<'py>(vm: &Bound<'py, Vm>) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let py = vm.py();
    vm.get().with_caches(|ic, _| report(py, ic))
}

/// The program's disassembly with each cache site's state on `vm` (run
/// the program first; `python -m harnvm dis --ic`).
#[pyfunction]
#[pyo3(signature = (vm, program, *, filename = "<string>"))]
pub fn inline_cache_disassembly(vm: &Bound<'_, Vm>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<String> {
    let py = vm.py();
    let program = crate::program::program_arg(py, program, filename)?;
    vm.get().with_caches(|ic, _| {
        crate::errors::guard(py, || {
            Ok(harnvm_core::bytecode::chunk::disassemble_annotated(
                &program.main,
                harnvm_core::builtins::builtin_name,
                &mut |proto, offset| ic.describe_site(proto, offset),
            ))
        })
    })
}
