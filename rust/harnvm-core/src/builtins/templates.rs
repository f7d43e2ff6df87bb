//! `render_string(template, vars)`: a small logic-light template engine.
//!
//! Syntax: `{{ expr }}` (with filters `{{ name | upper | default("x") }}`),
//! `{{ if cond }} … {{ elif cond }} … {{ else }} … {{ end }}` and
//! `{{ for x in xs }} … {{ end }}` (inside a loop, `loop.index` (1-based),
//! `loop.index0`, `loop.first`, `loop.last`, `loop.length`). Expressions are
//! paths (`a.b[0]`), literals, `!`/`not`, comparisons, `and`/`or` and
//! parentheses. `nil` renders as the empty string. The template is parsed
//! first, so an unclosed block or a bad tag is an error even on branches that
//! would not run; block nesting is bounded.

use std::rc::Rc;

use super::args::{check_alloc, done, expected};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, compare_values, values_equal, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[BuiltinDef { name: "render_string", imp: Native(render_string) }];

/// Deepest nesting of blocks and parenthesized expressions.
const MAX_NESTING: usize = 64;

#[cold]
fn fail(reason: impl std::fmt::Display) -> VmError {
    VmError::throw_msg(format!("render_string: {reason}"))
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Path(Vec<PathPart>),
    Not(Box<Expr>),
    Cmp(Box<Expr>, &'static str, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Filter(Box<Expr>, String, Vec<Expr>),
}

#[derive(Debug, Clone)]
enum PathPart {
    Key(String),
    Index(i64),
}

#[derive(Debug)]
enum Node {
    Text(String),
    Out(Expr),
    If(Vec<(Expr, Vec<Node>)>, Vec<Node>),
    For(String, Expr, Vec<Node>),
}

// ---- expression lexer/parser -------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Sym(&'static str),
}

fn lex(src: &str) -> VmResult<Vec<Tok>> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '-'
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                && !matches!(out.last(), Some(Tok::Ident(_) | Tok::Int(_) | Tok::Float(_) | Tok::Str(_))))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            if text.contains('.') {
                out.push(Tok::Float(text.parse().map_err(|_| fail(format!("bad number '{text}'")))?));
            } else {
                out.push(Tok::Int(text.parse().map_err(|_| fail(format!("bad number '{text}'")))?));
            }
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(fail("unterminated string in tag")),
                    Some(&q) if q == c => break,
                    Some('\\') => {
                        i += 1;
                        match chars.get(i) {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(&other) => s.push(other),
                            None => return Err(fail("unterminated string in tag")),
                        }
                    }
                    Some(&ch) => s.push(ch),
                }
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(s));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                "==" => Some("=="),
                "!=" => Some("!="),
                "<=" => Some("<="),
                ">=" => Some(">="),
                "&&" => Some("and"),
                "||" => Some("or"),
                _ => None,
            };
            if let Some(sym) = sym {
                out.push(Tok::Sym(sym));
                i += 2;
                continue;
            }
            let sym = match c {
                '.' => ".",
                '[' => "[",
                ']' => "]",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '|' => "|",
                '!' => "!",
                '<' => "<",
                '>' => ">",
                ':' => ":",
                _ => return Err(fail(format!("unexpected character '{c}' in tag"))),
            };
            out.push(Tok::Sym(sym));
            i += 1;
        }
    }
    Ok(out)
}

struct ExprParser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

