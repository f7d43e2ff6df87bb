//! `reachability_gc` (reference §3.5): reclaim the bodies of old, large,
//! successful tool results that no root refers to.
//!
//! Linear where the reference is quadratic (§9): the correlated call comes
//! from maps kept while scanning forward instead of a backward walk per
//! candidate, and the root test runs once per distinct identifier, with
//! Aho–Corasick over the root blob when the blob and identifier count make
//! one substring search per identifier expensive.

use aho_corasick::AhoCorasick;
use rustc_hash::FxHashMap;

use super::json::{dict_of, fixed, get, get_str, json_text, key, sha256_tag, write_canonical};
use super::shape::{calls, is_assistant, is_error, result_id, role};
use crate::runtime::value::{nil_ref, DictMap, Value};

/// What the caller asked for (parsed options).
pub struct GcOptions<'a> {
    pub root_window: usize,
    pub min_chars: usize,
    pub root_texts: &'a [String],
}

/// The policy's part of the decision.
pub struct GcOutcome {
    pub messages: Vec<Value>,
    pub redacted_indices: Vec<i64>,
    pub pointers: Vec<Value>,
    pub reclaimed_chars: i64,
}

/// A result body that may be reclaimed.
struct Candidate<'a> {
    index: usize,
    block: Option<usize>,
    id: Option<&'a str>,
    name: Option<&'a str>,
    body: std::borrow::Cow<'a, str>,
    chars: usize,
    /// Indices into the distinct-identifier table.
    idents: Vec<u32>,
}

/// A result node found in a message: (block index, node, id, name).
type Found<'a> = (Option<usize>, &'a Value, Option<&'a str>, Option<&'a str>);

/// The last correlating call seen so far: (message index, position in that message, call node).
type Seen<'a> = (usize, usize, &'a Value);

/// Above this (distinct identifiers × blob bytes), one Aho–Corasick pass
/// replaces the per-identifier substring searches.
const PLAIN_SEARCH_BUDGET: usize = 1 << 22;

pub fn run(raw: &[Value], opts: &GcOptions) -> GcOutcome {
    let n = raw.len();
    let root_start = n.saturating_sub(opts.root_window);

    let mut blob = opts.root_texts.join("\n");
    for m in &raw[root_start..] {
        blob.push('\n');
        write_canonical(m, &mut blob, false);
    }

    // Pass 1: candidates, their correlated calls and identifiers.
    let mut ident_ids: FxHashMap<String, u32> = FxHashMap::default();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut last_by_id: FxHashMap<&str, Seen> = FxHashMap::default();
    let mut last_by_name_noid: FxHashMap<&str, Seen> = FxHashMap::default();
    let mut last_by_name_any: FxHashMap<&str, Seen> = FxHashMap::default();
    let mut found: Vec<Found> = Vec::new();
    for (i, m) in raw[..root_start].iter().enumerate() {
        if is_assistant(m) {
            for (pos, c) in calls(m).into_iter().enumerate() {
                let seen = (i, pos, c.node);
                if let Some(id) = c.id {
                    note(&mut last_by_id, id, seen);
                }
                if let Some(name) = c.name {
                    note(&mut last_by_name_any, name, seen);
                    if c.id.is_none() {
                        note(&mut last_by_name_noid, name, seen);
                    }
                }
            }
            continue;
        }
        found.clear();
        match role(m) {
            Some("tool" | "tool_result") if get(m, "content").is_some() => {
                found.push((None, m, result_id(m), get_str(m, "name")));
            }
            Some("user") => {
                if let Some(Value::List(blocks)) = get(m, "content") {
                    for (j, b) in blocks.iter().enumerate() {
                        if get_str(b, "type") != Some("tool_result") || get(b, "content").is_none() {
                            continue;
                        }
                        let id = ["tool_use_id", "tool_call_id", "id"].iter().find_map(|k| get(b, k)).and_then(Value::as_str);
                        let name = match get(b, "name") {
                            Some(v) => v.as_str(),
                            None => get_str(m, "name"),
                        };
                        found.push((Some(j), b, id, name));
                    }
                }
            }
            _ => {}
        }
        for (block, node, id, name) in found.drain(..) {
            let body = json_text(get(node, "content").unwrap_or_else(|| nil_ref()));
            let chars = body.chars().count();
            if chars < opts.min_chars || is_error(node) {
                continue;
            }
            let call = correlate(id, name, &last_by_id, &last_by_name_noid, &last_by_name_any);
            let mut idents = Vec::new();
            let mut add = |token: &str| {
                let k = match ident_ids.get(token) {
                    Some(&k) => k,
                    None => {
                        let k = ident_ids.len() as u32;
                        ident_ids.insert(token.to_owned(), k);
                        k
                    }
                };
                idents.push(k);
            };
            for_each_identifier(&body, &mut add);
            // A string body is also a string of the node: its tokens are already in.
            let skip = match get(node, "content") {
                Some(Value::Str(s)) => Some(std::rc::Rc::as_ptr(s)),
                _ => None,
            };
            strings_in(node, skip, &mut |s| for_each_identifier(s, &mut add));
            if let Some(call) = call {
                strings_in(call, None, &mut |s| for_each_identifier(s, &mut add));
            }
            candidates.push(Candidate { index: i, block, id, name, body, chars, idents });
        }
    }

    // Pass 2: which identifiers occur in the root blob.
    let rooted = occurrences(&ident_ids, &blob);

    // Pass 3: reclaim the unrooted candidates.
    let mut out = GcOutcome { messages: raw.to_vec(), redacted_indices: Vec::new(), pointers: Vec::new(), reclaimed_chars: 0 };
    for c in candidates {
        if c.idents.iter().any(|&k| rooted[k as usize]) {
            continue;
        }
        reclaim(&mut out, c);
    }
    out
}

