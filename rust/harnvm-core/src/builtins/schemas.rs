//! Schema builtins: validation (`schema_is`, `json_validate`, ...), and
//! schema transforms (`schema_pick`, `schema_partial`, JSON Schema
//! conversion). The schema format and validator live in `builtins::schema`;
//! `schema_of(Alias)` and type-name schema arguments are lowered by the
//! compiler, so at runtime every schema argument is already a dict.

use std::rc::Rc;

use super::args::{done, expected};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::builtins::schema::{apply_defaults, convert, path_text, schema_message, Failure, Validator};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "schema_of", imp: Native(schema_of) },
    BuiltinDef { name: "schema_is", imp: Native(schema_is) },
    BuiltinDef { name: "is_type", imp: Native(schema_is) },
    BuiltinDef { name: "schema_check", imp: Native(schema_check) },
    BuiltinDef { name: "schema_parse", imp: Native(schema_parse) },
    BuiltinDef { name: "schema_expect", imp: Native(schema_expect) },
    BuiltinDef { name: "schema_report", imp: Native(schema_report) },
    BuiltinDef { name: "json_validate", imp: Native(json_validate) },
    BuiltinDef { name: "schema_to_json_schema", imp: Native(schema_to_json_schema) },
    BuiltinDef { name: "schema_from_json_schema", imp: Native(schema_from_json_schema) },
    BuiltinDef { name: "schema_to_openapi_schema", imp: Native(schema_to_json_schema) },
    BuiltinDef { name: "schema_from_openapi_schema", imp: Native(schema_from_json_schema) },
    BuiltinDef { name: "schema_pick", imp: Native(schema_pick) },
    BuiltinDef { name: "schema_omit", imp: Native(schema_omit) },
    BuiltinDef { name: "schema_partial", imp: Native(schema_partial) },
    BuiltinDef { name: "schema_extend", imp: Native(schema_extend) },
];

/// Builtin names whose argument at the given index may be a type name that
/// the compiler lowers to a schema dict.
pub const TYPE_ARG_BUILTINS: &[(&str, usize)] = &[
    ("schema_of", 0),
    ("schema_is", 1),
    ("is_type", 1),
    ("schema_check", 1),
    ("schema_parse", 1),
    ("schema_expect", 1),
    ("schema_report", 1),
    ("json_validate", 1),
];

const STRICT: Validator<'static> = Validator { lenient_numbers: false, has_method: None };

fn schema_arg<'a>(args: &'a [Value], i: usize, builtin: &str) -> VmResult<&'a Rc<DictMap>> {
    match arg(args, i) {
        Value::Dict(d) => Ok(d),
        other => Err(expected(builtin, "a schema dict", other)),
    }
}

/// Validates argument 0 against schema argument 1; the failure message.
fn check(args: &[Value], builtin: &str) -> VmResult<Result<(), String>> {
    schema_arg(args, 1, builtin)?;
    Ok(STRICT.validate(arg(args, 0), arg(args, 1)).map_err(|f| schema_message(&f)))
}

/// A runtime `schema_of(x)`: a schema dict passes through; other values get
/// the schema of their runtime type.
fn schema_of(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match arg(args, 0) {
        Value::Dict(_) => done(arg(args, 0).clone()),
        Value::Str(name) => done(Value::dict_from([("type", Value::str(name.as_str()))])),
        other => Err(expected("schema_of", "a type or a schema dict", other)),
    }
}

fn schema_is(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(check(args, "schema_is")?.is_ok()))
}

/// The report of a validation, as harn 0.9.11 shapes it:
/// `{errors, issues, message, value}` (plus `ok` for `schema_report`).
/// Every failure is listed; `message` is the first one's.
fn report(value: Value, schema: &Value, failures: &[Failure], with_ok: bool) -> Value {
    let value = if failures.is_empty() { value } else { STRICT.reported_value(&value, schema) };
    let mut out = DictMap::new();
    let mut errors = Vec::with_capacity(failures.len());
    let mut issues = Vec::with_capacity(failures.len());
    for f in failures {
        let message = schema_message(f);
        let path = path_text(&f.path);
        let what = message.strip_prefix(&format!("at {path}: ")).unwrap_or(&message).to_string();
        issues.push(Value::dict_from([
            ("code", Value::str("schema.validation")),
            ("message", Value::str(what)),
            ("path", Value::str(path)),
        ]));
        errors.push(Value::str(message));
    }
    let message = failures.first().map(schema_message).unwrap_or_default();
    if with_ok {
        out.insert(k("ok"), Value::Bool(failures.is_empty()));
    }
    out.insert(k("errors"), Value::list(errors));
    out.insert(k("issues"), Value::list(issues));
    out.insert(k("message"), Value::str(message));
    out.insert(k("value"), value);
    Value::dict(out)
}

