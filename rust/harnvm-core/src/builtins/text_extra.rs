//! Text builtins named after harn 0.9.11's: `index_of`, `chars`, `repeat`,
//! `indent`, `dedent`, `word_wrap`, `pascal_to_camel`, `camel_to_pascal`,
//! and `json_stringify_pretty`. Text arguments coerce as the other string
//! builtins do (a non-string is its display text).

use super::args::{check_alloc, done, text_arg};
use super::json::to_json;
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "index_of", imp: Native(index_of) },
    BuiltinDef { name: "chars", imp: Native(chars) },
    BuiltinDef { name: "repeat", imp: Native(repeat) },
    BuiltinDef { name: "indent", imp: Native(indent) },
    BuiltinDef { name: "dedent", imp: Native(dedent) },
    BuiltinDef { name: "word_wrap", imp: Native(word_wrap) },
    BuiltinDef { name: "pascal_to_camel", imp: Native(pascal_to_camel) },
    BuiltinDef { name: "camel_to_pascal", imp: Native(camel_to_pascal) },
    BuiltinDef { name: "json_stringify_pretty", imp: Native(json_stringify_pretty) },
];

/// The longest text `repeat` builds (harn 0.9.11's bound).
const MAX_REPEAT_BYTES: u128 = 16 * 1024 * 1024;

/// Character index of the first `needle` in `haystack`, or -1.
fn index_of(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let hay = text_arg(args, 0);
    let needle = text_arg(args, 1);
    let at = hay.find(needle.as_ref()).map_or(-1, |byte| hay[..byte].chars().count() as i64);
    done(Value::Int(at))
}

fn chars(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let s = text_arg(args, 0);
    check_alloc(s.len(), ctx.limits, "chars")?;
    done(Value::list(s.chars().map(|c| Value::str(c.to_string())).collect()))
}

fn repeat(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let s = text_arg(args, 0);
    let n = arg(args, 1).as_int().unwrap_or(0).max(0);
    let size = (s.len() as u128) * (n as u128);
    if size > MAX_REPEAT_BYTES {
        return Err(VmError::runtime(format!("repeat: output would be {size} bytes (limit {MAX_REPEAT_BYTES})")));
    }
    check_alloc(size as usize, ctx.limits, "repeat")?;
    done(Value::str(s.repeat(n as usize)))
}

/// Prefixes every non-empty line with `prefix`.
fn indent(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let s = text_arg(args, 0);
    let prefix = text_arg(args, 1);
    let lines = s.split('\n').count();
    check_alloc(s.len() + lines.saturating_mul(prefix.len()), ctx.limits, "indent")?;
    let out: Vec<String> =
        s.split('\n').map(|line| if line.is_empty() { String::new() } else { format!("{prefix}{line}") }).collect();
    done(Value::str(out.join("\n")))
}

/// Removes the longest leading whitespace shared by all lines that are not
/// blank; blank lines are kept as they are.
fn dedent(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let s = text_arg(args, 0);
    let mut common: Option<&str> = None;
    for line in s.split('\n') {
        if line.trim().is_empty() {
            continue;
        }
        let ws = &line[..line.len() - line.trim_start().len()];
        common = Some(match common {
            None => ws,
            Some(c) => {
                let shared: usize =
                    c.char_indices().zip(ws.chars()).take_while(|((_, a), b)| a == b).map(|((_, a), _)| a.len_utf8()).sum();
                &c[..shared]
            }
        });
    }
    let cut = common.unwrap_or("");
    let out: Vec<&str> =
        s.split('\n').map(|line| if line.trim().is_empty() { line } else { line.strip_prefix(cut).unwrap_or(line) }).collect();
    done(Value::str(out.join("\n")))
}

/// Greedy wrapping at `width` characters; paragraphs (split on newlines)
/// wrap separately, runs of spaces collapse, a word longer than the width
/// stands alone on its line.
fn word_wrap(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let s = text_arg(args, 0);
    let width = arg(args, 1).as_int().unwrap_or(80).max(0) as usize;
    let mut out: Vec<String> = Vec::new();
    for para in s.split('\n') {
        let mut line = String::new();
        let mut line_chars = 0usize;
        let mut any = false;
        for word in para.split_whitespace() {
            let w = word.chars().count();
            if line_chars > 0 && line_chars + 1 + w > width {
                out.push(std::mem::take(&mut line));
                line_chars = 0;
            }
            if line_chars > 0 {
                line.push(' ');
                line_chars += 1;
            }
            line.push_str(word);
            line_chars += w;
            any = true;
        }
        if any || line.is_empty() {
            out.push(line);
        }
    }
    done(Value::str(out.join("\n")))
}

fn map_first(s: &str, upper: bool) -> String {
    let mut it = s.chars();
    match it.next() {
        None => String::new(),
        Some(c) => {
            let mut out: String = if upper { c.to_uppercase().collect() } else { c.to_lowercase().collect() };
            out.push_str(it.as_str());
            out
        }
    }
}

fn pascal_to_camel(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(map_first(&text_arg(args, 0), false)))
}

fn camel_to_pascal(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(map_first(&text_arg(args, 0), true)))
}

/// JSON with two-space indentation, keys in dict order.
fn json_stringify_pretty(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let compact = to_json(arg(args, 0))?;
    let parsed: serde_json::Value =
        serde_json::from_str(&compact).map_err(|e| VmError::runtime(format!("json_stringify_pretty: {e}")))?;
    let pretty = serde_json::to_string_pretty(&parsed).map_err(|e| VmError::runtime(format!("json_stringify_pretty: {e}")))?;
    done(Value::str(pretty))
}
