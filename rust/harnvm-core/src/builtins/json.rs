//! JSON builtins: `json_parse`, `json_stringify`, `json_extract`.
//!
//! Parsing: objects become dicts (keys sorted), integral numbers that fit an
//! i64 become ints, every other number a float.
//! Stringifying is Harn's own compact formatter, not `display`: floats use
//! Rust's shortest form (`1.0` → `1`), structs are objects with sorted keys,
//! sets are arrays, ranges their display string, bytes
//! `{"$bytes_b64": "..."}`, and everything else (enums, closures, pairs,
//! durations, ...) `null`.

use std::fmt::Write as _;

use base64::Engine as _;

use super::args::{done, opt_text_arg, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{LimitKind, VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "json_parse", imp: Native(json_parse) },
    BuiltinDef { name: "json_stringify", imp: Native(json_stringify) },
    BuiltinDef { name: "json_extract", imp: Native(json_extract) },
];

/// Containers nested deeper than this are refused by `to_json` (the writer
/// recurses; this keeps it far from the native stack limit).
const MAX_JSON_DEPTH: usize = 512;

/// A parsed JSON document as a Harn value.
pub fn from_json(json: &serde_json::Value) -> Value {
    from_json_polled(json, &mut || Ok(())).unwrap_or_default()
}

/// `from_json`, calling `poll` once per array or object: a document of
/// millions of nodes is built under the run's time limit and interrupts.
fn from_json_polled(json: &serde_json::Value, poll: &mut dyn FnMut() -> VmResult<()>) -> VmResult<Value> {
    Ok(match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::str(s.as_str()),
        serde_json::Value::Array(items) => {
            poll()?;
            Value::list(items.iter().map(|item| from_json_polled(item, poll)).collect::<VmResult<Vec<_>>>()?)
        }
        serde_json::Value::Object(map) => {
            poll()?;
            let mut dict = DictMap::new();
            for (k, v) in map {
                dict.insert(HStr::new(k.clone()), from_json_polled(v, poll)?);
            }
            Value::dict(dict)
        }
    })
}

/// Parses JSON text into a Harn value; the error is serde's message.
pub fn parse_json(text: &str) -> Result<Value, String> {
    crate::runtime::deep::grow_large(|| {
        serde_json::from_str::<serde_json::Value>(text).map(|json| from_json(&json)).map_err(|e| e.to_string())
    })
}

/// `parse_json` for a running program: the text's size is charged as work
/// before parsing (so a parse that starts past the deadline does not run),
/// and building the value polls the run's budgets. `Ok(Err(..))` is a
/// syntax error (serde's message).
fn parse_json_in_run(text: &str) -> VmResult<Result<Value, String>> {
    crate::runtime::native::charge_work(text.len())?;
    crate::runtime::deep::grow_large(|| match serde_json::from_str::<serde_json::Value>(text) {
        Ok(json) => {
            crate::runtime::native::poll()?;
            from_json_polled(&json, &mut crate::runtime::native::poll).map(Ok)
        }
        Err(e) => Ok(Err(e.to_string())),
    })
}

/// Compact JSON text for a Harn value (at most `Limits::default().max_alloc` bytes).
pub fn to_json(v: &Value) -> VmResult<String> {
    to_json_capped(v, crate::runtime::native::Limits::default().max_alloc)
}

/// Compact JSON text for a Harn value, or a memory-limit error once the text
/// is longer than `cap` bytes (a value that shares sub-values can have a text
/// exponentially longer than itself).
pub fn to_json_capped(v: &Value, cap: usize) -> VmResult<String> {
    use crate::runtime::deep::{expanded_size_with, PROBE_TEXT};
    let mut out = String::new();
    if cap > PROBE_TEXT {
        match write_json(v, &mut out, 0, PROBE_TEXT) {
            Ok(()) if out.len() <= PROBE_TEXT => return Ok(out),
            Ok(()) | Err(_) => {}
        }
        // Each node written out (lists, sets, dicts, structs and their
        // members) adds a byte or more: a value with more than `cap` of them
        // cannot fit, so it is refused without writing it.
        let written = |v: &Value| matches!(v, Value::List(_) | Value::Set(_) | Value::Dict(_) | Value::Struct(_));
        if expanded_size_with(v, cap as u64, MAX_JSON_DEPTH, written) > cap as u64 {
            return Err(too_long(cap));
        }
        out.clear();
    }
    write_json(v, &mut out, 0, cap)?;
    if out.len() > cap {
        return Err(too_long(cap));
    }
    Ok(out)
}

fn too_long(cap: usize) -> VmError {
    VmError::limit(LimitKind::Memory, format!("json_stringify: the JSON text of this value is longer than {cap} bytes"))
}

