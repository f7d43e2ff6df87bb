//! The reference's worked examples E1–E17 (values confirmed against the
//! 0.9.11 CLI by the reference's author), plus the odd behaviours it
//! documents, each pinned by name.

use crate::builtins::callback::test_driver::{no_callback, run_builtin};
use crate::builtins::json::{parse_json, to_json};
use crate::runtime::value::Value;

fn j(text: &str) -> Value {
    parse_json(text).unwrap_or_else(|e| panic!("bad JSON in test: {e}: {text}"))
}

fn transcript(messages: Value) -> Value {
    Value::dict_from([("_type", Value::str("transcript")), ("messages", messages)])
}

fn project(messages: &str, options: Value) -> Value {
    run_builtin("transcript_project", &[transcript(j(messages)), options], &no_callback).unwrap()
}

fn project_err(t: Value, options: Value) -> String {
    run_builtin("transcript_project", &[t, options], &no_callback).unwrap_err()
}

fn f<'a>(r: &'a Value, k: &str) -> &'a Value {
    super::json::get(r, k).unwrap_or_else(|| panic!("missing key {k}"))
}

fn js(v: &Value) -> String {
    to_json(v).unwrap()
}

/// The result's keys, and the event's, as the reference builds them.
fn assert_shape(r: &Value) {
    let Value::Dict(map) = r else { panic!("not a dict") };
    let keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "dropped_count",
            "dropped_indices",
            "event",
            "kept_count",
            "kept_indices",
            "messages",
            "policy",
            "prefix_hash",
            "provider_safety_blocked",
            "reason",
            "reclaimed_chars",
            "reclaimed_tokens",
            "redacted_count",
            "redacted_indices",
            "redaction_pointers",
            "roots_consulted"
        ]
    );
    let event = f(r, "event");
    assert_eq!(f(event, "kind").display(), "transcript.projection");
    assert_eq!(f(event, "text").display(), f(r, "reason").display());
    assert_eq!(f(event, "id").display().len(), 36);
    let meta = f(event, "metadata");
    for k in ["policy", "reason", "prefix_hash", "kept_indices", "dropped_indices", "redaction_pointers", "roots_consulted"] {
        assert_eq!(js(f(meta, k)), js(f(r, k)), "metadata.{k}");
    }
}

fn check(r: &Value, policy: &str, reason: &str, kept: &str, dropped: &str, hash: &str) {
    assert_shape(r);
    assert_eq!(f(r, "policy").display(), policy);
    assert_eq!(f(r, "reason").display(), reason);
    assert_eq!(js(f(r, "kept_indices")), kept);
    assert_eq!(js(f(r, "dropped_indices")), dropped);
    assert_eq!(f(r, "prefix_hash").display(), format!("sha256:{hash}"));
}

fn zero_fields(r: &Value) {
    assert_eq!(js(f(r, "redacted_indices")), "[]");
    assert_eq!(js(f(r, "redaction_pointers")), "[]");
    assert_eq!(js(f(r, "roots_consulted")), "[]");
    for k in ["reclaimed_chars", "reclaimed_tokens", "redacted_count"] {
        assert_eq!(f(r, k).display(), "0");
    }
    assert_eq!(f(r, "provider_safety_blocked").display(), "false");
}

const E1: &str = r#"[{"role":"user","content":"hi"},{"role":"assistant","content":"hey"}]"#;

