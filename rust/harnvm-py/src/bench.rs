//! `harnvm._native.bench`: timing fixtures for the VM internals.
//!
//! Each fixture runs `loops` iterations inside Rust and returns the elapsed
//! nanoseconds, so Python's call overhead does not swamp nanosecond work;
//! `perf/bench_inline_caches.py` and the `internals` pyperf suite
//! (`perf/bench_internals.py`) turn them into ns per op. The program
//! fixtures are Harn loops whose body repeats one op `UNROLL` times; their
//! `*_baseline` twin is the same loop without that op, so the difference is
//! the op's own cost on the real dispatch path. The sized fixtures (slot
//! lookups, cache-entry peeks against their hash-and-clone controls, the
//! closure-call environment) take the N as `size`. Not a test:
//! nothing here asserts a timing.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

use harnvm_core::bytecode::chunk::{Chunk, Op};
use harnvm_core::runtime::fiber::ModuleEnv;
use harnvm_core::runtime::value::{Closure, StructLayout};
use harnvm_core::syntax::Pos;
use harnvm_core::vm::ic::{
    BinaryOp, BinaryState, CallTarget, DirectCallState, Entry, InlineCaches, MethodTarget, PropertyTarget, Shape,
};
use harnvm_core::{Vm as CoreVm, VmOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors;

/// Ops per loop iteration in the program fixtures.
pub const UNROLL: usize = 10;

/// (name, setup, repeated statement) of the program fixtures.
const PROGRAMS: &[(&str, &str, &str)] = &[
    ("property_read", "struct P { x, y }\nlet p = P({x: 1, y: 2})", "s = p.x"),
    ("property_read_baseline", "struct P { x, y }\nlet p = P({x: 1, y: 2})", "s = p"),
    ("dict_field_read", "let p = {x: 1, y: 2}", "s = p.x"),
    ("dict_field_read_baseline", "let p = {x: 1, y: 2}", "s = p"),
    ("list_count_read", "let p = [1, 2, 3]", "s = p.count"),
    ("list_count_read_baseline", "let p = [1, 2, 3]", "s = p"),
    ("int_add", "let a = 3\nlet b = 4", "s = a + b"),
    ("int_add_baseline", "let a = 3\nlet b = 4", "s = a\n    b"),
    ("float_mul", "let a = 3.5\nlet b = 4.0", "s = a * b"),
    ("float_mul_baseline", "let a = 3.5\nlet b = 4.0", "s = a\n    b"),
    ("int_less", "let a = 3\nlet b = 4", "s = a < b"),
    ("int_less_baseline", "let a = 3\nlet b = 4", "s = a\n    b"),
    ("method_count", "let p = [1, 2, 3]", "s = p.count()"),
    ("method_count_baseline", "let p = [1, 2, 3]", "s = p"),
    ("closure_call", "fn f(x) { return x }\nlet a = 1", "s = f(a)"),
    ("closure_call_baseline", "fn f(x) { return x }\nlet a = 1", "s = a"),
];

fn program_source(setup: &str, stmt: &str, loops: u64) -> String {
    let body = vec![format!("    {stmt}"); UNROLL].join("\n");
    format!("{setup}\nvar s = nil\nvar i = 0\nwhile i < {loops} {{\n{body}\n    i = i + 1\n}}\n")
}

/// The most captures `closure_env` builds (the largest N is 100).
const MAX_CAPTURES: usize = 200;

/// Entry families of the peek fixtures (`peek_<family>` and `peek_<family>_control`).
const PEEK_FAMILIES: [&str; 4] = ["adaptive_binary", "method", "property", "direct_call"];

/// The closure-environment fixture: inside a function (so the captured
/// names are locals, captured by value into the closure's environment), a
/// closure over `captures` locals is made once and then called `UNROLL`
/// times per loop iteration. The captures sit in a branch the calls never
/// take, so each call does the same work whatever the count: what differs is
/// only the environment the call path has to carry. The `_baseline` twin
/// replaces each call by a local read.
fn closure_env_source(captures: usize, loops: u64, baseline: bool) -> String {
    let names: Vec<String> = (0..captures).map(|i| format!("c{i}")).collect();
    let lets: String = names.iter().enumerate().map(|(i, n)| format!("  let {n} = {i}\n")).collect();
    let unused = if names.is_empty() { "0".to_string() } else { names.join(" + ") };
    let stmt = if baseline { "s = i" } else { "s = f(i)" };
    let body = vec![format!("    {stmt}"); UNROLL].join("\n");
    format!(
        "fn outer() {{\n{lets}  let f = fn(x) {{\n    if x < 0 {{ return {unused} }}\n    return x\n  }}\n  \
         var s = nil\n  var i = 0\n  while i < {loops} {{\n{body}\n    i = i + 1\n  }}\n  return s\n}}\nouter()\n"
    )
}

/// Names of every fixture. The sized ones (`slot_lookup_*`, `peek_*`,
/// `closure_env*`) take `size`: cache sites (default 512), or captures
/// (default and at most `MAX_CAPTURES`).
#[pyfunction]
pub fn bench_fixtures() -> Vec<String> {
    let mut names: Vec<String> = PROGRAMS.iter().map(|(n, _, _)| n.to_string()).collect();
    names.extend(["slot_lookup_operand", "slot_lookup_flat", "slot_lookup_btreemap"].map(String::from));
    for family in PEEK_FAMILIES {
        names.push(format!("peek_{family}"));
        names.push(format!("peek_{family}_control"));
    }
    names.extend(["closure_env", "closure_env_baseline"].map(String::from));
    names
}

fn unknown(name: &str) -> PyErr {
    PyValueError::new_err(format!("unknown fixture {name:?}; one of {}", bench_fixtures().join(", ")))
}

/// Runs `source` on a fresh Vm and returns the elapsed ns of the run
/// (compilation is not timed).
fn time_program(py: Python<'_>, source: &str, inline_caches: bool) -> PyResult<u64> {
    let program = errors::guard(py, || harnvm_core::compile(source, "<bench>").map_err(|e| errors::vm_error(py, &e, 0)))?;
    errors::guard(py, || {
        let mut vm = CoreVm::new(VmOptions { inline_caches, ..Default::default() });
        let started = Instant::now();
        let result = vm.run(&program);
        let elapsed = started.elapsed().as_nanos() as u64;
        result.map_err(|e| errors::vm_error(py, &e, 0))?;
        Ok(elapsed)
    })
}

/// Runs fixture `name` for `loops` iterations and returns the elapsed ns.
///
/// * program fixtures: a fresh Vm with `inline_caches` as given;
/// * `slot_lookup_*`: each iteration looks up all `size` sites of a chunk
///   (decoding the operand, as the VM does, or the flat-index and BTreeMap
///   controls built from it);
/// * `peek_<family>`: each iteration reads all `size` entries of that
///   family the production way (offset → operand slot → `Copy` peek);
///   `peek_<family>_control` does a hash lookup by instruction offset and
///   clones the whole entry instead;
/// * `closure_env` / `closure_env_baseline`: `loops × 10` calls of a
///   closure with `size` captures, and the same loop without the calls.
#[pyfunction]
#[pyo3(signature = (name, loops, *, inline_caches = true, size = None))]
pub fn bench(py: Python<'_>, name: &str, loops: u64, inline_caches: bool, size: Option<usize>) -> PyResult<u64> {
    if let Some((_, setup, stmt)) = PROGRAMS.iter().find(|(n, _, _)| *n == name) {
        return time_program(py, &program_source(setup, stmt, loops), inline_caches);
    }
    if let Some(rest) = name.strip_prefix("closure_env") {
        let baseline = match rest {
            "" => false,
            "_baseline" => true,
            _ => return Err(unknown(name)),
        };
        let size = size.unwrap_or(MAX_CAPTURES);
        if size > MAX_CAPTURES {
            return Err(PyValueError::new_err(format!("closure_env: at most {MAX_CAPTURES} captures, got {size}")));
        }
        return time_program(py, &closure_env_source(size, loops, baseline), inline_caches);
    }
    let size = size.unwrap_or(512);
    if !(1..=4096).contains(&size) {
        return Err(PyValueError::new_err(format!("size must be 1..=4096 cache sites, got {size}")));
    }
    if let Some(family) = name.strip_prefix("peek_") {
        let (family, control) = match family.strip_suffix("_control") {
            Some(f) => (f, true),
            None => (family, false),
        };
        if !PEEK_FAMILIES.contains(&family) {
            return Err(unknown(name));
        }
        return errors::guard(py, || Ok(time_peeks(family, control, size, loops)));
    }
    let chunk = lookup_chunk(size);
    let sites = chunk.inline_cache_sites();
    let offsets: Vec<usize> = sites.iter().map(|&(at, _)| at).collect();
    // The controls: the side tables chunks used to keep next to the
    // operand, built here from the production sites.
    let mut flat = Vec::new();
    let mut btree = BTreeMap::new();
    for &(at, slot) in &sites {
        if flat.len() <= at {
            flat.resize(at + 1, u32::MAX);
        }
        flat[at] = slot;
        btree.insert(at, slot);
    }
    let started = Instant::now();
    let mut sum = 0u64;
    match name {
        "slot_lookup_flat" => {
            for _ in 0..loops {
                for &at in &offsets {
                    sum += match flat.get(black_box(at)) {
                        Some(&slot) if slot != u32::MAX => slot as u64,
                        _ => 0,
                    };
                }
            }
        }
        "slot_lookup_btreemap" => {
            for _ in 0..loops {
                for &at in &offsets {
                    sum += btree.get(&black_box(at)).copied().unwrap_or(0) as u64;
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
        _ => return Err(unknown(name)),
    }
    black_box(sum);
    Ok(started.elapsed().as_nanos() as u64)
}

/// `size` adjacent `ADD`s (each one cache site).
fn lookup_chunk(size: usize) -> Rc<Chunk> {
    let mut chunk = Chunk::default();
    for _ in 0..size {
        chunk.emit(Op::Add, &[], Pos::default());
    }
    Rc::new(chunk)
}

/// What the peek fixtures keep alive for their entries.
struct PeekWorld {
    layout: Rc<StructLayout>,
    closure: Rc<Closure>,
}

fn peek_world() -> PeekWorld {
    let layout = Rc::new(StructLayout {
        name: Rc::new("P".to_string()),
        fields: vec![Rc::new("x".to_string()), Rc::new("y".to_string())],
    });
    // A real function prototype (the direct-call entry holds its closure).
    let program = harnvm_core::compile("fn f(x) { return x }\n", "<bench>").expect("the peek fixture's program compiles");
    let closure = Rc::new(Closure {
        proto: program.main.clone(),
        captures: Box::new([]),
        module: Rc::new(ModuleEnv::new(program.globals.clone())),
    });
    PeekWorld { layout, closure }
}

/// A warm entry of `family` for site `i`, as the VM leaves it after many hits.
fn warm_entry(family: &str, i: usize, world: &PeekWorld) -> Entry {
    let hits = 1000 + i as u64;
    match family {
        "adaptive_binary" => {
            Entry::Binary { op: BinaryOp::Add, state: BinaryState::Specialized { shape: Shape::Int, hits, misses: 0 } }
        }
        "method" => Entry::Method { name_idx: i as u16, argc: 0, target: MethodTarget::ListCount, hits, misses: 0 },
        "property" => Entry::Property {
            name_idx: i as u16,
            target: PropertyTarget::StructField { layout: Rc::as_ptr(&world.layout), index: 1 },
            hits,
            misses: 0,
            layout: Some(world.layout.clone()),
        },
        _ => Entry::DirectCall(DirectCallState::Specialized {
            argc: 1,
            target: CallTarget::Closure(world.closure.clone()),
            hits,
            misses: 0,
        }),
    }
}

/// `loops` sweeps of `read` over every offset; elapsed ns.
#[inline(always)]
fn sweep(offsets: &[usize], loops: u64, mut read: impl FnMut(usize) -> u64) -> u64 {
    let mut sum = 0u64;
    let started = Instant::now();
    for _ in 0..loops {
        for &at in offsets {
            sum = sum.wrapping_add(read(black_box(at)));
        }
    }
    black_box(sum);
    started.elapsed().as_nanos() as u64
}

/// Times `loops` sweeps over `size` sites of one entry family.
fn time_peeks(family: &str, control: bool, size: usize, loops: u64) -> u64 {
    let world = peek_world();
    let chunk = lookup_chunk(size);
    let sites = chunk.inline_cache_sites();
    let offsets: Vec<usize> = sites.iter().map(|&(at, _)| at).collect();
    if control {
        // The control: entries in a hash map keyed by instruction offset;
        // a read looks the offset up and clones the whole entry.
        let map: HashMap<usize, Entry> = offsets.iter().enumerate().map(|(i, &at)| (at, warm_entry(family, i, &world))).collect();
        return sweep(&offsets, loops, |at| u64::from(black_box(map.get(&at).cloned()).is_some()));
    }
    let mut ic = InlineCaches::default();
    let set = ic.set_index_for_chunk(&chunk, None);
    for (i, &(_, slot)) in sites.iter().enumerate() {
        if let Some(entry) = ic.get_mut(set, slot as usize) {
            *entry = warm_entry(family, i, &world);
        }
    }
    // The production read: slot from the instruction's operand, then the
    // family's `Copy` peek; the read consumes the hit count, as a report does.
    let slot = |at: usize| chunk.inline_cache_slot(at).unwrap_or(u32::MAX) as usize;
    match family {
        "adaptive_binary" => sweep(&offsets, loops, |at| {
            ic.peek_binary(set, slot(at)).map_or(0, |(_, state)| match state {
                BinaryState::Warmup { hits, .. } | BinaryState::Specialized { hits, .. } => hits,
            })
        }),
        "method" => sweep(&offsets, loops, |at| ic.peek_method(set, slot(at)).map_or(0, |p| p.3)),
        "property" => sweep(&offsets, loops, |at| ic.peek_property(set, slot(at)).map_or(0, |p| p.2)),
        _ => sweep(&offsets, loops, |at| ic.peek_direct_call(set, slot(at)).map_or(0, |p| p.hits)),
    }
}
