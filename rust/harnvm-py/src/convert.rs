//! Marshalling between Harn `Value`s and Python objects, both directions.
//!
//! | Harn                  | Python                                               |
//! |-----------------------|------------------------------------------------------|
//! | nil / bool / int      | None / bool / int (Harn ints are i64; a larger       |
//! |                       | Python int is a `HarnConversionError`, never a float)|
//! | float                 | float (NaN and ±inf preserved)                       |
//! | string / bytes        | str / bytes (bytearray is accepted going in)         |
//! | list                  | list (tuple is accepted going in and becomes a list) |
//! | dict                  | dict with str keys (other keys are an error)         |
//! | set                   | set; a list when an element is unhashable            |
//! |                       | (set and frozenset are accepted going in)            |
//! | range                 | range (only step 1 goes back in)                     |
//! | pair                  | tuple of two (a tuple comes back as a list)          |
//! | duration              | datetime.timedelta (whole milliseconds going in)     |
//! | decimal               | decimal.Decimal (same digits and scale; going in, a  |
//! |                       | Decimal that a Harn decimal cannot hold exactly is   |
//! |                       | an error, never rounded)                             |
//! | enum                  | harnvm.HarnEnum(enum_name, variant, fields)          |
//! | struct                | harnvm.HarnStruct(name, fields)                      |
//! | closure / builtin     | harnvm.HarnFunction (opaque handle)                  |
//! | iterators, atomics, … | harnvm.HarnObject (opaque handle)                    |
//!
//! Nesting is limited to `MAX_DEPTH` levels in both directions (which also
//! rejects cyclic Python containers) so conversion never overflows the
//! native stack. Errors name the path to the offending value.

use std::rc::Rc;

use harnvm_core::builtins::builtin_name;
use harnvm_core::runtime::deep;
use harnvm_core::runtime::value::{StructLayout, StructVal};
use harnvm_core::Value;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyRange, PySet, PyString, PyTuple, PyType,
};

use crate::errors;
use crate::pinned::Pinned;

/// Deepest nesting converted in either direction.
pub const MAX_DEPTH: usize = 1000;

/// Most Python objects one Harn → Python conversion creates.
pub const MAX_NODES: u64 = 1 << 24;

static TIMEDELTA: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static HARN_ENUM: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static HARN_STRUCT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn timedelta(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    TIMEDELTA.import(py, "datetime", "timedelta")
}
fn harn_enum(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    HARN_ENUM.import(py, "harnvm._values", "HarnEnum")
}
fn decimal_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    DECIMAL.import(py, "decimal", "Decimal")
}
fn harn_struct(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    HARN_STRUCT.import(py, "harnvm._values", "HarnStruct")
}

// ---------------------------------------------------------------------------
// Opaque handles

/// A Harn function value (closure or builtin) returned to Python. It can be
/// passed back into Harn (or called with `Vm.call`) on the thread and Vm that
/// produced it; its repr and attributes work anywhere.
#[pyclass(module = "harnvm", name = "HarnFunction", frozen)]
pub struct HarnFunction {
    value: Pinned<Value>,
    /// The Vm whose module state the function refers to (0: none).
    pub vm_id: u64,
    /// The function's name (`""` for an anonymous closure).
    #[pyo3(get)]
    name: String,
    /// Parameter names, in order.
    #[pyo3(get)]
    params: Vec<String>,
    /// `"closure"` or `"builtin"`.
    #[pyo3(get)]
    kind: &'static str,
    display: String,
}

#[pymethods]
impl HarnFunction {
    fn __repr__(&self) -> String {
        if self.kind == "builtin" {
            format!("<HarnFunction builtin {}>", self.name)
        } else {
            let name = if self.name.is_empty() { "<anonymous>" } else { &self.name };
            format!("<HarnFunction {}({})>", name, self.params.join(", "))
        }
    }
    /// Harn's display text (`<fn(a, b)>`, `<builtin len>`).
    fn __str__(&self) -> String {
        self.display.clone()
    }

    /// `f(*args)`: `vm.call(f, *args)` on the Vm that made `f`.
    #[pyo3(signature = (*args))]
    fn __call__(slf: &Bound<'_, Self>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let Some(vm) = crate::vm::Vm::find(py, slf.get().vm_id) else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this HarnFunction cannot be called: the Vm that made it is gone (or was reset after an internal error)",
            ));
        };
        vm.get().call_handle(py, slf.as_any(), args)
    }
}

