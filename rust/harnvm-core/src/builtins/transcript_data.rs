//! The transcript data builtins (harn-vm 0.9.11 parity): building a
//! transcript from messages, appending messages and assets, lifecycle
//! transitions, lifecycle events, rendering, and JSON export/import.
//!
//! A transcript is a plain dict `{_type: "transcript", version: 2, id,
//! messages, events, assets, summary?, metadata?, state?}`. Its `messages`
//! are the source of truth: every rebuild derives one event per message
//! afresh (with a new UUID v7), so message events never go stale; other
//! events (lifecycle, custom) survive a rebuild after the message events.
//!
//! These builtins check their arity and parameter types as 0.9.11's
//! declared signatures do (`Arity mismatch: ...`, `Type error: 'f'
//! parameter `p` expects T, got U`) before the runtime checks that throw
//! plain strings.

use std::rc::Rc;

use super::args::done;
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{ErrorKind, VmError, VmResult};
use crate::runtime::ops::dict_get;
use crate::runtime::value::{DictMap, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "transcript", imp: Native(transcript) },
    BuiltinDef { name: "transcript_from_messages", imp: Native(transcript_from_messages) },
    BuiltinDef { name: "transcript_messages", imp: Native(transcript_messages) },
    BuiltinDef { name: "transcript_events", imp: Native(transcript_events) },
    BuiltinDef { name: "transcript_assets", imp: Native(transcript_assets) },
    BuiltinDef { name: "transcript_summary", imp: Native(transcript_summary) },
    BuiltinDef { name: "transcript_id", imp: Native(transcript_id) },
    BuiltinDef { name: "transcript_add_asset", imp: Native(transcript_add_asset) },
    BuiltinDef { name: "transcript_fork", imp: Native(transcript_fork) },
    BuiltinDef { name: "transcript_archive", imp: Native(transcript_archive) },
    BuiltinDef { name: "transcript_abandon", imp: Native(transcript_abandon) },
    BuiltinDef { name: "transcript_resume", imp: Native(transcript_resume) },
    BuiltinDef { name: "transcript_render_visible", imp: Native(transcript_render_visible) },
    BuiltinDef { name: "transcript_render_full", imp: Native(transcript_render_full) },
    BuiltinDef { name: "transcript_export", imp: Native(transcript_export) },
    BuiltinDef { name: "transcript_import", imp: Native(transcript_import) },
    BuiltinDef { name: "transcript_suspension_event", imp: Native(transcript_suspension_event) },
    BuiltinDef { name: "transcript_resumption_event", imp: Native(transcript_resumption_event) },
    BuiltinDef { name: "transcript_drain_decision_event", imp: Native(transcript_drain_decision_event) },
    BuiltinDef { name: "transcript_reminder_event", imp: Native(transcript_reminder_event) },
    BuiltinDef { name: "add_message", imp: Native(add_message) },
    BuiltinDef { name: "add_user", imp: Native(add_user) },
    BuiltinDef { name: "add_assistant", imp: Native(add_assistant) },
    BuiltinDef { name: "add_system", imp: Native(add_system) },
    BuiltinDef { name: "add_tool_result", imp: Native(add_tool_result) },
];

/// The declared type of a transcript parameter, as 0.9.11's type errors print it.
const TRANSCRIPT_PARAM: &str = "list | dict | {_type: \"transcript\", version: int, id: string, messages: list, events: list, assets: list, summary?: string, metadata?: dict, state?: string, archived_messages?: int} | {_type: \"transcript\", version: int, id: string, length: int, messages: list, events: list, assets: list, created_at: string, parent_id: string?, child_ids: list, branched_at_event_index: int?, system_prompt: string?, tool_format: string?, pinned_model: string?, pinned_reasoning_policy: string?, workspace_anchor: {primary: string, additional_roots: list, anchored_at: string}?, workspace_policy: {default_mount_mode?: string}, summary?: string, metadata?: dict, state?: string}";

// ---- signature checks -------------------------------------------------------

fn check_arity(name: &str, args: &[Value], min: usize, max: usize) -> VmResult<()> {
    let got = args.len();
    if (min..=max).contains(&got) {
        return Ok(());
    }
    let wanted = match (min, max) {
        (1, 1) => "1 argument".to_string(),
        (n, m) if n == m => format!("{n} arguments"),
        (n, m) => format!("{n}..={m} arguments"),
    };
    Err(VmError::new(ErrorKind::Arity(format!("'{name}' expects {wanted}, got {got}"))))
}

