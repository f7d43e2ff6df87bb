//! `harnvm._native.bench`: timing fixtures for the inline caches.
//!
//! Each fixture runs `loops` iterations inside Rust and returns the elapsed
//! nanoseconds; `perf/bench_inline_caches.py` drives them and turns pairs of
//! (fixture, baseline) into ns per op. The program fixtures are Harn loops
//! whose body repeats one op `UNROLL` times; their `*_baseline` twin is the
//! same loop without that op, so the difference is the op's own cost on the
//! real dispatch path. Not a test: nothing here asserts a timing.

use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use harnvm_core::chunk::{Chunk, Op, Pos};
use harnvm_core::{Vm as CoreVm, VmOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors;

/// Ops per loop iteration in the program fixtures.
pub const UNROLL: usize = 10;

/// (name, setup, repeated statement) of the program fixtures.
const PROGRAMS: &[(&str, &str, &str)] = &[
    (
        "property_read",
        "struct P { x, y }\nlet p = P({x: 1, y: 2})",
        "s = p.x",
    ),
    (
        "property_read_baseline",
        "struct P { x, y }\nlet p = P({x: 1, y: 2})",
        "s = p",
    ),
    ("dict_field_read", "let p = {x: 1, y: 2}", "s = p.x"),
    ("dict_field_read_baseline", "let p = {x: 1, y: 2}", "s = p"),
    ("list_count_read", "let p = [1, 2, 3]", "s = p.count"),
    ("list_count_read_baseline", "let p = [1, 2, 3]", "s = p"),
    ("int_add", "let a = 3\nlet b = 4", "s = a + b"),
    ("int_add_baseline", "let a = 3\nlet b = 4", "s = a\n    b"),
    ("float_mul", "let a = 3.5\nlet b = 4.0", "s = a * b"),
    (
        "float_mul_baseline",
        "let a = 3.5\nlet b = 4.0",
        "s = a\n    b",
    ),
    ("int_less", "let a = 3\nlet b = 4", "s = a < b"),
    ("int_less_baseline", "let a = 3\nlet b = 4", "s = a\n    b"),
    ("method_count", "let p = [1, 2, 3]", "s = p.count()"),
    ("method_count_baseline", "let p = [1, 2, 3]", "s = p"),
    (
        "closure_call",
        "fn f(x) { return x }\nlet a = 1",
        "s = f(a)",
    ),
    (
        "closure_call_baseline",
        "fn f(x) { return x }\nlet a = 1",
        "s = a",
    ),
];

fn program_source(setup: &str, stmt: &str, loops: u64) -> String {
    let body = vec![format!("    {stmt}"); UNROLL].join("\n");
    format!("{setup}\nvar s = nil\nvar i = 0\nwhile i < {loops} {{\n{body}\n    i = i + 1\n}}\n")
}

/// Names of every fixture.
#[pyfunction]
pub fn bench_fixtures() -> Vec<&'static str> {
    let mut names: Vec<&str> = PROGRAMS.iter().map(|(n, _, _)| *n).collect();
    names.extend([
        "slot_lookup_operand",
        "slot_lookup_flat",
        "slot_lookup_btreemap",
    ]);
    names
}

/// Runs fixture `name` for `loops` iterations and returns the elapsed ns.
/// Program fixtures run on a fresh Vm with `inline_caches` as given
/// (compilation is not timed); `slot_lookup_*` sweep a 512-site chunk
/// `loops` times (flat index, BTreeMap control, or decoding the operand).
#[pyfunction]
#[pyo3(signature = (name, loops, *, inline_caches = true))]
pub fn bench(py: Python<'_>, name: &str, loops: u64, inline_caches: bool) -> PyResult<u64> {
    if let Some((_, setup, stmt)) = PROGRAMS.iter().find(|(n, _, _)| *n == name) {
        let source = program_source(setup, stmt, loops);
        let program = errors::guard(py, || {
            harnvm_core::compile(&source, "<bench>").map_err(|e| errors::vm_error(py, &e, 0))
        })?;
        return errors::guard(py, || {
            let mut vm = CoreVm::new(VmOptions {
                inline_caches,
                ..Default::default()
            });
            let started = Instant::now();
            let result = vm.run(&program);
            let elapsed = started.elapsed().as_nanos() as u64;
            result.map_err(|e| errors::vm_error(py, &e, 0))?;
            Ok(elapsed)
        });
    }
    let chunk = lookup_chunk();
    let offsets: Vec<usize> = chunk.inline_cache_slots.keys().copied().collect();
    let started = Instant::now();
    let mut sum = 0u64;
    match name {
        "slot_lookup_flat" => {
            for _ in 0..loops {
                for &at in &offsets {
                    sum += chunk.inline_cache_slot(black_box(at)).unwrap_or(0) as u64;
                }
            }
        }
        "slot_lookup_btreemap" => {
            for _ in 0..loops {
                for &at in &offsets {
                    sum += chunk
                        .inline_cache_slot_via_btreemap(black_box(at))
                        .unwrap_or(0) as u64;
                }
            }
        }
        "slot_lookup_operand" => {
            for _ in 0..loops {
                for &at in &offsets {
                    let at = black_box(at) + 1;
                    sum += u16::from_le_bytes([chunk.code[at], chunk.code[at + 1]]) as u64;
                }
            }
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown fixture {other:?}; one of {}",
                bench_fixtures().join(", ")
            )))
        }
    }
    black_box(sum);
    Ok(started.elapsed().as_nanos() as u64)
}

/// 512 adjacent `ADD`s (the lookup fixtures' chunk), built once per call.
fn lookup_chunk() -> Rc<Chunk> {
    let mut chunk = Chunk::default();
    for _ in 0..512 {
        chunk.emit(Op::Add, &[], Pos::default());
    }
    Rc::new(chunk)
}
