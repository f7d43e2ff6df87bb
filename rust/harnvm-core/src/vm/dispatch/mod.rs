//! The dispatch loop: `run_frame` decodes each instruction and runs its
//! handler. Frames live on the fiber's explicit stack, so a Harn call or
//! return only switches which frame the loop reads (`continue 'frame`);
//! nothing recurses on the Rust stack.
//!
//! The match decodes an op's operands and calls its handler, a `Vm` method
//! in the file of its op family: `arith` (the adaptive binary ops in all
//! their forms, from `define_ops!`'s family column), `access` (globals,
//! cells, properties, indexing, path assignment), `collections` (literals
//! and spreads), `calls` (calls and closures), `control` (iteration,
//! exceptions, results, type tests) and `decls` (declarations and parameter
//! checks); `errors` builds the errors ops raise. Hot handlers are
//! `#[inline(always)]`, so the match compiles to the same code as if they
//! were written in it; slow paths and error construction are out of line.
//! The ops that only move a value, jump, or switch frames in ways a method
//! cannot express (`RETURN`, `TAIL_CALL`, `YIELD`) stay in the match.

mod access;
mod arith;
mod calls;
mod collections;
mod control;
mod decls;
mod errors;

use std::rc::Rc;

use super::*;
use crate::builtins::iter;
use crate::bytecode::chunk::BinaryForm;
use crate::runtime::ops::BinaryOp;

impl Vm {
    /// Runs until the frame at depth `stop_depth` returns.
    pub(in crate::vm) fn execute(&mut self, stop_depth: usize) -> VmResult<Value> {
        let outer_floor = std::mem::replace(&mut self.park_floor, self.parked.len());
        self.nested_runs += 1;
        let result = loop {
            match self.run_frame(stop_depth) {
                Exit::Switch => {}
                Exit::Done(v) => break Ok(v),
                Exit::Error(mut e, op_at) => {
                    if self.sched.cancel_suspend() {
                        // A nested run (module initialisation) cannot switch tasks.
                        e = VmError::runtime("cannot wait for other tasks while a module initialises");
                    }
                    if let Err(e) = self.handle_error(e, op_at, stop_depth) {
                        break Err(e);
                    }
                }
            }
        };
        self.nested_runs -= 1;
        self.park_floor = outer_floor;
        result
    }