fn param_error(name: &str, param: &str, wanted: &str, got: &Value) -> VmError {
    VmError::type_error(format!("'{name}' parameter `{param}` expects {wanted}, got {}", got.type_name()))
}

/// A transcript-typed parameter: a list or a dict passes; nil only for the
/// accessors, whose declared type (as 0.9.11's) also lists nil.
fn check_transcript_param(name: &str, param: &str, v: &Value, nullable: bool) -> VmResult<()> {
    match v {
        Value::List(_) | Value::Dict(_) => Ok(()),
        Value::Nil if nullable => Ok(()),
        other if nullable => Err(param_error(name, param, &format!("{TRANSCRIPT_PARAM} | nil"), other)),
        other => Err(param_error(name, param, TRANSCRIPT_PARAM, other)),
    }
}

fn dict_param<'a>(name: &str, param: &str, v: &'a Value) -> VmResult<&'a DictMap> {
    match v {
        Value::Dict(d) => Ok(d),
        other => Err(param_error(name, param, "dict", other)),
    }
}

fn string_param(name: &str, param: &str, v: &Value) -> VmResult<()> {
    match v {
        Value::Str(_) => Ok(()),
        other => Err(param_error(name, param, "string", other)),
    }
}

/// The transcript dict in `v`, or the builtin's "must be a transcript" throw.
fn as_transcript<'a>(name: &str, v: &'a Value) -> VmResult<&'a DictMap> {
    match v {
        Value::Dict(d) if dict_get(d, "_type").is_some_and(displays_as_transcript) => Ok(d),
        _ => Err(VmError::throw_msg(format!("{name}: argument must be a transcript"))),
    }
}

fn displays_as_transcript(t: &Value) -> bool {
    match t {
        Value::Str(s) => s.as_str() == "transcript",
        other => other.display() == "transcript",
    }
}

/// A transcript builtin's single transcript argument, checked.
fn transcript_arg<'a>(name: &str, args: &'a [Value], nullable: bool) -> VmResult<&'a DictMap> {
    check_arity(name, args, 1, 1)?;
    check_transcript_param(name, "transcript", &args[0], nullable)?;
    as_transcript(name, &args[0])
}

// ---- building blocks --------------------------------------------------------

fn new_id() -> Value {
    Value::str(uuid::Uuid::now_v7().to_string())
}

fn set(map: &mut DictMap, key: &str, v: Value) {
    map.insert(Rc::new(key.to_string()), v);
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Str(s) => s.as_str().to_string(),
        other => other.display(),
    }
}

/// `key`'s list, an empty one when absent or nil, else the throw 0.9.11 uses.
fn list_field(d: &DictMap, key: &str) -> VmResult<Rc<Vec<Value>>> {
    match dict_get(d, key) {
        None | Some(Value::Nil) => Ok(Rc::new(Vec::new())),
        Some(Value::List(items)) => Ok(Rc::clone(items)),
        Some(_) => Err(VmError::throw_msg(format!("transcript.{key} must be a list"))),
    }
}

/// The content of one message as blocks, each tagged with a visibility
/// (a block's own visibility wins).
fn content_blocks(content: Option<&Value>, visibility: &str) -> Vec<Value> {
    let text_block = |text: String| {
        Value::dict_from([("type", Value::str("text")), ("text", Value::str(text)), ("visibility", Value::str(visibility))])
    };
    let dict_block = |d: &DictMap| {
        let mut block = d.clone();
        if dict_get(d, "type").is_none() {
            set(&mut block, "type", Value::str("text"));
        }
        if dict_get(d, "visibility").is_none() {
            set(&mut block, "visibility", Value::str(visibility));
        }
        Value::dict(block)
    };
    match content {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::Str(s)) => vec![text_block(s.as_str().to_string())],
        Some(Value::List(items)) => items
            .iter()
            .map(|item| match item {
                Value::Dict(d) => dict_block(d),
                other => text_block(other.display()),
            })
            .collect(),
        Some(Value::Dict(d)) => vec![dict_block(d)],
        Some(other) => vec![text_block(other.display())],
    }
}

