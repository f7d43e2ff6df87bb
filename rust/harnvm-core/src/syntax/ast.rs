//! The Harn abstract syntax tree, produced by `parser` and consumed by `compiler`.
//!
//! Design notes (the compiler relies on these):
//! * Statements and expressions are separate node types, each carrying the
//!   `Pos` (line, column) of its first token — for binary operators, the
//!   operator's position. Children are boxed where the type is recursive.
//! * A block is a `Vec<Stmt>`; its value is the value of its last statement if
//!   that is an expression statement, else `nil` (so an empty block is `nil`).
//! * Every construct that can produce a value — `if`, `match`, `try`,
//!   `parallel`, `spawn`, `deadline`, `retry` — is an *expression* kind. When
//!   used as a statement it appears as `StmtKind::Expr(..)`. Constructs that
//!   never produce a useful value (`while`, `for`, `select`, `mutex`, `guard`,
//!   declarations, ...) are statement kinds.
//! * Sugar that the parser resolves: `[T]` types become `list<T>`; `x |> f(_)`
//!   becomes `x |> { __pipe -> f(__pipe) }`; `a not in b` is `BinOp::NotIn`;
//!   `Name.Variant(..)` becomes `EnumConstruct` only when `Name` is an enum
//!   declared somewhere in the file or the builtin `Result` (otherwise it stays
//!   a method call / property access).
//! * `_` as a binding name is represented as `None` in patterns that allow
//!   discarding (`Pattern::Wildcard`, `Option<String>` bindings).

use crate::syntax::pos::Pos;

/// The parser rejects programs whose nesting — blocks, parentheses *and*
/// operator/method chains — would exceed this many levels (error
/// `Expression nesting too deep at L:C`). Trees it produces are at most about
/// twice this deep, so recursive tree walkers need a bounded stack.
pub const MAX_AST_HEIGHT: u32 = 512;

/// A whole source file: its top-level items in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub items: Vec<Stmt>,
}

/// A sequence of statements; value = last expression statement, else nil.
pub type Block = Vec<Stmt>;

// ---------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// `let PAT [: T] = value` (immutable).
    Let {
        pattern: Pattern,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    /// `var PAT [: T] = value` (mutable).
    Var {
        pattern: Pattern,
        ty: Option<TypeExpr>,
        value: Expr,
    },
    /// `target = value` or `target op= value` (`op` is Add/Sub/Mul/Div/Mod).
    /// `target` is always `Ident`, `Property` or `Index` (the parser checks).
    Assign {
        target: Expr,
        op: Option<BinOp>,
        value: Expr,
    },
    /// An expression statement. The block's value if it is the last statement.
    Expr(Expr),
    /// `while cond { body }`.
    While {
        cond: Expr,
        body: Block,
    },
    /// `for PAT in iterable { body }`.
    For {
        pattern: Pattern,
        iterable: Expr,
        body: Block,
    },
    Break,
    Continue,
    /// `return [e]`.
    Return(Option<Expr>),
    /// `throw e`.
    Throw(Expr),
    /// `[pub] [gen] fn name<T>(params) [-> T] [where ...] { body }`.
    FnDecl(Box<FnDecl>),
    Struct(Box<StructDecl>),
    Enum(Box<EnumDecl>),
    Impl(Box<ImplDecl>),
    Interface(Box<InterfaceDecl>),
    TypeAlias(Box<TypeAliasDecl>),
    Pipeline(Box<PipelineDecl>),
    Import(ImportDecl),
    /// `guard cond else { else_body }`.
    Guard {
        cond: Expr,
        else_body: Block,
    },
    /// `require cond [, message]`.
    Require {
        cond: Expr,
        message: Option<Expr>,
    },
    /// `defer { body }`.
    Defer(Block),
    /// `mutex { body }`.
    Mutex(Block),
    /// `yield [e]` (generator functions).
    Yield(Option<Expr>),
    /// `emit e` (`gen fn` streams).
    Emit(Expr),
    /// `select { v from ch { } ... [timeout D { }] [default { }] }`.
    Select(Box<SelectStmt>),
    /// A declaration the core does not implement (`tool`, `skill`,
    /// `eval_pack`, `override`). Parsed fully so files load; the compiler
    /// decides whether to ignore or reject it.
    Unsupported {
        keyword: String,
        name: Option<String>,
        attributes: Vec<Attribute>,
    },
}

