//! `transcript_project` through the VM: the `custom` policy's projector is a
//! Harn closure run as an ordinary frame (so it may await), and its return
//! shapes and errors (reference §3.6, E15, E16d, E17).

use harnvm_core::{compile, Vm};

/// The pipeline's output, or `error: <message>`.
fn run(body: &str) -> String {
    let source = format!(
        "pipeline default() {{\n  let t = {{_type: \"transcript\", messages: [{{role: \"user\", content: \"q1\"}}, \
         {{role: \"assistant\", content: \"a1\"}}, {{role: \"user\", content: \"q2\"}}, {{role: \"assistant\", content: \"a2\"}}]}}\n{body}\n}}"
    );
    let program = compile(&source, "<t>").unwrap();
    let mut vm = Vm::new(Default::default());
    match vm.run(&program) {
        Ok(_) => vm.take_output(),
        Err(e) => format!("error: {}", e.message()),
    }
}

#[test]
fn e15a_synthetic_message_is_skipped_by_derived_indices() {
    let out = run(
        r#"  let r = transcript_project(t, {policy: "custom", projector: { msgs -> [{role: "system", content: "be brief"}, msgs[2], msgs[3]] }})
  println(r.reason)
  println(r.kept_indices)
  println(r.dropped_indices)
  println(r.prefix_hash)
  println(len(r.messages))"#,
    );
    assert_eq!(out, "custom\n[2, 3]\n[0, 1]\nsha256:a1457b45d9dfa5941a53653a58e1cecccde1b5f1729f1483917dd3391ce9dc01\n3\n");
}

/// Quirk (§3.6): explicit kept indices are used as given (clamped, unsorted).
#[test]
fn e15b_explicit_kept_indices_as_given() {
    let out = run(
        r#"  let r = transcript_project(t, {policy: "custom", custom: { msgs -> {messages: msgs, reason: "noop", kept_indices: [3, -1, "x"]} }})
  println(r.reason)
  println(r.kept_indices)
  println(r.dropped_indices)
  println(r.prefix_hash)"#,
    );
    assert_eq!(out, "noop\n[3, 0]\n[1, 2]\nsha256:0931c25447dad57fa4eead7751ed7e973627103c4e5278a8b046cb604fbf3949\n");
}

/// Quirk (E16d): an empty reason from a projector is used.
#[test]
fn e16d_empty_projector_reason_is_kept() {
    let out = run(r#"  let r = transcript_project(t, {policy: "custom", projector: { m -> {messages: m, reason: ""} }})
  println("[" + r.reason + "]")"#);
    assert_eq!(out, "[]\n");
}

#[test]
fn projector_may_await() {
    let out = run(r#"  let r = transcript_project(t, {policy: "custom", projector: { msgs ->
    let h = spawn { sleep(1ms)
      return msgs[1] }
    return {messages: [await(h)], reason: "awaited"}
  }})
  println(r.reason)
  println(r.kept_indices)
  println(r.dropped_indices)"#);
    assert_eq!(out, "awaited\n[1]\n[0, 2, 3]\n");
}

#[test]
fn projector_errors_and_bad_shapes() {
    let cases = [
        ("42", "Runtime error: transcript_project: custom projector must return a list or dict"),
        (r#"{reason: "x"}"#, "Runtime error: transcript_project: custom projector must return a list or a dict with `messages`"),
        (r#"{messages: "x"}"#, "Runtime error: transcript_project: custom projector `messages` must be a list"),
        ("{messages: nil}", "Runtime error: transcript_project: custom projector `messages` must be a list"),
    ];
    for (ret, msg) in cases {
        let out = run(&format!(
            "  let e = try {{ transcript_project(t, {{policy: \"custom\", projector: {{ m -> {ret} }}}}) }} catch (err) {{ err }}\n  println(e)"
        ));
        assert_eq!(out, format!("{msg}\n"), "projector returning {ret}");
    }
    // The projector's own error propagates unchanged.
    let out =
        run(r#"  let e = try { transcript_project(t, {policy: "custom", projector: { m -> throw "nope" }}) } catch (err) { err }
  println(e)"#);
    assert_eq!(out, "nope\n");
    // A present non-closure `projector` masks `custom`.
    let out =
        run(r#"  let e = try { transcript_project(t, {policy: "custom", projector: 1, custom: { m -> m }}) } catch (err) { err }
  println(e)"#);
    assert_eq!(out, "Runtime error: transcript_project: policy 'custom' requires a projector closure\n");
}

#[test]
fn other_policies_ignore_the_projector() {
    let out = run(r#"  let r = transcript_project(t, {policy: "squash_failed_calls", projector: { m -> throw "never called" }})
  println(r.policy)"#);
    assert_eq!(out, "squash_failed_calls\n");
}