/// How a block reads in an event's one-line text: its text for text
/// blocks, nothing for reasoning, a `<type...>` placeholder otherwise.
fn block_text(block: &Value) -> String {
    let Value::Dict(d) = block else { return String::new() };
    let named = |fallback: &str, with_path: bool| {
        let name = dict_get(d, "name").or_else(|| if with_path { dict_get(d, "path") } else { None });
        name.map_or_else(|| fallback.to_string(), text_of)
    };
    let kind = dict_get(d, "type").map(text_of).unwrap_or_default();
    match kind.as_str() {
        "text" | "output_text" => dict_get(d, "text").map(text_of).unwrap_or_default(),
        "reasoning" => String::new(),
        "tool_use" => "<tool_use>".to_string(),
        "image" | "input_image" => format!("<image:{}>", named("image", true)),
        "file" => format!("<file:{}>", named("file", true)),
        "document" => format!("<document:{}>", named("document", true)),
        "tool_call" => format!("<tool_call:{}>", named("tool", false)),
        "tool_result" => format!("<tool_result:{}>", named("tool", false)),
        other => format!("<{other}>"),
    }
}

fn event(kind: &str, role: Value, visibility: &str, blocks: Vec<Value>) -> DictMap {
    let text: Vec<String> = blocks.iter().map(block_text).filter(|t| !t.is_empty()).collect();
    let mut e = DictMap::new();
    set(&mut e, "id", new_id());
    set(&mut e, "kind", Value::str(kind));
    set(&mut e, "role", role);
    set(&mut e, "text", Value::str(text.join(" ")));
    set(&mut e, "visibility", Value::str(visibility));
    set(&mut e, "blocks", Value::list(blocks));
    e
}

/// The event a message stands for: a tool result is internal, the rest public.
fn message_event(message: &Value) -> Value {
    let Value::Dict(m) = message else {
        return Value::dict(event("message", Value::str("user"), "public", Vec::new()));
    };
    let role = dict_get(m, "role").cloned().unwrap_or_else(|| Value::str("user"));
    let is_tool_result = role.as_str() == Some("tool_result");
    let (kind, visibility) = if is_tool_result { ("tool_result", "internal") } else { ("message", "public") };
    Value::dict(event(kind, role, visibility, content_blocks(dict_get(m, "content"), visibility)))
}

/// A system event with one text block (lifecycle transitions and markers).
fn system_event(kind: &str, text: &str, visibility: &str) -> DictMap {
    let block =
        Value::dict_from([("type", Value::str("text")), ("text", Value::str(text)), ("visibility", Value::str(visibility))]);
    event(kind, Value::str("system"), visibility, vec![block])
}

/// What a transcript keeps across a rebuild besides messages and events.
struct Carried {
    id: Value,
    assets: Rc<Vec<Value>>,
    summary: Option<Value>,
    metadata: Option<Value>,
    state: Option<Value>,
    /// Events that are not message events, in order.
    other_events: Vec<Value>,
}