/// `@name` or `@name(arg, key: value, ...)` before a declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub args: Vec<AttrArg>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttrArg {
    /// `Some` for `key: value` arguments.
    pub name: Option<String>,
    pub value: Expr,
}

/// Generic parameter `T`, `in T`, `out T`, optionally bounded `T: Iface`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeParam {
    pub name: String,
    pub variance: Variance,
    pub bound: Option<TypeExpr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Variance {
    #[default]
    Invariant,
    /// `in T` (contravariant).
    In,
    /// `out T` (covariant).
    Out,
}

/// One `where T: Bound` constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct WhereClause {
    pub param: String,
    pub bound: TypeExpr,
}

/// A function or closure parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub ty: Option<TypeExpr>,
    /// Evaluated at call time when the argument is missing.
    pub default: Option<Expr>,
    /// `...name`: collects the remaining arguments into a list (always last).
    pub rest: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FnDecl {
    pub name: String,
    pub type_params: Vec<TypeParam>,
    pub params: Vec<Param>,
    pub return_type: Option<TypeExpr>,
    pub where_clauses: Vec<WhereClause>,
    pub body: Block,
    pub is_pub: bool,
    /// The body contains `yield` (outside nested fns/closures).
    pub is_generator: bool,
    /// Declared with `gen fn` (a stream; uses `emit`).
    pub is_stream: bool,
    pub attributes: Vec<Attribute>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StructDecl {
    pub name: String,
    pub type_params: Vec<TypeParam>,
    pub fields: Vec<StructField>,
    pub is_pub: bool,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StructField {
    pub name: String,
    /// `name?: T`
    pub optional: bool,
    pub ty: Option<TypeExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnumDecl {
    pub name: String,
    pub type_params: Vec<TypeParam>,
    pub variants: Vec<EnumVariant>,
    pub is_pub: bool,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnumVariant {
    pub name: String,
    /// Positional fields; empty for a unit variant.
    pub fields: Vec<EnumField>,
}

/// `Circle(r)` has `name: Some("r"), ty: None`; `Rect(w: float)` has both;
/// a bare type like `Some(int)` cannot be told apart from a name and is
/// recorded as `name: Some("int")`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumField {
    pub name: Option<String>,
    pub ty: Option<TypeExpr>,
}

/// `impl Type { fn ... }` (or `impl Iface for Type { ... }`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImplDecl {
    pub type_name: String,
    /// The interface in `impl Iface for Type`, if that form was used.
    pub interface: Option<String>,
    pub methods: Vec<FnDecl>,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceDecl {
    pub name: String,
    pub type_params: Vec<TypeParam>,
    pub methods: Vec<InterfaceMethod>,
    pub assoc_types: Vec<AssocType>,
    pub is_pub: bool,
    pub attributes: Vec<Attribute>,
}

/// A method signature inside an `interface`.
#[derive(Debug, Clone, PartialEq)]
pub struct InterfaceMethod {
    pub name: String,
    pub type_params: Vec<TypeParam>,
    pub params: Vec<Param>,
    pub return_type: Option<TypeExpr>,
}

/// `type Item [= Default]` inside an `interface`.
#[derive(Debug, Clone, PartialEq)]
pub struct AssocType {
    pub name: String,
    pub default: Option<TypeExpr>,
}

/// `type Name<T> = TypeExpr`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeAliasDecl {
    pub name: String,
    pub type_params: Vec<TypeParam>,
    pub ty: TypeExpr,
    pub is_pub: bool,
    pub attributes: Vec<Attribute>,
}

/// `[pub] pipeline name(p1, p2) [-> T] [extends parent] { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineDecl {
    pub name: String,
    pub params: Vec<String>,
    pub return_type: Option<TypeExpr>,
    pub extends: Option<String>,
    pub body: Block,
    pub is_pub: bool,
    pub attributes: Vec<Attribute>,
}

/// `[pub] import "path"` (names = None) or `[pub] import { a, b } from "path"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportDecl {
    pub path: String,
    pub names: Option<Vec<String>>,
    pub is_pub: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectStmt {
    pub cases: Vec<SelectCase>,
    /// `timeout DURATION { body }`.
    pub timeout: Option<(Expr, Block)>,
    /// `default { body }`.
    pub default: Option<Block>,
}

/// `binding from channel { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectCase {
    pub binding: String,
    pub channel: Expr,
    pub body: Block,
    pub pos: Pos,
}

