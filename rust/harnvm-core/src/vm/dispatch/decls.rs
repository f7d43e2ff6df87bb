//! Declarations and checks that run once per definition or call site:
//! struct and impl declarations, struct literals and parameter schema
//! checks. None is on a hot path, so all are out of line.

use std::rc::Rc;

use super::super::Vm;
use super::pop;
use crate::builtins::schema;
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{HStr, StructLayout, StructVal, Value};

impl Vm {
    /// `field_names --`: declares struct `name` with the listed fields.
    #[cold]
    #[inline(never)]
    pub(super) fn define_struct(&mut self, name: &HStr) {
        let fields = pop(&mut self.fiber.stack);
        let names: Vec<HStr> = match &fields {
            Value::List(items) => items.iter().filter_map(|f| f.as_str().map(|s| Rc::new(s.to_string()))).collect(),
            _ => Vec::new(),
        };
        self.structs.insert(name.to_string(), Rc::new(StructLayout { name: name.clone(), fields: names }));
    }

    /// `methods --`: adds the dict `methods` to type `name`'s impl (later
    /// declarations win on a clash).
    #[cold]
    #[inline(never)]
    pub(super) fn define_impl(&mut self, name: &HStr) {
        let methods = pop(&mut self.fiber.stack);
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
            self.impls_epoch += 1;
        }
    }

    /// `fields -- struct`: a literal of struct `name` from a dict or struct of fields.
    #[cold]
    #[inline(never)]
    pub(super) fn build_struct(&mut self, name: &str) -> VmResult<()> {
        let fields = pop(&mut self.fiber.stack);
        let layout = match self.structs.get(name) {
            Some(l) => l.clone(),
            None => return Err(VmError::runtime(format!("Unknown struct: {name}"))),
        };
        let values = match &fields {
            Value::Dict(m) => layout.fields.iter().map(|f| m.get(f).cloned().unwrap_or_default()).collect(),
            Value::Struct(s) => layout.fields.iter().map(|f| s.get(f).cloned().unwrap_or_default()).collect(),
            _ => vec![Value::Nil; layout.fields.len()],
        };
        self.fiber.stack.push(Value::Struct(Rc::new(StructVal { layout, values })));
        Ok(())
    }

    /// `k1 v1..kn vn -- struct`: a literal of struct `name` from `n` name/value
    /// pairs with distinct names, as `BUILD_DICT` then `BUILD_STRUCT` would
    /// build it (undeclared names are dropped, missing fields are nil). The
    /// pair for field j is looked for at position j first (a literal that
    /// lists the fields in declaration order finds each at once).
    pub(super) fn build_struct_fields(&mut self, name: &str, n: usize) -> VmResult<()> {
        let at = self.fiber.stack.len() - 2 * n;
        let Some(layout) = self.structs.get(name).cloned() else {
            self.fiber.stack.truncate(at);
            return Err(VmError::runtime(format!("Unknown struct: {name}")));
        };
        let pairs = &mut self.fiber.stack[at..];
        let names = |i: usize, f: &str| matches!(&pairs[2 * i], Value::Str(k) if k.as_str() == f);
        let mut found = Vec::with_capacity(layout.fields.len());
        for (j, field) in layout.fields.iter().enumerate() {
            let i = if j < n && names(j, field) { Some(j) } else { (0..n).find(|&i| names(i, field)) };
            found.push(i);
        }
        let values = found.into_iter().map(|i| i.map_or(Value::Nil, |i| std::mem::take(&mut pairs[2 * i + 1]))).collect();
        self.fiber.stack.truncate(at);
        self.fiber.stack.push(Value::Struct(Rc::new(StructVal { layout, values })));
        Ok(())
    }

    /// `v schema --`: fails unless argument `v` of parameter `name` fits its declared type.
    #[cold]
    #[inline(never)]
    pub(super) fn check_param(&mut self, name: &str) -> VmResult<()> {
        let declared = pop(&mut self.fiber.stack);
        let v = pop(&mut self.fiber.stack);
        let impls = &self.impls;
        let has_method = |ty: &str, m: &str| impls.get(ty).is_some_and(|ms| ms.contains_key(&Rc::new(m.to_string())));
        let validator = schema::Validator { lenient_numbers: true, has_method: Some(&has_method) };
        validator.validate(&v, &declared).map_err(|f| VmError::type_error(schema::param_message(name, &f)))
    }
}