fn carried(d: &DictMap) -> VmResult<(Rc<Vec<Value>>, Carried)> {
    let messages = list_field(d, "messages")?;
    let assets = list_field(d, "assets")?;
    let is_string = |v: &&Value| matches!(v, Value::Str(_));
    let other_events = match dict_get(d, "events") {
        Some(Value::List(events)) => events
            .iter()
            .filter(|e| match e {
                Value::Dict(e) => !matches!(dict_get(e, "kind").and_then(Value::as_str), Some("message" | "tool_result")),
                _ => false,
            })
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let keep = Carried {
        id: dict_get(d, "id").filter(is_string).cloned().unwrap_or_else(new_id),
        assets,
        summary: dict_get(d, "summary").filter(is_string).cloned(),
        metadata: dict_get(d, "metadata").cloned(),
        state: dict_get(d, "state").filter(is_string).cloned(),
        other_events,
    };
    Ok((messages, keep))
}

/// A version-2 transcript; message events come first, then `extra_events`.
fn assemble(messages: Rc<Vec<Value>>, keep: Carried, extra_events: Vec<Value>) -> DictMap {
    let mut events: Vec<Value> = messages.iter().map(message_event).collect();
    events.extend(keep.other_events);
    events.extend(extra_events);
    let mut t = DictMap::new();
    set(&mut t, "_type", Value::str("transcript"));
    set(&mut t, "version", Value::Int(2));
    set(&mut t, "id", keep.id);
    set(&mut t, "messages", Value::List(messages));
    set(&mut t, "events", Value::list(events));
    set(&mut t, "assets", Value::List(keep.assets));
    for (key, v) in [("summary", keep.summary), ("metadata", keep.metadata), ("state", keep.state)] {
        if let Some(v) = v {
            set(&mut t, key, v);
        }
    }
    t
}

fn fresh(messages: Rc<Vec<Value>>) -> DictMap {
    let keep = Carried {
        id: new_id(),
        assets: Rc::new(Vec::new()),
        summary: None,
        metadata: None,
        state: None,
        other_events: Vec::new(),
    };
    assemble(messages, keep, Vec::new())
}

// ---- constructors and accessors ---------------------------------------------

/// `transcript(metadata?)`: an empty transcript (an explicit nil metadata is kept).
fn transcript(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    check_arity("transcript", args, 0, 1)?;
    let mut t = fresh(Rc::new(Vec::new()));
    if let Some(metadata) = args.first() {
        if !matches!(metadata, Value::Dict(_) | Value::Nil) {
            return Err(param_error("transcript", "metadata", "dict", metadata));
        }
        set(&mut t, "metadata", metadata.clone());
    }
    done(Value::dict(t))
}

/// `transcript_from_messages(list | transcript)`: a new transcript (new id) of those messages.
fn transcript_from_messages(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "transcript_from_messages";
    check_arity(NAME, args, 1, 1)?;
    check_transcript_param(NAME, "messages_or_transcript", &args[0], false)?;
    let messages = match &args[0] {
        Value::List(items) => Rc::clone(items),
        Value::Dict(d) if dict_get(d, "_type").is_some_and(displays_as_transcript) => list_field(d, "messages")?,
        _ => return Err(VmError::throw_msg(format!("{NAME}: argument must be a message list or transcript"))),
    };
    done(Value::dict(fresh(messages)))
}

fn transcript_messages(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = transcript_arg("transcript_messages", args, true)?;
    done(Value::List(list_field(t, "messages")?))
}

/// The events as stored (0.9.11 does not check their type).
fn transcript_events(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = transcript_arg("transcript_events", args, true)?;
    done(dict_get(t, "events").cloned().unwrap_or_else(|| Value::list(Vec::new())))
}

fn transcript_assets(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = transcript_arg("transcript_assets", args, true)?;
    done(Value::List(list_field(t, "assets")?))
}

fn transcript_summary(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = transcript_arg("transcript_summary", args, true)?;
    done(dict_get(t, "summary").cloned().unwrap_or(Value::Nil))
}

/// The id when it is a string, else "".
fn transcript_id(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let t = transcript_arg("transcript_id", args, true)?;
    done(match dict_get(t, "id") {
        Some(id @ Value::Str(_)) => id.clone(),
        _ => Value::str(""),
    })
}

/// `transcript_add_asset(transcript, asset)`: the asset gets `_type`, and
/// defaults for a missing id (a new UUID), kind ("blob") and visibility ("internal").
fn transcript_add_asset(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "transcript_add_asset";
    check_arity(NAME, args, 2, 2)?;
    check_transcript_param(NAME, "transcript", &args[0], false)?;
    let given = dict_param(NAME, "asset", &args[1])?;
    let t = as_transcript(NAME, &args[0])?;
    let (messages, mut keep) = carried(t)?;
    let mut asset = given.clone();
    for (key, default) in [("id", new_id()), ("kind", Value::str("blob")), ("visibility", Value::str("internal"))] {
        if dict_get(given, key).is_none() {
            set(&mut asset, key, default);
        }
    }
    set(&mut asset, "_type", Value::str("transcript_asset"));
    let mut assets = keep.assets.as_ref().clone();
    assets.push(Value::dict(asset));
    keep.assets = Rc::new(assets);
    done(Value::dict(assemble(messages, keep, Vec::new())))
}

// ---- lifecycle ----------------------------------------------------------------

/// Rebuilds the transcript, appends a lifecycle event and sets its state.
fn lifecycle(args: &[Value], name: &str, kind: &str, text: &str, state: &str) -> VmResult<Flow> {
    let t = as_transcript(name, &args[0])?;
    let (messages, mut keep) = carried(t)?;
    keep.state = Some(Value::str(state));
    let marker = Value::dict(system_event(kind, text, "internal"));
    done(Value::dict(assemble(messages, keep, vec![marker])))
}

/// `transcript_fork(transcript, options?)`: the same transcript (same id) marked forked.
fn transcript_fork(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "transcript_fork";
    check_arity(NAME, args, 1, 2)?;
    check_transcript_param(NAME, "transcript", &args[0], false)?;
    if let Some(options) = args.get(1) {
        if !matches!(options, Value::Dict(_) | Value::Nil) {
            return Err(param_error(NAME, "options", "dict", options));
        }
    }
    lifecycle(args, NAME, "transcript_fork", "transcript forked", "forked")
}

fn transcript_archive(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    transcript_arg("transcript_archive", args, false)?;
    lifecycle(args, "transcript_archive", "transcript_archive", "transcript archived", "archived")
}

fn transcript_abandon(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    transcript_arg("transcript_abandon", args, false)?;
    lifecycle(args, "transcript_abandon", "transcript_abandon", "transcript abandoned", "abandoned")
}

fn transcript_resume(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    transcript_arg("transcript_resume", args, false)?;
    lifecycle(args, "transcript_resume", "transcript_resume", "transcript resumed", "active")
}

/// A public system event carrying `payload` under `key` and as metadata; its
/// text is the payload's `text_key` when that is a string.
fn payload_event(name: &str, param: &str, args: &[Value], kind: &str, key: &str, text_key: &str) -> VmResult<Flow> {
    check_arity(name, args, 1, 1)?;
    let payload = dict_param(name, param, &args[0])?;
    let text = dict_get(payload, text_key).and_then(Value::as_str).unwrap_or("").to_string();
    let mut e = system_event(kind, &text, "public");
    set(&mut e, key, args[0].clone());
    set(&mut e, "metadata", args[0].clone());
    done(Value::dict(e))
}

fn transcript_suspension_event(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    payload_event("transcript_suspension_event", "suspension", args, "suspension", "suspension", "reason")
}

fn transcript_resumption_event(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    payload_event("transcript_resumption_event", "resumption", args, "resumption", "resumption", "initiator_id")
}

fn transcript_drain_decision_event(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    payload_event("transcript_drain_decision_event", "drain", args, "drain_decision", "drain", "reason")
}

/// `transcript_reminder_event(reminder)`: a system-reminder event. The
/// reminder is normalized leniently, as 0.9.11 does: a field of the wrong
/// type or an unknown enum name falls back to its default instead of failing.
fn transcript_reminder_event(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "transcript_reminder_event";
    check_arity(NAME, args, 1, 1)?;
    let given = dict_param(NAME, "reminder", &args[0])?;
    let field = |key: &str| dict_get(given, key);
    // Present and not displaying as empty (so an explicit nil is kept).
    let non_empty = |key: &str| field(key).filter(|v| !text_of(v).is_empty()).cloned();
    let one_of = |key: &str, names: &[&str]| {
        let chosen = field(key).and_then(Value::as_str).filter(|name| names.contains(name)).unwrap_or(names[0]);
        Value::str(chosen)
    };
    let body = field("body").filter(|v| !v.is_nil()).cloned().unwrap_or_else(|| Value::str(""));
    let role_hint = one_of("role_hint", &["system", "developer", "user_block", "ephemeral_cache"]);
    let mut reminder = DictMap::new();
    set(&mut reminder, "id", non_empty("id").unwrap_or_else(new_id));
    set(&mut reminder, "body", body.clone());
    set(
        &mut reminder,
        "tags",
        field("tags").filter(|v| matches!(v, Value::List(_))).cloned().unwrap_or_else(|| Value::list(Vec::new())),
    );
    for key in ["dedupe_key", "originating_agent_id"] {
        if let Some(v) = non_empty(key) {
            set(&mut reminder, key, v);
        }
    }
    if let Some(ttl @ Value::Int(_)) = field("ttl_turns") {
        set(&mut reminder, "ttl_turns", ttl.clone());
    }
    set(&mut reminder, "preserve_on_compact", Value::Bool(field("preserve_on_compact").is_some_and(Value::is_truthy)));
    set(&mut reminder, "propagate", one_of("propagate", &["session", "all", "none"]));
    set(&mut reminder, "role_hint", role_hint.clone());
    set(&mut reminder, "source", one_of("source", &["in_pipeline", "stdlib_provider", "bridge", "inherited"]));
    set(
        &mut reminder,
        "fired_at_turn",
        field("fired_at_turn").filter(|v| matches!(v, Value::Int(_))).cloned().unwrap_or(Value::Int(0)),
    );
    let text = text_of(&body);
    let block = Value::dict_from([
        ("type", Value::str("text")),
        ("text", Value::str(text.clone())),
        ("visibility", Value::str("public")),
    ]);
    let mut e = event("system_reminder", role_hint, "public", vec![block]);
    set(&mut e, "text", Value::str(text));
    set(&mut e, "reminder", Value::dict(reminder.clone()));
    set(&mut e, "metadata", Value::dict(reminder));
    done(Value::dict(e))
}

// ---- rendering and interchange ------------------------------------------------

/// One line per event dict: `role: text` (visible: public events with text
/// only) or `[visibility] role: text` (full).
fn render(t: &DictMap, full: bool) -> String {
    let Some(Value::List(events)) = dict_get(t, "events") else { return String::new() };
    let field = |e: &DictMap, key: &str| dict_get(e, key).map(text_of).unwrap_or_default();
    let mut lines = Vec::new();
    for e in events.iter() {
        let Value::Dict(e) = e else { continue };
        let (role, text) = (field(e, "role"), field(e, "text"));
        if full {
            lines.push(format!("[{}] {role}: {text}", field(e, "visibility")));
        } else if dict_get(e, "visibility").and_then(Value::as_str) == Some("public") && !text.is_empty() {
            lines.push(format!("{role}: {text}"));
        }
    }
    lines.join("\n")
}

fn transcript_render_visible(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(render(transcript_arg("transcript_render_visible", args, true)?, false)))
}

