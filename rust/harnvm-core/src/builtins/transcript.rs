//! `transcript_project(transcript, options?)`: a model-visible projection of
//! a transcript's messages under one policy (harn-vm 0.9.11 parity; the
//! behaviour is specified in the transcript-projection reference, whose
//! section numbers the comments cite).
//!
//! The work is split so a host can run the `custom` policy with its own
//! callable: `Projection::prepare` checks the arguments in the reference's
//! order, `Projection::run` runs a built-in policy, and
//! `Projection::finish_custom` takes what a projector returned. The Harn
//! builtin calls a `custom` projector through `Flow::Call`, so the closure
//! runs as an ordinary VM frame and may await.
//!
//! Every policy is linear in the transcript size (reference §9).

mod gc;
pub mod json;
mod shape;

use std::rc::Rc;

use rustc_hash::FxHashMap;
use smallvec::smallvec;

use self::json::{dict_of, key, normalize, prefix_hash, write_canonical};
use super::args::done;
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Continuation, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[BuiltinDef { name: "transcript_project", imp: Native(transcript_project) }];

fn transcript_project(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let job = Projection::prepare(arg(args, 0), arg(args, 1), false)?;
    match (&job.policy, &job.projector) {
        (Policy::Custom, Some(closure)) => {
            let callee = closure.clone();
            let messages = Value::List(Rc::clone(&job.raw));
            Ok(Flow::Call { callee, args: smallvec![messages], then: Box::new(AfterProjector(job)) })
        }
        _ => done(job.run()?),
    }
}

/// Resumes the projection with the custom projector's return value.
struct AfterProjector(Projection);

impl Continuation for AfterProjector {
    fn resume(self: Box<Self>, _: &mut Ctx, result: Value) -> VmResult<Flow> {
        done(self.0.finish_custom(&result)?)
    }
}

/// The canonical policy names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Raw,
    CleanToolRepair,
    SquashFailedCalls,
    SummaryPrefix,
    ReachabilityGc,
    Custom,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Raw => "raw",
            Policy::CleanToolRepair => "clean_tool_repair",
            Policy::SquashFailedCalls => "squash_failed_calls",
            Policy::SummaryPrefix => "summary_prefix",
            Policy::ReachabilityGc => "reachability_gc",
            Policy::Custom => "custom",
        }
    }

    fn parse(name: &str) -> VmResult<Policy> {
        Ok(match name {
            "raw" | "identity" | "" => Policy::Raw,
            "clean_tool_repair" => Policy::CleanToolRepair,
            "squash_failed_calls" => Policy::SquashFailedCalls,
            "summary_prefix" => Policy::SummaryPrefix,
            "reachability_gc" | "context_gc" | "tool_result_gc" => Policy::ReachabilityGc,
            "custom" => Policy::Custom,
            other => {
                return Err(fail(format!(
                    "unknown policy '{other}' (expected raw, clean_tool_repair, squash_failed_calls, summary_prefix, reachability_gc, custom)"
                )))
            }
        })
    }
}

fn fail(msg: impl std::fmt::Display) -> VmError {
    VmError::runtime(format!("transcript_project: {msg}"))
}

/// Parsed options (reference §2.2).
struct Options {
    respect_signatures: bool,
    reason: Option<String>,
    keep_last: usize,
    summary: Option<HStr>,
    root_window: usize,
    min_chars: usize,
    require_barrier: bool,
    barrier_present: bool,
    root_texts: Vec<String>,
    root_labels: Vec<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            respect_signatures: true,
            reason: None,
            keep_last: 0,
            summary: None,
            root_window: 8,
            min_chars: 500,
            require_barrier: false,
            barrier_present: false,
            root_texts: Vec::new(),
            root_labels: Vec::new(),
        }
    }
}

/// Root-source keys in visiting order, with their labels.
const ROOT_SOURCES: [(&str, &str); 8] = [
    ("roots", "roots"),
    ("active_plan", "active_plan"),
    ("scratchpad", "scratchpad"),
    ("pending_tool_args", "pending_tool_args"),
    ("unresolved_findings", "unresolved_findings"),
    ("write_barrier", "write_barrier"),
    ("write_barrier_refs", "write_barrier"),
    ("barrier_refs", "write_barrier"),
];

