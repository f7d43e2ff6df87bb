//! Message shapes the policies recognise (reference §1.3): roles, tool
//! calls, tool results, the error test, signed reasoning, empty text, and
//! the call → result matcher shared by clean_tool_repair and
//! squash_failed_calls.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::json::{get, get_str, json_text};
use crate::runtime::value::{nil_ref, Value};

pub fn role(m: &Value) -> Option<&str> {
    get_str(m, "role")
}

pub fn is_assistant(m: &Value) -> bool {
    role(m) == Some("assistant")
}

/// `tool` and `tool_result` behave identically.
pub fn is_result_role(m: &Value) -> bool {
    matches!(role(m), Some("tool" | "tool_result"))
}

/// One tool call of an assistant message.
pub struct Call<'a> {
    pub id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub node: &'a Value,
}

/// An assistant message's calls (inline up to four: no allocation for typical turns).
pub type Calls<'a> = SmallVec<[Call<'a>; 4]>;

/// The calls of an assistant message: `tool_calls` elements (OpenAI) then
/// `tool_use` content blocks (Anthropic). Empty for any other message.
pub fn calls(m: &Value) -> Calls<'_> {
    let mut out = Calls::new();
    if !is_assistant(m) {
        return out;
    }
    if let Some(Value::List(items)) = get(m, "tool_calls") {
        for el in items.iter() {
            // The `tool_call_id` fallback applies only when `id` is absent.
            let id = match get(el, "id") {
                Some(v) => v.as_str(),
                None => get_str(el, "tool_call_id"),
            };
            let name = get_str(el, "name").or_else(|| get(el, "function").and_then(|f| get_str(f, "name")));
            out.push(Call { id, name, node: el });
        }
    }
    if let Some(Value::List(blocks)) = get(m, "content") {
        for el in blocks.iter() {
            if get_str(el, "type") == Some("tool_use") {
                out.push(Call { id: get_str(el, "id"), name: get_str(el, "name"), node: el });
            }
        }
    }
    out
}

/// The id of a `tool`/`tool_result` message: `tool_use_id`, else (only when
/// that key is absent) `tool_call_id`.
pub fn result_id(m: &Value) -> Option<&str> {
    match get(m, "tool_use_id") {
        Some(v) => v.as_str(),
        None => get_str(m, "tool_call_id"),
    }
}

const ERROR_STATUSES: [&str; 5] = ["error", "failed", "rejected", "exception", "denied"];

/// The error test for a result node (a tool message or a tool_result block).
pub fn is_error(node: &Value) -> bool {
    // An explicit `is_error` (even `false`) hides `error`.
    let flag = match get(node, "is_error") {
        Some(v) => v,
        None => get(node, "error").unwrap_or_else(|| nil_ref()),
    };
    if matches!(flag, Value::Bool(true)) {
        return true;
    }
    if get_str(node, "status").is_some_and(|s| ERROR_STATUSES.contains(&s)) {
        return true;
    }
    match get(node, "content") {
        Some(body) => text_says_error(&json_text(body)),
        None => false,
    }
}

/// The textual part of the error test: after leading whitespace, an ASCII
/// case-insensitive `error:` / `tool error` / `failed:` prefix, or
/// `"is_error":true` anywhere.
fn text_says_error(text: &str) -> bool {
    let t = text.trim_start().as_bytes();
    let starts = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
    if starts(b"error:") || starts(b"tool error") || starts(b"failed:") {
        return true;
    }
    const NEEDLE: &[u8] = b"\"is_error\":true";
    // Visit quote positions only (a memchr search), so big bodies cost one
    // fast pass without a lower-cased copy.
    let s = text.trim_start();
    s.match_indices('"').any(|(i, _)| t.len() - i >= NEEDLE.len() && t[i..i + NEEDLE.len()].eq_ignore_ascii_case(NEEDLE))
}

/// Signed reasoning (the provider-safety guard's test).
pub fn is_signed(m: &Value) -> bool {
    if get(m, "thinking_signature").is_some() {
        return true;
    }
    match get(m, "content") {
        Some(Value::List(blocks)) => blocks.iter().any(|b| match get_str(b, "type") {
            Some("redacted_thinking") => true,
            Some("thinking" | "reasoning") => get(b, "signature").is_some(),
            _ => false,
        }),
        _ => false,
    }
}

