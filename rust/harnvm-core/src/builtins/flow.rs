//! Flow invariant results and evidence, the data builtins of harn 0.9.11:
//! constructors (`flow_invariant_allow|warn|block|require_approval`,
//! `flow_remediation`, `flow_evidence_atom|citation|metadata|transcript`),
//! combinators (`flow_with_confidence|remediation|evidence`) and readers
//! (`flow_invariant_kind|confidence|is_blocking`), and
//! `flow_invariant_feedback`, the agent-facing text of an evaluation report.
//!
//! A result is `{confidence, verdict: {kind, ...}, remediation?, evidence?}`;
//! readers and combinators check that shape and fail with
//! `<builtin>: invalid InvariantResult: <reason>`.

use super::args::{done, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "flow_invariant_allow", imp: Native(allow) },
    BuiltinDef { name: "flow_invariant_warn", imp: Native(warn) },
    BuiltinDef { name: "flow_invariant_block", imp: Native(block) },
    BuiltinDef { name: "flow_invariant_require_approval", imp: Native(require_approval) },
    BuiltinDef { name: "flow_remediation", imp: Native(remediation) },
    BuiltinDef { name: "flow_evidence_atom", imp: Native(evidence_atom) },
    BuiltinDef { name: "flow_evidence_citation", imp: Native(evidence_citation) },
    BuiltinDef { name: "flow_evidence_metadata", imp: Native(evidence_metadata) },
    BuiltinDef { name: "flow_evidence_transcript", imp: Native(evidence_transcript) },
    BuiltinDef { name: "flow_with_confidence", imp: Native(with_confidence) },
    BuiltinDef { name: "flow_with_remediation", imp: Native(with_remediation) },
    BuiltinDef { name: "flow_with_evidence", imp: Native(with_evidence) },
    BuiltinDef { name: "flow_invariant_kind", imp: Native(kind) },
    BuiltinDef { name: "flow_invariant_confidence", imp: Native(confidence) },
    BuiltinDef { name: "flow_invariant_is_blocking", imp: Native(is_blocking) },
    BuiltinDef { name: "flow_invariant_feedback", imp: Native(feedback) },
];

const VERDICTS: [&str; 4] = ["allow", "warn", "block", "require_approval"];
const EVIDENCE_KINDS: [&str; 4] = ["atom_pointer", "external_citation", "metadata_path", "transcript_excerpt"];

fn k(s: &str) -> HStr {
    std::rc::Rc::new(s.to_string())
}

fn fail(builtin: &str, msg: impl std::fmt::Display) -> VmError {
    VmError::runtime(format!("{builtin}: {msg}"))
}

/// How serde names an unexpected value in its messages.
fn unexpected(v: &Value) -> String {
    match v {
        Value::Nil => "unit value".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Int(n) => format!("integer `{n}`"),
        Value::Float(x) => format!("floating point `{x}`"),
        Value::Str(s) => format!("string {:?}", s.as_str()),
        Value::List(_) | Value::Set(_) => "sequence".into(),
        Value::Dict(_) => "map".into(),
        other => other.type_name().to_string(),
    }
}

fn result_of(verdict: Value) -> Value {
    Value::dict_from([("confidence", Value::Float(1.0)), ("verdict", verdict)])
}

fn allow(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(result_of(Value::dict_from([("kind", Value::str("allow"))])))
}

fn warn(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(result_of(Value::dict_from([("kind", Value::str("warn")), ("reason", Value::str(text_arg(args, 0)))])))
}

fn block(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let error = Value::dict_from([("code", Value::str(text_arg(args, 0))), ("message", Value::str(text_arg(args, 1)))]);
    done(result_of(Value::dict_from([("error", error), ("kind", Value::str("block"))])))
}

fn require_approval(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let kind = text_arg(args, 0);
    let who = Value::str(text_arg(args, 1));
    let approver = match kind.as_ref() {
        "principal" => Value::dict_from([("id", who), ("kind", Value::str("principal"))]),
        "role" => Value::dict_from([("kind", Value::str("role")), ("name", who)]),
        other => {
            return Err(fail(
                "flow_invariant_require_approval",
                format!("kind must be \"principal\" or \"role\", got \"{other}\""),
            ))
        }
    };
    done(result_of(Value::dict_from([("approver", approver), ("kind", Value::str("require_approval"))])))
}