impl ExprParser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(x)) if x == w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn parse_full(mut self) -> VmResult<Expr> {
        let e = self.filtered()?;
        if let Some(t) = self.peek() {
            return Err(fail(format!("unexpected {t:?} in expression")));
        }
        Ok(e)
    }

    fn filtered(&mut self) -> VmResult<Expr> {
        let mut e = self.or()?;
        while self.eat_sym("|") {
            let Some(Tok::Ident(name)) = self.peek().cloned() else {
                return Err(fail("expected a filter name after '|'"));
            };
            self.pos += 1;
            let mut fargs = Vec::new();
            if self.eat_sym("(") {
                if !self.eat_sym(")") {
                    loop {
                        fargs.push(self.or()?);
                        if self.eat_sym(")") {
                            break;
                        }
                        if !self.eat_sym(",") {
                            return Err(fail("expected ',' or ')' in filter arguments"));
                        }
                    }
                }
            } else if self.eat_sym(":") {
                fargs.push(self.or()?);
            }
            e = Expr::Filter(Box::new(e), name, fargs);
        }
        Ok(e)
    }

    fn or(&mut self) -> VmResult<Expr> {
        let mut e = self.and()?;
        while self.eat_word("or") || self.eat_sym("or") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> VmResult<Expr> {
        let mut e = self.not()?;
        while self.eat_word("and") || self.eat_sym("and") {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> VmResult<Expr> {
        if self.eat_sym("!") || self.eat_word("not") {
            self.depth += 1;
            if self.depth > MAX_NESTING {
                return Err(fail("expression is nested too deeply"));
            }
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> VmResult<Expr> {
        let lhs = self.primary()?;
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.eat_sym(op) {
                let rhs = self.primary()?;
                let op: &'static str = match op {
                    "==" => "==",
                    "!=" => "!=",
                    "<=" => "<=",
                    ">=" => ">=",
                    "<" => "<",
                    _ => ">",
                };
                return Ok(Expr::Cmp(Box::new(lhs), op, Box::new(rhs)));
            }
        }
        Ok(lhs)
    }

    fn primary(&mut self) -> VmResult<Expr> {
        let tok = self.peek().cloned().ok_or_else(|| fail("expected an expression"))?;
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Lit(Value::str(s))),
            Tok::Int(n) => Ok(Expr::Lit(Value::Int(n))),
            Tok::Float(f) => Ok(Expr::Lit(Value::Float(f))),
            Tok::Sym("(") => {
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(fail("expression is nested too deeply"));
                }
                let e = self.filtered()?;
                self.depth -= 1;
                if !self.eat_sym(")") {
                    return Err(fail("expected ')'"));
                }
                Ok(e)
            }
            Tok::Ident(w) if w == "true" => Ok(Expr::Lit(Value::Bool(true))),
            Tok::Ident(w) if w == "false" => Ok(Expr::Lit(Value::Bool(false))),
            Tok::Ident(w) if w == "nil" || w == "null" => Ok(Expr::Lit(Value::Nil)),
            Tok::Ident(first) => {
                let mut parts = vec![PathPart::Key(first)];
                loop {
                    if self.eat_sym(".") {
                        match self.peek().cloned() {
                            Some(Tok::Ident(k)) => parts.push(PathPart::Key(k)),
                            Some(Tok::Int(n)) => parts.push(PathPart::Index(n)),
                            _ => return Err(fail("expected a name after '.'")),
                        }
                        self.pos += 1;
                    } else if self.eat_sym("[") {
                        match self.peek().cloned() {
                            Some(Tok::Int(n)) => parts.push(PathPart::Index(n)),
                            Some(Tok::Str(k)) => parts.push(PathPart::Key(k)),
                            _ => return Err(fail("expected an index or a string key in '[...]'")),
                        }
                        self.pos += 1;
                        if !self.eat_sym("]") {
                            return Err(fail("expected ']'"));
                        }
                    } else {
                        break;
                    }
                }
                Ok(Expr::Path(parts))
            }
            other => Err(fail(format!("unexpected {other:?} in expression"))),
        }
    }
}

fn parse_expr(src: &str) -> VmResult<Expr> {
    ExprParser { toks: lex(src)?, pos: 0, depth: 0 }.parse_full()
}

// ---- template parser --------------------------------------------------------------

/// What ended a block: `end`, `else`, `elif cond`, or the end of input.
enum Terminator {
    End,
    Else,
    Elif(Expr),
    Eof,
}

struct TemplateParser<'a> {
    src: &'a str,
    pos: usize,
}

