//! In-place writes (issue 13): field, index and dict writes and list growth
//! through `x = x.push(v)`, `x += [..]` and `x = x + [..]` update an
//! unshared container in place, and a copy made before the write never sees
//! it. Every program runs with inline caches on and off, with the same output.

use harnvm_core::{compile, Value, Vm, VmOptions};

fn run_with(src: &str, inline_caches: bool) -> Result<String, String> {
    let program = compile(src, "test.harn").map_err(|e| e.to_string())?;
    let mut vm = Vm::new(VmOptions { inline_caches, ..VmOptions::default() });
    let result: Result<Value, _> = vm.run(&program);
    let out = vm.take_output();
    result.map(|_| out).map_err(|e| e.uncaught_message())
}

/// The output, checked to be the same with caches off.
fn run(src: &str) -> String {
    let on = run_with(src, true);
    let off = run_with(src, false);
    assert_eq!(on, off, "inline caches changed the outcome");
    on.unwrap_or_else(|e| panic!("program failed: {e}"))
}

fn run_err(src: &str) -> String {
    let on = run_with(src, true);
    assert_eq!(on, run_with(src, false), "inline caches changed the outcome");
    on.expect_err("expected an error")
}

#[test]
fn struct_field_writes_copy_on_write() {
    let out = run(r#"
struct P { x, y }
pipeline main() {
  var p = P { x: 1, y: 2 }
  var i = 0
  var saved = []
  while i < 4 {
    saved = saved.push(p)
    p.x = p.x + 10
    p.y = i
    i += 1
  }
  let q = p
  p.x = -1
  log(p)
  log(q)
  log(saved)
}
"#);
    assert_eq!(
        out,
        "[harn] P {x: -1, y: 3}\n[harn] P {x: 41, y: 3}\n\
         [harn] [P {x: 1, y: 2}, P {x: 11, y: 0}, P {x: 21, y: 1}, P {x: 31, y: 2}]\n"
    );
}

#[test]
fn field_write_site_sees_several_receivers() {
    // One write site meets two struct layouts, a dict and an undeclared field.
    let out = run(r#"
struct A { n }
struct B { m, n }
pipeline main() {
  var out = []
  for v in [A { n: 1 }, B { m: 0, n: 2 }, {n: 3}, A { n: 4 }, B { m: 5, n: 6 }] {
    var w = v
    w.n = 100
    out = out.push(w)
    out = out.push(v)
  }
  log(out)
  var a = A { n: 1 }
  a.extra = 2
  log(a)
}
"#);
    assert_eq!(
        out,
        "[harn] [A {n: 100}, A {n: 1}, B {m: 0, n: 100}, B {m: 0, n: 2}, {n: 100}, {n: 3}, \
         A {n: 100}, A {n: 4}, B {m: 5, n: 100}, B {m: 5, n: 6}]\n[harn] A {extra: 2, n: 1}\n"
    );
}

#[test]
fn index_and_dict_writes_keep_aliases() {
    let out = run(r#"
pipeline main() {
  var xs = [1, 2, 3]
  let ys = xs
  xs[0] = 10
  xs[-1] = 30
  var d = {a: 1, b: {c: [1, 2]}}
  let e = d
  d.b.c[1] = 99
  d["z"] = 5
  d.a += 1
  log(xs)
  log(ys)
  log(d)
  log(e)
}
"#);
    assert_eq!(
        out,
        "[harn] [10, 2, 30]\n[harn] [1, 2, 3]\n[harn] {a: 2, b: {c: [1, 99]}, z: 5}\n[harn] {a: 1, b: {c: [1, 2]}}\n"
    );
}

#[test]
fn index_write_out_of_bounds_is_the_same_error() {
    let err = run_err("pipeline main() { var xs = [1]\n xs[3] = 0 }");
    assert!(err.contains("Index 3 out of bounds for list of length 1"), "{err}");
}

#[test]
fn list_growth_in_place_keeps_earlier_aliases() {
    let out = run(r#"
fn grow(xs) {
  var ys = xs
  ys = ys.push(len(ys))
  return ys
}
pipeline main() {
  var xs = []
  var snaps = []
  for i in 0 to 5 {
    xs = xs.push(i)
    if i % 2 == 0 { snaps = snaps.push(xs) }
    xs += [i * 10]
    xs = xs + [i, i]
  }
  log(len(xs))
  log(snaps)
  let before = xs
  let grown = grow(xs)
  log(len(before))
  log(len(grown))
  let f = { -> xs }
  xs = xs.push("after")
  log(len(f()))
  log(xs[-1])
  xs = xs.push(xs)
  log(len(xs[-1]))
}
"#);
    assert_eq!(
        out,
        "[harn] 24\n[harn] [[0], [0, 0, 0, 0, 1, 10, 1, 1, 2], [0, 0, 0, 0, 1, 10, 1, 1, 2, 20, 2, 2, 3, 30, 3, 3, 4]]\n\
         [harn] 24\n[harn] 25\n[harn] 24\n[harn] after\n[harn] 25\n"
    );
}

#[test]
fn list_growth_on_other_values_is_the_generic_op() {
    let out = run(r#"
struct Stack { items }
impl Stack {
  fn push(self, v) { return Stack { items: self.items + [v] } }
}
pipeline main() {
  var s = Stack { items: [] }
  s = s.push(1)
  s = s.push(2)
  log(s)
  var t = "ab"
  t = t + "c"
  log(t)
}
"#);
    assert_eq!(out, "[harn] Stack {items: [1, 2]}\n[harn] abc\n");
    let err = run_err("pipeline main() { var t = \"ab\"\n t += [1] }");
    assert!(err.contains("Cannot add string and list") || err.contains("can't add"), "{err}");
    let err = run_err("pipeline main() { var n = nil\n n = n.push(1) }");
    assert!(!err.is_empty());
}

#[test]
fn list_growth_pushes_many() {
    let out = run(r#"
pipeline main() {
  var xs = []
  var i = 0
  while i < 20000 {
    xs = xs.push(i)
    xs += [i]
    i += 1
  }
  log(len(xs))
  log(xs[39999])
}
"#);
    assert_eq!(out, "[harn] 40000\n[harn] 19999\n");
}

#[test]
fn struct_literals_in_any_field_order() {
    let out = run(r#"
struct P { x, y, z }
pipeline main() {
  log(P { x: 1, y: 2, z: 3 })
  log(P { z: 3, x: 1, y: 2 })
  log(P { y: 2 })
  log(P { x: 1, x: 5, y: 2 })
  log(P { x: 1, w: 9 })
  var ps = []
  for i in 0 to 2 { ps = ps.push(P { x: i, y: [i], z: {n: i} }) }
  log(ps)
}
"#);
    assert_eq!(
        out,
        "[harn] P {x: 1, y: 2, z: 3}\n[harn] P {x: 1, y: 2, z: 3}\n[harn] P {x: nil, y: 2, z: nil}\n\
         [harn] P {x: 5, y: 2, z: nil}\n[harn] P {x: 1, y: nil, z: nil}\n\
         [harn] [P {x: 0, y: [0], z: {n: 0}}, P {x: 1, y: [1], z: {n: 1}}, P {x: 2, y: [2], z: {n: 2}}]\n"
    );
    let err = run_err("pipeline main() { let q = Nope { a: 1 } }");
    assert!(err.contains("Nope"), "{err}");
}

#[test]
fn struct_method_sites_follow_the_receiver_and_impl_blocks() {
    // One call site meets two struct types with a method of the same name,
    // and a third whose impl block is declared later in the program.
    let out = run(r#"
struct A { n }
struct B { n }
impl A {
  fn get(self) { return self.n }
}
impl B {
  fn get(self) { return self.n * 100 }
}
fn get_all(xs) {
  var out = []
  for x in xs { out = out.push(x.get()) }
  return out
}
pipeline main() {
  log(get_all([A { n: 1 }, A { n: 2 }, B { n: 3 }, A { n: 4 }, B { n: 5 }]))
  struct C { n }
  impl C {
    fn get(self) { return self.n - 10 }
  }
  log(get_all([C { n: 1 }, A { n: 7 }, C { n: 2 }]))
}
"#);
    assert_eq!(out, "[harn] [1, 2, 300, 4, 500]\n[harn] [-9, 7, -8]\n");
}

#[test]
fn calls_alternating_between_functions_find_their_caches() {
    let out = run(r#"
fn f(x) { return x + 1 }
fn g(x) { return x * 2 }
fn h(x) { return x - 3 }
pipeline main() {
  var t = 0
  for i in 0 to 50 { t = h(g(f(t))) % 1000 + i }
  log(t)
}
"#);
    let mut t: i64 = 0;
    for i in 0..=50 {
        t = ((t + 1) * 2 - 3) % 1000 + i;
    }
    assert_eq!(out, format!("[harn] {t}\n"));
}

#[test]
fn growth_of_literals_enums_and_interpolations_takes_the_in_place_op() {
    let src = r#"
enum Tok { Num(n), Comma }
pipeline main() {
  var xs = []
  var ys = []
  for i in 0 to 2 {
    xs = xs.push(Tok.Num(i))
    xs = xs.push(Tok.Comma)
    ys = ys.push({id: i, name: "n${i}", [to_string(i)]: [i]})
    ys += ["s${i + 1}"]
  }
  log(xs)
  log(ys)
}
"#;
    let program = compile(src, "test.harn").expect("compiles");
    let dis = harnvm_core::disassemble(&program);
    assert_eq!(dis.matches("LIST_PUSH_LOCAL").count(), 3, "{dis}");
    assert_eq!(dis.matches("LIST_EXTEND_LOCAL").count(), 1, "{dis}");
    assert_eq!(
        run(src),
        "[harn] [Tok.Num(0), Tok.Comma, Tok.Num(1), Tok.Comma, Tok.Num(2), Tok.Comma]\n\
         [harn] [{0: [0], id: 0, name: n0}, s1, {1: [1], id: 1, name: n1}, s2, {2: [2], id: 2, name: n2}, s3]\n"
    );
}

#[test]
fn growth_whose_element_could_assign_the_list_stays_generic() {
    // An `if` expression may assign the variable being grown: no in-place op.
    let src = r#"
pipeline main() {
  var xs = [1]
  xs = xs.push(if len(xs) > 0 { xs = [9]
    2 } else { 3 })
  log(xs)
}
"#;
    let program = compile(src, "test.harn").expect("compiles");
    assert!(!harnvm_core::disassemble(&program).contains("LIST_PUSH_LOCAL"));
    // The receiver was read before the element assigned the variable.
    assert_eq!(run(src), "[harn] [1, 2]\n");
}
