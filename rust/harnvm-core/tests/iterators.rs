//! The lazy iterator protocol (harn-language §11): sources, combinators,
//! sinks, laziness, single-pass/fused behaviour and error texts.

mod common;

use common::{error_of, logs};

#[test]
fn sources_yield_their_items() {
    let out = logs(
        r#"
log(iter([1, 2]).to_list())
log(iter(set(3, 3, 4)).to_list())
log(iter({b: 2, a: 1}).to_list())
log(iter("héllo").to_list())
log(iter(1 to 3).to_list())
log(iter(0 to 3 exclusive).to_list())
log(iter(5 to 1).to_list())
log([7, 8].iter().to_list())
log("ab".iter().to_list())
let it = iter([1])
log(is_same(iter(it), it))
log(type_of(it))
log([it == it, it == iter([1]), iter(it) == it])
"#,
    );
    assert_eq!(
        out,
        [
            "[1, 2]",
            "[3, 4]",
            "[(a, 1), (b, 2)]",
            "[h, é, l, l, o]",
            "[1, 2, 3]",
            "[0, 1, 2]",
            "[]",
            "[7, 8]",
            "[a, b]",
            "true",
            "iter",
            "[true, false, true]"
        ]
    );
}

#[test]
fn non_iterables_are_a_type_error() {
    assert_eq!(error_of("iter(42)"), "Type error: iter: value of type int is not iterable (line 1)");
    assert_eq!(error_of("let x = nil\niter(x)"), "Type error: iter: value of type nil is not iterable (line 2)");
    assert_eq!(error_of("iter([1]).zip(5).to_list()"), "Type error: iter: value of type int is not iterable (line 1)");
}

#[test]
fn combinators() {
    let out = logs(
        r#"
let xs = [1, 2, 3, 4, 5, 6]
log(iter(xs).map({ x -> x * 2 }).to_list())
log(iter(xs).filter({ x -> x % 2 == 0 }).to_list())
log(iter([1, 2]).flat_map({ x -> [x, x * 10] }).to_list())
log(iter([1, 2]).flat_map({ x -> x }).to_list())
log(iter(xs).take(2).to_list())
log(iter(xs).take(0).to_list())
log(iter(xs).skip(4).to_list())
log(iter(xs).skip(99).to_list())
log(iter(xs).take_while({ x -> x < 3 }).to_list())
log(iter(xs).skip_while({ x -> x < 5 }).to_list())
log(iter([1, 5, 1]).skip_while({ x -> x < 3 }).to_list())
log(iter([1, 2, 3]).zip(["a", "b"]).to_list())
log(iter(["a", "b"]).enumerate().to_list())
log(iter([1]).chain([2, 3]).chain(iter("x")).to_list())
log(iter(xs).chunks(4).to_list())
log(iter(xs).windows(5).to_list())
log(iter([1, 2]).windows(3).to_list())
"#,
    );
    assert_eq!(
        out,
        [
            "[2, 4, 6, 8, 10, 12]",
            "[2, 4, 6]",
            "[1, 10, 2, 20]",
            "[1, 2]",
            "[1, 2]",
            "[]",
            "[5, 6]",
            "[]",
            "[1, 2]",
            "[5, 6]",
            "[5, 1]",
            "[(1, a), (2, b)]",
            "[(0, a), (1, b)]",
            "[1, 2, 3, x]",
            "[[1, 2, 3, 4], [5, 6]]",
            "[[1, 2, 3, 4, 5], [2, 3, 4, 5, 6]]",
            "[]"
        ]
    );
}

#[test]
fn sinks() {
    let out = logs(
        r#"
log(iter([1, 2, 3]).count())
log(iter([1, 2.5]).sum())
log(iter([]).sum())
log(iter([3, 1, 2]).min())
log(iter(["b", "c", "a"]).max())
log(iter([]).max())
log(iter([1, 2, 3]).reduce(10, { acc, x -> acc + x }))
log(iter([4, 5]).first())
log(iter([4, 5]).last())
log(iter([1, 2]).any({ x -> x > 1 }))
log(iter([]).all({ x -> false }))
log(iter([1, 2, 3]).find({ x -> x >= 2 }))
log(iter([1, 1, 2]).to_set())
log(iter({a: 1}).map({ p -> pair(p.first + "!", p.second) }).to_dict())
iter([1, 2]).for_each({ x -> log("each ${x}") })
"#,
    );
    assert_eq!(
        out,
        ["3", "3.5", "0", "1", "c", "nil", "16", "4", "5", "true", "true", "2", "set(1, 2)", "{a!: 1}", "each 1", "each 2"]
    );
}

#[test]
fn argument_errors_use_the_reference_wording() {
    let cases = [
        ("iter([1]).to_dict()", "Type error: iter.to_dict: expected pair, got int (line 1)"),
        ("iter([pair(1, 2)]).to_dict()", "Type error: iter.to_dict: expected string key, got int (line 1)"),
        ("iter([1, \"a\"]).sum()", "Type error: iter.sum: expected number, got string (line 1)"),
        ("iter([1]).map(3)", "Type error: iter.map: expected callable (line 1)"),
        ("iter([1]).filter()", "Type error: iter.filter: expected callable (line 1)"),
        ("(1 to 3).for_each(nil)", "Type error: iter.for_each: expected callable (line 1)"),
        ("iter([1]).take(-1)", "Type error: iter.take: expected non-negative int (line 1)"),
        ("iter([1]).skip(\"2\")", "Type error: iter.skip: expected non-negative int (line 1)"),
        ("iter([1]).chunks(0)", "Type error: iter.chunks: chunk size must be positive (line 1)"),
        ("iter([1]).windows(-2)", "Type error: iter.windows: window size must be positive (line 1)"),
        ("iter([1]).zip()", "Type error: iter.zip: expected iterable argument (line 1)"),
        ("iter([1]).chain(5)", "Type error: iter: value of type int is not iterable (line 1)"),
        ("iter([1]).reduce(0)", "Type error: iter.reduce: expected (init, fn) (line 1)"),
        ("iter([1]).reduce(0, 1)", "Type error: iter.reduce: second arg must be callable (line 1)"),
    ];
    for (src, want) in cases {
        assert_eq!(error_of(src), want, "{src}");
    }
    // Unknown iter methods raise, worded as harn 0.9.11 words them.
    assert_eq!(error_of("iter([1]).nope()"), "Runtime error: iter has no method `nope` (line 1)");
}

