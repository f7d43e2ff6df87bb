//! Parser: tokens → `ast::Program` (language reference §2–§10).
//!
//! A hand-written recursive-descent parser that mirrors the reference
//! implementation's grammar, newline rules and error texts:
//! * statements are separated by newlines or `;`; two statements on one line
//!   without a separator is an error;
//! * binary operators continue an expression across a newline when they end
//!   a line (all but `to`) or start the next one (all but `-`, `in`, `not in`,
//!   `to`, `?`), and `.`/`?.` chains continue on the next line;
//! * the first error aborts parsing with Harn's message
//!   (`Expected X, got Y at L:C` / `Unexpected end of file, expected X`).
//!
//! Robustness: native recursion is bounded (`MAX_NESTING`), and so is the
//! height of the produced AST (`ast::MAX_AST_HEIGHT`, operator chains
//! included), so no input can overflow the stack while parsing or dropping
//! the tree, and recursive walkers (the compiler) get a known depth bound.
//! Long `else if` chains and prefix operators are parsed iteratively.

use std::collections::HashSet;

use crate::runtime::error::{Phase, VmError, VmResult};
use crate::syntax::ast::*;
use crate::syntax::lexer::{self, Kw, Segment, Tok, Token};
use crate::syntax::pos::Pos;

/// Maximum nesting of parser recursion (parentheses, blocks, closures, ...).
/// Far beyond real programs (Harn itself stops at 64 brackets); sized so the
/// deepest path fits in ~1.5 MiB of stack even in unoptimized builds, i.e.
/// on any thread with Rust's default 2 MiB stack.
const MAX_NESTING: u32 = 128;

/// Parses a Harn source file. `file` is only used by callers for messages.
pub fn parse(source: &str, _file: &str) -> VmResult<Program> {
    let tokens = lexer::tokenize(source)?;
    let mut parser = Parser::new(tokens);
    parser.program()
}

/// Parses a single expression (used for tests and tooling).
pub fn parse_expression(source: &str) -> VmResult<Expr> {
    let tokens = lexer::tokenize(source)?;
    let mut parser = Parser::new(tokens);
    parser.skip_newlines();
    let e = parser.expr()?;
    parser.skip_newlines();
    if !parser.at_eof() {
        return Err(parser.error("end of input"));
    }
    Ok(e)
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Declared enum names (whole-file pre-scan) plus `Result`.
    enums: HashSet<String>,
    /// Declared struct names (for the `Name {}` literal lookahead).
    structs: HashSet<String>,
    /// Current native recursion depth.
    nesting: u32,
    /// Height accumulator: the height of the subtree most recently completed
    /// at the current level (see `begin`/`end`/`grow`).
    height: u32,
    /// One entry per enclosing function body: whether it contains `yield`.
    yields: Vec<bool>,
    /// Set while trying `f<T>(...)` type arguments that may turn out to be a comparison.
    speculating: bool,
}

fn syntax(msg: String, pos: Pos) -> VmError {
    VmError::syntax(Phase::Parse, msg, pos.line, pos.column)
}

fn too_deep(pos: Pos) -> VmError {
    syntax(format!("Expression nesting too deep at {}:{}", pos.line, pos.column), pos)
}

/// Whether a token can start an expression (decides `e ? a : b` vs `e?`).
fn starts_ternary_branch(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Ident(_)
            | Tok::Int(_)
            | Tok::Float(_)
            | Tok::Duration(_)
            | Tok::Str(_)
            | Tok::RawStr(_)
            | Tok::InterpStr(_)
            | Tok::Kw(Kw::True | Kw::False | Kw::Nil | Kw::Fn)
            | Tok::LParen
            | Tok::LBrace
            | Tok::Bang
            | Tok::Minus
    )
}

/// Binary operators that may start a continuation line.
fn continues_line(t: &Tok) -> bool {
    matches!(
        t,
        Tok::PipeGt
            | Tok::OrOr
            | Tok::AndAnd
            | Tok::EqEq
            | Tok::NotEq
            | Tok::Lt
            | Tok::Gt
            | Tok::LtEq
            | Tok::GtEq
            | Tok::QuestionQuestion
            | Tok::Plus
            | Tok::Star
            | Tok::Slash
            | Tok::Percent
            | Tok::StarStar
    )
}

/// Precedence levels (higher binds tighter). `|>`, `to` and `?:` are handled
/// specially by `Parser::binary`.
const PIPE_PREC: u8 = 1;
const RANGE_PREC: u8 = 2;
const TERNARY_PREC: u8 = 3;
const OR_PREC: u8 = 4;
const CMP_PREC: u8 = 7;
const POW_PREC: u8 = 11;

fn binop_of(t: &Tok) -> Option<(BinOp, u8)> {
    Some(match t {
        Tok::OrOr => (BinOp::Or, OR_PREC),
        Tok::AndAnd => (BinOp::And, 5),
        Tok::EqEq => (BinOp::Eq, 6),
        Tok::NotEq => (BinOp::Ne, 6),
        Tok::Lt => (BinOp::Lt, CMP_PREC),
        Tok::Gt => (BinOp::Gt, CMP_PREC),
        Tok::LtEq => (BinOp::Le, CMP_PREC),
        Tok::GtEq => (BinOp::Ge, CMP_PREC),
        Tok::Kw(Kw::In) => (BinOp::In, CMP_PREC),
        Tok::Plus => (BinOp::Add, 8),
        Tok::Minus => (BinOp::Sub, 8),
        Tok::QuestionQuestion => (BinOp::NullCoalesce, 9),
        Tok::Star => (BinOp::Mul, 10),
        Tok::Slash => (BinOp::Div, 10),
        Tok::Percent => (BinOp::Mod, 10),
        Tok::StarStar => (BinOp::Pow, POW_PREC),
        _ => return None,
    })
}

/// A postfix operator as seen by `Parser::postfix`.
enum Postfix {
    Member,
    Index,
    OptionalIndex,
    Call,
    /// `f<T>(...)`, with the already-parsed type arguments.
    TypeArgsCall(Vec<TypeExpr>),
    Struct,
    Try,
}

/// An infix operator as seen by `Parser::binary`.
#[derive(Clone, Copy)]
enum Op {
    Bin(BinOp),
    Range,
    Ternary,
}

impl Parser {
    fn new(toks: Vec<Token>) -> Parser {
        let mut enums = HashSet::new();
        let mut structs = HashSet::new();
        enums.insert("Result".to_string());
        // Pre-scan for declarations anywhere in the file (Harn does the same), so
        // `Name.Variant` and `Name {}` are recognized even before the declaration.
        for w in toks.windows(2) {
            match (&w[0].tok, &w[1].tok) {
                (Tok::Kw(Kw::Enum), Tok::Ident(name)) => {
                    enums.insert(name.clone());
                }
                (Tok::Kw(Kw::Struct), Tok::Ident(name)) => {
                    structs.insert(name.clone());
                }
                _ => {}
            }
        }
        Parser { toks, pos: 0, enums, structs, nesting: 0, height: 0, yields: Vec::new(), speculating: false }
    }

    // ------------------------------------------------------------------
    // Token helpers
    // ------------------------------------------------------------------