fn transcript_render_full(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(render(transcript_arg("transcript_render_full", args, true)?, true)))
}

/// The transcript dict as it is, as JSON with two-space indentation.
fn transcript_export(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    transcript_arg("transcript_export", args, false)?;
    let compact = super::json::to_json(&args[0])?;
    let fail = |e: serde_json::Error| VmError::runtime(format!("transcript_export: {e}"));
    let parsed: serde_json::Value = serde_json::from_str(&compact).map_err(fail)?;
    done(Value::str(serde_json::to_string_pretty(&parsed).map_err(fail)?))
}

/// Parses JSON text; the value comes back as it is (no transcript check).
fn transcript_import(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "transcript_import";
    check_arity(NAME, args, 1, 1)?;
    string_param(NAME, "text", &args[0])?;
    let text = args[0].as_str().unwrap_or("");
    crate::runtime::native::charge_work(text.len())?;
    done(super::json::parse_json(text).map_err(|e| VmError::runtime(format!("{NAME}: {e}")))?)
}

// ---- appending messages ----------------------------------------------------------

/// Appends `message` to a message list (a list back) or a transcript (a
/// rebuilt transcript back). With `own_event` (add_tool_result) the new
/// message gets that event, placed before the custom events, which then
/// survive; otherwise every message event is derived and custom events are
/// dropped, as 0.9.11 does.
fn append(name: &str, target: &Value, message: Value, own_event: Option<Value>) -> VmResult<Flow> {
    match target {
        Value::List(items) => {
            let mut out = items.as_ref().clone();
            out.push(message);
            done(Value::list(out))
        }
        Value::Dict(d) if dict_get(d, "_type").is_some_and(displays_as_transcript) => {
            let (messages, mut keep) = carried(d)?;
            let mut out = messages.as_ref().clone();
            out.push(message);
            let Some(own) = own_event else {
                keep.other_events.clear();
                return done(Value::dict(assemble(Rc::new(out), keep, Vec::new())));
            };
            let custom = std::mem::take(&mut keep.other_events);
            let mut t = assemble(messages, keep, Vec::new());
            let mut events = match dict_get(&t, "events") {
                Some(Value::List(events)) => events.as_ref().clone(),
                _ => Vec::new(),
            };
            events.push(own);
            events.extend(custom);
            set(&mut t, "events", Value::list(events));
            set(&mut t, "messages", Value::list(out));
            done(Value::dict(t))
        }
        _ => Err(VmError::throw_msg(format!("{name}: first argument must be a message list or transcript"))),
    }
}

