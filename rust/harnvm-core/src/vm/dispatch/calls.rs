//! Calls: of a value, a builtin, a method, the host; pipes and spread
//! arguments; and making closures. Each returns true when it pushed a
//! frame, so the loop switches to it. `RETURN` and `TAIL_CALL` stay in the
//! loop: they restart or leave the running frame.

use std::rc::Rc;

use super::super::{const_name, push_spread_args, Vm};
use super::{at, errors, pop};
use crate::bytecode::chunk::{CaptureSource, FunctionProto};
use crate::runtime::error::VmResult;
use crate::runtime::value::{Closure, Value};
use crate::vm::ic;

impl Vm {
    /// `callee args… -- result`. A site specialized on a plain closure
    /// pushes its frame directly; anything else goes through `call_value`.
    #[inline(always)]
    pub(super) fn call(&mut self, argc: usize, ic_base: usize, slot: u16) -> VmResult<bool> {
        if let Some(entry) = self.ic.entry_at(ic_base, slot) {
            let callee = at(&self.fiber.stack, self.fiber.stack.len() - argc - 1);
            if ic::observe_call(entry, argc as u32, callee) {
                if let Value::Closure(c) = callee {
                    if !c.proto.is_generator {
                        let c = c.clone();
                        self.push_frame(c, argc as u32, None)?;
                        return Ok(true);
                    }
                }
            }
        }
        self.call_value(argc)
    }

    /// `args… -- result` for builtin `id`.
    #[inline(always)]
    pub(super) fn call_builtin(&mut self, id: u32, argc: usize, ic_base: usize, slot: u16) -> VmResult<bool> {
        if let Some(entry) = self.ic.entry_at(ic_base, slot) {
            ic::observe_call(entry, argc as u32, &Value::Builtin(id));
        }
        let args_at = self.fiber.stack.len() - argc;
        let flow = self.invoke_builtin(id, args_at)?;
        self.fiber.stack.truncate(args_at);
        self.finish_native(flow)
    }

    /// `callee list -- result`: `f(...xs)`.
    #[cold]
    #[inline(never)]
    pub(super) fn call_spread(&mut self) -> VmResult<bool> {
        let args = pop(&mut self.fiber.stack);
        let argc = push_spread_args(&mut self.fiber.stack, &args)?;
        self.call_value(argc)
    }

    /// `arg callee -- result`: `arg |> callee`.
    #[inline(always)]
    pub(super) fn pipe(&mut self) -> VmResult<bool> {
        let callee = pop(&mut self.fiber.stack);
        if !callee.is_callable() {
            return Err(errors::pipe_target(&callee));
        }
        let arg = pop(&mut self.fiber.stack);
        self.fiber.stack.push(callee);
        self.fiber.stack.push(arg);
        self.call_value(1)
    }

    /// `recv args… -- nil` when the receiver of `recv?.m(args…)` is nil
    /// (no call); false leaves the stack as it is.
    #[inline(always)]
    pub(super) fn nil_receiver(&mut self, argc: usize) -> bool {
        let recv_at = self.fiber.stack.len() - argc - 1;
        if !self.fiber.stack[recv_at].is_nil() {
            return false;
        }
        self.fiber.stack.truncate(recv_at);
        self.fiber.stack.push(Value::Nil);
        true
    }

    /// `recv list -- result`: `recv.m(...xs)`. Beyond 255 arguments (past
    /// what a cache entry records) the method is looked up uncached.
    #[cold]
    #[inline(never)]
    pub(super) fn call_method_spread(&mut self, consts: &[Value], name_idx: usize, ic_base: usize, slot: u16) -> VmResult<bool> {
        let args = pop(&mut self.fiber.stack);
        let argc = push_spread_args(&mut self.fiber.stack, &args)?;
        if argc <= u8::MAX as usize {
            self.call_method_cached(consts, name_idx, argc, ic_base, slot)
        } else {
            self.call_method(const_name(consts, name_idx), argc)
        }
    }

    /// `args… -- reply`: host function `name`.
    #[cold]
    #[inline(never)]
    pub(super) fn call_host_op(&mut self, name: &str, argc: usize) -> VmResult<()> {
        let args_at = self.fiber.stack.len() - argc;
        let v = self.call_host(name, args_at)?;
        self.fiber.stack.truncate(args_at);
        self.fiber.stack.push(v);
        if !self.fiber.output.is_empty() {
            self.flush_output();
        }
        Ok(())
    }

    /// `-- closure` over `proto`'s nested function `f`, capturing from the
    /// running frame (locals from `base`) and closure.
    #[inline(always)]
    pub(super) fn make_closure(&mut self, proto: &FunctionProto, closure: &Rc<Closure>, base: usize, f: usize) {
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
        self.fiber.stack.push(Value::Closure(Rc::new(Closure { proto: child, captures, module: closure.module.clone() })));
    }
}