    fn tok(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek(&self, n: usize) -> &Tok {
        self.toks.get(self.pos + n).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn here(&self) -> Pos {
        let t = &self.toks[self.pos];
        Pos { line: t.line, column: t.column }
    }

    fn advance(&mut self) {
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
    }

    fn at(&self, t: &Tok) -> bool {
        self.tok() == t
    }

    fn at_kw(&self, kw: Kw) -> bool {
        *self.tok() == Tok::Kw(kw)
    }

    fn at_ident(&self, name: &str) -> bool {
        matches!(self.tok(), Tok::Ident(s) if s == name)
    }

    fn at_eof(&self) -> bool {
        self.at(&Tok::Eof)
    }

    fn skip_newlines(&mut self) {
        while self.at(&Tok::Newline) {
            self.advance();
        }
    }

    /// Index of the first non-newline token at or after the current one.
    fn next_significant(&self) -> usize {
        let mut i = self.pos;
        while self.toks[i].tok == Tok::Newline && i + 1 < self.toks.len() {
            i += 1;
        }
        i
    }

    /// If the next non-newline token satisfies `pred`, moves to it.
    fn skip_newlines_if(&mut self, pred: impl Fn(&Tok) -> bool) -> bool {
        let i = self.next_significant();
        if pred(&self.toks[i].tok) {
            self.pos = i;
            true
        } else {
            false
        }
    }

    fn error(&self, expected: &str) -> VmError {
        let pos = self.here();
        match self.tok() {
            Tok::Eof => syntax(format!("Unexpected end of file, expected {expected}"), pos),
            t => syntax(format!("Expected {expected}, got {t} at {}:{}", pos.line, pos.column), pos),
        }
    }

    /// Skips newlines, then consumes `t` or fails with `Expected {expected}`.
    fn expect(&mut self, t: Tok, expected: &str) -> VmResult<Pos> {
        self.skip_newlines();
        if *self.tok() != t {
            return Err(self.error(expected));
        }
        let pos = self.here();
        self.advance();
        Ok(pos)
    }

    fn expect_kw(&mut self, kw: Kw) -> VmResult<Pos> {
        self.expect(Tok::Kw(kw), kw.as_str())
    }

    /// Skips newlines and consumes an identifier.
    fn ident(&mut self, expected: &str) -> VmResult<String> {
        self.skip_newlines();
        match self.tok() {
            Tok::Ident(name) => {
                let name = name.clone();
                self.advance();
                Ok(name)
            }
            Tok::Kw(kw) => {
                let pos = self.here();
                Err(syntax(
                    format!("Expected {expected}, got '{}' (reserved keyword) at {}:{}", kw.as_str(), pos.line, pos.column),
                    pos,
                ))
            }
            _ => Err(self.error(expected)),
        }
    }

    /// An identifier or a keyword usable as a member name / dict key.
    fn member_name(&mut self, expected: &str) -> VmResult<String> {
        self.skip_newlines();
        let name = match self.tok() {
            Tok::Ident(name) => name.clone(),
            Tok::Kw(kw) if kw.is_member_name() => kw.as_str().to_string(),
            _ => return Err(self.error(expected)),
        };
        self.advance();
        Ok(name)
    }

    /// Whether the next three tokens are `...` (spread / rest).
    fn at_ellipsis(&self) -> bool {
        self.at(&Tok::Dot) && *self.peek(1) == Tok::Dot && *self.peek(2) == Tok::Dot
    }

    fn skip_ellipsis(&mut self) {
        self.advance();
        self.advance();
        self.advance();
    }

    /// Skips an optional `,` (and the newlines around it) between list items.
    fn skip_item_separator(&mut self) {
        self.skip_newlines();
        if self.at(&Tok::Comma) {
            self.advance();
            self.skip_newlines();
        }
    }

    // ------------------------------------------------------------------
    // Depth accounting
    // ------------------------------------------------------------------

    /// Starts measuring the height of a new subtree; returns the outer value.
    fn begin(&mut self) -> u32 {
        std::mem::take(&mut self.height)
    }

    /// Folds the measured subtree back into the outer measurement.
    fn end(&mut self, saved: u32) {
        self.height = self.height.max(saved);
    }

    /// Records one more node level on top of the measured subtree.
    fn grow(&mut self, pos: Pos) -> VmResult<()> {
        self.height += 1;
        if self.height > MAX_AST_HEIGHT {
            return Err(too_deep(pos));
        }
        Ok(())
    }

    /// Runs `f` one recursion level deeper (bounded), counting one AST level.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Parser) -> VmResult<T>) -> VmResult<T> {
        let pos = self.here();
        if self.nesting >= MAX_NESTING {
            return Err(too_deep(pos));
        }
        self.nesting += 1;
        let saved = self.begin();
        // Small thread stacks: grow the native stack on the heap when it runs low.
        let result = crate::runtime::deep::grow(|| f(self));
        self.nesting -= 1;
        // The inner error (if any) is the one to report.
        let value = result?;
        self.grow(pos)?;
        self.end(saved);
        Ok(value)
    }

    // ------------------------------------------------------------------
    // Program, blocks, separators
    // ------------------------------------------------------------------

    fn program(&mut self) -> VmResult<Program> {
        let mut items = Vec::new();
        self.skip_newlines();
        while !self.at_eof() {
            // Harn skips a stray `}` at top level.
            if self.at(&Tok::RBrace) {
                self.advance();
                self.skip_newlines();
                continue;
            }
            items.push(self.statement()?);
            self.separator("top-level item", false)?;
        }
        Ok(Program { items })
    }

    /// Consumes a statement separator (`;` and/or newlines) after a statement.
    fn separator(&mut self, what: &str, in_block: bool) -> VmResult<()> {
        let start = self.pos;
        if self.at(&Tok::Semicolon) {
            self.advance();
        }
        self.skip_newlines();
        if self.pos != start || self.at_eof() || (in_block && self.at(&Tok::RBrace)) {
            return Ok(());
        }
        // A token on a later line (after a multi-line construct) is fine.
        let prev_line = self.toks[..self.pos].iter().rev().find(|t| t.tok != Tok::Newline).map_or(0, |t| t.line);
        if self.toks[self.pos].line != prev_line {
            return Ok(());
        }
        Err(self.error(&format!("{what} separator (`;` or newline)")))
    }

    /// `{ statements }` — consumes both braces.
    fn braced_block(&mut self) -> VmResult<Block> {
        self.expect(Tok::LBrace, "{")?;
        self.block()
    }

    /// Statements up to and including the closing `}` (the `{` is consumed).
    fn block(&mut self) -> VmResult<Block> {
        let mut stmts = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            stmts.push(self.statement()?);
            self.separator("statement", true)?;
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(stmts)
    }

    /// A function body: a block with its own `yield` tracking.
    fn fn_body(&mut self) -> VmResult<(Block, bool)> {
        self.yields.push(false);
        let body = self.block();
        let is_generator = self.yields.pop().unwrap_or(false);
        Ok((body?, is_generator))
    }

    // ------------------------------------------------------------------
    // Statements
    // ------------------------------------------------------------------

    fn statement(&mut self) -> VmResult<Stmt> {
        self.skip_newlines();
        self.nested(|p| p.statement_inner())
    }

    fn statement_inner(&mut self) -> VmResult<Stmt> {
        let pos = self.here();
        if self.at(&Tok::At) {
            return self.attributed_decl();
        }
        let kind = self.statement_kind()?;
        Ok(Stmt::new(kind, pos))
    }

    /// Dispatches on the first token. Every arm is a plain call so this frame
    /// stays small: it is on the recursion path of every nested block.
    fn statement_kind(&mut self) -> VmResult<StmtKind> {
        let next = self.peek(1);
        match self.tok() {
            Tok::Kw(Kw::Let | Kw::Var) => self.let_var(),
            // Control forms at statement position are parsed on their own
            // (no trailing binary operators), like Harn does.
            Tok::Kw(Kw::If) => self.if_expr().map(StmtKind::Expr),
            Tok::Kw(Kw::Match) => self.match_expr().map(StmtKind::Expr),
            Tok::Kw(Kw::Retry) => self.retry_expr().map(StmtKind::Expr),
            Tok::Kw(Kw::Parallel) => self.parallel_expr().map(StmtKind::Expr),
            Tok::Kw(Kw::Deadline) => self.deadline_expr().map(StmtKind::Expr),
            Tok::Kw(Kw::Try) if *next != Tok::Star => self.try_expr().map(StmtKind::Expr),
            Tok::Kw(Kw::For) => self.for_stmt(),
            Tok::Kw(Kw::While) => self.while_stmt(),
            Tok::Kw(Kw::Return | Kw::Yield) => self.return_or_yield(),
            Tok::Kw(Kw::Throw | Kw::Emit) => self.throw_or_emit(),
            Tok::Kw(Kw::Break) => {
                self.advance();
                Ok(StmtKind::Break)
            }
            Tok::Kw(Kw::Continue) => {
                self.advance();
                Ok(StmtKind::Continue)
            }
            Tok::Kw(Kw::Guard) => self.guard_stmt(),
            Tok::Kw(Kw::Require) => self.require_stmt(),
            Tok::Kw(Kw::Defer | Kw::Mutex) => self.defer_or_mutex(),
            Tok::Kw(Kw::Select) => self.select_stmt(),
            Tok::Kw(Kw::Fn) if *next != Tok::LParen => self.fn_decl_stmt(false, false),
            Tok::Ident(g) if g == "gen" && *next == Tok::Kw(Kw::Fn) => self.fn_decl_stmt(false, true),
            Tok::Kw(Kw::Pub) => {
                self.advance();
                self.pub_decl()
            }
            Tok::Kw(Kw::Import) => self.import(false),
            Tok::Kw(Kw::Pipeline) => self.pipeline(false),
            Tok::Kw(Kw::Type) => self.type_alias(false),
            Tok::Kw(Kw::Enum) => self.enum_decl(false),
            Tok::Kw(Kw::Struct) => self.struct_decl(false),
            Tok::Kw(Kw::Interface) => self.interface_decl(false),
            Tok::Kw(Kw::Impl) => self.impl_decl(),
            Tok::Kw(Kw::Tool) => self.tool_decl(),
            Tok::Kw(Kw::Skill) => self.skill_decl(),
            Tok::Kw(Kw::EvalPack) => self.eval_pack_decl(),
            Tok::Kw(Kw::Override) => self.override_decl(),
            _ => self.expr_statement(),
        }
    }

    fn fn_decl_stmt(&mut self, is_pub: bool, is_stream: bool) -> VmResult<StmtKind> {
        Ok(StmtKind::FnDecl(Box::new(self.fn_decl(is_pub, is_stream)?)))
    }

    fn while_stmt(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let cond = self.expr()?;
        let body = self.braced_block()?;
        Ok(StmtKind::While { cond, body })
    }

    fn return_or_yield(&mut self) -> VmResult<StmtKind> {
        let is_yield = self.at_kw(Kw::Yield);
        self.advance();
        if is_yield {
            if let Some(seen) = self.yields.last_mut() {
                *seen = true;
            }
        }
        let value = self.optional_value()?;
        Ok(if is_yield { StmtKind::Yield(value) } else { StmtKind::Return(value) })
    }

    fn throw_or_emit(&mut self) -> VmResult<StmtKind> {
        let is_emit = self.at_kw(Kw::Emit);
        self.advance();
        let value = self.expr()?;
        Ok(if is_emit { StmtKind::Emit(value) } else { StmtKind::Throw(value) })
    }

    fn guard_stmt(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let cond = self.expr()?;
        self.expect_kw(Kw::Else)?;
        let else_body = self.braced_block()?;
        Ok(StmtKind::Guard { cond, else_body })
    }

    fn require_stmt(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let cond = self.expr()?;
        let message = if self.at(&Tok::Comma) {
            self.advance();
            Some(self.expr()?)
        } else {
            None
        };
        Ok(StmtKind::Require { cond, message })
    }

    fn defer_or_mutex(&mut self) -> VmResult<StmtKind> {
        let is_defer = self.at_kw(Kw::Defer);
        self.advance();
        let body = self.braced_block()?;
        Ok(if is_defer { StmtKind::Defer(body) } else { StmtKind::Mutex(body) })
    }

    /// The optional operand of `return` / `yield`.
    fn optional_value(&mut self) -> VmResult<Option<Expr>> {
        if matches!(self.tok(), Tok::Semicolon | Tok::Newline | Tok::RBrace | Tok::Eof) {
            return Ok(None);
        }
        Ok(Some(self.expr()?))
    }

    /// An expression statement or an assignment.
    fn expr_statement(&mut self) -> VmResult<StmtKind> {
        let target = self.expr()?;
        let assignable = matches!(
            target.kind,
            ExprKind::Ident(_) | ExprKind::Property { optional: false, .. } | ExprKind::Index { optional: false, .. }
        );
        if !assignable {
            return Ok(StmtKind::Expr(target));
        }
        let op = match self.tok() {
            Tok::Assign => None,
            Tok::PlusEq => Some(BinOp::Add),
            Tok::MinusEq => Some(BinOp::Sub),
            Tok::StarEq => Some(BinOp::Mul),
            Tok::SlashEq => Some(BinOp::Div),
            Tok::PercentEq => Some(BinOp::Mod),
            _ => return Ok(StmtKind::Expr(target)),
        };
        self.advance();
        let value = self.expr()?;
        Ok(StmtKind::Assign { target, op, value })
    }

    fn let_var(&mut self) -> VmResult<StmtKind> {
        let mutable = self.at_kw(Kw::Var);
        self.advance();
        let pattern = self.binding_pattern()?;
        let ty = if matches!(pattern, Pattern::Ident(_)) && self.at(&Tok::Colon) {
            self.advance();
            Some(self.type_expr()?)
        } else {
            None
        };
        self.expect(Tok::Assign, "=")?;
        let value = self.expr()?;
        Ok(if mutable { StmtKind::Var { pattern, ty, value } } else { StmtKind::Let { pattern, ty, value } })
    }

    fn for_stmt(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let pattern = self.binding_pattern()?;
        self.expect_kw(Kw::In)?;
        let iterable = self.expr()?;
        let body = self.braced_block()?;
        Ok(StmtKind::For { pattern, iterable, body })
    }

    /// A name or `_` (returned as `None`).
    fn binding_name(&mut self, expected: &str) -> VmResult<Option<String>> {
        let name = self.ident(expected)?;
        Ok(if name == "_" { None } else { Some(name) })
    }

    /// `x`, `_`, `{a, b: c = 1, ...rest}`, `[x, y = 0, ...tail]`, `(a, b)`.
    fn binding_pattern(&mut self) -> VmResult<Pattern> {
        self.skip_newlines();
        match self.tok() {
            Tok::LBrace => {
                self.advance();
                let mut entries = Vec::new();
                let mut rest = None;
                self.skip_newlines();
                while !self.at(&Tok::RBrace) && !self.at_eof() {
                    if self.at_ellipsis() {
                        self.skip_ellipsis();
                        rest = Some(self.ident("rest variable name")?);
                        self.skip_item_separator();
                        break;
                    }
                    let key = self.ident("field name")?;
                    let binding = if self.at(&Tok::Colon) {
                        self.advance();
                        self.binding_name("alias name")?
                    } else {
                        Some(key.clone())
                    };
                    let default = self.pattern_default()?;
                    entries.push(DictPatEntry { key, binding, default });
                    self.skip_item_separator();
                }
                self.expect(Tok::RBrace, "}")?;
                Ok(Pattern::Dict { entries, rest })
            }
            Tok::LBracket => {
                self.advance();
                let mut elements = Vec::new();
                let mut rest = None;
                self.skip_newlines();
                while !self.at(&Tok::RBracket) && !self.at_eof() {
                    if self.at_ellipsis() {
                        self.skip_ellipsis();
                        rest = Some(self.ident("rest variable name")?);
                        self.skip_item_separator();
                        break;
                    }
                    let binding = self.binding_name("element name")?;
                    let default = self.pattern_default()?;
                    elements.push(ListPatElem { binding, default });
                    self.skip_item_separator();
                }
                self.expect(Tok::RBracket, "]")?;
                Ok(Pattern::List { elements, rest })
            }
            Tok::LParen => {
                self.advance();
                let first = self.binding_name("pair pattern element")?;
                self.expect(Tok::Comma, ",")?;
                let second = self.binding_name("pair pattern element")?;
                self.expect(Tok::RParen, ")")?;
                Ok(Pattern::Pair(first, second))
            }
            _ => Ok(match self.binding_name("variable name or destructuring pattern")? {
                Some(name) => Pattern::Ident(name),
                None => Pattern::Wildcard,
            }),
        }
    }

    fn pattern_default(&mut self) -> VmResult<Option<Expr>> {
        if !self.at(&Tok::Assign) {
            return Ok(None);
        }
        self.advance();
        Ok(Some(self.expr()?))
    }

    fn select_stmt(&mut self) -> VmResult<StmtKind> {
        self.advance();
        self.expect(Tok::LBrace, "{")?;
        self.skip_newlines();
        let mut cases = Vec::new();
        let mut timeout = None;
        let mut default = None;
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            // `timeout` and `default` are contextual words here.
            if self.at_ident("timeout") {
                self.advance();
                let duration = self.expr()?;
                let body = self.braced_block()?;
                timeout = Some((duration, body));
            } else if self.at_ident("default") {
                self.advance();
                default = Some(self.braced_block()?);
            } else {
                let pos = self.here();
                let binding = self.ident("select case variable")?;
                self.expect_kw(Kw::From)?;
                let channel = self.expr()?;
                let body = self.braced_block()?;
                cases.push(SelectCase { binding, channel, body, pos });
            }
            self.skip_newlines();
        }
        self.expect(Tok::RBrace, "}")?;
        if cases.is_empty() && timeout.is_none() && default.is_none() {
            return Err(self.error("at least one select case"));
        }
        if timeout.is_some() && default.is_some() {
            return Err(self.error("select cannot have both timeout and default"));
        }
        Ok(StmtKind::Select(Box::new(SelectStmt { cases, timeout, default })))
    }

    // ------------------------------------------------------------------
    // Declarations
    // ------------------------------------------------------------------

    fn attributed_decl(&mut self) -> VmResult<Stmt> {
        let mut attributes = Vec::new();
        while self.at(&Tok::At) {
            attributes.push(self.attribute()?);
            self.skip_newlines();
        }
        let mut stmt = self.statement_inner()?;
        let slot = match &mut stmt.kind {
            StmtKind::FnDecl(d) => &mut d.attributes,
            StmtKind::Struct(d) => &mut d.attributes,
            StmtKind::Enum(d) => &mut d.attributes,
            StmtKind::Impl(d) => &mut d.attributes,
            StmtKind::Interface(d) => &mut d.attributes,
            StmtKind::TypeAlias(d) => &mut d.attributes,
            StmtKind::Pipeline(d) => &mut d.attributes,
            StmtKind::Unsupported { attributes, keyword, .. } if keyword != "override" => attributes,
            _ => {
                return Err(syntax(
                    format!(
                        "Expected fn/tool/skill/eval_pack/pipeline/struct/enum/type/interface/impl \
                         declaration after `@attr`, got non-declaration statement at {}:{}",
                        stmt.pos.line, stmt.pos.column
                    ),
                    stmt.pos,
                ))
            }
        };
        attributes.append(slot);
        *slot = attributes;
        Ok(stmt)
    }

    /// `@name` or `@name(arg, key: value, ...)`.
    fn attribute(&mut self) -> VmResult<Attribute> {
        let pos = self.expect(Tok::At, "@")?;
        let name = self.ident("attribute name")?;
        let mut args = Vec::new();
        if self.at(&Tok::LParen) {
            self.advance();
            self.skip_newlines();
            while !self.at(&Tok::RParen) && !self.at_eof() {
                let named = matches!(self.tok(), Tok::Ident(_) | Tok::Kw(Kw::Retry)) && *self.peek(1) == Tok::Colon;
                let name = if named {
                    let n = self.member_name("argument name")?;
                    self.advance(); // :
                    Some(n)
                } else {
                    None
                };
                let value = self.expr()?;
                args.push(AttrArg { name, value });
                self.skip_item_separator();
            }
            self.expect(Tok::RParen, ")")?;
        }
        Ok(Attribute { name, args, pos })
    }

