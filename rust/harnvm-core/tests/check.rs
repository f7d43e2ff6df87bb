//! The static checker: the conformance suite's static-check cases give their
//! expected message, and nothing that is a valid program gets an error
//! (every `.expected` case, every other `.error` case, examples, std
//! modules, perf workloads, the prelude).

use std::fs;
use std::path::{Path, PathBuf};

use harnvm_core::compile::check::{CheckOptions, Diagnostic};
use harnvm_core::compile::check_source;

const STATIC_CASES: &[&str] = &[
    "errors/semantic/adt_non_exhaustive_match",
    "errors/semantic/shape_union_non_exhaustive_match",
    "errors/semantic/shape_wrong_field_type",
    "errors/semantic/undefined_builtin",
    "errors/types/binop_add_type_error",
    "errors/types/binop_sub_type_error",
    "errors/types/type_check_runtime",
    "errors/types/type_mismatch_return",
    "tests/collections/iter_type_error",
    "tests/types/generic_binding_conflict",
    "tests/types/interface_associated_type_default",
    "tests/types/interface_constraint_param_type",
    "tests/types/interface_constraint_return_type",
    "tests/types/stream_generator_distinct",
    "tests/types/variance_list_invariant_write",
    "tests/types/variance_user_generic_in_violation",
];

/// Cases outside the static list whose expected error the checker also gives.
const ALSO_STATIC: &[&str] = &["errors/types/type_mismatch_param", "tests/errors_tests/try_star_top_level"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn suite() -> Option<PathBuf> {
    let p = repo().join("../shared/conformance");
    p.is_dir().then_some(p)
}

fn harn_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            harn_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "harn") {
            out.push(p);
        }
    }
}

fn check_file(p: &Path) -> Option<Vec<Diagnostic>> {
    let src = fs::read_to_string(p).unwrap();
    check_source(&src, &p.display().to_string(), &CheckOptions::default()).ok()
}

fn matches(spec: &str, message: &str) -> bool {
    spec.trim_end().lines().any(|line| match line.strip_prefix("re:") {
        Some(re) => regex::Regex::new(re).unwrap().is_match(message),
        None => message.contains(line),
    })
}