fn dict_key<'a>(map: &'a DictMap, k: &str) -> Option<&'a Value> {
    crate::runtime::ops::dict_get(map, k)
}

/// The first alias that is present and not nil decides (reference §2.2,
/// "strict integer aliases").
fn strict_int(map: &DictMap, aliases: &[&str], default: usize) -> VmResult<usize> {
    for &alias in aliases {
        match dict_key(map, alias) {
            None | Some(Value::Nil) => continue,
            Some(Value::Int(n)) if *n >= 0 => return Ok(usize::try_from(*n).unwrap_or(usize::MAX)),
            Some(Value::Int(_)) => return Err(fail(format!("`{alias}` must be a non-negative integer"))),
            Some(other) => return Err(fail(format!("`{alias}` must be a non-negative integer, got {}", other.type_name()))),
        }
    }
    Ok(default)
}

fn strict_bool(map: &DictMap, aliases: &[&str]) -> VmResult<bool> {
    for &alias in aliases {
        match dict_key(map, alias) {
            None | Some(Value::Nil) => continue,
            Some(Value::Bool(b)) => return Ok(*b),
            Some(other) => return Err(fail(format!("`{alias}` must be a bool, got {}", other.type_name()))),
        }
    }
    Ok(false)
}

/// Every non-blank string inside `v`, untrimmed, in visiting order.
fn collect_strings(v: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > json::MAX_DEPTH {
        return;
    }
    match v {
        Value::Str(s) if !s.trim().is_empty() => out.push(s.to_string()),
        Value::List(items) | Value::Set(items) => items.iter().for_each(|x| collect_strings(x, out, depth + 1)),
        Value::Dict(map) => map.values().for_each(|x| collect_strings(x, out, depth + 1)),
        _ => {}
    }
}

/// Checked arguments, ready to project.
pub struct Projection {
    pub policy: Policy,
    opts: Options,
    /// The messages, JSON-normalised.
    raw: Rc<Vec<Value>>,
    transcript_summary: Option<HStr>,
    /// The custom projector closure (for any policy; only custom calls it).
    projector: Option<Value>,
    host_projector: bool,
}