fn role_message(name: &str, args: &[Value], role: &str) -> VmResult<Flow> {
    check_arity(name, args, 2, 2)?;
    check_transcript_param(name, "messages_or_transcript", &args[0], false)?;
    let message = Value::dict_from([("role", Value::str(role)), ("content", args[1].clone())]);
    append(name, &args[0], message, None)
}

fn add_message(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "add_message";
    check_arity(NAME, args, 3, 3)?;
    check_transcript_param(NAME, "messages_or_transcript", &args[0], false)?;
    string_param(NAME, "role", &args[1])?;
    let message = Value::dict_from([("role", args[1].clone()), ("content", args[2].clone())]);
    append(NAME, &args[0], message, None)
}

fn add_user(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    role_message("add_user", args, "user")
}

fn add_assistant(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    role_message("add_assistant", args, "assistant")
}

fn add_system(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    role_message("add_system", args, "system")
}

fn add_tool_result(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "add_tool_result";
    check_arity(NAME, args, 3, 3)?;
    check_transcript_param(NAME, "messages_or_transcript", &args[0], false)?;
    string_param(NAME, "tool_use_id", &args[1])?;
    let message =
        Value::dict_from([("role", Value::str("tool_result")), ("tool_use_id", args[1].clone()), ("content", args[2].clone())]);
    // Its event holds the content as it is in one text block (a list is not
    // split into blocks), and reads as the content's display text.
    let block =
        Value::dict_from([("type", Value::str("text")), ("text", args[2].clone()), ("visibility", Value::str("internal"))]);
    let mut own = event("tool_result", Value::str("tool_result"), "internal", vec![block]);
    set(&mut own, "text", Value::str(text_of(&args[2])));
    append(NAME, &args[0], message, Some(Value::dict(own)))
}