fn write_json(v: &Value, out: &mut String, depth: usize, cap: usize) -> VmResult<()> {
    if depth > MAX_JSON_DEPTH {
        return Err(VmError::throw_msg(format!("json_stringify: value is nested deeper than {MAX_JSON_DEPTH} levels")));
    }
    if out.len() > cap {
        return Err(too_long(cap));
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(f) => write_json_float(*f, out),
        Value::Str(s) => write_json_string(s, out),
        Value::List(items) | Value::Set(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                crate::runtime::deep::grow(|| write_json(item, out, depth + 1, cap))?;
            }
            out.push(']');
        }
        Value::Dict(map) => write_json_object(map.iter().map(|(k, v)| (k.as_str(), v)), out, depth, cap)?,
        Value::Struct(s) => {
            let mut fields: Vec<(&str, &Value)> = s.layout.fields.iter().map(|f| f.as_str()).zip(s.values.iter()).collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            write_json_object(fields.into_iter(), out, depth, cap)?;
        }
        Value::Range(_) => write_json_string(&v.display(), out),
        Value::Bytes(bytes) => {
            out.push_str("{\"$bytes_b64\":");
            write_json_string(&base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()), out);
            out.push('}');
        }
        // 0.9.11 writes a decimal as its text, keeping the exact digits.
        Value::Object(_) if v.as_decimal().is_some() => write_json_string(&v.display(), out),
        _ => out.push_str("null"),
    }
    Ok(())
}

/// A float as harn 0.9.11 writes it in JSON: the shortest round-trip text
/// with a fraction or an exponent (`1.0`, `-0.0`, `1e+16`, `1.5e-7`);
/// NaN and infinities are `null`.
fn write_json_float(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    // serde_json writes finite floats in that form already.
    out.push_str(&serde_json::to_string(&f).unwrap_or_else(|_| "null".to_string()));
}

fn write_json_object<'a>(
    fields: impl Iterator<Item = (&'a str, &'a Value)>,
    out: &mut String,
    depth: usize,
    cap: usize,
) -> VmResult<()> {
    out.push('{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(k, out);
        out.push(':');
        crate::runtime::deep::grow(|| write_json(v, out, depth + 1, cap))?;
    }
    out.push('}');
    Ok(())
}

/// A JSON string literal: `\" \\ \n \r \t` escaped, other control chars as `\u00XX`.
pub fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The JSON inside LLM-style prose: the body of the first ``` fence, else the
/// first balanced `{...}`, else the first balanced `[...]`, else the text.
pub fn extract_json_text(text: &str) -> &str {
    let text = text.trim();
    if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        // Skip the fence's language tag line.
        let body = after.find('\n').map_or(after, |nl| &after[nl + 1..]);
        if let Some(end) = body.find("```") {
            return body[..end].trim();
        }
    }
    balanced(text, b'{', b'}').or_else(|| balanced(text, b'[', b']')).unwrap_or(text)
}

/// The first `open ... close` span with balanced brackets outside strings.
fn balanced(text: &str, open: u8, close: u8) -> Option<&str> {
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|&b| b == open)?;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == open {
            depth += 1;
        } else if b == close {
            depth -= 1;
            if depth == 0 {
                return Some(&text[start..=i]);
            }
        }
    }
    None
}

fn json_parse(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match parse_json_in_run(&text_arg(args, 0))? {
        Ok(v) => done(v),
        Err(e) => Err(VmError::throw_msg(format!("JSON parse error: {e}"))),
    }
}

fn json_stringify(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(to_json_capped(arg(args, 0), ctx.limits.max_alloc)?))
}