fn schema_check(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    schema_arg(args, 1, "schema_check")?;
    let value = arg(args, 0);
    let failures = STRICT.validate_all(value, arg(args, 1));
    done(if failures.is_empty() {
        Value::ok(value.clone())
    } else {
        Value::err(report(value.clone(), arg(args, 1), &failures, false))
    })
}

fn schema_parse(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let schema = arg(args, 1);
    let filled = apply_defaults(arg(args, 0), schema, 0);
    schema_arg(args, 1, "schema_parse")?;
    let failures = STRICT.validate_all(&filled, schema);
    done(if failures.is_empty() { Value::ok(filled) } else { Value::err(report(filled, schema, &failures, false)) })
}

/// `schema_report(value, schema, apply_defaults?)`: the report dict, with `ok`.
fn schema_report(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let schema = arg(args, 1);
    schema_arg(args, 1, "schema_report")?;
    let value = if arg(args, 2).is_truthy() { apply_defaults(arg(args, 0), schema, 0) } else { arg(args, 0).clone() };
    let failures = STRICT.validate_all(&value, schema);
    done(report(value, schema, &failures, true))
}

fn schema_expect(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let schema = arg(args, 1);
    schema_arg(args, 1, "schema_expect")?;
    let filled = apply_defaults(arg(args, 0), schema, 0);
    match all_failures_message(&filled, schema) {
        None => done(filled),
        Some(msg) => Err(VmError::throw_msg(msg)),
    }
}

/// Every failure as `at <path>: <reason>`, joined with `; ` (0.9.11's
/// thrown message); `None` when the value validates.
fn all_failures_message(value: &Value, schema: &Value) -> Option<String> {
    let failures = STRICT.validate_all(value, schema);
    (!failures.is_empty()).then(|| failures.iter().map(schema_message).collect::<Vec<_>>().join("; "))
}

/// `json_validate(value, schema)`: true, or a thrown `at <path>: <reason>`
/// listing every failure.
fn json_validate(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    schema_arg(args, 1, "json_validate")?;
    match all_failures_message(arg(args, 0), arg(args, 1)) {
        None => done(Value::Bool(true)),
        Some(msg) => Err(VmError::throw_msg(msg)),
    }
}

fn schema_to_json_schema(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    schema_arg(args, 0, "schema_to_json_schema")?;
    done(convert(arg(args, 0), true, 0))
}

fn schema_from_json_schema(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    schema_arg(args, 0, "schema_from_json_schema")?;
    done(convert(arg(args, 0), false, 0))
}

fn k(s: &str) -> HStr {
    Rc::new(s.to_string())
}

fn names_arg(args: &[Value], i: usize, builtin: &str) -> VmResult<Vec<String>> {
    match arg(args, i) {
        Value::List(items) => Ok(items.iter().map(Value::display).collect()),
        Value::Str(s) => Ok(vec![s.to_string()]),
        other => Err(expected(builtin, "a list of property names", other)),
    }
}

/// Keeps (or drops) the named properties and their `required` entries.
fn filter_properties(schema: &DictMap, keep: impl Fn(&str) -> bool) -> Value {
    let mut out = schema.clone();
    if let Some(Value::Dict(props)) = schema.get(&k("properties")) {
        let kept: DictMap = props.iter().filter(|(name, _)| keep(name)).map(|(a, b)| (a.clone(), b.clone())).collect();
        out.insert(k("properties"), Value::dict(kept));
    }
    if let Some(Value::List(req)) = schema.get(&k("required")) {
        let kept: Vec<Value> = req.iter().filter(|r| keep(&r.display())).cloned().collect();
        out.insert(k("required"), Value::list(kept));
    }
    Value::dict(out)
}

fn schema_pick(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let schema = schema_arg(args, 0, "schema_pick")?;
    let names = names_arg(args, 1, "schema_pick")?;
    done(filter_properties(schema, |n| names.iter().any(|x| x == n)))
}

fn schema_omit(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let schema = schema_arg(args, 0, "schema_omit")?;
    let names = names_arg(args, 1, "schema_omit")?;
    done(filter_properties(schema, |n| !names.iter().any(|x| x == n)))
}

