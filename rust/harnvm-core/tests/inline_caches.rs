//! Inline caches end to end: the state each site ends in after a program
//! runs, and identical output with caches on and off.

use harnvm_core::vm::ic::{BinaryOp, BinaryState, DirectCallPeek, PropertyTarget, Shape};
use harnvm_core::{compile, Vm, VmOptions};

fn run(src: &str, inline_caches: bool) -> (Vm, String) {
    let program = compile(src, "ic.harn").unwrap_or_else(|e| panic!("{e}"));
    let mut vm = Vm::new(VmOptions { inline_caches, ..Default::default() });
    let result = vm.run(&program).map(|v| v.display()).unwrap_or_else(|e| format!("error: {}", e.uncaught_message()));
    let out = vm.take_output();
    (vm, format!("{out}=> {result}"))
}

/// Report rows of function `function` whose op is `op`.
fn sites(vm: &Vm, function: &str, op: &str) -> Vec<harnvm_core::vm::ic::SiteReport> {
    vm.ic.report().into_iter().filter(|s| s.function == function && s.op == op).collect()
}

#[test]
fn mixed_binary_shapes_deoptimize_like_harn_vm() {
    let src = "fn add(a, b) { return a + b }\nadd(1, 1)\nadd(2, 2)\nadd(3, 3)\nadd(4, 4.0)\nadd(5.0, 5.0)\n";
    let (vm, _) = run(src, true);
    let site = &sites(&vm, "add", "ADD_LOCAL")[0];
    assert_eq!(
        vm.ic.peek_binary(site.set, site.slot),
        Some((BinaryOp::Add, BinaryState::Specialized { shape: Shape::Float, hits: 1, misses: 1 }))
    );
}

#[test]
fn specialized_int_site_counts_hits() {
    let src = "var t = 0\nfor i in 0 to 10 exclusive { t = t + i }\nprintln(t)\n";
    let (vm, out) = run(src, true);
    assert_eq!(out, "45\n=> nil");
    let add = vm.ic.report().into_iter().find(|s| s.op == "ADD_LOCAL").expect("add site");
    assert_eq!((add.state.as_str(), add.hits, add.misses), ("specialized(int)", 10, 0));
}

#[test]
fn polymorphic_property_site_is_replaced() {
    let src = "fn n(x) { return x.count }\nprintln(n([1, 2]))\nprintln(n(\"ab\"))\n";
    let (vm, out) = run(src, true);
    assert_eq!(out, "2\n2\n=> nil");
    let site = &sites(&vm, "n", "GET_LOCAL_PROP")[0];
    let (_, target, hits, misses) = vm.ic.peek_property(site.set, site.slot).expect("property entry");
    assert_eq!((target, hits, misses), (PropertyTarget::StringCount, 0, 1));
}

#[test]
fn struct_field_cache_guards_the_layout() {
    let src = "struct P { x, y }\nstruct Q { y, x }\nfn gx(p) { return p.x }\n\
               for i in 0 to 3 exclusive { println(gx(P({x: i, y: 0}))) }\nprintln(gx(Q({x: 9, y: 1})))\nprintln(gx({x: 7}))\n";
    let (vm, out) = run(src, true);
    assert_eq!(out, "0\n1\n2\n9\n7\n=> nil");
    assert_eq!(out, run(src, false).1);
    let site = &sites(&vm, "gx", "GET_LOCAL_PROP")[0];
    let (_, target, _, misses) = vm.ic.peek_property(site.set, site.slot).expect("property entry");
    assert!(matches!(target, PropertyTarget::DictField { .. }), "{target:?}");
    assert_eq!(misses, 2);
}

