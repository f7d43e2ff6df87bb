//! The checker's type forms (reference §2.2), their printed form, and the
//! lowering of written annotations (`syntax::ast::TypeExpr`) into them.
//!
//! "No type" (the checker cannot tell) is `Option::None` at use sites, never
//! a `Ty`: every rule skips when an operand has no type.

use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

use crate::syntax::ast::TypeExpr;

/// Names the checker's types use all the time: a `Name` of one of them is
/// static, so typing a literal or a `: int` annotation allocates nothing.
const COMMON: &[&str] = &[
    "int",
    "string",
    "bool",
    "float",
    "nil",
    "list",
    "dict",
    "any",
    "unknown",
    "_",
    "closure",
    "duration",
    "iter",
    "range",
    "bytes",
    "set",
    "Result",
    "Pair",
    "Option",
    "Stream",
    "Generator",
];

/// A type name (cheap to clone: static or shared).
#[derive(Clone, Debug)]
pub enum Name {
    Static(&'static str),
    Shared(Rc<str>),
}

impl Name {
    pub fn as_str(&self) -> &str {
        match self {
            Name::Static(s) => s,
            Name::Shared(s) => s,
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        match COMMON.iter().find(|c| **c == s) {
            Some(c) => Name::Static(c),
            None => Name::Shared(Rc::from(s)),
        }
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name::from(s.as_str())
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name::from(s.as_str())
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shape field: name, optional (`name?: T`), type.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub optional: bool,
    pub ty: Ty,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    /// Primitives, bare `list`/`dict`/`iter`, user type names, `any`,
    /// `unknown`, and the wildcard `_` (an unknown part of a known type).
    Named(Name),
    /// `Result<int, string>`, `set<int>`, user generics.
    Applied(Name, Vec<Ty>),
    List(Box<Ty>),
    Dict(Box<Ty>, Box<Ty>),
    Iter(Box<Ty>),
    Generator(Box<Ty>),
    Stream(Box<Ty>),
    Union(Vec<Ty>),
    Shape(Vec<Field>),
    Fn(Vec<Ty>, Box<Ty>),
    Never,
    LitStr(String),
    LitInt(i64),
}

impl Ty {
    pub fn named(n: &str) -> Ty {
        Ty::Named(Name::from(n))
    }
    pub fn wild() -> Ty {
        Ty::named("_")
    }
    pub fn is_named(&self, n: &str) -> bool {
        matches!(self, Ty::Named(x) if x == n)
    }
    /// The name a type is known by (Named or Applied), for interfaces and
    /// declared-constructor lookups.
    pub fn base_name(&self) -> Option<&str> {
        match self {
            Ty::Named(n) | Ty::Applied(n, _) => Some(n),
            _ => None,
        }
    }
    /// A union of `members`, flattened and de-duplicated in order; one member is itself.
    pub fn union(members: Vec<Ty>) -> Ty {
        let mut out: Vec<Ty> = Vec::new();
        for m in members {
            let parts = match m {
                Ty::Union(inner) => inner,
                other => vec![other],
            };
            for p in parts {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        if out.len() == 1 {
            out.pop().unwrap()
        } else {
            Ty::Union(out)
        }
    }
    pub fn has_nil(&self) -> bool {
        match self {
            Ty::Union(ms) => ms.iter().any(|m| m.is_named("nil")),
            t => t.is_named("nil"),
        }
    }
    /// The type without its `nil` members (`never` when only nil is left).
    pub fn without_nil(&self) -> Ty {
        match self {
            Ty::Union(ms) => {
                let rest: Vec<Ty> = ms.iter().filter(|m| !m.is_named("nil")).cloned().collect();
                if rest.is_empty() {
                    Ty::Never
                } else {
                    Ty::union(rest)
                }
            }
            t if t.is_named("nil") => Ty::Never,
            t => t.clone(),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Ty], sep: &str) -> fmt::Result {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "{t}")?;
    }
    Ok(())
}

/// The printed form used in messages (reference §2.2, conformance era).
impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Named(n) => f.write_str(n),
            Ty::Applied(n, args) => {
                write!(f, "{n}<")?;
                join(f, args, ", ")?;
                f.write_str(">")
            }
            Ty::List(t) => write!(f, "list<{t}>"),
            Ty::Dict(k, v) => write!(f, "dict<{k}, {v}>"),
            Ty::Iter(t) => write!(f, "iter<{t}>"),
            Ty::Generator(t) => write!(f, "Generator<{t}>"),
            Ty::Stream(t) => write!(f, "Stream<{t}>"),
            Ty::Union(ms) => join(f, ms, " | "),
            Ty::Shape(fields) => {
                f.write_str("{")?;
                for (i, fd) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}{}: {}", fd.name, if fd.optional { "?" } else { "" }, fd.ty)?;
                }
                f.write_str("}")
            }
            Ty::Fn(ps, r) => {
                f.write_str("fn(")?;
                join(f, ps, ", ")?;
                write!(f, ") -> {r}")
            }
            Ty::Never => f.write_str("never"),
            Ty::LitStr(s) => write!(f, "\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
            Ty::LitInt(n) => write!(f, "{n}"),
        }
    }
}