#[cfg(test)]
mod tests {
    use crate::builtins::callback::test_driver::{no_callback, run_builtin};
    use crate::builtins::json::parse_json;
    use crate::runtime::ops::dict_get;
    use crate::runtime::value::Value;

    fn j(text: &str) -> Value {
        parse_json(text).unwrap()
    }

    fn field(v: &Value, key: &str) -> Value {
        match v {
            Value::Dict(d) => dict_get(d, key).cloned().unwrap_or(Value::Nil),
            _ => Value::Nil,
        }
    }

    fn is_uuid_v7(v: &Value) -> bool {
        v.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()).is_some_and(|u| u.get_version_num() == 7)
    }

    #[test]
    fn messages_become_events_with_fresh_ids() {
        let msgs = j(
            r#"[{"role":"user","content":"hi"},{"role":"tool_result","content":"r"},{"content":[{"type":"image","name":"p"},7]}]"#,
        );
        let t = run_builtin("transcript_from_messages", &[msgs], &no_callback).unwrap();
        assert!(is_uuid_v7(&field(&t, "id")));
        let Value::List(ref events) = field(&t, "events") else { panic!("events") };
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| is_uuid_v7(&field(e, "id"))));
        assert_eq!(field(&events[1], "kind").display(), "tool_result");
        assert_eq!(field(&events[1], "visibility").display(), "internal");
        assert_eq!(field(&events[2], "role").display(), "user");
        assert_eq!(field(&events[2], "text").display(), "<image:p> 7");
    }

    #[test]
    fn signature_errors_read_as_the_reference() {
        let err = |name: &str, args: &[Value]| run_builtin(name, args, &no_callback).unwrap_err();
        assert_eq!(err("transcript", &[Value::Nil, Value::Nil]), "Arity mismatch: 'transcript' expects 0..=1 arguments, got 2");
        assert_eq!(err("add_user", &[Value::Nil]), "Arity mismatch: 'add_user' expects 2 arguments, got 1");
        assert_eq!(err("transcript_id", &[]), "Arity mismatch: 'transcript_id' expects 1 argument, got 0");
        assert_eq!(
            err("add_message", &[j("[]"), Value::Int(1), Value::Nil]),
            "Type error: 'add_message' parameter `role` expects string, got int"
        );
        assert_eq!(err("transcript_id", &[j("{}")]), "Thrown: transcript_id: argument must be a transcript");
        assert_eq!(
            err("transcript_messages", &[j(r#"{"_type":"transcript","messages":1}"#)]),
            "Thrown: transcript.messages must be a list"
        );
    }
}