/// Binding patterns of `let`, `var` and `for`. Flat (no nesting).
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// A plain name.
    Ident(String),
    /// `_`: evaluate and discard, bind nothing.
    Wildcard,
    /// `{a, b: bee = 2, ...rest}`.
    Dict { entries: Vec<DictPatEntry>, rest: Option<String> },
    /// `[x, y = 0, ...tail]`.
    List { elements: Vec<ListPatElem>, rest: Option<String> },
    /// `(a, b)`: destructures a Pair. `None` = `_`.
    Pair(Option<String>, Option<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DictPatEntry {
    /// The dict key looked up.
    pub key: String,
    /// The variable bound (`key` itself unless renamed with `key: name`); `None` for `key: _`.
    pub binding: Option<String>,
    /// Used when the extracted value is nil.
    pub default: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListPatElem {
    /// `None` for `_`.
    pub binding: Option<String>,
    pub default: Option<Expr>,
}

// ---------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// `&&` (short-circuit, result is a bool).
    And,
    /// `||` (short-circuit, result is a bool).
    Or,
    /// `??` (right side only evaluated when left is nil).
    NullCoalesce,
    In,
    NotIn,
    /// `|>`
    Pipe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-e`
    Neg,
    /// `!e`
    Not,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    /// A duration literal, in milliseconds.
    Duration(i64),
    Str(String),
    /// A string with at least one `${...}` segment.
    InterpolatedStr(Vec<StrSegment>),
    Bool(bool),
    Nil,
    Ident(String),
    List(Vec<ListElem>),
    Dict(Vec<DictEntry>),
    /// `{ params -> body }` or `fn(params) { body }`.
    Closure(Box<Closure>),
    /// `name(args)` / `name<T>(args)`. Only an identifier can be called directly.
    Call {
        name: String,
        type_args: Vec<TypeExpr>,
        args: Vec<Arg>,
    },
    /// `object.name(args)` / `object?.name(args)`.
    MethodCall {
        object: Box<Expr>,
        name: String,
        args: Vec<Arg>,
        optional: bool,
    },
    /// `object.name` / `object?.name`.
    Property {
        object: Box<Expr>,
        name: String,
        optional: bool,
    },
    /// `object[index]` / `object?[index]`.
    Index {
        object: Box<Expr>,
        index: Box<Expr>,
        optional: bool,
    },
    /// `object[start:end]` with either bound optional (`optional` for `?[a:b]`).
    Slice {
        object: Box<Expr>,
        start: Option<Box<Expr>>,
        end: Option<Box<Expr>>,
        optional: bool,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    /// `cond ? then : else_`.
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        else_: Box<Expr>,
    },
    /// `start to end` (inclusive) / `start to end exclusive`.
    Range {
        start: Box<Expr>,
        end: Box<Expr>,
        inclusive: bool,
    },
    /// Postfix `e?` (unwrap `Result.Ok`, early-return `Result.Err`).
    TryOp(Box<Expr>),
    /// Prefix `try* e`.
    TryStar(Box<Expr>),
    /// `try { body } [catch ...] [finally { }]`. With neither catch nor
    /// finally this is the Result-producing bare `try { }`.
    TryCatch {
        body: Block,
        catch: Option<Box<CatchClause>>,
        finally: Option<Block>,
    },
    /// `if cond { then } [else ...]`.
    If {
        cond: Box<Expr>,
        then: Block,
        else_: Option<ElseBranch>,
    },
    Match {
        subject: Box<Expr>,
        arms: Vec<MatchArm>,
    },
    /// `Enum.Variant` / `Enum.Variant(args)` for a known enum or `Result`.
    EnumConstruct {
        enum_name: String,
        variant: String,
        args: Vec<Arg>,
    },
    /// `Name { field: value, ... }`.
    StructConstruct {
        name: String,
        fields: Vec<(String, Expr)>,
    },
    /// `spawn { body }`.
    Spawn(Block),
    /// `parallel ...` in its three forms; see `ParallelKind`.
    Parallel(Box<Parallel>),
    /// `deadline duration { body }`.
    Deadline {
        duration: Box<Expr>,
        body: Block,
    },
    /// `retry count { body }`.
    Retry {
        count: Box<Expr>,
        body: Block,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum StrSegment {
    Lit(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ListElem {
    Item(Expr),
    /// `...expr` (must evaluate to a list).
    Spread(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DictEntry {
    Pair {
        key: DictKey,
        value: Expr,
    },
    /// `...expr` (must evaluate to a dict; later entries win).
    Spread(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DictKey {
    /// `name: v` or `"name": v` — the literal key text.
    Name(String),
    /// `[expr]: v` — key is `display(value)`.
    Computed(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Positional(Expr),
    /// `...expr` (must evaluate to a list).
    Spread(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    pub params: Vec<Param>,
    pub body: Block,
    /// The body contains `yield` (outside nested fns/closures).
    pub is_generator: bool,
    /// Written as `fn(params) { }` rather than `{ params -> }`.
    pub fn_syntax: bool,
}

/// `catch [(name[: Type])] { body }` or `catch name { body }`.
#[derive(Debug, Clone, PartialEq)]
pub struct CatchClause {
    pub binding: Option<String>,
    /// For typed catches `catch (e: EnumName)`.
    pub type_name: Option<String>,
    pub body: Block,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ElseBranch {
    /// `else { ... }`
    Block(Block),
    /// `else if ...` — always an `ExprKind::If`.
    If(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MatchArm {
    /// Several for an or-pattern `p1 | p2`.
    pub patterns: Vec<MatchPattern>,
    pub guard: Option<Expr>,
    pub body: Block,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MatchPattern {
    /// `_`
    Wildcard,
    /// A bare identifier: always matches and binds.
    Binding(String),
    /// A literal or any other expression, compared with `==`.
    Value(Expr),
    /// `Enum.Variant` (bindings None) or `Enum.Variant(a, _, c)`
    /// (`None` entries are `_`).
    EnumVariant { enum_name: String, variant: String, bindings: Option<Vec<Option<String>>> },
    /// `{key: sub, ...}`; sub-patterns are `Binding`, `Wildcard` or `Value`.
    Dict(Vec<(String, MatchPattern)>),
    /// `[p1, p2, ...]` prefix match; elements are `Binding`, `Wildcard` or `Value`.
    List(Vec<MatchPattern>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParallelKind {
    /// `parallel N { i -> }` — body run N times with the index.
    Count,
    /// `parallel each LIST { x -> }` — list of results in input order.
    Each,
    /// `parallel settle LIST { x -> }` — `{results, succeeded, failed}`.
    Settle,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Parallel {
    pub kind: ParallelKind,
    /// The count (Count) or the list (Each / Settle).
    pub expr: Expr,
    /// `with { max_concurrent: K }`.
    pub options: Option<Expr>,
    /// The body's `x ->` parameter, if written.
    pub param: Option<String>,
    pub body: Block,
    /// `parallel each ... as stream`.
    pub as_stream: bool,
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// Type expressions (mostly used by the static checker and schema lowering).
#[derive(Debug, Clone, PartialEq)]
pub enum TypeExpr {
    /// `int`, `nil`, `any`, `Point`, `list<int>`, `dict<string, int>`,
    /// `Result<T, E>`, ... (`[T]` is normalized to `list<T>`).
    Named {
        name: String,
        args: Vec<TypeExpr>,
    },
    /// `A | B | C`.
    Union(Vec<TypeExpr>),
    /// `"pass"`
    StrLiteral(String),
    /// `0`, `-1`
    IntLiteral(i64),
    FloatLiteral(f64),
    BoolLiteral(bool),
    /// `{name: string, port?: int}` in declaration order.
    Shape(Vec<ShapeField>),
    /// `fn(int, string) -> bool`.
    Fn {
        params: Vec<TypeExpr>,
        ret: Option<Box<TypeExpr>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShapeField {
    pub name: String,
    pub optional: bool,
    pub ty: TypeExpr,
}

impl Expr {
    pub fn new(kind: ExprKind, pos: Pos) -> Expr {
        Expr { kind, pos }
    }
}

impl Stmt {
    pub fn new(kind: StmtKind, pos: Pos) -> Stmt {
        Stmt { kind, pos }
    }
}
