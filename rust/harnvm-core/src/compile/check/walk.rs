//! The walk: statements in order, scopes, narrowing, and the rules of
//! reference §3 (messages in the conformance-era wording).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use smallvec::SmallVec;
use std::rc::Rc;

use crate::compile::check::compat::bind_params;
use crate::compile::check::decls::{fn_sig, FnSig};
use crate::compile::check::ty::{lower, subst, Field, Ty};
use crate::compile::check::{Checker, FnCtx, Var};
use crate::syntax::ast::*;
use crate::syntax::pos::Pos;

/// Narrowings a condition implies: (variable, type) on its truthy and falsy paths.
#[derive(Default)]
struct Refine {
    truthy: Vec<(String, Ty)>,
    falsy: Vec<(String, Ty)>,
}

/// Runtime tags `type_of` can answer that the checker narrows on.
const TYPE_TAGS: &[&str] = &["int", "string", "float", "bool", "nil", "list", "dict", "closure", "bytes"];

/// The `type_of` tag of a (resolved) union member, when the checker knows it.
fn runtime_kind(t: &Ty) -> Option<&str> {
    Some(match t {
        Ty::Named(n) if TYPE_TAGS.contains(&n.as_str()) => n,
        Ty::List(_) => "list",
        Ty::Dict(..) | Ty::Shape(_) => "dict",
        Ty::Fn(..) => "closure",
        Ty::LitStr(_) => "string",
        Ty::LitInt(_) => "int",
        _ => return None,
    })
}

fn leftmost(e: &Expr) -> Pos {
    match &e.kind {
        ExprKind::Binary { lhs, .. } => leftmost(lhs),
        _ => e.pos,
    }
}

fn op_text(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Pow => "**",
        BinOp::Lt => "<",
        BinOp::Gt => ">",
        BinOp::Le => "<=",
        BinOp::Ge => ">=",
        _ => "?",
    }
}

/// Return types of builtins (reference Appendix A); unlisted builtins are untyped.
fn builtin_return(name: &str) -> Option<Ty> {
    const STRING: &[&str] = &[
        "base64_encode",
        "basename",
        "dirname",
        "extname",
        "format",
        "join",
        "json_stringify",
        "lowercase",
        "uppercase",
        "md5",
        "sha256",
        "sha512",
        "replace",
        "substring",
        "title_case",
        "to_string",
        "trim",
        "type_of",
        "url_encode",
        "uuid",
        "regex_replace",
        "regex_replace_all",
        "hex_encode",
        "read_file",
        "str_pad",
    ];
    const INT: &[&str] = &["bytes_len", "elapsed", "sign", "to_int"];
    const FLOAT: &[&str] =
        &["acos", "asin", "atan", "atan2", "cos", "exp", "ln", "log10", "log2", "random", "sin", "tan", "to_float"];
    const BOOL: &[&str] = &["is_err", "is_ok", "is_nan", "is_infinite", "is_type", "schema_is", "json_validate"];
    const NIL: &[&str] = &["assert", "assert_eq", "assert_ne", "log", "print", "println", "sleep"];
    let named = |n: &str| Some(Ty::named(n));
    match name {
        "iter" => named("iter"),
        "unreachable" => Some(Ty::Never),
        "keys" | "range" | "chunk" | "to_list" | "flat_map" | "regex_captures" => named("list"),
        "group_by" | "partition" | "url_parse" => named("dict"),
        n if STRING.contains(&n) => named("string"),
        n if INT.contains(&n) => named("int"),
        n if FLOAT.contains(&n) => named("float"),
        n if BOOL.contains(&n) => named("bool"),
        n if NIL.contains(&n) => named("nil"),
        _ => None,
    }
}

fn is_builtin(name: &str) -> bool {
    crate::builtins::builtin_id(name).is_some() || crate::compile::prelude::global(name).is_some()
}

/// Defined for the undefined-call rule: harnvm's builtins and harn's.
fn is_known_builtin(name: &str) -> bool {
    is_builtin(name) || crate::compile::check::names::HARN_BUILTINS.binary_search(&name).is_ok()
}

/// Does this statement definitely leave its block (reference §4.7)?
fn exits(s: &Stmt) -> bool {
    match &s.kind {
        StmtKind::Return(_) | StmtKind::Throw(_) | StmtKind::Break | StmtKind::Continue => true,
        StmtKind::Expr(e) => expr_exits(e),
        _ => false,
    }
}

fn expr_exits(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::If { then, else_: Some(els), .. } => {
            block_exits(then)
                && match els {
                    ElseBranch::Block(b) => block_exits(b),
                    ElseBranch::If(e) => expr_exits(e),
                }
        }
        _ => false,
    }
}

fn block_exits(b: &[Stmt]) -> bool {
    b.iter().any(exits)
}

