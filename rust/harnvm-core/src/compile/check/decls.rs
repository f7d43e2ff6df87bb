//! The pre-pass (reference §4.1): type-like declarations and callable
//! signatures, registered before the walk so forward references work.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::rc::Rc;

use crate::compile::check::ty::{lower, Ty};
use crate::compile::types::TypeEnv;
use crate::syntax::ast::{FnDecl, Param, Stmt, StmtKind, TypeParam, Variance};

/// A callable's signature.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FnSig {
    pub name: String,
    pub type_params: Vec<String>,
    pub params: Vec<ParamSig>,
    /// Declared return type (`Stream<any>` / `Generator<any>` defaults for
    /// generators); `None` = calls are untyped.
    pub ret: Option<Ty>,
    /// `where P: Iface` pairs (also `<P: Iface>` bounds).
    pub bounds: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParamSig {
    pub name: String,
    pub ty: Option<Ty>,
    pub default: bool,
    pub rest: bool,
}

/// A method signature without its `self` parameter.
#[derive(Debug, Clone)]
pub(crate) struct MethodSig {
    pub name: String,
    pub params: Vec<Option<Ty>>,
    pub ret: Option<Ty>,
}

#[derive(Debug, Clone)]
pub(crate) struct InterfaceInfo {
    pub type_params: Vec<String>,
    pub assoc: Vec<(String, Option<Ty>)>,
    pub methods: Vec<MethodSig>,
}

#[derive(Debug, Clone)]
pub(crate) struct StructInfo {
    pub type_params: Vec<String>,
    pub fields: Vec<(String, bool, Option<Ty>)>,
}

#[derive(Debug, Clone)]
pub(crate) struct EnumInfo {
    pub type_params: Vec<String>,
    pub variants: Vec<(String, Vec<Option<Ty>>)>,
}

#[derive(Default)]
pub(crate) struct Decls {
    /// Aliases, in the same registry the compiler lowers parameter checks from.
    pub types: TypeEnv,
    pub structs: HashMap<String, StructInfo>,
    pub enums: HashMap<String, EnumInfo>,
    pub interfaces: HashMap<String, InterfaceInfo>,
    /// Type name → methods of its `impl` blocks.
    pub impls: HashMap<String, Vec<MethodSig>>,
    /// Declared variance of each generic constructor's parameters.
    pub variances: HashMap<String, Vec<Variance>>,
    /// Callables by name; `None` when two declarations of the name differ
    /// (then calls of it are not checked).
    pub fns: HashMap<String, Option<Rc<FnSig>>>,
    /// Every declared callable, struct and enum name.
    pub bound_names: HashSet<String>,
}

fn param_sigs(params: &[Param]) -> Vec<ParamSig> {
    params
        .iter()
        .map(|p| ParamSig { name: p.name.clone(), ty: p.ty.as_ref().map(lower), default: p.default.is_some(), rest: p.rest })
        .collect()
}

fn names(tps: &[TypeParam]) -> Vec<String> {
    tps.iter().map(|t| t.name.clone()).collect()
}

pub(crate) fn fn_sig(f: &FnDecl) -> FnSig {
    let ret = match &f.return_type {
        Some(t) => Some(lower(t)),
        None if f.is_stream => Some(Ty::Stream(Box::new(Ty::named("any")))),
        None if f.is_generator => Some(Ty::Generator(Box::new(Ty::named("any")))),
        None => None,
    };
    let mut bounds: Vec<(String, String)> = Vec::new();
    for tp in &f.type_params {
        if let Some(b) = &tp.bound {
            bounds.extend(bound_names(b).into_iter().map(|i| (tp.name.clone(), i)));
        }
    }
    for w in &f.where_clauses {
        bounds.extend(bound_names(&w.bound).into_iter().map(|i| (w.param.clone(), i)));
    }
    FnSig { name: f.name.clone(), type_params: names(&f.type_params), params: param_sigs(&f.params), ret, bounds }
}