    /// Executes instructions, following calls and returns between frames,
    /// until the run finishes (its outermost frame returns) or an op fails.
    pub(in crate::vm) fn run_frame(&mut self, stop_depth: usize) -> Exit {
        // A call or return switches frames: the next iteration reloads the
        // frame's state (without leaving this function).
        'frame: loop {
            let frame_index = self.fiber.frames.len() - 1;
            // The running function, borrowed without a reference count: the
            // frame holds its `Rc` for as long as this iteration runs the
            // frame's code (a return or tail call leaves the frame only to
            // switch at once, and the tail call's error path keeps the popped
            // frame alive while it reads it). `ManuallyDrop` makes the
            // borrowed `Rc` never decrement; `Rc::clone(&closure)` still
            // takes a counted reference where one is stored.
            // SAFETY: the pointer comes from a live `Rc` in the frame, which
            // outlives every use of `closure` as argued above.
            let closure =
                std::mem::ManuallyDrop::new(unsafe { Rc::from_raw(Rc::as_ptr(&self.fiber.frames[frame_index].closure)) });
            let proto: &FunctionProto = &closure.proto;
            let code: &[u8] = &proto.chunk.code;
            let consts = &proto.chunk.constants;
            let base = self.fiber.frames[frame_index].base;
            let mut ip = self.fiber.frames[frame_index].ip;
            let ic_set = self.fiber.frames[frame_index].ic_set;
            // With caches off no entry exists, so every site runs uncached.
            let ic_base = if self.options.inline_caches { self.ic.base_of(ic_set) } else { ic::NO_SET_BASE };

            // Operand reads skip bounds checks: `Chunk::emit` always writes an
            // opcode together with all of its operands, so an instruction that
            // starts inside `code` ends inside it (checked in debug builds).
            macro_rules! u8_at {
                () => {{
                    debug_assert!(ip < code.len());
                    // SAFETY: see above.
                    let v = unsafe { *code.get_unchecked(ip) };
                    ip += 1;
                    v as usize
                }};
            }
            macro_rules! u16_at {
                () => {{
                    debug_assert!(ip + 2 <= code.len());
                    // SAFETY: see above.
                    let v = unsafe { u16::from_le_bytes([*code.get_unchecked(ip), *code.get_unchecked(ip + 1)]) };
                    ip += 2;
                    v as usize
                }};
            }
            macro_rules! u32_at {
                () => {{
                    debug_assert!(ip + 4 <= code.len());
                    // SAFETY: see above.
                    let v = unsafe { std::ptr::read_unaligned(code.as_ptr().add(ip) as *const u32) }.to_le();
                    ip += 4;
                    v as usize
                }};
            }
            // Stack slots by index, unchecked: the compiler emits balanced
            // code, so every op finds the operands and locals it reads
            // (checked in debug builds; chunks only come from the compiler).
            // (Macros rather than the `at`/`pop`/`top` fns the handlers use:
            // in the loop itself the fns' `noalias` arguments changed its
            // register allocation and cost instructions on most workloads.)
            macro_rules! at {
                ($i:expr) => {{
                    let i = $i;
                    debug_assert!(i < self.fiber.stack.len(), "stack slot {i} out of range");
                    // SAFETY: see above.
                    unsafe { self.fiber.stack.get_unchecked(i) }
                }};
            }
            macro_rules! at_mut {
                ($i:expr) => {{
                    let i = $i;
                    debug_assert!(i < self.fiber.stack.len(), "stack slot {i} out of range");
                    // SAFETY: see `at!`.
                    unsafe { self.fiber.stack.get_unchecked_mut(i) }
                }};
            }
            macro_rules! pop {
                () => {{
                    let n = self.fiber.stack.len();
                    debug_assert!(n > 0, "stack underflow");
                    // SAFETY: see `at!`; the length drops first, so the slot is moved out exactly once.
                    unsafe {
                        self.fiber.stack.set_len(n - 1);
                        std::ptr::read(self.fiber.stack.as_ptr().add(n - 1))
                    }
                }};
            }
            macro_rules! top {
                () => {
                    at_mut!(self.fiber.stack.len() - 1)
                };
            }
            macro_rules! save_ip {
                () => {
                    self.fiber.frames[frame_index].ip = ip
                };
            }

            let mut op_at;
            // Each op evaluates to `Ok(())` or an error; `try_op!` routes errors out.
            macro_rules! try_op {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(err) => {
                            save_ip!();
                            return Exit::Error(err, op_at);
                        }
                    }
                };
            }
            // `try_op!` for an op without operands that calls out of line:
            // the ip is saved before the call, so it need not be kept across it.
            macro_rules! try_op_saved {
                ($e:expr) => {{
                    save_ip!();
                    match $e {
                        Ok(v) => v,
                        Err(err) => return Exit::Error(err, op_at),
                    }
                }};
            }
            // A handler that may push or pop a frame: true sends the loop to
            // the frame now on top.
            macro_rules! switch_if {
                ($e:expr) => {
                    if try_op!($e) {
                        continue 'frame;
                    }
                };
            }
            // An adaptive binary op in one of its forms. Which op and form it
            // is comes from the family column of `define_ops!`, read at
            // compile time, so each arm folds to its form's handler.
            macro_rules! binary {
                ($op:expr) => {{
                    const FAMILY: (BinaryOp, BinaryForm) = match $op.binary() {
                        Some(family) => family,
                        None => panic!("not an adaptive binary op"),
                    };
                    let (bop, form) = FAMILY;
                    // Each form: the int fast path inline, anything else out of line.
                    match form {
                        BinaryForm::Stack => {
                            let slot = u16_at!() as u16;
                            if !self.binary_stack(bop, ic_base, slot) {
                                try_op!(self.binary_stack_slow(bop, ic_base, slot));
                            }
                        }
                        BinaryForm::Const | BinaryForm::LocalConstSet => {
                            let dst = match form {
                                BinaryForm::Const => self.fiber.stack.len() - 1,
                                _ => base + u16_at!(),
                            };
                            let k = &consts[u16_at!()];
                            let slot = u16_at!() as u16;
                            if !self.binary_in_place(bop, dst, k, ic_base, slot) {
                                try_op!(self.binary_in_place_slow(bop, dst, k, ic_base, slot));
                            }
                        }
                        BinaryForm::Local => {
                            let local = base + u16_at!();
                            let slot = u16_at!() as u16;
                            if !self.binary_local(bop, local, ic_base, slot) {
                                // Off the fast path the local is copied (its operand may be any value).
                                let right = at!(local).clone();
                                let top = self.fiber.stack.len() - 1;
                                try_op!(self.binary_in_place_slow(bop, top, &right, ic_base, slot));
                            }
                        }
                        BinaryForm::StackJump => {
                            let target = u32_at!();
                            let slot = u16_at!() as u16;
                            let truthy = match self.binary_stack_test(bop, ic_base, slot) {
                                Some(t) => t,
                                None => {
                                    let left = self.fiber.stack.len() - 2;
                                    try_op!(self.binary_test_slow(bop, left, None, 2, ic_base, slot))
                                }
                            };
                            if !truthy {
                                ip = target;
                            }
                        }
                        BinaryForm::ConstJump => {
                            let k = u16_at!();
                            let target = u32_at!();
                            let slot = u16_at!() as u16;
                            let truthy = match self.binary_const_test(bop, &consts[k], ic_base, slot) {
                                Some(t) => t,
                                None => {
                                    let left = self.fiber.stack.len() - 1;
                                    try_op!(self.binary_test_slow(bop, left, Some(&consts[k]), 1, ic_base, slot))
                                }
                            };
                            if !truthy {
                                ip = target;
                            }
                        }
                        BinaryForm::LocalConstJump => {
                            let local = base + u16_at!();
                            let k = u16_at!();
                            let target = u32_at!();
                            let slot = u16_at!() as u16;
                            let truthy = match self.binary_local_const_test(bop, local, &consts[k], ic_base, slot) {
                                Some(t) => t,
                                None => try_op!(self.binary_test_slow(bop, local, Some(&consts[k]), 0, ic_base, slot)),
                            };
                            if !truthy {
                                ip = target;
                            }
                        }
                    }
                }};
            }

            #[cfg(feature = "op-pair-stats")]
            let mut prev_op: Option<Op> = None;
            loop {
                op_at = ip;
                debug_assert!(ip < code.len(), "ip {ip} past the end of the code");
                // SAFETY: every instruction is written whole by `Chunk::emit`, the
                // last one is a `RETURN`, and jumps target instruction starts, so
                // `ip` is always an opcode byte inside `code`.
                let op = unsafe { Op::decode_unchecked(*code.get_unchecked(ip)) };
                ip += 1;
                #[cfg(feature = "op-pair-stats")]
                {
                    if let Some(prev) = prev_op {
                        OP_PAIRS.with(|pairs| pairs.borrow_mut()[prev as usize * Op::COUNT + op as usize] += 1);
                    }
                    prev_op = Some(op);
                }
                match op {
                    Op::Const => {
                        let k = u16_at!();
                        self.fiber.stack.push(consts[k].dup());
                    }
                    Op::Nil => self.fiber.stack.push(Value::Nil),
                    Op::True => self.fiber.stack.push(Value::Bool(true)),
                    Op::False => self.fiber.stack.push(Value::Bool(false)),
                    Op::Pop => discard_top(&mut self.fiber.stack),
                    Op::Dup => {
                        let v = top!().clone();
                        self.fiber.stack.push(v);
                    }
                    Op::Swap => {
                        let n = self.fiber.stack.len();
                        self.fiber.stack.swap(n - 1, n - 2);
                    }

                    Op::GetLocal => {
                        let slot = u16_at!();
                        let v = at!(base + slot).dup();
                        self.fiber.stack.push(v);
                    }
                    Op::MoveLocal => {
                        let slot = u16_at!();
                        let v = std::mem::replace(at_mut!(base + slot), Value::Nil);
                        self.fiber.stack.push(v);
                    }
                    Op::SetLocal => {
                        let slot = u16_at!();
                        let v = pop!();
                        store(at_mut!(base + slot), v);
                    }
                    Op::GetCapture => {
                        let i = u16_at!();
                        self.fiber.stack.push(closure.captures[i].dup());
                    }
                    Op::GetSelf => self.fiber.stack.push(Value::Closure(Rc::clone(&closure))),
                    Op::GetGlobal => try_op!(self.get_global(&closure, u16_at!())),
                    Op::SetGlobal => self.set_global(&closure, u16_at!()),
                    Op::GetLocalCell => self.get_local_cell(base + u16_at!()),
                    Op::SetLocalCell => self.set_local_cell(base + u16_at!()),
                    Op::NewCell => self.new_cell(base + u16_at!()),
                    Op::GetCaptureCell => self.get_capture_cell(&closure, u16_at!()),
                    Op::GetBuiltin => {
                        let id = u16_at!();
                        self.fiber.stack.push(Value::Builtin(id as u32));
                    }
                    Op::ThrowUndefined => try_op!(Err(self.undefined_variable(const_name(consts, u16_at!())))),
                    Op::ThrowUndefinedBuiltin => try_op!(Err(errors::undefined_builtin(const_name(consts, u16_at!())))),
                    Op::ThrowImmutable => try_op!(Err(errors::immutable_assignment(const_name(consts, u16_at!())))),
                    Op::ThrowRedeclare => try_op!(Err(errors::redeclare(const_name(consts, u16_at!())))),

                    Op::Add => binary!(Op::Add),
                    Op::Sub => binary!(Op::Sub),
                    Op::Mul => binary!(Op::Mul),
                    Op::Div => binary!(Op::Div),
                    Op::Mod => binary!(Op::Mod),
                    Op::AddConst => binary!(Op::AddConst),
                    Op::SubConst => binary!(Op::SubConst),
                    Op::MulConst => binary!(Op::MulConst),
                    Op::DivConst => binary!(Op::DivConst),
                    Op::ModConst => binary!(Op::ModConst),
                    Op::Pow => {
                        let b = pop!();
                        let a = top!();
                        *a = try_op!(ops::pow(a, &b));
                    }
                    Op::Neg => {
                        let a = top!();
                        *a = match &*a {
                            Value::Int(x) if *x != i64::MIN => Value::Int(-x),
                            _ => try_op!(ops::neg(a)),
                        };
                    }
                    Op::Not => {
                        let a = top!();
                        *a = Value::Bool(!a.is_truthy());
                    }
                    Op::Eq => binary!(Op::Eq),
                    Op::Ne => binary!(Op::Ne),
                    Op::Lt => binary!(Op::Lt),
                    Op::Gt => binary!(Op::Gt),
                    Op::Le => binary!(Op::Le),
                    Op::Ge => binary!(Op::Ge),
                    Op::EqConst => binary!(Op::EqConst),
                    Op::NeConst => binary!(Op::NeConst),
                    Op::LtConst => binary!(Op::LtConst),
                    Op::GtConst => binary!(Op::GtConst),
                    Op::LeConst => binary!(Op::LeConst),
                    Op::GeConst => binary!(Op::GeConst),
                    Op::EqJumpIfFalse => binary!(Op::EqJumpIfFalse),
                    Op::NeJumpIfFalse => binary!(Op::NeJumpIfFalse),
                    Op::LtJumpIfFalse => binary!(Op::LtJumpIfFalse),
                    Op::GtJumpIfFalse => binary!(Op::GtJumpIfFalse),
                    Op::LeJumpIfFalse => binary!(Op::LeJumpIfFalse),
                    Op::GeJumpIfFalse => binary!(Op::GeJumpIfFalse),
                    Op::EqConstJumpIfFalse => binary!(Op::EqConstJumpIfFalse),
                    Op::NeConstJumpIfFalse => binary!(Op::NeConstJumpIfFalse),
                    Op::LtConstJumpIfFalse => binary!(Op::LtConstJumpIfFalse),
                    Op::GtConstJumpIfFalse => binary!(Op::GtConstJumpIfFalse),
                    Op::LeConstJumpIfFalse => binary!(Op::LeConstJumpIfFalse),
                    Op::GeConstJumpIfFalse => binary!(Op::GeConstJumpIfFalse),
                    Op::EqLocalConstJumpIfFalse => binary!(Op::EqLocalConstJumpIfFalse),
                    Op::NeLocalConstJumpIfFalse => binary!(Op::NeLocalConstJumpIfFalse),
                    Op::LtLocalConstJumpIfFalse => binary!(Op::LtLocalConstJumpIfFalse),
                    Op::GtLocalConstJumpIfFalse => binary!(Op::GtLocalConstJumpIfFalse),
                    Op::LeLocalConstJumpIfFalse => binary!(Op::LeLocalConstJumpIfFalse),
                    Op::GeLocalConstJumpIfFalse => binary!(Op::GeLocalConstJumpIfFalse),
                    Op::AddLocal => binary!(Op::AddLocal),
                    Op::SubLocal => binary!(Op::SubLocal),
                    Op::MulLocal => binary!(Op::MulLocal),
                    Op::AddConstToLocal => binary!(Op::AddConstToLocal),
                    Op::SubConstFromLocal => binary!(Op::SubConstFromLocal),
                    Op::In | Op::NotIn => self.contains(op == Op::NotIn),
                    Op::ToBool => {
                        let a = top!();
                        *a = Value::Bool(a.is_truthy());
                    }
                    Op::BuildRange => try_op!(self.build_range(u8_at!() == 1)),

                    Op::Jump => {
                        let target = u32_at!();
                        // `<=`: `while true {}` is a jump to itself.
                        if target <= op_at {
                            try_op!(self.tick_back_jump());
                        }
                        ip = target;
                    }
                    Op::JumpIfFalse => {
                        let target = u32_at!();
                        if !self.fiber.stack.last().expect("stack underflow").is_truthy() {
                            ip = target;
                        }
                        discard_top(&mut self.fiber.stack);
                    }
                    Op::JumpIfTrue => {
                        let target = u32_at!();
                        if self.fiber.stack.last().expect("stack underflow").is_truthy() {
                            ip = target;
                        }
                        discard_top(&mut self.fiber.stack);
                    }
                    Op::JumpIfNotNil => {
                        let target = u32_at!();
                        if top!().is_nil() {
                            pop!();
                        } else {
                            ip = target;
                        }
                    }
                    Op::JumpIfNil => {
                        let target = u32_at!();
                        if top!().is_nil() {
                            ip = target;
                        }
                    }

                    Op::Call => {
                        let argc = u8_at!();
                        let slot = u16_at!() as u16;
                        save_ip!();
                        switch_if!(self.call(argc, ic_base, slot));
                    }
                    Op::CallBuiltin => {
                        let id = u16_at!() as u32;
                        let argc = u8_at!();
                        let slot = u16_at!() as u16;
                        save_ip!();
                        switch_if!(self.call_builtin(id, argc, ic_base, slot));
                    }
                    Op::CallSpread => {
                        save_ip!();
                        switch_if!(self.call_spread());
                    }
                    Op::Pipe => {
                        save_ip!();
                        switch_if!(self.pipe());
                    }
                    Op::TailCall => {
                        let argc = u8_at!();
                        let callee_at = self.fiber.stack.len() - argc - 1;
                        if matches!(at!(callee_at), Value::Closure(c) if Rc::ptr_eq(c, &closure) && !c.proto.is_generator) {
                            // A self tail call restarts this frame in place: the
                            // old locals and the callee copy go, the arguments
                            // move down to the frame's base.
                            self.fiber.stack.drain(base..=callee_at);
                            ip = 0;
                            try_op!(self.restart_frame(frame_index, proto, base));
                            continue;
                        }
                        let target = match at!(callee_at) {
                            Value::Closure(c) if !c.proto.is_generator => Some(c.clone()),
                            _ => None,
                        };
                        if let Some(target) = target {
                            // Reuse this frame: move callee and args down over it.
                            let frame = self.fiber.frames.pop().expect("current frame");
                            self.fiber.stack.drain(frame.base - 1..callee_at);
                            if let Err(e) = self.push_frame(target, argc as u32, frame.cont) {
                                // Restore a frame so the error has a location to unwind from.
                                self.fiber.frames.push(Frame {
                                    closure: Rc::clone(&closure),
                                    ip,
                                    base,
                                    argc: 0,
                                    cont: None,
                                    ic_set,
                                });
                                return Exit::Error(e, op_at);
                            }
                            continue 'frame;
                        }
                        save_ip!();
                        switch_if!(self.call_value(argc));
                    }
                    Op::Return => {
                        let value = pop!();
                        // Inline when this is not the run's outermost frame (so
                        // not a generator body's either), no handler of this
                        // frame is left and no output waits to be flushed.
                        let depth = frame_index;
                        let inline = depth > stop_depth
                            && self.fiber.handlers.last().is_none_or(|h| h.frame_depth <= depth)
                            && self.fiber.output.is_empty();
                        if inline {
                            if self.fiber.frames[frame_index].cont.is_none() {
                                // The common case: back to the Harn caller that made the call.
                                self.fiber.frames.pop();
                                drop_frame_values(&mut self.fiber.stack, base - 1);
                                self.fiber.stack.push(value);
                                continue 'frame;
                            }
                            let cont = self.fiber.frames[frame_index].cont.take().expect("checked above");
                            // A callback of a builtin loop (`xs.map(f)`): when the loop
                            // calls the same closure again, this frame is reused for
                            // the next call instead of popped and pushed.
                            let flow = match self.resume(cont, value) {
                                Ok(Flow::Call { callee, args, then }) if matches!(&callee, Value::Closure(c) if Rc::ptr_eq(c, &closure)) =>
                                {
                                    drop(callee);
                                    self.fiber.stack.truncate(base);
                                    self.fiber.stack.extend(args);
                                    self.fiber.frames[frame_index].cont = Some(then);
                                    if !self.fiber.output.is_empty() {
                                        self.flush_output();
                                    }
                                    ip = 0;
                                    try_op!(self.restart_frame(frame_index, proto, base));
                                    continue;
                                }
                                flow => flow,
                            };
                            self.fiber.frames.pop();
                            self.fiber.stack.truncate(base - 1);
                            let finished = flow.and_then(|flow| self.finish_native(flow));
                            match finished {
                                Ok(_) => continue 'frame,
                                Err(e) => return self.native_error(e),
                            }
                        }
                        match self.return_from_frame(value, stop_depth) {
                            // Back in the caller's frame: go on here.
                            Exit::Switch => continue 'frame,
                            exit => return exit,
                        }
                    }
                    Op::Closure => self.make_closure(proto, &closure, base, u16_at!()),
                    Op::JumpIfArg => {
                        let index = u8_at!();
                        let target = u32_at!();
                        if (index as u32) < self.fiber.frames[frame_index].argc {
                            ip = target;
                        }
                    }

                    Op::CallMethod | Op::CallMethodOpt => {
                        let name_idx = u16_at!();
                        let argc = u8_at!();
                        let slot = u16_at!() as u16;
                        if op == Op::CallMethodOpt && self.nil_receiver(argc) {
                            continue;
                        }
                        save_ip!();
                        switch_if!(self.call_method_cached(consts, name_idx, argc, ic_base, slot));
                    }
                    Op::CallMethodSpread => {
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        save_ip!();
                        switch_if!(self.call_method_spread(consts, name_idx, ic_base, slot));
                    }

                    Op::BuildList => self.build_list(u16_at!()),
                    Op::ListAppend => self.list_append(),
                    Op::ListExtend => try_op_saved!(self.list_extend()),
                    Op::BuildDict => self.build_dict(u16_at!()),
                    Op::DictInsert => self.dict_insert(),
                    Op::DictExtend => try_op_saved!(self.dict_extend()),
                    Op::Concat => try_op!(self.concat(u16_at!())),
                    Op::BuildEnum => {
                        let name = const_name(consts, u16_at!());
                        self.build_enum(name, u8_at!());
                    }
                    Op::BuildStruct => try_op!(self.build_struct(const_name(consts, u16_at!()))),
                    Op::BuildStructFields => {
                        let name = const_name(consts, u16_at!());
                        try_op!(self.build_struct_fields(name, u16_at!()));
                    }
                    Op::DefineStruct => self.define_struct(const_name(consts, u16_at!())),
                    Op::DefineImpl => self.define_impl(const_name(consts, u16_at!())),

                    Op::GetProp | Op::GetPropOpt => {
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        try_op!(self.get_prop(consts, name_idx, op == Op::GetPropOpt, ic_base, slot));
                    }
                    Op::GetLocalProp => {
                        let local = base + u16_at!();
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        try_op!(self.get_local_prop(consts, local, name_idx, ic_base, slot));
                    }
                    Op::Index | Op::IndexOpt => try_op!(self.index(op == Op::IndexOpt)),
                    Op::Slice => try_op!(self.slice()),
                    Op::SetPathLocal => {
                        let local = base + u16_at!();
                        try_op!(self.set_path_local(local, u8_at!()));
                    }
                    Op::SetPathGlobal => {
                        let g = u16_at!();
                        try_op!(self.set_path_global(&closure, g, u8_at!()));
                    }
                    Op::SetLocalField => {
                        let local = base + u16_at!();
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        try_op!(self.set_local_field(consts, local, name_idx, ic_base, slot));
                    }
                    Op::ListPushLocal => {
                        let local = base + u16_at!();
                        let target = u32_at!();
                        if try_op!(self.list_push_local(local)) {
                            ip = target;
                        }
                    }
                    Op::ListExtendLocal => {
                        let local = base + u16_at!();
                        let n = u16_at!();
                        let target = u32_at!();
                        if try_op!(self.list_extend_local(local, n)) {
                            ip = target;
                        }
                    }

                    Op::IterInit => self.iter_init(base + u16_at!()),
                    Op::IterNext => {
                        let slot = base + u16_at!();
                        let target = u32_at!();
                        let outcome = if sched::is_channel_like(&self.fiber.stack[slot]) {
                            save_ip!();
                            try_op!(self.iter_next_channel(slot))
                        } else {
                            let step = match &self.fiber.stack[slot] {
                                Value::Object(o) => iter::for_step(o),
                                _ => iter::ForStep::End,
                            };
                            match step {
                                iter::ForStep::Item(v) => Some(v),
                                iter::ForStep::End => None,
                                iter::ForStep::Collect => iter::decode_next(pop!()),
                                iter::ForStep::Pull => match try_op!(self.iter_pull(slot)) {
                                    Flow::Done(v) => iter::decode_next(v),
                                    flow => {
                                        // Harn code must run first; this instruction
                                        // runs again to collect the outcome.
                                        ip = op_at;
                                        save_ip!();
                                        switch_if!(self.finish_native(flow));
                                        continue;
                                    }
                                },
                            }
                        };
                        match outcome {
                            Some(v) => self.fiber.stack.push(v),
                            None => {
                                self.fiber.stack[slot] = Value::Nil;
                                ip = target;
                            }
                        }
                        try_op!(self.tick());
                    }
                    Op::Yield => {
                        let v = pop!();
                        if !self.in_generator() {
                            // The compiler only emits YIELD in generator bodies; hand-made bytecode may not.
                            try_op!(Err(errors::yield_outside_generator()));
                        }
                        save_ip!();
                        return self.yield_value(v);
                    }

                    Op::TryBegin => self.try_begin(u32_at!()),
                    Op::TryEnd => {
                        self.fiber.handlers.pop();
                    }
                    Op::Throw => try_op_saved!(Err(self.throw())),
                    Op::Rethrow => try_op_saved!(Err(self.rethrow())),
                    Op::ErrValue => self.err_value(),
                    Op::ErrIs => self.err_is(const_name(consts, u16_at!())),
                    Op::WrapOk => self.wrap_ok(),
                    Op::WrapErr => self.wrap_err(),
                    Op::TryUnwrap => {
                        if let Some(err) = try_op!(self.try_unwrap()) {
                            // Propagate the Err out of the current function.
                            return self.return_from_frame(err, stop_depth);
                        }
                    }
                    Op::SaveHeight => {
                        let slot = u16_at!();
                        let h = self.fiber.stack.len() as i64;
                        self.fiber.stack[base + slot] = Value::Int(h);
                    }
                    Op::RestoreHeight => {
                        let slot = u16_at!();
                        if let Value::Int(h) = self.fiber.stack[base + slot] {
                            self.fiber.stack.truncate(h as usize);
                        }
                    }

                    Op::IsVariant => self.is_variant(const_name(consts, u16_at!())),
                    Op::IsType => self.is_type(const_name(consts, u16_at!())),
                    Op::CheckDestructure => try_op!(self.check_destructure(u8_at!() == 1)),
                    Op::DictRest => self.dict_rest(),
                    Op::ImportModule => {
                        let k = u16_at!();
                        save_ip!();
                        switch_if!(self.start_import(&consts[k]));
                    }
                    Op::BindImports => try_op!(self.bind_imports(&consts[u16_at!()], &closure.module)),
                    Op::CheckParam => try_op!(self.check_param(const_name(consts, u16_at!()))),
                    Op::CallHost => {
                        let name = const_name(consts, u16_at!());
                        let argc = u8_at!();
                        save_ip!();
                        try_op!(self.call_host_op(name, argc));
                    }
                }
            }
        }
    }

    /// Pops the current frame and delivers `value` to its caller.
    pub(in crate::vm) fn return_from_frame(&mut self, value: Value, stop_depth: usize) -> Exit {
        let frame = self.fiber.frames.pop().expect("returning frame");
        self.fiber.stack.truncate(frame.base - 1);
        let depth = self.fiber.frames.len();
        while self.fiber.handlers.last().is_some_and(|h| h.frame_depth > depth) {
            self.fiber.handlers.pop();
        }
        if self.in_generator() {
            if depth == 0 {
                return self.generator_returned();
            }
        } else if depth == stop_depth {
            return Exit::Done(value);
        }
        let flow = match frame.cont {
            Some(cont) => match self.resume(cont, value) {
                Ok(flow) => flow,
                Err(e) => return self.native_error(e),
            },
            None => {
                // A Harn caller: what `finish_native(Flow::Done(value))` does, inline.
                if !self.fiber.output.is_empty() {
                    self.flush_output();
                }
                self.fiber.stack.push(value);
                return Exit::Switch;
            }
        };
        match self.finish_native(flow) {
            Ok(_) => Exit::Switch,
            Err(e) => self.native_error(e),
        }
    }

    /// An error raised by a builtin continuation: it belongs to the call
    /// instruction of the frame that is now on top.
    pub(in crate::vm) fn native_error(&mut self, e: VmError) -> Exit {
        let at = self.fiber.frames.last().map_or(0, |f| f.ip.saturating_sub(1));
        Exit::Error(e, at)
    }
}

