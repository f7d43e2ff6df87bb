//! Module instances (a child of `vm`, sharing the `Vm` internals).
//!
//! Each compiled module is instantiated at most once per VM: the first
//! import (or host call) creates its `ModuleEnv` and runs its init code as
//! an ordinary frame; later imports only copy exported values. An instance
//! is keyed by module key and remembers which `CompiledModule` it came
//! from, so a recompiled (changed) module gets a fresh instance. An init
//! that throws leaves the instance unready, and the next import retries.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use super::{ModuleEnv, Vm};
use crate::builtins::{CallArgs, Continuation, Ctx, Flow};
use crate::compile::modules::{CompiledModule, ImportDesc};
use crate::runtime::error::{ErrorKind, VmError, VmResult};
use crate::runtime::value::{Closure, DictMap, Object, Value};

/// Instance epochs: a VM takes a fresh one when it is created and whenever
/// it creates a module instance, so an `ExportMemo` never matches another
/// VM or a replaced instance.
static NEXT_INSTANCE_EPOCH: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_instance_epoch() -> u64 {
    NEXT_INSTANCE_EPOCH.fetch_add(1, AtomicOrdering::Relaxed)
}

/// Where a host handle's export lives, kept between its calls
/// (`Vm::call_export_memo`): the module instance's env, valid while the
/// VM's instance epoch is the one recorded (no instance created since).
#[derive(Default)]
pub struct ExportMemo {
    epoch: u64,
    env: Option<Rc<ModuleEnv>>,
}

pub(super) struct ModuleInstance {
    compiled: Rc<CompiledModule>,
    env: Rc<ModuleEnv>,
    /// Its init code ran to completion.
    ready: bool,
}

/// The `ImportDesc` inside an import constant.
fn import_desc(constant: &Value) -> VmResult<Rc<ImportDesc>> {
    if let Value::Object(o) = constant {
        if let Object::Opaque { data, .. } = &**o {
            if let Some(d) = data.borrow().downcast_ref::<Rc<ImportDesc>>() {
                return Ok(d.clone());
            }
        }
    }
    Err(VmError::runtime("malformed import constant"))
}

impl Vm {
    /// The envs of every module instance and prelude module of this VM.
    pub(super) fn module_envs(&self) -> Vec<Rc<ModuleEnv>> {
        let mut envs: Vec<Rc<ModuleEnv>> = self.modules.values().map(|i| i.env.clone()).collect();
        envs.extend(self.prelude.borrow().modules.values().map(|(_, env)| env.clone()));
        envs
    }

    /// The ready instance of `module`, if this VM has one.
    fn ready_instance(&self, module: &Rc<CompiledModule>) -> Option<&ModuleInstance> {
        self.modules.get(&module.key).filter(|i| i.ready && Rc::ptr_eq(&i.compiled, module))
    }

    /// A fresh (unready) instance of `module` and the closure of its init code.
    fn new_instance(&mut self, module: &Rc<CompiledModule>) -> Rc<Closure> {
        let env = Rc::new(ModuleEnv::new(module.globals.clone()));
        self.modules.insert(module.key.clone(), ModuleInstance { compiled: module.clone(), env: env.clone(), ready: false });
        self.instance_epoch = next_instance_epoch();
        Rc::new(Closure { proto: module.init.clone(), captures: Box::new([]), module: env })
    }

    /// `ImportModule`: pushes nil when the module is already instantiated,
    /// else starts its init code (whose result lands on the stack instead).
    /// Returns true when a frame was pushed.
    pub(super) fn start_import(&mut self, constant: &Value) -> VmResult<bool> {
        let desc = import_desc(constant)?;
        if self.ready_instance(&desc.module).is_some() {
            self.fiber.stack.push(Value::Nil);
            return Ok(false);
        }
        let init = self.new_instance(&desc.module);
        self.fiber.stack.push(Value::Closure(init));
        self.call_value(0)
    }

    /// `BindImports`: marks the instance ready (its init has returned) and
    /// copies the imported slots into `into`.
    pub(super) fn bind_imports(&mut self, constant: &Value, into: &ModuleEnv) -> VmResult<()> {
        let desc = import_desc(constant)?;
        let Some(inst) = self.modules.get_mut(&desc.module.key).filter(|i| Rc::ptr_eq(&i.compiled, &desc.module)) else {
            return Err(VmError::runtime(format!("module {} was not instantiated", desc.module.key)));
        };
        inst.ready = true;
        let from = inst.env.globals.borrow();
        let from_defined = inst.env.defined.borrow();
        let mut to = into.globals.borrow_mut();
        let mut to_defined = into.defined.borrow_mut();
        for &(src, dst) in &desc.bindings {
            to[dst as usize] = from[src as usize].clone();
            to_defined[dst as usize] = from_defined[src as usize];
        }
        Ok(())
    }

