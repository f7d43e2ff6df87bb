//! Generators (`yield`) and streams (`gen fn` + `emit`) as coroutines
//! (harn-language §6): the `.next()` protocol, `for` loops, error
//! propagation to the pull site, and no native recursion however deep or
//! long the pulls go.

mod common;

use common::{error_of, logs, run_result};
use harnvm_core::compile;

#[test]
fn next_protocol_and_display() {
    let out = logs(
        r#"
fn count(n) {
  var i = 0
  while i < n {
    yield i
    i = i + 1
  }
  return "ignored"
}
let g = count(2)
log(type_of(g))
log(g)
log(g.next())
log(g.next())
log(g.next())
log(g)
log(g.next())
fn bare() { yield }
log(bare().next())
"#,
    );
    assert_eq!(
        out,
        [
            "generator",
            "<generator>",
            "{done: false, value: 0}",
            "{done: false, value: 1}",
            "{done: true, value: nil}",
            "<generator (done)>",
            "{done: true, value: nil}",
            "{done: false, value: nil}"
        ]
    );
}

#[test]
fn the_body_runs_lazily_and_its_output_is_dropped() {
    let out = logs(
        r#"
fn noisy() {
  log("inside")
  yield 1
  log("inside again")
  yield 2
}
let g = noisy()
log("created")
log(g.next().value)
log("between")
for x in g { log(x) }
"#,
    );
    assert_eq!(out, ["created", "1", "between", "2"]);
}

#[test]
fn streams() {
    let out = logs(
        r#"
gen fn nums(n) -> Stream<int> {
  var i = 0
  while i < n {
    emit i * 10
    i += 1
  }
}
let s = nums(3)
log(type_of(s))
log(s)
for x in s { log(x) }
log(s)
log(s.next())
gen fn inner(b) { emit b
 emit b + 1 }
gen fn outer() {
  emit inner(1)
  emit inner(5)
}
for st in outer() {
  for x in st { log(x) }
}
"#,
    );
    assert_eq!(out, ["stream", "<stream>", "0", "10", "20", "<stream (done)>", "{done: true, value: nil}", "1", "2", "5", "6"]);
}

#[test]
fn stream_errors_surface_at_the_pull_site_and_end_the_stream() {
    let out = logs(
        r#"
gen fn broken() {
  emit 1
  throw "stream failed"
}
let s = broken()
log(s.next().value)
try {
  s.next()
} catch (e) {
  log("caught ${e}")
}
log(s.next())
log(s)
fn g() {
  yield 1
  let x = 1 / 0
}
try {
  for x in g() { log(x) }
} catch (e) {
  log("caught ${e}")
}
fn handled() {
  try {
    throw "inside"
  } catch (e) {
    yield "handled ${e}"
  }
  yield "after"
}
log(iter(handled()).to_list())
"#,
    );
    assert_eq!(
        out,
        [
            "1",
            "caught stream failed",
            "{done: true, value: nil}",
            "<stream (done)>",
            "1",
            "caught Division by zero",
            "[handled inside, after]"
        ]
    );
    assert_eq!(error_of("fn g() {\n yield 1\n throw \"boom\"\n}\nfor x in g() { }"), "Thrown: boom");
    assert_eq!(
        error_of("fn g() {\n yield 1\n log(nope)\n}\nlet it = g()\nit.next()\nit.next()"),
        "Runtime error: Undefined variable: nope (line 3)"
    );
}

#[test]
fn break_and_combinators_over_generators() {
    let out = logs(
        r#"
fn naturals() {
  var i = 0
  while true {
    yield i
    i += 1
  }
}
for n in naturals() {
  if n == 2 { break }
  log(n)
}
log(naturals().iter().map({ x -> x * x }).filter({ x -> x % 2 == 1 }).take(3).to_list())
log(iter(naturals()).zip(["a", "b"]).to_list())
let g = naturals()
log(g.next().value)
log(iter(g).take(2).to_list())
log(g.next().value)
let gens = [naturals, naturals].map({ f -> f() })
log(gens.map({ x -> type_of(x) }))
"#,
    );
    assert_eq!(out, ["0", "1", "[1, 9, 25]", "[(0, a), (1, b)]", "0", "[1, 2]", "3", "[generator, generator]"]);
}