fn schema_partial(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let mut out = (**schema_arg(args, 0, "schema_partial")?).clone();
    out.insert(k("required"), Value::list(Vec::new()));
    done(Value::dict(out))
}

/// Merges the second schema's properties and required keys into the first.
fn schema_extend(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let base = schema_arg(args, 0, "schema_extend")?;
    let extra = schema_arg(args, 1, "schema_extend")?;
    let mut out = (**base).clone();
    let mut props = match base.get(&k("properties")) {
        Some(Value::Dict(p)) => (**p).clone(),
        _ => DictMap::new(),
    };
    if let Some(Value::Dict(p)) = extra.get(&k("properties")) {
        props.extend(p.iter().map(|(a, b)| (a.clone(), b.clone())));
    }
    let mut required: Vec<Value> = match base.get(&k("required")) {
        Some(Value::List(r)) => r.to_vec(),
        _ => Vec::new(),
    };
    if let Some(Value::List(r)) = extra.get(&k("required")) {
        for name in r.iter() {
            if !required.iter().any(|x| crate::runtime::value::values_equal(x, name)) {
                required.push(name.clone());
            }
        }
    }
    for (key, v) in extra.iter() {
        if key.as_str() != "properties" && key.as_str() != "required" {
            out.insert(key.clone(), v.clone());
        }
    }
    out.insert(k("properties"), Value::dict(props));
    out.insert(k("required"), Value::list(required));
    out.entry(k("type")).or_insert_with(|| Value::str("dict"));
    done(Value::dict(out))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<String, String> {
        run_builtin(name, args, &no_callback).map(|v| v.display())
    }

    fn schema() -> Value {
        Value::dict_from([
            ("type", Value::str("dict")),
            ("properties", Value::dict_from([("name", Value::dict_from([("type", Value::str("string"))]))])),
            ("required", Value::list(vec![Value::str("name"), Value::str("age")])),
        ])
    }

    #[test]
    fn json_validate_messages() {
        let v = Value::dict_from([("name", Value::str("alice"))]);
        assert_eq!(call("json_validate", &[v, schema()]).unwrap_err(), "Thrown: at root: missing required key 'age'");
        let v = Value::dict_from([("name", Value::Int(1)), ("age", Value::Int(1))]);
        assert_eq!(call("json_validate", &[v, schema()]).unwrap_err(), "Thrown: at name: expected type 'string', got 'int'");
        assert_eq!(
            call("json_validate", &[Value::Nil, Value::Int(1)]).unwrap_err(),
            "Thrown: json_validate: expected a schema dict, got int"
        );
    }

    #[test]
    fn bounds_are_all_listed() {
        let bounded = Value::dict_from([("maximum", Value::Int(1)), ("minimum", Value::Int(10))]);
        assert_eq!(
            call("json_validate", &[Value::Int(5), bounded]).unwrap_err(),
            "Thrown: at root: expected value >= 10, got 5; at root: expected value <= 1, got 5"
        );
        let list = Value::dict_from([("items", Value::dict_from([("type", Value::str("int"))])), ("min_items", Value::Int(3))]);
        let report = call("schema_report", &[Value::list(vec![Value::Int(1), Value::str("a")]), list]).unwrap();
        assert!(report.contains("expected at least 3 items, got 2"), "{report}");
        assert!(report.ends_with("value: [1]}"), "{report}");
    }

    #[test]
    fn check_parse_and_transforms() {
        let v = Value::dict_from([("name", Value::str("a"))]);
        assert_eq!(
            call("schema_check", &[v.clone(), schema()]).unwrap(),
            "Result.Err({errors: [at root: missing required key 'age'], issues: [{code: schema.validation, message: missing required key 'age', path: root}], message: at root: missing required key 'age', value: {name: a}})"
        );
        let report = call("schema_report", &[v.clone(), schema()]).unwrap();
        assert!(report.contains("ok: false"), "{report}");
        assert_eq!(
            call("schema_is", &[v.clone(), run_builtin("schema_partial", &[schema()], &no_callback).unwrap()]).unwrap(),
            "true"
        );
        let picked = run_builtin("schema_pick", &[schema(), Value::list(vec![Value::str("name")])], &no_callback).unwrap();
        assert_eq!(call("schema_is", &[v, picked]).unwrap(), "true");
        let with_default = Value::dict_from([(
            "properties",
            Value::dict_from([("role", Value::dict_from([("type", Value::str("string")), ("default", Value::str("user"))]))]),
        )]);
        assert_eq!(call("schema_parse", &[Value::dict_from([]), with_default]).unwrap(), "Result.Ok({role: user})");
    }
}