#[test]
fn iters_are_single_pass_fused_and_shared() {
    let out = logs(
        r#"
let it = iter([1, 2, 3, 4, 5])
log(it)
log(it.take(2).to_list())
let doubled = it.map({ x -> x * 2 })
log(doubled.first())
log(it.to_list())
log(it)
log(doubled.to_list())
log(it.count())
let g = iter([1, 2, 3]).filter({ x -> x > 1 })
log(g.to_list())
log(g.to_list())
log(g)
"#,
    );
    assert_eq!(out, ["<iter>", "[1, 2]", "6", "[4, 5]", "<iter (exhausted)>", "[]", "0", "[2, 3]", "[]", "<iter (exhausted)>"]);
}

#[test]
fn lifting_snapshots_the_source() {
    let out = logs(
        r#"
var xs = [1, 2]
let it = iter(xs)
xs = xs.push(3)
xs[0] = 99
log(it.to_list())
var d = {a: 1}
let di = iter(d)
d.b = 2
log(di.to_list())
"#,
    );
    assert_eq!(out, ["[1, 2]", "[(a, 1)]"]);
}

#[test]
fn huge_ranges_stay_lazy() {
    let out = logs(
        r#"
var calls = 0
log((1 to 10000000).map({ x -> x * 2 }).take(5).to_list())
log((1 to 10000000).iter().filter({ x -> x % 1000000 == 0 }).first())
log((0 to 9223372036854775806).enumerate().skip(2).first())
log(iter(1 to 10000000).zip(["a"]).to_list())
let r = 1 to 10000000
log(r.count())
log(r.sum())
log(r.first())
log(r.last())
log(type_of(r.map({ x -> x })))
"#,
    );
    assert_eq!(out, ["[2, 4, 6, 8, 10]", "1000000", "(2, 2)", "[(1, a)]", "10000000", "50000005000000", "1", "10000000", "iter"]);
}

#[test]
fn for_loops_over_iters() {
    let out = logs(
        r#"
for (i, x) in iter(["a", "b"]).enumerate() {
  log("${i}:${x}")
}
for (k, v) in iter({b: 2, a: 1}) {
  log("${k}=${v}")
}
for x in iter([1, 2, 3, 4]).map({ x -> x * x }).filter({ x -> x > 1 }) {
  if x == 9 { continue }
  log(x)
}
let it = iter([1, 2, 3, 4])
for x in it {
  if x == 2 { break }
}
log(it.to_list())
for x in iter([]) { log("never") }
for c in "abc" { log("strings give zero iterations") }
"#,
    );
    assert_eq!(out, ["0:a", "1:b", "a=1", "b=2", "4", "16", "[3, 4]"]);
}

#[test]
fn callback_errors_propagate_and_can_be_caught() {
    let out = logs(
        r#"
let it = iter([1, 2, 3]).map({ x -> if x == 2 { throw "bad ${x}" } else { x } })
try {
  for x in it { log(x) }
} catch (e) {
  log("caught ${e}")
}
log(it.to_list())
let r = try { iter([0]).map({ x -> 1 / x }).to_list() }
log(r)
"#,
    );
    assert_eq!(out, ["1", "caught bad 2", "[3]", "Result.Err(Division by zero)"]);
    assert_eq!(error_of("iter([1]).map({ x -> x + true }).to_list()"), "Type error: Cannot add int and bool (line 1)");
}

#[test]
fn long_combinator_chains_neither_recurse_nor_overflow() {
    // 20,000 stacked `map`s: pulling and dropping the chain both stay off the native stack.
    let out = logs(
        r#"
var it = iter([1, 2, 3])
for i in 0 to 20000 exclusive {
  it = it.map({ x -> x + 1 })
}
log(it.to_list())
var more = iter(0 to 5)
for i in 0 to 20000 exclusive {
  more = more.skip(0)
}
log(more.count())
"#,
    );
    assert_eq!(out, ["[20001, 20002, 20003]", "6"]);
}

#[test]
fn builtin_callbacks_and_methods_on_ranges() {
    let out = logs(
        r#"
log(iter([1, 2]).map(to_string).map(type_of).to_list())
log((1 to 4).filter({ x -> x % 2 == 0 }).to_list())
log((1 to 3).to_list())
log((1 to 3).contains(2))
log((1 to 3).empty())
log((1 to 3).to_string())
log((1 to 0).first())
log((1 to 3).reduce(0, { a, b -> a + b }))
log((1 to 3).includes(3))
"#,
    );
    assert_eq!(out, ["[string, string]", "[2, 4]", "[1, 2, 3]", "true", "false", "1 to 3", "nil", "6", "true"]);
    assert_eq!(error_of("(1 to 3).no_such_method()"), "Runtime error: iter has no method `no_such_method` (line 1)");
}
