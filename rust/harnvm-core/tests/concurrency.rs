//! The scheduler through the core API: tasks, the virtual clock, host calls
//! driven step by step, cancellation and leaks.

use std::cell::RefCell;
use std::rc::Rc;

use harnvm_core::vm::{HostReply, RunState};
use harnvm_core::{compile, Value, Vm, VmOptions};

fn virtual_vm() -> Vm {
    let mut vm = Vm::new(VmOptions::default());
    vm.set_virtual_clock(true);
    vm
}

fn run_on(vm: &mut Vm, src: &str) -> (String, Result<Value, harnvm_core::VmError>) {
    let program = compile(src, "test.harn").expect("compiles");
    let result = vm.run(&program);
    (vm.take_output(), result)
}

fn run_virtual(src: &str) -> String {
    let mut vm = virtual_vm();
    let (out, result) = run_on(&mut vm, src);
    if let Err(e) = result {
        panic!("program failed: {e}\noutput so far:\n{out}");
    }
    assert_eq!(vm.live_tasks(), 0, "tasks leaked");
    out
}

#[test]
fn spawned_tasks_start_when_the_spawner_waits_and_output_merges_at_await() {
    let out = run_virtual(
        r#"
let h = spawn { println("child"); 41 }
println("parent first")
println(await(h) + 1)
println(await(h))
println(await(5))
"#,
    );
    assert_eq!(out, "parent first\nchild\n42\nnil\n5\n");
}

#[test]
fn virtual_sleeps_finish_in_time_order() {
    let mut vm = virtual_vm();
    let (out, result) = run_on(
        &mut vm,
        r#"
let ch = channel("order", 10)
let hs = [spawn { sleep(300ms); send(ch, "c") }, spawn { sleep(100ms); send(ch, "a") }, spawn { sleep(200ms); send(ch, "b") }]
for h in hs { await(h) }
close_channel(ch)
var got = []
for x in ch { got = got + [x] }
println(got)
"#,
    );
    result.expect("runs");
    assert_eq!(out, "[a, b, c]\n");
    assert_eq!(vm.clock_ms(), 300.0);
}

#[test]
fn unawaited_tasks_are_cancelled_when_the_run_ends() {
    let mut vm = virtual_vm();
    let (out, result) = run_on(
        &mut vm,
        r#"
spawn { sleep(1h); println("never") }
spawn { let ch = channel("x"); receive(ch) }
spawn { println("lost output") }
"done"
"#,
    );
    assert_eq!(result.expect("runs").display(), "done");
    assert_eq!(out, "");
    assert_eq!(vm.live_tasks(), 0);
    // The virtual clock never advanced to the sleeping task's wake-up.
    assert_eq!(vm.clock_ms(), 0.0);
}

#[test]
fn deadline_interrupts_a_computing_task_and_a_waiting_one() {
    let out = run_virtual(
        r#"
try { deadline 20ms { sleep(1s) } } catch (e) { println(e) }
let r = try { deadline 5ms { let ch = channel("n"); receive(ch) } }
println(unwrap_err(r))
println(deadline 1s { "in time" })
"#,
    );
    assert_eq!(out, "Deadline exceeded\nDeadline exceeded\nin time\n");
}

#[test]
fn deadline_stops_a_busy_loop_on_the_real_clock() {
    let mut vm = Vm::new(VmOptions::default());
    let (out, result) = run_on(&mut vm, "try { deadline 30ms { while true { } } } catch (e) { println(e) }");
    result.expect("runs");
    assert_eq!(out, "Deadline exceeded\n");
}

#[test]
fn parallel_forms_keep_index_order_and_respect_max_concurrent() {
    let out = run_virtual(
        r#"
let inflight = atomic(0)
let peak = atomic(0)
let xs = parallel each [30, 10, 20] with { max_concurrent: 2 } { ms ->
  let now = atomic_add(inflight, 1) + 1
  if now > atomic_get(peak) { atomic_set(peak, now) }
  sleep(ms)
  atomic_add(inflight, -1)
  ms
}
println(xs)
println(atomic_get(peak))
let s = parallel settle [1, 0, 2] { x -> 10 / x }
println(s.succeeded)
println(s.failed)
let stream = parallel each [30, 10, 20] { ms -> sleep(ms); ms } as stream
var order = []
for v in stream { order = order + [v] }
println(order)
"#,
    );
    assert_eq!(out, "[30, 10, 20]\n2\n2\n1\n[10, 20, 30]\n");
}

