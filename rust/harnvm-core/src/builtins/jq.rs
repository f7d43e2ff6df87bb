//! `jq(value, query)` / `jq_first(value, query)`: a subset of the jq query
//! language over Harn values.
//!
//! Supported: `.`, `.a.b`, `.["k"]`, `.[n]`, `.[]`, `.[a:b]`, `..`, pipes
//! `|`, `,`, literals, `{k: f}` and `[f]` construction, comparisons,
//! `and`/`or`/`not`, and the functions `length keys values type map(f)
//! select(f) not empty`. A query is parsed first (bad syntax throws
//! `jq: ...`), then evaluated to a stream of results; `jq` returns them as a
//! list, `jq_first` the first (or nil). Nesting depth is bounded.

use std::rc::Rc;

use super::args::{done, expected};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, compare_values, values_equal, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] =
    &[BuiltinDef { name: "jq", imp: Native(jq) }, BuiltinDef { name: "jq_first", imp: Native(jq_first) }];

const MAX_DEPTH: usize = 64;

#[cold]
fn fail(reason: impl std::fmt::Display) -> VmError {
    VmError::throw_msg(format!("jq: {reason}"))
}

#[derive(Debug, Clone)]
enum Q {
    Identity,
    Recurse,
    Lit(Value),
    Field(Box<Q>, String),
    Index(Box<Q>, Box<Q>),
    Slice(Box<Q>, Option<Box<Q>>, Option<Box<Q>>),
    Iterate(Box<Q>),
    Pipe(Box<Q>, Box<Q>),
    Comma(Box<Q>, Box<Q>),
    Cmp(Box<Q>, &'static str, Box<Q>),
    And(Box<Q>, Box<Q>),
    Or(Box<Q>, Box<Q>),
    Not(Box<Q>),
    Object(Vec<(String, Q)>),
    Array(Option<Box<Q>>),
    Call(String, Vec<Q>),
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            let after = self.s.get(self.i + t.len()).copied();
            if t.bytes().all(|b| b.is_ascii_alphabetic()) && after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return false;
            }
            self.i += t.len();
            true
        } else {
            false
        }
    }
    fn ident(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_') {
            self.i += 1;
        }
        if self.i > start && !self.s[start].is_ascii_digit() {
            Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
        } else {
            self.i = start;
            None
        }
    }
    fn enter(&mut self) -> VmResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(fail("query is nested too deeply"));
        }
        Ok(())
    }

    fn pipe(&mut self) -> VmResult<Q> {
        self.enter()?;
        let mut q = self.comma()?;
        while self.eat("|") {
            q = Q::Pipe(Box::new(q), Box::new(self.comma()?));
        }
        self.depth -= 1;
        Ok(q)
    }
    fn comma(&mut self) -> VmResult<Q> {
        let mut q = self.or()?;
        while self.eat(",") {
            q = Q::Comma(Box::new(q), Box::new(self.or()?));
        }
        Ok(q)
    }
    fn or(&mut self) -> VmResult<Q> {
        let mut q = self.and()?;
        while self.eat("or") {
            q = Q::Or(Box::new(q), Box::new(self.and()?));
        }
        Ok(q)
    }
    fn and(&mut self) -> VmResult<Q> {
        let mut q = self.not()?;
        while self.eat("and") {
            q = Q::And(Box::new(q), Box::new(self.not()?));
        }
        Ok(q)
    }
    fn not(&mut self) -> VmResult<Q> {
        let save = self.i;
        if self.eat("not") {
            self.ws();
            // `not` alone is the filter; `not EXPR` negates EXPR.
            if self.i < self.s.len() && !matches!(self.s[self.i], b'|' | b')' | b',' | b']' | b'}') {
                self.enter()?;
                let inner = self.not()?;
                self.depth -= 1;
                return Ok(Q::Not(Box::new(inner)));
            }
            self.i = save;
        }
        self.cmp()
    }
    fn cmp(&mut self) -> VmResult<Q> {
        let lhs = self.postfix()?;
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.eat(op) {
                let op: &'static str = match op {
                    "==" => "==",
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    "<" => "<",
                    _ => ">",
                };
                return Ok(Q::Cmp(Box::new(lhs), op, Box::new(self.postfix()?)));
            }
        }
        Ok(lhs)
    }
    fn postfix(&mut self) -> VmResult<Q> {
        let mut q = self.primary()?;
        loop {
            self.ws();
            if self.s[self.i..].starts_with(b"..") {
                break;
            }
            if self.eat("[") {
                q = self.bracket(q)?;
            } else if self.s.get(self.i) == Some(&b'.') {
                self.i += 1;
                if self.eat("[") {
                    q = self.bracket(q)?;
                } else if let Some(name) = self.ident().or_else(|| self.string_lit()) {
                    q = Q::Field(Box::new(q), name);
                } else {
                    return Err(fail("expected a field name after '.'"));
                }
            } else if self.eat("?") {
                continue;
            } else {
                break;
            }
        }
        Ok(q)
    }
    /// After `[`: `]`, `expr]`, or `a:b]`.
    fn bracket(&mut self, base: Q) -> VmResult<Q> {
        if self.eat("]") {
            return Ok(Q::Iterate(Box::new(base)));
        }
        let from = if self.eat(":") { None } else { Some(Box::new(self.pipe()?)) };
        let from = match from {
            // `[i]`: an index, not a slice.
            Some(index) if !self.eat(":") => {
                if !self.eat("]") {
                    return Err(fail("expected ']'"));
                }
                return Ok(Q::Index(Box::new(base), index));
            }
            other => other,
        };
        let to = if self.eat("]") {
            return Ok(Q::Slice(Box::new(base), from, None));
        } else {
            Some(Box::new(self.pipe()?))
        };
        if !self.eat("]") {
            return Err(fail("expected ']'"));
        }
        Ok(Q::Slice(Box::new(base), from, to))
    }
    fn string_lit(&mut self) -> Option<String> {
        self.ws();
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i;
        let mut j = self.i + 1;
        while j < self.s.len() && self.s[j] != b'"' {
            if self.s[j] == b'\\' {
                j += 1;
            }
            j += 1;
        }
        let text = std::str::from_utf8(&self.s[start..(j + 1).min(self.s.len())]).ok()?;
        let parsed: String = serde_json::from_str(text).ok()?;
        self.i = j + 1;
        Some(parsed)
    }
    fn primary(&mut self) -> VmResult<Q> {
        self.ws();
        if self.eat("..") {
            return Ok(Q::Recurse);
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if let Some(name) = self.ident().or_else(|| self.string_lit()) {
                return Ok(Q::Field(Box::new(Q::Identity), name));
            }
            if self.eat("[") {
                return self.bracket(Q::Identity);
            }
            return Ok(Q::Identity);
        }
        if let Some(s) = self.string_lit() {
            return Ok(Q::Lit(Value::str(s)));
        }
        if self.eat("(") {
            let q = self.pipe()?;
            if !self.eat(")") {
                return Err(fail("expected ')'"));
            }
            return Ok(q);
        }
        if self.eat("[") {
            if self.eat("]") {
                return Ok(Q::Array(None));
            }
            let q = self.pipe()?;
            if !self.eat("]") {
                return Err(fail("expected ']'"));
            }
            return Ok(Q::Array(Some(Box::new(q))));
        }
        if self.eat("{") {
            let mut fields = Vec::new();
            if !self.eat("}") {
                loop {
                    let key = self.ident().or_else(|| self.string_lit()).ok_or_else(|| fail("expected an object key"))?;
                    let value = if self.eat(":") { self.or()? } else { Q::Field(Box::new(Q::Identity), key.clone()) };
                    fields.push((key, value));
                    if self.eat("}") {
                        break;
                    }
                    if !self.eat(",") {
                        return Err(fail("expected ',' or '}' in object"));
                    }
                }
            }
            return Ok(Q::Object(fields));
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_digit() || (self.i == start && self.s[self.i] == b'-') || self.s[self.i] == b'.')
        {
            self.i += 1;
        }
        if self.i > start {
            let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            return match text.parse::<i64>() {
                Ok(n) => Ok(Q::Lit(Value::Int(n))),
                Err(_) => text.parse::<f64>().map(|f| Q::Lit(Value::Float(f))).map_err(|_| fail(format!("bad number '{text}'"))),
            };
        }
        let name = self.ident().ok_or_else(|| fail(format!("unexpected input at offset {}", self.i)))?;
        match name.as_str() {
            "true" => return Ok(Q::Lit(Value::Bool(true))),
            "false" => return Ok(Q::Lit(Value::Bool(false))),
            "null" => return Ok(Q::Lit(Value::Nil)),
            _ => {}
        }
        let mut args = Vec::new();
        if self.eat("(") {
            loop {
                args.push(self.pipe()?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(";") {
                    return Err(fail("expected ';' or ')' in arguments"));
                }
            }
        }
        Ok(Q::Call(name, args))
    }
}

