//! End-to-end tests: Harn source in, output and result out.

use harnvm_core::{compile, ErrorKind, Value, Vm, VmOptions};

fn run_with(src: &str, options: VmOptions) -> (String, Result<Value, harnvm_core::VmError>) {
    let program = match compile(src, "test.harn") {
        Ok(p) => p,
        Err(e) => return (String::new(), Err(e)),
    };
    let mut vm = Vm::new(options);
    let result = vm.run(&program);
    (vm.take_output(), result)
}

fn run(src: &str) -> String {
    let (out, result) = run_with(src, VmOptions::default());
    if let Err(e) = result {
        panic!("program failed: {e}\noutput so far:\n{out}");
    }
    out
}

fn run_err(src: &str) -> String {
    let (_, result) = run_with(src, VmOptions::default());
    match result {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e.uncaught_message(),
    }
}

#[test]
fn arithmetic_and_display() {
    let out = run(r#"
log(1 + 2 * 3)
log(10 / 3)
log(-7 / 2)
log(-7 % 2)
log(1.5 + 1)
log(2 ** 10)
log("a" + "b")
log([1, 2] + [3])
log(10.0 / 4)
"#);
    assert_eq!(
        out,
        "[harn] 7\n[harn] 3\n[harn] -3\n[harn] -1\n[harn] 2.5\n[harn] 1024\n[harn] ab\n[harn] [1, 2, 3]\n[harn] 2.5\n"
    );
}

#[test]
fn int_overflow_promotes_to_float() {
    let out = run("let big = 9223372036854775807\nlog(type_of(big + 1))\nlog(type_of(big * 2))");
    assert_eq!(out, "[harn] float\n[harn] float\n");
}

#[test]
fn division_by_zero_is_an_error() {
    assert_eq!(run_err("let x = 0\nlog(1 / x)"), "Runtime error: Division by zero (line 2)");
}

#[test]
fn pipeline_entry_runs_only_its_body() {
    let out = run(r#"
let greeting = "hi"
log("not run")
fn shout(s) { return s + "!" }
pipeline other() { log("other") }
pipeline default(task) {
  log(shout(greeting))
}
"#);
    assert_eq!(out, "[harn] hi!\n");
}

#[test]
fn closures_capture_a_snapshot() {
    let out = run(r#"
pipeline default() {
  var x = 1
  let f = { -> x }
  x = 2
  log(f())
  let g = { -> x = x + 10; x }
  log(g())
  log(g())
  log(x)
}
"#);
    assert_eq!(out, "[harn] 1\n[harn] 12\n[harn] 12\n[harn] 2\n");
}

#[test]
fn local_functions_see_each_other_and_themselves() {
    let out = run(r#"
pipeline default() {
  fn is_even(n) {
    if n == 0 { return true }
    return is_odd(n - 1)
  }
  fn is_odd(n) {
    if n == 0 { return false }
    return is_even(n - 1)
  }
  fn fact(n) {
    if n <= 1 { return 1 }
    return n * fact(n - 1)
  }
  log(is_even(10))
  log(fact(10))
}
"#);
    assert_eq!(out, "[harn] true\n[harn] 3628800\n");
}

#[test]
fn tail_calls_do_not_grow_the_stack() {
    let out = run(r#"
fn count_down(n, acc) {
  if n == 0 { return acc }
  return count_down(n - 1, acc + 1)
}
log(count_down(100000, 0))
"#);
    assert_eq!(out, "[harn] 100000\n");
}

#[test]
fn recursion_limit_is_512_by_default() {
    let src = "fn deep(n) {\n  if n == 0 { return 0 }\n  return 1 + deep(n - 1)\n}\nlog(deep(600))";
    let msg = run_err(src);
    assert!(msg.contains("Stack overflow: too many nested calls"), "{msg}");
    let (out, result) =
        run_with("fn deep(n) {\n  if n == 0 { return 0 }\n  return 1 + deep(n - 1)\n}\nlog(deep(400))", VmOptions::default());
    assert!(result.is_ok());
    assert_eq!(out, "[harn] 400\n");
}

#[test]
fn deep_recursion_with_a_raised_limit_never_overflows_the_native_stack() {
    let opts = VmOptions { max_frames: 1_000_000, ..Default::default() };
    let src = "fn deep(n) {\n  if n == 0 { return 0 }\n  return 1 + deep(n - 1)\n}\nlog(deep(200000))";
    let (out, result) = run_with(src, opts.clone());
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(out, "[harn] 200000\n");
    let src = "fn deep(n) { return 1 + deep(n + 1) }\nlog(deep(0))";
    let (_, result) = run_with(src, opts);
    assert!(matches!(result.unwrap_err().kind(), ErrorKind::StackOverflow));
}

#[test]
fn time_limit_stops_an_endless_loop() {
    let opts = VmOptions { time_limit_ms: Some(200), ..Default::default() };
    let (_, result) = run_with("var i = 0\nwhile true { i = i + 1 }", opts);
    let err = result.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Limit(harnvm_core::LimitKind::Time, _)), "{err:?}");
    assert!(!err.is_catchable());
}

#[test]
fn finally_runs_exactly_once_on_every_exit() {
    let out = run(r#"
pipeline default() {
  fn early() {
    try { return "r" } finally { log("fin return") }
  }
  log(early())
  for i in [1, 2, 3] {
    try {
      if i == 1 { continue }
      if i == 3 { break }
      log("body ${i}")
    } finally { log("fin ${i}") }
  }
  let r = try { throw "boom" } catch (e) { "caught ${e}" } finally { log("fin throw") }
  log(r)
  try {
    try { throw "inner" } finally { log("inner fin") }
  } catch (e) { log("outer caught ${e}") }
}
"#);
    assert_eq!(
        out,
        "[harn] fin return\n[harn] r\n[harn] fin 1\n[harn] body 2\n[harn] fin 2\n[harn] fin 3\n[harn] fin throw\n[harn] caught boom\n[harn] inner fin\n[harn] outer caught inner\n"
    );
}

#[test]
fn caught_non_thrown_errors_bind_their_message() {
    let out = run(r#"
let r = try { 1 / 0 } catch (e) { e }
log(r)
let t = try { true + 1 } catch (e) { e }
log(t)
log(try { 5 })
log(try { throw "x" })
"#);
    assert_eq!(
        out,
        "[harn] Division by zero\n[harn] Type error: Cannot add bool and int\n[harn] Result.Ok(5)\n[harn] Result.Err(x)\n"
    );
}

#[test]
fn defer_runs_lifo_at_block_exit() {
    let out = run(r#"
pipeline default() {
  fn f() {
    defer { log("first") }
    defer { log("second") }
    log("body")
    return 1
  }
  log(f())
}
"#);
    assert_eq!(out, "[harn] body\n[harn] second\n[harn] first\n[harn] 1\n");
}

#[test]
fn match_patterns() {
    let out = run(r#"
enum Shape { Circle(r), Rect(w, h), Empty }
fn area(s) {
  return match s {
    Shape.Circle(r) -> { r * r * 3 }
    Shape.Rect(w, h) -> { w * h }
    _ -> { 0 }
  }
}
log(area(Shape.Circle(2)))
log(area(Shape.Rect(2, 5)))
log(area(Shape.Empty))
let v = 7
log(match v { 1 | 2 -> { "small" } x if x > 5 -> { "big ${x}" } _ -> { "other" } })
log(match {kind: "a", n: 3} { {kind: "a", n: n} -> { n } _ -> { -1 } })
log(match [1, 2, 3] { [1, second] -> { second } _ -> { 0 } })
"#);
    assert_eq!(out, "[harn] 12\n[harn] 10\n[harn] 0\n[harn] big 7\n[harn] 3\n[harn] 2\n");
}

#[test]
fn no_matching_arm_throws() {
    assert_eq!(run_err("log(match 3 { 1 -> { 1 } })"), "Thrown: No match arm matched the value");
}

#[test]
fn structs_and_impl_methods() {
    let out = run(r#"
struct Point { x: int  y: int }
impl Point {
  fn sum(self) { return self.x + self.y }
  fn moved(self, dx) { return Point { x: self.x + dx, y: self.y } }
}
let p = Point { x: 1, y: 2 }
log(p)
log(p.sum())
log(p.moved(10))
var q = Point({x: 5, y: 6, extra: 1})
q.y = 60
log(q)
log(p)
"#);
    assert_eq!(out, "[harn] Point {x: 1, y: 2}\n[harn] 3\n[harn] Point {x: 11, y: 2}\n[harn] Point {x: 5, y: 60}\n[harn] Point {x: 1, y: 2}\n");
}

#[test]
fn copy_on_write_assignment() {
    let out = run(r#"
var a = [1, 2, 3]
let c = a
a[0] = 9
log(a)
log(c)
var d = {k: {n: 1}}
d.k.n = 5
d["z"] = 2
log(d)
"#);
    assert_eq!(out, "[harn] [9, 2, 3]\n[harn] [1, 2, 3]\n[harn] {k: {n: 5}, z: 2}\n");
}

#[test]
fn destructuring() {
    let out = run(r#"
let {name, age = 3, ...rest} = {name: "ann", city: "x", zip: 1}
log("${name} ${age} ${rest}")
let [a, b = 0, ...tail] = [1]
log("${a} ${b} ${tail}")
for {key: k, value: v} in {b: 2, a: 1} { log("${k}=${v}") }
"#);
    assert_eq!(out, "[harn] ann 3 {city: x, zip: 1}\n[harn] 1 0 []\n[harn] a=1\n[harn] b=2\n");
}

#[test]
fn default_and_rest_parameters() {
    let out = run(r#"
fn f(a, b = a * 2, ...more) { return "${a} ${b} ${more}" }
log(f(1))
log(f(1, nil))
log(f(1, 2, 3, 4))
fn g(x) { return x }
log(g(1, 2))
"#);
    assert_eq!(out, "[harn] 1 2 []\n[harn] 1 nil []\n[harn] 1 2 [3, 4]\n[harn] 1\n");
    // Too few arguments for the required parameters raise (harn 0.9.11).
    assert_eq!(run_err("fn g(x) { return x }\ng()"), "Arity mismatch: 'g' expects at least 1 argument, got 0");
    assert_eq!(run_err("fn g(a, b = 1, ...r) { return a }\ng()"), "Arity mismatch: 'g' expects at least 1 argument, got 0");
    assert_eq!(run_err("let c = { x, y -> x }\nc(1)"), "Arity mismatch: '<closure>' expects at least 2 arguments, got 1");
    let caught = run("fn g(x) { return x }\ntry { g() } catch (e) { log(e) }");
    assert_eq!(caught, "[harn] Arity mismatch: 'g' expects at least 1 argument, got 0\n");
}

#[test]
fn immutability_and_redeclaration() {
    assert_eq!(run_err("let x = 1\nx = 2"), "Runtime error: Cannot assign to immutable binding: x (line 2)");
    assert!(run_err("let x = 1\nlet x = 2").contains("Cannot redeclare immutable variable 'x' in the same scope"));
    assert_eq!(run_err("log(undefined_var)"), "Runtime error: Undefined variable: undefined_var (line 1)");
}

#[test]
fn loops_with_break_and_continue() {
    let out = run(r#"
var total = 0
for i in 1 to 10 {
  if i % 2 == 0 { continue }
  if i > 7 { break }
  total += i
}
log(total)
var n = 0
while n < 5 { n += 1 }
log(n)
for c in "abc" { log(c) }
"#);
    assert_eq!(out, "[harn] 16\n[harn] 5\n");
}

#[test]
fn runtime_errors_carry_the_harn_stack() {
    let src = "fn inner() { return 1 / 0 }\nfn outer() { return inner() + 1 }\nouter()";
    let (_, result) = run_with(src, VmOptions::default());
    let err = result.unwrap_err();
    let frames: Vec<(String, u32)> = err.0.stack.iter().map(|f| (f.function.clone(), f.line)).collect();
    assert_eq!(frames, vec![("inner".to_string(), 1), ("outer".to_string(), 2), ("<main>".to_string(), 3)]);
}

#[test]
fn deeply_nested_values_display_without_overflow() {
    let out = run("var v = []\nfor i in 0 to 100000 { v = [v] }\nlet s = to_string(v)\nlog(len(s) > 0)");
    assert_eq!(out, "[harn] true\n");
}

/// The fused local ops (`x = x + k`, `a + local`, `if local < k`) must give
/// exactly what the unfused sequence gives, for every operand type, with
/// inline caches on and off.
#[test]
fn fused_local_ops_match_the_plain_sequence_for_every_operand_type() {
    let src = r#"
fn f(a, b) {
  var x = a
  x = x + b
  x += b
  var y = a
  y = y - 1
  y -= 1
  return [x, a + b, a - b, a * b, y]
}
fn g(v) {
  var out = []
  if v < 10 { out = out + ["lt"] }
  if v == 3 { out = out + ["eq"] }
  if v != 3 { out = out + ["ne"] }
  if v >= 2.5 { out = out + ["ge"] }
  return out
}
log(f(1, 2))
log(f(1.5, 2))
log(f(9223372036854775806, 1))
log(g(3))
log(g(2))
log(g(2.75))
var s = "ab"
s = s + "c"
s += "d"
log(s)
let xs = [1]
log(xs + xs)
"#;
    let expected = "[harn] [5, 3, -1, 2, -1]\n[harn] [5.5, 3.5, -0.5, 3.0, -0.5]\n\
[harn] [9223372036854776000, 9223372036854775807, 9223372036854775805, 9223372036854775806, 9223372036854775804]\n\
[harn] [lt, eq, ge]\n[harn] [lt, ne]\n[harn] [lt, ne, ge]\n[harn] abcd\n[harn] [1, 1]\n";
    for inline_caches in [true, false] {
        let (out, result) = run_with(src, VmOptions { inline_caches, ..VmOptions::default() });
        result.unwrap_or_else(|e| panic!("caches {inline_caches}: {e}"));
        assert_eq!(out, expected, "caches {inline_caches}");
    }
}

#[test]
fn fused_local_ops_keep_errors_and_immutability() {
    assert!(run_err("let x = 1\nx = x + 1\n").contains("immutable"), "{}", run_err("let x = 1\nx = x + 1\n"));
    let err = run_err("var x = nil\nx = x + 1\n");
    assert!(err.contains("Cannot add nil and int"), "{err}");
    let err = run_err("var x = {}\nx -= 1\n");
    assert!(err.contains("Cannot subtract int from dict"), "{err}");
    let err = run_err("fn f(a, b) { return a - b }\nf(\"s\", 1)\n");
    assert!(err.contains("string"), "{err}");
}

/// A builtin loop's callback frame is reused from one element to the next;
/// each call must still see fresh locals, its own arguments (defaults, rest
/// parameters, extra arguments dropped), output in order, and errors with
/// the right Harn stack.
#[test]
fn reused_callback_frames_start_each_call_fresh() {
    let out = run(r#"
let xs = [1, 2, 3]
log(xs.map({ x -> x * 10 }))
fn with_default(x, step = 100) {
  var local = nil
  if local == nil { local = x + step }
  return local
}
log(xs.map(with_default))
fn rest(first, ...more) { return [first, more] }
log(xs.map(rest))
log(xs.filter({ x -> x % 2 == 1 }).map({ x -> xs.map({ y -> x * y }) }))
log([3, 1, 2].sort_by({ x -> 0 - x }))
log(xs.reduce(0, { acc, x -> acc + x }))
let printed = xs.map({ x ->
  println("item ${x}")
  return x
})
log(printed)
log(xs.map({ x -> try { if x == 2 { throw "two" }
  x } catch (e) { "caught ${e}" } }))
"#);
    assert_eq!(
        out,
        "[harn] [10, 20, 30]\n[harn] [101, 102, 103]\n[harn] [[1, []], [2, []], [3, []]]\n\
[harn] [[1, 2, 3], [3, 6, 9]]\n[harn] [3, 2, 1]\n[harn] 6\nitem 1\nitem 2\nitem 3\n[harn] [1, 2, 3]\n\
[harn] [1, caught two, 3]\n"
    );
    let err = run_err("fn check(x) {\n  if x > 1 { throw \"too big: ${x}\" }\n  return x\n}\n[1, 2, 3].map(check)\n");
    assert!(err.contains("too big: 2"), "{err}");
}

/// A self tail call restarts its frame in place: every call sees its own
/// arguments (missing ones nil, defaults re-applied, rest gathered), fresh
/// locals, and the depth never grows.
#[test]
fn self_tail_calls_restart_the_frame_with_fresh_arguments() {
    let out = run(r#"
fn count(n, acc = 0) {
  var seen = nil
  if seen != nil { return "stale local" }
  seen = n
  if n == 0 { return acc }
  return count(n - 1, acc + 1)
}
log(count(1000000))
fn gather(n, ...rest) {
  if n == 0 { return rest }
  return gather(n - 1, n, n * 10)
}
log(gather(3))
fn missing(a, b) {
  if a == 0 { return b }
  return missing(a - 1)
}
log(try { missing(2, "given") })
fn ping(n) { if n == 0 { return "done" }
  return pong(n - 1) }
fn pong(n) { return ping(n) }
log(ping(100000))
"#);
    // The restarted frame checks its arguments too.
    assert_eq!(
        out,
        "[harn] 1000000\n[harn] [1, 10]\n[harn] Result.Err(Arity mismatch: 'missing' expects at least 2 arguments, got 1)\n[harn] done\n"
    );
}