fn remediation(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::dict_from([("description", Value::str(text_arg(args, 0)))]))
}

/// A non-negative int argument named `name`.
fn offset(args: &[Value], i: usize, builtin: &str, name: &str) -> VmResult<i64> {
    match arg(args, i) {
        Value::Int(n) if *n >= 0 => Ok(*n),
        Value::Int(n) => Err(fail(builtin, format!("argument `{name}` must be non-negative, got {n}"))),
        other => Err(fail(builtin, format!("argument `{name}` must be an int, got {}", other.type_name()))),
    }
}

fn span(args: &[Value], builtin: &str, names: (&str, &str)) -> VmResult<Value> {
    let start = offset(args, 1, builtin, names.0)?;
    let end = offset(args, 2, builtin, names.1)?;
    if end < start {
        return Err(fail(builtin, format!("span end ({end}) must be >= start ({start})")));
    }
    Ok(Value::dict_from([("end", Value::Int(end)), ("start", Value::Int(start))]))
}

/// A 32-byte atom id in hex, lowercased.
fn atom_id(text: &str) -> Result<String, String> {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!("invalid AtomId hex: Invalid character '{c}' at position {i}"));
    }
    if text.len() % 2 == 1 {
        return Err("invalid AtomId hex: Odd number of digits".into());
    }
    if text.len() != 64 {
        return Err(format!("AtomId must be 32 bytes, got {}", text.len() / 2));
    }
    Ok(text.to_ascii_lowercase())
}

fn evidence_atom(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const B: &str = "flow_evidence_atom";
    let id = atom_id(&text_arg(args, 0)).map_err(|e| fail(B, format!("invalid atom id: atom invalid: {e}")))?;
    let diff_span = span(args, B, ("diff_start", "diff_end"))?;
    done(Value::dict_from([("atom", Value::str(id)), ("diff_span", diff_span), ("kind", Value::str("atom_pointer"))]))
}

fn evidence_citation(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::dict_from([
        ("fetched_at", Value::str(text_arg(args, 2))),
        ("kind", Value::str("external_citation")),
        ("quote", Value::str(text_arg(args, 1))),
        ("url", Value::str(text_arg(args, 0))),
    ]))
}

fn evidence_metadata(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::dict_from([
        ("directory", Value::str(text_arg(args, 0))),
        ("key", Value::str(text_arg(args, 2))),
        ("kind", Value::str("metadata_path")),
        ("namespace", Value::str(text_arg(args, 1))),
    ]))
}

fn evidence_transcript(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const B: &str = "flow_evidence_transcript";
    let s = span(args, B, ("span_start", "span_end"))?;
    done(Value::dict_from([
        ("kind", Value::str("transcript_excerpt")),
        ("span", s),
        ("transcript_id", Value::str(text_arg(args, 0))),
    ]))
}

/// The result dict and its verdict kind, or the reason it is not a result.
fn checked<'a>(v: &'a Value, builtin: &str) -> VmResult<(&'a DictMap, &'static str)> {
    let bad = |reason: String| fail(builtin, format!("invalid InvariantResult: {reason}"));
    let Value::Dict(d) = v else {
        return Err(bad(format!("invalid type: {}, expected struct InvariantResult", unexpected(v))));
    };
    let Some(verdict) = d.get(&k("verdict")) else {
        return Err(bad("missing field `verdict`".into()));
    };
    let Value::Dict(verdict) = verdict else {
        return Err(bad(format!("invalid type: {}, expected internally tagged enum Verdict", unexpected(verdict))));
    };
    let Some(kind) = verdict.get(&k("kind")) else {
        return Err(bad("missing field `kind`".into()));
    };
    let kind_text = kind.display();
    match VERDICTS.iter().find(|v| **v == kind_text) {
        Some(name) => Ok((d, name)),
        None => Err(bad(format!("unknown variant `{kind_text}`, expected one of `allow`, `warn`, `block`, `require_approval`"))),
    }
}

fn with_field(d: &DictMap, key: &str, v: Value) -> Value {
    let mut out = d.clone();
    out.insert(k(key), v);
    Value::dict(out)
}