/// A written annotation as a checker type. Aliases stay by name (messages
/// print them unresolved); `compat` resolves them.
pub fn lower(t: &TypeExpr) -> Ty {
    match t {
        TypeExpr::Named { name, args } => {
            let a = |i: usize| Box::new(lower(&args[i]));
            match (name.as_str(), args.len()) {
                ("list", 1) => Ty::List(a(0)),
                ("dict", 2) => Ty::Dict(a(0), a(1)),
                ("iter" | "Iter", 1) => Ty::Iter(a(0)),
                ("Generator" | "generator", 1) => Ty::Generator(a(0)),
                ("Stream" | "stream", 1) => Ty::Stream(a(0)),
                ("never", 0) => Ty::Never,
                ("true" | "false", 0) => Ty::named("bool"),
                (_, 0) => Ty::Named(name.into()),
                _ => Ty::Applied(name.into(), args.iter().map(lower).collect()),
            }
        }
        TypeExpr::Union(ms) => Ty::union(ms.iter().map(lower).collect()),
        TypeExpr::StrLiteral(s) => Ty::LitStr(s.clone()),
        TypeExpr::IntLiteral(n) => Ty::LitInt(*n),
        TypeExpr::FloatLiteral(_) => Ty::named("float"),
        TypeExpr::BoolLiteral(_) => Ty::named("bool"),
        TypeExpr::Shape(fields) => {
            Ty::Shape(fields.iter().map(|f| Field { name: f.name.clone(), optional: f.optional, ty: lower(&f.ty) }).collect())
        }
        TypeExpr::Fn { params, ret } => Ty::Fn(
            params.iter().map(lower).collect(),
            Box::new(ret.as_ref().map(|r| lower(r)).unwrap_or_else(|| Ty::named("nil"))),
        ),
    }
}

/// `ty` with type parameters replaced by their bindings.
pub fn subst(ty: &Ty, bind: &dyn Fn(&str) -> Option<Ty>) -> Ty {
    let s = |t: &Ty| Box::new(subst(t, bind));
    match ty {
        Ty::Named(n) => bind(n).unwrap_or_else(|| ty.clone()),
        Ty::Applied(n, args) => Ty::Applied(n.clone(), args.iter().map(|a| subst(a, bind)).collect()),
        Ty::List(t) => Ty::List(s(t)),
        Ty::Dict(k, v) => Ty::Dict(s(k), s(v)),
        Ty::Iter(t) => Ty::Iter(s(t)),
        Ty::Generator(t) => Ty::Generator(s(t)),
        Ty::Stream(t) => Ty::Stream(s(t)),
        Ty::Union(ms) => Ty::union(ms.iter().map(|m| subst(m, bind)).collect()),
        Ty::Shape(fs) => {
            Ty::Shape(fs.iter().map(|f| Field { name: f.name.clone(), optional: f.optional, ty: subst(&f.ty, bind) }).collect())
        }
        Ty::Fn(ps, r) => Ty::Fn(ps.iter().map(|p| subst(p, bind)).collect(), s(r)),
        Ty::Never | Ty::LitStr(_) | Ty::LitInt(_) => ty.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_harn() {
        let shape = Ty::Shape(vec![
            Field { name: "name".into(), optional: false, ty: Ty::named("string") },
            Field { name: "age".into(), optional: true, ty: Ty::named("int") },
        ]);
        assert_eq!(shape.to_string(), "{name: string, age?: int}");
        let u = Ty::union(vec![Ty::named("int"), Ty::union(vec![Ty::named("nil"), Ty::named("int")])]);
        assert_eq!(u.to_string(), "int | nil");
        assert_eq!(Ty::Applied("Result".into(), vec![Ty::named("int"), Ty::wild()]).to_string(), "Result<int, _>");
        assert_eq!(Ty::LitStr("a\"b".into()).to_string(), "\"a\\\"b\"");
        assert_eq!(Ty::Fn(vec![Ty::named("int")], Box::new(Ty::named("bool"))).to_string(), "fn(int) -> bool");
    }
}