/// Whether an assistant message shows no text (squash_failed_calls).
pub fn has_empty_text(m: &Value) -> bool {
    match get(m, "content") {
        Some(Value::Str(s)) => s.trim().is_empty(),
        Some(Value::List(blocks)) => blocks.iter().all(|b| match get_str(b, "type") {
            Some("text" | "output_text") => get_str(b, "text").is_none_or(|t| t.trim().is_empty()),
            _ => true,
        }),
        _ => true,
    }
}

/// The first result of each call of every assistant message, found with
/// the reference's forward scan (stop at the next assistant message, skip
/// every non-result message) but in linear time: each assistant message
/// owns the window up to the next one, and the window's result messages are
/// indexed once.
pub struct CallMatches<'a> {
    /// Per assistant message with calls: its index and its range in `matches`.
    turns: Vec<(usize, std::ops::Range<usize>)>,
    /// Per call of those messages in extraction order: the call's name and
    /// the index of its first matching result.
    matches: Vec<CallMatch<'a>>,
}

impl<'a> CallMatches<'a> {
    /// Each assistant message with calls: its index and its calls' matches.
    pub fn turns(&self) -> impl Iterator<Item = (usize, &[CallMatch<'a>])> {
        self.turns.iter().map(|(a, r)| (*a, &self.matches[r.clone()]))
    }
}

/// A call's name and the index of its first matching result.
pub type CallMatch<'a> = (Option<&'a str>, Option<usize>);

/// Below this many (calls × results) a window is scanned directly; maps
/// only pay off for long windows.
const DIRECT_SCAN_LIMIT: usize = 64;

pub fn match_calls(raw: &[Value]) -> CallMatches<'_> {
    let n = raw.len();
    let mut out = CallMatches { turns: Vec::new(), matches: Vec::new() };
    // (index, id, name) of the current window's result messages; reused.
    let mut results: Vec<(usize, Option<&str>, Option<&str>)> = Vec::new();
    let mut a = 0;
    while a < n {
        if !is_assistant(&raw[a]) {
            a += 1;
            continue;
        }
        let end = (a + 1..n).find(|&j| is_assistant(&raw[j])).unwrap_or(n);
        let cs = calls(&raw[a]);
        if !cs.is_empty() {
            results.clear();
            results.extend(
                (a + 1..end).filter(|&j| is_result_role(&raw[j])).map(|j| (j, result_id(&raw[j]), get_str(&raw[j], "name"))),
            );
            let from = out.matches.len();
            if cs.len() * results.len() <= DIRECT_SCAN_LIMIT {
                out.matches.extend(cs.iter().map(|c| (c.name, results.iter().find(|r| matches(c, r.1, r.2)).map(|r| r.0))));
            } else {
                let index = WindowIndex::new(&results);
                out.matches.extend(cs.iter().map(|c| (c.name, index.first_match(c))));
            }
            out.turns.push((a, from..out.matches.len()));
        }
        a = end;
    }
    out
}

/// The reference's matcher: ids when both sides have one, else names.
fn matches(c: &Call, id: Option<&str>, name: Option<&str>) -> bool {
    match (c.id, id) {
        (Some(a), Some(b)) => a == b,
        _ => c.name.is_some() && c.name == name,
    }
}

/// First index per key within one window (reference §9.1).
struct WindowIndex<'a> {
    by_id: FxHashMap<&'a str, usize>,
    by_name_noid: FxHashMap<&'a str, usize>,
    by_name_any: FxHashMap<&'a str, usize>,
}

impl<'a> WindowIndex<'a> {
    fn new(results: &[(usize, Option<&'a str>, Option<&'a str>)]) -> Self {
        let map = || FxHashMap::with_capacity_and_hasher(results.len(), Default::default());
        let mut ix = WindowIndex { by_id: map(), by_name_noid: FxHashMap::default(), by_name_any: map() };
        for &(j, id, name) in results {
            if let Some(id) = id {
                ix.by_id.entry(id).or_insert(j);
            }
            if let Some(name) = name {
                ix.by_name_any.entry(name).or_insert(j);
                if id.is_none() {
                    ix.by_name_noid.entry(name).or_insert(j);
                }
            }
        }
        ix
    }

    fn first_match(&self, c: &Call) -> Option<usize> {
        let by_name = |map: &FxHashMap<&str, usize>| c.name.and_then(|n| map.get(n).copied());
        match c.id {
            // A result with an id must carry the same id; one without falls back to names.
            Some(id) => match (self.by_id.get(id).copied(), by_name(&self.by_name_noid)) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
            None => by_name(&self.by_name_any),
        }
    }
}
