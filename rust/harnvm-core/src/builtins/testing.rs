//! Categorized errors: `throw_error`, `error_category`, `is_timeout`,
//! `is_rate_limited`. (The assertion builtins live in `core.rs`.)
//!
//! A categorized error is thrown as a dict `{category, message}`. Caught
//! values are classified by their `category` key, or — for error strings —
//! by well-known markers: an HTTP status code, `Deadline exceeded`,
//! provider error identifiers and the like.

use super::args::{done, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "throw_error", imp: Native(throw_error) },
    BuiltinDef { name: "error_category", imp: Native(error_category) },
    BuiltinDef { name: "is_timeout", imp: Native(is_timeout) },
    BuiltinDef { name: "is_rate_limited", imp: Native(is_rate_limited) },
];

/// The categories a thrown error may carry; anything else reads as `generic`.
const CATEGORIES: &[&str] = &[
    "timeout",
    "auth",
    "rate_limit",
    "overloaded",
    "server_error",
    "transient_network",
    "resource_busy",
    "schema_validation",
    "tool_error",
    "tool_rejected",
    "cancelled",
    "channel_closed",
    "not_found",
    "circuit_open",
    "budget_exceeded",
    "internal",
    "generic",
];

fn known_category(name: &str) -> &'static str {
    CATEGORIES.iter().copied().find(|c| *c == name).unwrap_or("generic")
}

/// The category of a caught error value.
pub fn category_of(v: &Value) -> &'static str {
    match v {
        Value::Dict(map) => map.get(&"category".to_string()).map_or("generic", |c| known_category(&c.display())),
        Value::Str(s) => classify_message(s),
        _ => "generic",
    }
}

/// Heuristic classification of an error message.
fn classify_message(msg: &str) -> &'static str {
    if let Some(category) = http_status_category(msg) {
        return category;
    }
    let lower = msg.to_lowercase();
    let markers: &[(&[&str], &'static str)] = &[
        (&["Deadline exceeded", "context deadline exceeded"], "timeout"),
        (&["overloaded_error"], "overloaded"),
        (&["api_error"], "server_error"),
        (&["insufficient_quota", "billing_hard_limit_reached", "rate_limit_error"], "rate_limit"),
        (&["invalid_api_key", "authentication_error"], "auth"),
        (&["not_found_error", "model_not_found"], "not_found"),
        (&["circuit_open"], "circuit_open"),
    ];
    if lower.contains("cancelled") || lower.contains("canceled") {
        return "cancelled";
    }
    for (needles, category) in markers {
        if needles.iter().any(|n| msg.contains(n)) {
            return category;
        }
    }
    // Transport failures 0.9.11 files as transient_network (any case).
    const NETWORK: [&str; 5] = ["connection reset", "connection refused", "connection closed", "broken pipe", "dns error"];
    if NETWORK.iter().any(|n| lower.contains(n)) {
        return "transient_network";
    }
    "generic"
}

/// The category of the first recognised HTTP status code (a 3-digit 4xx/5xx
/// number not part of a longer number).
fn http_status_category(msg: &str) -> Option<&'static str> {
    let bytes = msg.as_bytes();
    for i in 0..bytes.len().saturating_sub(2) {
        let is_digit = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_digit);
        if !(is_digit(i) && is_digit(i + 1) && is_digit(i + 2)) || (i > 0 && is_digit(i - 1)) || is_digit(i + 3) {
            continue;
        }
        let category = match &msg[i..i + 3] {
            "401" | "403" => "auth",
            "404" | "410" => "not_found",
            "408" | "504" | "522" | "524" => "timeout",
            "429" => "rate_limit",
            "503" | "529" => "overloaded",
            "500" | "502" => "server_error",
            _ => continue,
        };
        return Some(category);
    }
    None
}

/// `throw_error(message, category = "generic")` throws `{category, message}`.
fn throw_error(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let category = if arg(args, 1).is_nil() { "generic" } else { known_category(&text_arg(args, 1)) };
    Err(VmError::thrown(Value::dict_from([("category", Value::str(category)), ("message", Value::str(text_arg(args, 0)))])))
}

fn error_category(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(category_of(arg(args, 0))))
}

fn is_timeout(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(category_of(arg(args, 0)) == "timeout"))
}

fn is_rate_limited(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(category_of(arg(args, 0)) == "rate_limit"))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::TEST_LIMITS;
    use super::*;

    fn caught(args: &[Value]) -> Value {
        let mut out = String::new();
        let mut ctx = Ctx { output: &mut out, limits: &TEST_LIMITS };
        match throw_error(&mut ctx, args) {
            Err(e) => e.catch_value(),
            Ok(_) => panic!("throw_error must throw"),
        }
    }

    #[test]
    fn categories() {
        let e = caught(&[Value::str("request timed out"), Value::str("timeout")]);
        assert_eq!(e.display(), "{category: timeout, message: request timed out}");
        assert_eq!(category_of(&e), "timeout");
        assert_eq!(category_of(&caught(&[Value::str("x"), Value::str("rate_limit")])), "rate_limit");
        assert_eq!(category_of(&caught(&[Value::str("x")])), "generic");
        assert_eq!(category_of(&Value::str("Deadline exceeded")), "timeout");
        assert_eq!(category_of(&Value::str("overloaded_error")), "overloaded");
        assert_eq!(category_of(&Value::str("HTTP 429 Too Many Requests")), "rate_limit");
        assert_eq!(category_of(&Value::str("code 14290")), "generic");
        assert_eq!(category_of(&Value::str("some random error")), "generic");
        assert_eq!(category_of(&Value::Int(42)), "generic");
    }
}
