//! The JSON view projection works on (reference §1.4, §5.3).
//!
//! The reference converts every message to serde JSON and back. Here a
//! message is "JSON-normalised" instead: a Harn value already made only of
//! nil, bools, ints, finite floats, strings, lists and dicts is shared as it
//! is (the round trip would rebuild an equal value), and only the lossy
//! parts are rebuilt. Every later step may then assume a JSON-shaped value.

use std::fmt::Write as _;
use std::rc::Rc;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::runtime::error::{VmError, VmResult};
use crate::runtime::ops::dict_get;
use crate::runtime::value::{DictMap, HStr, Value};

/// Deeper values are refused: the canonical writer and the tokeniser
/// recurse, and the reference would exhaust its stack instead.
pub const MAX_DEPTH: usize = 400;

fn too_deep() -> VmError {
    VmError::runtime(format!("transcript_project: value is nested deeper than {MAX_DEPTH} levels"))
}

/// `v` as the reference's VM→JSON→VM round trip leaves it.
pub fn normalize(v: &Value) -> VmResult<Value> {
    Ok(rebuilt(v, 0)?.unwrap_or_else(|| v.clone()))
}

/// `None` when the round trip leaves `v` unchanged (so it can be shared).
fn rebuilt(v: &Value, depth: usize) -> VmResult<Option<Value>> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(match v {
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Str(_) => None,
        Value::Float(f) => (!f.is_finite()).then_some(Value::Nil),
        Value::List(items) => {
            let mut out: Option<Vec<Value>> = None;
            for (i, item) in items.iter().enumerate() {
                match (rebuilt(item, depth + 1)?, &mut out) {
                    (Some(new), Some(out)) => out.push(new),
                    (Some(new), None) => {
                        let mut fresh = Vec::with_capacity(items.len());
                        fresh.extend(items[..i].iter().cloned());
                        fresh.push(new);
                        out = Some(fresh);
                    }
                    (None, Some(out)) => out.push(item.clone()),
                    (None, None) => {}
                }
            }
            out.map(Value::list)
        }
        Value::Dict(map) => {
            let mut out: Option<DictMap> = None;
            for (k, item) in map.iter() {
                if let Some(new) = rebuilt(item, depth + 1)? {
                    out.get_or_insert_with(|| (**map).clone()).insert(k.clone(), new);
                }
            }
            out.map(Value::dict)
        }
        Value::Bytes(bytes) => {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes.as_slice());
            Some(Value::dict_from([("$bytes_b64", Value::str(text))]))
        }
        Value::Struct(s) => {
            let mut map = DictMap::new();
            for (name, field) in s.layout.fields.iter().zip(s.values.iter()) {
                map.insert(name.clone(), normalize_at(field, depth + 1)?);
            }
            Some(Value::dict(map))
        }
        // Sets, ranges, enums, closures, durations, handles: their display text.
        other => Some(Value::str(other.display())),
    })
}

fn normalize_at(v: &Value, depth: usize) -> VmResult<Value> {
    Ok(rebuilt(v, depth)?.unwrap_or_else(|| v.clone()))
}

/// `node.key` when `node` is a dict.
#[inline]
pub fn get<'a>(node: &'a Value, key: &str) -> Option<&'a Value> {
    match node {
        Value::Dict(map) => dict_get(map, key),
        _ => None,
    }
}

/// `node.key` when it is a string.
#[inline]
pub fn get_str<'a>(node: &'a Value, key: &str) -> Option<&'a str> {
    get(node, key).and_then(Value::as_str)
}

/// Appends the canonical JSON of a normalised value (sorted keys, no
/// whitespace, serde_json's scalar forms). With `zero_sign_free`, `-0.0`
/// is written as `0.0`, which makes equal text mean structurally equal
/// JSON (serde compares `-0.0 == 0.0`).
pub fn write_canonical(v: &Value, out: &mut String, zero_sign_free: bool) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => out.push_str(itoa::Buffer::new().format(*n)),
        Value::Float(f) => write_float(if zero_sign_free && *f == 0.0 { 0.0 } else { *f }, out),
        Value::Str(s) => write_string(s, out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out, zero_sign_free);
            }
            out.push(']');
        }
        Value::Dict(map) => {
            // `DictMap` is ordered by byte order of the keys: the canonical order.
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(item, out, zero_sign_free);
            }
            out.push('}');
        }
        // Not reachable for normalised values.
        _ => out.push_str("null"),
    }
}

/// The canonical JSON text of a normalised value.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out, false);
    out
}

/// The float text of the serde_json inside the 0.9.11 oracle: shortest
/// round-trip digits in ryu's layout (`1.0`, `0.00001`, `1000000000000000.0`,
/// `1.5e-7`) but with `+` on positive exponents (`1e+16`). The reference
/// note says `1e16`; the oracle's hashes say `1e+16`, and the oracle wins.
/// Built by hand so the hash does not move with this crate's serde_json.
fn write_float(f: f64, out: &mut String) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let length = digits.len() as i32;
    // The value is 0.DIGITS × 10^kk.
    let kk = exp.parse::<i32>().unwrap_or(0) + 1;
    if neg {
        out.push('-');
    }
    if kk >= length && kk <= 16 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (kk - length) as usize));
        out.push_str(".0");
    } else if 0 < kk && kk <= 16 {
        out.push_str(&digits[..kk as usize]);
        out.push('.');
        out.push_str(&digits[kk as usize..]);
    } else if -5 < kk && kk <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-kk) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if length > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        if kk > 1 {
            out.push('+');
        }
        out.push_str(itoa::Buffer::new().format(kk - 1));
    }
}

/// A JSON string as serde_json writes it: `\" \\ \b \t \n \f \r`, other
/// controls below 0x20 as `\u00xx`, everything else literal.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The body text of a result (`json_text`): a string as it is, anything
/// else as canonical JSON.
pub fn json_text(body: &Value) -> std::borrow::Cow<'_, str> {
    match body {
        Value::Str(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(canonical(other)),
    }
}

/// `"sha256:" + hex(SHA-256(bytes))`.
pub fn sha256_tag(bytes: &[u8]) -> String {
    hex_tag(Sha256::digest(bytes).as_slice())
}

fn hex_tag(digest: &[u8]) -> String {
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// The prefix hash: SHA-256 of the canonical JSON of the message list,
/// streamed one message at a time (same bytes as serialising the list).
pub fn prefix_hash(messages: &[Value]) -> String {
    let mut hasher = Sha256::new();
    let mut buf = String::new();
    hasher.update(b"[");
    for (i, m) in messages.iter().enumerate() {
        buf.clear();
        if i > 0 {
            buf.push(',');
        }
        write_canonical(m, &mut buf, false);
        hasher.update(buf.as_bytes());
    }
    hasher.update(b"]");
    hex_tag(hasher.finalize().as_slice())
}

/// A shared string for a fixed key.
pub fn key(name: &str) -> HStr {
    Rc::new(name.to_string())
}