#[test]
fn select_statement_forms() {
    let out = run_virtual(
        r#"
let a = channel("a")
let b = channel("b")
spawn { sleep(5ms); send(b, "late") }
select {
  x from a { println("a ${x}") }
  y from b { println("b ${y}") }
}
select {
  x from a { println("a ${x}") }
  default { println("nothing") }
}
select {
  x from a { println("a ${x}") }
  timeout 10ms { println("timed out") }
}
"#,
    );
    assert_eq!(out, "b late\nnothing\ntimed out\n");
}

#[test]
fn deadlock_is_an_error() {
    let mut vm = virtual_vm();
    let (_, result) = run_on(&mut vm, r#"let ch = channel("c"); receive(ch)"#);
    let err = result.expect_err("deadlocks");
    assert!(err.message().contains("deadlock"), "{}", err.message());
    assert_eq!(vm.live_tasks(), 0);
}

#[test]
fn host_calls_are_driven_step_by_step() {
    let mut vm = virtual_vm();
    let calls: Rc<RefCell<Vec<(u64, Value)>>> = Rc::default();
    let seen = calls.clone();
    vm.register_host(
        "fetch",
        Box::new(move |call, args| {
            seen.borrow_mut().push((call, args.first().cloned().unwrap_or_default()));
            Ok(HostReply::Pending)
        }),
    );
    vm.register_host("now_add", Box::new(|_, args| Ok(HostReply::Ready(Value::Int(args[0].as_int().unwrap_or(0) + 1)))));
    let program = compile(
        r#"
let xs = parallel 3 { i -> fetch(i) }
println(xs)
println(now_add(1))
try { fetch("boom") } catch (e) { println("caught ${e}") }
"#,
        "t.harn",
    )
    .expect("compiles");
    vm.start(&program);
    let RunState::Waiting { host_calls, .. } = vm.step() else { panic!("should wait for host calls") };
    assert_eq!(host_calls, 3);
    let pending: Vec<(u64, Value)> = calls.borrow_mut().drain(..).collect();
    // Complete in reverse order: results still land by index.
    for (call, arg) in pending.into_iter().rev() {
        vm.complete_host_call(call, Ok(Value::Int(arg.as_int().unwrap_or(0) * 10)));
    }
    let RunState::Waiting { host_calls, .. } = vm.step() else { panic!("should wait for the failing call") };
    assert_eq!(host_calls, 1);
    let (call, _) = calls.borrow_mut().pop().expect("a call");
    vm.complete_host_call(call, Err(harnvm_core::VmError::throw_msg("nope")));
    let RunState::Done(result) = vm.step() else { panic!("should finish") };
    result.expect("runs");
    assert_eq!(vm.take_output(), "[0, 10, 20]\n2\ncaught nope\n");
}

#[test]
fn cancelled_tasks_report_their_pending_host_calls() {
    let mut vm = Vm::new(VmOptions::default());
    vm.register_host("wait_forever", Box::new(|_, _| Ok(HostReply::Pending)));
    let program = compile(
        r#"
let h = spawn { wait_forever() }
sleep(1ms)
cancel(h)
let r = try { deadline 5ms { wait_forever() } }
println(is_err(r))
let late = spawn { wait_forever() }
sleep(1ms)
"done"
"#,
        "t.harn",
    )
    .expect("compiles");
    vm.start(&program);
    let mut cancelled = Vec::new();
    let result = loop {
        match vm.step() {
            RunState::Done(r) => break r,
            RunState::Waiting { timer_ms, .. } => {
                cancelled.extend(vm.take_cancelled_host_calls());
                let ms = timer_ms.expect("a timer is due");
                std::thread::sleep(std::time::Duration::from_secs_f64(ms / 1000.0));
            }
        }
    };
    cancelled.extend(vm.take_cancelled_host_calls());
    assert_eq!(result.expect("runs").display(), "done");
    assert_eq!(vm.take_output(), "true\n");
    // The cancelled spawn, the deadline, and the task left running at the end.
    assert_eq!(cancelled.len(), 3, "{cancelled:?}");
    assert_eq!(vm.live_tasks(), 0);
}

#[test]
fn sync_permits_and_metrics() {
    let out = run_virtual(
        r#"
let p = sync_semaphore_acquire("pool", 2, 1)
let q = sync_semaphore_acquire("pool", 2, 1)
println(sync_semaphore_acquire("pool", 2, 1, 0) == nil)
let waiter = spawn { let r = sync_semaphore_acquire("pool", 2, 1); "got it" }
sleep(5ms)
println(sync_release(p))
println(sync_release(p))
println(await(waiter))
let m = sync_metrics("semaphore", "pool")
println(m.acquisition_count)
println(m.timeout_count)
println(m.max_queue_depth)
"#,
    );
    assert_eq!(out, "true\ntrue\nfalse\ngot it\n3\n1\n1\n");
}

#[test]
fn a_builtin_callback_may_wait_and_an_unfed_wait_is_a_deadlock() {
    let out = run_virtual(
        r#"
let ch = channel("c")
spawn {
  sleep(5ms)
  send(ch, "sent")
}
println([ch].map(receive))
"#,
    );
    assert_eq!(out, "[sent]\n");
    let mut vm = virtual_vm();
    let (_, result) = run_on(&mut vm, r#"let ch = channel("c"); [ch].map(receive)"#);
    let err = result.expect_err("nobody sends");
    assert!(err.message().contains("deadlock"), "{}", err.message());
}

#[test]
fn a_generator_body_may_wait_inside_a_task() {
    let out = run_virtual(
        r#"
fn ticks() {
  for i in 0 to 2 {
    sleep(5ms)
    yield i
  }
}
let h = spawn {
  var got = []
  for x in ticks() { got = got + [x] }
  got
}
let other = spawn { sleep(7ms); "other" }
println(await(h))
println(await(other))
var direct = []
for x in ticks() { direct = direct + [x] }
println(direct)
"#,
    );
    assert_eq!(out, "[0, 1, 2]\nother\n[0, 1, 2]\n");
}

#[test]
fn a_deadline_cancels_the_tasks_spawned_inside_it() {
    let mut vm = virtual_vm();
    let (out, result) = run_on(
        &mut vm,
        r#"
let hits = atomic(0)
let outside = spawn { sleep(50ms); atomic_add(hits, 100); "outside" }
try {
  deadline 10ms {
    spawn { sleep(20ms); atomic_add(hits, 1) }
    parallel 3 { i -> sleep(30ms); atomic_add(hits, 10) }
  }
} catch (e) { println(e) }
sleep(100ms)
println(atomic_get(hits))
println(await(outside))
"#,
    );
    result.expect("runs");
    assert_eq!(out, "Deadline exceeded\n100\noutside\n");
    assert_eq!(vm.live_tasks(), 0);
}

#[test]
fn cancelling_a_task_cancels_what_it_spawned() {
    let out = run_virtual(
        r#"
let hits = atomic(0)
let parent = spawn {
  spawn { sleep(20ms); atomic_add(hits, 1) }
  let inner = spawn { sleep(5ms); "awaited" }
  let r = await(inner)
  sleep(1s)
  r
}
sleep(10ms)
cancel(parent)
sleep(50ms)
println(atomic_get(hits))
let quick = spawn { spawn { sleep(5ms); atomic_add(hits, 1) }; "done" }
println(await(quick))
sleep(10ms)
println(atomic_get(hits))
"#,
    );
    // The grandchild of a cancelled task, and the unawaited child of a
    // finished one, never run to completion.
    assert_eq!(out, "0\ndone\n0\n");
}

#[test]
fn a_top_level_script_is_the_root_task_and_may_wait() {
    let mut vm = virtual_vm();
    let (_, result) = run_on(&mut vm, "let h = spawn { 1 }\nawait(h)");
    // A top-level script is the root task, not a module init: it may wait.
    assert_eq!(result.expect("runs").display(), "1");
}