impl TemplateParser<'_> {
    fn block(&mut self, depth: usize) -> VmResult<(Vec<Node>, Terminator)> {
        if depth > MAX_NESTING {
            return Err(fail(format!("blocks are nested deeper than {MAX_NESTING} levels")));
        }
        let mut nodes = Vec::new();
        loop {
            let rest = &self.src[self.pos..];
            let Some(open) = rest.find("{{") else {
                if !rest.is_empty() {
                    nodes.push(Node::Text(rest.to_string()));
                }
                self.pos = self.src.len();
                return Ok((nodes, Terminator::Eof));
            };
            if open > 0 {
                nodes.push(Node::Text(rest[..open].to_string()));
            }
            let tag_start = self.pos + open + 2;
            let close = self.src[tag_start..].find("}}").ok_or_else(|| fail("unclosed '{{' tag"))?;
            let tag = self.src[tag_start..tag_start + close].trim();
            self.pos = tag_start + close + 2;
            let (word, rest_of_tag) = match tag.split_once(char::is_whitespace) {
                Some((w, r)) => (w, r.trim()),
                None => (tag, ""),
            };
            match word {
                "end" | "endif" | "endfor" => return Ok((nodes, Terminator::End)),
                "else" if rest_of_tag.starts_with("if ") => {
                    return Ok((nodes, Terminator::Elif(parse_expr(&rest_of_tag[3..])?)));
                }
                "else" => return Ok((nodes, Terminator::Else)),
                "elif" => return Ok((nodes, Terminator::Elif(parse_expr(rest_of_tag)?))),
                "if" => {
                    let mut branches = Vec::new();
                    let mut cond = parse_expr(rest_of_tag)?;
                    let otherwise = loop {
                        let (body, term) = self.block(depth + 1)?;
                        branches.push((cond, body));
                        match term {
                            Terminator::End => break Vec::new(),
                            Terminator::Elif(next) => cond = next,
                            Terminator::Else => {
                                let (body, term) = self.block(depth + 1)?;
                                if !matches!(term, Terminator::End) {
                                    return Err(fail("'if' block is missing its {{ end }}"));
                                }
                                break body;
                            }
                            Terminator::Eof => return Err(fail("'if' block is missing its {{ end }}")),
                        }
                    };
                    nodes.push(Node::If(branches, otherwise));
                }
                "for" => {
                    let (var, iterable) = rest_of_tag
                        .split_once(" in ")
                        .ok_or_else(|| fail(format!("expected 'for NAME in EXPR', got '{tag}'")))?;
                    let var = var.trim();
                    if var.is_empty() || !var.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(fail(format!("invalid loop variable '{var}'")));
                    }
                    let iterable = parse_expr(iterable)?;
                    let (body, term) = self.block(depth + 1)?;
                    if !matches!(term, Terminator::End) {
                        return Err(fail("'for' block is missing its {{ end }}"));
                    }
                    nodes.push(Node::For(var.to_string(), iterable, body));
                }
                _ => nodes.push(Node::Out(parse_expr(tag)?)),
            }
        }
    }
}

fn parse_template(src: &str) -> VmResult<Vec<Node>> {
    let mut p = TemplateParser { src, pos: 0 };
    let (nodes, term) = p.block(0)?;
    match term {
        Terminator::Eof => Ok(nodes),
        Terminator::End => Err(fail("unexpected {{ end }} without an open block")),
        Terminator::Else | Terminator::Elif(_) => Err(fail("unexpected {{ else }} outside an 'if' block")),
    }
}

// ---- rendering ----------------------------------------------------------------------

struct Scope<'a> {
    root: &'a Value,
    /// Innermost last: loop variables and `loop` dicts.
    locals: Vec<(String, Value)>,
}

fn k(s: &str) -> HStr {
    Rc::new(s.to_string())
}

fn step(v: &Value, part: &PathPart) -> Value {
    match (v, part) {
        (Value::Dict(d), PathPart::Key(key)) => d.get(&k(key)).cloned().unwrap_or(Value::Nil),
        (Value::Struct(s), PathPart::Key(key)) => s.get(key).cloned().unwrap_or(Value::Nil),
        (Value::List(items), PathPart::Index(i)) => {
            let i = if *i < 0 { items.len() as i64 + i } else { *i };
            usize::try_from(i).ok().and_then(|i| items.get(i)).cloned().unwrap_or(Value::Nil)
        }
        (Value::List(items), PathPart::Key(key)) if key == "length" => Value::Int(items.len() as i64),
        _ => Value::Nil,
    }
}