/// The Harn value behind a function handle made by the Vm whose id is `target`.
pub fn function_value(py: Python<'_>, f: &HarnFunction, target: u64) -> PyResult<Value> {
    handle_value(py, &Path(Vec::new()), "HarnFunction", &f.value, f.vm_id, Some(target))
}

/// Any other Harn runtime object (iterator, generator, atomic, channel, …)
/// returned to Python. Opaque; can be passed back into Harn on its thread.
#[pyclass(module = "harnvm", name = "HarnObject", frozen)]
pub struct HarnObject {
    value: Pinned<Value>,
    pub vm_id: u64,
    /// Harn's `type_of` name, e.g. `"atomic"`.
    #[pyo3(get)]
    type_name: String,
    display: String,
}

#[pymethods]
impl HarnObject {
    fn __repr__(&self) -> String {
        format!("<HarnObject {} {}>", self.type_name, self.display)
    }
    fn __str__(&self) -> String {
        self.display.clone()
    }
}

// ---------------------------------------------------------------------------
// Harn → Python

/// Converts a Harn value to a new Python object. Function and object handles
/// remember `vm_id`, the Vm the value came from (0: none).
pub fn to_py<'py>(py: Python<'py>, v: &Value, vm_id: u64) -> PyResult<Bound<'py, PyAny>> {
    // A value that shares sub-values converts to a tree with one Python
    // object per path: refuse one whose tree is too large before building
    // any of it (counting costs only the distinct nodes).
    let mut size = 0;
    if v.is_heap() {
        size = deep::expanded_size(v, MAX_NODES, MAX_DEPTH + 1);
        if size > MAX_NODES {
            return Err(errors::conversion(
                py,
                format!(
                    "Harn value would convert to more than {MAX_NODES} Python objects (it shares sub-values, \
                     and each path to a shared value becomes its own copy); cannot convert it to Python"
                ),
            ));
        }
    }
    if size < GC_PAUSE_FROM {
        return deep::grow_large(|| to_py_at(py, v, 0, vm_id));
    }
    // Building many containers triggers Python's cyclic collector again and
    // again, each pass walking every object made so far (130k structs took
    // 2 s instead of 0.3 s); the new objects hold no cycles, so it pauses.
    let _paused = GcPause::new();
    deep::grow_large(|| to_py_at(py, v, 0, vm_id))
}

/// Values whose Python copy has at least this many objects convert with the
/// cyclic garbage collector paused.
const GC_PAUSE_FROM: u64 = 10_000;

/// Pauses Python's cyclic garbage collector until dropped (when it was on).
struct GcPause {
    was_enabled: bool,
}

impl GcPause {
    fn new() -> Self {
        // SAFETY: called with the GIL held (inside a conversion that has `py`).
        GcPause { was_enabled: unsafe { pyo3::ffi::PyGC_Disable() } == 1 }
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        if self.was_enabled {
            // SAFETY: dropped on the thread that made it, still holding the GIL.
            unsafe { pyo3::ffi::PyGC_Enable() };
        }
    }
}

