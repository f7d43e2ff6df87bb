//! The JSON view projection works on (reference §1.4, §5.3).
//!
//! The reference converts every message to serde JSON and back. Here a
//! message is "JSON-normalised" instead: a Harn value already made only of
//! nil, bools, ints, finite floats, strings, lists and dicts is shared as it
//! is (the round trip would rebuild an equal value), and only the lossy
//! parts are rebuilt. Every later step may then assume a JSON-shaped value.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::builtins::args::interned;
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

/// Where canonical JSON goes: a `String`, or the SHA-256 hasher through a
/// small buffer (so hashing never builds the whole text).
pub trait Sink {
    fn put(&mut self, s: &str);
    #[inline]
    fn put_byte(&mut self, b: u8) {
        debug_assert!(b.is_ascii());
        self.put(std::str::from_utf8(std::slice::from_ref(&b)).unwrap_or(""));
    }
}

impl Sink for String {
    #[inline]
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
    #[inline]
    fn put_byte(&mut self, b: u8) {
        self.push(b as char);
    }
}

/// Bytes written here go to a SHA-256 hasher in buffer-sized chunks.
pub struct HashSink {
    hasher: Sha256,
    buf: [u8; HashSink::CAP],
    len: usize,
}

impl HashSink {
    const CAP: usize = 4096;

    pub fn new() -> Box<HashSink> {
        Box::new(HashSink { hasher: Sha256::new(), buf: [0; HashSink::CAP], len: 0 })
    }

    #[inline]
    fn flush(&mut self) {
        self.hasher.update(&self.buf[..self.len]);
        self.len = 0;
    }

    /// `"sha256:" + hex` of everything written.
    pub fn finish(mut self: Box<Self>) -> String {
        self.flush();
        hex_tag(self.hasher.finalize().as_slice())
    }
}

impl Sink for HashSink {
    #[inline]
    fn put(&mut self, s: &str) {
        let bytes = s.as_bytes();
        if self.len + bytes.len() <= HashSink::CAP {
            self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.flush();
        if bytes.len() >= HashSink::CAP {
            self.hasher.update(bytes);
        } else {
            self.buf[..bytes.len()].copy_from_slice(bytes);
            self.len = bytes.len();
        }
    }
    #[inline]
    fn put_byte(&mut self, b: u8) {
        if self.len == HashSink::CAP {
            self.flush();
        }
        self.buf[self.len] = b;
        self.len += 1;
    }
}

/// Appends the canonical JSON of a normalised value (sorted keys, no
/// whitespace, serde_json's scalar forms). With `zero_sign_free`, `-0.0`
/// is written as `0.0`, which makes equal text mean structurally equal
/// JSON (serde compares `-0.0 == 0.0`).
pub fn write_canonical<S: Sink + ?Sized>(v: &Value, out: &mut S, zero_sign_free: bool) {
    match v {
        Value::Nil => out.put("null"),
        Value::Bool(b) => out.put(if *b { "true" } else { "false" }),
        Value::Int(n) => out.put(itoa::Buffer::new().format(*n)),
        Value::Float(f) => {
            let mut text = String::new();
            write_float(if zero_sign_free && *f == 0.0 { 0.0 } else { *f }, &mut text);
            out.put(&text);
        }
        Value::Str(s) => write_string(s, out),
        Value::List(items) => {
            out.put_byte(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put_byte(b',');
                }
                write_canonical(item, out, zero_sign_free);
            }
            out.put_byte(b']');
        }
        Value::Dict(map) => {
            // `DictMap` is ordered by byte order of the keys: the canonical order.
            out.put_byte(b'{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.put_byte(b',');
                }
                write_string(k, out);
                out.put_byte(b':');
                write_canonical(item, out, zero_sign_free);
            }
            out.put_byte(b'}');
        }
        // Not reachable for normalised values.
        _ => out.put("null"),
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

/// Bytes a JSON string escapes: `"`, `\\` and controls below 0x20.
const ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A JSON string as serde_json writes it: `\" \\ \b \t \n \f \r`, other
/// controls below 0x20 as `\u00xx`, everything else literal.
pub fn write_string<S: Sink + ?Sized>(s: &str, out: &mut S) {
    out.put_byte(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !ESCAPED[b as usize] {
            continue;
        }
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            _ => "",
        };
        out.put(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let text = [b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]];
            out.put(std::str::from_utf8(&text).unwrap_or(""));
        } else {
            out.put(escape);
        }
        start = i + 1;
    }
    out.put(&s[start..]);
    out.put_byte(b'"');
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(7 + 2 * digest.len());
    out.push_str("sha256:");
    for &byte in digest {
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 15) as usize] as char);
    }
    out
}

/// The prefix hash: SHA-256 of the canonical JSON of the message list,
/// streamed into the hasher (same bytes as serialising the list).
pub fn prefix_hash(messages: &[Value]) -> String {
    let mut sink = HashSink::new();
    sink.put_byte(b'[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            sink.put_byte(b',');
        }
        write_canonical(m, &mut *sink, false);
    }
    sink.put_byte(b']');
    sink.finish()
}

/// The shared string for a fixed key (one allocation per thread and name).
pub fn key(name: &'static str) -> HStr {
    interned(name)
}

/// A fixed string value, shared like a key.
pub fn fixed(text: &'static str) -> Value {
    Value::Str(interned(text))
}

/// A dict with fixed keys, built by insertion (no sort buffer).
pub fn dict_of<const N: usize>(entries: [(&'static str, Value); N]) -> Value {
    let mut map = DictMap::new();
    for (k, v) in entries {
        map.insert(key(k), v);
    }
    Value::dict(map)
}