impl Scope<'_> {
    fn lookup(&self, parts: &[PathPart]) -> Value {
        let Some(PathPart::Key(first)) = parts.first() else { return Value::Nil };
        let mut cur = match self.locals.iter().rev().find(|(n, _)| n == first) {
            Some((_, v)) => v.clone(),
            None => step(self.root, &PathPart::Key(first.clone())),
        };
        for p in &parts[1..] {
            cur = step(&cur, p);
        }
        cur
    }

    fn eval(&self, e: &Expr) -> VmResult<Value> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::Path(p) => self.lookup(p),
            Expr::Not(x) => Value::Bool(!self.eval(x)?.is_truthy()),
            Expr::And(a, b) => {
                let a = self.eval(a)?;
                if a.is_truthy() {
                    self.eval(b)?
                } else {
                    a
                }
            }
            Expr::Or(a, b) => {
                let a = self.eval(a)?;
                if a.is_truthy() {
                    a
                } else {
                    self.eval(b)?
                }
            }
            Expr::Cmp(a, op, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                let ord = compare_values(&a, &b);
                Value::Bool(match *op {
                    "==" => values_equal(&a, &b),
                    "!=" => !values_equal(&a, &b),
                    "<" => ord.is_lt(),
                    ">" => ord.is_gt(),
                    "<=" => ord.is_le(),
                    _ => ord.is_ge(),
                })
            }
            Expr::Filter(x, name, fargs) => {
                let v = self.eval(x)?;
                let fargs = fargs.iter().map(|a| self.eval(a)).collect::<VmResult<Vec<_>>>()?;
                apply_filter(&v, name, &fargs)?
            }
        })
    }
}

fn text_of(v: &Value) -> String {
    if v.is_nil() {
        String::new()
    } else {
        v.display()
    }
}

fn apply_filter(v: &Value, name: &str, fargs: &[Value]) -> VmResult<Value> {
    let s = || text_of(v);
    Ok(match name {
        "upper" | "uppercase" => Value::str(s().to_uppercase()),
        "lower" | "lowercase" => Value::str(s().to_lowercase()),
        "trim" => Value::str(s().trim()),
        "capitalize" => {
            let t = s();
            let mut c = t.chars();
            Value::str(c.next().map_or(String::new(), |f| f.to_uppercase().collect::<String>() + c.as_str()))
        }
        "title" => Value::str(
            s().split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next().map_or(String::new(), |f| f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase())
                })
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "length" | "len" | "count" => Value::Int(v.len_of()),
        "default" => {
            if v.is_nil() || matches!(v, Value::Str(x) if x.is_empty()) {
                fargs.first().cloned().unwrap_or(Value::Nil)
            } else {
                v.clone()
            }
        }
        "join" => {
            let sep = fargs.first().map_or(String::new(), text_of);
            match v {
                Value::List(items) | Value::Set(items) => Value::str(items.iter().map(text_of).collect::<Vec<_>>().join(&sep)),
                other => Value::str(text_of(other)),
            }
        }
        "json" => Value::str(super::json::to_json(v)?),
        "first" => match v {
            Value::List(items) => items.first().cloned().unwrap_or(Value::Nil),
            _ => Value::Nil,
        },
        "last" => match v {
            Value::List(items) => items.last().cloned().unwrap_or(Value::Nil),
            _ => Value::Nil,
        },
        "indent" => {
            let width = fargs.first().and_then(Value::as_int).unwrap_or(2).clamp(0, 1024) as usize;
            let pad = " ".repeat(width);
            Value::str(s().lines().collect::<Vec<_>>().join(&format!("\n{pad}")))
        }
        other => return Err(fail(format!("unknown filter '{other}'"))),
    })
}

trait LenOf {
    fn len_of(&self) -> i64;
}

impl LenOf for Value {
    fn len_of(&self) -> i64 {
        match self {
            Value::Str(s) => s.chars().count() as i64,
            Value::List(items) | Value::Set(items) => items.len() as i64,
            Value::Dict(d) => d.len() as i64,
            _ => 0,
        }
    }
}