fn to_py_at<'py>(py: Python<'py>, v: &Value, depth: usize, vm_id: u64) -> PyResult<Bound<'py, PyAny>> {
    if depth > MAX_DEPTH {
        return Err(errors::conversion(
            py,
            format!("Harn value is nested more than {MAX_DEPTH} levels deep; cannot convert it to Python"),
        ));
    }
    let d = depth + 1;
    Ok(match v {
        Value::Nil => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Duration(ms) => {
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("milliseconds", *ms)?;
            timedelta(py)?.call((), Some(&kwargs)).map_err(|e| {
                errors::conversion(py, format!("Harn duration of {ms} ms does not fit in datetime.timedelta: {e}"))
            })?
        }
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::List(items) => {
            let out = PyList::empty(py);
            for item in items.iter() {
                out.append(deep::grow(|| to_py_at(py, item, d, vm_id))?)?;
            }
            out.into_any()
        }
        Value::Dict(map) => {
            let out = PyDict::new(py);
            for (k, item) in map.iter() {
                out.set_item(k.as_str(), deep::grow(|| to_py_at(py, item, d, vm_id))?)?;
            }
            out.into_any()
        }
        Value::Set(items) => {
            let converted = items.iter().map(|item| deep::grow(|| to_py_at(py, item, d, vm_id))).collect::<PyResult<Vec<_>>>()?;
            match PySet::new(py, &converted) {
                Ok(set) => set.into_any(),
                Err(e) if e.is_instance_of::<PyTypeError>(py) => PyList::new(py, converted)?.into_any(),
                Err(e) => return Err(e),
            }
        }
        Value::Range(r) => {
            let stop = if r.inclusive { r.end as i128 + 1 } else { r.end as i128 };
            py.get_type::<PyRange>().call1((r.start, stop))?
        }
        Value::Pair(p) => {
            let first = deep::grow(|| to_py_at(py, &p.0, d, vm_id))?;
            PyTuple::new(py, [first, deep::grow(|| to_py_at(py, &p.1, d, vm_id))?])?.into_any()
        }
        Value::Enum(e) => {
            let fields = e.fields.iter().map(|f| deep::grow(|| to_py_at(py, f, d, vm_id))).collect::<PyResult<Vec<_>>>()?;
            harn_enum(py)?.call1((e.enum_name.as_str(), e.variant.as_str(), PyTuple::new(py, fields)?))?
        }
        Value::Struct(s) => {
            let fields = PyDict::new(py);
            for (name, item) in s.layout.fields.iter().zip(s.values.iter()) {
                fields.set_item(name.as_str(), deep::grow(|| to_py_at(py, item, d, vm_id))?)?;
            }
            harn_struct(py)?.call1((s.name(), fields))?
        }
        Value::Closure(c) => {
            let f = HarnFunction {
                name: c.proto.name.clone(),
                params: c.proto.params.iter().map(|p| p.name.clone()).collect(),
                kind: "closure",
                display: v.display(),
                value: Pinned::new(v.clone()),
                vm_id,
            };
            Bound::new(py, f)?.into_any()
        }
        Value::Builtin(id) => {
            let f = HarnFunction {
                name: builtin_name(*id).to_string(),
                params: Vec::new(),
                kind: "builtin",
                display: v.display(),
                value: Pinned::new(v.clone()),
                vm_id,
            };
            Bound::new(py, f)?.into_any()
        }
        // The text keeps the digits and the scale (`2.50`), which Decimal keeps too.
        Value::Object(_) if v.as_decimal().is_some() => decimal_type(py)?.call1((v.display(),))?,
        Value::Object(o) => {
            let obj =
                HarnObject { type_name: o.type_name().to_string(), display: v.display(), value: Pinned::new(v.clone()), vm_id };
            Bound::new(py, obj)?.into_any()
        }
    })
}

// ---------------------------------------------------------------------------
// Python → Harn

enum Seg {
    Index(usize),
    Key(String),
}

/// Where in the input a value sits, for error messages (`value[0]['name']`).
struct Path(Vec<Seg>);

impl Path {
    fn render(&self) -> String {
        let mut out = String::from("value");
        for seg in &self.0 {
            match seg {
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Key(k) => out.push_str(&format!("[{k:?}]")),
            }
        }
        out
    }
}

fn type_name_of(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".to_string())
}

fn fail<T>(py: Python<'_>, path: &Path, what: impl AsRef<str>) -> PyResult<T> {
    Err(errors::conversion(py, format!("cannot convert {} to a Harn value: {}", path.render(), what.as_ref())))
}

/// Converts a Python object to a Harn value. With `target` set, function and
/// object handles must come from that Vm (their values refer to its module
/// state); with None, any handle from the current thread is accepted.
pub fn from_py(obj: &Bound<'_, PyAny>, target: Option<u64>) -> PyResult<Value> {
    let mut memo = Memo::default();
    deep::grow_large(|| from_py_at(obj, &mut Path(Vec::new()), target, &mut memo))
}

/// Python containers already converted in this conversion, by address: a
/// container referenced from several places (a DAG) converts once and its
/// Harn value is shared, so the walk costs the distinct containers, not the
/// paths. Holds a reference to each so no address is reused meanwhile.
type Memo<'py> = rustc_hash::FxHashMap<usize, (Bound<'py, PyAny>, Value)>;