    /// Whether this VM holds a ready instance of the module with this key.
    pub fn is_module_cached(&self, key: &str) -> bool {
        self.modules.get(key).is_some_and(|i| i.ready)
    }

    /// Whether this VM holds a ready instance of exactly this compiled module.
    pub fn has_module_instance(&self, module: &Rc<CompiledModule>) -> bool {
        self.ready_instance(module).is_some()
    }

    /// Instantiates `module` (running its init code) unless this VM already has it.
    pub fn instantiate_module(&mut self, module: &Rc<CompiledModule>) -> VmResult<()> {
        if self.ready_instance(module).is_some() {
            return Ok(());
        }
        let init = self.new_instance(module);
        self.call_closure(init, Vec::new())?;
        if let Some(inst) = self.modules.get_mut(&module.key) {
            inst.ready = true;
        }
        Ok(())
    }

    /// The value of export `name` of `module`, instantiating it if needed.
    pub fn module_export(&mut self, module: &Rc<CompiledModule>, name: &str) -> VmResult<Value> {
        let Some(export) = module.export(name) else {
            let names: Vec<&str> = module.exports().iter().map(|e| e.name.as_str()).collect();
            let message = format!("module '{}' has no export '{name}' (exports: {})", module.display_name, names.join(", "));
            return Err(VmError::new(ErrorKind::Import {
                module: module.display_name.clone(),
                export: Some(name.to_string()),
                message,
            }));
        };
        self.export_at(module, export.slot)
    }

    /// The value in module-global `slot` of `module` (an `Export::slot`),
    /// instantiating the module if needed.
    pub fn export_at(&mut self, module: &Rc<CompiledModule>, slot: u16) -> VmResult<Value> {
        // One instance lookup when the module is already instantiated (a warm crossing).
        let v = match self.ready_instance(module) {
            Some(inst) => inst.env.globals.borrow().get(slot as usize).cloned(),
            None => {
                self.instantiate_module(module)?;
                let inst = self.ready_instance(module).expect("instantiated above");
                inst.env.globals.borrow().get(slot as usize).cloned()
            }
        };
        v.ok_or_else(|| VmError::runtime(format!("module {} has no global slot {slot}", module.key)))
    }

    /// Calls export `name` of `module` with `args` (a host crossing): the
    /// module instance and the callee's code (with its caches) are reused.
    pub fn call_export(&mut self, module: &Rc<CompiledModule>, name: &str, args: Vec<Value>) -> VmResult<Value> {
        let callee = self.module_export(module, name)?;
        self.call_export_value(module, name, &callee, args)
    }

    /// `call_export` with the export's slot already looked up (`Export::slot`).
    pub fn call_export_at(&mut self, module: &Rc<CompiledModule>, slot: u16, args: Vec<Value>) -> VmResult<Value> {
        let callee = self.export_at(module, slot)?;
        match callee {
            Value::Closure(ref c) => self.call_closure(c.clone(), args),
            other => {
                // The name is only needed for the error (a crossing does not search for it).
                let name = module.exports().iter().find(|e| e.slot == slot).map_or("?", |e| e.name.as_str());
                Err(not_callable(module, name, &other))
            }
        }
    }

    /// `call_export_at` for a caller that keeps `memo` between calls (a
    /// host handle): while no module instance was created since the memo was
    /// made, the export is read from the instance's env directly, without
    /// looking the instance up. (The global slot is still read on every
    /// call: module code may have reassigned it.)
    pub fn call_export_memo(
        &mut self,
        module: &Rc<CompiledModule>,
        slot: u16,
        memo: &mut ExportMemo,
        args: Vec<Value>,
    ) -> VmResult<Value> {
        let remembered = match &memo.env {
            Some(env) if memo.epoch == self.instance_epoch => env.globals.borrow().get(slot as usize).cloned(),
            _ => None,
        };
        let callee = match remembered {
            Some(v) => v,
            None => {
                let v = self.export_at(module, slot)?;
                if let Some(inst) = self.ready_instance(module) {
                    memo.env = Some(inst.env.clone());
                    memo.epoch = self.instance_epoch;
                }
                v
            }
        };
        match callee.into_closure() {
            Ok(c) => self.call_closure(c, args),
            Err(other) => {
                let name = module.exports().iter().find(|e| e.slot == slot).map_or("?", |e| e.name.as_str());
                Err(not_callable(module, name, &other))
            }
        }
    }

