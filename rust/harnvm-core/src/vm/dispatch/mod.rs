//! The dispatch loop: `run_frame` decodes each instruction and runs its
//! handler. Frames live on the fiber's explicit stack, so a Harn call or
//! return only switches which frame the loop reads (`continue 'frame`);
//! nothing recurses on the Rust stack.
//!
//! The handlers are grouped by op family: `arith` (the adaptive binary ops
//! in all their forms, from `define_ops!`'s family column), `access`
//! (properties, indexing, collections, declarations), `calls` (calls and
//! returns) and `control` (exceptions, results, type tests). Hot handlers are
//! `#[inline(always)]`, so the match compiles to the same code as if they
//! were written in it; slow paths and error construction are out of line.

mod arith;
mod errors;

use std::rc::Rc;

use super::*;
use crate::bytecode::chunk::BinaryForm;
use crate::runtime::ops::BinaryOp;

impl Vm {
    /// Runs until the frame at depth `stop_depth` returns.
    pub(in crate::vm) fn execute(&mut self, stop_depth: usize) -> VmResult<Value> {
        let outer_floor = std::mem::replace(&mut self.park_floor, self.parked.len());
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
            let closure = self.fiber.frames[frame_index].closure.clone();
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
            macro_rules! name_at {
                () => {{
                    let i = u16_at!();
                    match &consts[i] {
                        Value::Str(s) => s.clone(),
                        _ => unreachable!("name operand must be a string constant"),
                    }
                }};
            }
            macro_rules! stack {
                () => {
                    self.fiber.stack
                };
            }
            // Stack slots by index, unchecked: the compiler emits balanced
            // code, so every op finds the operands and locals it reads
            // (checked in debug builds; chunks only come from the compiler).
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
                    let n = stack!().len();
                    debug_assert!(n > 0, "stack underflow");
                    // SAFETY: see `at!`; the length drops first, so the slot is moved out exactly once.
                    unsafe {
                        stack!().set_len(n - 1);
                        std::ptr::read(stack!().as_ptr().add(n - 1))
                    }
                }};
            }
            macro_rules! top {
                () => {
                    at_mut!(stack!().len() - 1)
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
                        stack!().push(consts[k].dup());
                    }
                    Op::Nil => stack!().push(Value::Nil),
                    Op::True => stack!().push(Value::Bool(true)),
                    Op::False => stack!().push(Value::Bool(false)),
                    Op::Pop => discard_top(&mut stack!()),
                    Op::Dup => {
                        let v = top!().clone();
                        stack!().push(v);
                    }
                    Op::Swap => {
                        let n = stack!().len();
                        stack!().swap(n - 1, n - 2);
                    }

                    Op::GetLocal => {
                        let slot = u16_at!();
                        let v = at!(base + slot).dup();
                        stack!().push(v);
                    }
                    Op::SetLocal => {
                        let slot = u16_at!();
                        let v = pop!();
                        store(at_mut!(base + slot), v);
                    }
                    Op::GetCapture => {
                        let i = u16_at!();
                        stack!().push(closure.captures[i].dup());
                    }
                    Op::GetSelf => stack!().push(Value::Closure(closure.clone())),
                    Op::GetGlobal => {
                        let g = u16_at!();
                        let module = &closure.module;
                        let v = module.globals.borrow()[g].clone();
                        if v.is_nil() && !module.defined.borrow()[g] {
                            try_op!(Err(self.undefined_variable(&module.names[g])));
                        }
                        stack!().push(v);
                    }
                    Op::SetGlobal => {
                        let g = u16_at!();
                        let v = pop!();
                        closure.module.globals.borrow_mut()[g] = v;
                        closure.module.defined.borrow_mut()[g] = true;
                    }
                    Op::GetLocalCell => {
                        let slot = u16_at!();
                        let v = match &stack!()[base + slot] {
                            Value::Object(o) => match &**o {
                                Object::Cell(c) => c.borrow().clone(),
                                _ => Value::Nil,
                            },
                            _ => Value::Nil,
                        };
                        stack!().push(v);
                    }
                    Op::SetLocalCell => {
                        let slot = u16_at!();
                        let v = pop!();
                        if let Value::Object(o) = &stack!()[base + slot] {
                            if let Object::Cell(c) = &**o {
                                *c.borrow_mut() = v;
                            }
                        }
                    }
                    Op::NewCell => {
                        let slot = u16_at!();
                        stack!()[base + slot] = Value::Object(Rc::new(Object::Cell(Default::default())));
                    }
                    Op::GetCaptureCell => {
                        let i = u16_at!();
                        let v = match &closure.captures[i] {
                            Value::Object(o) => match &**o {
                                Object::Cell(c) => c.borrow().clone(),
                                _ => Value::Nil,
                            },
                            other => other.clone(),
                        };
                        stack!().push(v);
                    }
                    Op::GetBuiltin => {
                        let id = u16_at!();
                        stack!().push(Value::Builtin(id as u32));
                    }
                    Op::ThrowUndefined => {
                        let name = name_at!();
                        try_op!(Err(self.undefined_variable(&name)));
                    }
                    Op::ThrowUndefinedBuiltin => {
                        let text = name_at!();
                        try_op!(Err(errors::undefined_builtin(&text)));
                    }
                    Op::ThrowImmutable => {
                        let name = name_at!();
                        try_op!(Err(errors::immutable_assignment(&name)));
                    }
                    Op::ThrowRedeclare => {
                        let name = name_at!();
                        try_op!(Err(errors::redeclare(&name)));
                    }

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
                    Op::In | Op::NotIn => {
                        let coll = pop!();
                        let item = top!();
                        let found = ops::contains(item, &coll);
                        *item = Value::Bool(found == (op == Op::In));
                    }
                    Op::ToBool => {
                        let a = top!();
                        *a = Value::Bool(a.is_truthy());
                    }
                    Op::BuildRange => {
                        let inclusive = u8_at!() == 1;
                        let end = pop!();
                        let start = top!();
                        *start = match (&*start, &end) {
                            (Value::Int(s), Value::Int(e)) => Value::range(*s, *e, inclusive),
                            (s, e) => try_op!(Err(errors::range_bounds(s, e))),
                        };
                    }

                    Op::Jump => {
                        let target = u32_at!();
                        // `<=`: `while true {}` is a jump to itself.
                        if target <= op_at {
                            try_op!(self.tick());
                        }
                        ip = target;
                    }
                    Op::JumpIfFalse => {
                        let target = u32_at!();
                        if !stack!().last().expect("stack underflow").is_truthy() {
                            ip = target;
                        }
                        discard_top(&mut stack!());
                    }
                    Op::JumpIfTrue => {
                        let target = u32_at!();
                        if stack!().last().expect("stack underflow").is_truthy() {
                            ip = target;
                        }
                        discard_top(&mut stack!());
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
                        if let Some(entry) = self.ic.entry_at(ic_base, slot) {
                            let callee = at!(self.fiber.stack.len() - argc - 1);
                            // A specialized hit on a plain closure pushes its frame directly.
                            if ic::observe_call(entry, argc as u32, callee) {
                                if let Value::Closure(c) = callee {
                                    if !c.proto.is_generator {
                                        let c = c.clone();
                                        try_op!(self.push_frame(c, argc as u32, None));
                                        continue 'frame;
                                    }
                                }
                            }
                        }
                        if try_op!(self.call_value(argc)) {
                            continue 'frame;
                        }
                    }
                    Op::CallBuiltin => {
                        let id = u16_at!() as u32;
                        let argc = u8_at!();
                        let slot = u16_at!() as u16;
                        if let Some(entry) = self.ic.entry_at(ic_base, slot) {
                            ic::observe_call(entry, argc as u32, &Value::Builtin(id));
                        }
                        save_ip!();
                        let args_at = stack!().len() - argc;
                        let flow = try_op!(self.invoke_builtin(id, args_at));
                        stack!().truncate(args_at);
                        if try_op!(self.finish_native(flow)) {
                            continue 'frame;
                        }
                    }
                    Op::CallSpread => {
                        let args = pop!();
                        let argc = try_op!(push_spread_args(&mut stack!(), &args));
                        save_ip!();
                        if try_op!(self.call_value(argc)) {
                            continue 'frame;
                        }
                    }
                    Op::Pipe => {
                        let callee = pop!();
                        if !callee.is_callable() {
                            try_op!(Err(errors::pipe_target(&callee)));
                        }
                        let arg = pop!();
                        stack!().push(callee);
                        stack!().push(arg);
                        save_ip!();
                        if try_op!(self.call_value(1)) {
                            continue 'frame;
                        }
                    }
                    Op::TailCall => {
                        let argc = u8_at!();
                        let callee_at = stack!().len() - argc - 1;
                        if matches!(at!(callee_at), Value::Closure(c) if Rc::ptr_eq(c, &closure) && !c.proto.is_generator) {
                            // A self tail call restarts this frame in place: the
                            // old locals and the callee copy go, the arguments
                            // move down to the frame's base.
                            stack!().drain(base..=callee_at);
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
                            stack!().drain(frame.base - 1..callee_at);
                            if let Err(e) = self.push_frame(target, argc as u32, frame.cont) {
                                // Restore a frame so the error has a location to unwind from.
                                self.fiber.frames.push(Frame { closure: closure.clone(), ip, base, argc: 0, cont: None, ic_set });
                                return Exit::Error(e, op_at);
                            }
                            continue 'frame;
                        }
                        save_ip!();
                        if try_op!(self.call_value(argc)) {
                            continue 'frame;
                        }
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
                                self.fiber.stack.truncate(base - 1);
                                stack!().push(value);
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
                    Op::Closure => {
                        let f = u16_at!();
                        let child = proto.chunk.functions[f].clone();
                        let captures: Box<[Value]> = child
                            .captures
                            .iter()
                            .map(|src| match *src {
                                CaptureSource::Local(slot) => self.fiber.stack[base + slot as usize].clone(),
                                CaptureSource::Capture(i) => closure.captures[i as usize].clone(),
                                CaptureSource::SelfClosure => Value::Closure(closure.clone()),
                            })
                            .collect();
                        stack!().push(Value::Closure(Rc::new(Closure {
                            proto: child,
                            captures,
                            module: closure.module.clone(),
                        })));
                    }
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
                        let recv_at = stack!().len() - argc - 1;
                        if op == Op::CallMethodOpt && stack!()[recv_at].is_nil() {
                            stack!().truncate(recv_at);
                            stack!().push(Value::Nil);
                            continue;
                        }
                        save_ip!();
                        let switched = try_op!(self.call_method_cached(consts, name_idx, argc, ic_base, slot));
                        if switched {
                            continue 'frame;
                        }
                    }
                    Op::CallMethodSpread => {
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        let args = pop!();
                        let argc = try_op!(push_spread_args(&mut stack!(), &args));
                        save_ip!();
                        let switched = if argc <= u8::MAX as usize {
                            try_op!(self.call_method_cached(consts, name_idx, argc, ic_base, slot))
                        } else {
                            try_op!(self.call_method(const_name(consts, name_idx), argc))
                        };
                        if switched {
                            continue 'frame;
                        }
                    }

                    Op::BuildList => {
                        let n = u16_at!();
                        let at = stack!().len() - n;
                        let items: Vec<Value> = stack!().drain(at..).collect();
                        stack!().push(Value::list(items));
                    }
                    Op::ListAppend => {
                        let v = pop!();
                        if let Value::List(items) = top!() {
                            Rc::make_mut(items).push(v);
                        }
                    }
                    Op::ListExtend => {
                        let other = pop!();
                        let Value::List(more) = &other else {
                            try_op!(Err(errors::destructure(&other, true)));
                            unreachable!()
                        };
                        if let Value::List(items) = top!() {
                            Rc::make_mut(items).extend(more.iter().cloned());
                        }
                    }
                    Op::BuildDict => {
                        let n = u16_at!();
                        let at = stack!().len() - 2 * n;
                        let mut map = DictMap::new();
                        let mut pairs = stack!().drain(at..);
                        while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
                            map.insert(dict_key(&k), v);
                        }
                        drop(pairs);
                        stack!().push(Value::dict(map));
                    }
                    Op::DictInsert => {
                        let v = pop!();
                        let k = pop!();
                        if let Value::Dict(map) = top!() {
                            Rc::make_mut(map).insert(dict_key(&k), v);
                        }
                    }
                    Op::DictExtend => {
                        let other = pop!();
                        let entries: Vec<(HStr, Value)> = match &other {
                            Value::Dict(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                            Value::Struct(s) => s.layout.fields.iter().cloned().zip(s.values.iter().cloned()).collect(),
                            _ => try_op!(Err(errors::destructure(&other, false))),
                        };
                        if let Value::Dict(map) = top!() {
                            Rc::make_mut(map).extend(entries);
                        }
                    }
                    Op::Concat => {
                        let n = u16_at!();
                        let at = stack!().len() - n;
                        // Sized up front (strings exactly, anything else at
                        // an int's longest, 20 bytes), so building the string
                        // usually does not reallocate as it grows.
                        let guess: usize = stack!()[at..]
                            .iter()
                            .map(|v| match v {
                                Value::Str(s) => s.len(),
                                _ => 20,
                            })
                            .sum();
                        let mut s = String::with_capacity(guess);
                        for v in &stack!()[at..] {
                            v.write_display(&mut s);
                        }
                        stack!().truncate(at);
                        stack!().push(Value::str(s));
                    }
                    Op::BuildEnum => {
                        let name = name_at!();
                        let n = u8_at!();
                        let at = stack!().len() - n;
                        let fields: Vec<Value> = stack!().drain(at..).collect();
                        let (enum_name, variant) = name.split_once('.').unwrap_or(("", name.as_str()));
                        stack!().push(Value::enum_val(enum_name, variant, fields));
                    }
                    Op::BuildStruct => {
                        let name = name_at!();
                        let fields = pop!();
                        let v = try_op!(self.build_struct(&name, &fields));
                        stack!().push(v);
                    }
                    Op::DefineStruct => {
                        let name = name_at!();
                        let fields = pop!();
                        let names: Vec<HStr> = match &fields {
                            Value::List(items) => {
                                items.iter().filter_map(|f| f.as_str().map(|s| Rc::new(s.to_string()))).collect()
                            }
                            _ => Vec::new(),
                        };
                        self.structs.insert(name.to_string(), Rc::new(StructLayout { name: name.clone(), fields: names }));
                    }
                    Op::DefineImpl => {
                        let name = name_at!();
                        let methods = pop!();
                        if let Value::Dict(m) = &methods {
                            let merged = match self.impls.get(name.as_str()) {
                                Some(existing) => {
                                    let mut all = (**existing).clone();
                                    all.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                                    Rc::new(all)
                                }
                                None => m.clone(),
                            };
                            self.impls.insert(name.to_string(), merged);
                        }
                    }

                    Op::GetProp | Op::GetPropOpt => {
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        let name = const_name(consts, name_idx);
                        let obj = self.fiber.stack.last_mut().expect("stack underflow");
                        match self.ic.entry_at(ic_base, slot) {
                            Some(entry) => match ic::property_hit(entry, name_idx as u16, obj, name) {
                                Some(v) => *obj = v,
                                None => {
                                    let resolved = ic::PropertyTarget::resolve(obj, name);
                                    *obj = try_op!(ops::get_property(obj, name, op == Op::GetPropOpt));
                                    ic::property_learn(entry, name_idx as u16, resolved);
                                }
                            },
                            None => *obj = try_op!(ops::get_property(obj, name, op == Op::GetPropOpt)),
                        }
                    }
                    Op::GetLocalProp => {
                        let local = u16_at!();
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        let name = const_name(consts, name_idx);
                        // Read in place: the local is not copied (no reference-count traffic).
                        let obj = at!(base + local);
                        let v = match self.ic.entry_at(ic_base, slot) {
                            Some(entry) => match ic::property_hit(entry, name_idx as u16, obj, name) {
                                Some(v) => v,
                                None => {
                                    let resolved = ic::PropertyTarget::resolve(obj, name);
                                    let v = try_op!(ops::get_property(obj, name, false));
                                    ic::property_learn(entry, name_idx as u16, resolved);
                                    v
                                }
                            },
                            None => try_op!(ops::get_property(obj, name, false)),
                        };
                        stack!().push(v);
                    }
                    Op::Index | Op::IndexOpt => {
                        let idx = pop!();
                        let obj = top!();
                        *obj = try_op!(ops::index(obj, &idx, op == Op::IndexOpt));
                    }
                    Op::Slice => {
                        let end = pop!();
                        let start = pop!();
                        let obj = top!();
                        *obj = try_op!(ops::slice(obj, &start, &end));
                    }
                    Op::SetPathLocal => {
                        let slot = u16_at!();
                        let n = u8_at!();
                        let v = pop!();
                        let at = stack!().len() - n;
                        let keys: Vec<Value> = stack!().drain(at..).collect();
                        try_op!(ops::set_path(&mut self.fiber.stack[base + slot], &keys, v));
                    }
                    Op::SetPathGlobal => {
                        let g = u16_at!();
                        let n = u8_at!();
                        let v = pop!();
                        let at = stack!().len() - n;
                        let keys: Vec<Value> = stack!().drain(at..).collect();
                        try_op!(ops::set_path(&mut closure.module.globals.borrow_mut()[g], &keys, v));
                    }

                    Op::IterInit => {
                        let slot = u16_at!();
                        let iterable = pop!();
                        stack!()[base + slot] = if sched::is_channel_like(&iterable) {
                            // Channels are pulled by the scheduler (the loop may wait).
                            iterable
                        } else {
                            iter::for_loop_iter(&iterable)
                        };
                    }
                    Op::IterNext => {
                        let slot = u16_at!();
                        let target = u32_at!();
                        if sched::is_channel_like(&stack!()[base + slot]) {
                            let ch = stack!()[base + slot].clone();
                            save_ip!();
                            match try_op!(self.iter_channel(&ch)) {
                                Some(v) => stack!().push(v),
                                None => {
                                    stack!()[base + slot] = Value::Nil;
                                    ip = target;
                                }
                            }
                            try_op!(self.tick());
                            continue;
                        }
                        let step = match &stack!()[base + slot] {
                            Value::Object(o) => iter::for_step(o),
                            _ => iter::ForStep::End,
                        };
                        let outcome = match step {
                            iter::ForStep::Item(v) => Some(v),
                            iter::ForStep::End => None,
                            iter::ForStep::Collect => iter::decode_next(pop!()),
                            iter::ForStep::Pull => {
                                let Value::Object(node) = &stack!()[base + slot] else { unreachable!() };
                                let node = node.clone();
                                let flow = {
                                    let mut ctx = Ctx { output: &mut self.fiber.output, limits: &self.options.limits };
                                    try_op!(iter::Pull::start(&mut ctx, node.clone(), iter::Sink::Next))
                                };
                                match flow {
                                    Flow::Done(v) => iter::decode_next(v),
                                    flow => {
                                        // Harn code must run first; this instruction runs
                                        // again to collect the outcome.
                                        iter::set_awaiting(&node);
                                        ip = op_at;
                                        save_ip!();
                                        if try_op!(self.finish_native(flow)) {
                                            continue 'frame;
                                        }
                                        continue;
                                    }
                                }
                            }
                        };
                        match outcome {
                            Some(v) => stack!().push(v),
                            None => {
                                stack!()[base + slot] = Value::Nil;
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

                    Op::TryBegin => {
                        let catch_ip = u32_at!();
                        let frame_depth = self.fiber.frames.len();
                        let stack_len = stack!().len();
                        self.fiber.handlers.push(Handler { frame_depth, stack_len, catch_ip });
                    }
                    Op::TryEnd => {
                        self.fiber.handlers.pop();
                    }
                    Op::Throw => {
                        let v = pop!();
                        try_op!(Err(VmError::thrown(v)));
                    }
                    Op::Rethrow => {
                        let v = pop!();
                        let err = match &v {
                            Value::Object(o) => match &**o {
                                Object::Error(e) => e.clone(),
                                _ => VmError::thrown(v.clone()),
                            },
                            _ => VmError::thrown(v.clone()),
                        };
                        try_op!(Err(err));
                    }
                    Op::ErrValue => {
                        let v = top!();
                        if let Value::Object(o) = &*v {
                            if let Object::Error(e) = &**o {
                                let caught = e.catch_value();
                                *v = caught;
                            }
                        }
                    }
                    Op::ErrIs => {
                        let name = name_at!();
                        let matches = match top!() {
                            Value::Object(o) => match &**o {
                                Object::Error(e) => match e.thrown_value() {
                                    Some(Value::Enum(ev)) => *ev.enum_name == *name,
                                    _ => false,
                                },
                                _ => false,
                            },
                            _ => false,
                        };
                        stack!().push(Value::Bool(matches));
                    }
                    Op::WrapOk => {
                        let v = top!();
                        let is_result = matches!(&*v, Value::Enum(e) if e.enum_name.as_str() == "Result");
                        if !is_result {
                            let inner = std::mem::take(v);
                            *v = Value::ok(inner);
                        }
                    }
                    Op::WrapErr => {
                        let v = top!();
                        let caught = match &*v {
                            Value::Object(o) => match &**o {
                                Object::Error(e) => e.catch_value(),
                                _ => v.clone(),
                            },
                            other => other.clone(),
                        };
                        *v = Value::err(caught);
                    }
                    Op::TryUnwrap => {
                        let v = pop!();
                        match &v {
                            Value::Enum(e) if e.enum_name.as_str() == "Result" && e.variant.as_str() == "Ok" => {
                                stack!().push(e.fields.first().cloned().unwrap_or_default());
                            }
                            Value::Enum(e) if e.enum_name.as_str() == "Result" && e.variant.as_str() == "Err" => {
                                // Propagate the Err out of the current function.
                                return self.return_from_frame(v.clone(), stop_depth);
                            }
                            other => try_op!(Err(errors::not_a_result(other))),
                        }
                    }
                    Op::SaveHeight => {
                        let slot = u16_at!();
                        let h = stack!().len() as i64;
                        stack!()[base + slot] = Value::Int(h);
                    }
                    Op::RestoreHeight => {
                        let slot = u16_at!();
                        if let Value::Int(h) = stack!()[base + slot] {
                            stack!().truncate(h as usize);
                        }
                    }

                    Op::IsVariant => {
                        let name = name_at!();
                        let (enum_name, variant) = name.split_once('.').unwrap_or(("", name.as_str()));
                        let v = top!();
                        let m =
                            matches!(&*v, Value::Enum(e) if e.enum_name.as_str() == enum_name && e.variant.as_str() == variant);
                        *v = Value::Bool(m);
                    }
                    Op::IsType => {
                        let name = name_at!();
                        let v = top!();
                        let m = v.type_name() == name.as_str();
                        *v = Value::Bool(m);
                    }
                    Op::CheckDestructure => {
                        let want_list = u8_at!() == 1;
                        let v = &stack!()[stack!().len() - 1];
                        let ok =
                            if want_list { matches!(v, Value::List(_)) } else { matches!(v, Value::Dict(_) | Value::Struct(_)) };
                        if !ok {
                            try_op!(Err(errors::destructure(v, want_list)));
                        }
                    }
                    Op::DictRest => {
                        let keys = pop!();
                        let d = top!();
                        let taken: Vec<String> = match &keys {
                            Value::List(ks) => ks.iter().map(|k| k.display()).collect(),
                            _ => Vec::new(),
                        };
                        let rest: DictMap = match &*d {
                            Value::Dict(m) => m
                                .iter()
                                .filter(|(k, _)| !taken.iter().any(|t| t == k.as_str()))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            Value::Struct(s) => s
                                .layout
                                .fields
                                .iter()
                                .zip(s.values.iter())
                                .filter(|(k, _)| !taken.iter().any(|t| t == k.as_str()))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            _ => DictMap::new(),
                        };
                        *d = Value::dict(rest);
                    }
                    Op::ImportModule => {
                        let k = u16_at!();
                        save_ip!();
                        if try_op!(self.start_import(&consts[k])) {
                            continue 'frame;
                        }
                    }
                    Op::BindImports => {
                        let k = u16_at!();
                        try_op!(self.bind_imports(&consts[k], &closure.module));
                    }
                    Op::CheckParam => {
                        let name = name_at!();
                        let schema = pop!();
                        let v = pop!();
                        let impls = &self.impls;
                        let has_method =
                            |ty: &str, m: &str| impls.get(ty).is_some_and(|ms| ms.contains_key(&Rc::new(m.to_string())));
                        let validator =
                            crate::builtins::schema::Validator { lenient_numbers: true, has_method: Some(&has_method) };
                        let checked = validator.validate(&v, &schema);
                        try_op!(checked.map_err(|f| VmError::type_error(crate::builtins::schema::param_message(&name, &f))));
                    }
                    Op::CallHost => {
                        let name = name_at!();
                        let argc = u8_at!();
                        save_ip!();
                        let args_at = stack!().len() - argc;
                        let v = try_op!(self.call_host(&name, args_at));
                        stack!().truncate(args_at);
                        stack!().push(v);
                        if !self.fiber.output.is_empty() {
                            self.flush_output();
                        }
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

    fn build_struct(&self, name: &str, fields: &Value) -> VmResult<Value> {
        let layout = match self.structs.get(name) {
            Some(l) => l.clone(),
            None => return Err(VmError::runtime(format!("Unknown struct: {name}"))),
        };
        let values = match fields {
            Value::Dict(m) => layout.fields.iter().map(|f| m.get(f).cloned().unwrap_or_default()).collect(),
            Value::Struct(s) => layout.fields.iter().map(|f| s.get(f).cloned().unwrap_or_default()).collect(),
            _ => vec![Value::Nil; layout.fields.len()],
        };
        Ok(Value::Struct(Rc::new(StructVal { layout, values })))
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