#[test]
fn generator_closures_and_methods() {
    let out = logs(
        r#"
let make = { n ->
  yield n
  yield n + 1
}
log(iter(make(5)).to_list())
struct Bag { items }
impl Bag {
  fn each(self) {
    for x in self.items { yield x }
  }
}
let b = Bag({items: [1, 2]})
log(iter(b.each()).to_list())
fn tail_gen() { return make(1) }
log(iter(tail_gen()).to_list())
"#,
    );
    assert_eq!(out, ["[5, 6]", "[1, 2]", "[1, 2]"]);
}

#[test]
fn many_sequential_pulls_do_not_grow_anything() {
    let out = logs(
        r#"
fn count(n) {
  var i = 0
  while i < n {
    yield i
    i += 1
  }
}
var total = 0
for x in count(100000) { total += x }
log(total)
log(iter(count(100000)).map({ x -> x % 3 }).sum())
"#,
    );
    assert_eq!(out, ["4999950000", "99999"]);
}

#[test]
fn deeply_nested_generators_end_in_a_harn_error() {
    // Each level pulls from the next: parked fibers count towards the frame limit.
    let src = r#"
fn nest(n) {
  if n == 0 {
    yield 0
    return nil
  }
  for x in nest(n - 1) { yield x + 1 }
}
log(iter(nest(100)).to_list())
log(iter(nest(100000)).to_list())
"#;
    let (out, result) = run_result(src);
    assert_eq!(out, "[harn] [100]\n");
    assert_eq!(result.unwrap_err(), "Runtime error: Stack overflow: too many nested calls (line 7)");
}

#[test]
fn a_generator_cannot_resume_itself() {
    let src = r#"
var holder = nil
fn me() {
  yield holder.next()
}
"#;
    // Captures are snapshots, so the generator cannot reach itself that way;
    // a generator passed in can still be running when pulled again.
    let src2 = r#"
fn again(g) {
  yield 1
  yield g.next()
}
fn outer() {
  yield 0
}
let o = outer()
let a = again(o)
log(a.next().value)
log(a.next().value)
"#;
    assert!(compile(src, "t.harn").is_ok());
    assert_eq!(logs(src2), ["1", "{done: false, value: 0}"]);
}

#[test]
fn yield_and_emit_outside_generators_are_compile_errors() {
    assert_eq!(error_of("yield 1").lines().next().unwrap(), "`yield` can only be used inside a function");
    let e = error_of("pipeline main() { yield 2 }");
    assert!(e.contains("`yield` can only be used inside a function"), "{e}");
    let e = error_of("fn f() { emit 3 }");
    assert!(e.contains("`emit` can only be used inside a `gen fn`"), "{e}");
}

#[test]
fn defaults_rest_params_and_empty_streams() {
    let out = logs(
        r#"
fn d(a, b = 5, ...more) {
  yield a + b
  yield more
}
log(iter(d(1)).to_list())
log(iter(d(1, 2, 3, 4)).to_list())
gen fn nothing() { }
let s = nothing()
log(s.next())
log(s)
"#,
    );
    assert_eq!(out, ["[6, []]", "[3, [3, 4]]", "{done: true, value: nil}", "<stream (done)>"]);
}

#[test]
fn long_chains_of_suspended_generators_drop_without_native_recursion() {
    // 200,000 generators, each suspended holding the next (and a chain with iters in between):
    // pulling them hits the frame limit cleanly; dropping them must not recurse.
    let src = r#"
fn nums() {
  yield 1
}
fn wrap(g) {
  for x in g { yield x }
}
var g = nums()
for i in 0 to 200000 exclusive {
  g = wrap(g)
}
var mixed = nums()
for i in 0 to 100000 exclusive {
  mixed = wrap(iter(mixed).map({ x -> x }))
}
log(type_of(g))
"#;
    let (out, result) = run_result(src);
    assert_eq!(out, "[harn] generator\n");
    assert!(result.is_ok(), "{result:?}");
    let src2 = format!("{src}iter(g).to_list()\n");
    let (_, result) = run_result(&src2);
    assert_eq!(result.unwrap_err(), "Runtime error: Stack overflow: too many nested calls (line 6)");
}