/// Records a call under `k`: within one message the first call wins, a
/// later message replaces it.
fn note<'a>(map: &mut FxHashMap<&'a str, Seen<'a>>, k: &'a str, seen: Seen<'a>) {
    let e = map.entry(k).or_insert(seen);
    if e.0 != seen.0 {
        *e = seen;
    }
}

/// The nearest earlier call that correlates with a result (ids when both
/// have one, else names), as the reference's backward walk finds it.
fn correlate<'a>(
    id: Option<&str>,
    name: Option<&str>,
    by_id: &FxHashMap<&str, Seen<'a>>,
    by_name_noid: &FxHashMap<&str, Seen<'a>>,
    by_name_any: &FxHashMap<&str, Seen<'a>>,
) -> Option<&'a Value> {
    let pick = match id {
        Some(id) => {
            let x = by_id.get(id).copied();
            let y = name.and_then(|n| by_name_noid.get(n).copied());
            match (x, y) {
                // The later message wins; within one message the earlier call.
                (Some(x), Some(y)) => Some(if (x.0, std::cmp::Reverse(x.1)) >= (y.0, std::cmp::Reverse(y.1)) { x } else { y }),
                (x, y) => x.or(y),
            }
        }
        None => name.and_then(|n| by_name_any.get(n).copied()),
    };
    pick.map(|s| s.2)
}

/// Every string value inside a node (dict values, list items; not keys),
/// except the string `skip` points at.
fn strings_in<'a>(node: &'a Value, skip: Option<*const String>, f: &mut dyn FnMut(&'a str)) {
    match node {
        Value::Str(s) if skip != Some(std::rc::Rc::as_ptr(s)) => f(s),
        Value::List(items) => items.iter().for_each(|v| strings_in(v, skip, f)),
        Value::Dict(map) => map.values().for_each(|v| strings_in(v, skip, f)),
        _ => {}
    }
}

/// ASCII separators: whitespace (as `char::is_whitespace` has it) and
/// `"'`,;()[]{}`. Non-ASCII characters are separators only when they are
/// Unicode whitespace.
const SEPARATOR: [bool; 128] = {
    let mut t = [false; 128];
    let seps = b"\t\n\x0b\x0c\r \"'`,;()[]{}";
    let mut i = 0;
    while i < seps.len() {
        t[seps[i] as usize] = true;
        i += 1;
    }
    t
};

/// Trimmed from both ends of a piece (all ASCII, so trimming bytes keeps UTF-8 boundaries).
fn is_trimmed(b: u8) -> bool {
    matches!(b, b':' | b'.' | b',' | b';' | b'"' | b'\'' | b'`' | b'<' | b'>')
}

