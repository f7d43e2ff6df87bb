//! Schemas: validating values against schema dicts (type expressions are
//! lowered to schemas by `compile::types`).
//!
//! A schema is an ordinary Harn dict (so programs can build, inspect and
//! transform them): `{type: "dict", properties: {...}, required: [...]}`,
//! `{type: "list", items: S}`, `{type: "string", enum: [...]}`,
//! `{union: [S1, S2]}`, `{type: "interface", name: "I", methods: [...]}`.
//! A schema without `type` accepts anything. The compiler lowers `type`
//! aliases and parameter annotations to these dicts at compile time; the
//! `schema_*` builtins and the `CheckParam` opcode validate against them.
//!
//! Validation reports the first failure with its path (the schema
//! builtins ask for every failure, `validate_all`); two renderers give
//! Harn's two message styles: `at user.name: expected type 'string', got
//! 'int'` (schema builtins) and `parameter 'u': missing field 'age' (int)`
//! (parameter checks).

use std::rc::Rc;

use crate::runtime::value::{values_equal, DictMap, HStr, Value};

/// Schemas and values nested deeper than this are refused rather than
/// recursed into (validation recurses on the native stack).
const MAX_DEPTH: usize = 256;

fn key(s: &str) -> HStr {
    Rc::new(s.to_string())
}

/// `{type: name}`.
pub fn type_schema(name: &str) -> Value {
    Value::dict_from([("type", Value::str(name))])
}

// ---- validation ----------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

#[derive(Debug, PartialEq)]
pub enum FailKind {
    /// A required key is absent; `expected` names its type; `hint` is a
    /// present key spelled like it.
    Missing {
        key: String,
        expected: String,
        hint: Option<String>,
    },
    WrongType {
        expected: String,
        got: &'static str,
    },
    /// No option of a union accepts the value (a type mismatch for parameter checks).
    NoUnionBranch {
        expected: String,
        got: &'static str,
    },
    NotInEnum {
        value: String,
        options: String,
    },
    Const {
        expected: String,
        got: String,
    },
    ExtraKey {
        key: String,
    },
    Bound {
        message: String,
    },
    /// Several bounds of one value failed (listed one by one when collecting).
    Bounds {
        messages: Vec<String>,
    },
    /// The struct lacks the methods an interface requires.
    Interface {
        name: String,
        got: String,
    },
    BadSchema {
        message: String,
    },
}

#[derive(Debug, PartialEq)]
pub struct Failure {
    pub path: Vec<Seg>,
    pub kind: FailKind,
}

/// Looks up struct methods for interface checks (the VM's impl table).
pub type HasMethod<'a> = &'a dyn Fn(&str, &str) -> bool;

fn get<'a>(schema: &'a DictMap, k: &str) -> Option<&'a Value> {
    schema.get(&key(k))
}