impl Checker<'_> {
    // -----------------------------------------------------------------------
    // Scopes

    fn push_scope(&mut self) {
        self.scopes.push(HashMap::default());
    }

    fn pop_scope(&mut self) {
        self.scopes.pop();
    }

    /// Scope indices visible from here, innermost first.
    fn visible(&self) -> impl Iterator<Item = usize> + '_ {
        let floor = self.barriers.last().copied().unwrap_or(0);
        let top = self.scopes.len();
        (floor..top).rev().chain(if floor > 0 { Some(0) } else { None })
    }

    fn lookup(&self, name: &str) -> Option<&Var> {
        for i in self.visible() {
            if let Some(v) = self.scopes[i].get(name) {
                if self.entry_only && v.local {
                    return None;
                }
                return Some(v);
            }
        }
        None
    }

    fn is_known(&self, name: &str) -> bool {
        self.known.contains(name) || self.decls.bound_names.contains(name)
    }

    /// Records `name` as callable; most names repeat, so no allocation then.
    fn mark_known(&mut self, name: &str) {
        if !self.is_known(name) {
            self.known.insert(name.to_string());
        }
    }

    fn define(&mut self, name: &str, ty: Option<Ty>, mutable: bool) {
        let local = !self.fns.is_empty();
        self.mark_known(name);
        let var = Var { declared: ty.clone(), ty, mutable, local, nil_widen: false, refinement: false, sig: None };
        self.scopes.last_mut().unwrap().insert(name.to_string(), var);
    }

    fn define_param(&mut self, name: &str, ty: Option<Ty>) {
        self.mark_known(name);
        let var = Var { declared: ty.clone(), ty, mutable: false, local: false, nil_widen: false, refinement: false, sig: None };
        self.scopes.last_mut().unwrap().insert(name.to_string(), var);
    }

    /// Narrows `name` in the innermost scope.
    fn refine(&mut self, name: &str, ty: Ty) {
        let Some(v) = self.lookup(name).cloned() else { return };
        let var = Var { ty: Some(ty), refinement: true, ..v };
        self.scopes.last_mut().unwrap().insert(name.to_string(), var);
    }

    fn apply(&mut self, refs: Vec<(String, Ty)>) {
        for (n, t) in refs {
            self.refine(&n, t);
        }
    }

    /// After an assignment the variable reverts to its declared type everywhere it is visible.
    fn unrefine(&mut self, name: &str, declared: Option<Ty>, widened: bool) {
        let idx: Vec<usize> = self.visible().collect();
        for i in idx {
            if let Some(v) = self.scopes[i].get_mut(name) {
                v.ty = declared.clone();
                if widened {
                    v.declared = declared.clone();
                    v.nil_widen = false;
                }
                if !v.refinement {
                    break;
                }
            }
        }
    }

    fn bind_pattern(&mut self, p: &Pattern, ty: Option<Ty>, mutable: bool) {
        match p {
            Pattern::Ident(n) => self.define(n, ty, mutable),
            Pattern::Wildcard => {}
            Pattern::Dict { entries, rest } => {
                for e in entries {
                    if let Some(d) = &e.default {
                        self.expr(d);
                    }
                    if let Some(b) = &e.binding {
                        self.define(b, None, mutable);
                    }
                }
                if let Some(r) = rest {
                    self.define(r, None, mutable);
                }
            }
            Pattern::List { elements, rest } => {
                for e in elements {
                    if let Some(d) = &e.default {
                        self.expr(d);
                    }
                    if let Some(b) = &e.binding {
                        self.define(b, None, mutable);
                    }
                }
                if let Some(r) = rest {
                    self.define(r, None, mutable);
                }
            }
            Pattern::Pair(a, b) => {
                let (ta, tb) = match ty.map(|t| self.resolve(&t)) {
                    Some(Ty::Applied(n, args)) if n == "Pair" && args.len() == 2 => {
                        (Some(args[0].clone()), Some(args[1].clone()))
                    }
                    _ => (None, None),
                };
                if let Some(a) = a {
                    self.define(a, ta, mutable);
                }
                if let Some(b) = b {
                    self.define(b, tb, mutable);
                }
            }
        }
    }

    /// Drops undefined-call reports of names that turned out to be bound somewhere.
    pub(crate) fn finish_undefined(&mut self) {
        let drop: HashSet<usize> = self.undefined.iter().filter(|(_, n)| self.is_known(n)).map(|(i, _)| *i).collect();
        if drop.is_empty() {
            return;
        }
        let mut i = 0;
        self.diags.retain(|_| {
            i += 1;
            !drop.contains(&(i - 1))
        });
    }

    // -----------------------------------------------------------------------
    // Statements

    pub(crate) fn check_items(&mut self, items: &[Stmt]) {
        self.block(items);
    }

    /// Walks a statement list in the current scope; returns the type of its
    /// value (the last statement, if an expression).
    fn block(&mut self, stmts: &[Stmt]) -> Option<Ty> {
        let mut exited = false;
        let mut warned = false;
        let mut last = None;
        for (i, s) in stmts.iter().enumerate() {
            if exited && !warned {
                warned = true;
                self.warn("HARN-ORC-008", "unreachable code".into(), s.pos);
            }
            last = self.stmt(s);
            if i + 1 < stmts.len() {
                last = None;
            }
            exited |= exits(s);
        }
        if exited {
            return Some(Ty::Never);
        }
        last
    }

    /// A block in a child scope.
    fn scoped(&mut self, stmts: &[Stmt], refs: Vec<(String, Ty)>) -> Option<Ty> {
        self.push_scope();
        self.apply(refs);
        let t = self.block(stmts);
        self.pop_scope();
        t
    }

    /// A nested construct (loop, arm, block) whose returns the conformance-era check skips.
    fn nested(&mut self, stmts: &[Stmt], refs: Vec<(String, Ty)>) -> Option<Ty> {
        if let Some(f) = self.fns.last_mut() {
            f.nesting += 1;
        }
        let t = self.scoped(stmts, refs);
        if let Some(f) = self.fns.last_mut() {
            f.nesting -= 1;
        }
        t
    }

    fn stmt(&mut self, s: &Stmt) -> Option<Ty> {
        self.depth += 1;
        let t = if self.depth > 2000 { None } else { crate::runtime::deep::grow(|| self.stmt_inner(s)) };
        self.depth -= 1;
        t
    }

    fn stmt_inner(&mut self, s: &Stmt) -> Option<Ty> {
        match &s.kind {
            StmtKind::Let { pattern, ty, value } => {
                self.decl(pattern, ty.as_ref(), value, false, s.pos);
            }
            StmtKind::Var { pattern, ty, value } => {
                self.decl(pattern, ty.as_ref(), value, true, s.pos);
            }
            StmtKind::Assign { target, op, value } => {
                self.assign(target, *op, value, s.pos);
            }
            StmtKind::Expr(e) => {
                if let ExprKind::If { cond, then, else_ } = &e.kind {
                    let (t, after) = self.if_expr(cond, then, else_.as_ref());
                    self.apply(after);
                    return t;
                }
                return self.expr(e);
            }
            StmtKind::While { cond, body } => {
                self.expr(cond);
                let r = self.refinements(cond);
                self.nested(body, r.truthy);
            }
            StmtKind::For { pattern, iterable, body } => {
                let it = self.expr(iterable);
                let elem = it.and_then(|t| self.element_type(&t));
                if let Some(f) = self.fns.last_mut() {
                    f.nesting += 1;
                }
                self.push_scope();
                self.bind_pattern(pattern, elem, false);
                self.block(body);
                self.pop_scope();
                if let Some(f) = self.fns.last_mut() {
                    f.nesting -= 1;
                }
            }
            StmtKind::Break | StmtKind::Continue => {}
            StmtKind::Return(v) => self.ret(v.as_ref(), s.pos),
            StmtKind::Throw(e) => {
                self.expr(e);
            }
            StmtKind::FnDecl(f) => self.fn_decl(f),
            StmtKind::Struct(d) => {
                let fields: Vec<Ty> = d.fields.iter().filter_map(|f| f.ty.as_ref().map(lower)).collect();
                self.variance(&d.type_params, &[], &fields, &[], "struct", &d.name, s.pos);
            }
            StmtKind::Enum(d) => {
                let fields: Vec<Ty> =
                    d.variants.iter().flat_map(|v| v.fields.iter().filter_map(|f| f.ty.as_ref().map(lower))).collect();
                self.variance(&d.type_params, &fields, &[], &[], "enum", &d.name, s.pos);
            }
            StmtKind::TypeAlias(d) => self.variance(&d.type_params, &[lower(&d.ty)], &[], &[], "type alias", &d.name, s.pos),
            StmtKind::Interface(d) => {
                let params: Vec<Ty> = d
                    .methods
                    .iter()
                    .flat_map(|m| m.params.iter().filter(|p| p.name != "self").filter_map(|p| p.ty.as_ref().map(lower)))
                    .collect();
                let rets: Vec<Ty> = d.methods.iter().filter_map(|m| m.return_type.as_ref().map(lower)).collect();
                self.variance(&d.type_params, &rets, &[], &params, "interface", &d.name, s.pos);
            }
            StmtKind::Impl(d) => {
                for m in &d.methods {
                    self.fn_body(m, true);
                }
            }
            StmtKind::Pipeline(p) => {
                self.barriers.push(self.scopes.len());
                self.push_scope();
                for n in &p.params {
                    self.define_param(n, None);
                }
                let ret = p.return_type.as_ref().map(lower);
                self.fns.push(FnCtx { ret, stream: None, nesting: 0, closure: false });
                self.block(&p.body);
                self.fns.pop();
                self.pop_scope();
                self.barriers.pop();
            }
            StmtKind::Import(_) | StmtKind::Unsupported { .. } => {}
            StmtKind::Guard { cond, else_body } => {
                self.expr(cond);
                let r = self.refinements(cond);
                self.nested(else_body, r.falsy);
                self.apply(r.truthy);
            }
            StmtKind::Require { cond, message } => {
                self.expr(cond);
                if let Some(m) = message {
                    self.expr(m);
                }
            }
            StmtKind::Defer(b) | StmtKind::Mutex(b) => {
                self.nested(b, Vec::new());
            }
            StmtKind::Yield(v) => {
                if self.fns.last().is_some_and(|f| f.stream.is_some()) {
                    self.error("HARN-ORC-002", "`yield` is not a stream emit; use `emit` inside `gen fn`".into(), s.pos);
                }
                if let Some(v) = v {
                    self.expr(v);
                }
            }
            StmtKind::Emit(v) => {
                let t = self.expr(v);
                match self.fns.last().map(|f| f.stream.clone()) {
                    Some(Some(item)) => {
                        if let (Some(want), Some(got)) = (item, t) {
                            if !self.compat(&want, &got) {
                                self.error("HARN-TYP-004", format!("emit type doesn't match: expected {want}, got {got}"), s.pos);
                            }
                        }
                    }
                    _ => self.error("HARN-ORC-002", "`emit` can only be used inside a `gen fn`".into(), s.pos),
                }
            }
            StmtKind::Select(sel) => {
                for case in &sel.cases {
                    self.expr(&case.channel);
                    if let Some(f) = self.fns.last_mut() {
                        f.nesting += 1;
                    }
                    self.push_scope();
                    self.define(&case.binding, None, false);
                    self.block(&case.body);
                    self.pop_scope();
                    if let Some(f) = self.fns.last_mut() {
                        f.nesting -= 1;
                    }
                }
                if let Some((d, b)) = &sel.timeout {
                    self.expr(d);
                    self.nested(b, Vec::new());
                }
                if let Some(b) = &sel.default {
                    self.nested(b, Vec::new());
                }
            }
        }
        None
    }

    fn decl(&mut self, pattern: &Pattern, ann: Option<&TypeExpr>, value: &Expr, mutable: bool, pos: Pos) -> Option<Ty> {
        let actual = self.expr(value);
        let Pattern::Ident(name) = pattern else {
            self.bind_pattern(pattern, None, mutable);
            return None;
        };
        let declared = ann.map(lower);
        if let (Some(want), Some(got)) = (&declared, &actual) {
            if !self.compat(want, got) {
                let detail = shape_detail(want, got);
                self.error("HARN-TYP-007", format!("'{name}' declared as {want}, but assigned {got}{detail}"), pos);
            }
        }
        let nil_widen = mutable && declared.is_none() && matches!(value.kind, ExprKind::Nil);
        let ty = declared.or(actual);
        self.define(name, ty, mutable);
        if nil_widen {
            if let Some(v) = self.scopes.last_mut().unwrap().get_mut(name.as_str()) {
                v.nil_widen = true;
            }
        }
        None
    }

    fn assign(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr, pos: Pos) -> Option<Ty> {
        let got = self.expr(value);
        let ExprKind::Ident(name) = &target.kind else {
            self.expr(target);
            return None;
        };
        let var = self.lookup(name).cloned()?;
        if !var.mutable {
            self.warn("HARN-OWN-001", format!("Cannot assign to '{name}': variable is immutable (declared with 'let')"), pos);
            return None;
        }
        let got = match op {
            Some(op) => match (&var.declared, &got) {
                (Some(l), Some(r)) => self.binop_result(op, l, r),
                _ => None,
            },
            None => got,
        };
        let mut declared = var.declared.clone();
        let mut widened = false;
        if let (Some(want), Some(got)) = (&var.declared, &got) {
            if var.nil_widen && want.is_named("nil") && !got.is_named("nil") {
                declared = Some(Ty::union(vec![got.clone(), Ty::named("nil")]));
                widened = true;
            } else if !self.compat(want, got) {
                self.error("HARN-TYP-005", format!("can't assign {got} to '{name}' (declared as {want})"), pos);
            }
        }
        self.unrefine(name, declared, widened);
        None
    }

    fn ret(&mut self, value: Option<&Expr>, pos: Pos) {
        let checked = self.fns.last().filter(|f| !f.closure && f.nesting == 0).and_then(|f| f.ret.clone());
        let Some(v) = value else { return };
        if let Some(want) = checked {
            // Conformance-era rule: the value is typed in the scope as it was on
            // entry to the body (parameters, with narrowings), not with locals.
            let saved = self.entry_only;
            self.entry_only = true;
            let got = self.expr(v);
            self.entry_only = saved;
            if let Some(got) = got {
                if !self.compat(&want, &got) {
                    self.error("HARN-TYP-004", format!("return type doesn't match: expected {want}, got {got}"), pos);
                }
            }
        } else {
            self.expr(v);
        }
    }

    fn fn_decl(&mut self, f: &FnDecl) {
        let nested = !self.fns.is_empty();
        if nested {
            let params: Vec<Ty> = f.params.iter().filter_map(|p| p.ty.as_ref().map(lower)).collect();
            let rets: Vec<Ty> = f.return_type.iter().map(lower).collect();
            self.variance(&f.type_params, &rets, &[], &params, "function", &f.name, f.pos);
            let sig = match self.decls.fns.get(&f.name) {
                Some(Some(s)) => Some(s.clone()),
                _ => Some(Rc::new(fn_sig(f))),
            };
            let ty = Some(fn_value_type(sig.as_ref().unwrap()));
            self.define(&f.name, ty, false);
            self.scopes.last_mut().unwrap().get_mut(f.name.as_str()).unwrap().sig = sig;
        }
        if f.is_stream {
            if let Some(rt) = &f.return_type {
                let t = lower(rt);
                if !matches!(t, Ty::Stream(_)) && !t.is_named("Stream") && !t.is_named("stream") {
                    self.error("HARN-ORC-002", format!("`gen fn` must return Stream<T>, got {t}"), f.pos);
                }
            }
        }
        self.fn_body(f, false);
    }

    fn fn_body(&mut self, f: &FnDecl, method: bool) {
        self.barriers.push(self.scopes.len());
        self.push_scope();
        let generics = self.generics.len();
        self.generics.extend(f.type_params.iter().map(|t| t.name.clone()));
        for p in &f.params {
            if let Some(d) = &p.default {
                self.expr(d);
            }
            // A rest parameter is a list inside the body; left untyped.
            let ty = if p.rest { None } else { p.ty.as_ref().map(lower) };
            self.define_param(&p.name, ty);
        }
        let stream = if f.is_stream {
            Some(match f.return_type.as_ref().map(lower) {
                Some(Ty::Stream(t)) => Some(*t),
                _ => None,
            })
        } else {
            None
        };
        let ret = if f.is_stream || f.is_generator { None } else { f.return_type.as_ref().map(lower) };
        self.fns.push(FnCtx { ret, stream, nesting: 0, closure: false });
        let _ = method;
        self.block(&f.body);
        self.fns.pop();
        self.generics.truncate(generics);
        self.pop_scope();
        self.barriers.pop();
    }

    // -----------------------------------------------------------------------
    // Declaration-site variance (§3.10)

    /// Checks `co` types in covariant, `inv` in invariant and `contra` in
    /// contravariant starting positions.
    #[allow(clippy::too_many_arguments)]
    fn variance(&mut self, tps: &[TypeParam], co: &[Ty], inv: &[Ty], contra: &[Ty], kind: &str, name: &str, pos: Pos) {
        let marked: HashMap<&str, Variance> =
            tps.iter().filter(|t| t.variance != Variance::Invariant).map(|t| (t.name.as_str(), t.variance)).collect();
        if marked.is_empty() {
            return;
        }
        let mut found: Vec<(String, Variance, Variance)> = Vec::new();
        for (list, pol) in [(co, Variance::Out), (inv, Variance::Invariant), (contra, Variance::In)] {
            for t in list {
                self.polarity(t, pol, &marked, &mut found, 0);
            }
        }
        for (p, declared, at) in found {
            let (dw, dn) = if declared == Variance::In { ("in", "contravariant") } else { ("out", "covariant") };
            let an = match at {
                Variance::Out => "covariant",
                Variance::In => "contravariant",
                Variance::Invariant => "invariant",
            };
            self.error(
                "HARN-TYP-012",
                format!("type parameter '{p}' is declared '{dw}' ({dn}) but appears in a {an} position in {kind} '{name}'"),
                pos,
            );
        }
    }

    fn polarity(
        &self,
        t: &Ty,
        pol: Variance,
        marked: &HashMap<&str, Variance>,
        out: &mut Vec<(String, Variance, Variance)>,
        depth: usize,
    ) {
        if depth > 48 {
            return;
        }
        let d = depth + 1;
        let compose = |outer: Variance, inner: Variance| match (outer, inner) {
            (Variance::Invariant, _) | (_, Variance::Invariant) => Variance::Invariant,
            (Variance::Out, x) => x,
            (Variance::In, Variance::Out) => Variance::In,
            (Variance::In, Variance::In) => Variance::Out,
        };
        match t {
            Ty::Named(n) => {
                if let Some(&v) = marked.get(n.as_str()) {
                    if v != pol {
                        out.push((n.to_string(), v, pol));
                    }
                }
            }
            Ty::Applied(n, args) => {
                let vars = self.decls.variances.get(n.as_str());
                for (i, a) in args.iter().enumerate() {
                    let v = vars.and_then(|v| v.get(i)).copied().unwrap_or(Variance::Invariant);
                    self.polarity(a, compose(pol, v), marked, out, d);
                }
            }
            Ty::List(x) => self.polarity(x, Variance::Invariant, marked, out, d),
            Ty::Dict(k, v) => {
                self.polarity(k, Variance::Invariant, marked, out, d);
                self.polarity(v, Variance::Invariant, marked, out, d);
            }
            Ty::Iter(x) | Ty::Generator(x) | Ty::Stream(x) => self.polarity(x, pol, marked, out, d),
            Ty::Union(ms) => ms.iter().for_each(|m| self.polarity(m, pol, marked, out, d)),
            Ty::Shape(fs) => fs.iter().for_each(|f| self.polarity(&f.ty, pol, marked, out, d)),
            Ty::Fn(ps, r) => {
                for p in ps {
                    self.polarity(p, compose(pol, Variance::In), marked, out, d);
                }
                self.polarity(r, pol, marked, out, d);
            }
            Ty::Never | Ty::LitStr(_) | Ty::LitInt(_) => {}
        }
    }

    // -----------------------------------------------------------------------
    // Narrowing (§4.8)

    fn refinements(&self, cond: &Expr) -> Refine {
        let mut r = Refine::default();
        match &cond.kind {
            ExprKind::Unary { op: UnaryOp::Not, operand } => {
                let inner = self.refinements(operand);
                r.truthy = inner.falsy;
                r.falsy = inner.truthy;
            }
            ExprKind::Binary { op: BinOp::And, lhs, rhs } => {
                r.truthy = self.refinements(lhs).truthy;
                r.truthy.extend(self.refinements(rhs).truthy);
            }
            ExprKind::Binary { op: BinOp::Or, lhs, rhs } => {
                r.falsy = self.refinements(lhs).falsy;
                r.falsy.extend(self.refinements(rhs).falsy);
            }
            ExprKind::Binary { op: op @ (BinOp::Eq | BinOp::Ne), lhs, rhs } => {
                let (t, f) = self.equality(lhs, rhs).or_else(|| self.equality(rhs, lhs)).unwrap_or_default();
                if *op == BinOp::Eq {
                    (r.truthy, r.falsy) = (t, f);
                } else {
                    (r.truthy, r.falsy) = (f, t);
                }
            }
            ExprKind::Ident(n) => {
                if let Some(t) = self.lookup(n).and_then(|v| v.ty.clone()) {
                    let t = self.resolve(&t);
                    if matches!(t, Ty::Union(_)) && t.has_nil() {
                        r.truthy.push((n.clone(), t.without_nil()));
                    }
                }
            }
            _ => {}
        }
        r
    }

    /// Narrowings of `a == b` (truthy, falsy) when `a` is the narrowed side.
    #[allow(clippy::type_complexity)]
    fn equality(&self, a: &Expr, b: &Expr) -> Option<(Vec<(String, Ty)>, Vec<(String, Ty)>)> {
        match (&a.kind, &b.kind) {
            (ExprKind::Ident(x), ExprKind::Nil) => {
                let t = self.resolve(self.lookup(x)?.ty.as_ref()?);
                if !matches!(t, Ty::Union(_)) || !t.has_nil() {
                    return None;
                }
                Some((vec![(x.clone(), Ty::named("nil"))], vec![(x.clone(), t.without_nil())]))
            }
            (ExprKind::Call { name, args, .. }, ExprKind::Str(tag)) if name == "type_of" && args.len() == 1 => {
                let Arg::Positional(Expr { kind: ExprKind::Ident(x), .. }) = &args[0] else { return None };
                if !TYPE_TAGS.contains(&tag.as_str()) {
                    return None;
                }
                let t = self.resolve(self.lookup(x)?.ty.as_ref()?);
                if t.is_named("unknown") {
                    return Some((vec![(x.clone(), Ty::named(tag))], Vec::new()));
                }
                let Ty::Union(ms) = &t else { return None };
                let ms: Vec<Ty> = ms.iter().map(|m| self.resolve(m)).collect();
                if ms.iter().any(|m| runtime_kind(m).is_none()) {
                    return None;
                }
                let (yes, no): (Vec<Ty>, Vec<Ty>) = ms.into_iter().partition(|m| runtime_kind(m) == Some(tag.as_str()));
                let pack = |v: Vec<Ty>| if v.is_empty() { Ty::Never } else { Ty::union(v) };
                Some((vec![(x.clone(), pack(yes))], vec![(x.clone(), pack(no))]))
            }
            (ExprKind::Property { object, name: field, .. }, ExprKind::Str(_) | ExprKind::Int(_)) => {
                let ExprKind::Ident(x) = &object.kind else { return None };
                let lit = match &b.kind {
                    ExprKind::Str(s) => Ty::LitStr(s.clone()),
                    ExprKind::Int(n) => Ty::LitInt(*n),
                    _ => return None,
                };
                let members = self.tagged_union(self.lookup(x)?.ty.as_ref()?, field)?;
                let (yes, no): (Vec<(Ty, Ty)>, Vec<(Ty, Ty)>) = members.into_iter().partition(|(_, tag)| *tag == lit);
                let pack =
                    |v: Vec<(Ty, Ty)>| if v.is_empty() { Ty::Never } else { Ty::union(v.into_iter().map(|p| p.0).collect()) };
                Some((vec![(x.clone(), pack(yes))], vec![(x.clone(), pack(no))]))
            }
            _ => None,
        }
    }

    /// The members of a tagged shape union with their discriminant value,
    /// when `field` is the union's discriminant (§3.8.1 kind 2).
    fn tagged_union(&self, ty: &Ty, field: &str) -> Option<Vec<(Ty, Ty)>> {
        let Ty::Union(ms) = self.resolve(ty) else { return None };
        let ms: Vec<Ty> = ms.iter().map(|m| self.resolve(m)).collect();
        if ms.len() < 2 {
            return None;
        }
        let shapes: Vec<&Vec<Field>> = ms.iter().filter_map(|m| if let Ty::Shape(f) = m { Some(f) } else { None }).collect();
        if shapes.len() != ms.len() {
            return None;
        }
        // The discriminant: the first field of the first member that every member has, required, with a literal type.
        let disc = shapes[0].iter().find(|f| {
            shapes
                .iter()
                .all(|s| s.iter().any(|g| g.name == f.name && !g.optional && matches!(g.ty, Ty::LitStr(_) | Ty::LitInt(_))))
        })?;
        if disc.name != field {
            return None;
        }
        let tags: Vec<Ty> = shapes.iter().map(|s| s.iter().find(|g| g.name == field).unwrap().ty.clone()).collect();
        for (i, t) in tags.iter().enumerate() {
            if tags[..i].contains(t) {
                return None;
            }
        }
        Some(ms.into_iter().zip(tags).collect())
    }

    // -----------------------------------------------------------------------
    // Expressions

    /// Argument types; on the stack for the usual few arguments.
    fn exprs_of_args(&mut self, args: &[Arg]) -> SmallVec<[Option<Ty>; 4]> {
        args.iter()
            .map(|a| match a {
                Arg::Positional(e) => self.expr(e),
                Arg::Spread(e) => {
                    self.expr(e);
                    None
                }
            })
            .collect()
    }

    pub(crate) fn expr(&mut self, e: &Expr) -> Option<Ty> {
        self.depth += 1;
        let t = if self.depth > 2000 { None } else { crate::runtime::deep::grow(|| self.expr_inner(e)) };
        self.depth -= 1;
        t
    }

    fn expr_inner(&mut self, e: &Expr) -> Option<Ty> {
        let named = |n: &str| Some(Ty::named(n));
        match &e.kind {
            ExprKind::Int(_) => named("int"),
            ExprKind::Float(_) => named("float"),
            ExprKind::Duration(_) => named("duration"),
            ExprKind::Str(_) | ExprKind::InterpolatedStr(_) => named("string"),
            ExprKind::Bool(_) => named("bool"),
            ExprKind::Nil => named("nil"),
            ExprKind::Ident(n) => match self.lookup(n) {
                Some(v) => v.ty.clone(),
                None if self.entry_only => None,
                None => match self.decls.fns.get(n) {
                    Some(Some(sig)) => Some(fn_value_type(sig)),
                    _ => None,
                },
            },
            ExprKind::List(items) => {
                let mut tys = Vec::new();
                let mut known = true;
                for it in items {
                    match it {
                        ListElem::Item(x) => match self.expr(x) {
                            Some(t) => tys.push(t),
                            None => known = false,
                        },
                        ListElem::Spread(x) => {
                            self.expr(x);
                            known = false;
                        }
                    }
                }
                if !known || tys.is_empty() {
                    return named("list");
                }
                Some(Ty::List(Box::new(Ty::union(tys))))
            }
            ExprKind::Dict(entries) => {
                let mut fields = Vec::new();
                let mut shape = !entries.is_empty();
                for en in entries {
                    match en {
                        DictEntry::Pair { key: DictKey::Name(k), value } => {
                            let t = self.expr(value).unwrap_or_else(Ty::wild);
                            fields.retain(|f: &Field| f.name != *k);
                            fields.push(Field { name: k.clone(), optional: false, ty: t });
                        }
                        DictEntry::Pair { key: DictKey::Computed(k), value } => {
                            self.expr(k);
                            self.expr(value);
                            shape = false;
                        }
                        DictEntry::Spread(x) => {
                            self.expr(x);
                            shape = false;
                        }
                    }
                }
                if shape {
                    Some(Ty::Shape(fields))
                } else {
                    named("dict")
                }
            }
            ExprKind::Closure(c) => self.closure(c),
            ExprKind::Call { name, type_args, args } => self.call(name, type_args, args, e.pos),
            ExprKind::MethodCall { object, name, args, .. } => {
                let recv = self.expr(object);
                let arg_tys = self.exprs_of_args(args);
                recv.and_then(|r| self.method_result(&r, name, &arg_tys))
            }
            ExprKind::Property { object, name, .. } => {
                let recv = self.expr(object)?;
                self.property(&recv, name)
            }
            ExprKind::Index { object, index, .. } => {
                let recv = self.expr(object);
                self.expr(index);
                let recv = self.resolve(&recv?);
                match (&recv, &index.kind) {
                    (Ty::List(t), _) => Some((**t).clone()),
                    (Ty::Dict(_, v), _) => Some((**v).clone()),
                    (Ty::Shape(fs), ExprKind::Str(k)) => fs.iter().find(|f| f.name == *k && !f.optional).map(|f| f.ty.clone()),
                    (Ty::Named(n), _) if n == "string" => named("string"),
                    _ => None,
                }
            }
            ExprKind::Slice { object, start, end, .. } => {
                let recv = self.expr(object);
                if let Some(s) = start {
                    self.expr(s);
                }
                if let Some(x) = end {
                    self.expr(x);
                }
                match recv.map(|r| self.resolve(&r)) {
                    Some(t @ Ty::List(_)) => Some(t),
                    Some(t) if t.is_named("string") || t.is_named("list") => Some(t),
                    _ => None,
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.expr(lhs);
                let r = if matches!(op, BinOp::And | BinOp::Or) {
                    // The right side runs under the left side's narrowing.
                    let refs = self.refinements(lhs);
                    self.push_scope();
                    self.apply(if *op == BinOp::And { refs.truthy } else { refs.falsy });
                    let r = self.expr(rhs);
                    self.pop_scope();
                    r
                } else {
                    self.expr(rhs)
                };
                self.binary(*op, l, r, leftmost(e))
            }
            ExprKind::Unary { op, operand } => {
                let t = self.expr(operand);
                match op {
                    UnaryOp::Not => named("bool"),
                    UnaryOp::Neg => t,
                }
            }
            ExprKind::Ternary { cond, then, else_ } => {
                self.expr(cond);
                let r = self.refinements(cond);
                self.push_scope();
                self.apply(r.truthy);
                let a = self.expr(then);
                self.pop_scope();
                self.push_scope();
                self.apply(r.falsy);
                let b = self.expr(else_);
                self.pop_scope();
                match (a, b) {
                    (Some(a), Some(b)) => Some(if a == b { a } else { Ty::union(vec![a, b]) }),
                    (a, b) => a.or(b),
                }
            }
            ExprKind::Range { start, end, .. } => {
                self.expr(start);
                self.expr(end);
                named("range")
            }
            ExprKind::TryOp(x) => match self.expr(x).map(|t| self.resolve(&t)) {
                Some(Ty::Applied(n, args)) if n == "Result" && args.len() == 2 => Some(args[0].clone()),
                _ => None,
            },
            ExprKind::TryStar(x) => {
                if self.fns.is_empty() {
                    let msg = "try* requires an enclosing function (fn, tool, or pipeline) so the rethrow has a target";
                    self.error("HARN-RCV-002", msg.into(), e.pos);
                }
                self.expr(x)
            }
            ExprKind::TryCatch { body, catch, finally } => {
                let t = self.nested(body, Vec::new());
                if let Some(c) = catch {
                    if let Some(f) = self.fns.last_mut() {
                        f.nesting += 1;
                    }
                    self.push_scope();
                    if let Some(b) = &c.binding {
                        self.define(b, None, false);
                    }
                    self.block(&c.body);
                    self.pop_scope();
                    if let Some(f) = self.fns.last_mut() {
                        f.nesting -= 1;
                    }
                }
                if let Some(f) = finally {
                    self.nested(f, Vec::new());
                }
                if catch.is_none() && finally.is_none() {
                    return match t {
                        Some(t @ Ty::Applied(..)) if t.base_name() == Some("Result") => Some(t),
                        Some(Ty::Never) | None => Some(Ty::Applied("Result".into(), vec![Ty::wild(), Ty::wild()])),
                        Some(t) => Some(Ty::Applied("Result".into(), vec![t, Ty::wild()])),
                    };
                }
                None
            }
            ExprKind::If { cond, then, else_ } => self.if_expr(cond, then, else_.as_ref()).0,
            ExprKind::Match { subject, arms } => {
                let st = self.expr(subject);
                for arm in arms {
                    if let Some(f) = self.fns.last_mut() {
                        f.nesting += 1;
                    }
                    self.push_scope();
                    for p in &arm.patterns {
                        self.pattern(p);
                    }
                    if let Some(g) = &arm.guard {
                        self.expr(g);
                    }
                    self.block(&arm.body);
                    self.pop_scope();
                    if let Some(f) = self.fns.last_mut() {
                        f.nesting -= 1;
                    }
                }
                self.exhaustive(subject, st.as_ref(), arms, e.pos);
                None
            }
            ExprKind::EnumConstruct { enum_name, variant, args } => {
                let tys = self.exprs_of_args(args);
                if enum_name == "Result" {
                    let x = tys.first().cloned().flatten().unwrap_or_else(Ty::wild);
                    return match variant.as_str() {
                        "Ok" => Some(Ty::Applied("Result".into(), vec![x, Ty::wild()])),
                        "Err" => Some(Ty::Applied("Result".into(), vec![Ty::wild(), x])),
                        _ => None,
                    };
                }
                let info = self.decls.enums.get(enum_name)?;
                if info.type_params.is_empty() {
                    Some(Ty::Named(enum_name.into()))
                } else {
                    Some(Ty::Applied(enum_name.into(), info.type_params.iter().map(|_| Ty::wild()).collect()))
                }
            }
            ExprKind::StructConstruct { name, fields } => self.struct_literal(name, fields, e.pos),
            ExprKind::Spawn(b) => {
                self.closure_body(b, &[]);
                None
            }
            ExprKind::Parallel(p) => {
                self.expr(&p.expr);
                if let Some(o) = &p.options {
                    self.expr(o);
                }
                let body = self.closure_body(&p.body, p.param.as_slice());
                let item = body.filter(|t| *t != Ty::Never).unwrap_or_else(Ty::wild);
                match p.kind {
                    ParallelKind::Settle => named("dict"),
                    _ if p.as_stream => Some(Ty::Stream(Box::new(item))),
                    _ => Some(Ty::List(Box::new(item))),
                }
            }
            ExprKind::Deadline { duration: x, body } | ExprKind::Retry { count: x, body } => {
                self.expr(x);
                self.nested(body, Vec::new());
                None
            }
        }
    }

    /// A closure-like body (`spawn`, `parallel`): its own returns are not the enclosing fn's.
    fn closure_body(&mut self, body: &[Stmt], params: &[String]) -> Option<Ty> {
        self.push_scope();
        for p in params {
            self.define_param(p, None);
        }
        self.fns.push(FnCtx { ret: None, stream: None, nesting: 0, closure: true });
        let t = self.block(body);
        self.fns.pop();
        self.pop_scope();
        t
    }

    fn closure(&mut self, c: &Closure) -> Option<Ty> {
        self.push_scope();
        let mut ptys = Vec::new();
        for p in &c.params {
            if let Some(d) = &p.default {
                self.expr(d);
            }
            let t = if p.rest { None } else { p.ty.as_ref().map(lower) };
            ptys.push(t.clone());
            self.define_param(&p.name, t);
        }
        // A generator closure's body is checked, its type left open.
        self.fns.push(FnCtx { ret: None, stream: None, nesting: 0, closure: true });
        let last = self.block(&c.body);
        self.fns.pop();
        self.pop_scope();
        if c.is_generator || c.params.is_empty() || ptys.iter().any(|t| t.is_none()) {
            return Some(Ty::named("closure"));
        }
        match last {
            Some(r) if r != Ty::Never => Some(Ty::Fn(ptys.into_iter().map(|t| t.unwrap()).collect(), Box::new(r))),
            _ => Some(Ty::named("closure")),
        }
    }

    fn pattern(&mut self, p: &MatchPattern) {
        match p {
            MatchPattern::Wildcard => {}
            MatchPattern::Binding(n) => self.define(n, None, false),
            MatchPattern::Value(e) => {
                self.expr(e);
            }
            MatchPattern::EnumVariant { bindings, .. } => {
                for b in bindings.iter().flatten().flatten() {
                    self.define(b, None, false);
                }
            }
            MatchPattern::Dict(entries) => entries.iter().for_each(|(_, p)| self.pattern(p)),
            MatchPattern::List(items) => items.iter().for_each(|p| self.pattern(p)),
        }
    }

    /// `if` as statement or value: its type and the narrowings that hold after it.
    fn if_expr(&mut self, cond: &Expr, then: &[Stmt], else_: Option<&ElseBranch>) -> (Option<Ty>, Vec<(String, Ty)>) {
        self.expr(cond);
        let r = self.refinements(cond);
        let a = self.scoped(then, r.truthy.clone());
        let b = match else_ {
            None => None,
            Some(ElseBranch::Block(b)) => Some(self.scoped(b, r.falsy.clone())),
            Some(ElseBranch::If(e)) => {
                self.push_scope();
                self.apply(r.falsy.clone());
                let t = self.expr(e);
                self.pop_scope();
                Some(t)
            }
        };
        let then_exits = a == Some(Ty::Never);
        let else_exits = b.as_ref().is_some_and(|b| *b == Some(Ty::Never));
        let after = if then_exits && !else_exits {
            r.falsy
        } else if else_exits && !then_exits {
            r.truthy
        } else {
            Vec::new()
        };
        let t = match (a, b) {
            (a, None) => a.filter(|t| *t != Ty::Never),
            (None, _) => None,
            (Some(Ty::Never), Some(b)) => b,
            (Some(a), Some(Some(Ty::Never))) => Some(a),
            (Some(a), Some(Some(b))) => Some(if a == b { a } else { Ty::union(vec![a, b]) }),
            (Some(a), Some(None)) => Some(a),
        };
        (t, after)
    }

    fn element_type(&self, t: &Ty) -> Option<Ty> {
        match self.resolve(t) {
            Ty::List(x) | Ty::Iter(x) | Ty::Generator(x) | Ty::Stream(x) => Some(*x),
            Ty::Dict(k, v) => Some(Ty::Applied("Pair".into(), vec![*k, *v])),
            Ty::Named(n) if n == "string" => Some(Ty::named("string")),
            Ty::Named(n) if n == "range" => Some(Ty::named("int")),
            Ty::Union(ms) => {
                let tys: Option<Vec<Ty>> = ms.iter().map(|m| self.element_type(m)).collect();
                tys.map(Ty::union)
            }
            _ => None,
        }
    }

    fn property(&self, recv: &Ty, name: &str) -> Option<Ty> {
        let r = self.resolve(recv);
        if name == "variant" && r.base_name().is_some_and(|n| self.decls.enums.contains_key(n)) {
            return Some(Ty::named("string"));
        }
        match &r {
            Ty::Shape(fs) => fs.iter().find(|f| f.name == name && !f.optional).map(|f| f.ty.clone()),
            Ty::Applied(n, args) if n == "Pair" && args.len() == 2 => match name {
                "first" => Some(args[0].clone()),
                "second" => Some(args[1].clone()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Result types of methods on builtin receivers (§4.4); user types and
    /// unknown receivers give no type.
    fn method_result(&self, recv: &Ty, name: &str, _args: &[Option<Ty>]) -> Option<Ty> {
        let r = self.resolve(recv);
        let named = |n: &str| Some(Ty::named(n));
        let builtin_recv = match &r {
            Ty::Named(n) => matches!(n.as_str(), "string" | "list" | "dict" | "iter" | "set"),
            Ty::List(_) | Ty::Dict(..) | Ty::Shape(_) | Ty::Iter(_) | Ty::Generator(_) | Ty::Stream(_) => true,
            _ => false,
        };
        if !builtin_recv {
            return None;
        }
        let is_iter = matches!(r, Ty::Iter(_)) || r.is_named("iter");
        if is_iter {
            return match name {
                "iter" | "filter" | "take" | "skip" | "take_while" | "skip_while" | "chain" => Some(r.clone()),
                "map" | "flat_map" => named("iter"),
                "to_list" => match &r {
                    Ty::Iter(t) => Some(Ty::List(t.clone())),
                    _ => named("list"),
                },
                "count" => named("int"),
                "any" | "all" => named("bool"),
                _ => None,
            };
        }
        match name {
            "iter" => match &r {
                Ty::List(t) | Ty::Generator(t) | Ty::Stream(t) => Some(Ty::Iter(t.clone())),
                Ty::Dict(k, v) => Some(Ty::Iter(Box::new(Ty::Applied("Pair".into(), vec![(**k).clone(), (**v).clone()])))),
                _ => named("iter"),
            },
            "contains" | "starts_with" | "ends_with" | "empty" | "has" => named("bool"),
            "count" => named("int"),
            "trim" | "lowercase" | "uppercase" | "replace" | "join" | "to_string" => named("string"),
            "split" | "chars" => named("list"),
            "reverse" | "sort" | "filter" => match &r {
                Ty::List(_) => Some(r.clone()),
                Ty::Named(n) if n == "string" && name == "reverse" => named("string"),
                Ty::Named(n) if n == "list" => named("list"),
                _ => None,
            },
            "map" | "keys" | "values" if matches!(r, Ty::List(_) | Ty::Dict(..)) || r.is_named("list") => named("list"),
            _ => None,
        }
    }

    // -----------------------------------------------------------------------
    // Operators (§3.6, §4.6)

    fn binary(&mut self, op: BinOp, l: Option<Ty>, r: Option<Ty>, pos: Pos) -> Option<Ty> {
        let bool_ = || Some(Ty::named("bool"));
        match op {
            BinOp::Eq | BinOp::Ne | BinOp::And | BinOp::Or | BinOp::In | BinOp::NotIn => return bool_(),
            BinOp::Pipe => return None,
            BinOp::NullCoalesce => {
                let Some(l) = l else { return r };
                let lr = self.resolve(&l);
                if lr.is_named("nil") {
                    return r;
                }
                if !lr.has_nil() {
                    return Some(l);
                }
                let base = lr.without_nil();
                return Some(match r {
                    Some(r) => Ty::union(vec![base, r]),
                    None => base,
                });
            }
            _ => {}
        }
        let (l, r) = (l?, r?);
        let (lr, rr) = (self.resolve(&l), self.resolve(&r));
        let (Ty::Named(a), Ty::Named(b)) = (&lr, &rr) else { return None };
        const CHECKED: &[&str] = &["int", "float", "string", "bool", "nil", "list", "dict"];
        if !CHECKED.contains(&a.as_str()) || !CHECKED.contains(&b.as_str()) {
            // `any`, `unknown`, user and library types: the VM decides.
            return self.binop_result(op, &lr, &rr).filter(|_| false);
        }
        let num = |x: &str| x == "int" || x == "float";
        let (a, b) = (a.as_str(), b.as_str());
        let opname = op_text(op);
        match op {
            BinOp::Add => {
                let ok = (num(a) && num(b)) || (a == b && matches!(a, "string" | "list" | "dict"));
                if !ok {
                    self.error("HARN-TYP-002", format!("can't add {a} and {b}"), pos);
                }
            }
            BinOp::Sub | BinOp::Div | BinOp::Mod | BinOp::Pow if !(num(a) && num(b)) => {
                self.error("HARN-TYP-002", format!("can't use '{opname}' on {a} and {b} (needs numeric operands)"), pos);
            }
            BinOp::Mul => {
                let ok = (num(a) && num(b)) || (a == "string" && b == "int") || (a == "int" && b == "string");
                if !ok {
                    self.error("HARN-TYP-002", format!("can't multiply {a} and {b} (try string * int)"), pos);
                }
            }
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
                let cmp = |x: &str| matches!(x, "int" | "float" | "string");
                if !(cmp(a) && cmp(b)) {
                    self.warn("HARN-TYP-002", format!("Comparison '{opname}' may not be meaningful for types {a} and {b}"), pos);
                } else if (a == "string") != (b == "string") {
                    self.warn(
                        "HARN-TYP-002",
                        format!("Comparing {a} with {b} using '{opname}' may give unexpected results"),
                        pos,
                    );
                }
                return bool_();
            }
            _ => {}
        }
        self.binop_result(op, &lr, &rr)
    }

    /// The result type of an arithmetic operator on two (resolved) types.
    fn binop_result(&self, op: BinOp, l: &Ty, r: &Ty) -> Option<Ty> {
        let (Ty::Named(a), Ty::Named(b)) = (self.resolve(l), self.resolve(r)) else { return None };
        let (a, b) = (a.as_str(), b.as_str());
        let num = |x: &str| x == "int" || x == "float";
        let t = match op {
            BinOp::Add | BinOp::Sub | BinOp::Div | BinOp::Mod | BinOp::Pow | BinOp::Mul if a == "int" && b == "int" => "int",
            BinOp::Add | BinOp::Sub | BinOp::Div | BinOp::Mod | BinOp::Pow | BinOp::Mul if num(a) && num(b) => "float",
            BinOp::Add if a == b && matches!(a, "string" | "list" | "dict") => a,
            BinOp::Mul if (a == "string" && b == "int") || (a == "int" && b == "string") => "string",
            BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge | BinOp::Eq | BinOp::Ne => "bool",
            _ => return None,
        };
        Some(Ty::named(t))
    }

    // -----------------------------------------------------------------------
    // Calls (§3.4)

    fn call(&mut self, name: &str, type_args: &[TypeExpr], args: &[Arg], pos: Pos) -> Option<Ty> {
        let arg_tys = self.exprs_of_args(args);
        let spread = args.iter().any(|a| matches!(a, Arg::Spread(_)));
        let sig: Option<Rc<FnSig>> = match self.lookup(name) {
            Some(v) => v.sig.clone(),
            None if self.entry_only && !self.decls.fns.contains_key(name) => None,
            None => match self.decls.fns.get(name) {
                Some(s) => s.clone(),
                None => {
                    if !spread {
                        self.builtin_arity(name, args.len(), pos);
                    }
                    return self.other_call(name, &arg_tys, pos);
                }
            },
        };
        let sig = sig?;
        self.check_call(&sig, type_args, args, &arg_tys, spread, pos)
    }

    /// 0.9.11's warning for a builtin called with a count its runtime rejects.
    fn builtin_arity(&mut self, name: &str, argc: usize, pos: Pos) {
        if let Some(expects) = crate::builtins::builtin_id(name).and_then(|id| crate::builtins::arity::rejects(id, argc)) {
            self.warn("HARN-STD-003", format!("Builtin function '{name}' expects {expects}, got {argc}"), pos);
        }
    }

    /// Calls of builtins, struct names and undefined names.
    fn other_call(&mut self, name: &str, arg_tys: &[Option<Ty>], pos: Pos) -> Option<Ty> {
        let first = || arg_tys.first().cloned().flatten().unwrap_or_else(Ty::wild);
        match name {
            "Ok" => return Some(Ty::Applied("Result".into(), vec![first(), Ty::wild()])),
            "Err" => return Some(Ty::Applied("Result".into(), vec![Ty::wild(), first()])),
            _ => {}
        }
        if is_known_builtin(name) {
            return builtin_return(name);
        }
        if let Some(s) = self.decls.structs.get(name) {
            return Some(if s.type_params.is_empty() {
                Ty::Named(name.into())
            } else {
                Ty::Applied(name.into(), s.type_params.iter().map(|_| Ty::wild()).collect())
            });
        }
        let exempt = self.is_known(name)
            || name.starts_with("__")
            || name.starts_with("hostlib_")
            || matches!(name, "Some" | "None")
            || self.is_generic(name)
            || self.decls.enums.contains_key(name);
        if self.strict && !exempt {
            let hint = crate::runtime::error::closest_match(name, crate::builtins::builtin_names());
            let msg = match hint {
                Some(h) => format!("call target `{name}` is not defined or imported — did you mean `{h}`?"),
                None => format!("call target `{name}` is not defined or imported"),
            };
            self.undefined.push((self.diags.len(), name.to_string()));
            self.error("HARN-NAM-002", msg, pos);
        }
        None
    }

    fn check_call(
        &mut self,
        sig: &FnSig,
        type_args: &[TypeExpr],
        args: &[Arg],
        arg_tys: &[Option<Ty>],
        spread: bool,
        pos: Pos,
    ) -> Option<Ty> {
        let name = sig.name.as_str();
        if !type_args.is_empty() {
            if sig.type_params.is_empty() {
                self.error("HARN-TYP-011", format!("Function '{name}' does not declare type parameters"), pos);
            } else if type_args.len() != sig.type_params.len() {
                self.error(
                    "HARN-TYP-013",
                    format!("Function '{name}' expects {} type arguments, got {}", sig.type_params.len(), type_args.len()),
                    pos,
                );
            }
        }
        let has_rest = sig.params.iter().any(|p| p.rest);
        if !spread && !has_rest && !is_builtin(name) {
            // As 0.9.11: only too few arguments warn (extra ones are dropped at run time).
            let required = sig.params.iter().filter(|p| !p.default).count();
            let got = args.len();
            if got < required {
                let plural = if required == 1 { "" } else { "s" };
                self.warn(
                    "HARN-ORC-001",
                    format!("Function '{name}' expects at least {required} argument{plural}, got {got}"),
                    pos,
                );
            }
        }
        // Generic bindings (§4.5): explicit type arguments, else inferred from the arguments.
        let mut bound: std::collections::HashMap<String, Ty> = std::collections::HashMap::new();
        if !sig.type_params.is_empty() {
            if !type_args.is_empty() && type_args.len() == sig.type_params.len() {
                for (p, t) in sig.type_params.iter().zip(type_args) {
                    bound.insert(p.clone(), lower(t));
                }
            } else {
                let mut conflicts: Vec<(String, Pos)> = Vec::new();
                for (i, p) in sig.params.iter().enumerate() {
                    if p.rest {
                        break;
                    }
                    let (Some(pt), Some(Some(at)), Some(Arg::Positional(ae))) = (&p.ty, arg_tys.get(i), args.get(i)) else {
                        continue;
                    };
                    let at = self.resolve(at);
                    let apos = leftmost(ae);
                    bind_params(pt, &at, &sig.type_params, &mut bound, &mut |n, old, new| {
                        conflicts.push((format!("type parameter '{n}' was inferred as both {old} and {new}"), apos));
                    });
                }
                for (m, p) in conflicts {
                    self.error("HARN-TYP-014", m, p);
                }
            }
        }
        // Argument types (§3.4.3); the callee's own type parameters stay lenient.
        let saved = self.generics.len();
        self.generics.extend(sig.type_params.iter().cloned());
        for (i, p) in sig.params.iter().enumerate() {
            if p.rest {
                break;
            }
            let (Some(pt), Some(Some(at)), Some(Arg::Positional(ae))) = (&p.ty, arg_tys.get(i), args.get(i)) else {
                continue;
            };
            let want = subst(pt, &|n| bound.get(n).cloned());
            if !self.compat(&want, at) {
                let msg = format!("Argument {} ('{}'): expected {want}, got {at}", i + 1, p.name);
                self.error("HARN-TYP-006", msg, leftmost(ae));
            }
        }
        self.generics.truncate(saved);
        // `where` interface bounds (§3.4.6), for interfaces this file declares.
        for (p, iface) in &sig.bounds {
            let Some(x) = bound.get(p) else { continue };
            if !self.decls.interfaces.contains_key(iface) || x.is_named("_") || x.is_named("any") || x.is_named("unknown") {
                continue;
            }
            let reason = match x.base_name() {
                Some(n) if self.is_generic(n) => continue,
                Some(n) => match self.unsatisfied(n, iface) {
                    Some(r) => r,
                    None => continue,
                },
                None => "only named types can satisfy interfaces".to_string(),
            };
            self.error(
                "HARN-TYP-015",
                format!(
                    "Type '{x}' does not satisfy interface '{iface}': {reason} (required by constraint `where {p}: {iface}`)"
                ),
                pos,
            );
        }
        let ret = sig.ret.as_ref()?;
        let params = &sig.type_params;
        Some(subst(ret, &|n| {
            if params.iter().any(|p| p == n) {
                Some(bound.get(n).cloned().unwrap_or_else(Ty::wild))
            } else {
                None
            }
        }))
    }

    // -----------------------------------------------------------------------
    // Struct literals (§3.7.1)

    fn struct_literal(&mut self, name: &str, fields: &[(String, Expr)], pos: Pos) -> Option<Ty> {
        let tys: Vec<Option<Ty>> = fields.iter().map(|(_, e)| self.expr(e)).collect();
        let Some(info) = self.decls.structs.get(name).cloned() else {
            if self.strict && !self.decls.enums.contains_key(name) {
                self.error("HARN-TYP-020", format!("unknown struct type `{name}`"), pos);
            }
            return None;
        };
        let saved = self.generics.len();
        self.generics.extend(info.type_params.iter().cloned());
        for ((f, e), t) in fields.iter().zip(&tys) {
            match info.fields.iter().find(|d| d.0 == *f) {
                None => self.warn("HARN-NAM-004", format!("Unknown field '{f}' in struct '{name}'"), e.pos),
                Some((_, _, Some(want))) => {
                    if let Some(got) = t {
                        if !self.compat(want, got) {
                            self.error(
                                "HARN-TYP-009",
                                format!("Field '{f}' in struct '{name}' expects {want}, got {got}"),
                                e.pos,
                            );
                        }
                    }
                }
                Some(_) => {}
            }
        }
        self.generics.truncate(saved);
        for (f, optional, _) in &info.fields {
            if !optional && !fields.iter().any(|(g, _)| g == f) {
                self.warn("HARN-TYP-009", format!("Missing field '{f}' in struct '{name}' construction"), pos);
            }
        }
        Some(if info.type_params.is_empty() {
            Ty::Named(name.into())
        } else {
            Ty::Applied(name.into(), info.type_params.iter().map(|_| Ty::wild()).collect())
        })
    }

    // -----------------------------------------------------------------------
    // Match exhaustiveness (§3.8.1)

    fn exhaustive(&mut self, subject: &Expr, st: Option<&Ty>, arms: &[MatchArm], pos: Pos) {
        let pats: Vec<&MatchPattern> = arms.iter().flat_map(|a| a.patterns.iter()).collect();
        // Any pattern the analysis does not understand counts as a wildcard.
        let lit = |p: &MatchPattern| -> Option<Ty> {
            match p {
                MatchPattern::Value(Expr { kind: ExprKind::Str(s), .. }) => Some(Ty::LitStr(s.clone())),
                MatchPattern::Value(Expr { kind: ExprKind::Int(n), .. }) => Some(Ty::LitInt(*n)),
                _ => None,
            }
        };
        // 1. Enums: `match v.variant { "A" -> … }` or a value of an enum type.
        let enum_name = match (&subject.kind, st) {
            (ExprKind::Property { object, name, .. }, _) if name == "variant" => match &object.kind {
                ExprKind::Ident(x) => self.lookup(x).and_then(|v| v.ty.clone()),
                _ => None,
            },
            (_, Some(t)) => Some(t.clone()),
            _ => None,
        }
        .map(|t| self.resolve(&t))
        .and_then(|t| if let Ty::Named(n) = t { Some(n) } else { None })
        .filter(|n| self.decls.enums.contains_key(n.as_str()));
        if let Some(en) = enum_name {
            let mut covered: Vec<String> = Vec::new();
            for p in &pats {
                match p {
                    MatchPattern::Value(Expr { kind: ExprKind::Str(s), .. }) => covered.push(s.clone()),
                    MatchPattern::EnumVariant { variant, bindings: None, .. } => covered.push(variant.clone()),
                    _ => return,
                }
            }
            let missing: Vec<String> = self.decls.enums[en.as_str()]
                .variants
                .iter()
                .filter(|(v, _)| !covered.contains(v))
                .map(|(v, _)| format!("\"{v}\""))
                .collect();
            if !missing.is_empty() {
                self.error(
                    "HARN-MAT-001",
                    format!("Non-exhaustive match on enum {en}: missing variants {}", missing.join(", ")),
                    pos,
                );
            }
            return;
        }
        // 2. Tagged shape unions: `match m.kind { "a" -> … }`.
        if let ExprKind::Property { object, name, .. } = &subject.kind {
            if let ExprKind::Ident(x) = &object.kind {
                if let Some(members) = self.lookup(x).and_then(|v| v.ty.clone()).and_then(|t| self.tagged_union(&t, name)) {
                    let mut covered = Vec::new();
                    for p in &pats {
                        match lit(p) {
                            Some(l) => covered.push(l),
                            None => return,
                        }
                    }
                    let missing: Vec<String> =
                        members.iter().filter(|(_, tag)| !covered.contains(tag)).map(|(_, tag)| tag.to_string()).collect();
                    if !missing.is_empty() {
                        self.error(
                            "HARN-MAT-001",
                            format!("Non-exhaustive match on tagged shape union: missing variants {}", missing.join(", ")),
                            pos,
                        );
                    }
                    return;
                }
            }
        }
        let Some(Ty::Union(ms)) = st.map(|t| self.resolve(t)) else { return };
        let ms: Vec<Ty> = ms.iter().map(|m| self.resolve(m)).collect();
        // 4. Literal unions.
        if ms.iter().all(|m| matches!(m, Ty::LitStr(_) | Ty::LitInt(_))) {
            let mut covered = Vec::new();
            for p in &pats {
                match lit(p) {
                    Some(l) => covered.push(l),
                    None => return,
                }
            }
            let missing: Vec<String> = ms.iter().filter(|m| !covered.contains(m)).map(|m| m.to_string()).collect();
            if !missing.is_empty() {
                self.error("HARN-MAT-001", format!("Non-exhaustive match on literal union: missing {}", missing.join(", ")), pos);
            }
            return;
        }
        // 5. Unions of plain primitive names.
        const PRIMS: &[&str] = &["nil", "bool", "int", "float", "string"];
        if ms.iter().all(|m| matches!(m, Ty::Named(n) if PRIMS.contains(&n.as_str()))) {
            let mut covered: Vec<&str> = Vec::new();
            for p in &pats {
                let MatchPattern::Value(v) = p else { return };
                covered.push(match &v.kind {
                    ExprKind::Nil => "nil",
                    ExprKind::Bool(_) => "bool",
                    ExprKind::Int(_) => "int",
                    ExprKind::Float(_) => "float",
                    ExprKind::Str(_) => "string",
                    _ => return,
                });
            }
            let missing: Vec<String> =
                ms.iter().filter(|m| !covered.iter().any(|c| m.is_named(c))).map(|m| m.to_string()).collect();
            if !missing.is_empty() {
                self.error("HARN-MAT-001", format!("Non-exhaustive match on union type: missing {}", missing.join(", ")), pos);
            }
        }
    }
}

/// The type of a declared fn used as a value.
fn fn_value_type(sig: &FnSig) -> Ty {
    if !sig.type_params.is_empty() || sig.params.iter().any(|p| p.rest || p.default) {
        return Ty::named("closure");
    }
    Ty::Fn(
        sig.params.iter().map(|p| p.ty.clone().unwrap_or_else(Ty::wild)).collect(),
        Box::new(sig.ret.clone().unwrap_or_else(Ty::wild)),
    )
}

/// ` (missing field 'y' (int); field 'a' has type string, expected int)` for
/// two written shapes, else empty.
fn shape_detail(want: &Ty, got: &Ty) -> String {
    let (Ty::Shape(w), Ty::Shape(g)) = (want, got) else { return String::new() };
    let mut parts = Vec::new();
    for f in w.iter().filter(|f| !f.optional) {
        match g.iter().find(|x| x.name == f.name) {
            None => parts.push(format!("missing field '{}' ({})", f.name, f.ty)),
            Some(x) if x.ty.to_string() != f.ty.to_string() => {
                parts.push(format!("field '{}' has type {}, expected {}", f.name, x.ty, f.ty))
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}