    fn call_export_value(&mut self, module: &CompiledModule, name: &str, callee: &Value, args: Vec<Value>) -> VmResult<Value> {
        match callee {
            Value::Closure(c) => self.call_closure(c.clone(), args),
            other => Err(not_callable(module, name, other)),
        }
    }

    /// Prelude global `name` (`stream`, `parallel_race`, see prelude.rs).
    /// The first use of a prelude module in a VM runs its init code (a Harn
    /// call) and keeps its instance; later uses read it.
    pub(super) fn prelude_global(&mut self, name: &Value) -> VmResult<Flow> {
        let Value::Str(name) = name else {
            return Err(VmError::runtime("__prelude_global: expected a name"));
        };
        let Some((key, shape)) = crate::compile::prelude::global(name) else {
            return Err(VmError::runtime(format!("no prelude global {name}")));
        };
        if let Some(v) = lookup(&mut self.prelude.borrow_mut(), name, key, shape) {
            return Ok(Flow::Done(v));
        }
        let want = Want { name: name.to_string(), key, shape, cache: self.prelude.clone() };
        let module = crate::compile::prelude::module(key)?;
        let env = Rc::new(ModuleEnv::new(module.globals.clone()));
        let init = Closure { proto: module.init.clone(), captures: Box::new([]), module: env.clone() };
        let then = Box::new(Instantiated { module, env, want });
        Ok(Flow::Call { callee: Value::Closure(Rc::new(init)), args: CallArgs::new(), then })
    }
}

/// Instantiated prelude modules of one VM, and the namespace dicts built from them.
#[derive(Default)]
pub(super) struct PreludeInstances {
    modules: HashMap<&'static str, (Rc<CompiledModule>, Rc<ModuleEnv>)>,
    namespaces: HashMap<&'static str, Value>,
}

/// A prelude global whose module is being instantiated.
struct Want {
    name: String,
    key: &'static str,
    shape: crate::compile::prelude::Shape,
    cache: Rc<RefCell<PreludeInstances>>,
}

/// Prelude global `name` of module `key`, once that module is instantiated.
fn lookup(cache: &mut PreludeInstances, name: &str, key: &'static str, shape: crate::compile::prelude::Shape) -> Option<Value> {
    let (module, env) = cache.modules.get(key)?.clone();
    let globals = env.globals.borrow();
    match shape {
        crate::compile::prelude::Shape::Export => {
            let slot = module.export(name)?.slot;
            globals.get(slot as usize).cloned()
        }
        crate::compile::prelude::Shape::Namespace => {
            let ns = cache.namespaces.entry(key).or_insert_with(|| {
                let mut ns = DictMap::default();
                // Marks a namespace dict: its callables win over dict methods (`stream.filter`).
                ns.insert(Rc::new("_namespace".to_string()), Value::str(name));
                for export in module.exports() {
                    ns.insert(Rc::new(export.name.clone()), globals[export.slot as usize].clone());
                }
                Value::Dict(Rc::new(ns))
            });
            Some(ns.clone())
        }
    }
}

/// After a prelude module's init code ran: keep the instance, answer the lookup.
struct Instantiated {
    module: Rc<CompiledModule>,
    env: Rc<ModuleEnv>,
    want: Want,
}

impl Continuation for Instantiated {
    fn resume(self: Box<Self>, _ctx: &mut Ctx, _init_result: Value) -> VmResult<Flow> {
        let Instantiated { module, env, want } = *self;
        let mut cache = want.cache.borrow_mut();
        cache.modules.insert(want.key, (module, env));
        lookup(&mut cache, &want.name, want.key, want.shape)
            .map(Flow::Done)
            .ok_or_else(|| VmError::runtime(format!("prelude module {} has no {}", want.key, want.name)))
    }
}

/// The error of a crossing whose export is not a function.
fn not_callable(module: &CompiledModule, name: &str, callee: &Value) -> VmError {
    VmError::type_error(format!("export '{name}' of {} is not a function but {}", module.display_name, callee.type_name()))
}