/// Stack slot `i`, unchecked: the compiler emits balanced code, so every op
/// finds the operands and locals it reads (checked in debug builds).
#[inline(always)]
fn at(stack: &[Value], i: usize) -> &Value {
    debug_assert!(i < stack.len(), "stack slot {i} out of range");
    // SAFETY: see above.
    unsafe { stack.get_unchecked(i) }
}

/// `at` for writing.
#[inline(always)]
fn at_mut(stack: &mut [Value], i: usize) -> &mut Value {
    debug_assert!(i < stack.len(), "stack slot {i} out of range");
    // SAFETY: see `at`.
    unsafe { stack.get_unchecked_mut(i) }
}

/// Pops the top value, unchecked (see `at`).
#[inline(always)]
fn pop(stack: &mut Vec<Value>) -> Value {
    let n = stack.len();
    debug_assert!(n > 0, "stack underflow");
    // SAFETY: see `at`; the length drops first, so the slot is moved out exactly once.
    unsafe {
        stack.set_len(n - 1);
        std::ptr::read(stack.as_ptr().add(n - 1))
    }
}

/// The top value, for rewriting in place (see `at`).
#[inline(always)]
fn top(stack: &mut [Value]) -> &mut Value {
    let n = stack.len();
    at_mut(stack, n - 1)
}
