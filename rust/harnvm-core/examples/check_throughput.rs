//! Compile throughput with and without the static check, in source lines per
//! second: `cargo run --release -p harnvm-core --example check_throughput [DIR...]`
//! (a large generated program, then every `.harn` file under each DIR).

use std::time::Instant;

use harnvm_core::compile::check::CheckOptions;

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

/// Best of `reps` timings of `f`, in seconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn measure(label: &str, sources: &[(String, String)]) {
    let lines: usize = sources.iter().map(|(_, s)| s.lines().count()).sum();
    let opts = CheckOptions::default();
    let compile = best(5, || {
        for (name, src) in sources {
            let _ = harnvm_core::compile(src, name);
        }
    });
    let check = best(5, || {
        for (name, src) in sources {
            let _ = harnvm_core::compile::check_source(src, name, &opts);
        }
    });
    let parse = best(5, || {
        for (name, src) in sources {
            let _ = harnvm_core::syntax::parser::parse(src, name);
        }
    });
    let check_only = (check - parse).max(0.0);
    println!(
        "{label}: {lines} lines; compile {:.0} lines/s; compile+check {:.0} lines/s; check walk alone {:.1}% of compile time",
        lines as f64 / compile,
        lines as f64 / (compile + check_only),
        100.0 * check_only / compile
    );
}

fn main() {
    let big = generated(3000);
    measure("generated", &[("gen.harn".into(), big)]);
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
        measure(&dir, &sources);
    }
}