#[test]
fn e1_raw_and_identity_with_reason() {
    let r = project(E1, Value::Nil);
    check(&r, "raw", "raw_passthrough", "[0,1]", "[]", "d0cadcf58715725099c29327fbf5aedf83c82f85323344650901377b6e4e4c8b");
    zero_fields(&r);
    assert_eq!(js(f(&r, "messages")), r#"[{"content":"hi","role":"user"},{"content":"hey","role":"assistant"}]"#);
    let r = project(E1, j(r#"{"policy":"identity","reason":"preview"}"#));
    assert_eq!(f(&r, "reason").display(), "preview");
    assert_eq!(f(f(&r, "event"), "text").display(), "preview");
}

#[test]
fn e2_empty_summary_prefix() {
    let r =
        run_builtin("transcript_project", &[j(r#"{"_type":"transcript"}"#), Value::str("summary_prefix")], &no_callback).unwrap();
    check(&r, "summary_prefix", "summary_prefix_noop_short_history", "[]", "[]", EMPTY_HASH);
    zero_fields(&r);
    assert_eq!(f(f(f(&r, "event"), "metadata"), "summary_keep_last").display(), "0");
}

const EMPTY_HASH: &str = "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";

const E3: &str = r#"[{"role":"user","content":"run it"},
 {"role":"assistant","content":"","tool_calls":[{"id":"call_1","name":"run","arguments":{}}]},
 {"role":"tool","tool_call_id":"call_1","name":"run","content":"Error: missing arg","is_error":true},
 {"role":"assistant","content":"","tool_calls":[{"id":"call_2","name":"run","arguments":{"arg":"x"}}]},
 {"role":"tool","tool_call_id":"call_2","name":"run","content":"ok"}]"#;

#[test]
fn e3_clean_tool_repair_openai() {
    let r = project(E3, Value::str("clean_tool_repair"));
    check(
        &r,
        "clean_tool_repair",
        "clean_tool_repair",
        "[0,3,4]",
        "[1,2]",
        "bece1ab62bbf6286472f57c2ce9d0bd2c28a256b5e70da68c89f59f9a11507ce",
    );
    zero_fields(&r);
    assert_eq!(f(&r, "kept_count").display(), "3");
    assert_eq!(f(&r, "dropped_count").display(), "2");
}

/// Quirk (§3.2): results inside `tool_result` blocks are invisible to clean_tool_repair.
#[test]
fn e4_clean_tool_repair_ignores_anthropic_blocks() {
    let msgs = r#"[{"role":"user","content":"run it"},
 {"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"run","input":{}}]},
 {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"Error: missing arg","is_error":true}]},
 {"role":"assistant","content":[{"type":"tool_use","id":"call_2","name":"run","input":{"arg":"x"}}]},
 {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_2","content":"ok"}]}]"#;
    let r = project(msgs, j(r#"{"policy":"clean_tool_repair"}"#));
    check(
        &r,
        "clean_tool_repair",
        "clean_tool_repair",
        "[0,1,2,3,4]",
        "[]",
        "1f12cb982e9949fb864627ab5f5780dbdc169208c9efacbe62dd9866159d177a",
    );
}

/// Quirk (§3.2): the whole multi-call turn goes, orphaning a good result.
#[test]
fn e5_clean_tool_repair_drops_whole_turn() {
    let msgs = r#"[{"role":"user","content":"go"},
 {"role":"assistant","content":"","tool_calls":[{"id":"c1","name":"run","arguments":{}},{"id":"c2","name":"read","arguments":{"path":"a.txt"}}]},
 {"role":"tool","tool_call_id":"c1","name":"run","content":"failed: exit 1"},
 {"role":"tool","tool_call_id":"c2","name":"read","content":"hello"},
 {"role":"assistant","content":"","tool_calls":[{"id":"c3","name":"run","arguments":{"retry":true}}]},
 {"role":"tool","tool_call_id":"c3","name":"run","content":"ok"}]"#;
    let r = project(msgs, Value::str("clean_tool_repair"));
    check(
        &r,
        "clean_tool_repair",
        "clean_tool_repair",
        "[0,3,4,5]",
        "[1,2]",
        "1c8628a8440241e96065a166bb394fe21a44b9a9851db039e5cf13cbe0f41479",
    );
}

/// Quirk (§3.2): a success *before* the failure repairs the tool too.
#[test]
fn e6_clean_tool_repair_counts_earlier_success() {
    let msgs = r#"[{"role":"user","content":"go"},
 {"role":"assistant","content":"","tool_calls":[{"id":"c1","name":"run","arguments":{}}]},
 {"role":"tool","tool_call_id":"c1","name":"run","content":"ok"},
 {"role":"assistant","content":"Running again.","tool_calls":[{"id":"c2","name":"run","arguments":{}}]},
 {"role":"tool","tool_call_id":"c2","name":"run","content":"x","status":"denied"},
 {"role":"assistant","content":"Stopped."}]"#;
    let r = project(msgs, Value::str("clean_tool_repair"));
    check(
        &r,
        "clean_tool_repair",
        "clean_tool_repair",
        "[0,1,2,5]",
        "[3,4]",
        "f887693d111e82c6abbad5a92fe65648a49902579faab11c3f9d72370d4ac2dd",
    );
}

const E7: &str = r#"[{"role":"user","content":"first"},
 {"role":"assistant","content":[{"type":"thinking","thinking":"private chain","signature":"abc123"},
                                {"type":"tool_use","id":"call_x","name":"run","input":{}}]},
 {"role":"tool","tool_call_id":"call_x","name":"run","content":"Error: boom","is_error":true},
 {"role":"assistant","content":"","tool_calls":[{"id":"call_y","name":"run","arguments":{"v":1}}]},
 {"role":"tool","tool_call_id":"call_y","name":"run","content":"ok"}]"#;

#[test]
fn e7_guard_blocks_and_ignores_reason() {
    let r = project(E7, j(r#"{"policy":"clean_tool_repair","reason":"my label"}"#));
    check(
        &r,
        "clean_tool_repair",
        "clean_tool_repair (blocked: signed reasoning at index 1)",
        "[0,1,2,3,4]",
        "[]",
        "cbed54527869d7c082e404ee5b8b5f9e24f1edeafbefb8e5c8b9e2383f28b19c",
    );
    assert_eq!(f(&r, "provider_safety_blocked").display(), "true");
    let r = project(E7, j(r#"{"policy":"clean_tool_repair","reason":"my label","respect_provider_signatures":false}"#));
    check(
        &r,
        "clean_tool_repair",
        "my label",
        "[0,3,4]",
        "[1,2]",
        "0a195e2d5243f769af3f8273e6847ee79a821cab651489284445fbfae3782de1",
    );
    assert_eq!(f(f(f(&r, "event"), "metadata"), "respects_provider_signatures").display(), "false");
    // A nil signature still counts as signed; a non-bool option and an empty reason are ignored.
    let nil_sig = E7.replace(r#""signature":"abc123""#, r#""signature":null"#);
    let r = project(&nil_sig, j(r#"{"policy":"clean_tool_repair","respect_provider_signatures":"no","reason":""}"#));
    assert_eq!(f(&r, "reason").display(), "clean_tool_repair (blocked: signed reasoning at index 1)");
}

/// Quirk (§3.3): prose keeps a turn with a dangling failed call.
#[test]
fn e8_squash_failed_calls() {
    let msgs = r#"[{"role":"user","content":"go"},
 {"role":"assistant","content":"Let me check.","tool_calls":[{"id":"a","name":"lookup","arguments":{}}]},
 {"role":"tool","tool_call_id":"a","name":"lookup","content":"Error: not found"},
 {"role":"assistant","content":"","tool_calls":[{"id":"b","name":"lookup","arguments":{}},{"id":"c","name":"grep","arguments":{}}]},
 {"role":"tool","tool_call_id":"b","name":"lookup","content":"tool error: timeout"},
 {"role":"tool","tool_call_id":"c","name":"grep","content":"3 matches"},
 {"role":"assistant","content":[{"type":"text","text":"  "}],"tool_calls":[{"id":"d","name":"lookup","arguments":{}}]},
 {"role":"tool","tool_call_id":"d","name":"lookup","content":{"is_error":true,"msg":"x"}}]"#;
    let r = project(msgs, Value::str("squash_failed_calls"));
    check(
        &r,
        "squash_failed_calls",
        "squash_failed_calls",
        "[0,1,3,5]",
        "[2,4,6,7]",
        "ac474892af224eacbd68af31a8ba234ed256815a94cc5585bd55ede6155ac878",
    );
}

const E9: &str = r#"[{"role":"user","content":"msg0"},{"role":"assistant","content":"msg1"},{"role":"user","content":"msg2"},
 {"role":"assistant","content":"msg3"},{"role":"user","content":"msg4"},{"role":"assistant","content":"msg5"}]"#;

#[test]
fn e9_summary_prefix() {
    let r = project(E9, j(r#"{"policy":"summary_prefix","keep_last":2}"#));
    check(
        &r,
        "summary_prefix",
        "summary_prefix",
        "[4,5]",
        "[0,1,2,3]",
        "035ff7d83a3b73acb2c071502961b0b2b9fc8b588ad81c2251ff78eafd822699",
    );
    assert_eq!(
        js(f(&r, "messages")),
        r#"[{"_harn_projection":{"policy":"summary_prefix","synthetic":true},"content":"[4 earlier messages summarized]","role":"system"},{"content":"msg4","role":"user"},{"content":"msg5","role":"assistant"}]"#
    );
    assert_eq!(f(&r, "kept_count").display(), "2");
    assert_eq!(f(f(f(&r, "event"), "metadata"), "summary_keep_last").display(), "2");
    let r = project(E9, j(r#"{"policy":"summary_prefix","keep_last":6}"#));
    check(
        &r,
        "summary_prefix",
        "summary_prefix_noop_short_history",
        "[0,1,2,3,4,5]",
        "[]",
        "cb07d0c5706fea1482ea8ed1cf12c4c88da4deae21e1e4f6348efdc2053afab5",
    );
    // The transcript summary replaces the placeholder; the option wins over both.
    let mut t = transcript(j(E9));
    if let Value::Dict(m) = &mut t {
        std::rc::Rc::make_mut(m).insert(super::json::key("summary"), Value::str("Earlier work boiled down."));
    }
    let r =
        run_builtin("transcript_project", &[t.clone(), j(r#"{"policy":"summary_prefix","keep_last":2}"#)], &no_callback).unwrap();
    let first = |r: &Value| match f(r, "messages") {
        Value::List(l) => f(&l[0], "content").display(),
        _ => unreachable!(),
    };
    assert_eq!(first(&r), "Earlier work boiled down.");
    let r =
        run_builtin("transcript_project", &[t, j(r#"{"policy":"summary_prefix","keep_last":2,"summary":"S"}"#)], &no_callback)
            .unwrap();
    assert_eq!(first(&r), "S");
}

fn e10_messages() -> String {
    let old = format!("src/old.rs\n{}", "old line\n".repeat(180));
    let live = format!("src/live.rs\nIMPORTANT_LIVE_VALUE\n{}", "live line\n".repeat(180));
    format!(
        r#"[{{"role":"user","content":"inspect old and live files"}},
{{"role":"assistant","content":"","tool_calls":[{{"id":"old_call","name":"read","arguments":{{"path":"src/old.rs"}}}}]}},
{{"role":"tool","tool_call_id":"old_call","name":"read","content":{old}}},
{{"role":"assistant","content":"","tool_calls":[{{"id":"live_call","name":"read","arguments":{{"path":"src/live.rs"}}}}]}},
{{"role":"tool","tool_call_id":"live_call","name":"read","content":{live}}},
{{"role":"assistant","content":"The active change is in src/live.rs."}},
{{"role":"user","content":"Continue from the live file finding."}}]"#,
        old = js(&Value::str(old)),
        live = js(&Value::str(live)),
    )
}

#[test]
fn e10_reachability_gc_openai() {
    let r = project(&e10_messages(), j(r#"{"policy":"reachability_gc","root_window":2,"min_chars":100}"#));
    check(
        &r,
        "reachability_gc",
        "reachability_gc",
        "[0,1,2,3,4,5,6]",
        "[]",
        "0e5d1254c59523812e1b758debf0e0c23f2ed8c78bf3ebe7ba535b7e09e1421e",
    );
    assert_eq!(js(f(&r, "redacted_indices")), "[2]");
    assert_eq!(f(&r, "redacted_count").display(), "1");
    assert_eq!(f(&r, "reclaimed_chars").display(), "1403");
    assert_eq!(f(&r, "reclaimed_tokens").display(), "350");
    assert_eq!(js(f(&r, "roots_consulted")), r#"["last_2_messages"]"#);
    let pointer = r#"{"content_chars":1631,"content_hash":"sha256:a211af2235d4ef5c1cf764a5ea7f49ab0f949f4878155d370baa28bb0357760e","estimated_tokens_reclaimed":407,"policy":"reachability_gc","reason":"stale_tool_result_unreachable","source":"transcript.messages[2].content","source_block_index":null,"source_index":2,"tool_call_id":"old_call","tool_name":"read"}"#;
    assert_eq!(js(f(&r, "redaction_pointers")), format!("[{pointer}]"));
    let Value::List(msgs) = f(&r, "messages") else { panic!() };
    assert_eq!(
        f(&msgs[2], "content").display(),
        "[tool result reclaimed by reachability_gc; source_index=2; content_hash=sha256:a211af2235d4ef5c1cf764a5ea7f49ab0f949f4878155d370baa28bb0357760e; estimated_tokens_reclaimed=407. Raw content remains in the transcript audit trail.]"
    );
    assert_eq!(
        js(f(&msgs[2], "_harn_projection")),
        format!(r#"{{"policy":"reachability_gc","redacted":true,"redaction_pointer":{pointer}}}"#)
    );
}

fn e11_messages(extra: bool) -> String {
    let x = "x".repeat(600);
    let tail = if extra { r#",{"role":"user","content":"thanks"}"# } else { "" };
    format!(
        r#"[{{"role":"user","content":"go"}},
{{"role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"read","input":{{"path":"notes/a.md"}}}}]}},
{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t1","content":"{x}"}}]}},
{{"role":"assistant","content":[{{"type":"tool_use","id":"t2","name":"read","input":{{"path":"notes/b.md"}}}}]}},
{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t2","content":"short"}}]}}{tail}]"#
    )
}

/// Quirk (§3.5): block results are rooted by the `tool_result`/`tool_use` substrings.
#[test]
fn e11_reachability_gc_blocks() {
    let r = project(&e11_messages(false), j(r#"{"policy":"reachability_gc","root_window":2}"#));
    check(
        &r,
        "reachability_gc",
        "reachability_gc",
        "[0,1,2,3,4]",
        "[]",
        "c9f955a95571fb69577ab1c68546f24183765073634a23afc15d280361b0ce7b",
    );
    assert_eq!(js(f(&r, "redacted_indices")), "[]");
    assert_eq!(js(f(&r, "roots_consulted")), r#"["last_2_messages"]"#);
    let r = project(&e11_messages(true), j(r#"{"policy":"reachability_gc","root_window":1}"#));
    check(
        &r,
        "reachability_gc",
        "reachability_gc",
        "[0,1,2,3,4,5]",
        "[]",
        "8ebfe025031477e4f55749d1de12d7dc8f4b4695b2e3a15f7c5b41a2ba2f2651",
    );
    assert_eq!(js(f(&r, "redacted_indices")), "[2]");
    assert_eq!(f(&r, "reclaimed_chars").display(), "372");
    assert_eq!(f(&r, "reclaimed_tokens").display(), "93");
    let pointer = r#"{"content_chars":600,"content_hash":"sha256:5130b33e6b87fbf5316ed9049e98924eb110800bcbaaad8050f642fba6df37c9","estimated_tokens_reclaimed":150,"policy":"reachability_gc","reason":"stale_tool_result_unreachable","source":"transcript.messages[2].content[0].content","source_block_index":0,"source_index":2,"tool_call_id":"t1","tool_name":null}"#;
    assert_eq!(js(f(&r, "redaction_pointers")), format!("[{pointer}]"));
    let Value::List(msgs) = f(&r, "messages") else { panic!() };
    assert_eq!(
        js(f(&msgs[2], "_harn_projection")),
        format!(r#"{{"policy":"reachability_gc","redacted":true,"redaction_pointers":[{pointer}]}}"#)
    );
}

fn e12_messages() -> String {
    let live = format!("src/live.rs\n{}", "live line\n".repeat(60));
    let old = format!("src/old.rs\n{}", "old line\n".repeat(60));
    format!(
        r#"[{{"role":"user","content":"fix it"}},
{{"role":"assistant","content":"","tool_calls":[{{"id":"r1","name":"read","arguments":{{"path":"src/live.rs"}}}}]}},
{{"role":"tool","tool_call_id":"r1","name":"read","content":{live}}},
{{"role":"assistant","content":"","tool_calls":[{{"id":"r2","name":"read","arguments":{{"path":"src/old.rs"}}}}]}},
{{"role":"tool","tool_call_id":"r2","name":"read","content":{old}}},
{{"role":"user","content":"next"}}]"#,
        live = js(&Value::str(live)),
        old = js(&Value::str(old)),
    )
}

#[test]
fn e12_roots_and_write_barrier() {
    let opts = r#"{"policy":"context_gc","root_window":1,"require_write_barrier":true,"write_barrier_refs":["agent_scratchpad:v3"],"active_plan":{"step":"edit src/live.rs"}}"#;
    let r = project(&e12_messages(), j(opts));
    check(
        &r,
        "reachability_gc",
        "reachability_gc",
        "[0,1,2,3,4,5]",
        "[]",
        "161937f57860ed6ca81ab45ed262c604f2d456be18bece43cb91caccd2f1dc77",
    );
    assert_eq!(js(f(&r, "roots_consulted")), r#"["last_1_messages","active_plan","write_barrier","write_barrier_required"]"#);
    assert_eq!(js(f(&r, "redacted_indices")), "[4]");
    assert_eq!(f(&r, "reclaimed_chars").display(), "323");
    assert_eq!(f(&r, "reclaimed_tokens").display(), "80");
    let Value::List(p) = f(&r, "redaction_pointers") else { panic!() };
    assert_eq!(f(&p[0], "content_hash").display(), "sha256:9f11bfa01a08850c068d9e73a239cf84055248909ad0f2666ecaaf0fd46c2508");
    assert_eq!(f(&p[0], "content_chars").display(), "551");
    assert_eq!(f(&p[0], "estimated_tokens_reclaimed").display(), "137");
    assert_eq!(f(&p[0], "tool_name").display(), "read");
    assert_eq!(f(&p[0], "tool_call_id").display(), "r2");
    let opts =
        r#"{"policy":"context_gc","root_window":1,"require_write_barrier":true,"active_plan":{"step":"edit src/live.rs"}}"#;
    let r = project(&e12_messages(), j(opts));
    check(
        &r,
        "reachability_gc",
        "reachability_gc_write_barrier_missing",
        "[0,1,2,3,4,5]",
        "[]",
        "7f7ff6a79d685764744593dec97d1cd74a2ec8933dd357060e04430be073fb7c",
    );
    assert_eq!(js(f(&r, "roots_consulted")), r#"["last_1_messages","active_plan","write_barrier_required"]"#);
}

/// Quirk (§3.5): a body without identifiers is reclaimed even at zero gain.
#[test]
fn e13_no_identifiers_redacted_at_no_gain() {
    let msgs = r#"[{"role":"user","content":"a"},
 {"role":"assistant","content":"","tool_calls":[{"id":"k1","name":"ls","arguments":{}}]},
 {"role":"tool","tool_call_id":"k1","name":"ls","content":"a b c"},
 {"role":"user","content":"b"}]"#;
    let r = project(msgs, j(r#"{"policy":"tool_result_gc","root_window":1,"min_chars":0}"#));
    check(
        &r,
        "reachability_gc",
        "reachability_gc",
        "[0,1,2,3]",
        "[]",
        "17feed485dc0952dfb346c131127141f55562dd84888b10bb1a55b09f931ccf6",
    );
    assert_eq!(js(f(&r, "redacted_indices")), "[2]");
    assert_eq!(f(&r, "redacted_count").display(), "1");
    assert_eq!(f(&r, "reclaimed_chars").display(), "0");
    let Value::List(p) = f(&r, "redaction_pointers") else { panic!() };
    assert_eq!(f(&p[0], "content_chars").display(), "5");
    assert_eq!(f(&p[0], "estimated_tokens_reclaimed").display(), "1");
    assert_eq!(f(&p[0], "content_hash").display(), "sha256:0e9f64031fcb2bc708b531c2a20441580425d151a38503f38592a7dd36019d3b");
}

#[test]
fn e14_non_dict_messages() {
    let r = project(r#"["hello", 42, null, {"role":"assistant","content":"x"}]"#, Value::str("clean_tool_repair"));
    check(
        &r,
        "clean_tool_repair",
        "clean_tool_repair",
        "[0,1,2,3]",
        "[]",
        "801f7abe68539b6d1b5bbf9af01dd4b0de8bcd492f683e1f74456dd73dd25ea3",
    );
    assert_eq!(js(f(&r, "messages")), r#"["hello",42,null,{"content":"x","role":"assistant"}]"#);
}

fn big() -> String {
    "y".repeat(700)
}

fn e16_messages() -> String {
    let big = big();
    format!(
        r#"[{{"role":"user","content":"go"}},
{{"role":"assistant","content":[{{"type":"tool_use","id":"p","name":"cat","input":{{}}}},{{"type":"tool_use","id":"q","name":"cat","input":{{}}}}]}},
{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"p","content":"{big}"}},{{"type":"tool_result","tool_use_id":"q","content":"{big}"}}]}},
{{"role":"tool","name":"orphan","content":"{big}"}},
{{"role":"tool","tool_call_id":"x","content":"{big}","thinking_signature":"s"}},
{{"role":"user","content":"done"}}]"#
    )
}

#[test]
fn e16_gc_guard_accumulation_orphans_and_id_substrings() {
    let r = project(&e16_messages(), j(r#"{"policy":"reachability_gc","root_window":1,"roots":["zzz_root_text"]}"#));
    check(
        &r,
        "reachability_gc",
        "reachability_gc (blocked: signed reasoning at index 4)",
        "[0,1,2,3,4,5]",
        "[]",
        "2b22d869069fbc78220ed187a1e569bfbe9814adf6916e11b3cc3b5dc3c65439",
    );
    assert_eq!(f(&r, "provider_safety_blocked").display(), "true");
    assert_eq!(js(f(&r, "redacted_indices")), "[]");
    assert_eq!(f(&r, "reclaimed_chars").display(), "0");
    assert_eq!(js(f(&r, "roots_consulted")), r#"["last_1_messages","roots"]"#);

    let r = project(&e16_messages(), j(r#"{"policy":"reachability_gc","root_window":1,"respect_provider_signatures":false}"#));
    check(
        &r,
        "reachability_gc",
        "reachability_gc",
        "[0,1,2,3,4,5]",
        "[]",
        "e9ec04cb351fb21b187ac5db7157d38aa9d5332803c237a7b607118c20e55a68",
    );
    assert_eq!(js(f(&r, "redacted_indices")), "[2,3,4]");
    assert_eq!(f(&r, "redacted_count").display(), "4");
    assert_eq!(f(&r, "reclaimed_chars").display(), "1888");

    // Quirk: `call_1` is found inside `call_12`.
    let msgs = format!(
        r#"[{{"role":"user","content":"go"}},
{{"role":"assistant","content":"","tool_calls":[{{"id":"call_1","name":"cat","arguments":{{}}}}]}},
{{"role":"tool","tool_call_id":"call_1","name":"cat","content":"{}"}},
{{"role":"assistant","content":"","tool_calls":[{{"id":"call_12","name":"ls","arguments":{{}}}}]}}]"#,
        big()
    );
    let r = project(&msgs, j(r#"{"policy":"reachability_gc","root_window":1}"#));
    check(
        &r,
        "reachability_gc",
        "reachability_gc",
        "[0,1,2,3]",
        "[]",
        "11b4e5c48cebe0cfaf3d3bd18879255d3b90944d7397b564be4d98e415efb922",
    );
    assert_eq!(js(f(&r, "redacted_indices")), "[]");
}

#[test]
fn e17_errors() {
    let t = transcript(j(E1));
    let rt = |s: &str| format!("Runtime error: transcript_project: {s}");
    assert_eq!(project_err(j(r#"[{"role":"user","content":"x"}]"#), Value::Nil), rt("first argument must be a transcript"));
    assert_eq!(project_err(t.clone(), Value::Int(5)), rt("options must be a dict, string, or nil"));
    assert_eq!(
        project_err(t.clone(), Value::str("Raw")),
        rt("unknown policy 'Raw' (expected raw, clean_tool_repair, squash_failed_calls, summary_prefix, reachability_gc, custom)")
    );
    assert_eq!(project_err(t.clone(), j(r#"{"policy":"custom"}"#)), rt("policy 'custom' requires a projector closure"));
    assert_eq!(project_err(t.clone(), Value::str("custom")), rt("policy 'custom' requires a projector closure"));
    assert_eq!(
        project_err(t.clone(), j(r#"{"policy":"reachability_gc","root_window":"3"}"#)),
        rt("`root_window` must be a non-negative integer, got string")
    );
    assert_eq!(
        project_err(t.clone(), j(r#"{"policy":"reachability_gc","keep_last":-1}"#)),
        rt("`keep_last` must be a non-negative integer")
    );
    assert_eq!(
        project_err(t.clone(), j(r#"{"policy":"reachability_gc","require_barrier":"yes"}"#)),
        rt("`require_barrier` must be a bool, got string")
    );
    assert_eq!(
        project_err(t.clone(), j(r#"{"policy":"reachability_gc","min_chars":1.5}"#)),
        rt("`min_chars` must be a non-negative integer, got float")
    );
    // Lenient and unvalidated cases.
    let ok = |o: &str| run_builtin("transcript_project", &[t.clone(), j(o)], &no_callback).unwrap();
    let r = ok(r#"{"policy":"summary_prefix","keep_last":-1}"#);
    assert_eq!(js(f(&r, "dropped_indices")), "[0,1]");
    assert_eq!(f(&ok(r#"{"policy":"raw","root_window":"3"}"#), "policy").display(), "raw");
    assert_eq!(f(&ok(r#"{"policy":null,"kind":"custom"}"#), "policy").display(), "raw");
    assert_eq!(f(&ok(r#"{"policy":5,"kind":"custom"}"#), "policy").display(), "raw");
    assert_eq!(f(&ok(r#"{"kind":"squash_failed_calls"}"#), "policy").display(), "squash_failed_calls");
    assert_eq!(f(&ok(r#"{"strategy":""}"#), "policy").display(), "raw");
    // A thrown string, after option parsing.
    let bad = j(r#"{"_type":"transcript","messages":5}"#);
    assert_eq!(project_err(bad.clone(), Value::Nil), "Thrown: transcript.messages must be a list");
    assert_eq!(project_err(bad, Value::Int(5)), rt("options must be a dict, string, or nil"));
}

#[test]
fn canonical_json_and_hash_reference_values() {
    let h = |m: &str| {
        super::json::prefix_hash(match &j(m) {
            Value::List(l) => l,
            _ => unreachable!(),
        })
    };
    assert_eq!(h("[]"), format!("sha256:{EMPTY_HASH}"));
    let c = |v: &Value| super::json::canonical(v);
    assert_eq!(
        c(&j(r#"[1.0, 0.1, 1e16, 1e-7, -0.0, 2.5e20, 123456.789, 1e15, 0.00001, 1.5e-5, 1.25e-7, 0.0, 1e300, 12.0]"#)),
        "[1.0,0.1,1e+16,1e-7,-0.0,2.5e+20,123456.789,1000000000000000.0,0.00001,0.000015,1.25e-7,0.0,1e+300,12.0]"
    );
    assert_eq!(c(&Value::str("a\"\\\u{8}\u{c}\n\r\t\u{1}\u{7f}é/")), "\"a\\\"\\\\\\b\\f\\n\\r\\t\\u0001\u{7f}é/\"");
    assert_eq!(c(&j(r#"{"b":1,"a":[true,null]}"#)), r#"{"a":[true,null],"b":1}"#);
}

#[test]
fn lossy_conversion_of_non_json_values() {
    let v = Value::list(vec![
        Value::Float(f64::NAN),
        Value::Bytes(std::rc::Rc::new(b"hi".to_vec())),
        Value::range(1, 3, true),
        Value::Float(2.0),
    ]);
    assert_eq!(super::json::canonical(&super::json::normalize(&v).unwrap()), r#"[null,{"$bytes_b64":"aGk="},"1 to 3",2.0]"#);
}

#[test]
fn matching_follows_id_then_name_rules() {
    // Two id-less calls of one tool both match the first result with that name;
    // a present non-string tool_use_id means "no id" (no tool_call_id fallback).
    let msgs = r#"[{"role":"assistant","content":"","tool_calls":[{"name":"a"},{"name":"a"}]},
 {"role":"tool","name":"a","content":"Error: x"},
 {"role":"tool","name":"a","content":"Error: y"},
 {"role":"assistant","content":"","tool_calls":[{"id":"z","name":"b"}]},
 {"role":"tool","tool_use_id":5,"tool_call_id":"z","name":"b","content":"Error: q"}]"#;
    let r = project(msgs, Value::str("squash_failed_calls"));
    assert_eq!(js(f(&r, "dropped_indices")), "[0,1,3,4]");
}

#[test]
fn long_windows_use_the_index_and_agree_with_direct_scan() {
    // 20 calls × 20 results exceeds the direct-scan limit.
    let mut msgs = vec![r#"{"role":"assistant","content":"","tool_calls":["#.to_string()];
    let calls: Vec<String> = (0..20).map(|i| format!(r#"{{"id":"c{i}","name":"t{}"}}"#, i % 3)).collect();
    msgs[0].push_str(&calls.join(","));
    msgs[0].push_str("]}");
    for i in (0..20).rev() {
        let body = if i % 2 == 0 { "Error: no" } else { "fine" };
        msgs.push(format!(r#"{{"role":"tool","tool_call_id":"c{i}","content":"{body}"}}"#));
        msgs.push(r#"{"role":"user","content":"noise"}"#.to_string());
    }
    let r = project(&format!("[{}]", msgs.join(",")), Value::str("squash_failed_calls"));
    let expected: Vec<String> =
        (0..20).rev().enumerate().filter(|(_, i)| i % 2 == 0).map(|(k, _)| (1 + 2 * k).to_string()).collect();
    let mut expected: Vec<usize> = expected.iter().map(|s| s.parse().unwrap()).collect();
    expected.sort();
    assert_eq!(js(f(&r, "dropped_indices")), format!("{expected:?}").replace(' ', ""));
}
