//! The module boundary: the Python module resolver behind `ModuleLoader`,
//! host-call arity checks, and the JSON-compatible marshalling of
//! `Vm.call_export_typed` (harn-vm's `harn_entry` rules: JSON null/bool/
//! number/string/array/object ↔ Harn; bytes as `{"$bytes_b64": ...}`,
//! structs as objects, non-finite floats as null, other values as their
//! display text).

use harnvm_core::compile::modules::Export;
use harnvm_core::{ModuleLoader, ModuleSource, Value};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::rc::Rc;

use crate::errors;

/// Adapts a `harnvm._modules.ModuleResolver` (any object with
/// `resolve(spec, importer) -> (key, source) | None`) to the core.
/// It holds no GIL-bound reference: the compiler may run with the GIL
/// released, and each `load` attaches for the resolver call.
pub struct PyLoader<'py> {
    resolver: Py<PyAny>,
    /// The first Python exception the resolver raised (re-raised as the cause).
    pub failure: Option<PyErr>,
    _py: std::marker::PhantomData<&'py ()>,
}

impl<'py> PyLoader<'py> {
    pub fn new(resolver: Bound<'py, PyAny>) -> PyLoader<'py> {
        PyLoader { resolver: resolver.unbind(), failure: None, _py: std::marker::PhantomData }
    }

    /// Attaches the resolver's own exception (if any) as the cause of `err`.
    pub fn with_cause(&mut self, py: Python<'_>, err: PyErr) -> PyErr {
        if let Some(cause) = self.failure.take() {
            err.set_cause(py, Some(cause));
        }
        err
    }
}

impl ModuleLoader for PyLoader<'_> {
    fn load(&mut self, spec: &str, importer: &str) -> Result<Option<ModuleSource>, String> {
        let found = Python::attach(|py| {
            self.resolver.bind(py).call_method1("resolve", (spec, importer)).and_then(|r| {
                if r.is_none() {
                    Ok(None)
                } else {
                    r.extract::<(String, String)>().map(Some)
                }
            })
        });
        match found {
            Ok(None) => Ok(None),
            Ok(Some((key, source))) => Ok(Some(ModuleSource { key, source })),
            Err(e) => {
                let msg = format!("Import error: loading module '{spec}' failed: {e}");
                self.failure.get_or_insert(e);
                Err(msg)
            }
        }
    }
}

/// Refuses a host call whose argument count does not fit the export's
/// parameters (Harn itself pads with nil; at the boundary that hides bugs).
/// Parameters with a default and a rest parameter are optional.
pub fn check_arity(py: Python<'_>, import_path: &str, export: &Export, given: usize) -> PyResult<()> {
    let Some(proto) = &export.proto else {
        return Ok(());
    };
    let required = proto.params.iter().filter(|p| !p.has_default && !p.rest).count();
    let max = if proto.has_rest { usize::MAX } else { proto.params.len() };
    if given >= required && given <= max {
        return Ok(());
    }
    let label = format!("{import_path}.{}", export.name);
    let names: Vec<&str> = proto.params.iter().map(|p| p.name.as_str()).collect();
    let expected = if max == usize::MAX {
        format!("at least {required}")
    } else if required == max {
        format!("{required}")
    } else {
        format!("{required} to {max}")
    };
    let plural = if expected == "1" { "argument" } else { "arguments" };
    Err(errors::argument(py, format!("{label}({}) takes {expected} {plural} but {given} were given", names.join(", "))))
}

// ---------------------------------------------------------------------------
// JSON-compatible marshalling

const MAX_JSON_DEPTH: usize = crate::convert::MAX_DEPTH;

fn render(path: &[String]) -> String {
    let mut out = String::from("payload");
    for p in path {
        out.push_str(p);
    }
    out
}

/// A JSON-compatible Python value (None, bool, int, float, str, list/tuple,
/// dict with str keys) → Harn. Ints beyond 64 bits become floats (as JSON
/// numbers do in harn-vm); NaN/infinity and every other type are refused.
pub fn payload_to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    json_in(obj, &mut Vec::new())
}

fn json_in(obj: &Bound<'_, PyAny>, path: &mut Vec<String>) -> PyResult<Value> {
    let py = obj.py();
    let bad =
        |path: &[String], what: String| -> PyErr { errors::conversion(py, format!("bad payload: {} {what}", render(path))) };
    if path.len() > MAX_JSON_DEPTH {
        return Err(bad(path, format!("is nested more than {MAX_JSON_DEPTH} levels deep (or cyclic)")));
    }
    if obj.is_none() {
        return Ok(Value::Nil);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Int(i));
        }
        return match obj.extract::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(bad(path, "is an int too large for a JSON number".to_string())),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let f = f.value();
        if !f.is_finite() {
            return Err(bad(path, format!("is {f}, which JSON cannot represent")));
        }
        return Ok(Value::Float(f));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return match s.to_str() {
            Ok(s) => Ok(Value::str(s)),
            Err(e) => Err(bad(path, format!("is not valid Unicode ({e})"))),
        };
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut items = Vec::with_capacity(obj.len().unwrap_or(0));
        for (i, item) in obj.try_iter()?.enumerate() {
            path.push(format!("[{i}]"));
            let v = json_in(&item?, path)?;
            path.pop();
            items.push(v);
        }
        return Ok(Value::list(items));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = harnvm_core::runtime::value::DictMap::new();
        for (k, item) in dict.iter() {
            let Ok(key) = k.cast::<PyString>() else {
                return Err(bad(path, format!("has the key {}, but JSON object keys are strings", k.repr()?)));
            };
            let key = key.to_str().map_err(|e| bad(path, format!("has a key that is not valid Unicode ({e})")))?.to_string();
            path.push(format!("[{key:?}]"));
            let v = json_in(&item, path)?;
            path.pop();
            map.insert(Rc::new(key), v);
        }
        return Ok(Value::dict(map));
    }
    let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    Err(bad(path, format!("is a {type_name}, which is not JSON-compatible")))
}

/// A Harn value → a JSON-compatible Python value (see the module docs).
pub fn value_to_json<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    json_out(py, v, 0)
}

fn json_out<'py>(py: Python<'py>, v: &Value, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    if depth > MAX_JSON_DEPTH {
        return Err(errors::conversion(py, format!("Harn result is nested more than {MAX_JSON_DEPTH} levels deep")));
    }
    Ok(match v {
        Value::Nil => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) if f.is_finite() => PyFloat::new(py, *f).into_any(),
        Value::Float(_) => py.None().into_bound(py),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => {
            let out = PyDict::new(py);
            out.set_item("$bytes_b64", base64(b))?;
            out.into_any()
        }
        Value::List(items) => {
            let out = PyList::empty(py);
            for item in items.iter() {
                out.append(json_out(py, item, depth + 1)?)?;
            }
            out.into_any()
        }
        Value::Dict(map) => {
            let out = PyDict::new(py);
            for (k, item) in map.iter() {
                out.set_item(k.as_str(), json_out(py, item, depth + 1)?)?;
            }
            out.into_any()
        }
        Value::Struct(s) => {
            let out = PyDict::new(py);
            let mut fields: Vec<(&str, &Value)> = s.layout.fields.iter().map(|f| f.as_str()).zip(s.values.iter()).collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            for (k, item) in fields {
                out.set_item(k, json_out(py, item, depth + 1)?)?;
            }
            out.into_any()
        }
        other => PyString::new(py, &other.display()).into_any(),
    })
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(super::base64(input.as_bytes()), want);
        }
    }
}