/// Calls `f` on each token of `text` that passes the identifier test, in
/// one pass over the bytes.
fn for_each_identifier(text: &str, f: &mut dyn FnMut(&str)) {
    let bytes = text.as_bytes();
    let mut emit = |start: usize, end: usize| {
        let mut piece = &bytes[start..end];
        while let [first, rest @ ..] = piece {
            if !is_trimmed(*first) {
                break;
            }
            piece = rest;
        }
        while let [rest @ .., last] = piece {
            if !is_trimmed(*last) {
                break;
            }
            piece = rest;
        }
        if is_identifier(piece) {
            // Trimming removed ASCII bytes only, so the piece is still UTF-8.
            let from = start + (piece.as_ptr() as usize - bytes[start..].as_ptr() as usize);
            f(&text[from..from + piece.len()]);
        }
    };
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (separator, width) = if b < 0x80 {
            (SEPARATOR[b as usize], 1)
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            (c.is_whitespace(), c.len_utf8())
        };
        if separator {
            emit(start, i);
            start = i + width;
        }
        i += width;
    }
    emit(start, bytes.len());
}

/// The reference's identifier test, in one pass; lengths are UTF-8 byte
/// lengths. At least 3 bytes, and one of: a `/`, `\\` or `::`; 1–8 ASCII
/// alphanumerics after the last `.`; 6+ bytes with a `_`; 4+ bytes with
/// both ASCII cases.
fn is_identifier(t: &[u8]) -> bool {
    if t.len() < 3 {
        return false;
    }
    let (mut lower, mut upper, mut underscore, mut last_dot, mut prev_colon) = (false, false, false, None, false);
    for (i, &c) in t.iter().enumerate() {
        match c {
            b'/' | b'\\' => return true,
            b':' if prev_colon => return true,
            b'.' => last_dot = Some(i),
            b'_' => underscore = true,
            b'a'..=b'z' => lower = true,
            b'A'..=b'Z' => upper = true,
            _ => {}
        }
        prev_colon = c == b':';
    }
    if let Some(dot) = last_dot {
        let ext = &t[dot + 1..];
        if (1..=8).contains(&ext.len()) && ext.iter().all(u8::is_ascii_alphanumeric) {
            return true;
        }
    }
    (t.len() >= 6 && underscore) || (t.len() >= 4 && lower && upper)
}

/// For each distinct identifier (by table index), whether it is a substring of `blob`.
fn occurrences(idents: &FxHashMap<String, u32>, blob: &str) -> Vec<bool> {
    let mut found = vec![false; idents.len()];
    if idents.is_empty() {
        return found;
    }
    if idents.len().saturating_mul(blob.len()) <= PLAIN_SEARCH_BUDGET {
        for (ident, &k) in idents {
            found[k as usize] = blob.contains(ident.as_str());
        }
        return found;
    }
    let mut patterns: Vec<&str> = vec![""; idents.len()];
    for (ident, &k) in idents {
        patterns[k as usize] = ident;
    }
    match AhoCorasick::new(&patterns) {
        Ok(ac) => {
            let mut left = found.len();
            for m in ac.find_overlapping_iter(blob) {
                let k = m.pattern().as_usize();
                if !found[k] {
                    found[k] = true;
                    left -= 1;
                    if left == 0 {
                        break;
                    }
                }
            }
        }
        // The automaton could not be built (size limits): fall back to plain searches.
        Err(_) => {
            for (k, p) in patterns.iter().enumerate() {
                found[k] = blob.contains(p);
            }
        }
    }
    found
}