#[test]
fn rebound_closure_call_site_deoptimizes() {
    let src = "fn inc(x) { return x + 1 }\nfn dec(x) { return x - 1 }\nvar t = 0\n\
               for op in [inc, inc, inc, inc, dec] { t = op(t) }\nprintln(t)\n";
    let (vm, out) = run(src, true);
    assert_eq!(out, "3\n=> nil");
    let call = vm.ic.report().into_iter().find(|s| s.op == "CALL").expect("call site");
    let peek: DirectCallPeek = vm.ic.peek_direct_call(call.set, call.slot).expect("direct call entry");
    // inc ×4 specialized (3 warmup + 1 hit), then dec: one swap with a miss.
    assert_eq!((peek.specialized, peek.argc, peek.hits, peek.misses), (true, 1, 1, 1));
    assert!(call.state.contains("dec"), "{}", call.state);
}

#[test]
fn method_sites_bind_builtin_methods_but_not_namespace_dicts() {
    let src = "fn c(x) { return x.count() }\nprintln(c([1, 2, 3]))\nprintln(c({a: 1}))\n\
               println(c({_namespace: \"ns\", count: { -> 42 }}))\nprintln(c(1 to 4 exclusive))\nprintln(c(\"héllo\"))\n";
    let (vm, out) = run(src, true);
    assert_eq!(out, run(src, false).1);
    assert_eq!(out, "3\n1\n42\n3\n5\n=> nil");
    let site = &sites(&vm, "c", "CALL_METHOD")[0];
    let (_, argc, target, _, _) = vm.ic.peek_method(site.set, site.slot).expect("method entry");
    assert_eq!((argc, target.name()), (0, "string_count"));
}

#[test]
fn caches_never_change_results() {
    let src = r#"
struct P { x, y }
fn f(a, b) { return a + b }
fn cmp(a, b) { return [a == b, a != b, a < b, a <= b, a > b, a >= b] }
let vals = [1, 2, 9223372036854775807, 2.5, 0.0 / 0.0, "s", "t", true, false, nil, [1], {x: 1}]
for a in vals {
  for b in vals {
    println(try { f(a, b) })
    println(cmp(a, b))
    println(try { a / b })
    println(try { a % b })
    println(try { a * b })
  }
  println(try { a.count })
  println(try { a.x })
}
"#;
    let (_, on) = run(src, true);
    let (_, off) = run(src, false);
    assert_eq!(on, off);
}

#[test]
fn caches_persist_per_vm_across_runs() {
    let program = compile("fn add(a, b) { return a + b }\nadd(1, 2)\n", "p.harn").unwrap();
    let mut vm = Vm::new(VmOptions::default());
    for _ in 0..3 {
        vm.run(&program).unwrap();
    }
    let site = vm.ic.report().into_iter().find(|s| s.op == "ADD_LOCAL").unwrap();
    assert_eq!(site.state, "specialized(int)");
    // Another VM starts cold: sets belong to the VM, not the shared chunk.
    let mut other = Vm::new(VmOptions::default());
    other.run(&program).unwrap();
    let site = other.ic.report().into_iter().find(|s| s.op == "ADD_LOCAL").unwrap();
    assert_eq!(site.state, "warmup(int)");
    // With caches off no sets are made at all.
    let mut off = Vm::new(VmOptions { inline_caches: false, ..Default::default() });
    off.run(&program).unwrap();
    assert!(off.ic.report().is_empty());
}

#[test]
fn sets_of_dropped_programs_are_pruned_at_the_next_run() {
    let mut vm = Vm::new(VmOptions::default());
    for i in 0..5 {
        // No top-level fn: those form a closure ↔ module-globals cycle that outlives the run.
        let program = compile(&format!("let f = {{ a -> a + {i} }}\nf(1)\n"), "p.harn").unwrap();
        vm.run(&program).unwrap();
    }
    // Only the latest program (kept for the report) still has sets: main and f.
    // Dropped programs leave empty tombstones (set indices stay stable).
    let live: Vec<String> = vm.ic.sets().iter().filter_map(|s| s.proto.as_ref()?.upgrade()).map(|p| p.name.clone()).collect();
    assert_eq!(live, ["<main>", "<closure>"]);
    assert!(vm.ic.sets().iter().filter(|s| s.proto.is_none()).all(|s| s.len == 0));
    let site = vm.ic.report().into_iter().find(|s| s.op == "ADD_CONST").unwrap();
    assert_eq!(site.state, "warmup(int)");
}