impl Projection {
    /// Checks the arguments in the reference's order (§2.3). With
    /// `host_projector`, the caller supplies the custom projector itself
    /// (the Python API), so `custom` needs no closure in the options.
    pub fn prepare(transcript: &Value, options: &Value, host_projector: bool) -> VmResult<Projection> {
        let tmap = match transcript {
            Value::Dict(map) if dict_key(map, "_type").is_some_and(displays_as_transcript) => map,
            _ => return Err(fail("first argument must be a transcript")),
        };
        let mut opts = Options::default();
        let mut projector = None;
        let policy = match options {
            Value::Nil => Policy::Raw,
            Value::Str(name) => Policy::parse(name)?,
            Value::Dict(map) => {
                // The first *present* selector key decides, even when it is not a string.
                let selector = ["policy", "kind", "strategy"].iter().find_map(|k| dict_key(map, k));
                let policy = match selector {
                    Some(Value::Str(name)) => Policy::parse(name)?,
                    _ => Policy::Raw,
                };
                // A present `projector` masks `custom`, even when it is no closure.
                projector = match dict_key(map, "projector").or_else(|| dict_key(map, "custom")) {
                    Some(v @ Value::Closure(_)) => Some(v.clone()),
                    _ => None,
                };
                if let Some(Value::Bool(b)) = dict_key(map, "respect_provider_signatures") {
                    opts.respect_signatures = *b;
                }
                if let Some(Value::Str(r)) = dict_key(map, "reason") {
                    if !r.is_empty() {
                        opts.reason = Some(r.to_string());
                    }
                }
                // Lenient: a non-int or negative `keep_last` is 0 for summary_prefix.
                if let Some(Value::Int(k)) = dict_key(map, "keep_last") {
                    opts.keep_last = usize::try_from(*k).unwrap_or(0);
                }
                if let Some(Value::Str(s)) = dict_key(map, "summary") {
                    if !s.is_empty() {
                        opts.summary = Some(s.clone());
                    }
                }
                // The GC keys are validated only under reachability_gc.
                if policy == Policy::ReachabilityGc {
                    opts.root_window = strict_int(map, &["root_window", "recent_messages", "keep_last"], 8)?;
                    opts.min_chars = strict_int(map, &["min_chars", "min_reclaim_chars", "tool_result_min_chars"], 500)?;
                    opts.require_barrier = strict_bool(map, &["require_write_barrier", "require_barrier"])?;
                    for (k, label) in ROOT_SOURCES {
                        let Some(v) = dict_key(map, k) else { continue };
                        let before = opts.root_texts.len();
                        collect_strings(v, &mut opts.root_texts, 0);
                        if opts.root_texts.len() > before {
                            if !opts.root_labels.contains(&label) {
                                opts.root_labels.push(label);
                            }
                            if label == "write_barrier" {
                                opts.barrier_present = true;
                            }
                        }
                    }
                }
                policy
            }
            _ => return Err(fail("options must be a dict, string, or nil")),
        };
        if policy == Policy::Custom && projector.is_none() && !host_projector {
            return Err(fail("policy 'custom' requires a projector closure"));
        }
        let raw = match dict_key(tmap, "messages") {
            None => Vec::new(),
            Some(Value::List(items)) => items.iter().map(normalize).collect::<VmResult<Vec<_>>>()?,
            // A thrown string, not a runtime error (reference §1.2).
            Some(_) => return Err(VmError::throw_msg("transcript.messages must be a list")),
        };
        let transcript_summary = match dict_key(tmap, "summary") {
            Some(Value::Str(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        Ok(Projection { policy, opts, raw: Rc::new(raw), transcript_summary, projector, host_projector })
    }

    /// The messages a custom projector receives (JSON round-tripped copies).
    pub fn messages(&self) -> Value {
        Value::List(Rc::clone(&self.raw))
    }

    /// Whether the caller must call the projector and pass its result to `finish_custom`.
    pub fn needs_projector(&self) -> bool {
        self.policy == Policy::Custom && (self.projector.is_some() || self.host_projector)
    }

    /// Runs a built-in policy (for `custom`, use `finish_custom`).
    pub fn run(self) -> VmResult<Value> {
        let raw = &self.raw;
        let n = raw.len();
        let decision = match self.policy {
            Policy::Raw | Policy::Custom => Decision::identity(raw, "raw_passthrough"),
            Policy::CleanToolRepair => {
                let dropped = clean_tool_repair(raw);
                Decision::dropping(raw, dropped, "clean_tool_repair")
            }
            Policy::SquashFailedCalls => {
                let dropped = squash_failed_calls(raw);
                Decision::dropping(raw, dropped, "squash_failed_calls")
            }
            Policy::SummaryPrefix => {
                let k = self.opts.keep_last;
                if k >= n {
                    Decision::identity(raw, "summary_prefix_noop_short_history")
                } else {
                    let d = n - k;
                    let summary = match (&self.opts.summary, &self.transcript_summary) {
                        (Some(s), _) | (None, Some(s)) => Value::Str(s.clone()),
                        (None, None) => Value::str(format!("[{d} earlier messages summarized]")),
                    };
                    let synthetic = dict_of([
                        ("role", json::fixed("system")),
                        ("content", summary),
                        (
                            "_harn_projection",
                            dict_of([("synthetic", Value::Bool(true)), ("policy", json::fixed("summary_prefix"))]),
                        ),
                    ]);
                    let mut messages = Vec::with_capacity(k + 1);
                    messages.push(synthetic);
                    messages.extend(raw[d..].iter().cloned());
                    Decision {
                        messages,
                        kept: (d as i64..n as i64).collect(),
                        dropped: (0..d as i64).collect(),
                        reason: "summary_prefix".to_string(),
                        ..Decision::default()
                    }
                }
            }
            Policy::ReachabilityGc => self.reachability_gc(),
        };
        Ok(self.finish(decision))
    }

    fn reachability_gc(&self) -> Decision {
        let raw = &self.raw;
        let n = raw.len();
        let o = &self.opts;
        let mut labels = Vec::new();
        if o.root_window > 0 && n > 0 {
            labels.push(format!("last_{}_messages", o.root_window.min(n)));
        }
        labels.extend(o.root_labels.iter().map(|l| l.to_string()));
        if o.require_barrier {
            labels.push("write_barrier_required".to_string());
        }
        if o.require_barrier && !o.barrier_present {
            let mut d = Decision::identity(raw, "reachability_gc_write_barrier_missing");
            d.root_labels = labels;
            return d;
        }
        let out = gc::run(raw, &gc::GcOptions { root_window: o.root_window, min_chars: o.min_chars, root_texts: &o.root_texts });
        Decision {
            messages: out.messages,
            kept: (0..n as i64).collect(),
            dropped: Vec::new(),
            redacted: out.redacted_indices,
            pointers: out.pointers,
            reclaimed_chars: out.reclaimed_chars,
            root_labels: labels,
            reason: "reachability_gc".to_string(),
        }
    }

    /// Finishes the `custom` policy with the projector's return value (§3.6).
    pub fn finish_custom(self, returned: &Value) -> VmResult<Value> {
        let n = self.raw.len() as i64;
        let (list, reason, kept, dropped) = match returned {
            Value::List(items) => (items, "custom".to_string(), None, None),
            Value::Dict(map) => {
                let Some(messages) = dict_key(map, "messages") else {
                    return Err(fail("custom projector must return a list or a dict with `messages`"));
                };
                let Value::List(items) = messages else {
                    return Err(fail("custom projector `messages` must be a list"));
                };
                let reason = match dict_key(map, "reason") {
                    // Unlike the `reason` option, an empty string is used.
                    Some(Value::Str(r)) => r.to_string(),
                    _ => "custom".to_string(),
                };
                (items, reason, index_list(dict_key(map, "kept_indices")), index_list(dict_key(map, "dropped_indices")))
            }
            _ => return Err(fail("custom projector must return a list or dict")),
        };
        let messages = list.iter().map(normalize).collect::<VmResult<Vec<_>>>()?;
        let kept = match kept {
            Some(k) => k,
            None => derive_kept(&self.raw, &messages),
        };
        let dropped = match dropped {
            Some(d) => d,
            None => {
                let mut keep = vec![false; n as usize];
                for &k in &kept {
                    if k < n {
                        keep[k as usize] = true;
                    }
                }
                (0..n).filter(|&i| !keep[i as usize]).collect()
            }
        };
        let decision = Decision { messages, kept, dropped, reason, ..Decision::default() };
        Ok(self.finish(decision))
    }

    /// The guard, the hash, the reason override and the result (§2.4 steps 3–6).
    fn finish(self, mut d: Decision) -> Value {
        let mut blocked = false;
        if self.opts.respect_signatures && self.policy != Policy::Raw {
            let n = self.raw.len() as i64;
            let signed = d
                .dropped
                .iter()
                .chain(d.redacted.iter())
                .find(|&&k| (0..n).contains(&k) && shape::is_signed(&self.raw[k as usize]));
            if let Some(&k) = signed {
                blocked = true;
                // The root labels survive a block.
                let labels = std::mem::take(&mut d.root_labels);
                d = Decision {
                    root_labels: labels,
                    reason: format!("{} (blocked: signed reasoning at index {k})", d.reason),
                    ..Decision::identity(&self.raw, "")
                };
            }
        }
        let hash = prefix_hash(&d.messages);
        let reason = match (&self.opts.reason, blocked) {
            (Some(r), false) => r.clone(),
            _ => d.reason.clone(),
        };
        build_result(&self, d, hash, reason, blocked)
    }
}

/// A `kept_indices`/`dropped_indices` list from a projector: ints as given,
/// negatives clamped to 0, everything else skipped.
fn index_list(v: Option<&Value>) -> Option<Vec<i64>> {
    match v {
        Some(Value::List(items)) => Some(items.iter().filter_map(Value::as_int).map(|i| i.max(0)).collect()),
        _ => None,
    }
}

/// Greedy in-order matching of output messages to raw messages by
/// structural JSON equality (§3.6), in linear time: raw messages are
/// indexed by canonical text (with `-0.0` written as `0.0`, so equal text
/// is exactly serde's equality), and each output message takes the first
/// index at or after the cursor.
fn derive_kept(raw: &[Value], out: &[Value]) -> Vec<i64> {
    // All raw texts in one buffer; `ends[i]` is where message i's text ends.
    let mut arena = String::new();
    let mut ends = Vec::with_capacity(raw.len());
    for m in raw {
        write_canonical(m, &mut arena, true);
        ends.push(arena.len());
    }
    let text = |i: usize| &arena[if i == 0 { 0 } else { ends[i - 1] }..ends[i]];
    // Per distinct text, the first raw index not yet passed by the cursor;
    // `next[i]` chains equal texts in increasing index order.
    const NONE: usize = usize::MAX;
    let mut next = vec![NONE; raw.len()];
    let mut heads: FxHashMap<&str, (usize, usize)> = FxHashMap::with_capacity_and_hasher(raw.len(), Default::default());
    for i in 0..raw.len() {
        let e = heads.entry(text(i)).or_insert((i, i));
        if e.1 != i {
            next[e.1] = i;
            e.1 = i;
        }
    }
    let mut kept = Vec::new();
    let mut cursor = 0usize;
    let mut buf = String::new();
    for m in out {
        buf.clear();
        write_canonical(m, &mut buf, true);
        if let Some(e) = heads.get_mut(buf.as_str()) {
            // The cursor only grows: indices behind it are dropped for good.
            let mut i = e.0;
            while i != NONE && i < cursor {
                i = next[i];
            }
            e.0 = i;
            if i != NONE {
                kept.push(i as i64);
                cursor = i + 1;
            }
        }
    }
    kept
}

fn displays_as_transcript(t: &Value) -> bool {
    match t {
        Value::Str(s) => s.as_str() == "transcript",
        other => other.display() == "transcript",
    }
}

/// What a policy decided, before the guard.
#[derive(Default)]
struct Decision {
    messages: Vec<Value>,
    kept: Vec<i64>,
    dropped: Vec<i64>,
    redacted: Vec<i64>,
    pointers: Vec<Value>,
    reclaimed_chars: i64,
    root_labels: Vec<String>,
    reason: String,
}

impl Decision {
    fn identity(raw: &[Value], reason: &str) -> Decision {
        Decision {
            messages: raw.to_vec(),
            kept: (0..raw.len() as i64).collect(),
            reason: reason.to_string(),
            ..Decision::default()
        }
    }

    /// Keeps the raw messages not in `dropped` (sorted, unique).
    fn dropping(raw: &[Value], dropped: Vec<usize>, reason: &str) -> Decision {
        let mut is_dropped = vec![false; raw.len()];
        dropped.iter().for_each(|&i| is_dropped[i] = true);
        let mut kept: Vec<usize> = Vec::with_capacity(raw.len() - dropped.len());
        kept.extend((0..raw.len()).filter(|&i| !is_dropped[i]));
        Decision {
            messages: kept.iter().map(|&i| raw[i].clone()).collect(),
            kept: kept.into_iter().map(|i| i as i64).collect(),
            dropped: dropped.into_iter().map(|i| i as i64).collect(),
            reason: reason.to_string(),
            ..Decision::default()
        }
    }
}

/// §3.2. Reference quirks kept for parity (pinned by tests): results in
/// Anthropic `tool_result` blocks are never seen; a success *anywhere*
/// (even before the failure) repairs a tool; the whole assistant message of
/// a failed call is dropped, even with prose or other successful calls.
fn clean_tool_repair(raw: &[Value]) -> Vec<usize> {
    let matched = shape::match_calls(raw);
    // Per message: the error test's result, computed once (0 = not yet).
    let mut errors = vec![0u8; raw.len()];
    let mut failures: Vec<(&str, usize, usize)> = Vec::new();
    let mut succeeded: rustc_hash::FxHashSet<&str> = Default::default();
    for (a, calls) in matched.turns() {
        for &(name, result) in calls {
            // Calls without a name are ignored by this policy.
            let (Some(name), Some(r)) = (name, result) else { continue };
            if errors[r] == 0 {
                errors[r] = if shape::is_error(&raw[r]) { 2 } else { 1 };
            }
            if errors[r] == 2 {
                failures.push((name, a, r));
            } else {
                succeeded.insert(name);
            }
        }
    }
    sorted_unique(failures.into_iter().filter(|f| succeeded.contains(f.0)).flat_map(|f| [f.1, f.2]), raw.len())
}

/// §3.3. Quirks kept for parity: a failed result is dropped even when its
/// assistant message stays (leaving a dangling call), and block-form
/// results are never seen.
fn squash_failed_calls(raw: &[Value]) -> Vec<usize> {
    let matched = shape::match_calls(raw);
    let mut dropped = Vec::new();
    for (a, calls) in matched.turns() {
        let mut all_failed = true;
        let mut any_failed = false;
        for &(_, result) in calls {
            match result {
                Some(r) if shape::is_error(&raw[r]) => {
                    dropped.push(r);
                    any_failed = true;
                }
                _ => all_failed = false,
            }
        }
        if all_failed && any_failed && shape::has_empty_text(&raw[a]) {
            dropped.push(a);
        }
    }
    sorted_unique(dropped, raw.len())
}

/// The distinct indices (all below `n`) in increasing order, in linear
/// time: a mark per message instead of a sort.
fn sorted_unique(indices: impl IntoIterator<Item = usize>, n: usize) -> Vec<usize> {
    let mut marked = vec![false; n];
    let mut count = 0;
    for i in indices {
        if !marked[i] {
            marked[i] = true;
            count += 1;
        }
    }
    let mut out = Vec::with_capacity(count);
    out.extend((0..n).filter(|&i| marked[i]));
    out
}

fn int_list(items: &[i64]) -> Value {
    Value::list(items.iter().map(|&i| Value::Int(i)).collect())
}

/// The 16-key result dict and its `transcript.projection` event (§5).
fn build_result(p: &Projection, d: Decision, hash: String, reason: String, blocked: bool) -> Value {
    let reclaimed_chars = if blocked { 0 } else { d.reclaimed_chars };
    let shared: [(&'static str, Value); 14] = [
        ("policy", json::fixed(p.policy.name())),
        ("reason", Value::str(reason.as_str())),
        ("prefix_hash", Value::str(hash)),
        ("kept_indices", int_list(&d.kept)),
        ("dropped_indices", int_list(&d.dropped)),
        ("kept_count", Value::Int(d.kept.len() as i64)),
        ("dropped_count", Value::Int(d.dropped.len() as i64)),
        ("redacted_indices", int_list(&d.redacted)),
        ("redacted_count", Value::Int(d.pointers.len() as i64)),
        ("reclaimed_tokens", Value::Int(reclaimed_chars / 4)),
        ("reclaimed_chars", Value::Int(reclaimed_chars)),
        ("roots_consulted", Value::list(d.root_labels.iter().map(|l| Value::str(l.as_str())).collect())),
        ("redaction_pointers", Value::list(d.pointers)),
        ("provider_safety_blocked", Value::Bool(blocked)),
    ];
    let mut metadata = DictMap::new();
    for (k, v) in &shared {
        metadata.insert(key(k), v.clone());
    }
    metadata.insert(key("respects_provider_signatures"), Value::Bool(p.opts.respect_signatures));
    let keep_last = if p.policy == Policy::SummaryPrefix { Value::Int(p.opts.keep_last as i64) } else { Value::Nil };
    metadata.insert(key("summary_keep_last"), keep_last);
    let reason = Value::str(reason);
    let event = dict_of([
        ("id", Value::str(uuid::Uuid::now_v7().to_string())),
        ("kind", json::fixed("transcript.projection")),
        ("role", json::fixed("system")),
        ("visibility", json::fixed("internal")),
        ("text", reason.clone()),
        (
            "blocks",
            Value::list(vec![dict_of([
                ("type", json::fixed("text")),
                ("text", reason),
                ("visibility", json::fixed("internal")),
            ])]),
        ),
        ("metadata", Value::dict(metadata)),
    ]);
    let mut result = DictMap::new();
    for (k, v) in shared {
        result.insert(key(k), v);
    }
    result.insert(key("messages"), Value::list(d.messages));
    result.insert(key("event"), event);
    Value::dict(result)
}

#[cfg(test)]
mod tests;