/// `json_extract(text, key?)`: parses the JSON found in `text`, optionally
/// returning one key of the resulting dict.
fn json_extract(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    if args.is_empty() {
        return Err(VmError::throw_msg("json_extract requires at least 1 argument: text"));
    }
    let text = text_arg(args, 0);
    let parsed = parse_json_in_run(extract_json_text(&text))?
        .map_err(|e| VmError::throw_msg(format!("json_extract: failed to parse JSON: {e}")))?;
    let Some(key) = opt_text_arg(args, 1) else {
        return done(parsed);
    };
    match &parsed {
        Value::Dict(map) => match map.get(&key.to_string()) {
            Some(v) => done(v.clone()),
            None => Err(VmError::throw_msg(format!("json_extract: key '{key}' not found"))),
        },
        _ => Err(VmError::throw_msg("json_extract: parsed value is not a dict, cannot extract key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn parse(text: &str) -> Value {
        parse_json(text).unwrap()
    }

    #[test]
    fn parse_numbers_and_objects() {
        let v = parse(r#"{"b": [1, 2.5, 1.0], "a": null, "big": 9223372036854775807, "huge": 18446744073709551615}"#);
        assert_eq!(v.display(), "{a: nil, b: [1, 2.5, 1.0], big: 9223372036854775807, huge: 18446744073709552000}");
        let Value::Dict(map) = &v else { panic!() };
        assert_eq!(map[&"big".to_string()].type_name(), "int");
        assert_eq!(map[&"huge".to_string()].type_name(), "float");
        assert!(parse_json("not json").unwrap_err().contains("expected"));
    }

    #[test]
    fn float_text_follows_harn_0_9_11() {
        // As printed by harn 0.9.11's json_stringify.
        let floats = [1.0, -0.0, 1e20, 1e21, 1.5e-7, 0.1, 1e15, 1e16, 0.00001, 0.000001, f64::NAN];
        let v = Value::list(floats.iter().map(|f| Value::Float(*f)).collect());
        assert_eq!(to_json(&v).unwrap(), "[1.0,-0.0,1e+20,1e+21,1.5e-7,0.1,1000000000000000.0,1e+16,0.00001,1e-6,null]");
    }

    #[test]
    fn stringify_rules() {
        let d = Value::dict_from([
            ("s", Value::str("a\"b\\c\nd\u{1b}")),
            ("f", Value::Float(1.0)),
            ("g", Value::Float(0.5)),
            ("l", Value::list(vec![Value::Int(1), Value::Nil, Value::Bool(true)])),
            ("r", Value::range(1, 5, true)),
            ("e", Value::ok(Value::Int(1))),
            ("set", crate::builtins::collections::set_value(&[Value::Int(2), Value::Int(2)])),
            ("bytes", Value::Bytes(Rc::new(b"hi".to_vec()))),
            ("d", Value::Duration(5000)),
        ]);
        assert_eq!(
            to_json(&d).unwrap(),
            r#"{"bytes":{"$bytes_b64":"aGk="},"d":null,"e":null,"f":1.0,"g":0.5,"l":[1,null,true],"r":"1 to 5","s":"a\"b\\c\nd\u001b","set":[2]}"#
        );
    }

    #[test]
    fn stringify_refuses_a_dag_whose_text_is_too_long_without_writing_it() {
        let mut v = Value::Int(1);
        for _ in 0..60 {
            v = Value::list(vec![v.clone(), v]);
        }
        let err = to_json_capped(&v, 1 << 28).unwrap_err();
        assert!(err.message().contains("longer than"), "{}", err.message());
        // Pairs are written as null: their shared children do not count.
        let mut p = Value::Int(1);
        for _ in 0..60 {
            p = Value::pair(p.clone(), p);
        }
        assert_eq!(to_json_capped(&Value::list(vec![p]), 1 << 28).unwrap(), "[null]");
        // A small shared value is written out in full.
        let mut s = Value::Int(1);
        for _ in 0..3 {
            s = Value::list(vec![s.clone(), s]);
        }
        assert_eq!(to_json_capped(&s, 1 << 28).unwrap(), "[[[1,1],[1,1]],[[1,1],[1,1]]]");
    }

    #[test]
    fn stringify_refuses_absurd_nesting() {
        let mut v = Value::list(vec![]);
        for _ in 0..10_000 {
            v = Value::list(vec![v]);
        }
        assert!(to_json(&v).unwrap_err().message().contains("nested deeper"));
    }

    #[test]
    fn builtin_errors() {
        use super::super::callback::test_driver::{no_callback, run_builtin};
        let call = |name: &str, args: &[&str]| {
            let args: Vec<Value> = args.iter().map(|a| Value::str(*a)).collect();
            run_builtin(name, &args, &no_callback).map(|v| v.display())
        };
        assert_eq!(call("json_parse", &["[1, 2.0]"]), Ok("[1, 2.0]".into()));
        assert_eq!(
            call("json_parse", &["{oops"]),
            Err("Thrown: JSON parse error: key must be a string at line 1 column 2".into())
        );
        assert_eq!(call("json_extract", &["x {\"name\": \"bob\"} y", "name"]), Ok("bob".into()));
        assert_eq!(call("json_extract", &["{\"a\": 1}", "b"]), Err("Thrown: json_extract: key 'b' not found".into()));
        let bad = call("json_extract", &["not json at all"]).unwrap_err();
        assert!(bad.starts_with("Thrown: json_extract: failed to parse JSON: "), "{bad}");
        assert_eq!(call("json_stringify", &["line\nbreak"]), Ok("\"line\\nbreak\"".into()));
    }

    #[test]
    fn extraction() {
        assert_eq!(extract_json_text("Here:\n```json\n{\"a\": 1}\n```\nDone."), "{\"a\": 1}");
        assert_eq!(extract_json_text("```\n[1, 2]\n```"), "[1, 2]");
        assert_eq!(extract_json_text("x {\"a\": 1}. Later {\"b\": 2}"), "{\"a\": 1}");
        assert_eq!(extract_json_text(r#"{"m": "hi {there} \" ]"} tail"#), r#"{"m": "hi {there} \" ]"}"#);
        assert_eq!(extract_json_text("data: [1, [2, 3]] end"), "[1, [2, 3]]");
        assert_eq!(extract_json_text("  plain  "), "plain");
    }
}