fn render(nodes: &[Node], scope: &mut Scope, out: &mut String, ctx: &Ctx) -> VmResult<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Out(e) => out.push_str(&text_of(&scope.eval(e)?)),
            Node::If(branches, otherwise) => {
                let mut taken = false;
                for (cond, body) in branches {
                    if scope.eval(cond)?.is_truthy() {
                        render(body, scope, out, ctx)?;
                        taken = true;
                        break;
                    }
                }
                if !taken {
                    render(otherwise, scope, out, ctx)?;
                }
            }
            Node::For(var, iterable, body) => {
                let items: Vec<Value> = match &scope.eval(iterable)? {
                    Value::List(items) | Value::Set(items) => items.to_vec(),
                    Value::Dict(d) => {
                        d.iter().map(|(a, b)| Value::dict_from([("key", Value::str(a.as_str())), ("value", b.clone())])).collect()
                    }
                    Value::Nil => Vec::new(),
                    other => return Err(fail(format!("cannot loop over {}", other.type_name()))),
                };
                let n = items.len();
                for (i, item) in items.into_iter().enumerate() {
                    let mut info = DictMap::new();
                    info.insert(k("index"), Value::Int(i as i64 + 1));
                    info.insert(k("index0"), Value::Int(i as i64));
                    info.insert(k("first"), Value::Bool(i == 0));
                    info.insert(k("last"), Value::Bool(i + 1 == n));
                    info.insert(k("length"), Value::Int(n as i64));
                    scope.locals.push(("loop".into(), Value::dict(info)));
                    scope.locals.push((var.clone(), item));
                    let r = render(body, scope, out, ctx);
                    scope.locals.truncate(scope.locals.len() - 2);
                    r?;
                    check_alloc(out.len(), ctx.limits, "render_string")?;
                }
            }
        }
    }
    check_alloc(out.len(), ctx.limits, "render_string")
}

fn render_string(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let template = match arg(args, 0) {
        Value::Str(s) => s,
        other => return Err(expected("render_string", "a template string", other)),
    };
    let vars = match arg(args, 1) {
        v @ (Value::Dict(_) | Value::Struct(_) | Value::Nil) => v,
        other => return Err(expected("render_string", "a dict of variables", other)),
    };
    let nodes = parse_template(template)?;
    let mut out = String::new();
    let mut scope = Scope { root: vars, locals: Vec::new() };
    render(&nodes, &mut scope, &mut out, ctx)?;
    done(Value::str(out))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn render_with(t: &str, vars: Value) -> Result<String, String> {
        run_builtin("render_string", &[Value::str(t), vars], &no_callback).map(|v| v.display())
    }

    #[test]
    fn loops_conditions_and_filters() {
        let vars = Value::dict_from([
            ("xs", Value::list(vec![Value::str("a"), Value::str("b")])),
            ("name", Value::str("ada")),
            ("n", Value::Int(3)),
        ]);
        assert_eq!(render_with("{{ for x in xs }}{{ x }}{{ if !loop.last }}, {{ end }}{{ end }}", vars.clone()).unwrap(), "a, b");
        assert_eq!(render_with("{{ name | upper }} {{ missing | default(\"-\") }}", vars.clone()).unwrap(), "ADA -");
        assert_eq!(
            render_with("{{ if n > 2 and name == \"ada\" }}big{{ elif n }}some{{ else }}none{{ end }}", vars.clone()).unwrap(),
            "big"
        );
        assert_eq!(render_with("{{ xs[1] }}{{ xs | length }}{{ missing }}", vars).unwrap(), "b2");
    }

    #[test]
    fn malformed_templates_are_clear_errors() {
        let vars = Value::dict_from([]);
        assert_eq!(
            render_with("{{ if x }}open", vars.clone()).unwrap_err(),
            "Thrown: render_string: 'if' block is missing its {{ end }}"
        );
        assert_eq!(
            render_with("{{ end }}", vars.clone()).unwrap_err(),
            "Thrown: render_string: unexpected {{ end }} without an open block"
        );
        assert_eq!(render_with("{{ x", vars.clone()).unwrap_err(), "Thrown: render_string: unclosed '{{' tag");
        assert_eq!(render_with("{{ x | nope }}", vars.clone()).unwrap_err(), "Thrown: render_string: unknown filter 'nope'");
        let deep = "{{ if x }}".repeat(100);
        assert!(render_with(&deep, vars.clone()).unwrap_err().contains("nested deeper"));
        let parens = format!("{{{{ {}x{} }}}}", "(".repeat(100), ")".repeat(100));
        assert!(render_with(&parens, vars).unwrap_err().contains("nested too deeply"));
    }
}
