//! The `harness` capability handle that harn 0.9 threads into
//! `fn main(harness: Harness)`, and its sub-handles (`harness.stdio`, ...).
//!
//! A handle is an `Object::Opaque` holding a [`Handle`]; property access
//! (`harness.stdio`) lives here so `ops::get_property` can answer it, and
//! the methods (`harness.stdio.println(..)`) live in `builtins::harness`.

use std::rc::Rc;

use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{Object, Value};

/// Which slice of the harness a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HarnessKind {
    Root,
    Stdio,
    Clock,
    Fs,
    Env,
    Random,
    Net,
    Process,
    Crypto,
    System,
    Llm,
}

impl HarnessKind {
    pub const fn type_name(self) -> &'static str {
        match self {
            HarnessKind::Root => "Harness",
            HarnessKind::Stdio => "HarnessStdio",
            HarnessKind::Clock => "HarnessClock",
            HarnessKind::Fs => "HarnessFs",
            HarnessKind::Env => "HarnessEnv",
            HarnessKind::Random => "HarnessRandom",
            HarnessKind::Net => "HarnessNet",
            HarnessKind::Process => "HarnessProcess",
            HarnessKind::Crypto => "HarnessCrypto",
            HarnessKind::System => "HarnessSystem",
            HarnessKind::Llm => "HarnessLlm",
        }
    }

    /// The field of the root handle that reaches this sub-handle.
    pub const fn field_name(self) -> &'static str {
        match self {
            HarnessKind::Root => "harness",
            HarnessKind::Stdio => "stdio",
            HarnessKind::Clock => "clock",
            HarnessKind::Fs => "fs",
            HarnessKind::Env => "env",
            HarnessKind::Random => "random",
            HarnessKind::Net => "net",
            HarnessKind::Process => "process",
            HarnessKind::Crypto => "crypto",
            HarnessKind::System => "system",
            HarnessKind::Llm => "llm",
        }
    }

    fn from_field(name: &str) -> Option<HarnessKind> {
        Some(match name {
            "stdio" => HarnessKind::Stdio,
            "clock" => HarnessKind::Clock,
            "fs" => HarnessKind::Fs,
            "env" => HarnessKind::Env,
            "random" => HarnessKind::Random,
            "net" => HarnessKind::Net,
            "process" => HarnessKind::Process,
            "crypto" => HarnessKind::Crypto,
            "system" => HarnessKind::System,
            "llm" => HarnessKind::Llm,
            _ => return None,
        })
    }

    /// Host capabilities: harnvm has no host layer yet, so their methods
    /// fail with a capability error instead of touching the machine.
    pub const fn is_host(self) -> bool {
        matches!(
            self,
            HarnessKind::Fs | HarnessKind::Env | HarnessKind::Net | HarnessKind::Process | HarnessKind::System | HarnessKind::Llm
        )
    }
}

/// The payload of a harness handle.
#[derive(Debug, Clone, Copy)]
pub struct Handle {
    pub kind: HarnessKind,
    /// Wall-clock Unix time (ms) when the VM clock read 0, so that
    /// `harness.clock.now_ms()` follows the VM's (possibly virtual) clock.
    pub epoch_origin_ms: f64,
}

pub fn handle_value(handle: Handle) -> Value {
    Value::Object(Rc::new(Object::Opaque {
        type_name: handle.kind.type_name(),
        display: format!("<{}>", handle.kind.type_name()),
        data: std::cell::RefCell::new(Box::new(handle)),
    }))
}

/// The handle inside `v`, if `v` is a harness handle.
pub fn handle_of(v: &Value) -> Option<Handle> {
    match v {
        Value::Object(o) => match &**o {
            Object::Opaque { data, .. } => data.borrow().downcast_ref::<Handle>().copied(),
            _ => None,
        },
        _ => None,
    }
}

/// `harness.<name>`: the root answers its sub-handles; everything else is
/// a type error worded as harn 0.9.11 words it.
pub fn property(handle: Handle, name: &str, optional: bool) -> VmResult<Value> {
    if handle.kind == HarnessKind::Root {
        if let Some(kind) = HarnessKind::from_field(name) {
            return Ok(handle_value(Handle { kind, ..handle }));
        }
    }
    if optional {
        return Ok(Value::Nil);
    }
    let type_name = handle.kind.type_name();
    Err(VmError::type_error(if handle.kind == HarnessKind::Root {
        format!(
            "cannot access property `{name}` on {type_name} — Harness exposes `stdio`, `clock`, `fs`, `env`, `random`, `net`, `system`"
        )
    } else {
        format!("cannot access property `{name}` on {type_name}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Handle {
        Handle { kind: HarnessKind::Root, epoch_origin_ms: 0.0 }
    }

    #[test]
    fn sub_handles_and_display() {
        let stdio = property(root(), "stdio", false).unwrap();
        assert_eq!(stdio.display(), "<HarnessStdio>");
        assert_eq!(handle_of(&stdio).unwrap().kind, HarnessKind::Stdio);
        assert_eq!(handle_value(root()).display(), "<Harness>");
        assert!(handle_of(&Value::Int(1)).is_none());
    }

    #[test]
    fn unknown_properties_are_type_errors() {
        let e = property(root(), "foo", false).unwrap_err();
        assert!(e.message().starts_with("Type error: cannot access property `foo` on Harness — Harness exposes"));
        assert!(property(root(), "foo", true).unwrap().is_nil());
        let stdio = handle_of(&property(root(), "stdio", false).unwrap()).unwrap();
        assert_eq!(
            property(stdio, "clock", false).unwrap_err().message(),
            "Type error: cannot access property `clock` on HarnessStdio"
        );
    }
}
