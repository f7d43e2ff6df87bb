//! Helpers shared by the end-to-end test files: run Harn source on a fresh VM.

#![allow(dead_code)] // each test file uses a different subset

use harnvm_core::{compile, Vm, VmOptions};

/// Output and result (display text, or the uncaught error message) of a run.
pub fn run_result(src: &str) -> (String, Result<String, String>) {
    let program = match compile(src, "test.harn") {
        Ok(p) => p,
        Err(e) => return (String::new(), Err(e.uncaught_message())),
    };
    let mut vm = Vm::new(VmOptions::default());
    let result = vm.run(&program);
    (vm.take_output(), result.map(|v| v.display()).map_err(|e| e.uncaught_message()))
}

/// Runs `src` and returns its output lines (without the `[harn] ` prefix).
pub fn logs(src: &str) -> Vec<String> {
    let (out, result) = run_result(src);
    if let Err(e) = result {
        panic!("program failed: {e}\noutput so far:\n{out}");
    }
    out.lines().map(|l| l.strip_prefix("[harn] ").unwrap_or(l).to_string()).collect()
}

/// The uncaught error message of `src`, which must fail.
pub fn error_of(src: &str) -> String {
    match run_result(src).1 {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}
