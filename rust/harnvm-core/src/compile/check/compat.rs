//! Type compatibility (reference §2.5), alias resolution (§2.6), interface
//! satisfaction (§2.7.3) and generic binding (§4.5).

use std::collections::HashMap;

use crate::compile::check::ty::{lower, subst, Ty};
use crate::compile::check::Checker;
use crate::syntax::ast::Variance;

/// How deep alias resolution and structural recursion may go (recursive aliases).
const MAX_DEPTH: usize = 48;

impl Checker<'_> {
    /// `ty` with a top-level alias replaced by its body (repeatedly).
    pub(crate) fn resolve(&self, ty: &Ty) -> Ty {
        // Most programs declare no alias: skip the lookups (they hash).
        if self.decls.types.aliases.is_empty() {
            return ty.clone();
        }
        let mut cur = ty.clone();
        for _ in 0..MAX_DEPTH {
            let (name, args) = match &cur {
                Ty::Named(n) => (n.as_str(), &[][..]),
                Ty::Applied(n, a) => (n.as_str(), a.as_slice()),
                _ => return cur,
            };
            if self.is_generic(name) {
                return cur;
            }
            let Some((params, body)) = self.decls.types.aliases.get(name) else { return cur };
            let body = lower(body);
            let bind: HashMap<&str, Ty> = params.iter().map(|p| p.as_str()).zip(args.iter().cloned()).collect();
            cur = if bind.is_empty() { body } else { subst(&body, &|n| bind.get(n).cloned()) };
        }
        cur
    }

    pub(crate) fn is_generic(&self, name: &str) -> bool {
        self.generics.iter().any(|g| g == name)
    }

    /// Does a value of type `actual` fit a slot of type `expected`?
    pub(crate) fn compat(&self, expected: &Ty, actual: &Ty) -> bool {
        self.compat_at(expected, actual, 0)
    }

    fn compat_at(&self, expected: &Ty, actual: &Ty, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return true;
        }
        let d = depth + 1;
        if expected.is_named("_") || actual.is_named("_") {
            return true;
        }
        // Type parameters in scope are compatible with anything (conformance-era leniency).
        if [expected, actual].iter().any(|t| matches!(t, Ty::Named(n) if self.is_generic(n))) {
            return true;
        }
        let e = self.resolve(expected);
        let a = self.resolve(actual);
        if matches!(a, Ty::Never) {
            return true;
        }
        if matches!(e, Ty::Never) {
            return false;
        }
        if e.is_named("any") || e.is_named("unknown") || a.is_named("any") {
            return true;
        }
        if let Some(iface) = e.base_name().filter(|n| self.decls.interfaces.contains_key(*n)) {
            return match a.base_name() {
                Some(n) if self.is_generic(n) => true,
                Some(n) => self.unsatisfied(n, iface).is_none(),
                None => false,
            };
        }
        match (&e, &a) {
            (_, Ty::Union(ams)) => return ams.iter().all(|m| self.compat_at(&e, m, d)),
            (Ty::Union(ems), _) => return ems.iter().any(|m| self.compat_at(m, &a, d)),
            _ => {}
        }
        match (&e, &a) {
            (Ty::Named(x), Ty::Named(y)) => x == y || (x == "float" && y == "int"),
            (Ty::Named(x), Ty::Applied(y, _)) | (Ty::Applied(x, _), Ty::Named(y)) => x == y,
            (Ty::Applied(x, xs), Ty::Applied(y, ys)) => {
                if x != y || xs.len() != ys.len() {
                    return false;
                }
                let vars = self.decls.variances.get(x.as_str());
                xs.iter().zip(ys).enumerate().all(|(i, (ex, ac))| {
                    match vars.and_then(|v| v.get(i)).copied().unwrap_or(Variance::Invariant) {
                        Variance::Out => self.compat_at(ex, ac, d),
                        Variance::In => self.compat_at(ac, ex, d),
                        Variance::Invariant => self.compat_at(ex, ac, d) && self.compat_at(ac, ex, d),
                    }
                })
            }
            (Ty::Shape(_), Ty::Named(n)) | (Ty::Named(n), Ty::Shape(_)) => n == "dict",
            (Ty::Shape(efs), Ty::Shape(afs)) => efs
                .iter()
                .filter(|f| !f.optional)
                .all(|ef| afs.iter().find(|af| af.name == ef.name).is_some_and(|af| self.compat_at(&ef.ty, &af.ty, d))),
            (Ty::Dict(k, v), Ty::Shape(afs)) => k.is_named("string") && afs.iter().all(|af| self.compat_at(v, &af.ty, d)),
            (Ty::Shape(_), Ty::Dict(..)) => true,
            (Ty::List(x), Ty::List(y)) => self.compat_at(x, y, d) && self.compat_at(y, x, d),
            (Ty::Dict(k1, v1), Ty::Dict(k2, v2)) => {
                self.compat_at(k1, k2, d) && self.compat_at(k2, k1, d) && self.compat_at(v1, v2, d) && self.compat_at(v2, v1, d)
            }
            (Ty::Iter(x), Ty::Iter(y)) | (Ty::Generator(x), Ty::Generator(y)) | (Ty::Stream(x), Ty::Stream(y)) => {
                self.compat_at(x, y, d)
            }
            (Ty::Named(n), Ty::List(_)) | (Ty::List(_), Ty::Named(n)) => n == "list",
            (Ty::Named(n), Ty::Dict(..)) | (Ty::Dict(..), Ty::Named(n)) => n == "dict",
            (Ty::Named(n), Ty::Iter(_)) | (Ty::Iter(_), Ty::Named(n)) => n == "iter" || n == "Iter",
            (Ty::Named(n), Ty::Generator(_)) | (Ty::Generator(_), Ty::Named(n)) => n == "generator" || n == "Generator",
            (Ty::Named(n), Ty::Stream(_)) | (Ty::Stream(_), Ty::Named(n)) => n == "stream" || n == "Stream",
            (Ty::Fn(eps, er), Ty::Fn(aps, ar)) => {
                eps.len() == aps.len()
                    && eps.iter().zip(aps).all(|(ep, ap)| self.compat_at(ap, ep, d))
                    && self.compat_at(er, ar, d)
            }
            (Ty::Named(n), Ty::Fn(..)) | (Ty::Fn(..), Ty::Named(n)) => n == "closure",
            (Ty::LitStr(x), Ty::LitStr(y)) => x == y,
            (Ty::LitInt(x), Ty::LitInt(y)) => x == y,
            (Ty::Named(n), Ty::LitStr(_)) | (Ty::LitStr(_), Ty::Named(n)) => n == "string",
            (Ty::Named(n), Ty::LitInt(_)) => n == "int" || n == "float",
            (Ty::LitInt(_), Ty::Named(n)) => n == "int",
            _ => false,
        }
    }

    /// Why type `type_name` does not satisfy interface `iface` (§2.7.3), or
    /// `None` when it does.
    pub(crate) fn unsatisfied(&self, type_name: &str, iface: &str) -> Option<String> {
        let Some(decl) = self.decls.interfaces.get(iface) else {
            return Some(format!("interface '{iface}' not found"));
        };
        let Some(methods) = self.decls.impls.get(type_name) else {
            if decl.methods.is_empty() {
                return None;
            }
            let names: Vec<&str> = decl.methods.iter().map(|m| m.name.as_str()).collect();
            return Some(format!("missing method(s): {}", names.join(", ")));
        };
        let assoc: Vec<String> = decl.assoc.iter().map(|(n, _)| n.clone()).collect();
        let mut bound: HashMap<String, Ty> = HashMap::new();
        for m in &decl.methods {
            let Some(im) = methods.iter().find(|x| x.name == m.name) else {
                return Some(format!("missing method '{}'", m.name));
            };
            if im.params.len() != m.params.len() {
                return Some(format!("method '{}' has {} parameter(s), expected {}", m.name, im.params.len(), m.params.len()));
            }
            let mut pairs: Vec<(Option<usize>, &Ty, &Ty)> = Vec::new();
            for (i, (ip, mp)) in m.params.iter().zip(&im.params).enumerate() {
                if let (Some(ip), Some(mp)) = (ip, mp) {
                    pairs.push((Some(i + 1), ip, mp));
                }
            }
            if let (Some(r), Some(ir)) = (&m.ret, &im.ret) {
                pairs.push((None, r, ir));
            }
            for (i, want, got) in pairs {
                let mut local = bound.clone();
                bind_params(want, got, &assoc, &mut local, &mut |_, _, _| {});
                let want_s = subst(want, &|n| local.get(n).cloned());
                bound = local;
                // The interface's own type parameters stand for any type here.
                let ok = decl.type_params.iter().any(|p| want_s.is_named(p)) || self.compat(&want_s, got);
                if !ok {
                    return Some(match i {
                        Some(i) => format!("method '{}' parameter {i} has type '{got}', expected '{want_s}'", m.name),
                        None => format!("method '{}' returns '{got}', expected '{want_s}'", m.name),
                    });
                }
            }
        }
        for (name, default) in &decl.assoc {
            if let (Some(def), Some(b)) = (default, bound.get(name)) {
                let def = subst(def, &|n| bound.get(n).cloned());
                if !self.compat(&def, b) {
                    return Some(format!("associated type '{name}' resolves to '{b}', expected '{def}'"));
                }
            }
        }
        None
    }
}