#[test]
fn static_cases_report_their_expected_message() {
    let Some(root) = suite() else { return };
    let mut failures = Vec::new();
    for case in STATIC_CASES.iter().chain(ALSO_STATIC) {
        let diags = check_file(&root.join(format!("{case}.harn"))).expect("parses");
        let spec = fs::read_to_string(root.join(format!("{case}.error"))).unwrap();
        if !diags.iter().any(|d| d.is_error() && matches(&spec, &d.message)) {
            let got: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
            failures.push(format!("{case}: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_errors_on_valid_programs() {
    let mut files = Vec::new();
    if let Some(root) = suite() {
        let mut all = Vec::new();
        harn_files(&root, &mut all);
        for p in all {
            let rel = p.strip_prefix(&root).unwrap().with_extension("").display().to_string();
            let is_case = p.with_extension("expected").exists() || p.with_extension("error").exists();
            if STATIC_CASES.contains(&rel.as_str()) || ALSO_STATIC.contains(&rel.as_str()) || !is_case {
                continue;
            }
            files.push(p);
        }
    }
    for dir in ["examples", "python/harnvm/stdlib", "perf", "rust/harnvm-core/src/compile/prelude"] {
        harn_files(&repo().join(dir), &mut files);
    }
    assert!(files.len() > 10);
    let mut bad = Vec::new();
    for p in &files {
        // Syntax-error cases do not parse; the checker never sees them.
        let Some(diags) = check_file(p) else { continue };
        for d in diags.iter().filter(|d| d.is_error()) {
            bad.push(format!("{}:{}:{}: {}", p.display(), d.line, d.column, d.message));
        }
    }
    assert!(bad.is_empty(), "{} false positives:\n{}", bad.len(), bad.join("\n"));
}

fn messages(src: &str) -> Vec<String> {
    let diags = check_source(src, "t.harn", &CheckOptions::default()).expect("parses");
    diags
        .iter()
        .map(|d| format!("{}:{} {}{}", d.line, d.column, if d.is_error() { "" } else { "warning: " }, d.message))
        .collect()
}

#[test]
fn rules_give_the_conformance_wording() {
    let src = "pipeline main(task) {\n  var ratio: int = 0.5\n  let pt: {x: int, y: int} = {x: 1}\n  let none: string = nil\n  var total: int = 0\n  total = \"none\"\n  let limit = 3\n  limit = 4\n}";
    assert_eq!(
        messages(src),
        [
            "2:3 'ratio' declared as int, but assigned float",
            "3:3 'pt' declared as {x: int, y: int}, but assigned {x: int} (missing field 'y' (int))",
            "4:3 'none' declared as string, but assigned nil",
            "6:3 can't assign string to 'total' (declared as int)",
            "8:3 warning: Cannot assign to 'limit': variable is immutable (declared with 'let')",
        ]
    );
    let src = "pipeline main(task) {\n  let label = \"n=\" + 5\n  log(true - 1)\n  log(\"ab\" * \"c\")\n  log(2 ** \"x\")\n  log(true < 1)\n  log(\"a\" < 1)\n}";
    assert_eq!(
        messages(src),
        [
            "2:15 can't add string and int",
            "3:7 can't use '-' on bool and int (needs numeric operands)",
            "4:7 can't multiply string and string (try string * int)",
            "5:7 can't use '**' on int and string (needs numeric operands)",
            "6:7 warning: Comparison '<' may not be meaningful for types bool and int",
            "7:7 warning: Comparing string with int using '<' may give unexpected results",
        ]
    );
    let src = "pipeline main(task) {\n  gen fn ticks() -> Stream<int> {\n    yield 1\n  }\n  fn words() {\n    emit \"w\"\n  }\n  gen fn labels() -> Stream<string> {\n    emit 1\n  }\n  fn nums() -> Generator<int> {\n    yield 1\n  }\n  let s: Stream<int> = nums()\n}";
    assert_eq!(
        messages(src),
        [
            "3:5 `yield` is not a stream emit; use `emit` inside `gen fn`",
            "6:5 `emit` can only be used inside a `gen fn`",
            "9:5 emit type doesn't match: expected string, got int",
            "14:3 's' declared as Stream<int>, but assigned Generator<int>",
        ]
    );
    let src = "enum Light { Red, Amber, Green }\ntype Event = {type: \"click\", x: int} | {type: \"key\", code: string}\ntype Level = \"low\" | \"mid\" | \"high\"\npipeline main(task) {\n  let l = Light.Amber\n  match l.variant {\n    \"Red\" -> { log(1) }\n    \"Green\" -> { log(2) }\n  }\n  let e: Event = {type: \"key\", code: \"a\"}\n  match e.type {\n    \"key\" -> { log(3) }\n  }\n  let lv: Level = \"mid\"\n  match lv {\n    \"low\" -> { log(1) }\n    \"high\" -> { log(3) }\n  }\n  fn f(v: int | string | nil) {\n    match v {\n      1 -> { log(1) }\n      nil -> { log(2) }\n    }\n  }\n}";
    assert_eq!(
        messages(src),
        [
            "6:3 Non-exhaustive match on enum Light: missing variants \"Amber\"",
            "11:3 Non-exhaustive match on tagged shape union: missing variants \"click\"",
            "15:3 Non-exhaustive match on literal union: missing \"mid\"",
            "20:5 Non-exhaustive match on union type: missing string",
        ]
    );
    let src = "type Sink<out T> = fn(T) -> nil\npipeline main(task) {\n  fn pair<T>(a: T, b: T) -> list<T> {\n    return [a, b]\n  }\n  log(pair(true, 1.5))\n  fn area(w: int, h: int) -> int {\n    return w * h\n  }\n  log(area(3))\n  log(srot([1]))\n  return 1\n  log(2)\n}";
    assert_eq!(
        messages(src),
        [
            "1:1 type parameter 'T' is declared 'out' (covariant) but appears in a contravariant position in type alias 'Sink'",
            "6:18 type parameter 'T' was inferred as both bool and float",
            "6:18 Argument 2 ('b'): expected bool, got float",
            "10:7 warning: Function 'area' expects at least 2 arguments, got 1",
            "11:7 call target `srot` is not defined or imported — did you mean `sqrt`?",
            "13:3 warning: unreachable code",
        ]
    );
}

#[test]
fn valid_patterns_are_not_flagged() {
    let src = r#"
type Mode = "fast" | "slow"
struct Point { x: int, y: int }
enum Color { Red, Green }
fn id<T>(x: T) -> T { return x }
fn first<T>(xs: list<T>) -> T { return xs[0] }
fn a() { return b() }
fn b() { return 1 }
fn apply(f, v) { return f(v) }
fn sign(n: int) -> string { if n > 0 { return "pos" } }
fn nn(x: int | nil) -> int {
  if x == nil { return 0 }
  return x
}
fn g(v: unknown) -> string {
  if type_of(v) == "string" {
    let t: string = v
    return t
  }
  return "other"
}
fn loc() -> int {
  let s = "x"
  return s
}
pipeline main(task) {
  let p: {name: string} = {name: "a", age: 3}
  let q: {a: int, b?: string} = {a: 1}
  let f: float = 1
  let d: dict<string, float> = {k: 1}
  let m: Mode = "fast"
  let xs: list<int> = []
  let e: dict<string, int> = {}
  let r: Result<int, string> = Ok(1)
  let c: Color = Color.Red
  let pt: Point = Point {x: 1, y: 2}
  let pt2: Point = Point({x: 1, y: 2})
  let n: int = id(5)
  let s: string = id("a")
  let k: int = first([1, 2])
  var v = nil
  v = 3
  let maybe: int | nil = 4
  guard maybe != nil else { return 0 }
  let w: int = maybe + 1
  log(apply({ x -> x + 1 }, 2))
  log(__private_thing(1))
  log(nn(nil), g(1), sign(1), loc(), a(), p, q, f, d, m, xs, e, r, c, pt, pt2, n, s, k, w)
  match c {
    Color.Red -> { log(1) }
    _ -> { log(2) }
  }
}
"#;
    let errors: Vec<String> = messages(src).into_iter().filter(|m| !m.contains("warning:")).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn host_names_count_as_defined() {
    let src = "pipeline main(task) { log(fetch_weather(1)) }";
    assert_eq!(messages(src), ["1:27 call target `fetch_weather` is not defined or imported"]);
    let opts = CheckOptions { extra_names: vec!["fetch_weather".into()] };
    assert!(check_source(src, "t.harn", &opts).unwrap().is_empty());
}

#[test]
fn renders_like_harn_check() {
    let src = "pipeline main(task) {\n  let port: int = \"8080\"\n}\n";
    let diags = check_source(src, "e01.harn", &CheckOptions::default()).unwrap();
    let text = harnvm_core::compile::check::render(&diags[0], src);
    assert_eq!(
        text,
        "error[HARN-TYP-007]: 'port' declared as int, but assigned string\n  --> e01.harn:2:3\n   |\n 2 |   let port: int = \"8080\"\n   |   ^\n"
    );
}

/// Resolves one module, `./lib`, whose source has a type error.
struct OneModule;

impl harnvm_core::ModuleLoader for OneModule {
    fn load(&mut self, spec: &str, _importer: &str) -> Result<Option<harnvm_core::ModuleSource>, String> {
        Ok((spec == "./lib").then(|| harnvm_core::ModuleSource {
            key: "lib.harn".into(),
            source: "pub fn one() -> int {\n  let s: int = \"x\"\n  return 1\n}\n".into(),
        }))
    }
}

fn checked(source: &str, check: bool) -> harnvm_core::compile::Checked {
    let mut cache = harnvm_core::ModuleCache::new();
    let opts = CheckOptions::default();
    harnvm_core::compile::compile_checked(source, "main.harn", &mut OneModule, &mut cache, check.then_some(&opts))
}

#[test]
fn compile_checked_returns_the_program_with_the_warnings() {
    let c = checked("pipeline main(task) {\n  return 1\n  log(2)\n}\n", true);
    assert_eq!(c.diagnostics.iter().map(|d| d.message.as_str()).collect::<Vec<_>>(), ["unreachable code"]);
    assert!(matches!(c.program, Ok(Some(_))));
}

#[test]
fn compile_checked_compiles_nothing_after_a_type_error() {
    // The import does not exist: the type error is reported, not the import.
    let c = checked("import \"./missing\"\npipeline main(task) {\n  let n: int = \"s\"\n}\n", true);
    assert_eq!(c.diagnostics.len(), 1);
    assert!(c.diagnostics[0].is_error());
    assert!(matches!(c.program, Ok(None)));
    // Check off: the program's own error is the compile's.
    let c = checked("pipeline main(task) {\n  let n: int = \"s\"\n}\n", false);
    assert!(c.diagnostics.is_empty());
    assert!(matches!(c.program, Ok(Some(_))));
}

#[test]
fn compile_checked_leaves_syntax_errors_to_the_parser() {
    let c = checked("pipeline main( {", true);
    assert!(c.diagnostics.is_empty());
    assert!(c.program.is_err());
}

#[test]
fn imported_modules_are_not_checked() {
    // As harn 0.9.11: only the file being compiled is checked.
    let c = checked("import { one } from \"./lib\"\npipeline main(task) {\n  return one()\n}\n", true);
    assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
    assert!(matches!(c.program, Ok(Some(_))));
}