/// Interface names of a bound (`A` or `A + B`, which the parser may give as a union-like list).
fn bound_names(t: &crate::syntax::ast::TypeExpr) -> Vec<String> {
    use crate::syntax::ast::TypeExpr;
    match t {
        TypeExpr::Named { name, .. } => vec![name.clone()],
        TypeExpr::Union(ms) => ms.iter().flat_map(bound_names).collect(),
        _ => Vec::new(),
    }
}

fn method_sig(name: &str, params: &[Param], ret: &Option<crate::syntax::ast::TypeExpr>) -> MethodSig {
    MethodSig {
        name: name.to_string(),
        params: params.iter().filter(|p| p.name != "self").map(|p| p.ty.as_ref().map(lower)).collect(),
        ret: ret.as_ref().map(lower),
    }
}

fn variances(tps: &[TypeParam]) -> Vec<Variance> {
    tps.iter().map(|t| t.variance).collect()
}

impl Decls {
    pub(crate) fn collect(items: &[Stmt]) -> Decls {
        let mut d = Decls::default();
        d.variances.insert("Result".into(), vec![Variance::Out, Variance::Out]);
        d.walk(items);
        d
    }

    fn add_fn(&mut self, sig: FnSig) {
        self.bound_names.insert(sig.name.clone());
        let name = sig.name.clone();
        match self.fns.get(&name) {
            None => {
                self.fns.insert(name, Some(Rc::new(sig)));
            }
            Some(Some(old)) if **old == sig => {}
            Some(_) => {
                self.fns.insert(name, None);
            }
        }
    }

    fn walk(&mut self, stmts: &[Stmt]) {
        for s in stmts {
            match &s.kind {
                StmtKind::TypeAlias(a) => {
                    self.types.aliases.insert(a.name.clone(), (names(&a.type_params), a.ty.clone()));
                    self.variances.insert(a.name.clone(), variances(&a.type_params));
                }
                StmtKind::Interface(i) => {
                    self.types.interfaces.insert(i.name.clone(), i.methods.iter().map(|m| m.name.clone()).collect());
                    self.variances.insert(i.name.clone(), variances(&i.type_params));
                    let info = InterfaceInfo {
                        type_params: names(&i.type_params),
                        assoc: i.assoc_types.iter().map(|a| (a.name.clone(), a.default.as_ref().map(lower))).collect(),
                        methods: i.methods.iter().map(|m| method_sig(&m.name, &m.params, &m.return_type)).collect(),
                    };
                    self.interfaces.insert(i.name.clone(), info);
                }
                StmtKind::Struct(st) => {
                    self.bound_names.insert(st.name.clone());
                    self.variances.insert(st.name.clone(), variances(&st.type_params));
                    let fields = st.fields.iter().map(|f| (f.name.clone(), f.optional, f.ty.as_ref().map(lower))).collect();
                    self.structs.insert(st.name.clone(), StructInfo { type_params: names(&st.type_params), fields });
                }
                StmtKind::Enum(e) => {
                    self.bound_names.insert(e.name.clone());
                    self.variances.insert(e.name.clone(), variances(&e.type_params));
                    let variants = e
                        .variants
                        .iter()
                        .map(|v| (v.name.clone(), v.fields.iter().map(|f| f.ty.as_ref().map(lower)).collect()))
                        .collect();
                    self.enums.insert(e.name.clone(), EnumInfo { type_params: names(&e.type_params), variants });
                }
                StmtKind::Impl(im) => {
                    let ms: Vec<MethodSig> = im.methods.iter().map(|m| method_sig(&m.name, &m.params, &m.return_type)).collect();
                    self.impls.entry(im.type_name.clone()).or_default().extend(ms);
                    for m in &im.methods {
                        self.walk(&m.body);
                    }
                }
                StmtKind::FnDecl(f) => {
                    self.add_fn(fn_sig(f));
                    self.walk(&f.body);
                }
                StmtKind::Pipeline(p) => {
                    self.bound_names.insert(p.name.clone());
                    self.walk(&p.body);
                }
                StmtKind::Unsupported { name: Some(n), .. } => {
                    self.bound_names.insert(n.clone());
                }
                _ => {}
            }
        }
    }
}