fn with_confidence(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const B: &str = "flow_with_confidence";
    let (d, _) = checked(arg(args, 0), B)?;
    let c = arg(args, 1).as_f64().ok_or_else(|| fail(B, "confidence must be a number"))?;
    let c = if c.is_nan() { 0.0 } else { c.clamp(0.0, 1.0) };
    done(with_field(d, "confidence", Value::Float(c)))
}

fn with_remediation(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (d, _) = checked(arg(args, 0), "flow_with_remediation")?;
    done(with_field(d, "remediation", arg(args, 1).clone()))
}

fn with_evidence(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const B: &str = "flow_with_evidence";
    let (d, _) = checked(arg(args, 0), B)?;
    let Value::List(items) = arg(args, 1) else {
        return Err(fail(B, format!("evidence must be a list, got {}", arg(args, 1).type_name())));
    };
    for item in items.iter() {
        let tag = match item {
            Value::Dict(e) => e.get(&k("kind")).map(Value::display),
            other => {
                return Err(fail(
                    B,
                    format!(
                        "invalid evidence: invalid type: {}, expected internally tagged enum EvidenceItem",
                        unexpected(other)
                    ),
                ))
            }
        };
        match tag {
            None => return Err(fail(B, "invalid evidence: missing field `kind`")),
            Some(t) if !EVIDENCE_KINDS.contains(&t.as_str()) => {
                return Err(fail(
                    B,
                    format!(
                        "invalid evidence: unknown variant `{t}`, expected one of `atom_pointer`, `external_citation`, `metadata_path`, `transcript_excerpt`"
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    done(with_field(d, "evidence", Value::List(items.clone())))
}

fn kind(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (_, kind) = checked(arg(args, 0), "flow_invariant_kind")?;
    done(Value::str(kind))
}

fn confidence(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (d, _) = checked(arg(args, 0), "flow_invariant_confidence")?;
    done(Value::Float(d.get(&k("confidence")).and_then(Value::as_f64).unwrap_or(1.0)))
}

fn is_blocking(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (_, kind) = checked(arg(args, 0), "flow_invariant_is_blocking")?;
    done(Value::Bool(kind == "block"))
}

/// At most this many feedback lines unless `max_items` says otherwise (0.9.11's default).
const FEEDBACK_MAX_ITEMS: i64 = 8;

/// Whitespace runs collapsed to one space, trimmed; `None` when empty or not text.
fn squeezed(v: Option<&Value>) -> Option<String> {
    let Some(Value::Str(s)) = v else { return None };
    let out = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!out.is_empty()).then_some(out)
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Dict(d) => d.get(&k(name)),
        _ => None,
    }
}

/// One feedback line for an evaluation record, `None` for an allow (or a
/// record without a verdict).
fn record_line(record: &Value) -> Option<String> {
    let result = field(record, "result")?;
    let verdict = field(result, "verdict")?;
    let name = match field(record, "name") {
        Some(Value::Str(s)) if !s.trim().is_empty() => s.to_string(),
        _ => "unnamed_predicate".to_string(),
    };
    let kind = match field(verdict, "kind") {
        Some(Value::Str(s)) => s.to_string(),
        _ => "unknown".to_string(),
    };
    let line = match kind.as_str() {
        "allow" => return None,
        "warn" => format!("Warn {name}: {}", squeezed(field(verdict, "reason")).unwrap_or_else(|| "warning".into())),
        "block" => {
            let error = field(verdict, "error");
            let code = squeezed(error.and_then(|e| field(e, "code"))).unwrap_or_else(|| "block".into());
            let message = squeezed(error.and_then(|e| field(e, "message"))).unwrap_or_else(|| "blocked".into());
            format!("Block {name}: {code}: {message}")
        }
        "require_approval" => {
            let approver = field(verdict, "approver");
            let who_kind = squeezed(approver.and_then(|a| field(a, "kind"))).unwrap_or_else(|| "approver".into());
            let who = squeezed(approver.and_then(|a| field(a, "id")))
                .or_else(|| squeezed(approver.and_then(|a| field(a, "name"))))
                .unwrap_or_else(|| "unknown".into());
            format!("RequireApproval {name}: requires {who_kind} approval from {who}")
        }
        other => {
            let shown = squeezed(Some(&Value::str(other))).unwrap_or_else(|| "unknown".into());
            format!("Invariant {name}: unsupported verdict {shown}")
        }
    };
    let remediation = match field(result, "remediation") {
        Some(d @ Value::Dict(_)) => squeezed(field(d, "description")),
        other => squeezed(other),
    };
    Some(match remediation {
        Some(r) => format!("{line} Remediation: {r}"),
        None => line,
    })
}

/// `flow_invariant_feedback(report, options?)`: the error diagnostics and
/// non-allow records of a `flow_evaluate_invariants` report as a bounded
/// bullet list (`options.max_items`, default 8); "" when nothing needs attention.
fn feedback(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "flow_invariant_feedback";
    let report = arg(args, 0);
    if !matches!(report, Value::Dict(_)) {
        return Err(VmError::type_error(format!("'{NAME}' parameter `report` expects dict, got {}", report.type_name())));
    }
    let mut max_items = FEEDBACK_MAX_ITEMS;
    match arg(args, 1) {
        Value::Nil => {}
        Value::Dict(options) => {
            for (key, v) in options.iter() {
                if key.as_str() != "max_items" {
                    return Err(fail(NAME, format!("unknown option key '{key}'")));
                }
                match v {
                    Value::Int(n) if *n > 0 => max_items = *n,
                    Value::Int(n) => return Err(fail(NAME, format!("option `max_items` must be > 0, got {n}"))),
                    other => return Err(fail(NAME, format!("option `max_items` must be an int, got {}", other.type_name()))),
                }
            }
        }
        other => {
            return Err(VmError::type_error(format!("'{NAME}' parameter `options` expects dict, got {}", other.type_name())))
        }
    }
    let mut lines = Vec::new();
    if let Some(Value::List(diagnostics)) = field(report, "diagnostics") {
        for d in diagnostics.iter() {
            if matches!(field(d, "severity"), Some(Value::Str(s)) if s.as_str() == "error") {
                let message = squeezed(field(d, "message")).unwrap_or_else(|| "unknown diagnostic".into());
                lines.push(format!("Diagnostic error: {message}"));
            }
        }
    }
    if let Some(Value::List(records)) = field(report, "records") {
        lines.extend(records.iter().filter_map(record_line));
    }
    if lines.is_empty() {
        return done(Value::str(""));
    }
    let shown = lines.len().min(usize::try_from(max_items).unwrap_or(usize::MAX));
    let mut out = String::from("Flow invariants need attention:");
    for line in &lines[..shown] {
        out.push_str("\n- ");
        out.push_str(line);
    }
    if lines.len() > shown {
        out.push_str(&format!("\n- {} more item(s) omitted.", lines.len() - shown));
    }
    done(Value::str(out))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn record(name: &str, verdict: Value) -> Value {
        Value::dict_from([("name", Value::str(name)), ("result", result_of(verdict))])
    }

    #[test]
    fn feedback_lists_what_needs_attention() {
        let warn = Value::dict_from([("kind", Value::str("warn")), ("reason", Value::str(" a \n b "))]);
        let allow = Value::dict_from([("kind", Value::str("allow"))]);
        let report =
            Value::dict_from([("records", Value::list(vec![record("w", warn.clone()), record("ok", allow), record("", warn)]))]);
        let text = run_builtin("flow_invariant_feedback", std::slice::from_ref(&report), &no_callback).unwrap();
        assert_eq!(text.display(), "Flow invariants need attention:\n- Warn w: a b\n- Warn unnamed_predicate: a b");
        let one = Value::dict_from([("max_items", Value::Int(1))]);
        let text = run_builtin("flow_invariant_feedback", &[report.clone(), one], &no_callback).unwrap();
        assert_eq!(text.display(), "Flow invariants need attention:\n- Warn w: a b\n- 1 more item(s) omitted.");
        let bad = Value::dict_from([("max_items", Value::Int(0))]);
        let err = run_builtin("flow_invariant_feedback", &[report, bad], &no_callback).unwrap_err();
        assert!(err.contains("option `max_items` must be > 0, got 0"), "{err}");
        let empty = run_builtin("flow_invariant_feedback", &[Value::dict_from([])], &no_callback).unwrap();
        assert_eq!(empty.display(), "");
    }
}
