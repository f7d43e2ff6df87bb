//! Compile throughput with and without the static check, in source lines per
//! second: `cargo run --release -p harnvm-core --example check_throughput [DIR...]`
//! (a large generated program, then every `.harn` file under each DIR).
//!
//! Both sides go through the checked front door (`compile_checked`, one
//! parse), with the check off and on. The machine is shared and noisy, so
//! time is the thread's CPU time (time spent descheduled is not counted), the
//! two are timed in alternating rounds, and each side's figure is its fastest
//! round (noise only ever adds time).

use std::time::{Duration, Instant};

/// CPU time consumed by this thread (Linux; wall time elsewhere).
#[cfg(target_os = "linux")]
fn cpu_now() -> Duration {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid timespec (64-bit Linux layout) for the call to fill.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(ts.sec as u64, ts.nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn cpu_now() -> Duration {
    thread_local!(static START: Instant = Instant::now());
    START.with(|s| s.elapsed())
}

/// CPU time taken by `f`.
fn timed(f: impl FnOnce()) -> Duration {
    let t = cpu_now();
    f();
    cpu_now() - t
}

use harnvm_core::compile::check::CheckOptions;
use harnvm_core::compile::compile_checked;
use harnvm_core::{ModuleCache, ModuleLoader, ModuleSource};

fn generated(fns: usize) -> String {
    let mut s = String::from("struct Point { x: int, y: int }\nenum Shape { Dot, Line }\n");
    for i in 0..fns {
        s.push_str(&format!(
            "fn f{i}(a: int, b: string, xs: list<int>) -> int {{\n  let p = Point {{x: a, y: {i}}}\n  var total: int = 0\n  for x in xs {{\n    total = total + x * 2\n  }}\n  if a > 3 {{\n    return total\n  }}\n  let label: string = b + \"-\" + to_string(a)\n  let d = {{name: label, n: total}}\n  match Shape.Dot {{\n    Shape.Dot -> {{ log(d.name) }}\n    Shape.Line -> {{ log(p.x) }}\n  }}\n  return total + p.y\n}}\n"
        ));
    }
    s.push_str("pipeline main(task) {\n");
    for i in 0..fns {
        s.push_str(&format!("  log(f{i}({i}, \"s\", [1, 2, 3]))\n"));
    }
    s.push_str("}\n");
    s
}

/// Resolves nothing: the measured sources have no imports.
struct NoModules;

impl ModuleLoader for NoModules {
    fn load(&mut self, _spec: &str, _importer: &str) -> Result<Option<ModuleSource>, String> {
        Ok(None)
    }
}

/// Compiles every source once; panics if one fails (a failure would be measured as fast).
fn compile_all(sources: &[(String, String)], check: Option<&CheckOptions>) {
    let mut cache = ModuleCache::new();
    for (name, src) in sources {
        let checked = compile_checked(src, name, &mut NoModules, &mut cache, check);
        match checked.program {
            Ok(Some(_)) => {}
            Ok(None) => panic!("{name}: the checker reported errors"),
            Err(e) => panic!("{name}: {:?}", e.0.kind),
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn measure(label: &str, sources: &[(String, String)], min_rounds: usize, budget: Duration) {
    let lines: usize = sources.iter().map(|(_, s)| s.lines().count()).sum();
    let opts = CheckOptions::default();
    let asts: Vec<_> = sources.iter().map(|(n, s)| (n, harnvm_core::syntax::parser::parse(s, n).unwrap())).collect();
    let (mut plain, mut checked, mut walk) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < min_rounds || start.elapsed() < budget {
        plain = plain.min(timed(|| compile_all(sources, None)));
        checked = checked.min(timed(|| compile_all(sources, Some(&opts))));
        walk = walk.min(timed(|| {
            for (name, ast) in &asts {
                std::hint::black_box(harnvm_core::compile::check::check_program(ast, name, &opts));
            }
        }));
        rounds += 1;
    }
    println!(
        "{label}: {lines} lines, {} files, best of {rounds} rounds: compile {:.0} lines/s; compile+check {:.0} lines/s; the check adds {:.1}% (the checker's walk alone: {:.1}%)",
        sources.len(),
        lines as f64 / secs(plain),
        lines as f64 / secs(checked),
        100.0 * (secs(checked) - secs(plain)) / secs(plain),
        100.0 * secs(walk) / secs(plain)
    );
}

fn main() {
    // `CHECK_ONLY=1`: loop the checker's walk over the DIRs (for a profiler).
    if std::env::var_os("CHECK_ONLY").is_some() {
        return check_only();
    }
    let big = generated(3000);
    measure("generated", &[("gen.harn".into(), big)], 15, Duration::from_secs(8));
    for dir in std::env::args().skip(1) {
        let mut sources = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(&dir)];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else if p.extension().is_some_and(|e| e == "harn") {
                sources.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
        sources.sort();
        measure(&dir, &sources, 300, Duration::from_secs(8));
    }
}

fn check_only() {
    let opts = CheckOptions::default();
    if std::env::args().len() == 1 {
        let ast = harnvm_core::syntax::parser::parse(&generated(3000), "gen").unwrap();
        for _ in 0..30 {
            std::hint::black_box(harnvm_core::compile::check::check_program(&ast, "gen", &opts));
        }
    }
    for dir in std::env::args().skip(1) {
        let mut asts = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "harn") {
                let src = std::fs::read_to_string(&p).unwrap();
                asts.push(harnvm_core::syntax::parser::parse(&src, "m").unwrap());
            }
        }
        for _ in 0..20000 {
            for ast in &asts {
                std::hint::black_box(harnvm_core::compile::check::check_program(ast, "m", &opts));
            }
        }
    }
}
