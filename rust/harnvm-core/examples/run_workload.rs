//! Runs one Harn program from the command line, for profiling the VM
//! without Python: `cargo run --release -p harnvm-core --example run_workload -- FILE [RUNS]`.
//!
//! The program is compiled once and run `RUNS` times (default 1) on one
//! `Vm`, so under callgrind the difference between RUNS=2 and RUNS=1 is
//! the cost of one steady-state run (caches warm). Built with the
//! `op-pair-stats` feature it then prints the most frequent opcode pairs.

use harnvm_core::{compile, Vm, VmOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: run_workload FILE [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(1);
    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let program = compile(&source, &path).unwrap_or_else(|e| panic!("{e}"));
    let mut vm = Vm::new(VmOptions::default());
    for _ in 0..runs {
        if let Err(e) = vm.run(&program) {
            eprintln!("{}", e.uncaught_message());
            std::process::exit(1);
        }
    }
    #[cfg(feature = "op-pair-stats")]
    {
        let mut pairs = harnvm_core::vm::op_pair_counts();
        pairs.sort_by(|a, b| b.1.cmp(&a.1));
        let total: u64 = pairs.iter().map(|p| p.1).sum();
        println!("{total} dispatches");
        for ((a, b), n) in pairs.iter().take(40) {
            println!("{n:>10} {:5.1}%  {} {}", 100.0 * *n as f64 / total as f64, a.name(), b.name());
        }
    }
}