    fn pub_decl(&mut self) -> VmResult<StmtKind> {
        match self.tok() {
            Tok::Kw(Kw::Fn) => self.fn_decl_stmt(true, false),
            Tok::Ident(g) if g == "gen" && *self.peek(1) == Tok::Kw(Kw::Fn) => self.fn_decl_stmt(true, true),
            Tok::Kw(Kw::Pipeline) => self.pipeline(true),
            Tok::Kw(Kw::Enum) => self.enum_decl(true),
            Tok::Kw(Kw::Struct) => self.struct_decl(true),
            Tok::Kw(Kw::Import) => self.import(true),
            Tok::Kw(Kw::Type) => self.type_alias(true),
            Tok::Kw(Kw::Interface) => self.interface_decl(true),
            Tok::Kw(Kw::Tool) => self.tool_decl(),
            Tok::Kw(Kw::Skill) => self.skill_decl(),
            Tok::Kw(Kw::EvalPack) => self.eval_pack_decl(),
            _ => Err(self.error("fn, tool, skill, struct, enum, pipeline, or import after pub")),
        }
    }

    /// `[gen] fn name<T>(params) [-> T] [where ...] { body }` (at `gen`/`fn`).
    fn fn_decl(&mut self, is_pub: bool, is_stream: bool) -> VmResult<FnDecl> {
        let pos = self.here();
        if is_stream {
            self.advance(); // gen
        }
        self.expect_kw(Kw::Fn)?;
        let name = self.ident("function name")?;
        let type_params = self.type_params()?;
        self.expect(Tok::LParen, "(")?;
        let params = self.params(&Tok::RParen)?;
        self.expect(Tok::RParen, ")")?;
        let return_type = self.return_type()?;
        let where_clauses = self.where_clauses()?;
        self.expect(Tok::LBrace, "{")?;
        let (body, is_generator) = self.fn_body()?;
        Ok(FnDecl {
            name,
            type_params,
            params,
            return_type,
            where_clauses,
            body,
            is_pub,
            is_generator,
            is_stream,
            attributes: Vec::new(),
            pos,
        })
    }

    fn return_type(&mut self) -> VmResult<Option<TypeExpr>> {
        if !self.at(&Tok::Arrow) {
            return Ok(None);
        }
        self.advance();
        Ok(Some(self.type_expr()?))
    }

    /// Parameters up to (not including) `end`: `a`, `b: int`, `c = 1`, `...rest`.
    fn params(&mut self, end: &Tok) -> VmResult<Vec<Param>> {
        let mut params = Vec::new();
        let mut seen_default = false;
        self.skip_newlines();
        while self.tok() != end && !self.at_eof() {
            let rest = self.at_ellipsis();
            if rest {
                self.skip_ellipsis();
            }
            self.skip_newlines();
            let pos = self.here();
            let name = self.ident("parameter name")?;
            let ty = if self.at(&Tok::Colon) {
                self.advance();
                Some(self.type_expr()?)
            } else {
                None
            };
            let default = if self.at(&Tok::Assign) {
                self.advance();
                seen_default = true;
                Some(self.expr()?)
            } else {
                if seen_default && !rest {
                    return Err(self.error("Required parameter cannot follow a parameter with a default value"));
                }
                None
            };
            self.skip_item_separator();
            if rest && self.tok() != end {
                return Err(self.error("Rest parameter must be the last parameter"));
            }
            params.push(Param { name, ty, default, rest, pos });
        }
        Ok(params)
    }