fn k(s: &str) -> HStr {
    Rc::new(s.to_string())
}

fn jq_type(v: &Value) -> &'static str {
    match v {
        Value::Nil => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::Float(_) => "number",
        Value::Str(_) => "string",
        Value::List(_) | Value::Set(_) => "array",
        Value::Dict(_) | Value::Struct(_) => "object",
        other => other.type_name(),
    }
}

fn children(v: &Value) -> Vec<Value> {
    match v {
        Value::List(items) | Value::Set(items) => items.to_vec(),
        Value::Dict(d) => d.values().cloned().collect(),
        Value::Struct(s) => s.values.clone(),
        _ => Vec::new(),
    }
}

fn eval(q: &Q, input: &Value, out: &mut Vec<Value>, depth: usize) -> VmResult<()> {
    if depth > MAX_DEPTH * 4 {
        return Err(fail("evaluation is nested too deeply"));
    }
    let one = |q: &Q| -> VmResult<Vec<Value>> {
        let mut r = Vec::new();
        eval(q, input, &mut r, depth + 1)?;
        Ok(r)
    };
    match q {
        Q::Identity => out.push(input.clone()),
        Q::Lit(v) => out.push(v.clone()),
        Q::Recurse => {
            let mut stack = vec![input.clone()];
            while let Some(v) = stack.pop() {
                let mut kids = children(&v);
                out.push(v);
                kids.reverse();
                stack.extend(kids);
            }
        }
        Q::Field(base, name) => {
            for v in one(base)? {
                out.push(match &v {
                    Value::Dict(d) => d.get(&k(name)).cloned().unwrap_or(Value::Nil),
                    Value::Struct(s) => s.get(name).cloned().unwrap_or(Value::Nil),
                    Value::Nil => Value::Nil,
                    other => return Err(fail(format!("cannot index {} with \"{name}\"", jq_type(other)))),
                });
            }
        }
        Q::Index(base, index) => {
            for v in one(base)? {
                for i in one(index)? {
                    out.push(match (&v, &i) {
                        (Value::List(items), Value::Int(n)) => {
                            let n = if *n < 0 { items.len() as i64 + n } else { *n };
                            usize::try_from(n).ok().and_then(|n| items.get(n)).cloned().unwrap_or(Value::Nil)
                        }
                        (Value::Dict(d), Value::Str(s)) => d.get(s).cloned().unwrap_or(Value::Nil),
                        (Value::Nil, _) => Value::Nil,
                        (a, b) => return Err(fail(format!("cannot index {} with {}", jq_type(a), jq_type(b)))),
                    });
                }
            }
        }
        Q::Slice(base, from, to) => {
            for v in one(base)? {
                let Value::List(items) = &v else {
                    return Err(fail(format!("cannot slice {}", jq_type(&v))));
                };
                let len = items.len() as i64;
                let bound = |b: &Option<Box<Q>>, default: i64| -> VmResult<usize> {
                    let n = match b {
                        Some(q) => one(q)?.first().and_then(Value::as_int).unwrap_or(default),
                        None => default,
                    };
                    Ok((if n < 0 { len + n } else { n }).clamp(0, len) as usize)
                };
                let (a, b) = (bound(from, 0)?, bound(to, len)?);
                out.push(Value::list(if a < b { items[a..b].to_vec() } else { Vec::new() }));
            }
        }
        Q::Iterate(base) => {
            for v in one(base)? {
                match &v {
                    Value::List(_) | Value::Set(_) | Value::Dict(_) | Value::Struct(_) => out.extend(children(&v)),
                    other => return Err(fail(format!("cannot iterate over {}", jq_type(other)))),
                }
            }
        }
        Q::Pipe(a, b) => {
            for v in one(a)? {
                eval(b, &v, out, depth + 1)?;
            }
        }
        Q::Comma(a, b) => {
            out.extend(one(a)?);
            out.extend(one(b)?);
        }
        Q::Cmp(a, op, b) => {
            for x in one(a)? {
                for y in one(b)? {
                    let ord = compare_values(&x, &y);
                    out.push(Value::Bool(match *op {
                        "==" => values_equal(&x, &y),
                        "!=" => !values_equal(&x, &y),
                        "<" => ord.is_lt(),
                        ">" => ord.is_gt(),
                        "<=" => ord.is_le(),
                        _ => ord.is_ge(),
                    }));
                }
            }
        }
        Q::And(a, b) => {
            for x in one(a)? {
                if !x.is_truthy() {
                    out.push(Value::Bool(false));
                    continue;
                }
                for y in one(b)? {
                    out.push(Value::Bool(y.is_truthy()));
                }
            }
        }
        Q::Or(a, b) => {
            for x in one(a)? {
                if x.is_truthy() {
                    out.push(Value::Bool(true));
                    continue;
                }
                for y in one(b)? {
                    out.push(Value::Bool(y.is_truthy()));
                }
            }
        }
        Q::Not(a) => {
            for x in one(a)? {
                out.push(Value::Bool(!x.is_truthy()));
            }
        }
        Q::Array(inner) => {
            let items = match inner {
                Some(q) => one(q)?,
                None => Vec::new(),
            };
            out.push(Value::list(items));
        }
        Q::Object(fields) => {
            // One object per combination of field results (jq's cartesian product).
            let mut objects = vec![DictMap::new()];
            for (name, fq) in fields {
                let values = one(fq)?;
                let mut next = Vec::new();
                for obj in &objects {
                    for v in &values {
                        let mut o = obj.clone();
                        o.insert(k(name), v.clone());
                        next.push(o);
                    }
                }
                objects = next;
            }
            out.extend(objects.into_iter().map(Value::dict));
        }
        Q::Call(name, args) => match (name.as_str(), args.as_slice()) {
            ("length", []) => out.push(match input {
                Value::Str(s) => Value::Int(s.chars().count() as i64),
                Value::List(items) | Value::Set(items) => Value::Int(items.len() as i64),
                Value::Dict(d) => Value::Int(d.len() as i64),
                Value::Nil => Value::Int(0),
                Value::Int(n) => Value::Int(n.saturating_abs()),
                Value::Float(f) => Value::Float(f.abs()),
                other => return Err(fail(format!("{} has no length", jq_type(other)))),
            }),
            ("keys", []) => match input {
                Value::Dict(d) => out.push(Value::list(d.keys().map(|x| Value::str(x.as_str())).collect())),
                Value::List(items) => out.push(Value::list((0..items.len() as i64).map(Value::Int).collect())),
                other => return Err(fail(format!("{} has no keys", jq_type(other)))),
            },
            ("values", []) => out.push(Value::list(children(input))),
            ("type", []) => out.push(Value::str(jq_type(input))),
            ("not", []) => out.push(Value::Bool(!input.is_truthy())),
            ("empty", []) => {}
            ("select", [f]) => {
                if one(f)?.iter().any(Value::is_truthy) {
                    out.push(input.clone());
                }
            }
            ("map", [f]) => {
                let mut mapped = Vec::new();
                for item in children(input) {
                    eval(f, &item, &mut mapped, depth + 1)?;
                }
                out.push(Value::list(mapped));
            }
            (other, a) => return Err(fail(format!("unknown function {other}/{}", a.len()))),
        },
    }
    Ok(())
}