/// The display name of a schema's type for messages: `int`, `string|int`,
/// `list<int>`, `{name: string}`.
pub fn type_label(schema: &Value) -> String {
    let Value::Dict(d) = schema else { return "any".into() };
    if let Some(Value::List(options)) = get(d, "union") {
        return options.iter().map(type_label).collect::<Vec<_>>().join("|");
    }
    let ty = get(d, "type").and_then(Value::as_str).unwrap_or("any");
    match ty {
        "list" | "array" | "set" => match get(d, "items") {
            Some(items) => format!("{}<{}>", canonical_type(ty), type_label(items)),
            None => canonical_type(ty).to_string(),
        },
        "dict" | "object" if get(d, "properties").is_some() => {
            let Some(Value::Dict(props)) = get(d, "properties") else { return "dict".into() };
            let fields: Vec<String> = props.iter().map(|(k, v)| format!("{k}: {}", type_label(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
        "interface" => get(d, "name").map_or("interface".into(), Value::display),
        other => canonical_type(other).to_string(),
    }
}

/// Harn's name for JSON-Schema-style type names.
fn canonical_type(ty: &str) -> &str {
    match ty {
        "object" => "dict",
        "array" => "list",
        "integer" => "int",
        "number" => "float",
        "boolean" => "bool",
        "null" => "nil",
        "function" | "fn" => "closure",
        other => other,
    }
}

fn type_matches(ty: &str, v: &Value, lenient_numbers: bool) -> bool {
    match canonical_type(ty) {
        "any" => true,
        "int" => matches!(v, Value::Int(_)) || (lenient_numbers && matches!(v, Value::Float(_))),
        "float" => matches!(v, Value::Float(_)) || (lenient_numbers && matches!(v, Value::Int(_))),
        "string" => matches!(v, Value::Str(_)),
        "bool" => matches!(v, Value::Bool(_)),
        "nil" => v.is_nil(),
        "list" => matches!(v, Value::List(_)),
        "dict" => matches!(v, Value::Dict(_) | Value::Struct(_)),
        "set" => matches!(v, Value::Set(_)),
        "closure" => v.is_callable(),
        other => v.type_name() == other,
    }
}

/// A field of a dict or struct value.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Dict(d) => d.get(&key(name)),
        Value::Struct(s) => s.get(name).filter(|f| !f.is_nil()),
        _ => None,
    }
}

fn field_names(v: &Value) -> Vec<String> {
    match v {
        Value::Dict(d) => d.keys().map(|k| k.to_string()).collect(),
        Value::Struct(s) => s.layout.fields.iter().map(|k| k.to_string()).collect(),
        _ => Vec::new(),
    }
}

pub struct Validator<'a> {
    /// Parameter checks accept a float where an int is declared and an int
    /// where a float is (Harn's int/float leniency); schema builtins do not.
    pub lenient_numbers: bool,
    pub has_method: Option<HasMethod<'a>>,
}

impl Validator<'_> {
    pub fn validate(&self, v: &Value, schema: &Value) -> Result<(), Failure> {
        let mut path = Vec::new();
        self.check(v, schema, &mut path, 0, &mut None)
    }

    /// Every failure, as 0.9.11's schema builtins list them: missing keys,
    /// then each declared field, then unexpected keys; every list item.
    pub fn validate_all(&self, v: &Value, schema: &Value) -> Vec<Failure> {
        let mut path = Vec::new();
        let mut all = Some(Vec::new());
        let last = self.check(v, schema, &mut path, 0, &mut all);
        let mut out = all.unwrap_or_default();
        if let Err(f) = last {
            push_failure(&mut out, f);
        }
        out
    }

    /// The `value` a failed check reports: 0.9.11 keeps only the items of
    /// a list that validated (nested values stay as given).
    pub fn reported_value(&self, v: &Value, schema: &Value) -> Value {
        match (v, schema) {
            (Value::List(items), Value::Dict(d)) => match get(d, "items") {
                Some(item_schema) => {
                    Value::list(items.iter().filter(|i| self.validate(i, item_schema).is_ok()).cloned().collect())
                }
                None => v.clone(),
            },
            _ => v.clone(),
        }
    }

    fn fail(path: &[Seg], kind: FailKind) -> Result<(), Failure> {
        Err(Failure { path: path.to_vec(), kind })
    }

    /// In collecting mode (`all` is `Some`), records a failure and goes on.
    fn soft(all: &mut Option<Vec<Failure>>, r: Result<(), Failure>) -> Result<(), Failure> {
        match (r, all) {
            (Err(f), Some(list)) => {
                push_failure(list, f);
                Ok(())
            }
            (r, _) => r,
        }
    }

    fn check(
        &self,
        v: &Value,
        schema: &Value,
        path: &mut Vec<Seg>,
        depth: usize,
        all: &mut Option<Vec<Failure>>,
    ) -> Result<(), Failure> {
        if depth > MAX_DEPTH {
            return Self::fail(path, FailKind::BadSchema { message: format!("nested deeper than {MAX_DEPTH} levels") });
        }
        let d = match schema {
            Value::Dict(d) => d,
            Value::Str(ty) => {
                // A bare type name is accepted as shorthand for `{type: name}`.
                return self.check(v, &type_schema(ty), path, depth + 1, all);
            }
            other => {
                return Self::fail(
                    path,
                    FailKind::BadSchema { message: format!("schema must be a dict, got {}", other.type_name()) },
                )
            }
        };
        if let Some(options) = get(d, "union").or_else(|| get(d, "any_of")).or_else(|| get(d, "anyOf")) {
            let Value::List(options) = options else {
                return Self::fail(path, FailKind::BadSchema { message: "union must be a list of schemas".into() });
            };
            for o in options.iter() {
                if self.check(v, o, path, depth + 1, &mut None).is_ok() {
                    return Ok(());
                }
            }
            return Self::fail(path, FailKind::NoUnionBranch { expected: type_label(schema), got: v.type_name() });
        }
        if v.is_nil() && get(d, "nullable").is_some_and(Value::is_truthy) {
            return Ok(());
        }
        let ty = match get(d, "type") {
            None | Some(Value::Nil) => "any",
            Some(Value::Str(s)) => s.as_str(),
            Some(other) => {
                return Self::fail(
                    path,
                    FailKind::BadSchema { message: format!("'type' must be a string, got {}", other.type_name()) },
                )
            }
        };
        // 0.9.11 checks `const` before the type, and nothing after a mismatch.
        if let Some(c) = get(d, "const") {
            if !values_equal(c, v) {
                return Self::fail(path, FailKind::Const { expected: c.display(), got: v.display() });
            }
        }
        if ty == "interface" {
            return self.check_interface(v, d, path);
        }
        if !type_matches(ty, v, self.lenient_numbers) {
            return Self::fail(path, FailKind::WrongType { expected: type_label(schema), got: v.type_name() });
        }
        Self::soft(all, self.check_scalar_bounds(v, d, path))?;
        let output = match v {
            Value::Dict(_) | Value::Struct(_) => {
                self.check_fields(v, d, path, depth, all)?;
                None
            }
            Value::List(items) | Value::Set(items) => {
                Self::soft(all, Self::check_count(items.len(), d, path))?;
                let mut passed = Vec::with_capacity(items.len());
                if let Some(item_schema) = get(d, "items") {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Seg::Index(i));
                        let before = all.as_ref().map_or(0, Vec::len);
                        let r = self.check(item, item_schema, path, depth + 1, all);
                        let ok = r.is_ok() && all.as_ref().map_or(0, Vec::len) == before;
                        Self::soft(all, r)?;
                        path.pop();
                        if ok {
                            passed.push(item.clone());
                        }
                    }
                } else {
                    passed.extend(items.iter().cloned());
                }
                // 0.9.11 checks uniqueness and `enum` against the items that validated.
                if get(d, "unique_items").or_else(|| get(d, "uniqueItems")).is_some_and(|u| matches!(u, Value::Bool(true))) {
                    let dup = (1..passed.len()).any(|i| passed[..i].iter().any(|p| values_equal(p, &passed[i])));
                    if dup {
                        Self::soft(all, Self::fail(path, FailKind::Bound { message: "expected items to be unique".into() }))?;
                    }
                }
                Some(Value::list(passed))
            }
            _ => None,
        };
        if let Some(Value::List(options)) = get(d, "enum") {
            let subject = output.as_ref().unwrap_or(v);
            if !options.iter().any(|o| values_equal(o, subject)) {
                let shown: Vec<String> = options.iter().map(Value::display).collect();
                return Self::fail(
                    path,
                    FailKind::NotInEnum { value: subject.display(), options: format!("[{}]", shown.join(", ")) },
                );
            }
        }
        Ok(())
    }

    fn check_fields(
        &self,
        v: &Value,
        d: &DictMap,
        path: &mut Vec<Seg>,
        depth: usize,
        all: &mut Option<Vec<Failure>>,
    ) -> Result<(), Failure> {
        let props = match get(d, "properties") {
            Some(Value::Dict(p)) => Some(p),
            _ => None,
        };
        if let Some(Value::List(required)) = get(d, "required") {
            for name in required.iter() {
                let name = name.display();
                if field(v, &name).is_none() {
                    let expected = props.and_then(|p| p.get(&key(&name))).map_or("any".into(), type_label);
                    // Only keys the schema does not declare can be a misspelling.
                    let present: Vec<String> =
                        field_names(v).into_iter().filter(|n| !props.is_some_and(|p| p.contains_key(&key(n)))).collect();
                    let hint = crate::runtime::error::closest_match(&name, present.iter().map(String::as_str));
                    Self::soft(all, Self::fail(path, FailKind::Missing { key: name, expected, hint }))?;
                }
            }
        }
        if let Some(props) = props {
            for (name, prop_schema) in props.iter() {
                if let Some(fv) = field(v, name) {
                    path.push(Seg::Key(name.to_string()));
                    let r = self.check(fv, prop_schema, path, depth + 1, all);
                    Self::soft(all, r)?;
                    path.pop();
                }
            }
        }
        let extra = get(d, "additional_properties").or_else(|| get(d, "additionalProperties"));
        if let Some(extra) = extra {
            for name in field_names(v) {
                if props.is_some_and(|p| p.contains_key(&key(&name))) {
                    continue;
                }
                match extra {
                    Value::Bool(false) => Self::soft(all, Self::fail(path, FailKind::ExtraKey { key: name }))?,
                    Value::Dict(_) => {
                        let fv = field(v, &name).cloned().unwrap_or(Value::Nil);
                        path.push(Seg::Key(name));
                        let r = self.check(&fv, extra, path, depth + 1, all);
                        Self::soft(all, r)?;
                        path.pop();
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Numeric bounds, string lengths and `pattern`, in 0.9.11's order;
    /// every failing bound is reported.
    fn check_scalar_bounds(&self, v: &Value, d: &DictMap, path: &[Seg]) -> Result<(), Failure> {
        let mut found = Vec::new();
        let num = |a: &str, b: &str| get(d, a).or_else(|| get(d, b)).and_then(bound_number);
        if let Some(x) = match v {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        } {
            if let Some(min) = num("minimum", "min").filter(|m| x < *m) {
                found.push(format!("expected value >= {min}, got {x}"));
            }
            if let Some(max) = num("maximum", "max").filter(|m| x > *m) {
                found.push(format!("expected value <= {max}, got {x}"));
            }
        }
        if let Value::Str(s) = v {
            let len = s.chars().count() as i64;
            if let Some(min) = int_bound(d, "min_length", "minLength").filter(|m| len < *m) {
                found.push(format!("expected length >= {min}, got {len}"));
            }
            if let Some(max) = int_bound(d, "max_length", "maxLength").filter(|m| len > *m) {
                found.push(format!("expected length <= {max}, got {len}"));
            }
            if let Some(Value::Str(pattern)) = get(d, "pattern") {
                match regex::Regex::new(pattern) {
                    Ok(re) if re.is_match(s) => {}
                    Ok(_) => found.push(format!("value does not match pattern '{pattern}'")),
                    Err(e) => found.push(format!("invalid regex pattern '{pattern}': {e}")),
                }
            }
        }
        Self::bounds_result(found, path)
    }

    /// `min_items` / `max_items` of a list.
    fn check_count(len: usize, d: &DictMap, path: &[Seg]) -> Result<(), Failure> {
        let mut found = Vec::new();
        let len = len as i64;
        if let Some(min) = int_bound(d, "min_items", "minItems").filter(|m| len < *m) {
            found.push(format!("expected at least {min} items, got {len}"));
        }
        if let Some(max) = int_bound(d, "max_items", "maxItems").filter(|m| len > *m) {
            found.push(format!("expected at most {max} items, got {len}"));
        }
        Self::bounds_result(found, path)
    }

    /// Several failed bounds of one value: in collecting mode all are
    /// reported (the caller records the last one it gets back).
    fn bounds_result(found: Vec<String>, path: &[Seg]) -> Result<(), Failure> {
        match found.len() {
            0 => Ok(()),
            1 => Self::fail(path, FailKind::Bound { message: found.into_iter().next().unwrap_or_default() }),
            _ => Self::fail(path, FailKind::Bounds { messages: found }),
        }
    }

    fn check_interface(&self, v: &Value, d: &DictMap, path: &[Seg]) -> Result<(), Failure> {
        let name = get(d, "name").map_or(String::new(), Value::display);
        let ok = match v {
            Value::Struct(s) => match (get(d, "methods"), self.has_method) {
                (Some(Value::List(methods)), Some(has)) => methods.iter().all(|m| has(s.name(), &m.display())),
                _ => true,
            },
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            let got = match v {
                Value::Struct(s) => s.name().to_string(),
                other => other.type_name().to_string(),
            };
            Self::fail(path, FailKind::Interface { name, got })
        }
    }
}

/// Records a failure, splitting one with several failed bounds.
fn push_failure(list: &mut Vec<Failure>, f: Failure) {
    match f.kind {
        FailKind::Bounds { messages } => {
            for message in messages {
                list.push(Failure { path: f.path.clone(), kind: FailKind::Bound { message } });
            }
        }
        kind => list.push(Failure { path: f.path, kind }),
    }
}

/// A numeric bound (`minimum`, `max`, ...); other values are ignored, as on 0.9.11.
fn bound_number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// A length or count bound: only whole non-negative ints count (0.9.11
/// ignores `min_length: 3.0`).
fn int_bound(d: &DictMap, a: &str, b: &str) -> Option<i64> {
    match get(d, a).or_else(|| get(d, b)) {
        Some(Value::Int(i)) if *i >= 0 => Some(*i),
        _ => None,
    }
}

/// `user.name`, `items[1]`, `root` for the empty path.
pub fn path_text(path: &[Seg]) -> String {
    if path.is_empty() {
        return "root".into();
    }
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The schema builtins' message: `at root: missing required key 'age'`.
pub fn schema_message(f: &Failure) -> String {
    let at = path_text(&f.path);
    let what = match &f.kind {
        FailKind::Missing { key, .. } => format!("missing required key '{key}'"),
        FailKind::WrongType { expected, got } => format!("expected type '{expected}', got '{got}'"),
        FailKind::NoUnionBranch { .. } => "value did not match any union branch".to_string(),
        FailKind::NotInEnum { options, .. } => format!("value must be one of {options}"),
        FailKind::Const { expected, got } => format!("expected constant {expected}, got {got}"),
        FailKind::ExtraKey { key } => format!("unexpected key '{key}'"),
        FailKind::Bound { message } => message.clone(),
        FailKind::Bounds { messages } => messages.first().cloned().unwrap_or_default(),
        FailKind::Interface { name, got } => format!("expected value satisfying interface '{name}', got {got}"),
        FailKind::BadSchema { message } => format!("invalid schema: {message}"),
    };
    format!("at {at}: {what}")
}

/// The parameter check's message (without the `Type error: ` prefix).
pub fn param_message(param: &str, f: &Failure) -> String {
    if let FailKind::NoUnionBranch { expected, got } = &f.kind {
        let as_type = FailKind::WrongType { expected: expected.clone(), got };
        return param_message(param, &Failure { path: f.path.clone(), kind: as_type });
    }
    let mut where_ = param.to_string();
    let (parent, last) = match f.path.split_last() {
        Some((last, parent)) if !matches!(f.kind, FailKind::Missing { .. } | FailKind::ExtraKey { .. }) => (parent, Some(last)),
        _ => (&f.path[..], None),
    };
    for seg in parent {
        match seg {
            Seg::Key(k) => {
                where_.push('.');
                where_.push_str(k);
            }
            Seg::Index(i) => where_.push_str(&format!("[{i}]")),
        }
    }
    let head = format!("parameter '{where_}'");
    match (&f.kind, last) {
        (FailKind::Missing { key, expected, hint }, _) => {
            let hint = hint.as_ref().map_or(String::new(), |h| format!(", did you mean '{h}'?"));
            format!("{head}: missing field '{key}' ({expected}){hint}")
        }
        (FailKind::WrongType { expected, got }, Some(Seg::Key(k))) => {
            let expected = if expected == "dict" || expected.starts_with('{') { "dict or struct" } else { expected };
            format!("{head}: field '{k}' expected {expected}, got {got}")
        }
        (FailKind::WrongType { expected, got }, Some(Seg::Index(i))) => {
            format!("{head}: item [{i}] expected type '{expected}', got {got}")
        }
        (FailKind::WrongType { expected, got }, None) => format!("{head}: expected {expected}, got {got}"),
        (FailKind::NotInEnum { value, options }, seg) => {
            let at = match seg {
                Some(Seg::Key(k)) => format!(" field '{k}'"),
                Some(Seg::Index(i)) => format!(" item [{i}]"),
                None => String::new(),
            };
            format!("{head}:{at} value '{value}' is not one of {options}")
        }
        (FailKind::Const { expected, got }, _) => format!("{head}: expected constant {expected}, got {got}"),
        (FailKind::ExtraKey { key }, _) => format!("{head}: unexpected field '{key}'"),
        (FailKind::Bound { message }, _) => format!("{head}: {message}"),
        (FailKind::Bounds { messages }, _) => format!("{head}: {}", messages.first().cloned().unwrap_or_default()),
        (FailKind::Interface { name, got }, _) => format!("{head}: expected value satisfying interface '{name}', got {got}"),
        (FailKind::BadSchema { message }, _) => format!("{head}: invalid schema: {message}"),
        // Turned into `WrongType` above.
        (FailKind::NoUnionBranch { expected, got }, _) => format!("{head}: expected {expected}, got {got}"),
    }
}

// ---- defaults and JSON Schema conversion --------------------------------------------

/// `schema_parse`'s normalization: structs become dicts and missing
/// properties with a `default` are filled in, recursively.
pub fn apply_defaults(v: &Value, schema: &Value, depth: usize) -> Value {
    let Value::Dict(d) = schema else { return v.clone() };
    if depth > MAX_DEPTH {
        return v.clone();
    }
    match v {
        Value::Dict(_) | Value::Struct(_) => {
            let mut out: DictMap = match v {
                Value::Dict(m) => (**m).clone(),
                Value::Struct(s) => s
                    .layout
                    .fields
                    .iter()
                    .zip(s.values.iter())
                    .filter(|(_, fv)| !fv.is_nil())
                    .map(|(k, fv)| (k.clone(), fv.clone()))
                    .collect(),
                _ => DictMap::new(),
            };
            if let Some(Value::Dict(props)) = get(d, "properties") {
                for (name, prop) in props.iter() {
                    match out.get(name) {
                        Some(existing) => {
                            let filled = apply_defaults(existing, prop, depth + 1);
                            out.insert(name.clone(), filled);
                        }
                        None => {
                            if let Value::Dict(pd) = prop {
                                if let Some(def) = get(pd, "default") {
                                    out.insert(name.clone(), def.clone());
                                }
                            }
                        }
                    }
                }
            }
            Value::dict(out)
        }
        Value::List(items) => match get(d, "items") {
            Some(item_schema) => Value::list(items.iter().map(|i| apply_defaults(i, item_schema, depth + 1)).collect()),
            None => v.clone(),
        },
        _ => v.clone(),
    }
}

fn rename_type(ty: &str, to_json: bool) -> &str {
    if to_json {
        match ty {
            "dict" => "object",
            "list" | "set" => "array",
            "int" => "integer",
            "float" => "number",
            "bool" => "boolean",
            "nil" => "null",
            other => other,
        }
    } else {
        canonical_type(ty)
    }
}

/// Converts between Harn schemas and JSON Schema (`to_json` picks the
/// direction): type names, `union` ↔ `anyOf`, `additional_properties` ↔
/// `additionalProperties`, recursively.
pub fn convert(schema: &Value, to_json: bool, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return schema.clone();
    }
    let Value::Dict(d) = schema else { return schema.clone() };
    let mut out = DictMap::new();
    for (k, v) in d.iter() {
        let (name, value) = match (k.as_str(), v) {
            ("type", Value::Str(t)) => ("type", Value::str(rename_type(t, to_json))),
            ("type", Value::List(ts)) if !to_json => {
                // JSON Schema's `type: ["string", "null"]` is a union.
                let options = ts.iter().map(|t| type_schema(rename_type(&t.display(), false))).collect();
                ("union", Value::list(options))
            }
            ("properties", Value::Dict(props)) => {
                let converted = props.iter().map(|(pk, pv)| (pk.clone(), convert(pv, to_json, depth + 1))).collect();
                ("properties", Value::dict(converted))
            }
            ("items", item) => ("items", convert(item, to_json, depth + 1)),
            ("union", Value::List(options)) if to_json => {
                ("anyOf", Value::list(options.iter().map(|o| convert(o, to_json, depth + 1)).collect()))
            }
            ("anyOf" | "oneOf", Value::List(options)) if !to_json => {
                ("union", Value::list(options.iter().map(|o| convert(o, to_json, depth + 1)).collect()))
            }
            ("additional_properties", extra) if to_json => ("additionalProperties", convert(extra, to_json, depth + 1)),
            ("additionalProperties", extra) if !to_json => ("additional_properties", convert(extra, to_json, depth + 1)),
            (other, v) => {
                out.insert(HStr::new(other.to_string()), v.clone());
                continue;
            }
        };
        out.insert(key(name), value);
    }
    Value::dict(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::types::TypeEnv;
    use crate::syntax::ast::{ShapeField, TypeExpr};
    use std::collections::HashMap;

    fn named(n: &str) -> TypeExpr {
        TypeExpr::Named { name: n.into(), args: vec![] }
    }

    fn shape(fields: &[(&str, bool, TypeExpr)]) -> TypeExpr {
        TypeExpr::Shape(
            fields.iter().map(|(n, opt, t)| ShapeField { name: n.to_string(), optional: *opt, ty: t.clone() }).collect(),
        )
    }

    fn dict(entries: &[(&'static str, Value)]) -> Value {
        Value::dict_from(entries.iter().cloned())
    }

    fn param_check(ty: &TypeExpr, v: &Value) -> Result<(), String> {
        let schema = TypeEnv::default().param_schema(ty).expect("checked type");
        Validator { lenient_numbers: true, has_method: None }.validate(v, &schema).map_err(|f| param_message("u", &f))
    }

    #[test]
    fn shape_parameter_messages() {
        let user = shape(&[("name", false, named("string")), ("age", false, named("int"))]);
        assert_eq!(
            param_check(&user, &dict(&[("name", Value::str("x"))])).unwrap_err(),
            "parameter 'u': missing field 'age' (int)"
        );
        assert_eq!(
            param_check(&user, &dict(&[("name", Value::Int(1)), ("age", Value::Int(1))])).unwrap_err(),
            "parameter 'u': field 'name' expected string, got int"
        );
        let nested = shape(&[("user", false, shape(&[("name", false, named("string"))]))]);
        assert_eq!(
            param_check(&nested, &dict(&[("user", dict(&[]))])).unwrap_err(),
            "parameter 'u.user': missing field 'name' (string)"
        );
        assert_eq!(
            param_check(&nested, &dict(&[("user", Value::str("flat"))])).unwrap_err(),
            "parameter 'u': field 'user' expected dict or struct, got string"
        );
        let typo = shape(&[("email", false, named("string"))]);
        assert_eq!(
            param_check(&typo, &dict(&[("emial", Value::str("a"))])).unwrap_err(),
            "parameter 'u': missing field 'email' (string), did you mean 'emial'?"
        );
    }

    #[test]
    fn unions_lists_and_leniency() {
        let u = TypeExpr::Union(vec![named("string"), named("int")]);
        assert_eq!(param_check(&u, &Value::Bool(true)).unwrap_err(), "parameter 'u': expected string|int, got bool");
        let xs = TypeExpr::Named { name: "list".into(), args: vec![named("int")] };
        assert_eq!(
            param_check(&xs, &Value::list(vec![Value::Int(1), Value::str("a")])).unwrap_err(),
            "parameter 'u': item [1] expected type 'int', got string"
        );
        assert!(param_check(&named("int"), &Value::Float(1.5)).is_ok());
        assert!(param_check(&named("float"), &Value::Int(1)).is_ok());
        assert!(TypeEnv::default().param_schema(&named("any")).is_none());
        assert!(TypeEnv::default().param_schema(&named("SomeStruct")).is_none());
    }

    #[test]
    fn schema_messages_and_literal_unions() {
        let strict = Validator { lenient_numbers: false, has_method: None };
        let schema = dict(&[("type", Value::str("dict")), ("required", Value::list(vec![Value::str("age")]))]);
        let f = strict.validate(&dict(&[]), &schema).unwrap_err();
        assert_eq!(schema_message(&f), "at root: missing required key 'age'");
        let nested = dict(&[(
            "properties",
            dict(&[("user", dict(&[("properties", dict(&[("name", dict(&[("type", Value::str("string"))]))]))]))]),
        )]);
        let f = strict.validate(&dict(&[("user", dict(&[("name", Value::Int(1))]))]), &nested).unwrap_err();
        assert_eq!(schema_message(&f), "at user.name: expected type 'string', got 'int'");
        let lit = TypeExpr::Union(vec![TypeExpr::StrLiteral("a".into()), TypeExpr::StrLiteral("b".into())]);
        let s = TypeEnv::default().lower(&lit, true, &HashMap::new(), 0);
        assert_eq!(s.display(), "{enum: [a, b], type: string}");
        assert!(strict.validate(&Value::str("c"), &s).is_err());
        assert!(strict.validate(&Value::str("b"), &s).is_ok());
    }

    #[test]
    fn hostile_schemas_do_not_crash() {
        let strict = Validator { lenient_numbers: false, has_method: None };
        let f = strict.validate(&Value::Int(1), &Value::Int(3)).unwrap_err();
        assert_eq!(schema_message(&f), "at root: invalid schema: schema must be a dict, got int");
        let mut deep = dict(&[]);
        for _ in 0..1000 {
            deep = dict(&[("items", deep)]);
        }
        let mut v = Value::Int(0);
        for _ in 0..1000 {
            v = Value::list(vec![v]);
        }
        assert!(schema_message(&strict.validate(&v, &deep).unwrap_err()).contains("nested deeper than"));
    }

    #[test]
    fn json_schema_round_trip() {
        let s = dict(&[
            ("type", Value::str("dict")),
            ("properties", dict(&[("n", dict(&[("type", Value::str("int"))]))])),
            ("additional_properties", Value::Bool(false)),
        ]);
        let j = convert(&s, true, 0);
        assert_eq!(j.display(), "{additionalProperties: false, properties: {n: {type: integer}}, type: object}");
        assert!(values_equal(&convert(&j, false, 0), &s));
    }
}
