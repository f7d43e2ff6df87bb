//! `error_is(error, category)` and `error_is_transient(error)`, over the
//! same classification as `error_category`. harn 0.9.11 refuses a category
//! name it does not know; the transient ones are those its agent loop
//! retries (timeout, rate_limit, overloaded, server_error, transient_network).

use super::args::{done, text_arg};
use super::testing::category_of;
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "error_is", imp: Native(error_is) },
    BuiltinDef { name: "error_is_transient", imp: Native(error_is_transient) },
];

/// The category names 0.9.11's `error_is` accepts.
const KNOWN: &[&str] = &[
    "timeout",
    "auth",
    "rate_limit",
    "overloaded",
    "server_error",
    "transient_network",
    "schema_validation",
    "schema_stream_aborted",
    "tool_error",
    "tool_rejected",
    "egress_blocked",
    "cancelled",
    "channel_closed",
    "not_found",
    "circuit_open",
    "budget_exceeded",
    "internal",
    "generic",
];

const TRANSIENT: &[&str] = &["timeout", "rate_limit", "overloaded", "server_error", "transient_network"];

fn error_is(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let wanted = text_arg(args, 1);
    if !KNOWN.contains(&wanted.as_ref()) {
        return Err(VmError::runtime(format!("error_is: unknown error category \"{wanted}\"")));
    }
    done(Value::Bool(category_of(arg(args, 0)) == wanted.as_ref()))
}

fn error_is_transient(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(TRANSIENT.contains(&category_of(arg(args, 0)))))
}
