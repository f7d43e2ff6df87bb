//! Calls and returns (issue 13, cheaper calls): a returning frame drops its
//! scalar locals without destructor calls and its heap locals (and the
//! callee value) with them; the running closure is borrowed from its frame
//! rather than reference-counted. These programs pin the behaviour those
//! paths must keep, with inline caches on and off.

use harnvm_core::{compile, Value, Vm, VmOptions};

fn run_with(src: &str, options: VmOptions) -> Result<String, String> {
    let program = compile(src, "test.harn").map_err(|e| e.to_string())?;
    let mut vm = Vm::new(options);
    let result: Result<Value, _> = vm.run(&program);
    let out = vm.take_output();
    result.map(|_| out).map_err(|e| e.uncaught_message())
}

fn outcome(src: &str) -> Result<String, String> {
    let on = run_with(src, VmOptions { inline_caches: true, ..VmOptions::default() });
    let off = run_with(src, VmOptions { inline_caches: false, ..VmOptions::default() });
    assert_eq!(on, off, "inline caches changed the outcome");
    on
}

fn run(src: &str) -> String {
    outcome(src).unwrap_or_else(|e| panic!("program failed: {e}"))
}

#[test]
fn returns_with_heap_and_scalar_locals() {
    let out = run(r#"
fn mix(n) {
  let s = "s" + to_string(n)
  let xs = [n, n + 1]
  let d = {k: n}
  let f = n * 2
  let t = true
  return [s, xs, d, f, t, nil]
}
fn keep(n) {
  let xs = [n]
  let ys = xs
  return ys
}
pipeline main() {
  var i = 0
  var last = nil
  var all = []
  while i < 3 {
    last = mix(i)
    all = all.push(keep(i))
    i += 1
  }
  log(last)
  log(all)
}
"#);
    assert_eq!(out, "[harn] [s2, [2, 3], {k: 2}, 4, true, nil]\n[harn] [[0], [1], [2]]\n");
}

#[test]
fn closures_with_heap_captures_return_normally() {
    let out = run(r#"
fn make(k) {
  let label = "k" + to_string(k)
  return { x ->
    let parts = [label, to_string(x + k)]
    parts.join("=")
  }
}
pipeline main() {
  var fs = [make(0), make(1), make(2)]
  for f in fs {
    log(f(10))
  }
  fs = nil
  fn fib(n) {
    if n < 2 { return n }
    return fib(n - 1) + fib(n - 2)
  }
  log(fib(12))
}
"#);
    assert_eq!(out, "[harn] k0=10\n[harn] k1=11\n[harn] k2=12\n[harn] 144\n");
}

#[test]
fn tail_calls_to_other_closures_and_their_arity_errors() {
    let out = run(r#"
fn even(n) {
  if n == 0 { return true }
  return odd(n - 1)
}
fn odd(n) {
  if n == 0 { return false }
  return even(n - 1)
}
fn down(n, acc) {
  if n == 0 { return acc }
  return down(n - 1, acc + n)
}
pipeline main() {
  log(even(1001))
  log(down(5000, 0))
}
"#);
    assert_eq!(out, "[harn] false\n[harn] 12502500\n");
    // The tail call fails in frame entry: the caller's frame is restored to
    // report where.
    let err = outcome(
        r#"
fn two(a, b) { return a + b }
fn calls_two(x) { return two(x) }
pipeline main() {
  log(calls_two(1))
}
"#,
    )
    .expect_err("arity error");
    assert!(err.contains("'two' expects at least 2 arguments, got 1"), "{err}");
}

#[test]
fn max_frames_still_stops_deep_recursion() {
    let src = r#"
fn deep(n) { return 1 + deep(n + 1) }
pipeline main() { log(deep(0)) }
"#;
    let err = run_with(src, VmOptions { max_frames: 200, ..VmOptions::default() }).expect_err("stack overflow");
    assert!(err.to_lowercase().contains("stack overflow") || err.contains("depth"), "{err}");
}