    /// Optional `<T, in U, out V: Bound>`.
    fn type_params(&mut self) -> VmResult<Vec<TypeParam>> {
        if !self.at(&Tok::Lt) {
            return Ok(Vec::new());
        }
        self.advance();
        let mut params = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::Gt) && !self.at_eof() {
            let variance = if self.at_kw(Kw::In) {
                self.advance();
                Variance::In
            } else if self.at_ident("out") && matches!(self.peek(1), Tok::Ident(_)) {
                self.advance();
                Variance::Out
            } else {
                Variance::Invariant
            };
            let name = self.ident("type parameter name")?;
            let bound = if self.at(&Tok::Colon) {
                self.advance();
                Some(self.type_expr()?)
            } else {
                None
            };
            params.push(TypeParam { name, variance, bound });
            self.skip_item_separator();
        }
        self.expect(Tok::Gt, ">")?;
        Ok(params)
    }

    /// Optional `where T: Bound, U: Bound`.
    fn where_clauses(&mut self) -> VmResult<Vec<WhereClause>> {
        let mut clauses = Vec::new();
        if !self.at_ident("where") {
            return Ok(clauses);
        }
        self.advance();
        loop {
            self.skip_newlines();
            if self.at(&Tok::LBrace) || self.at_eof() {
                break;
            }
            let param = self.ident("type parameter name")?;
            self.expect(Tok::Colon, ":")?;
            let bound = self.type_expr()?;
            clauses.push(WhereClause { param, bound });
            if !self.at(&Tok::Comma) {
                break;
            }
            self.advance();
        }
        Ok(clauses)
    }

    fn struct_decl(&mut self, is_pub: bool) -> VmResult<StmtKind> {
        self.advance();
        let name = self.ident("struct name")?;
        let type_params = self.type_params()?;
        self.expect(Tok::LBrace, "{")?;
        let mut fields = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            let name = self.member_name("field name")?;
            let optional = self.at(&Tok::Question);
            if optional {
                self.advance();
            }
            let ty = if self.at(&Tok::Colon) {
                self.advance();
                Some(self.type_expr()?)
            } else {
                None
            };
            fields.push(StructField { name, optional, ty });
            self.skip_decl_separators();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(StmtKind::Struct(Box::new(StructDecl { name, type_params, fields, is_pub, attributes: Vec::new() })))
    }

    /// Newlines, commas and semicolons between declaration members.
    fn skip_decl_separators(&mut self) {
        while matches!(self.tok(), Tok::Newline | Tok::Comma | Tok::Semicolon) {
            self.advance();
        }
    }

    fn enum_decl(&mut self, is_pub: bool) -> VmResult<StmtKind> {
        self.advance();
        let name = self.ident("enum name")?;
        let type_params = self.type_params()?;
        self.expect(Tok::LBrace, "{")?;
        let mut variants = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            let name = self.ident("variant name")?;
            let mut fields = Vec::new();
            if self.at(&Tok::LParen) {
                self.advance();
                for p in self.params(&Tok::RParen)? {
                    fields.push(EnumField { name: Some(p.name), ty: p.ty });
                }
                self.expect(Tok::RParen, ")")?;
            }
            variants.push(EnumVariant { name, fields });
            self.skip_decl_separators();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(StmtKind::Enum(Box::new(EnumDecl { name, type_params, variants, is_pub, attributes: Vec::new() })))
    }

    fn impl_decl(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let first = self.ident("type name")?;
        let (type_name, interface) = if self.at_kw(Kw::For) {
            self.advance();
            (self.ident("type name")?, Some(first))
        } else {
            (first, None)
        };
        self.expect(Tok::LBrace, "{")?;
        let mut methods = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            let is_pub = self.at_kw(Kw::Pub);
            if is_pub {
                self.advance();
            }
            let is_stream = self.at_ident("gen") && *self.peek(1) == Tok::Kw(Kw::Fn);
            methods.push(self.nested(|p| p.fn_decl(is_pub, is_stream))?);
            self.skip_decl_separators();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(StmtKind::Impl(Box::new(ImplDecl { type_name, interface, methods, attributes: Vec::new() })))
    }

    fn interface_decl(&mut self, is_pub: bool) -> VmResult<StmtKind> {
        self.advance();
        let name = self.ident("interface name")?;
        let type_params = self.type_params()?;
        self.expect(Tok::LBrace, "{")?;
        let mut methods = Vec::new();
        let mut assoc_types = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            if self.at_kw(Kw::Type) {
                self.advance();
                let name = self.ident("associated type name")?;
                let default = if self.at(&Tok::Assign) {
                    self.advance();
                    Some(self.type_expr()?)
                } else {
                    None
                };
                assoc_types.push(AssocType { name, default });
            } else {
                self.expect_kw(Kw::Fn)?;
                let name = self.ident("method name")?;
                let type_params = self.type_params()?;
                self.expect(Tok::LParen, "(")?;
                let params = self.params(&Tok::RParen)?;
                self.expect(Tok::RParen, ")")?;
                let return_type = self.return_type()?;
                methods.push(InterfaceMethod { name, type_params, params, return_type });
            }
            self.skip_decl_separators();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(StmtKind::Interface(Box::new(InterfaceDecl {
            name,
            type_params,
            methods,
            assoc_types,
            is_pub,
            attributes: Vec::new(),
        })))
    }

    fn type_alias(&mut self, is_pub: bool) -> VmResult<StmtKind> {
        self.advance();
        let name = self.ident("type name")?;
        let type_params = self.type_params()?;
        self.expect(Tok::Assign, "=")?;
        let ty = self.type_expr()?;
        Ok(StmtKind::TypeAlias(Box::new(TypeAliasDecl { name, type_params, ty, is_pub, attributes: Vec::new() })))
    }

    fn pipeline(&mut self, is_pub: bool) -> VmResult<StmtKind> {
        self.advance();
        let name = self.ident("pipeline name")?;
        self.expect(Tok::LParen, "(")?;
        let params = self.untyped_params()?;
        self.expect(Tok::RParen, ")")?;
        let return_type = self.return_type()?;
        let extends = if self.at_kw(Kw::Extends) {
            self.advance();
            Some(self.ident("parent pipeline name")?)
        } else {
            None
        };
        self.expect(Tok::LBrace, "{")?;
        let (body, _) = self.fn_body()?;
        Ok(StmtKind::Pipeline(Box::new(PipelineDecl {
            name,
            params,
            return_type,
            extends,
            body,
            is_pub,
            attributes: Vec::new(),
        })))
    }

    /// Bare parameter names (pipelines, overrides); annotations are skipped.
    fn untyped_params(&mut self) -> VmResult<Vec<String>> {
        let mut params = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RParen) && !self.at_eof() {
            params.push(self.ident("parameter name")?);
            if self.at(&Tok::Colon) {
                self.advance();
                self.type_expr()?;
            }
            self.skip_item_separator();
        }
        Ok(params)
    }

    fn import(&mut self, is_pub: bool) -> VmResult<StmtKind> {
        self.advance();
        // Scoped form `import std::a::{x, y}` is sugar for `import {x, y} from "std/a"`.
        if matches!(self.tok(), Tok::Ident(_)) && *self.peek(1) == Tok::Colon && *self.peek(2) == Tok::Colon {
            let mut segments = vec![self.ident("scoped import path segment")?];
            loop {
                self.expect(Tok::Colon, "::")?;
                self.expect(Tok::Colon, "::")?;
                if self.at(&Tok::LBrace) {
                    break;
                }
                segments.push(self.ident("scoped import path segment")?);
            }
            let names = self.import_names()?;
            return Ok(StmtKind::Import(ImportDecl { path: segments.join("/"), names: Some(names), is_pub }));
        }
        let names = if self.at(&Tok::LBrace) {
            let names = self.import_names()?;
            self.expect_kw(Kw::From)?;
            Some(names)
        } else {
            None
        };
        let path = match self.tok() {
            Tok::Str(s) | Tok::RawStr(s) => s.clone(),
            _ => return Err(self.error("import path string")),
        };
        self.advance();
        Ok(StmtKind::Import(ImportDecl { path, names, is_pub }))
    }

    /// `{ a, b }` (commas optional).
    fn import_names(&mut self) -> VmResult<Vec<String>> {
        self.expect(Tok::LBrace, "{")?;
        let mut names = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            names.push(self.ident("import name")?);
            self.skip_item_separator();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(names)
    }

    fn unsupported(keyword: &str, name: Option<String>) -> StmtKind {
        StmtKind::Unsupported { keyword: keyword.to_string(), name, attributes: Vec::new() }
    }

    /// `tool name(params) [-> T] { [description "..."] body }`.
    fn tool_decl(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let name = self.ident("tool name")?;
        self.expect(Tok::LParen, "(")?;
        self.params(&Tok::RParen)?;
        self.expect(Tok::RParen, ")")?;
        self.return_type()?;
        self.expect(Tok::LBrace, "{")?;
        self.skip_newlines();
        if self.at_ident("description") && matches!(self.peek(1), Tok::Str(_)) {
            self.advance();
            self.advance();
            self.separator("tool body item", true)?;
        }
        self.fn_body()?;
        Ok(Self::unsupported("tool", Some(name)))
    }

    /// `skill name { field expr ... }`.
    fn skill_decl(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let name = self.ident("skill name")?;
        self.expect(Tok::LBrace, "{")?;
        loop {
            self.skip_newlines();
            if self.at(&Tok::RBrace) || self.at_eof() {
                break;
            }
            self.ident("skill field name")?;
            self.skip_newlines();
            self.expr()?;
            self.separator("skill field", true)?;
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(Self::unsupported("skill", Some(name)))
    }

    /// `eval_pack name ["id"] { field: expr | statement | summarize { } ... }`.
    fn eval_pack_decl(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let name = match self.tok().clone() {
            Tok::Ident(name) => {
                self.advance();
                if matches!(self.tok(), Tok::Str(_)) {
                    self.advance();
                }
                name
            }
            Tok::Str(id) => {
                self.advance();
                id
            }
            _ => return Err(self.error("eval_pack name or string id")),
        };
        self.expect(Tok::LBrace, "{")?;
        self.yields.push(false);
        let result = self.eval_pack_body();
        self.yields.pop();
        result?;
        Ok(Self::unsupported("eval_pack", Some(name)))
    }

    fn eval_pack_body(&mut self) -> VmResult<()> {
        loop {
            self.skip_newlines();
            if self.at(&Tok::RBrace) || self.at_eof() {
                break;
            }
            if self.at_ident("summarize") && *self.peek(1) == Tok::LBrace {
                self.advance();
                self.braced_block()?;
            } else if matches!(self.tok(), Tok::Ident(_)) && *self.peek(1) == Tok::Colon {
                self.advance();
                self.advance();
                self.skip_newlines();
                self.expr()?;
            } else {
                self.statement()?;
            }
            self.separator("eval_pack item", true)?;
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(())
    }

    /// `override name(params) { body }`.
    fn override_decl(&mut self) -> VmResult<StmtKind> {
        self.advance();
        let name = self.ident("override name")?;
        self.expect(Tok::LParen, "(")?;
        self.untyped_params()?;
        self.expect(Tok::RParen, ")")?;
        self.expect(Tok::LBrace, "{")?;
        self.fn_body()?;
        Ok(Self::unsupported("override", Some(name)))
    }

    // ------------------------------------------------------------------
    // Types
    // ------------------------------------------------------------------

    fn type_expr(&mut self) -> VmResult<TypeExpr> {
        self.skip_newlines();
        self.nested(|p| {
            let first = p.type_primary()?;
            if !p.at(&Tok::Bar) {
                return Ok(first);
            }
            let mut alternatives = vec![first];
            while p.at(&Tok::Bar) {
                p.advance();
                p.skip_newlines();
                alternatives.push(p.type_primary()?);
            }
            Ok(TypeExpr::Union(alternatives))
        })
    }

    fn type_primary(&mut self) -> VmResult<TypeExpr> {
        self.skip_newlines();
        let ty = match self.tok().clone() {
            Tok::LBrace => return self.shape_type(),
            Tok::LBracket => {
                self.advance();
                let inner = self.type_expr()?;
                self.expect(Tok::RBracket, "]")?;
                return Ok(TypeExpr::Named { name: "list".into(), args: vec![inner] });
            }
            Tok::LParen => {
                self.advance();
                let inner = self.type_expr()?;
                self.expect(Tok::RParen, ")")?;
                return Ok(inner);
            }
            Tok::Kw(Kw::Fn) => {
                self.advance();
                self.expect(Tok::LParen, "(")?;
                let mut params = Vec::new();
                self.skip_newlines();
                while !self.at(&Tok::RParen) && !self.at_eof() {
                    params.push(self.type_expr()?);
                    self.skip_item_separator();
                }
                self.expect(Tok::RParen, ")")?;
                let ret = self.return_type()?.map(Box::new);
                return Ok(TypeExpr::Fn { params, ret });
            }
            Tok::Kw(Kw::Nil) => TypeExpr::Named { name: "nil".into(), args: Vec::new() },
            // Harn types `true`/`false` as plain `bool`.
            Tok::Kw(Kw::True | Kw::False) => TypeExpr::Named { name: "bool".into(), args: Vec::new() },
            Tok::Str(s) | Tok::RawStr(s) => TypeExpr::StrLiteral(s),
            Tok::Int(n) => TypeExpr::IntLiteral(n),
            Tok::Float(f) => TypeExpr::FloatLiteral(f),
            Tok::Minus => match self.peek(1).clone() {
                Tok::Int(n) => {
                    self.advance();
                    TypeExpr::IntLiteral(n.wrapping_neg())
                }
                Tok::Float(f) => {
                    self.advance();
                    TypeExpr::FloatLiteral(-f)
                }
                _ => return Err(self.error("type name")),
            },
            _ => {
                let name = self.ident("type name")?;
                let args = if self.at(&Tok::Lt) { self.type_args()? } else { Vec::new() };
                return Ok(TypeExpr::Named { name, args });
            }
        };
        self.advance();
        Ok(ty)
    }

    /// `<T, U>` after a type name (at `<`).
    fn type_args(&mut self) -> VmResult<Vec<TypeExpr>> {
        self.advance();
        let mut args = Vec::new();
        self.skip_newlines();
        loop {
            args.push(self.type_expr()?);
            self.skip_newlines();
            if !self.at(&Tok::Comma) {
                break;
            }
            self.advance();
        }
        // `list<int>= [..]` lexes `>=`: take the `>` and leave an `=` (never
        // while speculating, which must not modify the tokens).
        if self.at(&Tok::GtEq) && !self.speculating {
            let t = &mut self.toks[self.pos];
            t.tok = Tok::Assign;
            t.column += 1;
            return Ok(args);
        }
        self.expect(Tok::Gt, ">")?;
        Ok(args)
    }

    /// `{name: T, opt?: T}` (keywords allowed as field names).
    fn shape_type(&mut self) -> VmResult<TypeExpr> {
        self.advance();
        let mut fields = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            let name = match self.tok() {
                Tok::Str(s) => {
                    let s = s.clone();
                    self.advance();
                    s
                }
                _ => self.member_name("field name")?,
            };
            let optional = self.at(&Tok::Question);
            if optional {
                self.advance();
            }
            self.expect(Tok::Colon, ":")?;
            let ty = self.type_expr()?;
            fields.push(ShapeField { name, optional, ty });
            self.skip_item_separator();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(TypeExpr::Shape(fields))
    }

    // ------------------------------------------------------------------
    // Expressions
    // ------------------------------------------------------------------

    /// A full expression (skips leading newlines).
    fn expr(&mut self) -> VmResult<Expr> {
        self.skip_newlines();
        self.nested(|p| p.binary(PIPE_PREC))
    }

    /// The operator at the current position (possibly at the start of the
    /// next line): its kind, precedence, token index and token length.
    fn peek_operator(&self) -> Option<(Op, u8, usize, usize)> {
        let mut at = self.pos;
        if self.toks[at].tok == Tok::Newline {
            at = self.next_significant();
            if !continues_line(&self.toks[at].tok) {
                return None;
            }
        }
        let t = &self.toks[at].tok;
        Some(match t {
            Tok::PipeGt => (Op::Bin(BinOp::Pipe), PIPE_PREC, at, 1),
            Tok::Kw(Kw::To) => (Op::Range, RANGE_PREC, at, 1),
            Tok::Question => (Op::Ternary, TERNARY_PREC, at, 1),
            Tok::Ident(s) if s == "not" && self.toks.get(at + 1).is_some_and(|n| n.tok == Tok::Kw(Kw::In)) => {
                (Op::Bin(BinOp::NotIn), CMP_PREC, at, 2)
            }
            t => {
                let (op, prec) = binop_of(t)?;
                (Op::Bin(op), prec, at, 1)
            }
        })
    }

    /// All infix levels by precedence climbing: `|>`, `to`, `?:`, `||` .. `**`.
    /// (One function keeps the native recursion per nesting level short.)
    fn binary(&mut self, min_prec: u8) -> VmResult<Expr> {
        let saved = self.begin();
        let mut left = self.unary()?;
        // `to` and `?:` are non-associative: at most one of each per level.
        let mut closed_prec = 0;
        while let Some((op, prec, at, len)) = self.peek_operator() {
            if prec < min_prec || prec == closed_prec {
                break;
            }
            self.pos = at;
            let pos = self.here();
            for _ in 0..len {
                self.advance();
            }
            let hl = self.begin();
            if matches!(op, Op::Range | Op::Ternary) {
                closed_prec = prec;
            }
            left = self.infix(op, left, prec, pos)?;
            self.end(hl);
            self.grow(pos)?;
        }
        self.end(saved);
        Ok(left)
    }

    /// Parses the right side of an infix operator (already consumed).
    fn infix(&mut self, op: Op, lhs: Expr, prec: u8, pos: Pos) -> VmResult<Expr> {
        match op {
            Op::Bin(op) => self.binary_rhs(lhs, op, prec, pos),
            Op::Range => self.range_rhs(lhs, pos),
            Op::Ternary => self.ternary_rhs(lhs, pos),
        }
    }

    /// The right operand of a binary operator (the operator is consumed).
    fn binary_rhs(&mut self, lhs: Expr, op: BinOp, prec: u8, pos: Pos) -> VmResult<Expr> {
        // An operator at the end of a line continues on the next one.
        self.skip_newlines();
        let mut rhs = if prec == POW_PREC {
            // Right-associative: recursion, hence bounded.
            self.nested(|p| p.binary(POW_PREC))?
        } else {
            self.binary(prec + 1)?
        };
        if op == BinOp::Pipe && replace_placeholder(&mut rhs) {
            rhs = pipe_closure(rhs);
            self.grow(pos)?;
            self.grow(pos)?;
        }
        Ok(Expr::new(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, pos))
    }

    /// `start to end [exclusive]` (at the token after `to`).
    fn range_rhs(&mut self, start: Expr, pos: Pos) -> VmResult<Expr> {
        let end = self.binary(TERNARY_PREC)?;
        let inclusive = !self.at_kw(Kw::Exclusive);
        if !inclusive {
            self.advance();
        }
        Ok(Expr::new(ExprKind::Range { start: Box::new(start), end: Box::new(end), inclusive }, pos))
    }

    /// `cond ? then : else` (at the token after `?`); branches are `||`-level.
    fn ternary_rhs(&mut self, cond: Expr, pos: Pos) -> VmResult<Expr> {
        let then = self.binary(OR_PREC)?;
        self.expect(Tok::Colon, ":")?;
        let else_ = self.binary(OR_PREC)?;
        Ok(Expr::new(ExprKind::Ternary { cond: Box::new(cond), then: Box::new(then), else_: Box::new(else_) }, pos))
    }

    /// Prefix `!`, `-`, `try*` (collected iteratively, applied inside-out).
    fn unary(&mut self) -> VmResult<Expr> {
        let saved = self.begin();
        let mut prefixes = Vec::new();
        loop {
            let pos = self.here();
            match self.tok() {
                Tok::Bang => prefixes.push((Some(UnaryOp::Not), pos)),
                Tok::Minus => prefixes.push((Some(UnaryOp::Neg), pos)),
                Tok::Kw(Kw::Try) if *self.peek(1) == Tok::Star => {
                    self.advance();
                    prefixes.push((None, pos));
                }
                _ => break,
            }
            self.advance();
            if prefixes.len() as u32 > MAX_AST_HEIGHT {
                return Err(too_deep(pos));
            }
        }
        let mut e = self.postfix()?;
        for (op, pos) in prefixes.into_iter().rev() {
            self.grow(pos)?;
            let operand = Box::new(e);
            e = match op {
                Some(op) => Expr::new(ExprKind::Unary { op, operand }, pos),
                None => Expr::new(ExprKind::TryStar(operand), pos),
            };
        }
        self.end(saved);
        Ok(e)
    }

    /// Postfix operators: member access, calls, subscripts, `?`, struct literals.
    fn postfix(&mut self) -> VmResult<Expr> {
        let saved = self.begin();
        let mut e = self.primary()?;
        while let Some(step) = self.postfix_step(&e) {
            let pos = self.here();
            e = self.apply_postfix(step, e)?;
            self.grow(pos)?;
        }
        self.end(saved);
        Ok(e)
    }

    /// Which postfix operator (if any) applies to `e` at the current token.
    fn postfix_step(&mut self, e: &Expr) -> Option<Postfix> {
        let callee = matches!(e.kind, ExprKind::Ident(_));
        let member = |t: &Tok| matches!(t, Tok::Dot | Tok::QuestionDot);
        match self.tok() {
            t if member(t) && !self.at_ellipsis() => Some(Postfix::Member),
            // A `.`/`?.` chain may continue on the next line (not a `...` spread).
            Tok::Newline => {
                let i = self.next_significant();
                let continues = member(&self.toks[i].tok) && self.toks.get(i + 1).is_some_and(|t| t.tok != Tok::Dot);
                if continues {
                    self.pos = i;
                    Some(Postfix::Member)
                } else {
                    None
                }
            }
            Tok::LBracket => Some(Postfix::Index),
            Tok::LParen if callee => Some(Postfix::Call),
            // `f<int>(x)`: explicit type arguments, tried speculatively.
            Tok::Lt if callee => self.try_call_type_args().map(Postfix::TypeArgsCall),
            Tok::LBrace if self.is_struct_literal(e) => Some(Postfix::Struct),
            Tok::Question => match self.peek(1) {
                // `e?[i]`: optional subscript.
                Tok::LBracket => Some(Postfix::OptionalIndex),
                // `c ? a : b` — left to `binary`.
                t if starts_ternary_branch(t) => None,
                _ => Some(Postfix::Try),
            },
            _ => None,
        }
    }

    fn apply_postfix(&mut self, step: Postfix, e: Expr) -> VmResult<Expr> {
        match step {
            Postfix::Member => self.member_access(e),
            Postfix::Index => self.subscript(e, false),
            Postfix::OptionalIndex => {
                self.advance();
                self.subscript(e, true)
            }
            Postfix::Call => self.call(e, Vec::new()),
            Postfix::TypeArgsCall(type_args) => self.call(e, type_args),
            Postfix::Struct => self.struct_literal(e),
            Postfix::Try => {
                let pos = self.here();
                self.advance();
                Ok(Expr::new(ExprKind::TryOp(Box::new(e)), pos))
            }
        }
    }

    /// `.name`, `?.name`, `.name(args)`, `Enum.Variant[(args)]` (at `.`/`?.`).
    fn member_access(&mut self, e: Expr) -> VmResult<Expr> {
        let pos = self.here();
        let optional = self.at(&Tok::QuestionDot);
        self.advance();
        let name = self.member_name("member name")?;
        let enum_name = match &e.kind {
            ExprKind::Ident(n) if !optional && self.enums.contains(n) => Some(n.clone()),
            _ => None,
        };
        let args = if self.at(&Tok::LParen) { Some(self.call_args()?) } else { None };
        Ok(match (enum_name, args) {
            (Some(enum_name), args) => {
                Expr::new(ExprKind::EnumConstruct { enum_name, variant: name, args: args.unwrap_or_default() }, e.pos)
            }
            (None, Some(args)) => Expr::new(ExprKind::MethodCall { object: Box::new(e), name, args, optional }, pos),
            (None, None) => Expr::new(ExprKind::Property { object: Box::new(e), name, optional }, pos),
        })
    }

    /// `name(args)` (`callee` is an identifier; at `(`).
    fn call(&mut self, callee: Expr, type_args: Vec<TypeExpr>) -> VmResult<Expr> {
        let ExprKind::Ident(name) = callee.kind else { unreachable!("only identifiers are called") };
        let args = self.call_args()?;
        Ok(Expr::new(ExprKind::Call { name, type_args, args }, callee.pos))
    }

    /// `[i]`, `[a:b]`, `[:b]`, `[a:]`, `[:]` (at `[`).
    fn subscript(&mut self, object: Expr, optional: bool) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        self.skip_newlines();
        let object = Box::new(object);
        let start = if self.at(&Tok::Colon) { None } else { Some(Box::new(self.expr()?)) };
        self.skip_newlines();
        if self.at(&Tok::Colon) {
            self.advance();
            self.skip_newlines();
            let end = if self.at(&Tok::RBracket) { None } else { Some(Box::new(self.expr()?)) };
            self.expect(Tok::RBracket, "]")?;
            return Ok(Expr::new(ExprKind::Slice { object, start, end, optional }, pos));
        }
        self.expect(Tok::RBracket, "]")?;
        let index = start.expect("a subscript without `:` has an index");
        Ok(Expr::new(ExprKind::Index { object, index, optional }, pos))
    }

    /// `(args)` with optional commas and `...spread` (at `(`).
    fn call_args(&mut self) -> VmResult<Vec<Arg>> {
        self.advance();
        let mut args = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RParen) && !self.at_eof() {
            args.push(self.arg()?);
            self.skip_item_separator();
        }
        self.expect(Tok::RParen, ")")?;
        Ok(args)
    }

    fn arg(&mut self) -> VmResult<Arg> {
        if self.at_ellipsis() {
            self.skip_ellipsis();
            return Ok(Arg::Spread(self.expr()?));
        }
        Ok(Arg::Positional(self.expr()?))
    }

    /// Tries `<T, ...>` directly followed by `(`; restores the position on failure.
    fn try_call_type_args(&mut self) -> Option<Vec<TypeExpr>> {
        if !matches!(self.peek(1), Tok::Ident(_) | Tok::LBracket | Tok::Kw(Kw::Nil | Kw::Fn)) {
            return None;
        }
        let (pos, height, nesting) = (self.pos, self.height, self.nesting);
        self.speculating = true;
        let parsed = self.type_args();
        self.speculating = false;
        match parsed {
            Ok(args) if self.at(&Tok::LParen) => Some(args),
            _ => {
                self.pos = pos;
                self.height = height;
                self.nesting = nesting;
                None
            }
        }
    }

    /// `Name {` starts a struct literal when Name is capitalized and the
    /// brace holds `ident:` / `"str":` (or is `{}` for a declared struct).
    fn is_struct_literal(&self, e: &Expr) -> bool {
        let ExprKind::Ident(name) = &e.kind else {
            return false;
        };
        if !name.starts_with(|c: char| c.is_uppercase()) {
            return false;
        }
        let mut i = self.pos + 1;
        let skip = |mut i: usize| {
            while self.toks.get(i).is_some_and(|t| t.tok == Tok::Newline) {
                i += 1;
            }
            i
        };
        i = skip(i);
        match self.toks.get(i).map(|t| &t.tok) {
            Some(Tok::RBrace) => self.structs.contains(name),
            Some(Tok::Ident(_) | Tok::Str(_)) => {
                i = skip(i + 1);
                self.toks.get(i).is_some_and(|t| t.tok == Tok::Colon)
            }
            _ => false,
        }
    }

    fn struct_literal(&mut self, e: Expr) -> VmResult<Expr> {
        let ExprKind::Ident(name) = e.kind else { unreachable!("struct literals follow a name") };
        let pos = e.pos;
        self.advance(); // {
        let mut fields = Vec::new();
        for entry in self.dict_entries()? {
            match entry {
                DictEntry::Pair { key: DictKey::Name(k), value } => fields.push((k, value)),
                _ => return Err(syntax(format!("Expected struct field name in `{name} {{ ... }}`"), pos)),
            }
        }
        Ok(Expr::new(ExprKind::StructConstruct { name, fields }, pos))
    }

    /// Primary expressions. Every compound arm is a plain call to keep this
    /// frame (on the recursion path of nested expressions) small.
    fn primary(&mut self) -> VmResult<Expr> {
        match self.tok() {
            Tok::LParen => self.parenthesized(),
            Tok::LBracket => self.list_literal(),
            Tok::LBrace => self.dict_or_closure(),
            Tok::InterpStr(_) => self.interpolated(),
            Tok::Kw(Kw::Parallel) => self.parallel_expr(),
            Tok::Kw(Kw::Retry) => self.retry_expr(),
            Tok::Kw(Kw::If) => self.if_expr(),
            Tok::Kw(Kw::Match) => self.match_expr(),
            Tok::Kw(Kw::Deadline) => self.deadline_expr(),
            Tok::Kw(Kw::Try) => self.try_expr(),
            Tok::Kw(Kw::Spawn) => self.spawn_expr(),
            Tok::Kw(Kw::Fn) => self.fn_expr(),
            _ => self.atom(),
        }
    }

    /// Literals and identifiers.
    fn atom(&mut self) -> VmResult<Expr> {
        let kind = match self.tok() {
            Tok::Int(n) => ExprKind::Int(*n),
            Tok::Float(f) => ExprKind::Float(*f),
            Tok::Duration(ms) => ExprKind::Duration(*ms),
            Tok::Str(s) | Tok::RawStr(s) => ExprKind::Str(s.clone()),
            Tok::Kw(Kw::True) => ExprKind::Bool(true),
            Tok::Kw(Kw::False) => ExprKind::Bool(false),
            Tok::Kw(Kw::Nil) => ExprKind::Nil,
            Tok::Ident(name) => ExprKind::Ident(name.clone()),
            _ => return Err(self.error("expression")),
        };
        let pos = self.here();
        self.advance();
        Ok(Expr::new(kind, pos))
    }

    fn parenthesized(&mut self) -> VmResult<Expr> {
        self.advance();
        let e = self.expr()?;
        self.expect(Tok::RParen, ")")?;
        Ok(e)
    }

    fn spawn_expr(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        let body = self.braced_block()?;
        Ok(Expr::new(ExprKind::Spawn(body), pos))
    }

    /// Re-lexes and parses each `${...}` of an interpolated string.
    fn interpolated(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        let Tok::InterpStr(segments) = self.tok().clone() else { unreachable!() };
        self.advance();
        let mut parts = Vec::with_capacity(segments.len());
        for seg in segments {
            match seg {
                Segment::Lit(s) => parts.push(StrSegment::Lit(s)),
                Segment::Expr { text, line, column } => {
                    let sub = lexer::tokenize_at(&text, line, column)?;
                    let outer = std::mem::replace(&mut self.toks, sub);
                    let outer_pos = std::mem::replace(&mut self.pos, 0);
                    let result = self.interpolation_expr();
                    self.toks = outer;
                    self.pos = outer_pos;
                    parts.push(StrSegment::Expr(result?));
                }
            }
        }
        Ok(Expr::new(ExprKind::InterpolatedStr(parts), pos))
    }

    fn interpolation_expr(&mut self) -> VmResult<Expr> {
        self.skip_newlines();
        let e = self.expr()?;
        self.skip_newlines();
        if !self.at_eof() {
            return Err(self.error("end of interpolation"));
        }
        Ok(e)
    }

    fn list_literal(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        let mut items = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBracket) && !self.at_eof() {
            let item = match self.arg()? {
                Arg::Spread(x) => ListElem::Spread(x),
                Arg::Positional(x) => ListElem::Item(x),
            };
            items.push(item);
            self.skip_item_separator();
        }
        self.expect(Tok::RBracket, "]")?;
        Ok(Expr::new(ExprKind::List(items), pos))
    }

    /// `{}` / `{k: v}` is a dict; a `->` at depth 0 before the closing brace
    /// makes it a closure `{ params -> body }`.
    fn dict_or_closure(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        self.skip_newlines();
        if self.closure_ahead() {
            return self.closure_literal(pos);
        }
        self.dict_literal(pos)
    }

    fn dict_literal(&mut self, pos: Pos) -> VmResult<Expr> {
        let entries = self.dict_entries()?;
        Ok(Expr::new(ExprKind::Dict(entries), pos))
    }

    /// `{ params -> body }` (after the `{`).
    fn closure_literal(&mut self, pos: Pos) -> VmResult<Expr> {
        let params = self.params(&Tok::Arrow)?;
        self.expect(Tok::Arrow, "->")?;
        let (body, is_generator) = self.fn_body()?;
        let closure = Closure { params, body, is_generator, fn_syntax: false };
        Ok(Expr::new(ExprKind::Closure(Box::new(closure)), pos))
    }

    fn closure_ahead(&self) -> bool {
        let mut depth = 0usize;
        for t in &self.toks[self.pos..] {
            match t.tok {
                Tok::Arrow if depth == 0 => return true,
                Tok::LBrace | Tok::LParen | Tok::LBracket => depth += 1,
                Tok::RBrace if depth == 0 => return false,
                Tok::RBrace | Tok::RParen | Tok::RBracket => depth = depth.saturating_sub(1),
                Tok::Eof => return false,
                _ => {}
            }
        }
        false
    }

    /// Dict entries up to and including `}` (the `{` is consumed).
    fn dict_entries(&mut self) -> VmResult<Vec<DictEntry>> {
        let mut entries = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            entries.push(self.dict_entry()?);
            self.skip_item_separator();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(entries)
    }

    /// `key: value`, `"key": value`, `[expr]: value` or `...spread`.
    fn dict_entry(&mut self) -> VmResult<DictEntry> {
        if self.at_ellipsis() {
            self.skip_ellipsis();
            return Ok(DictEntry::Spread(self.expr()?));
        }
        let key = match self.tok() {
            Tok::LBracket => {
                self.advance();
                let k = self.expr()?;
                self.expect(Tok::RBracket, "]")?;
                DictKey::Computed(k)
            }
            Tok::Str(s) | Tok::RawStr(s) => {
                let key = DictKey::Name(s.clone());
                self.advance();
                key
            }
            _ => DictKey::Name(self.member_name("dict key")?),
        };
        self.expect(Tok::Colon, ":")?;
        let value = self.expr()?;
        Ok(DictEntry::Pair { key, value })
    }

    /// `fn(params) [-> T] { body }` — an anonymous function.
    fn fn_expr(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        self.expect(Tok::LParen, "(")?;
        let params = self.params(&Tok::RParen)?;
        self.expect(Tok::RParen, ")")?;
        self.return_type()?;
        self.expect(Tok::LBrace, "{")?;
        let (body, is_generator) = self.fn_body()?;
        let closure = Closure { params, body, is_generator, fn_syntax: true };
        Ok(Expr::new(ExprKind::Closure(Box::new(closure)), pos))
    }

    /// `if c { } [else if c2 { }]* [else { }]`, parsed iteratively so long
    /// `else if` chains do not recurse.
    fn if_expr(&mut self) -> VmResult<Expr> {
        let saved = self.begin();
        let mut arms = Vec::new();
        let mut else_block = None;
        loop {
            let pos = self.expect_kw(Kw::If)?;
            let cond = self.expr()?;
            let then = self.braced_block()?;
            arms.push((pos, cond, then));
            if !self.skip_newlines_if(|t| *t == Tok::Kw(Kw::Else)) {
                break;
            }
            self.advance();
            if self.at_kw(Kw::If) {
                continue;
            }
            else_block = Some(self.braced_block()?);
            break;
        }
        let mut else_ = else_block.map(ElseBranch::Block);
        let mut result = None;
        while let Some((pos, cond, then)) = arms.pop() {
            self.grow(pos)?;
            let e = Expr::new(ExprKind::If { cond: Box::new(cond), then, else_: else_.take() }, pos);
            if arms.is_empty() {
                result = Some(e);
            } else {
                else_ = Some(ElseBranch::If(Box::new(e)));
            }
        }
        self.end(saved);
        Ok(result.expect("an if has at least one arm"))
    }

    fn match_expr(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        let subject = self.expr()?;
        self.expect(Tok::LBrace, "{")?;
        let mut arms = Vec::new();
        self.skip_newlines();
        while !self.at(&Tok::RBrace) && !self.at_eof() {
            let arm_pos = self.here();
            let mut patterns = vec![self.match_pattern()?];
            while self.at(&Tok::Bar) {
                self.advance();
                self.skip_newlines();
                patterns.push(self.match_pattern()?);
            }
            let guard = if self.at_kw(Kw::If) {
                self.advance();
                Some(self.expr()?)
            } else {
                None
            };
            self.expect(Tok::Arrow, "->")?;
            let body = self.braced_block()?;
            arms.push(MatchArm { patterns, guard, body, pos: arm_pos });
            self.skip_decl_separators();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(Expr::new(ExprKind::Match { subject: Box::new(subject), arms }, pos))
    }

    /// A match pattern is parsed as an expression, then classified.
    fn match_pattern(&mut self) -> VmResult<MatchPattern> {
        let e = self.expr()?;
        Ok(self.classify_pattern(e))
    }

    fn classify_pattern(&self, e: Expr) -> MatchPattern {
        let binding = |e: &Expr| match &e.kind {
            ExprKind::Ident(n) if n == "_" => Some(MatchPattern::Wildcard),
            ExprKind::Ident(n) if !self.enums.contains(n) => Some(MatchPattern::Binding(n.clone())),
            _ => None,
        };
        if let Some(p) = binding(&e) {
            return p;
        }
        match e.kind {
            ExprKind::EnumConstruct { enum_name, variant, args }
                if args.iter().all(|a| matches!(a, Arg::Positional(Expr { kind: ExprKind::Ident(_), .. }))) =>
            {
                let bindings = args
                    .into_iter()
                    .map(|a| match a {
                        Arg::Positional(Expr { kind: ExprKind::Ident(n), .. }) if n != "_" => Some(n),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                let bindings = if bindings.is_empty() { None } else { Some(bindings) };
                MatchPattern::EnumVariant { enum_name, variant, bindings }
            }
            ExprKind::Dict(entries) if entries.iter().all(|en| matches!(en, DictEntry::Pair { key: DictKey::Name(_), .. })) => {
                let fields = entries
                    .into_iter()
                    .filter_map(|en| match en {
                        DictEntry::Pair { key: DictKey::Name(k), value } => {
                            Some((k, binding(&value).unwrap_or(MatchPattern::Value(value))))
                        }
                        _ => None,
                    })
                    .collect();
                MatchPattern::Dict(fields)
            }
            ExprKind::List(items) if items.iter().all(|i| matches!(i, ListElem::Item(_))) => {
                let elems = items
                    .into_iter()
                    .filter_map(|i| match i {
                        ListElem::Item(v) => Some(binding(&v).unwrap_or(MatchPattern::Value(v))),
                        ListElem::Spread(_) => None,
                    })
                    .collect();
                MatchPattern::List(elems)
            }
            kind => MatchPattern::Value(Expr { kind, pos: e.pos }),
        }
    }

    /// `retry N { }` / `retry (N) { }` — N is a primary expression.
    fn retry_expr(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        let count = self.primary()?;
        let body = self.braced_block()?;
        Ok(Expr::new(ExprKind::Retry { count: Box::new(count), body }, pos))
    }

    /// `deadline D { }` — D is a primary expression.
    fn deadline_expr(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        let duration = self.primary()?;
        let body = self.braced_block()?;
        Ok(Expr::new(ExprKind::Deadline { duration: Box::new(duration), body }, pos))
    }

    /// `try { } [catch [(e[: T])] | catch e { }] [finally { }]`.
    fn try_expr(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        let body = self.braced_block()?;
        let mut catch = None;
        if self.skip_newlines_if(|t| *t == Tok::Kw(Kw::Catch)) {
            self.advance();
            let (binding, type_name) = if self.at(&Tok::LParen) {
                self.advance();
                let name = self.ident("error variable")?;
                let type_name = if self.at(&Tok::Colon) {
                    self.advance();
                    match self.type_expr()? {
                        TypeExpr::Named { name, .. } => Some(name),
                        _ => None,
                    }
                } else {
                    None
                };
                self.expect(Tok::RParen, ")")?;
                (Some(name), type_name)
            } else if let Tok::Ident(name) = self.tok().clone() {
                self.advance();
                (Some(name), None)
            } else {
                (None, None)
            };
            let body = self.braced_block()?;
            catch = Some(Box::new(CatchClause { binding, type_name, body }));
        }
        let finally = if self.skip_newlines_if(|t| *t == Tok::Kw(Kw::Finally)) {
            self.advance();
            Some(self.braced_block()?)
        } else {
            None
        };
        Ok(Expr::new(ExprKind::TryCatch { body, catch, finally }, pos))
    }

    /// `parallel [each|settle] EXPR [with { max_concurrent: K }] { [x ->] body } [as stream]`.
    fn parallel_expr(&mut self) -> VmResult<Expr> {
        let pos = self.here();
        self.advance();
        let kind = if self.at_ident("each") {
            self.advance();
            ParallelKind::Each
        } else if self.at_ident("settle") {
            self.advance();
            ParallelKind::Settle
        } else {
            ParallelKind::Count
        };
        let expr = self.expr()?;
        let options = if self.at_ident("with") { Some(self.parallel_options()?) } else { None };
        self.expect(Tok::LBrace, "{")?;
        self.skip_newlines();
        let param = match (self.tok().clone(), self.peek(1)) {
            (Tok::Ident(name), Tok::Arrow) => {
                self.advance();
                self.advance();
                Some(name)
            }
            _ => None,
        };
        let body = self.block()?;
        let as_stream =
            kind == ParallelKind::Each && self.at_ident("as") && matches!(self.peek(1), Tok::Ident(s) if s == "stream");
        if as_stream {
            self.advance();
            self.advance();
        }
        let parallel = Parallel { kind, expr, options, param, body, as_stream };
        Ok(Expr::new(ExprKind::Parallel(Box::new(parallel)), pos))
    }

    /// `with { max_concurrent: K }` → a dict expression.
    fn parallel_options(&mut self) -> VmResult<Expr> {
        self.advance(); // with
        let pos = self.expect(Tok::LBrace, "{")?;
        let mut entries = Vec::new();
        loop {
            self.skip_newlines();
            if self.at(&Tok::RBrace) || self.at_eof() {
                break;
            }
            let key_pos = self.here();
            let key = match self.tok() {
                Tok::Ident(k) => k.clone(),
                _ => return Err(self.error("option name in `parallel ... with { ... }` block")),
            };
            if key != "max_concurrent" {
                return Err(syntax(
                    format!(
                        "Expected known option (only `max_concurrent` is supported in \
                         `parallel ... with {{ ... }}`; got `{key}`), got {key} at {}:{}",
                        key_pos.line, key_pos.column
                    ),
                    key_pos,
                ));
            }
            self.advance();
            self.expect(Tok::Colon, ":")?;
            let value = self.expr()?;
            entries.push(DictEntry::Pair { key: DictKey::Name(key), value });
            self.skip_item_separator();
        }
        self.expect(Tok::RBrace, "}")?;
        Ok(Expr::new(ExprKind::Dict(entries), pos))
    }
}

// ----------------------------------------------------------------------
// `|>` placeholder desugaring
// ----------------------------------------------------------------------

/// Replaces every `_` placeholder of a pipe's right operand with `__pipe`,
/// searching call arguments, method objects/arguments, operator operands,
/// list items and property/subscript operands. Returns whether any was found.
fn replace_placeholder(e: &mut Expr) -> bool {
    fn arg_expr(a: &mut Arg) -> &mut Expr {
        match a {
            Arg::Positional(e) | Arg::Spread(e) => e,
        }
    }
    match &mut e.kind {
        ExprKind::Ident(name) if name == "_" => {
            *name = "__pipe".to_string();
            true
        }
        ExprKind::Call { args, .. } | ExprKind::EnumConstruct { args, .. } => {
            args.iter_mut().fold(false, |found, a| replace_placeholder(arg_expr(a)) | found)
        }
        ExprKind::MethodCall { object, args, .. } => {
            let found = replace_placeholder(object);
            args.iter_mut().fold(found, |found, a| replace_placeholder(arg_expr(a)) | found)
        }
        ExprKind::Binary { op, lhs, rhs } if *op != BinOp::Pipe => replace_placeholder(lhs) | replace_placeholder(rhs),
        ExprKind::Unary { operand, .. } => replace_placeholder(operand),
        ExprKind::List(items) => items.iter_mut().fold(false, |found, item| {
            let (ListElem::Item(x) | ListElem::Spread(x)) = item;
            replace_placeholder(x) | found
        }),
        ExprKind::Property { object, .. } => replace_placeholder(object),
        ExprKind::Index { object, index, .. } => replace_placeholder(object) | replace_placeholder(index),
        ExprKind::Slice { object, start, end, .. } => {
            let mut found = replace_placeholder(object);
            for b in [start, end].into_iter().flatten() {
                found |= replace_placeholder(b);
            }
            found
        }
        _ => false,
    }
}

/// Wraps a pipe operand in `{ __pipe -> operand }`.
fn pipe_closure(body: Expr) -> Expr {
    let pos = body.pos;
    let param = Param { name: "__pipe".to_string(), ty: None, default: None, rest: false, pos };
    let closure =
        Closure { params: vec![param], body: vec![Stmt::new(StmtKind::Expr(body), pos)], is_generator: false, fn_syntax: false };
    Expr::new(ExprKind::Closure(Box::new(closure)), pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_rng::TestRng as Rng;

    fn parse_ok(src: &str) -> Program {
        match parse(src, "test.harn") {
            Ok(p) => p,
            Err(e) => panic!("parse failed for {src:?}: {}", e.message()),
        }
    }

    fn parse_err(src: &str) -> String {
        match parse(src, "test.harn") {
            Ok(p) => panic!("expected an error for {src:?}, got {p:?}"),
            Err(e) => e.message(),
        }
    }

    fn expr(src: &str) -> Expr {
        parse_expression(src).unwrap_or_else(|e| panic!("{src:?}: {}", e.message()))
    }

    fn first_stmt(src: &str) -> StmtKind {
        parse_ok(src).items.into_iter().next().expect("a statement").kind
    }

    /// Compact s-expression rendering of expressions, for precedence tests.
    fn sx(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Int(n) => n.to_string(),
            ExprKind::Float(f) => format!("{f:?}"),
            ExprKind::Duration(ms) => format!("{ms}ms"),
            ExprKind::Str(s) => format!("{s:?}"),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Nil => "nil".into(),
            ExprKind::Ident(n) => n.clone(),
            ExprKind::Binary { op, lhs, rhs } => format!("({op:?} {} {})", sx(lhs), sx(rhs)),
            ExprKind::Unary { op, operand } => format!("({op:?} {})", sx(operand)),
            ExprKind::Ternary { cond, then, else_ } => format!("(? {} {} {})", sx(cond), sx(then), sx(else_)),
            ExprKind::Range { start, end, inclusive } => {
                format!("(to{} {} {})", if *inclusive { "" } else { "x" }, sx(start), sx(end))
            }
            ExprKind::TryOp(x) => format!("(try? {})", sx(x)),
            ExprKind::TryStar(x) => format!("(try* {})", sx(x)),
            ExprKind::Call { name, args, type_args } => {
                let t = if type_args.is_empty() { String::new() } else { format!("<{}>", type_args.len()) };
                format!("{name}{t}({})", args.iter().map(sx_arg).collect::<Vec<_>>().join(" "))
            }
            ExprKind::MethodCall { object, name, args, optional } => format!(
                "{}{}{name}({})",
                sx(object),
                if *optional { "?." } else { "." },
                args.iter().map(sx_arg).collect::<Vec<_>>().join(" ")
            ),
            ExprKind::Property { object, name, optional } => {
                format!("{}{}{name}", sx(object), if *optional { "?." } else { "." })
            }
            ExprKind::Index { object, index, optional } => {
                format!("{}{}[{}]", sx(object), if *optional { "?" } else { "" }, sx(index))
            }
            ExprKind::Slice { object, start, end, .. } => format!(
                "{}[{}:{}]",
                sx(object),
                start.as_ref().map_or(String::new(), |x| sx(x)),
                end.as_ref().map_or(String::new(), |x| sx(x))
            ),
            ExprKind::List(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| match i {
                        ListElem::Item(x) => sx(x),
                        ListElem::Spread(x) => format!("...{}", sx(x)),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            ExprKind::Closure(c) => {
                format!("{{{} -> {}}}", c.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>().join(" "), c.body.len())
            }
            ExprKind::EnumConstruct { enum_name, variant, args } => {
                format!("{enum_name}::{variant}({})", args.iter().map(sx_arg).collect::<Vec<_>>().join(" "))
            }
            ExprKind::StructConstruct { name, fields } => {
                format!("{name}{{{}}}", fields.iter().map(|(k, v)| format!("{k}={}", sx(v))).collect::<Vec<_>>().join(" "))
            }
            other => format!("<{}>", format!("{other:?}").split([' ', '(', '{']).next().unwrap_or("")),
        }
    }

    fn sx_arg(a: &Arg) -> String {
        match a {
            Arg::Positional(x) => sx(x),
            Arg::Spread(x) => format!("...{}", sx(x)),
        }
    }

    fn sxs(src: &str) -> String {
        sx(&expr(src))
    }

    #[test]
    fn precedence() {
        assert_eq!(sxs("1 + 2 * 3"), "(Add 1 (Mul 2 3))");
        assert_eq!(sxs("a ?? 0 + 1"), "(Add (NullCoalesce a 0) 1)");
        assert_eq!(sxs("2 ** 3 ** 2"), "(Pow 2 (Pow 3 2))");
        assert_eq!(sxs("-2 ** 2"), "(Pow (Neg 2) 2)");
        assert_eq!(sxs("a || b && c == d"), "(Or a (And b (Eq c d)))");
        assert_eq!(sxs("a < b + 1 in xs"), "(In (Lt a (Add b 1)) xs)");
        assert_eq!(sxs("x not in xs"), "(NotIn x xs)");
        assert_eq!(sxs("1 to 5"), "(to 1 5)");
        assert_eq!(sxs("0 to n exclusive"), "(tox 0 n)");
        assert_eq!(sxs("c ? a + 1 : b"), "(? c (Add a 1) b)");
        assert_eq!(sxs("a |> f |> g"), "(Pipe (Pipe a f) g)");
        assert_eq!(sxs("!a == b"), "(Eq (Not a) b)");
        assert_eq!(sxs("try* f(x)"), "(try* f(x))");
        assert_eq!(sxs("a - b - c"), "(Sub (Sub a b) c)");
        assert_eq!(sxs("10 / 3 % 2"), "(Mod (Div 10 3) 2)");
    }

    #[test]
    fn postfix_forms() {
        assert_eq!(sxs("a.b.c(1, 2)?.d"), "a.b.c(1 2)?.d");
        assert_eq!(sxs("xs[1][a:b][:2][3:][:]"), "xs[1][a:b][:2][3:][:]");
        assert_eq!(sxs("xs?[0]"), "xs?[0]");
        assert_eq!(sxs("f(x)?"), "(try? f(x))");
        // `?[` is always an optional subscript, so this is an error, as in Harn.
        assert!(parse_expression("c ? [1] : [2]").is_err());
        assert_eq!(sxs("c ? ([1]) : [2]"), "(? c [1] [2])");
        assert_eq!(sxs("c ? x : y"), "(? c x y)");
        assert_eq!(sxs("f(...xs, 1)"), "f(...xs 1)");
        assert_eq!(sxs("obj.type + cfg.match"), "(Add obj.type cfg.match)");
        assert_eq!(sxs("filter<int>(xs, f)"), "filter<1>(xs f)");
        assert_eq!(sxs("a < b"), "(Lt a b)");
        assert_eq!(sxs("f(a < b, c > d)"), "f((Lt a b) (Gt c d))");
        assert_eq!(sxs("42.method()"), "42.method()");
        assert_eq!(sxs("Result.Ok(1)"), "Result::Ok(1)");
        assert_eq!(sxs("Point {x: 1, y: 2}"), "Point{x=1 y=2}");
        assert_eq!(sxs("[1, ...xs, 2]"), "[1 ...xs 2]");
        assert_eq!(sxs("[1 2 3]"), "[1 2 3]");
        assert_eq!(sxs("{ x -> x * 2 }"), "{x -> 1}");
        assert_eq!(sxs("{ -> 42 }"), "{ -> 1}");
        assert_eq!(sxs("fn(a, b = 1) { return a }"), "{a b -> 1}");
    }

    #[test]
    fn pipe_placeholder() {
        assert_eq!(sxs("v |> f(_, 1)"), "(Pipe v {__pipe -> 1})");
        let e = expr("v |> _.sort()");
        let ExprKind::Binary { rhs, .. } = e.kind else { panic!() };
        let ExprKind::Closure(c) = rhs.kind else { panic!() };
        let StmtKind::Expr(body) = &c.body[0].kind else { panic!() };
        assert_eq!(sx(body), "__pipe.sort()");
        assert_eq!(sxs("v |> len"), "(Pipe v len)");
    }

    #[test]
    fn dicts_and_closures() {
        let e = expr("{type: 1, \"a b\": 2, [k]: 3, ...rest, for: 4}");
        let ExprKind::Dict(entries) = e.kind else { panic!() };
        assert_eq!(entries.len(), 5);
        assert!(matches!(&entries[0], DictEntry::Pair { key: DictKey::Name(k), .. } if k == "type"));
        assert!(matches!(&entries[2], DictEntry::Pair { key: DictKey::Computed(_), .. }));
        assert!(matches!(&entries[3], DictEntry::Spread(_)));
        assert!(matches!(expr("{}").kind, ExprKind::Dict(ref d) if d.is_empty()));
        let e = expr("{ a, b: int = 10, ...rest -> a }");
        let ExprKind::Closure(c) = e.kind else { panic!() };
        assert_eq!(c.params.len(), 3);
        assert!(c.params[1].ty.is_some() && c.params[1].default.is_some() && c.params[2].rest);
    }

    #[test]
    fn interpolation_positions() {
        let e = expr("\"a ${x + y} b\"");
        let ExprKind::InterpolatedStr(parts) = e.kind else { panic!() };
        assert_eq!(parts.len(), 3);
        let StrSegment::Expr(inner) = &parts[1] else { panic!() };
        assert_eq!(sx(inner), "(Add x y)");
        assert_eq!(inner.pos, Pos { line: 1, column: 8 });
        let err = parse_err("let s = \"${ ) }\"");
        assert_eq!(err, "Expected expression, got ) at 1:13");
    }

    #[test]
    fn newline_continuation() {
        let p = parse_ok("let a = 1\n  + 2\nlet b = 1 +\n  2\nlet c = x\n  .map(f)\n  ?.filter(g)\nlet d = 1\n-2");
        assert_eq!(p.items.len(), 5, "leading `-` starts a new statement");
        let StmtKind::Let { value, .. } = &p.items[2].kind else { panic!() };
        assert_eq!(sx(value), "x.map(f)?.filter(g)");
        let p = parse_ok("let a = nil\n  ?? 1\nlet b = 1\n  == 1\nlet c = 1\n  < 2\nlet d = 1 |>\n  to_string");
        assert_eq!(p.items.len(), 4);
        // `in` does not continue a line.
        assert!(parse("let a = x\n in xs", "t").is_err());
        // Lists and calls span lines; spreads after a newline are not member access.
        let p = parse_ok("let xs = [\n  1,\n  2\n  ...ys\n]\nf(\n  a,\n  b\n)");
        assert_eq!(p.items.len(), 2);
    }

    #[test]
    fn statements_and_separators() {
        let p = parse_ok("let x = 1; let y = 2\nlog(x);\nfn only() {};");
        assert_eq!(p.items.len(), 4);
        assert_eq!(
            parse_err("pipeline p(task) { let x = 1 let y = 2 }"),
            "Expected statement separator (`;` or newline), got let at 1:30"
        );
        assert_eq!(parse_err("log(1) log(2)"), "Expected top-level item separator (`;` or newline), got id(log) at 1:8");
        assert_eq!(parse_err("pipeline t(task) {\n  log(\"one\");; log(\"two\")\n}"), "Expected expression, got ; at 2:14");
        assert!(parse_err("pipeline t() {\n  if true {\n  }; else {\n  }\n}").contains("got else"));
        assert!(parse_err("pipeline t() {\n  try {\n  }; catch {\n  }\n}").contains("got catch"));
        parse_ok("if a {\n} \nelse if b {\n}\nelse {\n}\nlog(1)");
        parse_ok("try { a() }\ncatch (e: MyErr) { }\nfinally { }");
        parse_ok("yield; log(1)\nreturn; log(2)");
    }

    #[test]
    fn syntax_error_texts() {
        assert_eq!(parse_err("pipeline p(x) {\n"), "Unexpected end of file, expected }");
        assert_eq!(parse_err("let x =\n"), "Unexpected end of file, expected expression");
        assert_eq!(parse_err("pipeline test(task) {\n  let x = )\n  let y = 42\n}"), "Expected expression, got ) at 2:11");
        assert_eq!(
            parse_err("fn bad(x = 10, y) {\n  log(x + y)\n}"),
            "Expected Required parameter cannot follow a parameter with a default value, got ) at 1:17"
        );
        assert!(parse_err("fn bad(...r, y) {}").contains("Rest parameter must be the last parameter"));
        assert_eq!(parse_err("pipeline t(task) {\n  let x = `\n}"), "Unexpected character '`' at 2:11");
        assert_eq!(parse_err("pipeline t(task) {\n  let x = \"abc\n}"), "Unterminated string at 2:11");
        assert_eq!(
            parse_err("for tool in xs {}"),
            "Expected variable name or destructuring pattern, got 'tool' (reserved keyword) at 1:5"
        );
        assert!(parse_err("parallel each xs with {limit: 2} { x -> x }").contains("only `max_concurrent` is supported"));
        assert!(parse_err("select { timeout 1s { } default { } }").contains("select cannot have both timeout and default"));
        assert!(parse_err("@deprecated\nlet x = 1").contains("declaration after `@attr`"));
        let e = parse("let x = )", "f").unwrap_err();
        assert_eq!((e.0.line, e.0.column, e.0.phase), (1, 9, Phase::Parse));
    }

    #[test]
    fn assignments() {
        let StmtKind::Assign { target, op, .. } = first_stmt("x.y[0] += 2") else { panic!() };
        assert_eq!(op, Some(BinOp::Add));
        assert_eq!(sx(&target), "x.y[0]");
        assert!(matches!(first_stmt("x = 1"), StmtKind::Assign { op: None, .. }));
        assert!(parse("f(x) = 1", "t").is_err());
        assert!(parse("a?.b = 1", "t").is_err());
    }

    #[test]
    fn binding_patterns() {
        let StmtKind::Let { pattern, .. } = first_stmt("let {name: n, age = 3, debug: _, ...rest} = d") else { panic!() };
        let Pattern::Dict { entries, rest } = pattern else { panic!() };
        assert_eq!(rest.as_deref(), Some("rest"));
        assert_eq!(entries[0].binding.as_deref(), Some("n"));
        assert_eq!(entries[1].binding.as_deref(), Some("age"));
        assert!(entries[1].default.is_some());
        assert_eq!(entries[2].binding, None);
        let StmtKind::Var { pattern, .. } = first_stmt("var [_, y = 0, ...tail] = xs") else { panic!() };
        assert!(matches!(pattern, Pattern::List { ref elements, rest: Some(_) } if elements[0].binding.is_none()));
        assert!(matches!(first_stmt("let _ = f()"), StmtKind::Let { pattern: Pattern::Wildcard, .. }));
        let StmtKind::For { pattern, .. } = first_stmt("for (i, x) in iter(xs).enumerate() { }") else { panic!() };
        assert_eq!(pattern, Pattern::Pair(Some("i".into()), Some("x".into())));
        assert!(matches!(first_stmt("let x: list<int> = []"), StmtKind::Let { ty: Some(_), .. }));
        assert!(matches!(first_stmt("let x: list<int>= []"), StmtKind::Let { ty: Some(_), .. }));
    }

    #[test]
    fn match_patterns() {
        let src = "enum Shape { Circle(r), Rect(w: float, h: float), Empty }\n\
                   match s {\n  Shape.Circle(r) -> { r }\n  Shape.Rect(_, h) if h > 1 -> { h }\n  Shape.Empty -> { 0 }\n  \
                   1 | 2 | 3 -> { \"small\" }\n  {kind: \"a\", v: v} -> { v }\n  [1, x, _] -> { x }\n  name -> { name }\n  _ -> { nil }\n}";
        let p = parse_ok(src);
        let StmtKind::Expr(Expr { kind: ExprKind::Match { arms, .. }, .. }) = &p.items[1].kind else { panic!() };
        assert_eq!(arms.len(), 8);
        assert_eq!(
            arms[0].patterns[0],
            MatchPattern::EnumVariant {
                enum_name: "Shape".into(),
                variant: "Circle".into(),
                bindings: Some(vec![Some("r".into())])
            }
        );
        assert!(matches!(&arms[1].patterns[0], MatchPattern::EnumVariant { bindings: Some(b), .. } if b[0].is_none()));
        assert!(arms[1].guard.is_some());
        assert!(matches!(&arms[2].patterns[0], MatchPattern::EnumVariant { bindings: None, .. }));
        assert_eq!(arms[3].patterns.len(), 3);
        assert!(matches!(&arms[4].patterns[0], MatchPattern::Dict(f) if matches!(f[1].1, MatchPattern::Binding(_))));
        assert!(matches!(&arms[5].patterns[0], MatchPattern::List(e) if e[2] == MatchPattern::Wildcard));
        assert_eq!(arms[6].patterns[0], MatchPattern::Binding("name".into()));
        assert_eq!(arms[7].patterns[0], MatchPattern::Wildcard);
        // Enum construction is only recognized for declared enums and Result.
        assert!(matches!(expr("Shape.Empty").kind, ExprKind::Property { .. }));
    }

    #[test]
    fn declarations() {
        let src = "@deprecated(since: \"0.8\", use: \"v2\")\n@test\npub fn add<T>(a: T, b: int = 1, ...rest) -> T where T: Num {\n  return a\n}\n\
                   gen fn nums() -> Stream<int> { emit 1 }\nfn g() { yield 1 }\nfn h() { let f = { -> yield 2 } }\n\
                   struct Point { x: int  y: int  z?: int }\nstruct Pair<A, B> { first: A, second: B }\n\
                   enum Option<T> { Some(value: T)\n None }\nimpl Point {\n  fn sum(self) { return self.x + self.y }\n}\n\
                   interface Repo<T> {\n  type Item = int\n  fn get(self, id: string) -> T\n  fn map<U>(self, f: fn(T) -> U) -> U\n}\n\
                   type Status = \"pass\" | \"fail\" | -1\ntype Cfg = {name: string, port?: int, type: [string]}\n\
                   import \"std/math\"\npub import { a, b } from \"lib/x\"\n\
                   pub pipeline build(task) -> int extends base { return 1 }\n\
                   tool search(q: string) -> string { description \"Search\"\n return q }\n\
                   skill review { description \"x\"\n on_activate fn() { log(1) } }\noverride foo(a) { }";
        let p = parse_ok(src);
        let kinds: Vec<_> =
            p.items.iter().map(|s| format!("{:?}", s.kind).split(['(', ' ', '{']).next().unwrap().to_string()).collect();
        assert_eq!(
            kinds,
            [
                "FnDecl",
                "FnDecl",
                "FnDecl",
                "FnDecl",
                "Struct",
                "Struct",
                "Enum",
                "Impl",
                "Interface",
                "TypeAlias",
                "TypeAlias",
                "Import",
                "Import",
                "Pipeline",
                "Unsupported",
                "Unsupported",
                "Unsupported"
            ]
        );
        let StmtKind::FnDecl(f) = &p.items[0].kind else { panic!() };
        assert!(f.is_pub && f.attributes.len() == 2 && f.params.len() == 3 && f.where_clauses.len() == 1);
        assert_eq!(f.attributes[0].args[1].name.as_deref(), Some("use"));
        let gens: Vec<_> = p.items[1..4]
            .iter()
            .map(|s| match &s.kind {
                StmtKind::FnDecl(f) => (f.is_stream, f.is_generator),
                _ => panic!(),
            })
            .collect();
        assert_eq!(gens, [(true, false), (false, true), (false, false)]);
        let StmtKind::Struct(s) = &p.items[4].kind else { panic!() };
        assert_eq!(s.fields.len(), 3);
        assert!(s.fields[2].optional);
        let StmtKind::Enum(e) = &p.items[6].kind else { panic!() };
        assert_eq!(e.variants.len(), 2);
        let StmtKind::Interface(i) = &p.items[8].kind else { panic!() };
        assert_eq!((i.methods.len(), i.assoc_types.len()), (2, 1));
        let StmtKind::TypeAlias(t) = &p.items[9].kind else { panic!() };
        assert_eq!(
            t.ty,
            TypeExpr::Union(vec![
                TypeExpr::StrLiteral("pass".into()),
                TypeExpr::StrLiteral("fail".into()),
                TypeExpr::IntLiteral(-1)
            ])
        );
        let StmtKind::Import(imp) = &p.items[12].kind else { panic!() };
        assert!(imp.is_pub && imp.names.as_ref().is_some_and(|n| n.len() == 2));
        let StmtKind::Pipeline(pl) = &p.items[13].kind else { panic!() };
        assert_eq!((pl.extends.as_deref(), pl.is_pub), (Some("base"), true));
    }

    #[test]
    fn concurrency_forms() {
        let src = "let a = parallel 3 { i -> i * 2 }\nlet b = parallel each xs with {max_concurrent: 2} { x -> x } as stream\n\
                   let c = parallel settle xs { x -> x }\nlet d = spawn { 1 }\nlet e = deadline 5s { 2 }\nretry (3) { f() }\nmutex { }\n\
                   select {\n  v from ch { log(v) }\n  timeout 10ms { }\n}\nselect { default { } }\ndefer { log(1) }\nguard x else { return }\nrequire x > 0, \"msg\"";
        let p = parse_ok(src);
        assert_eq!(p.items.len(), 12);
        let StmtKind::Let { value, .. } = &p.items[1].kind else { panic!() };
        let ExprKind::Parallel(par) = &value.kind else { panic!() };
        assert!(par.as_stream && par.options.is_some() && par.param.as_deref() == Some("x"));
        assert_eq!(par.kind, ParallelKind::Each);
    }

    #[test]
    fn struct_literal_lookahead() {
        assert!(matches!(first_stmt("if x { }"), StmtKind::Expr(Expr { kind: ExprKind::If { .. }, .. })));
        assert!(matches!(first_stmt("if Flag { }"), StmtKind::Expr(Expr { kind: ExprKind::If { .. }, .. })));
        let p = parse_ok("struct Empty {}\nlet e = Empty {}\nlet p = Point {\n  x: 1\n}");
        assert_eq!(p.items.len(), 3);
    }

    // ------------------------------------------------------------------
    // Robustness
    // ------------------------------------------------------------------

    /// Rust's default stack size for spawned (and test) threads. The deep
    /// nesting test also passes with 1.4 MiB in unoptimized builds.
    const STACK_TEST: usize = 2 << 20;
    /// Runs `f` on a thread with a `STACK_TEST` stack.
    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new().stack_size(STACK_TEST).spawn(f).unwrap().join().unwrap();
    }

    /// Height of a tree (test-only; trees are bounded by construction).
    fn height(e: &Expr) -> usize {
        let h = |x: &Expr| height(x);
        let block_h = |b: &Block| b.iter().map(stmt_height).max().unwrap_or(0);
        1 + match &e.kind {
            ExprKind::Binary { lhs, rhs, .. } => h(lhs).max(h(rhs)),
            ExprKind::Unary { operand, .. } | ExprKind::TryOp(operand) | ExprKind::TryStar(operand) => h(operand),
            ExprKind::Property { object, .. } => h(object),
            ExprKind::Index { object, index, .. } => h(object).max(h(index)),
            ExprKind::MethodCall { object, args, .. } => args
                .iter()
                .map(|a| {
                    h(match a {
                        Arg::Positional(x) | Arg::Spread(x) => x,
                    })
                })
                .fold(h(object), usize::max),
            ExprKind::Call { args, .. } => args
                .iter()
                .map(|a| {
                    h(match a {
                        Arg::Positional(x) | Arg::Spread(x) => x,
                    })
                })
                .max()
                .unwrap_or(0),
            ExprKind::List(items) => items
                .iter()
                .map(|i| {
                    h(match i {
                        ListElem::Item(x) | ListElem::Spread(x) => x,
                    })
                })
                .max()
                .unwrap_or(0),
            ExprKind::Dict(entries) => entries
                .iter()
                .map(|en| match en {
                    DictEntry::Pair { value, .. } | DictEntry::Spread(value) => h(value),
                })
                .max()
                .unwrap_or(0),
            ExprKind::Closure(c) => block_h(&c.body),
            ExprKind::If { cond, then, else_ } => h(cond).max(block_h(then)).max(match else_ {
                Some(ElseBranch::Block(b)) => block_h(b),
                Some(ElseBranch::If(x)) => h(x),
                None => 0,
            }),
            ExprKind::Ternary { cond, then, else_ } => h(cond).max(h(then)).max(h(else_)),
            ExprKind::InterpolatedStr(parts) => parts
                .iter()
                .map(|p| match p {
                    StrSegment::Expr(x) => h(x),
                    StrSegment::Lit(_) => 0,
                })
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }

    fn stmt_height(s: &Stmt) -> usize {
        1 + match &s.kind {
            StmtKind::Expr(e) | StmtKind::Let { value: e, .. } | StmtKind::Var { value: e, .. } => height(e),
            StmtKind::FnDecl(f) => f.body.iter().map(stmt_height).max().unwrap_or(0),
            _ => 0,
        }
    }

    fn program_height(p: &Program) -> usize {
        p.items.iter().map(stmt_height).max().unwrap_or(0)
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        on_small_stack(|| {
            let n = 100_000;
            let cases: Vec<(String, &str)> = vec![
                ("(".repeat(n), "("),
                ("[".repeat(n), "["),
                ("{".repeat(n), "{"),
                (format!("x = {}1", "!".repeat(n)), "!"),
                (format!("x = {}1", "- ".repeat(n)), "-"),
                (format!("x = {}1", "try* ".repeat(n)), "try*"),
                (format!("x = {}", vec!["1"; n].join(" + ")), "+"),
                (format!("x = {}", vec!["2"; n].join(" ** ")), "**"),
                (format!("x = a{}", ".b".repeat(n)), ".b"),
                (format!("x = a{}", "[0]".repeat(n)), "[0]"),
                (format!("x = a{}", " ?".repeat(n)), "?"),
                (format!("x = a{}", " |> f".repeat(n)), "|>"),
                (format!("x = {}1{}", "f(".repeat(n), ")".repeat(n)), "f("),
                (format!("x = {}1{}", "{ -> ".repeat(n), "}".repeat(n)), "closures"),
                (format!("x = {}", "if a { 1 } else ".repeat(n) + "{ 2 }"), "else if"),
                (format!("fn f() {{ {} }}", "if a { ".repeat(n)), "blocks"),
                ("\"${\"".repeat(2000), "interpolation"),
                (format!("type T = {}int{}", "list<".repeat(n), ">".repeat(n)), "types"),
                (format!("x = {}", vec!["a"; n].join(" < ")), "comparisons"),
                (format!("x = f<{}int", "list<".repeat(n)), "type arguments"),
                (format!("x = {}1", "{a: ".repeat(n)), "dicts"),
                (format!("x = {}1", "Point {a: ".repeat(n)), "struct literals"),
                (format!("x = {}1", "[1, ".repeat(n)), "lists"),
                (format!("x = {}1", "o.m(".repeat(n)), "method calls"),
                (format!("x = {}1", "a[".repeat(n)), "subscripts"),
                (format!("x = {}1", "a[1:".repeat(n)), "slices"),
                (format!("x = {}1", "c ? (".repeat(n)), "ternaries"),
                (format!("x = {}1", "match x { _ -> { ".repeat(n)), "match arms"),
                (format!("x = {}1", "{ a -> ".repeat(n)), "closure bodies"),
                (format!("x = {}1", "fn() { ".repeat(n)), "fn expressions"),
                (format!("x = {}1", "try { ".repeat(n)), "try bodies"),
                (format!("x = {}1", "parallel each xs { x -> ".repeat(n)), "parallel bodies"),
                (format!("x = {}1", "spawn { ".repeat(n)), "spawn bodies"),
                ((0..1000).fold("1".to_string(), |s, _| format!("\"${{{s}}}\"")), "interpolations"),
                (format!("fn f() {{ {} }}", "while a { ".repeat(n)), "while bodies"),
                (format!("fn f() {{ {} }}", "for x in xs { ".repeat(n)), "for bodies"),
                (format!("fn f() {{ {} }}", "fn g() { ".repeat(n)), "fn bodies"),
                (format!("fn f(a = {}) {{ }}", "fn(a = ".repeat(n)), "param defaults"),
                (format!("let {{a = {}}} = 1", "{ x -> let {a = ".repeat(n)), "pattern defaults"),
                (format!("type T = {}int", "{a: ".repeat(n)), "shape types"),
                (format!("type T = {}int", "fn(".repeat(n)), "fn types"),
                (format!("x = {}1{}", "(".repeat(100), ")".repeat(100)), "ok-parens"),
                (format!("x = {}", vec!["(1 + 1)"; 5000].join(" + ")), "wide"),
            ];
            for (src, what) in cases {
                match parse(&src, "deep.harn") {
                    Ok(p) => assert!(program_height(&p) < 3 * MAX_AST_HEIGHT as usize, "{what}: too deep"),
                    Err(e) => {
                        let m = e.message();
                        let shallow_error = ["{", "interpolation"].contains(&what);
                        assert!(shallow_error || m.starts_with("Expression nesting too deep at "), "{what}: {m}");
                    }
                }
            }
            // Chains nested inside parentheses: height stays bounded.
            let mut src = String::from("1");
            for _ in 0..150 {
                src = format!("({src}{})", " + 1".repeat(20));
            }
            if let Ok(p) = parse(&format!("x = {src}"), "t") {
                assert!(program_height(&p) < 3 * MAX_AST_HEIGHT as usize);
            }
            assert!(parse(&format!("x = {}1{}", "(".repeat(100), ")".repeat(100)), "t").is_ok());
            let deep = parse(&"(".repeat(1000), "t").unwrap_err().message();
            assert!(deep.starts_with("Expression nesting too deep at 1:"), "{deep}");
        });
    }

    fn sample_sources() -> Vec<String> {
        let mut v = vec![
            "pipeline default(task) {\n  let xs = [1, 2, 3] |> map(_, { x -> x * 2 })\n  for (i, x) in iter(xs).enumerate() {\n    log(\"${i}: ${x}\")\n  }\n  match xs { [a, b] -> { a } _ -> { nil } }\n}\n".to_string(),
            "enum E { A(x), B }\nfn f(a, b = 2, ...c) -> int { return try { a?.b ?? c[0][1:2] } catch (e: E) { throw e } finally { } }\n".to_string(),
            "let s = \"\"\"\n  a ${b}\n  c\n  \"\"\"\nparallel each xs with {max_concurrent: 2} { x -> x } as stream\nselect { v from ch { } timeout 1s { } }\n".to_string(),
        ];
        for f in conformance_files().into_iter().take(40) {
            if let Ok(s) = std::fs::read_to_string(&f) {
                v.push(s);
            }
        }
        v
    }

    #[test]
    fn truncations_and_garbage_never_panic() {
        on_small_stack(|| {
            let sources = sample_sources();
            for src in &sources {
                let chars: Vec<char> = src.chars().collect();
                let step = (chars.len() / 400).max(1);
                for cut in (0..=chars.len()).step_by(step) {
                    let prefix: String = chars[..cut].iter().collect();
                    let _ = parse(&prefix, "cut.harn");
                }
            }
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let alphabet: Vec<char> = "(){}[]<>.,:;?!|&=+-*/%\"'$\\@#_ \n\tabcxyz019rsmh\u{e9}\u{1F389}"
                .chars()
                .chain(
                    ["let", "fn", "if", "else", "match", "->", "...", "${", "\"\"\"", "try", "parallel"]
                        .iter()
                        .flat_map(|s| s.chars()),
                )
                .collect();
            for _ in 0..3000 {
                let len = rng.index(80);
                let s: String = (0..len).map(|_| alphabet[rng.index(alphabet.len())]).collect();
                let _ = parse(&s, "garbage.harn");
            }
            // Token-level mutations of real programs.
            for src in &sources {
                let chars: Vec<char> = src.chars().collect();
                if chars.is_empty() {
                    continue;
                }
                for _ in 0..60 {
                    let mut c = chars.clone();
                    for _ in 0..3 {
                        let i = rng.index(c.len());
                        match rng.index(3) {
                            0 => {
                                c.remove(i);
                            }
                            1 => c.insert(i, alphabet[rng.index(alphabet.len())]),
                            _ => {
                                let j = rng.index(c.len());
                                c.swap(i, j)
                            }
                        }
                        if c.is_empty() {
                            break;
                        }
                    }
                    let s: String = c.into_iter().collect();
                    let _ = parse(&s, "mutated.harn");
                }
            }
        });
    }

    // ------------------------------------------------------------------
    // Conformance corpus
    // ------------------------------------------------------------------

    fn conformance_root() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance")
    }

    fn conformance_files() -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![conformance_root().join("tests"), conformance_root().join("errors")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "harn") {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn conformance_files_parse() {
        let root = conformance_root();
        if !root.is_dir() {
            eprintln!("note: {} not found; skipping the conformance parse test", root.display());
            return;
        }
        let files = conformance_files();
        assert!(!files.is_empty());
        let mut failures = Vec::new();
        for path in &files {
            let src = std::fs::read_to_string(path).unwrap();
            let expected = std::fs::read_to_string(path.with_extension("error")).ok();
            let name = path.strip_prefix(&root).unwrap_or(path).display().to_string();
            // Files that must fail in the front end: syntax error tests.
            let must_fail = name.contains("errors/syntax/") || (name.contains("/semicolon_") && name.ends_with("_invalid.harn"));
            match (parse(&src, &name), expected) {
                (Ok(_), _) if !must_fail => {}
                (Ok(_), _) => failures.push(format!("{name}: parsed, but a syntax error is expected")),
                (Err(e), Some(expected)) => {
                    let msg = e.message();
                    let matched = expected.trim_end().lines().any(|l| !l.starts_with("re:") && msg.contains(l));
                    if !matched {
                        failures.push(format!("{name}: error {msg:?} does not match {expected:?}"));
                    }
                }
                (Err(e), None) => failures.push(format!("{name}: {}", e.message())),
            }
        }
        assert!(failures.is_empty(), "{} of {} files:\n{}", failures.len(), files.len(), failures.join("\n"));
    }
}