fn from_py_at<'py>(obj: &Bound<'py, PyAny>, path: &mut Path, target: Option<u64>, memo: &mut Memo<'py>) -> PyResult<Value> {
    let py = obj.py();
    if path.0.len() > MAX_DEPTH {
        return fail(py, path, format!("nested more than {MAX_DEPTH} levels deep (or cyclic)"));
    }
    let is_container = obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
        || obj.is_instance_of::<PyDict>()
        || obj.is_instance_of::<PySet>()
        || obj.is_instance_of::<PyFrozenSet>();
    if !is_container {
        return from_py_leaf(obj, path, target, memo);
    }
    let key = obj.as_ptr() as usize;
    if let Some((_, v)) = memo.get(&key) {
        return Ok(v.clone());
    }
    let v = deep::grow(|| from_py_leaf(obj, path, target, memo))?;
    memo.insert(key, (obj.clone(), v.clone()));
    Ok(v)
}

fn from_py_leaf<'py>(obj: &Bound<'py, PyAny>, path: &mut Path, target: Option<u64>, memo: &mut Memo<'py>) -> PyResult<Value> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Nil);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => big_int(obj, path),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return match s.to_str() {
            Ok(s) => Ok(Value::str(s)),
            Err(e) => fail(py, path, format!("str is not valid Unicode ({e})")),
        };
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(Rc::new(b.as_bytes().to_vec())));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Bytes(Rc::new(b.to_vec())));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::with_capacity(obj.len().unwrap_or(0));
        for (i, item) in obj.try_iter()?.enumerate() {
            path.0.push(Seg::Index(i));
            let v = from_py_at(&item?, path, target, memo)?;
            path.0.pop();
            items.push(v);
        }
        return Ok(Value::list(items));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = harnvm_core::runtime::value::DictMap::new();
        for (k, item) in dict.iter() {
            let key = match k.cast::<PyString>() {
                Ok(key) => match key.to_str() {
                    Ok(s) => s.to_string(),
                    Err(e) => return fail(py, path, format!("dict key is not valid Unicode ({e})")),
                },
                // Harn dict keys are strings; Harn itself turns an int key
                // (`{[1]: x}`) into its decimal text, so Python int keys do too.
                Err(_) if k.is_instance_of::<PyInt>() && !k.is_instance_of::<PyBool>() => {
                    let text = k.str()?.to_string();
                    if dict.contains(&text)? {
                        return fail(py, path, format!("dict has both the int key {text} and the str key {text:?}"));
                    }
                    text
                }
                Err(_) => {
                    return fail(
                        py,
                        path,
                        format!("dict key {} is a {}, but Harn dict keys are strings (or ints)", k.repr()?, type_name_of(&k)),
                    )
                }
            };
            path.0.push(Seg::Key(key.clone()));
            let v = from_py_at(&item, path, target, memo)?;
            path.0.pop();
            map.insert(Rc::new(key), v);
        }
        return Ok(Value::dict(map));
    }
    if obj.is_instance_of::<PySet>() || obj.is_instance_of::<PyFrozenSet>() {
        // Python already de-duplicated the elements, and Python equality is at
        // least as coarse as Harn's for convertible values, so no Harn-side
        // de-duplication (quadratic) is needed.
        let mut items = Vec::with_capacity(obj.len().unwrap_or(0));
        for (i, item) in obj.try_iter()?.enumerate() {
            path.0.push(Seg::Index(i));
            let v = from_py_at(&item?, path, target, memo)?;
            path.0.pop();
            items.push(v);
        }
        return Ok(Value::Set(Rc::new(items)));
    }
    if obj.is_instance_of::<PyRange>() {
        let (start, stop, step): (i128, i128, i128) =
            (obj.getattr("start")?.extract()?, obj.getattr("stop")?.extract()?, obj.getattr("step")?.extract()?);
        if step != 1 {
            return fail(py, path, format!("only ranges with step 1 convert to a Harn range (got step {step})"));
        }
        return match (i64::try_from(start), i64::try_from(stop)) {
            (Ok(a), Ok(b)) => Ok(Value::range(a, b, false)),
            _ => fail(py, path, "range bounds are out of range for Harn ints (64-bit signed)"),
        };
    }
    if obj.is_instance(timedelta(py)?)? {
        let days: i128 = obj.getattr("days")?.extract()?;
        let secs: i128 = obj.getattr("seconds")?.extract()?;
        let micros: i128 = obj.getattr("microseconds")?.extract()?;
        if micros % 1000 != 0 {
            return fail(py, path, "timedelta has sub-millisecond precision; Harn durations are whole milliseconds");
        }
        let ms = days * 86_400_000 + secs * 1000 + micros / 1000;
        return match i64::try_from(ms) {
            Ok(ms) => Ok(Value::Duration(ms)),
            Err(_) => fail(py, path, "timedelta is out of range for a Harn duration"),
        };
    }
    if obj.is_instance(harn_enum(py)?)? {
        let enum_name: String = obj.getattr("enum_name")?.extract()?;
        let variant: String = obj.getattr("variant")?.extract()?;
        let mut fields = Vec::new();
        for (i, item) in obj.getattr("fields")?.try_iter()?.enumerate() {
            path.0.push(Seg::Index(i));
            let v = from_py_at(&item?, path, target, memo)?;
            path.0.pop();
            fields.push(v);
        }
        return Ok(Value::enum_val(&enum_name, &variant, fields));
    }
    if obj.is_instance(harn_struct(py)?)? {
        let name: String = obj.getattr("name")?.extract()?;
        let mut names = Vec::new();
        let mut values = Vec::new();
        let fields = obj.getattr("fields")?;
        for key in fields.try_iter()? {
            let key = key?;
            let Ok(k) = key.extract::<String>() else {
                return fail(py, path, format!("struct field name {} is not a str", key.repr()?));
            };
            let item = fields.get_item(&key)?;
            path.0.push(Seg::Key(k.clone()));
            let v = from_py_at(&item, path, target, memo)?;
            path.0.pop();
            names.push(Rc::new(k));
            values.push(v);
        }
        let layout = Rc::new(StructLayout { name: Rc::new(name), fields: names });
        return Ok(Value::Struct(Rc::new(StructVal { layout, values })));
    }
    if let Ok(f) = obj.cast::<HarnFunction>() {
        let f = f.get();
        return handle_value(py, path, "HarnFunction", &f.value, f.vm_id, target);
    }
    if let Ok(o) = obj.cast::<HarnObject>() {
        let o = o.get();
        return handle_value(py, path, "HarnObject", &o.value, o.vm_id, target);
    }
    if obj.is_instance(decimal_type(py)?)? {
        let text: String = obj.str()?.extract()?;
        return match harnvm_core::builtins::decimal::parse_exact(&text) {
            Some(d) => Ok(d),
            None => fail(py, path, format!("Decimal('{text}') does not fit a Harn decimal (96-bit, at most 28 decimal places)")),
        };
    }
    fail(py, path, format!("Python type '{}' has no Harn equivalent", type_name_of(obj)))
}

