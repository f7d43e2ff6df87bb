//! Type lowering: type expressions (parameter annotations, `type` aliases,
//! interfaces) become schema dicts at compile time. The runtime checks
//! (`CheckParam`, the `schema_*` builtins) validate values against them
//! (`builtins::schema`).

use std::collections::HashMap;
use std::rc::Rc;

use crate::builtins::schema::type_schema;
use crate::runtime::value::{DictMap, HStr, Value};
use crate::syntax::ast::TypeExpr;

fn key(s: &str) -> HStr {
    Rc::new(s.to_string())
}

/// Type declarations visible to the lowering.
#[derive(Default)]
pub struct TypeEnv {
    /// `type Name<T> = expr`: the parameters and the body.
    pub aliases: HashMap<String, (Vec<String>, TypeExpr)>,
    /// Interface name → its method names.
    pub interfaces: HashMap<String, Vec<String>>,
}

/// Built-in type names that have a runtime check.
fn is_checked_type(name: &str) -> bool {
    matches!(name, "int" | "float" | "string" | "bool" | "nil" | "list" | "dict" | "set" | "bytes" | "closure")
}

impl TypeEnv {
    /// The schema for a parameter annotation, or `None` when Harn does not
    /// check it at runtime (aliases, generics, struct names, `any`, ...).
    pub fn param_schema(&self, ty: &TypeExpr) -> Option<Value> {
        if let TypeExpr::Named { name, args } = ty {
            if args.is_empty() {
                if let Some(methods) = self.interfaces.get(name) {
                    return Some(Value::dict_from([
                        ("type", Value::str("interface")),
                        ("name", Value::str(name.as_str())),
                        ("methods", Value::list(methods.iter().map(|m| Value::str(m.as_str())).collect())),
                    ]));
                }
            }
        }
        let schema = self.lower(ty, false, &HashMap::new(), 0);
        match &schema {
            Value::Dict(d) if d.is_empty() => None,
            _ => Some(schema),
        }
    }

    /// The schema for `schema_of(Name)` and friends: aliases are expanded.
    pub fn alias_schema(&self, name: &str) -> Option<Value> {
        let (params, _) = self.aliases.get(name)?;
        if !params.is_empty() {
            // Unapplied generic alias: parameters stay unconstrained.
        }
        Some(self.lower(&TypeExpr::Named { name: name.to_string(), args: Vec::new() }, true, &HashMap::new(), 0))
    }

    /// Lowers `ty`; `expand` follows aliases (schema builtins) or treats
    /// them as unchecked (parameter checks). `{}` means "anything".
    pub(crate) fn lower(&self, ty: &TypeExpr, expand: bool, bound: &HashMap<String, TypeExpr>, depth: usize) -> Value {
        if depth > 64 {
            // A recursive alias: stop constraining below this depth.
            return Value::dict(DictMap::new());
        }
        let any = || Value::dict(DictMap::new());
        match ty {
            TypeExpr::Named { name, args } => {
                if let Some(t) = bound.get(name) {
                    return self.lower(t, expand, &HashMap::new(), depth + 1);
                }
                match (name.as_str(), args.as_slice()) {
                    ("list", [item]) | ("set", [item]) => {
                        let mut d = DictMap::new();
                        d.insert(key("type"), Value::str(name.as_str()));
                        let items = self.lower(item, expand, bound, depth + 1);
                        if !matches!(&items, Value::Dict(m) if m.is_empty()) {
                            d.insert(key("items"), items);
                        }
                        Value::dict(d)
                    }
                    ("dict", [_, v]) => {
                        let mut d = DictMap::new();
                        d.insert(key("type"), Value::str("dict"));
                        let values = self.lower(v, expand, bound, depth + 1);
                        if !matches!(&values, Value::Dict(m) if m.is_empty()) {
                            d.insert(key("additional_properties"), values);
                        }
                        Value::dict(d)
                    }
                    (n, _) if is_checked_type(n) => type_schema(n),
                    _ if expand => match self.aliases.get(name) {
                        Some((params, body)) => {
                            let mut inner = HashMap::new();
                            for (p, a) in params.iter().zip(args) {
                                inner.insert(p.clone(), a.clone());
                            }
                            self.lower(body, expand, &inner, depth + 1)
                        }
                        None => any(),
                    },
                    _ => any(),
                }
            }
            TypeExpr::StrLiteral(s) => enum_schema("string", vec![Value::str(s.as_str())]),
            TypeExpr::IntLiteral(n) => enum_schema("int", vec![Value::Int(*n)]),
            TypeExpr::FloatLiteral(f) => enum_schema("float", vec![Value::Float(*f)]),
            TypeExpr::BoolLiteral(b) => enum_schema("bool", vec![Value::Bool(*b)]),
            TypeExpr::Union(options) => {
                if options.iter().all(|o| matches!(o, TypeExpr::StrLiteral(_))) {
                    let values = options.iter().map(|o| match o {
                        TypeExpr::StrLiteral(s) => Value::str(s.as_str()),
                        _ => Value::Nil,
                    });
                    return enum_schema("string", values.collect());
                }
                if options.iter().all(|o| matches!(o, TypeExpr::IntLiteral(_))) {
                    let values = options.iter().map(|o| match o {
                        TypeExpr::IntLiteral(n) => Value::Int(*n),
                        _ => Value::Nil,
                    });
                    return enum_schema("int", values.collect());
                }
                let lowered: Vec<Value> = options.iter().map(|o| self.lower(o, expand, bound, depth + 1)).collect();
                if lowered.iter().any(|s| matches!(s, Value::Dict(m) if m.is_empty())) {
                    return any();
                }
                Value::dict_from([("union", Value::list(lowered))])
            }
            TypeExpr::Shape(fields) => {
                let mut props = DictMap::new();
                let mut required = Vec::new();
                for f in fields {
                    props.insert(key(&f.name), self.lower(&f.ty, expand, bound, depth + 1));
                    if !f.optional {
                        required.push(Value::str(f.name.as_str()));
                    }
                }
                Value::dict_from([
                    ("type", Value::str("dict")),
                    ("properties", Value::dict(props)),
                    ("required", Value::list(required)),
                ])
            }
            TypeExpr::Fn { .. } => type_schema("closure"),
        }
    }
}

fn enum_schema(ty: &str, values: Vec<Value>) -> Value {
    Value::dict_from([("type", Value::str(ty)), ("enum", Value::list(values))])
}