fn run_query(args: &[Value], builtin: &str) -> VmResult<Vec<Value>> {
    let query = match arg(args, 1) {
        Value::Str(s) => s,
        other => return Err(expected(builtin, "a query string", other)),
    };
    let mut p = P { s: query.as_bytes(), i: 0, depth: 0 };
    let q = p.pipe()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(fail(format!("unexpected input at offset {} in '{query}'", p.i)));
    }
    let mut out = Vec::new();
    eval(&q, arg(args, 0), &mut out, 0)?;
    Ok(out)
}

fn jq(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::list(run_query(args, "jq")?))
}

fn jq_first(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(run_query(args, "jq_first")?.into_iter().next().unwrap_or(Value::Nil))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn q(doc: &str, query: &str) -> Result<String, String> {
        let v = super::super::json::parse_json(doc).unwrap();
        run_builtin("jq", &[v, Value::str(query)], &no_callback).map(|v| v.display())
    }

    #[test]
    fn queries() {
        let doc = r#"{"a":[{"n":1,"ok":true},{"n":2,"ok":false}],"b":{"c":null}}"#;
        assert_eq!(q(doc, ".a[] | select(.ok) | .n").unwrap(), "[1]");
        assert_eq!(q(doc, ".a | map(.n)").unwrap(), "[[1, 2]]");
        assert_eq!(q(doc, ".a[1:] | length").unwrap(), "[1]");
        assert_eq!(q(doc, "{x: .a[0].n}, .b.c").unwrap(), "[{x: 1}, nil]");
        assert_eq!(q(doc, ".a[] | select(not .ok) | .n").unwrap(), "[2]");
    }

    #[test]
    fn errors() {
        assert_eq!(q("{}", ".a |").unwrap_err(), "Thrown: jq: unexpected input at offset 4");
        assert_eq!(q("1", ".[]").unwrap_err(), "Thrown: jq: cannot iterate over number");
        assert_eq!(q("1", "frob").unwrap_err(), "Thrown: jq: unknown function frob/0");
        let deep = format!("{}.{}", "(".repeat(200), ")".repeat(200));
        assert!(q("1", &deep).unwrap_err().contains("nested too deeply"));
    }
}