/// Binds the names in `params` that occur in `pattern` from the matching
/// parts of `actual` (§4.5). `conflict(name, old, new)` is told when a bound
/// name meets a different type; the first binding stays.
pub(crate) fn bind_params(
    pattern: &Ty,
    actual: &Ty,
    params: &[String],
    out: &mut HashMap<String, Ty>,
    conflict: &mut dyn FnMut(&str, &Ty, &Ty),
) {
    bind_at(pattern, actual, params, out, conflict, 0)
}

fn bind_at(
    pattern: &Ty,
    actual: &Ty,
    params: &[String],
    out: &mut HashMap<String, Ty>,
    conflict: &mut dyn FnMut(&str, &Ty, &Ty),
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let d = depth + 1;
    match (pattern, actual) {
        (Ty::Named(p), _) if params.iter().any(|x| x == p) => {
            if actual.is_named("_") {
                return;
            }
            match out.get(p.as_str()) {
                None => {
                    out.insert(p.to_string(), actual.clone());
                }
                Some(old) if old.is_named("_") => {
                    out.insert(p.to_string(), actual.clone());
                }
                Some(old) if old != actual => {
                    let old = old.clone();
                    conflict(p, &old, actual);
                }
                Some(_) => {}
            }
        }
        (Ty::List(x), Ty::List(y))
        | (Ty::Iter(x), Ty::Iter(y))
        | (Ty::Generator(x), Ty::Generator(y))
        | (Ty::Stream(x), Ty::Stream(y)) => bind_at(x, y, params, out, conflict, d),
        (Ty::Dict(k1, v1), Ty::Dict(k2, v2)) => {
            bind_at(k1, k2, params, out, conflict, d);
            bind_at(v1, v2, params, out, conflict, d);
        }
        (Ty::Applied(n1, a1), Ty::Applied(n2, a2)) if n1 == n2 && a1.len() == a2.len() => {
            for (x, y) in a1.iter().zip(a2) {
                bind_at(x, y, params, out, conflict, d);
            }
        }
        (Ty::Shape(f1), Ty::Shape(f2)) => {
            for f in f1 {
                if let Some(g) = f2.iter().find(|g| g.name == f.name) {
                    bind_at(&f.ty, &g.ty, params, out, conflict, d);
                }
            }
        }
        (Ty::Fn(p1, r1), Ty::Fn(p2, r2)) if p1.len() == p2.len() => {
            for (x, y) in p1.iter().zip(p2) {
                bind_at(x, y, params, out, conflict, d);
            }
            bind_at(r1, r2, params, out, conflict, d);
        }
        _ => {}
    }
}