/// A Python int beyond 64 bits. Harn has no big ints; where Harn meets one
/// (`json_parse("123456789012345678901234567890")`) it becomes a float. The
/// conversion does the same when the float holds the int exactly, and
/// refuses it otherwise rather than round it silently.
fn big_int(obj: &Bound<'_, PyAny>, path: &Path) -> PyResult<Value> {
    let py = obj.py();
    let exact = obj.call_method0("__float__").ok().and_then(|f| {
        let back = f.call_method0("__int__").ok()?;
        back.eq(obj).ok()?.then(|| f.extract::<f64>().ok()).flatten()
    });
    match exact {
        Some(f) => Ok(Value::Float(f)),
        None => fail(
            py,
            path,
            "int does not fit a Harn int (64-bit signed) and is not exactly a float; \
             pass it as a str (or a float, accepting the rounding)",
        ),
    }
}

fn handle_value(
    py: Python<'_>,
    path: &Path,
    class: &str,
    value: &Pinned<Value>,
    vm_id: u64,
    target: Option<u64>,
) -> PyResult<Value> {
    if let Some(target) = target {
        if vm_id != target {
            return fail(py, path, format!("this {class} belongs to a different Vm"));
        }
    }
    match value.get() {
        Some(v) => Ok(v.clone()),
        None => fail(py, path, format!("a {class} can only be used on the thread that created it")),
    }
}
