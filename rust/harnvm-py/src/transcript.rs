//! `transcript_project` for Python, and its bench fixture.
//!
//! The projection is the core's (`harnvm_core::builtins::transcript`); only
//! the `custom` policy differs from the Harn builtin: its projector is a
//! Python callable, called here with the messages and handed back to the
//! core with `finish_custom`.

use std::time::Instant;

use harnvm_core::builtins::transcript::Projection;
use harnvm_core::runtime::value::{DictMap, Value};
use harnvm_core::VmError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use crate::{convert, errors};

/// Option keys that may hold the custom projector, by priority.
const PROJECTOR_KEYS: [&str; 2] = ["projector", "custom"];

/// A transcript value: a message list or tuple is wrapped as
/// `{_type: "transcript", messages: ...}`; anything else goes as it is (and
/// the core rejects what is not a transcript dict).
fn transcript_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let v = convert::from_py(obj, None)?;
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        return Ok(Value::dict_from([("_type", Value::str("transcript")), ("messages", v)]));
    }
    Ok(v)
}

/// The options value and the Python projector: `options` (nil, a policy
/// name or a dict) with the keyword options laid over it. The projector
/// keys are taken out before conversion; a present `projector` masks
/// `custom`, and a non-callable one counts as absent, as in the builtin.
fn options_value<'py>(
    options: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<(Value, Option<Bound<'py, PyAny>>)> {
    let py_opts = match options {
        Some(o) if o.is_instance_of::<PyDict>() => Some(o.cast::<PyDict>()?.copy()?),
        Some(o) if o.is_instance_of::<PyString>() && kwargs.is_some_and(|k| !k.is_empty()) => {
            let d = PyDict::new(o.py());
            d.set_item("policy", o)?;
            Some(d)
        }
        Some(o) if kwargs.is_none_or(|k| k.is_empty()) => return Ok((convert::from_py(o, None)?, None)),
        Some(o) if !o.is_none() => return Ok((convert::from_py(o, None)?, None)),
        _ => kwargs.map(|k| k.copy()).transpose()?,
    };
    let Some(d) = py_opts else { return Ok((Value::Nil, None)) };
    if let Some(k) = kwargs {
        d.update(k.as_mapping())?;
    }
    let mut projector = None;
    let mut decided = false;
    for key in PROJECTOR_KEYS {
        if let Some(v) = d.get_item(key)? {
            if !decided {
                projector = v.is_callable().then_some(v);
                decided = true;
            }
            d.del_item(key)?;
        }
    }
    Ok((convert::from_py(d.as_any(), None)?, projector))
}

fn core_error(py: Python<'_>, e: &VmError) -> PyErr {
    errors::vm_error(py, e, 0)
}

/// transcript_project(messages_or_transcript, options=None, /, **options)
/// --
///
/// A model-visible projection of a transcript, as Harn's `transcript_project`
/// builtin computes it (harn-vm 0.9.11 results: the same 16-key dict,
/// messages and hashes; only `event["id"]` is fresh each call).
///
/// `messages_or_transcript` is a message list or a transcript dict
/// (`{"_type": "transcript", "messages": [...], "summary": ...}`).
/// `options` is a policy name or an options dict; keyword options are laid
/// over it (`policy="reachability_gc", root_window=4`). For
/// `policy="custom"`, `projector` is a Python callable that receives the
/// message list and returns a list or a dict with `messages`. Invalid
/// options raise `HarnRuntimeError` with the builtin's error text.
#[pyfunction]
#[pyo3(signature = (messages_or_transcript, options = None, /, **kwargs))]
pub fn transcript_project<'py>(
    py: Python<'py>,
    messages_or_transcript: &Bound<'py, PyAny>,
    options: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let transcript = errors::guard(py, || transcript_value(messages_or_transcript))?;
    let (opts, projector) = errors::guard(py, || options_value(options, kwargs))?;
    let job = errors::guard(py, || Projection::prepare(&transcript, &opts, projector.is_some()).map_err(|e| core_error(py, &e)))?;
    let result = match projector {
        Some(f) if job.needs_projector() => {
            let messages = errors::guard(py, || convert::to_py(py, &job.messages(), 0))?;
            let returned = f.call1((messages,))?;
            let returned = errors::guard(py, || convert::from_py(&returned, None))?;
            errors::guard(py, || job.finish_custom(&returned).map_err(|e| core_error(py, &e)))?
        }
        _ => errors::guard(py, || job.run().map_err(|e| core_error(py, &e)))?,
    };
    errors::guard(py, || convert::to_py(py, &result, 0))
}

/// The bench fixture: runs `loops` projections of one transcript inside
/// Rust and returns the elapsed ns. Timed per call, as the reference's
/// `project_for_bench`: option parsing, the JSON view of the messages, the
/// policy, the guard, the hash and the result dict with its event. The
/// Python → Harn conversion of the input happens once, outside the timing.
/// For `custom`, the projector is the Rust stand-in `synthetic` (one
/// unmatched synthetic message per input message, the worst case) or
/// `identity` (returns the messages).
#[pyfunction]
#[pyo3(signature = (messages_or_transcript, options, loops, projector = None))]
pub fn _transcript_bench(
    py: Python<'_>,
    messages_or_transcript: &Bound<'_, PyAny>,
    options: &Bound<'_, PyAny>,
    loops: u64,
    projector: Option<&str>,
) -> PyResult<u64> {
    let transcript = errors::guard(py, || transcript_value(messages_or_transcript))?;
    let (opts, _) = errors::guard(py, || options_value(Some(options), None))?;
    let stand_in = match projector {
        None => None,
        Some("synthetic") => Some(true),
        Some("identity") => Some(false),
        Some(other) => return Err(errors::argument(py, format!("unknown projector stand-in {other:?} (synthetic, identity)"))),
    };
    errors::guard(py, || {
        let started = Instant::now();
        for _ in 0..loops {
            let job = Projection::prepare(&transcript, &opts, stand_in.is_some()).map_err(|e| core_error(py, &e))?;
            let result = match stand_in {
                Some(synthetic) if job.needs_projector() => {
                    let returned = if synthetic { synthetic_messages(&job.messages()) } else { job.messages() };
                    job.finish_custom(&returned)
                }
                _ => job.run(),
            };
            std::hint::black_box(result.map_err(|e| core_error(py, &e))?);
        }
        Ok(started.elapsed().as_nanos() as u64)
    })
}

/// One `{role: "system", content: "synthetic <i>"}` per message.
fn synthetic_messages(messages: &Value) -> Value {
    let n = match messages {
        Value::List(items) => items.len(),
        _ => 0,
    };
    Value::list(
        (0..n)
            .map(|i| {
                let mut m = DictMap::new();
                m.insert(std::rc::Rc::new("role".to_string()), Value::str("system"));
                m.insert(std::rc::Rc::new("content".to_string()), Value::str(format!("synthetic {i}")));
                Value::dict(m)
            })
            .collect(),
    )
}