/// Rewrites one candidate's body in the output and records its pointer.
/// Keys and fixed texts are shared strings; the per-candidate strings are
/// built in place, without formatting machinery.
fn reclaim(out: &mut GcOutcome, c: Candidate) {
    let hash = sha256_tag(c.body.as_bytes());
    let estimated = (c.chars / 4) as i64;
    let i = c.index;
    let mut num = itoa::Buffer::new();
    let mut source = String::with_capacity(64);
    source.push_str("transcript.messages[");
    source.push_str(num.format(i));
    source.push_str("].content");
    if let Some(j) = c.block {
        source.push('[');
        source.push_str(num.format(j));
        source.push_str("].content");
    }
    let mut replacement = String::with_capacity(256);
    replacement.push_str("[tool result reclaimed by reachability_gc; source_index=");
    replacement.push_str(num.format(i));
    replacement.push_str("; content_hash=");
    replacement.push_str(&hash);
    replacement.push_str("; estimated_tokens_reclaimed=");
    replacement.push_str(num.format(estimated));
    replacement.push_str(". Raw content remains in the transcript audit trail.]");
    let opt_str = |s: Option<&str>| s.map_or(Value::Nil, Value::str);
    let policy = fixed("reachability_gc");
    let pointer = dict_of([
        ("policy", policy.clone()),
        ("source", Value::str(source)),
        ("source_index", Value::Int(i as i64)),
        ("source_block_index", c.block.map_or(Value::Nil, |j| Value::Int(j as i64))),
        ("content_hash", Value::str(hash)),
        ("content_chars", Value::Int(c.chars as i64)),
        ("estimated_tokens_reclaimed", Value::Int(estimated)),
        ("tool_call_id", opt_str(c.id)),
        ("tool_name", opt_str(c.name)),
        ("reason", fixed("stale_tool_result_unreachable")),
    ]);
    let marker = dict_of([("redacted", Value::Bool(true)), ("policy", policy.clone()), ("redaction_pointer", pointer.clone())]);
    // The replacement text is ASCII: its length is its char count.
    let gain = c.chars.saturating_sub(replacement.len()) as i64;
    let replacement = Value::str(replacement);

    let Value::Dict(msg) = &mut out.messages[i] else { return };
    let msg = std::rc::Rc::make_mut(msg);
    match c.block {
        None => {
            msg.insert(key("content"), replacement);
            msg.insert(key("_harn_projection"), marker);
        }
        Some(j) => {
            if let Some(Value::List(blocks)) = msg.get_mut(&key("content")) {
                if let Some(Value::Dict(block)) = std::rc::Rc::make_mut(blocks).get_mut(j) {
                    let block = std::rc::Rc::make_mut(block);
                    block.insert(key("content"), replacement);
                    block.insert(key("_harn_projection"), marker);
                }
            }
            let mut level = match msg.get(&key("_harn_projection")) {
                Some(Value::Dict(existing)) => (**existing).clone(),
                _ => DictMap::new(),
            };
            level.insert(key("redacted"), Value::Bool(true));
            level.insert(key("policy"), policy);
            let pointers = level.entry(key("redaction_pointers")).or_insert_with(|| Value::list(Vec::new()));
            // An existing non-list `redaction_pointers` is kept and nothing is appended.
            if let Value::List(list) = pointers {
                std::rc::Rc::make_mut(list).push(pointer.clone());
            }
            msg.insert(key("_harn_projection"), Value::dict(level));
        }
    }
    out.reclaimed_chars += gain;
    if out.redacted_indices.last() != Some(&(i as i64)) {
        out.redacted_indices.push(i as i64);
    }
    out.pointers.push(pointer);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_identifier(text, &mut |t| out.push(t.to_string()));
        out
    }

    #[test]
    fn identifier_test_matches_the_reference_examples() {
        for yes in ["lib.rs", "a.b", "1.5", "e.g", "Error", "Continue", "a::b", "x/y", "C:\\dir", "call_1", "tool_use"] {
            assert!(is_identifier(yes.as_bytes()), "{yes}");
        }
        for no in ["Fix", "ab", "call_", "abc.toolongext", "plain", "12345", "a_b"] {
            assert!(!is_identifier(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn tokens_split_on_unicode_whitespace_and_trim_punctuation() {
        assert_eq!(
            idents("see `src/lib.rs`, then <Foo::bar>.\u{3000}crates/x\u{a0}y_long_name;"),
            ["src/lib.rs", "Foo::bar", "crates/x", "y_long_name"]
        );
        assert_eq!(idents("(\"a/b\")[c/d]{e/f}"), ["a/b", "c/d", "e/f"]);
        // Non-whitespace Unicode stays inside a token; lengths are bytes.
        assert_eq!(idents("é_é_ ééFoo éé"), ["é_é_", "ééFoo"]);
    }
}