#[test]
fn constant_operand_and_compare_jump_forms_match_the_plain_ops() {
    // With a literal right operand an op takes its `*_CONST` form, and a
    // compare in a condition a `*_JUMP_IF_FALSE` form (`&&`, `||`, `!` become
    // jumps), and a compare of a local with a literal its `*_LOCAL_CONST_*`
    // form. The same program with each literal read from a variable, and
    // each condition first stored as a value, runs the stack forms (and the
    // `*_LOCAL` forms for + - *): both must print the same, with caches on
    // and off.
    let ops = ["+", "-", "*", "/", "%", "==", "!=", "<", ">", "<=", ">="];
    let lits = ["2", "0", "2.5", "\"s\"", "-1"];
    let program = |fused: bool| {
        let mut src = String::from("let vals = [1, -3, 0, 2.5, \"s\", true, nil, [1], 9223372036854775807]\nfor a in vals {\n");
        for (i, lit) in lits.iter().enumerate() {
            src.push_str(&format!("  let k{i} = {lit}\n"));
            let b = if fused { lit.to_string() } else { format!("k{i}") };
            for (j, op) in ops.into_iter().enumerate() {
                if op == "*" && lit.starts_with('"') {
                    continue; // huge int * string: a resource-limit error, which `try` does not catch
                }
                src.push_str(&format!("  println(try {{ a {op} {b} }})\n"));
                if ["==", "!=", "<", ">", "<=", ">="].contains(&op) {
                    let cond = format!("a {op} {b} && !(a {op} k{i}) || a == nil");
                    if fused {
                        src.push_str(&format!("  if {cond} {{ println(\"y\") }} else {{ println(\"n\") }}\n"));
                        src.push_str(&format!("  while a {op} {b} {{ println(\"w\")\n break }}\n"));
                    } else {
                        src.push_str(&format!("  let c{i}_{j} = {cond}\n"));
                        src.push_str(&format!("  if c{i}_{j} {{ println(\"y\") }} else {{ println(\"n\") }}\n"));
                        src.push_str(&format!("  let w{i}_{j} = a {op} {b}\n  while w{i}_{j} {{ println(\"w\")\n break }}\n"));
                    }
                }
            }
        }
        src.push_str("}\n");
        src
    };
    let (fused, plain) = (program(true), program(false));
    let (_, on) = run(&fused, true);
    assert_eq!(on, run(&fused, false).1);
    assert_eq!(on, run(&plain, true).1);
    assert_eq!(on, run(&plain, false).1);
    assert!(on.ends_with("=> nil") && on.lines().count() > 400, "{on}");
}

#[test]
fn fused_sites_report_their_own_op_and_count_hits() {
    let src = "var n = 0\nvar i = 0\nwhile i < 5 { if i % 2 == 0 && i != 4 { n = n + 1 }\n i = i + 1 }\nprintln(n)\n";
    let (vm, out) = run(src, true);
    assert_eq!(out, "2\n=> nil");
    let report = vm.ic.report();
    let site = |op: &str| report.iter().find(|s| s.op == op).unwrap_or_else(|| panic!("{op} site in {report:?}"));
    let lt = site("LT_LOCAL_CONST_JUMP_IF_FALSE");
    // Runs for i = 0..=5; warmup hits carry over into the specialized count.
    assert_eq!((lt.state.as_str(), lt.hits, lt.misses), ("specialized(int)", 6, 0));
    // `&&`'s right side runs only when the left is true: i = 0, 2, 4.
    let ne = site("NE_LOCAL_CONST_JUMP_IF_FALSE");
    assert_eq!((ne.state.as_str(), ne.hits), ("specialized(int)", 3));
    assert_eq!(site("MOD_CONST").state, "specialized(int)");
    // `n = n + 1` and `i = i + 1` update their locals in place.
    let incs: Vec<_> = report.iter().filter(|s| s.op == "ADD_CONST_TO_LOCAL").collect();
    assert_eq!(incs.iter().map(|s| s.hits).sum::<u64>(), 2 + 5, "{incs:?}");
}
