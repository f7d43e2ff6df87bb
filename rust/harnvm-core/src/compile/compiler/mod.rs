//! The compiler: AST → `FunctionProto`s.
//!
//! Names are resolved here, once: a local becomes a frame slot, a variable of
//! an enclosing function becomes a capture (Harn captures by value, at
//! closure creation), a top-level fn becomes a module-global slot, and
//! anything else a builtin id. The VM never looks a name up in a map.
//!
//! `finally` and `defer` bodies are inlined on every exit path (normal end,
//! `return`, `break`, `continue`) and run from a catch-all handler on a
//! throw, which gives exactly-once semantics.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::builtins;
use crate::bytecode::chunk::{BinaryForm, CaptureSource, Chunk, FunctionProto, Op, Param as ProtoParam};
use crate::bytecode::Program as CompiledProgram;
use crate::runtime::error::{Phase, VmError, VmResult};
use crate::runtime::value::Value;
use crate::syntax::ast::*;
use crate::syntax::pos::Pos;

// Imports and imported modules' top levels (module globals for `let`/`var`).
mod module_unit;
pub use module_unit::compile_module_unit;

/// Compiles a parsed file that has no imports into a runnable program.
/// Compiles an entry file whose imports are already resolved.
pub fn compile_entry_program(
    program: &crate::syntax::ast::Program,
    source: &str,
    file: &str,
    imports: Vec<crate::compile::modules::ResolvedImport>,
) -> VmResult<Rc<CompiledProgram>> {
    let mut c = Compiler::new(file);
    c.imports = imports;
    c.declare_import_globals();
    c.prescan(&program.items);
    c.begin_function("<main>".to_string(), None, Pos { line: 1, column: 1 });
    c.compile_entry(&program.items)?;
    let main = c.end_function();
    Ok(Rc::new(CompiledProgram {
        main: Rc::new(main),
        file: file.to_string(),
        source: Rc::from(source),
        globals: c.globals.clone(),
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LocalKind {
    /// A value in the slot.
    Plain,
    /// A cell in the slot (fn declarations, so earlier closures see them).
    Cell,
}

struct Local {
    name: String,
    slot: u16,
    mutable: bool,
    kind: LocalKind,
}

/// What crossing out of a construct requires on `return`/`break`/`continue`.
enum Exit {
    /// An exception handler to pop (`TryEnd`).
    Handler,
    /// A handler to pop and then a `finally`/`defer` body to inline.
    Finally(Block),
    /// A loop boundary: `break`/`continue` stop here.
    Loop { break_jumps: Vec<usize>, continue_target: Option<usize>, height_slot: u16 },
}

struct FnState {
    proto: FunctionProto,
    scopes: Vec<Vec<Local>>,
    /// Each local name in scope → where its declarations sit, oldest first
    /// (scope index, index in that scope): name lookups are a hash probe,
    /// not a scan of every local (which made compiling a function with
    /// tens of thousands of `let`s quadratic).
    names: rustc_hash::FxHashMap<String, Vec<(usize, usize)>>,
    captures: Vec<(String, CaptureSource, LocalKind, bool)>,
    self_name: Option<String>,
    exits: Vec<Exit>,
    next_slot: u16,
    /// Inside a fn, tool or pipeline body (where `try*` is allowed).
    is_function_body: bool,
}

enum Resolved {
    Local { slot: u16, mutable: bool, kind: LocalKind },
    Capture { index: u16, mutable: bool, kind: LocalKind },
    SelfRef,
    Global(u16),
    Builtin(u32),
    Unknown,
}

struct Compiler {
    file: Rc<str>,
    fns: Vec<FnState>,
    globals: Vec<String>,
    global_index: HashMap<String, u16>,
    structs: HashSet<String>,
    /// Type aliases and interfaces, for schema lowering and parameter checks.
    types: crate::compile::types::TypeEnv,
    pos: Pos,
    /// (is_generator, is_stream) of the next function `compile_function` builds.
    next_fn_flavor: (bool, bool),
    /// The file's resolved imports, in source order.
    imports: Vec<crate::compile::modules::ResolvedImport>,
    /// Compiling an imported module: top-level `let`/`var`s are module globals.
    module_mode: bool,
    /// Module globals that `var` made assignable.
    mutable_globals: HashSet<u16>,
    /// The interned string constants (see `intern`).
    strings: HashSet<HStrConst>,
}

/// A string constant (`Value::Str`'s payload).
type HStrConst = Rc<String>;

type CResult<T = ()> = VmResult<T>;

impl Compiler {
    fn new(file: &str) -> Compiler {
        Compiler {
            file: Rc::from(file),
            fns: Vec::new(),
            globals: Vec::new(),
            global_index: HashMap::new(),
            structs: HashSet::new(),
            types: crate::compile::types::TypeEnv::default(),
            pos: Pos { line: 1, column: 1 },
            next_fn_flavor: (false, false),
            imports: Vec::new(),
            module_mode: false,
            mutable_globals: HashSet::new(),
            strings: HashSet::new(),
        }
    }

    fn error(&self, msg: impl Into<String>) -> VmError {
        VmError::syntax(Phase::Compile, msg, self.pos.line, self.pos.column)
    }

    /// Records top-level fn names (module globals) and every struct name.
    fn prescan(&mut self, items: &[Stmt]) {
        for s in items {
            if let StmtKind::FnDecl(f) = &s.kind {
                if !self.global_index.contains_key(&f.name) {
                    self.global_index.insert(f.name.clone(), self.globals.len() as u16);
                    self.globals.push(f.name.clone());
                }
            }
        }
        fn walk_structs(stmts: &[Stmt], out: &mut HashSet<String>) {
            for s in stmts {
                match &s.kind {
                    StmtKind::Struct(d) => {
                        out.insert(d.name.clone());
                    }
                    StmtKind::FnDecl(f) => walk_structs(&f.body, out),
                    StmtKind::Pipeline(p) => walk_structs(&p.body, out),
                    _ => {}
                }
            }
        }
        walk_structs(items, &mut self.structs);
        fn walk_types(stmts: &[Stmt], env: &mut crate::compile::types::TypeEnv) {
            for s in stmts {
                match &s.kind {
                    StmtKind::TypeAlias(a) => {
                        let params = a.type_params.iter().map(|p| p.name.clone()).collect();
                        env.aliases.insert(a.name.clone(), (params, a.ty.clone()));
                    }
                    StmtKind::Interface(i) => {
                        env.interfaces.insert(i.name.clone(), i.methods.iter().map(|m| m.name.clone()).collect());
                    }
                    StmtKind::FnDecl(f) => walk_types(&f.body, env),
                    StmtKind::Pipeline(p) => walk_types(&p.body, env),
                    _ => {}
                }
            }
        }
        walk_types(items, &mut self.types);
    }

    // -----------------------------------------------------------------------
    // Functions and scopes

    fn begin_function(&mut self, name: String, self_name: Option<String>, pos: Pos) {
        let forwards_output = self.file.starts_with(crate::compile::prelude::FILE_PREFIX);
        let proto = FunctionProto { name, file: self.file.clone(), forwards_output, ..Default::default() };
        self.pos = pos;
        self.fns.push(FnState {
            proto,
            scopes: vec![Vec::new()],
            names: rustc_hash::FxHashMap::default(),
            captures: Vec::new(),
            self_name,
            exits: Vec::new(),
            next_slot: 0,
            is_function_body: false,
        });
    }

    fn end_function(&mut self) -> FunctionProto {
        let mut st = self.fns.pop().expect("function state");
        // Falling off the end returns the value on the stack (the block value).
        st.proto.chunk.emit(Op::Return, &[], self.pos);
        st.proto.num_locals = st.next_slot;
        st.proto.captures = st.captures.iter().map(|c| c.1).collect();
        st.proto.capture_names = st.captures.iter().map(|c| c.0.clone()).collect();
        st.proto
    }

    fn f(&mut self) -> &mut FnState {
        self.fns.last_mut().expect("inside a function")
    }

    fn chunk(&mut self) -> &mut Chunk {
        &mut self.f().proto.chunk
    }

    fn push_scope(&mut self) {
        self.f().scopes.push(Vec::new());
    }

    fn pop_scope(&mut self) {
        let st = self.f();
        let Some(scope) = st.scopes.pop() else { return };
        for local in scope.iter().rev() {
            if let Some(places) = st.names.get_mut(&local.name) {
                places.pop();
                if places.is_empty() {
                    st.names.remove(&local.name);
                }
            }
        }
    }

    fn new_slot(&mut self, name: &str) -> CResult<u16> {
        let st = self.f();
        let slot = st.next_slot;
        if slot == u16::MAX {
            return Err(self.error("too many local variables in one function"));
        }
        let st = self.f();
        st.next_slot += 1;
        st.proto.local_names.push(name.to_string());
        Ok(slot)
    }

    /// A slot for compiler temporaries, invisible to name resolution.
    fn hidden_slot(&mut self, what: &str) -> CResult<u16> {
        self.new_slot(&format!("<{what}>"))
    }

    fn declare(&mut self, name: &str, mutable: bool, kind: LocalKind) -> CResult<u16> {
        let slot = self.new_slot(name)?;
        let st = self.f();
        let scope_index = st.scopes.len() - 1;
        let scope = st.scopes.last_mut().expect("scope");
        st.names.entry(name.to_string()).or_default().push((scope_index, scope.len()));
        scope.push(Local { name: name.to_string(), slot, mutable, kind });
        Ok(slot)
    }

    /// The immutable binding of `name` in the innermost scope, if any (redeclaration check).
    fn immutable_in_current_scope(&mut self, name: &str) -> bool {
        let st = self.f();
        let current = st.scopes.len() - 1;
        let Some(places) = st.names.get(name) else { return false };
        places.iter().rev().take_while(|(s, _)| *s == current).any(|&(s, i)| !st.scopes[s][i].mutable)
    }

    fn resolve(&mut self, name: &str) -> Resolved {
        let depth = self.fns.len() - 1;
        if let Some(r) = self.resolve_in(depth, name) {
            return r;
        }
        if let Some(&g) = self.global_index.get(name) {
            return Resolved::Global(g);
        }
        match builtins::builtin_id(name) {
            Some(id) => Resolved::Builtin(id),
            None => Resolved::Unknown,
        }
    }

    /// Resolves `name` as a local, self reference or capture of function `depth`.
    fn resolve_in(&mut self, depth: usize, name: &str) -> Option<Resolved> {
        let st = &self.fns[depth];
        // The newest declaration still in scope is the innermost one.
        if let Some(&(s, i)) = st.names.get(name).and_then(|places| places.last()) {
            let l = &st.scopes[s][i];
            return Some(Resolved::Local { slot: l.slot, mutable: l.mutable, kind: l.kind });
        }
        if st.self_name.as_deref() == Some(name) {
            return Some(Resolved::SelfRef);
        }
        if let Some(i) = st.captures.iter().position(|c| c.0 == name) {
            let (_, _, kind, mutable) = st.captures[i];
            return Some(Resolved::Capture { index: i as u16, mutable, kind });
        }
        if depth == 0 {
            return None;
        }
        let (source, kind, mutable) = match self.resolve_in(depth - 1, name)? {
            Resolved::Local { slot, mutable, kind } => (CaptureSource::Local(slot), kind, mutable),
            Resolved::Capture { index, mutable, kind } => (CaptureSource::Capture(index), kind, mutable),
            Resolved::SelfRef => (CaptureSource::SelfClosure, LocalKind::Plain, false),
            other => return Some(other),
        };
        let st = &mut self.fns[depth];
        st.captures.push((name.to_string(), source, kind, mutable));
        Some(Resolved::Capture { index: (st.captures.len() - 1) as u16, mutable, kind })
    }

    // -----------------------------------------------------------------------
    // Emitting

    fn emit(&mut self, op: Op, operands: &[u32]) -> usize {
        let pos = self.pos;
        self.chunk().emit(op, operands, pos)
    }

    fn here(&mut self) -> usize {
        self.chunk().code.len()
    }

    /// Emits a jump-like op whose `Jump` operand is a target to patch later
    /// (`leading` are the explicit operands before it; a `Cache` operand
    /// may follow it); returns the position of the jump operand.
    fn emit_jump(&mut self, op: Op, leading: &[u32]) -> usize {
        let mut operands = leading.to_vec();
        operands.push(u32::MAX);
        let at = self.emit(op, &operands);
        let before: usize = op.operands()[..leading.len()].iter().map(|k| k.width()).sum();
        debug_assert_eq!(op.operands()[leading.len()], crate::bytecode::chunk::Operand::Jump);
        at + 1 + before
    }

    fn patch(&mut self, operand_at: usize) {
        let target = self.here() as u32;
        self.chunk().patch_u32(operand_at, target);
    }

    fn patch_to(&mut self, operand_at: usize, target: usize) {
        self.chunk().patch_u32(operand_at, target as u32);
    }

    fn constant(&mut self, v: Value) -> CResult<u32> {
        if self.chunk().constants.len() >= u16::MAX as usize {
            return Err(self.error("too many constants in one function"));
        }
        let v = match &v {
            Value::Str(s) => Value::Str(self.intern(Rc::clone(s))),
            _ => v,
        };
        Ok(self.chunk().add_constant(v) as u32)
    }

    /// One `Rc` per distinct string constant of the compilation: dict
    /// literal keys and property names then share it, so a dict slot's key
    /// is compared with a site's name by pointer (`ic::dict_slot_read`).
    fn intern(&mut self, s: HStrConst) -> HStrConst {
        match self.strings.get(&s) {
            Some(shared) => Rc::clone(shared),
            None => {
                self.strings.insert(Rc::clone(&s));
                s
            }
        }
    }

    fn name_const(&mut self, name: &str) -> CResult<u32> {
        self.constant(Value::str(name))
    }

    fn emit_const(&mut self, v: Value) -> CResult {
        let k = self.constant(v)?;
        self.emit(Op::Const, &[k]);
        Ok(())
    }

    fn emit_named(&mut self, op: Op, name: &str) -> CResult {
        let k = self.name_const(name)?;
        self.emit(op, &[k]);
        Ok(())
    }

    /// The slot of `e` when it names a plain (non-cell) local of this
    /// function: such a read has no effects, so fused ops may do it in place.
    fn plain_local(&mut self, e: &Expr) -> Option<u16> {
        match &e.kind {
            ExprKind::Ident(name) => match self.resolve(name) {
                Resolved::Local { slot, kind: LocalKind::Plain, .. } => Some(slot),
                _ => None,
            },
            _ => None,
        }
    }

    fn emit_get_local(&mut self, slot: u16, kind: LocalKind) {
        match kind {
            LocalKind::Plain => self.emit(Op::GetLocal, &[slot as u32]),
            LocalKind::Cell => self.emit(Op::GetLocalCell, &[slot as u32]),
        };
    }

    // -----------------------------------------------------------------------
    // Program entry

    fn compile_entry(&mut self, items: &[Stmt]) -> CResult {
        // Imports run first, in both modes.
        self.emit_imports()?;
        let pipelines: Vec<&PipelineDecl> = items
            .iter()
            .filter_map(|s| match &s.kind {
                StmtKind::Pipeline(p) => Some(&**p),
                _ => None,
            })
            .collect();
        if pipelines.is_empty() {
            if let Some(call) = harness_main_call(items) {
                // harn 0.9's shape: top-level statements, then `main(harness)`,
                // whose result is the program's.
                let mut with_call = items.to_vec();
                with_call.push(call);
                return self.compile_block_value(&with_call);
            }
            // Script mode: everything in order.
            return self.compile_block_value(items);
        }
        let entry = pipelines.iter().find(|p| p.name == "default").copied().unwrap_or(pipelines[0]);
        self.f().is_function_body = true;
        // (Imports,) then top-level bindings, then declarations, then the entry body.
        for s in items {
            if matches!(s.kind, StmtKind::Let { .. } | StmtKind::Var { .. }) {
                self.compile_stmt(s)?;
            }
        }
        for s in items {
            if is_declaration(&s.kind) {
                self.compile_stmt(s)?;
            }
        }
        // `extends` chains run the parents' bodies first.
        let mut chain = vec![entry];
        let mut seen = HashSet::new();
        while let Some(parent) = chain.last().and_then(|p| p.extends.clone()) {
            if !seen.insert(parent.clone()) {
                break;
            }
            match pipelines.iter().find(|p| p.name == parent) {
                Some(p) => chain.push(p),
                None => break,
            }
        }
        for parent in chain.iter().skip(1).rev() {
            self.push_scope();
            self.compile_block_stmts(&parent.body)?;
            self.pop_scope();
        }
        self.push_scope();
        // The entry's parameters are the host's inputs to the run, by name.
        let at = entry.body.first().map_or(Pos::default(), |s| s.pos);
        let inputs: Vec<Stmt> = entry.params.iter().map(|p| run_input_binding(p, at)).collect();
        for s in &inputs {
            self.compile_stmt(s)?;
        }
        self.compile_block_value(&entry.body)?;
        self.pop_scope();
        Ok(())
    }

    // -----------------------------------------------------------------------
    // Blocks and statements

    /// Compiles a block leaving its value (last expression statement, else nil).
    fn compile_block_value(&mut self, stmts: &[Stmt]) -> CResult {
        self.predeclare_fns(stmts)?;
        for (i, s) in stmts.iter().enumerate() {
            if let StmtKind::Defer(body) = &s.kind {
                // The rest of the block runs under a `finally` of the deferred body.
                return self.compile_protected(&stmts[i + 1..], body, true);
            }
            let last = i + 1 == stmts.len();
            match (&s.kind, last) {
                (StmtKind::Expr(e), true) => {
                    self.pos = s.pos;
                    self.compile_expr(e)?;
                }
                _ => {
                    self.compile_stmt(s)?;
                    if last {
                        self.emit(Op::Nil, &[]);
                    }
                }
            }
        }
        if stmts.is_empty() {
            self.emit(Op::Nil, &[]);
        }
        Ok(())
    }

    /// Compiles a block for effect only: no statement leaves a value.
    fn compile_block_stmts(&mut self, stmts: &[Stmt]) -> CResult {
        if stmts.iter().any(|s| matches!(s.kind, StmtKind::Defer(_))) {
            // `defer` wraps the rest of the block in a protected region that leaves a value.
            self.compile_block_value(stmts)?;
            self.emit(Op::Pop, &[]);
            return Ok(());
        }
        self.predeclare_fns(stmts)?;
        for s in stmts {
            self.compile_stmt(s)?;
        }
        Ok(())
    }

    /// Compiles an expression statement: its value is dropped, so an `if`
    /// builds none.
    fn compile_effect(&mut self, e: &Expr) -> CResult {
        match &e.kind {
            ExprKind::If { cond, then, else_ } => {
                self.pos = e.pos;
                let other = self.compile_branch(cond, false)?;
                self.push_scope();
                self.compile_block_stmts(then)?;
                self.pop_scope();
                match else_ {
                    None => self.patch_all(other),
                    Some(branch) => {
                        let end = self.emit_jump(Op::Jump, &[]);
                        self.patch_all(other);
                        match branch {
                            ElseBranch::Block(b) => {
                                self.push_scope();
                                self.compile_block_stmts(b)?;
                                self.pop_scope();
                            }
                            ElseBranch::If(x) => self.compile_effect(x)?,
                        }
                        self.patch(end);
                    }
                }
                Ok(())
            }
            _ => {
                self.compile_expr(e)?;
                self.emit(Op::Pop, &[]);
                Ok(())
            }
        }
    }

    /// Compiles a condition as control flow: emits jumps taken when `cond`
    /// is truthy (`jump_when` true) or falsy, and returns their operands to
    /// patch; falls through otherwise. `&&`, `||` and `!` become jumps (no
    /// bool is built), a compare fuses with its jump, and a compare with a
    /// literal right operand also takes it as a constant operand.
    fn compile_branch(&mut self, cond: &Expr, jump_when: bool) -> CResult<Vec<usize>> {
        match &cond.kind {
            ExprKind::Binary { op: op @ (BinOp::And | BinOp::Or), lhs, rhs } => {
                // `&&` jumps when falsy on either side; `||` when truthy.
                let short_when = *op == BinOp::Or;
                if jump_when == short_when {
                    let mut jumps = self.compile_branch(lhs, jump_when)?;
                    jumps.extend(self.compile_branch(rhs, jump_when)?);
                    Ok(jumps)
                } else {
                    let skip = self.compile_branch(lhs, short_when)?;
                    let jumps = self.compile_branch(rhs, jump_when)?;
                    self.patch_all(skip);
                    Ok(jumps)
                }
            }
            ExprKind::Unary { op: UnaryOp::Not, operand } => self.compile_branch(operand, !jump_when),
            ExprKind::Bool(b) if *b != jump_when => Ok(Vec::new()),
            ExprKind::Binary { op, lhs, rhs } if !jump_when && binop_form(*op, BinaryForm::StackJump).is_some() => {
                let form = |form| binop_form(*op, form).expect("a compare has every jump form");
                let (stack_op, const_op, local_const_op) =
                    (form(BinaryForm::StackJump), form(BinaryForm::ConstJump), form(BinaryForm::LocalConstJump));
                if let Some(k) = literal_constant(rhs) {
                    if let Some(local) = self.plain_local(lhs) {
                        let k = self.constant(k)?;
                        self.pos = cond.pos;
                        return Ok(vec![self.emit_jump(local_const_op, &[local as u32, k])]);
                    }
                }
                self.compile_expr(lhs)?;
                match literal_constant(rhs) {
                    Some(k) => {
                        let k = self.constant(k)?;
                        self.pos = cond.pos;
                        Ok(vec![self.emit_jump(const_op, &[k])])
                    }
                    None => {
                        self.compile_expr(rhs)?;
                        self.pos = cond.pos;
                        Ok(vec![self.emit_jump(stack_op, &[])])
                    }
                }
            }
            _ => {
                self.compile_expr(cond)?;
                Ok(vec![self.emit_jump(if jump_when { Op::JumpIfTrue } else { Op::JumpIfFalse }, &[])])
            }
        }
    }

    fn patch_all(&mut self, jumps: Vec<usize>) {
        for j in jumps {
            self.patch(j);
        }
    }

    /// `fn` declarations inside a block are visible to every closure in the
    /// block, even ones created before the declaration runs: they live in cells.
    fn predeclare_fns(&mut self, stmts: &[Stmt]) -> CResult {
        if self.fns.len() == 1 && self.f().scopes.len() == 1 {
            // Top level of the entry file: fns are module globals.
            return Ok(());
        }
        for s in stmts {
            if let StmtKind::FnDecl(f) = &s.kind {
                let slot = self.declare(&f.name, false, LocalKind::Cell)?;
                self.emit(Op::NewCell, &[slot as u32]);
            }
        }
        Ok(())
    }

    fn compile_stmt(&mut self, s: &Stmt) -> CResult {
        crate::runtime::deep::grow(|| self.compile_stmt_inner(s))
    }

    fn compile_stmt_inner(&mut self, s: &Stmt) -> CResult {
        self.pos = s.pos;
        match &s.kind {
            StmtKind::Let { pattern, value, .. } => self.compile_binding(pattern, value, false),
            StmtKind::Var { pattern, value, .. } => self.compile_binding(pattern, value, true),
            StmtKind::Assign { target, op, value } => self.compile_assign(target, *op, value),
            StmtKind::Expr(e) => self.compile_effect(e),
            StmtKind::While { cond, body } => self.compile_while(cond, body),
            StmtKind::For { pattern, iterable, body } => self.compile_for(pattern, iterable, body),
            StmtKind::Break => self.compile_break_continue(true),
            StmtKind::Continue => self.compile_break_continue(false),
            StmtKind::Return(e) => self.compile_return(e.as_ref()),
            StmtKind::Throw(e) => {
                self.compile_expr(e)?;
                self.emit(Op::Throw, &[]);
                Ok(())
            }
            StmtKind::FnDecl(f) => self.compile_fn_decl(f),
            StmtKind::Struct(d) => {
                for field in &d.fields {
                    self.emit_const(Value::str(field.name.clone()))?;
                }
                self.emit(Op::BuildList, &[d.fields.len() as u32]);
                self.emit_named(Op::DefineStruct, &d.name)
            }
            StmtKind::Impl(d) => {
                for m in &d.methods {
                    self.emit_const(Value::str(m.name.clone()))?;
                    self.next_fn_flavor = (m.is_generator || m.is_stream, m.is_stream);
                    // 0.9.11 names impl methods `Type.method` (arity errors, tracebacks).
                    let qualified = format!("{}.{}", d.type_name, m.name);
                    self.compile_function(&qualified, &m.params, &m.body, None, m.pos)?;
                }
                self.emit(Op::BuildDict, &[d.methods.len() as u32]);
                self.emit_named(Op::DefineImpl, &d.type_name)
            }
            StmtKind::Enum(_) | StmtKind::Interface(_) | StmtKind::TypeAlias(_) | StmtKind::Pipeline(_) => Ok(()),
            StmtKind::Unsupported { .. } => Ok(()),
            // Top-level imports were emitted by `emit_imports`.
            StmtKind::Import(_) if self.fns.len() == 1 && self.f().scopes.len() == 1 => Ok(()),
            StmtKind::Import(_) => Err(self.error("import is only allowed at the top level of a file")),
            StmtKind::Guard { cond, else_body } => {
                self.compile_expr(cond)?;
                let end = self.emit_jump(Op::JumpIfTrue, &[]);
                self.push_scope();
                self.compile_block_stmts(else_body)?;
                self.pop_scope();
                self.patch(end);
                Ok(())
            }
            StmtKind::Require { cond, message } => {
                self.compile_expr(cond)?;
                let end = self.emit_jump(Op::JumpIfTrue, &[]);
                match message {
                    Some(m) => self.compile_expr(m)?,
                    None => self.emit_const(Value::str("require condition failed"))?,
                }
                self.emit(Op::Throw, &[]);
                self.patch(end);
                Ok(())
            }
            StmtKind::Defer(body) => {
                // Only reached when `defer` is not directly in a block (handled there).
                self.compile_protected(&[], body, false)?;
                self.emit(Op::Pop, &[]);
                Ok(())
            }
            StmtKind::Yield(v) => {
                if !self.f().proto.is_generator {
                    return Err(self.error("`yield` can only be used inside a function"));
                }
                match v {
                    Some(v) => self.compile_expr(v)?,
                    None => {
                        self.emit(Op::Nil, &[]);
                    }
                }
                self.emit(Op::Yield, &[]);
                Ok(())
            }
            StmtKind::Emit(v) => {
                if !self.f().proto.is_generator {
                    return Err(self.error("`emit` can only be used inside a `gen fn`"));
                }
                self.compile_expr(v)?;
                self.emit(Op::Yield, &[]);
                Ok(())
            }
            StmtKind::Mutex(body) => {
                // Acquire (may wait), run the body, release on every exit path.
                self.emit_sched_call("__mutex_acquire", 0)?;
                self.emit(Op::Pop, &[]);
                let fin = self.synthetic_call_block("__mutex_release");
                self.compile_protected(body, &fin, true)?;
                self.emit(Op::Pop, &[]);
                Ok(())
            }
            StmtKind::Select(sel) => self.compile_select(sel),
        }
    }

    fn compile_fn_decl(&mut self, f: &FnDecl) -> CResult {
        let target = self.resolve(&f.name);
        self.next_fn_flavor = (f.is_generator || f.is_stream, f.is_stream);
        self.compile_function(&f.name, &f.params, &f.body, Some(f.name.clone()), f.pos)?;
        match target {
            Resolved::Local { slot, kind: LocalKind::Cell, .. } => {
                self.emit(Op::SetLocalCell, &[slot as u32]);
            }
            Resolved::Global(g) if self.fns.len() == 1 => {
                self.emit(Op::SetGlobal, &[g as u32]);
            }
            _ => {
                let slot = self.declare(&f.name, false, LocalKind::Plain)?;
                self.emit(Op::SetLocal, &[slot as u32]);
            }
        }
        Ok(())
    }

    /// Compiles a nested function and emits `Closure` to create it.
    fn compile_function(
        &mut self,
        name: &str,
        params: &[crate::syntax::ast::Param],
        body: &Block,
        self_name: Option<String>,
        pos: Pos,
    ) -> CResult {
        let outer_pos = self.pos;
        let (is_generator, is_stream) = std::mem::take(&mut self.next_fn_flavor);
        self.begin_function(name.to_string(), self_name, pos);
        self.f().is_function_body = true;
        self.f().proto.is_generator = is_generator;
        self.f().proto.is_stream = is_stream;
        let mut seen_default = false;
        for p in params {
            if p.rest && !std::ptr::eq(p, params.last().expect("non-empty")) {
                return Err(self.error("Rest parameter must be the last parameter"));
            }
            if p.default.is_some() {
                seen_default = true;
            } else if seen_default && !p.rest {
                return Err(self.error("Required parameter cannot follow a parameter with a default value"));
            }
            self.declare(&p.name, true, LocalKind::Plain)?;
            self.f().proto.params.push(ProtoParam { name: p.name.clone(), has_default: p.default.is_some(), rest: p.rest });
        }
        self.f().proto.has_rest = params.last().is_some_and(|p| p.rest);
        for (i, p) in params.iter().enumerate() {
            if let Some(d) = &p.default {
                self.pos = p.pos;
                let skip = self.emit_jump(Op::JumpIfArg, &[i as u32]);
                self.compile_expr(d)?;
                self.emit(Op::SetLocal, &[i as u32]);
                self.patch(skip);
            }
        }
        self.emit_param_checks(params)?;
        self.localize_assigned_captures(body)?;
        self.push_scope();
        self.compile_block_value(body)?;
        self.pop_scope();
        let mut proto = self.end_function();
        crate::compile::liveness::move_last_uses(&mut proto.chunk, proto.num_locals);
        self.pos = outer_pos;
        let idx = self.chunk().functions.len();
        if idx >= u16::MAX as usize {
            return Err(self.error("too many nested functions"));
        }
        self.chunk().functions.push(Rc::new(proto));
        self.emit(Op::Closure, &[idx as u32]);
        Ok(())
    }

    /// Annotated parameters whose type Harn checks at runtime get a
    /// `CheckParam` against the lowered schema; untyped ones cost nothing.
    fn emit_param_checks(&mut self, params: &[crate::syntax::ast::Param]) -> CResult {
        for (i, p) in params.iter().enumerate() {
            let Some(schema) = p.ty.as_ref().filter(|_| !p.rest).and_then(|ty| self.types.param_schema(ty)) else {
                continue;
            };
            self.pos = p.pos;
            self.emit(Op::GetLocal, &[i as u32]);
            self.emit_const(schema)?;
            self.emit_named(Op::CheckParam, &p.name)?;
        }
        Ok(())
    }

    /// A closure's writes to captured variables stay local to the call: such
    /// captures are copied into fresh local slots on entry.
    fn localize_assigned_captures(&mut self, body: &Block) -> CResult {
        let mut assigned = Vec::new();
        collect_assigned(body, &mut assigned);
        for name in assigned {
            if self.f().names.contains_key(&name) {
                continue;
            }
            let depth = self.fns.len() - 1;
            if let Some(Resolved::Capture { index, mutable, kind }) = self.resolve_in(depth, &name) {
                match kind {
                    LocalKind::Plain => self.emit(Op::GetCapture, &[index as u32]),
                    LocalKind::Cell => self.emit(Op::GetCaptureCell, &[index as u32]),
                };
                let slot = self.declare(&name, mutable, LocalKind::Plain)?;
                self.emit(Op::SetLocal, &[slot as u32]);
            }
        }
        Ok(())
    }

    // --- bindings and assignment

    fn compile_binding(&mut self, pattern: &Pattern, value: &Expr, mutable: bool) -> CResult {
        self.compile_expr(value)?;
        self.bind_pattern(pattern, mutable)
    }

    /// Binds the value on top of the stack to `pattern` (consuming it).
    fn bind_pattern(&mut self, pattern: &Pattern, mutable: bool) -> CResult {
        match pattern {
            Pattern::Ident(name) => self.bind_name(name, mutable),
            Pattern::Wildcard => {
                self.emit(Op::Pop, &[]);
                Ok(())
            }
            Pattern::Dict { entries, rest } => {
                self.emit(Op::CheckDestructure, &[0]);
                let tmp = self.hidden_slot("destructure")?;
                self.emit(Op::SetLocal, &[tmp as u32]);
                for e in entries {
                    self.bind_element(tmp, Value::str(e.key.clone()), e.default.as_ref(), e.binding.as_deref(), mutable)?;
                }
                if let Some(r) = rest {
                    self.emit(Op::GetLocal, &[tmp as u32]);
                    for e in entries {
                        self.emit_const(Value::str(e.key.clone()))?;
                    }
                    self.emit(Op::BuildList, &[entries.len() as u32]);
                    self.emit(Op::DictRest, &[]);
                    self.bind_name(r, mutable)?;
                }
                Ok(())
            }
            Pattern::List { elements, rest } => {
                self.emit(Op::CheckDestructure, &[1]);
                let tmp = self.hidden_slot("destructure")?;
                self.emit(Op::SetLocal, &[tmp as u32]);
                for (i, e) in elements.iter().enumerate() {
                    self.bind_element(tmp, Value::Int(i as i64), e.default.as_ref(), e.binding.as_deref(), mutable)?;
                }
                if let Some(r) = rest {
                    self.emit(Op::GetLocal, &[tmp as u32]);
                    self.emit_const(Value::Int(elements.len() as i64))?;
                    self.emit(Op::Nil, &[]);
                    self.emit(Op::Slice, &[]);
                    self.bind_name(r, mutable)?;
                }
                Ok(())
            }
            Pattern::Pair(a, b) => {
                let tmp = self.hidden_slot("pair")?;
                self.emit(Op::SetLocal, &[tmp as u32]);
                for (name, prop) in [(a, "first"), (b, "second")] {
                    self.emit(Op::GetLocal, &[tmp as u32]);
                    self.emit_named(Op::GetProp, prop)?;
                    match name {
                        Some(n) => self.bind_name(n, mutable)?,
                        None => {
                            self.emit(Op::Pop, &[]);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Binds `container[key]` (container in local `tmp`) to `binding`, or
    /// discards it for `_`, applying the default when the element is nil.
    fn bind_element(&mut self, tmp: u16, key: Value, default: Option<&Expr>, binding: Option<&str>, mutable: bool) -> CResult {
        self.emit(Op::GetLocal, &[tmp as u32]);
        self.emit_const(key)?;
        self.emit(Op::Index, &[]);
        self.apply_default(default)?;
        match binding {
            Some(b) => self.bind_name(b, mutable),
            None => {
                self.emit(Op::Pop, &[]);
                Ok(())
            }
        }
    }

    /// Replaces a nil on top of the stack with the default (evaluated lazily).
    fn apply_default(&mut self, default: Option<&Expr>) -> CResult {
        if let Some(d) = default {
            let end = self.emit_jump(Op::JumpIfNotNil, &[]);
            self.compile_expr(d)?;
            self.patch(end);
        }
        Ok(())
    }

    fn bind_name(&mut self, name: &str, mutable: bool) -> CResult {
        if let Some(g) = self.module_global_binding(name) {
            self.emit(Op::SetGlobal, &[g as u32]);
            return Ok(());
        }
        if self.immutable_in_current_scope(name) {
            self.emit_named(Op::ThrowRedeclare, name)?;
        }
        let slot = self.declare(name, mutable, LocalKind::Plain)?;
        self.emit(Op::SetLocal, &[slot as u32]);
        Ok(())
    }

    fn compile_assign(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr) -> CResult {
        match &target.kind {
            ExprKind::Ident(name) => {
                let resolved = self.resolve(name);
                if let Resolved::Local { slot, mutable: true, kind: LocalKind::Plain } = resolved {
                    if self.compile_list_growth(name, slot as usize, op, value)? {
                        return Ok(());
                    }
                    if let Some((update, k)) = self.in_place_update(name, op, value) {
                        let k = self.constant(k)?;
                        self.pos = value.pos;
                        self.emit(update, &[slot as u32, k]);
                        return Ok(());
                    }
                }
                self.compile_assigned_value(target, op, value)?;
                self.pos = target.pos;
                match resolved {
                    Resolved::Local { slot, mutable: true, kind: LocalKind::Plain } => {
                        self.emit(Op::SetLocal, &[slot as u32]);
                    }
                    Resolved::Global(g) if self.mutable_globals.contains(&g) => {
                        self.emit(Op::SetGlobal, &[g as u32]);
                    }
                    Resolved::Local { .. } | Resolved::Capture { .. } | Resolved::SelfRef | Resolved::Global(_) => {
                        self.emit_named(Op::ThrowImmutable, name)?;
                    }
                    Resolved::Builtin(_) | Resolved::Unknown => {
                        self.emit_named(Op::ThrowUndefined, name)?;
                    }
                }
                Ok(())
            }
            ExprKind::Property { .. } | ExprKind::Index { .. } => {
                let mut keys = Vec::new();
                let root = assignment_root(target, &mut keys);
                let Some(root_name) = root else {
                    // Not rooted at a variable: evaluate for effect, nothing to assign.
                    self.compile_expr(value)?;
                    self.emit(Op::Pop, &[]);
                    return Ok(());
                };
                let resolved = self.resolve(root_name);
                if let (Resolved::Local { slot, mutable: true, kind: LocalKind::Plain }, [PathKey::Name(field)]) =
                    (&resolved, keys.as_slice())
                {
                    // `local.name = v`: the key is the op's operand, and the
                    // site caches the struct field's slot.
                    let k = self.name_const(field)?;
                    self.compile_assigned_value(target, op, value)?;
                    self.pos = target.pos;
                    self.emit(Op::SetLocalField, &[*slot as u32, k]);
                    return Ok(());
                }
                for k in &keys {
                    match k {
                        PathKey::Name(n) => self.emit_const(Value::str(n.clone()))?,
                        PathKey::Expr(e) => self.compile_expr(e)?,
                    }
                }
                self.compile_assigned_value(target, op, value)?;
                self.pos = target.pos;
                let n = keys.len();
                if n > u8::MAX as usize {
                    return Err(self.error("assignment target nested too deeply"));
                }
                match resolved {
                    Resolved::Local { slot, mutable: true, kind: LocalKind::Plain } => {
                        self.emit(Op::SetPathLocal, &[slot as u32, n as u32]);
                    }
                    Resolved::Global(g) if self.mutable_globals.contains(&g) => {
                        self.emit(Op::SetPathGlobal, &[g as u32, n as u32]);
                    }
                    Resolved::Builtin(_) | Resolved::Unknown => {
                        self.emit_named(Op::ThrowUndefined, root_name)?;
                    }
                    _ => {
                        self.emit_named(Op::ThrowImmutable, root_name)?;
                    }
                }
                Ok(())
            }
            _ => Err(self.error("invalid assignment target")),
        }
    }

    /// `x = x.push(e)`, `x = x + [e1, ..]` and `x += [e1, ..]` on a mutable
    /// plain local: the elements are evaluated first (they cannot assign `x`,
    /// see `cannot_assign`), then `LIST_PUSH_LOCAL`/`LIST_EXTEND_LOCAL` grow
    /// a list in place and jump past the generic code, which any other value
    /// runs as before (`CALL_METHOD push` or `ADD`, then `SET_LOCAL`).
    /// Returns whether it compiled the assignment.
    fn compile_list_growth(&mut self, name: &str, slot: usize, op: Option<BinOp>, value: &Expr) -> CResult<bool> {
        let is_x = |e: &Expr| matches!(&e.kind, ExprKind::Ident(n) if n == name);
        match (op, &value.kind) {
            (None, ExprKind::MethodCall { object, name: method, args, optional: false }) if method == "push" && is_x(object) => {
                let [Arg::Positional(item)] = args.as_slice() else { return Ok(false) };
                if !cannot_assign(item) {
                    return Ok(false);
                }
                self.compile_expr(item)?;
                let k = self.name_const(method)?;
                self.pos = value.pos;
                let done = self.emit_jump(Op::ListPushLocal, &[slot as u32]);
                self.emit(Op::CallMethod, &[k, 1]);
                self.pos = value.pos;
                self.emit(Op::SetLocal, &[slot as u32]);
                self.patch(done);
                Ok(true)
            }
            (Some(BinOp::Add), ExprKind::List(elems)) => self.compile_list_extend(slot, elems, value.pos, value.pos),
            (None, ExprKind::Binary { op: BinOp::Add, lhs, rhs }) if is_x(lhs) => match &rhs.kind {
                ExprKind::List(elems) => self.compile_list_extend(slot, elems, value.pos, value.pos),
                _ => Ok(false),
            },
            _ => Ok(false),
        }
    }

    fn compile_list_extend(&mut self, slot: usize, elems: &[ListElem], add_pos: Pos, set_pos: Pos) -> CResult<bool> {
        let mut items = Vec::with_capacity(elems.len());
        for e in elems {
            match e {
                ListElem::Item(x) if cannot_assign(x) => items.push(x),
                _ => return Ok(false),
            }
        }
        if items.len() > u16::MAX as usize {
            return Ok(false);
        }
        for x in &items {
            self.compile_expr(x)?;
        }
        self.pos = add_pos;
        let done = self.emit_jump(Op::ListExtendLocal, &[slot as u32, items.len() as u32]);
        self.emit(Op::Add, &[]);
        self.pos = set_pos;
        self.emit(Op::SetLocal, &[slot as u32]);
        self.patch(done);
        Ok(true)
    }

    /// `x = x + k`, `x = x - k`, `x += k` and `x -= k` with a literal `k`:
    /// the in-place update op and `k` (the variable is a mutable plain local).
    fn in_place_update(&mut self, name: &str, op: Option<BinOp>, value: &Expr) -> Option<(Op, Value)> {
        let (op, k) = match (op, &value.kind) {
            (Some(op), _) => (op, value),
            (None, ExprKind::Binary { op, lhs, rhs }) if matches!(&lhs.kind, ExprKind::Ident(n) if n == name) => (*op, &**rhs),
            _ => return None,
        };
        let update = binop_form(op, BinaryForm::LocalConstSet)?;
        Some((update, literal_constant(k)?))
    }

    fn compile_assigned_value(&mut self, target: &Expr, op: Option<BinOp>, value: &Expr) -> CResult {
        match op {
            None => self.compile_expr(value),
            Some(op) => {
                self.compile_expr(target)?;
                self.compile_expr(value)?;
                self.emit(binop_opcode(op).expect("compiled with jumps"), &[]);
                Ok(())
            }
        }
    }

    // --- loops and non-local exits

    fn compile_while(&mut self, cond: &Expr, body: &Block) -> CResult {
        let height_slot = self.hidden_slot("height")?;
        self.emit(Op::SaveHeight, &[height_slot as u32]);
        let top = self.here();
        let exits = self.compile_branch(cond, false)?;
        self.f().exits.push(Exit::Loop { break_jumps: vec![], continue_target: Some(top), height_slot });
        self.push_scope();
        self.compile_block_stmts(body)?;
        self.pop_scope();
        self.emit_loop_jump(top);
        self.finish_loop(exits)
    }

    fn compile_for(&mut self, pattern: &Pattern, iterable: &Expr, body: &Block) -> CResult {
        self.compile_expr(iterable)?;
        let iter_slot = self.hidden_slot("iter")?;
        self.emit(Op::IterInit, &[iter_slot as u32]);
        let height_slot = self.hidden_slot("height")?;
        self.emit(Op::SaveHeight, &[height_slot as u32]);
        let top = self.here();
        let exit = self.emit_jump(Op::IterNext, &[iter_slot as u32]);
        self.f().exits.push(Exit::Loop { break_jumps: vec![], continue_target: Some(top), height_slot });
        self.push_scope();
        self.bind_pattern(pattern, true)?;
        self.compile_block_stmts(body)?;
        self.pop_scope();
        self.emit_loop_jump(top);
        self.finish_loop(vec![exit])
    }

    fn emit_loop_jump(&mut self, top: usize) {
        self.emit(Op::Jump, &[top as u32]);
    }

    /// Pops the loop's exit record and patches its `break` jumps (and `exits`) to here.
    fn finish_loop(&mut self, exits: Vec<usize>) -> CResult {
        self.patch_all(exits);
        if let Some(Exit::Loop { break_jumps, .. }) = self.f().exits.pop() {
            for j in break_jumps {
                self.patch(j);
            }
        }
        Ok(())
    }

    fn compile_break_continue(&mut self, is_break: bool) -> CResult {
        let word = if is_break { "break" } else { "continue" };
        let Some(loop_at) = self.f().exits.iter().rposition(|e| matches!(e, Exit::Loop { .. })) else {
            return Err(self.error(format!("`{word}` outside of a loop")));
        };
        self.unwind_exits(loop_at + 1)?;
        let Exit::Loop { height_slot, .. } = self.f().exits[loop_at] else { unreachable!() };
        self.emit(Op::RestoreHeight, &[height_slot as u32]);
        let j = self.emit_jump(Op::Jump, &[]);
        match &mut self.f().exits[loop_at] {
            Exit::Loop { break_jumps, continue_target, .. } => {
                if is_break {
                    break_jumps.push(j);
                } else if let Some(t) = continue_target {
                    let t = *t;
                    self.patch_to(j, t);
                }
            }
            _ => unreachable!(),
        }
        Ok(())
    }

    /// Emits what leaving every exit record above `keep` requires, innermost first.
    fn unwind_exits(&mut self, keep: usize) -> CResult {
        let mut i = self.f().exits.len();
        while i > keep {
            i -= 1;
            match &self.f().exits[i] {
                Exit::Handler => {
                    self.emit(Op::TryEnd, &[]);
                }
                Exit::Finally(body) => {
                    let body = body.clone();
                    self.emit(Op::TryEnd, &[]);
                    // The finally body runs outside its own protection.
                    let saved: Vec<Exit> = self.f().exits.drain(i..).collect();
                    self.push_scope();
                    let r = self.compile_block_stmts(&body);
                    self.pop_scope();
                    self.f().exits.extend(saved);
                    r?;
                }
                Exit::Loop { .. } => {}
            }
        }
        Ok(())
    }

    fn compile_return(&mut self, e: Option<&Expr>) -> CResult {
        let crosses_handlers = self.f().exits.iter().any(|x| !matches!(x, Exit::Loop { .. }));
        if let Some(e) = e {
            if !crosses_handlers && self.compile_tail_call(e)? {
                return Ok(());
            }
            self.compile_expr(e)?;
        } else {
            self.emit(Op::Nil, &[]);
        }
        self.unwind_exits(0)?;
        self.emit(Op::Return, &[]);
        Ok(())
    }

    /// `return f(x)` and `return x |> f` reuse the frame. Returns false when
    /// `e` is not such a call.
    fn compile_tail_call(&mut self, e: &Expr) -> CResult<bool> {
        match &e.kind {
            ExprKind::Call { name, args, .. } if args.len() < 256 && args.iter().all(|a| matches!(a, Arg::Positional(_))) => {
                match self.resolve(name) {
                    r @ (Resolved::Local { .. } | Resolved::Capture { .. } | Resolved::SelfRef | Resolved::Global(_)) => {
                        self.emit_resolved_get(name, r)?;
                        for a in args {
                            if let Arg::Positional(x) = a {
                                self.compile_expr(x)?;
                            }
                        }
                        self.pos = e.pos;
                        self.emit(Op::TailCall, &[args.len() as u32]);
                        // Reached only when the callee was not a plain closure
                        // (a builtin, a generator fn): return its result.
                        self.emit(Op::Return, &[]);
                        Ok(true)
                    }
                    _ => Ok(false),
                }
            }
            ExprKind::Binary { op: BinOp::Pipe, lhs, rhs } => {
                self.compile_expr(lhs)?;
                self.compile_expr(rhs)?;
                self.emit(Op::Swap, &[]);
                self.pos = e.pos;
                self.emit(Op::TailCall, &[1]);
                self.emit(Op::Return, &[]);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// `try { body } finally { fin }` shape, also used for `defer`: leaves the
    /// body's value. With `scoped`, body statements get their own scope.
    fn compile_protected(&mut self, body: &[Stmt], fin: &Block, scoped: bool) -> CResult {
        let handler = self.emit_jump(Op::TryBegin, &[]);
        self.f().exits.push(Exit::Finally(fin.clone()));
        if scoped {
            self.push_scope();
        }
        self.compile_block_value(body)?;
        if scoped {
            self.pop_scope();
        }
        self.f().exits.pop();
        self.emit(Op::TryEnd, &[]);
        self.run_finally_keeping_value(fin)?;
        let end = self.emit_jump(Op::Jump, &[]);
        self.patch(handler);
        self.run_finally_then_rethrow(fin)?;
        self.patch(end);
        Ok(())
    }

    fn run_finally_keeping_value(&mut self, fin: &Block) -> CResult {
        self.run_finally_around_top(fin, "result")
    }

    fn run_finally_then_rethrow(&mut self, fin: &Block) -> CResult {
        self.run_finally_around_top(fin, "error")?;
        self.emit(Op::Rethrow, &[]);
        Ok(())
    }

    /// Runs `fin` with the value on top of the stack set aside in a hidden
    /// local (`what` names it), then puts that value back on top.
    fn run_finally_around_top(&mut self, fin: &Block, what: &str) -> CResult {
        let tmp = self.hidden_slot(what)?;
        self.emit(Op::SetLocal, &[tmp as u32]);
        self.push_scope();
        self.compile_block_stmts(fin)?;
        self.pop_scope();
        self.emit(Op::GetLocal, &[tmp as u32]);
        Ok(())
    }

    fn compile_try(&mut self, body: &Block, catch: Option<&CatchClause>, finally: Option<&Block>) -> CResult {
        if catch.is_none() && finally.is_none() {
            // Bare `try { }`: a Result.
            let handler = self.emit_jump(Op::TryBegin, &[]);
            self.f().exits.push(Exit::Handler);
            self.push_scope();
            self.compile_block_value(body)?;
            self.pop_scope();
            self.f().exits.pop();
            self.emit(Op::TryEnd, &[]);
            self.emit(Op::WrapOk, &[]);
            let end = self.emit_jump(Op::Jump, &[]);
            self.patch(handler);
            self.emit(Op::WrapErr, &[]);
            self.patch(end);
            return Ok(());
        }
        let fin_handler = match finally {
            Some(fin) => {
                let h = self.emit_jump(Op::TryBegin, &[]);
                self.f().exits.push(Exit::Finally(fin.clone()));
                Some(h)
            }
            None => None,
        };
        match catch {
            Some(c) => {
                let handler = self.emit_jump(Op::TryBegin, &[]);
                self.f().exits.push(Exit::Handler);
                self.push_scope();
                self.compile_block_value(body)?;
                self.pop_scope();
                self.f().exits.pop();
                self.emit(Op::TryEnd, &[]);
                let end = self.emit_jump(Op::Jump, &[]);
                self.patch(handler);
                if let Some(t) = &c.type_name {
                    self.emit_named(Op::ErrIs, t)?;
                    let ok = self.emit_jump(Op::JumpIfTrue, &[]);
                    self.emit(Op::Rethrow, &[]);
                    self.patch(ok);
                }
                self.emit(Op::ErrValue, &[]);
                self.push_scope();
                match &c.binding {
                    Some(name) => {
                        let slot = self.declare(name, true, LocalKind::Plain)?;
                        self.emit(Op::SetLocal, &[slot as u32]);
                    }
                    None => {
                        self.emit(Op::Pop, &[]);
                    }
                }
                self.compile_block_value(&c.body)?;
                self.pop_scope();
                self.patch(end);
            }
            None => {
                self.push_scope();
                self.compile_block_value(body)?;
                self.pop_scope();
            }
        }
        if let (Some(h), Some(fin)) = (fin_handler, finally) {
            self.f().exits.pop();
            self.emit(Op::TryEnd, &[]);
            self.run_finally_keeping_value(fin)?;
            let end = self.emit_jump(Op::Jump, &[]);
            self.patch(h);
            self.run_finally_then_rethrow(fin)?;
            self.patch(end);
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // Expressions

    fn emit_resolved_get(&mut self, name: &str, r: Resolved) -> CResult {
        match r {
            Resolved::Local { slot, kind, .. } => self.emit_get_local(slot, kind),
            Resolved::Capture { index, kind, .. } => {
                match kind {
                    LocalKind::Plain => self.emit(Op::GetCapture, &[index as u32]),
                    LocalKind::Cell => self.emit(Op::GetCaptureCell, &[index as u32]),
                };
            }
            Resolved::SelfRef => {
                self.emit(Op::GetSelf, &[]);
            }
            Resolved::Global(g) => {
                self.emit(Op::GetGlobal, &[g as u32]);
            }
            Resolved::Builtin(id) => {
                self.emit(Op::GetBuiltin, &[id]);
            }
            Resolved::Unknown => match name {
                "pi" => self.emit_const(Value::Float(std::f64::consts::PI))?,
                // `stream`, `parallel_race`: written in Harn, instantiated on first use (prelude.rs).
                _ if crate::compile::prelude::global(name).is_some() => {
                    self.emit_const(Value::str(name))?;
                    self.emit_sched_call("__prelude_global", 1)?;
                }
                "e" => self.emit_const(Value::Float(std::f64::consts::E))?,
                _ => {
                    self.emit_named(Op::ThrowUndefined, name)?;
                }
            },
        }
        Ok(())
    }

    fn compile_expr(&mut self, e: &Expr) -> CResult {
        crate::runtime::deep::grow(|| self.compile_expr_inner(e))
    }

    fn compile_expr_inner(&mut self, e: &Expr) -> CResult {
        self.pos = e.pos;
        match &e.kind {
            ExprKind::Int(i) => self.emit_const(Value::Int(*i)),
            ExprKind::Float(f) => self.emit_const(Value::Float(*f)),
            ExprKind::Duration(ms) => self.emit_const(Value::Duration(*ms)),
            ExprKind::Str(s) => self.emit_const(Value::str(s.clone())),
            ExprKind::Bool(true) => {
                self.emit(Op::True, &[]);
                Ok(())
            }
            ExprKind::Bool(false) => {
                self.emit(Op::False, &[]);
                Ok(())
            }
            ExprKind::Nil => {
                self.emit(Op::Nil, &[]);
                Ok(())
            }
            ExprKind::InterpolatedStr(segments) => {
                for seg in segments {
                    match seg {
                        StrSegment::Lit(s) => self.emit_const(Value::str(s.clone()))?,
                        StrSegment::Expr(x) => self.compile_expr(x)?,
                    }
                }
                self.emit(Op::Concat, &[segments.len() as u32]);
                Ok(())
            }
            ExprKind::Ident(name) => {
                let r = self.resolve(name);
                self.emit_resolved_get(name, r)
            }
            ExprKind::List(elems) => self.compile_list(elems),
            ExprKind::Dict(entries) => self.compile_dict(entries),
            ExprKind::Closure(c) => {
                self.next_fn_flavor = (c.is_generator, false);
                self.compile_function("<closure>", &c.params, &c.body, None, e.pos)
            }
            ExprKind::Call { name, args, .. } => self.compile_call(name, args, e.pos),
            ExprKind::MethodCall { object, name, args, optional } => {
                self.compile_expr(object)?;
                let k = self.name_const(name)?;
                if args.iter().any(|a| matches!(a, Arg::Spread(_))) || args.len() > 255 {
                    self.compile_args_list(args)?;
                    self.pos = e.pos;
                    if *optional {
                        // `nil?.m(...xs)`: evaluate args, then nil.
                        self.emit(Op::Swap, &[]);
                        let skip = self.emit_jump(Op::JumpIfNil, &[]);
                        self.emit(Op::Swap, &[]);
                        self.emit(Op::CallMethodSpread, &[k]);
                        let end = self.emit_jump(Op::Jump, &[]);
                        self.patch(skip);
                        self.emit(Op::Swap, &[]);
                        self.emit(Op::Pop, &[]);
                        self.patch(end);
                    } else {
                        self.emit(Op::CallMethodSpread, &[k]);
                    }
                } else {
                    for a in args {
                        if let Arg::Positional(x) = a {
                            self.compile_expr(x)?;
                        }
                    }
                    self.pos = e.pos;
                    let op = if *optional { Op::CallMethodOpt } else { Op::CallMethod };
                    self.emit(op, &[k, args.len() as u32]);
                }
                Ok(())
            }
            ExprKind::Property { object, name, optional: false } if matches!(object.kind, ExprKind::Ident(_)) => {
                let ExprKind::Ident(var) = &object.kind else { unreachable!("checked by the guard") };
                let r = self.resolve(var);
                if let Resolved::Local { slot, kind: LocalKind::Plain, .. } = r {
                    // `local.name` reads the local in place.
                    let k = self.name_const(name)?;
                    self.emit(Op::GetLocalProp, &[slot as u32, k]);
                    return Ok(());
                }
                self.pos = object.pos;
                self.emit_resolved_get(var, r)?;
                self.pos = e.pos;
                self.emit_named(Op::GetProp, name)
            }
            ExprKind::Property { object, name, optional } => {
                self.compile_expr(object)?;
                self.pos = e.pos;
                self.emit_named(if *optional { Op::GetPropOpt } else { Op::GetProp }, name)
            }
            ExprKind::Index { object, index, optional } => {
                self.compile_expr(object)?;
                self.compile_expr(index)?;
                self.pos = e.pos;
                self.emit(if *optional { Op::IndexOpt } else { Op::Index }, &[]);
                Ok(())
            }
            ExprKind::Slice { object, start, end, optional } => {
                self.compile_expr(object)?;
                let skip = if *optional { Some(self.emit_jump(Op::JumpIfNil, &[])) } else { None };
                for bound in [start, end] {
                    match bound {
                        Some(b) => self.compile_expr(b)?,
                        None => {
                            self.emit(Op::Nil, &[]);
                        }
                    }
                }
                self.pos = e.pos;
                self.emit(Op::Slice, &[]);
                if let Some(s) = skip {
                    self.patch(s);
                }
                Ok(())
            }
            ExprKind::Binary { op, lhs, rhs } => self.compile_binary(*op, lhs, rhs, e.pos),
            ExprKind::Unary { op, operand } => {
                self.compile_expr(operand)?;
                self.pos = e.pos;
                self.emit(if *op == UnaryOp::Neg { Op::Neg } else { Op::Not }, &[]);
                Ok(())
            }
            ExprKind::Ternary { cond, then, else_ } => {
                let other = self.compile_branch(cond, false)?;
                self.compile_expr(then)?;
                let end = self.emit_jump(Op::Jump, &[]);
                self.patch_all(other);
                self.compile_expr(else_)?;
                self.patch(end);
                Ok(())
            }
            ExprKind::Range { start, end, inclusive } => {
                self.compile_expr(start)?;
                self.compile_expr(end)?;
                self.pos = e.pos;
                self.emit(Op::BuildRange, &[*inclusive as u32]);
                Ok(())
            }
            ExprKind::TryOp(inner) => {
                self.compile_expr(inner)?;
                self.pos = e.pos;
                self.emit(Op::TryUnwrap, &[]);
                Ok(())
            }
            ExprKind::TryStar(inner) => {
                if !self.fns.iter().any(|f| f.is_function_body) {
                    return Err(
                        self.error("try* requires an enclosing function (fn, tool, or pipeline) so the rethrow has a target")
                    );
                }
                // A throw already unwinds through pending finally blocks to the innermost catch.
                self.compile_expr(inner)
            }
            ExprKind::TryCatch { body, catch, finally } => self.compile_try(body, catch.as_deref(), finally.as_ref()),
            ExprKind::If { cond, then, else_ } => {
                let other = self.compile_branch(cond, false)?;
                self.push_scope();
                self.compile_block_value(then)?;
                self.pop_scope();
                let end = self.emit_jump(Op::Jump, &[]);
                self.patch_all(other);
                match else_ {
                    Some(ElseBranch::Block(b)) => {
                        self.push_scope();
                        self.compile_block_value(b)?;
                        self.pop_scope();
                    }
                    Some(ElseBranch::If(x)) => self.compile_expr(x)?,
                    None => {
                        self.emit(Op::Nil, &[]);
                    }
                }
                self.patch(end);
                Ok(())
            }
            ExprKind::Match { subject, arms } => self.compile_match(subject, arms),
            ExprKind::EnumConstruct { enum_name, variant, args } => {
                if args.iter().any(|a| matches!(a, Arg::Spread(_))) || args.len() > 255 {
                    return Err(self.error("spread arguments are not supported in enum construction"));
                }
                for a in args {
                    if let Arg::Positional(x) = a {
                        self.compile_expr(x)?;
                    }
                }
                self.pos = e.pos;
                let k = self.name_const(&format!("{enum_name}.{variant}"))?;
                self.emit(Op::BuildEnum, &[k, args.len() as u32]);
                Ok(())
            }
            ExprKind::StructConstruct { name, fields } => {
                for (k, v) in fields {
                    self.emit_const(Value::str(k.clone()))?;
                    self.compile_expr(v)?;
                }
                let distinct = fields.iter().enumerate().all(|(i, (k, _))| fields[..i].iter().all(|(k2, _)| k2 != k));
                if distinct && fields.len() <= u16::MAX as usize {
                    // No dict in between (a repeated name goes through the
                    // dict, whose last entry wins).
                    self.pos = e.pos;
                    let k = self.name_const(name)?;
                    self.emit(Op::BuildStructFields, &[k, fields.len() as u32]);
                    return Ok(());
                }
                self.emit(Op::BuildDict, &[fields.len() as u32]);
                self.pos = e.pos;
                self.emit_named(Op::BuildStruct, name)
            }
            ExprKind::Retry { count, body } => self.compile_retry(count, body),
            ExprKind::Spawn(body) => {
                // The body becomes a closure (bindings are copied in at spawn time).
                self.compile_function("<spawn>", &[], body, None, e.pos)?;
                self.pos = e.pos;
                self.emit_sched_call("__spawn", 1)
            }
            ExprKind::Parallel(par) => self.compile_parallel(par, e.pos),
            ExprKind::Deadline { duration, body } => {
                // Inline (not a closure) so the body can assign outer variables.
                self.compile_expr(duration)?;
                self.pos = e.pos;
                self.emit_sched_call("__deadline_push", 1)?;
                self.emit(Op::Pop, &[]);
                let fin = self.synthetic_call_block("__deadline_pop");
                self.compile_protected(body, &fin, true)
            }
        }
    }

    fn compile_list(&mut self, elems: &[ListElem]) -> CResult {
        let simple = elems.len() <= u16::MAX as usize && elems.iter().all(|x| matches!(x, ListElem::Item(_)));
        if simple {
            for x in elems {
                if let ListElem::Item(v) = x {
                    self.compile_expr(v)?;
                }
            }
            self.emit(Op::BuildList, &[elems.len() as u32]);
            return Ok(());
        }
        self.compile_spread_list(elems.iter().map(|x| match x {
            ListElem::Item(v) => (false, v),
            ListElem::Spread(v) => (true, v),
        }))
    }

    fn compile_dict(&mut self, entries: &[DictEntry]) -> CResult {
        let simple = entries.len() <= u16::MAX as usize && entries.iter().all(|x| matches!(x, DictEntry::Pair { .. }));
        let emit_key = |c: &mut Compiler, key: &DictKey| -> CResult {
            match key {
                DictKey::Name(n) => c.emit_const(Value::str(n.clone())),
                DictKey::Computed(x) => c.compile_expr(x),
            }
        };
        if simple {
            for x in entries {
                if let DictEntry::Pair { key, value } = x {
                    emit_key(self, key)?;
                    self.compile_expr(value)?;
                }
            }
            self.emit(Op::BuildDict, &[entries.len() as u32]);
            return Ok(());
        }
        self.emit(Op::BuildDict, &[0]);
        for x in entries {
            match x {
                DictEntry::Pair { key, value } => {
                    emit_key(self, key)?;
                    self.compile_expr(value)?;
                    self.emit(Op::DictInsert, &[]);
                }
                DictEntry::Spread(v) => {
                    self.compile_expr(v)?;
                    self.emit(Op::DictExtend, &[]);
                }
            }
        }
        Ok(())
    }

    /// Pushes one list holding all arguments (for spread calls).
    fn compile_args_list(&mut self, args: &[Arg]) -> CResult {
        self.compile_spread_list(args.iter().map(|a| match a {
            Arg::Positional(x) => (false, x),
            Arg::Spread(x) => (true, x),
        }))
    }

    /// Builds a list from parts, each either one item or a `...spread`.
    fn compile_spread_list<'e>(&mut self, parts: impl Iterator<Item = (bool, &'e Expr)>) -> CResult {
        self.emit(Op::BuildList, &[0]);
        for (spread, x) in parts {
            self.compile_expr(x)?;
            self.emit(if spread { Op::ListExtend } else { Op::ListAppend }, &[]);
        }
        Ok(())
    }

    /// Calls a scheduler builtin on the `argc` values on top of the stack.
    fn emit_sched_call(&mut self, name: &str, argc: u32) -> CResult {
        let id = builtins::builtin_id(name).ok_or_else(|| self.error(format!("internal: missing builtin {name}")))?;
        self.emit(Op::CallBuiltin, &[id, argc]);
        Ok(())
    }

    /// A one-statement block `name()`, used as a synthesized `finally`.
    fn synthetic_call_block(&self, name: &str) -> Block {
        let call =
            Expr { kind: ExprKind::Call { name: name.to_string(), type_args: Vec::new(), args: Vec::new() }, pos: self.pos };
        vec![Stmt { kind: StmtKind::Expr(call), pos: self.pos }]
    }

    /// `parallel` forms: `__parallel(mode, count_or_list, options, body_closure)`.
    fn compile_parallel(&mut self, par: &Parallel, pos: Pos) -> CResult {
        let mode = match (par.kind, par.as_stream) {
            (_, true) => "stream",
            (ParallelKind::Count, _) => "count",
            (ParallelKind::Each, _) => "each",
            (ParallelKind::Settle, _) => "settle",
        };
        self.emit_const(Value::str(mode))?;
        self.compile_expr(&par.expr)?;
        match &par.options {
            Some(o) => self.compile_expr(o)?,
            None => {
                self.emit(Op::Nil, &[]);
            }
        }
        let params: Vec<crate::syntax::ast::Param> = match &par.param {
            Some(name) => vec![crate::syntax::ast::Param { name: name.clone(), ty: None, default: None, rest: false, pos }],
            None => Vec::new(),
        };
        self.compile_function("<parallel>", &params, &par.body, None, pos)?;
        self.pos = pos;
        self.emit_sched_call("__parallel", 4)
    }

    /// `select { v from ch { } ... [timeout D { }] [default { }] }`:
    /// `__select(channels, timeout_or_nil, has_default)` → `[index, value]`
    /// (index -1: timeout or default), then a branch per case.
    fn compile_select(&mut self, sel: &SelectStmt) -> CResult {
        let pos = self.pos;
        for case in &sel.cases {
            self.compile_expr(&case.channel)?;
        }
        self.emit(Op::BuildList, &[sel.cases.len() as u32]);
        match &sel.timeout {
            Some((d, _)) => self.compile_expr(d)?,
            None => {
                self.emit(Op::Nil, &[]);
            }
        }
        self.emit(if sel.default.is_some() { Op::True } else { Op::False }, &[]);
        self.pos = pos;
        self.emit_sched_call("__select", 3)?;
        let picked = self.hidden_slot("select")?;
        self.emit(Op::SetLocal, &[picked as u32]);
        let mut ends = Vec::new();
        for (i, case) in sel.cases.iter().enumerate() {
            self.emit(Op::GetLocal, &[picked as u32]);
            self.emit_const(Value::Int(0))?;
            self.emit(Op::Index, &[]);
            self.emit_const(Value::Int(i as i64))?;
            self.emit(Op::Eq, &[]);
            let next = self.emit_jump(Op::JumpIfFalse, &[]);
            self.push_scope();
            self.emit(Op::GetLocal, &[picked as u32]);
            self.emit_const(Value::Int(1))?;
            self.emit(Op::Index, &[]);
            let slot = self.declare(&case.binding, false, LocalKind::Plain)?;
            self.emit(Op::SetLocal, &[slot as u32]);
            self.compile_block_stmts(&case.body)?;
            self.pop_scope();
            ends.push(self.emit_jump(Op::Jump, &[]));
            self.patch(next);
        }
        let fallback = sel.timeout.as_ref().map(|(_, b)| b).or(sel.default.as_ref());
        if let Some(body) = fallback {
            self.push_scope();
            self.compile_block_stmts(body)?;
            self.pop_scope();
        }
        for j in ends {
            self.patch(j);
        }
        Ok(())
    }

    fn compile_call(&mut self, name: &str, args: &[Arg], pos: Pos) -> CResult {
        let resolved = self.resolve(name);
        let spread = args.iter().any(|a| matches!(a, Arg::Spread(_))) || args.len() > 255;
        match resolved {
            Resolved::Builtin(id) if !spread => {
                // `schema_is(v, Alias)`: a type name argument becomes its schema dict.
                let type_arg = builtins::schemas::TYPE_ARG_BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, i)| *i);
                for (i, a) in args.iter().enumerate() {
                    if let Arg::Positional(x) = a {
                        if let (Some(ti), ExprKind::Ident(tn)) = (type_arg, &x.kind) {
                            if ti == i && matches!(self.resolve(tn), Resolved::Unknown) {
                                if let Some(schema) = self.types.alias_schema(tn) {
                                    self.emit_const(schema)?;
                                    continue;
                                }
                            }
                        }
                        self.compile_expr(x)?;
                    }
                }
                self.pos = pos;
                self.emit(Op::CallBuiltin, &[id, args.len() as u32]);
                return Ok(());
            }
            Resolved::Unknown if self.structs.contains(name) => {
                // `Point({x: 1})`: the struct constructor.
                match args.first() {
                    Some(Arg::Positional(x)) => self.compile_expr(x)?,
                    _ => {
                        self.emit(Op::BuildDict, &[0]);
                    }
                }
                self.pos = pos;
                return self.emit_named(Op::BuildStruct, name);
            }
            Resolved::Unknown if crate::compile::prelude::global(name).is_some() => {
                self.emit_resolved_get(name, Resolved::Unknown)?
            }
            Resolved::Unknown => {
                if spread {
                    self.pos = pos;
                    let hint = crate::runtime::error::closest_match(name, builtins::builtin_names());
                    let msg = match hint {
                        Some(h) => format!("{name} (did you mean `{h}`?)"),
                        None => name.to_string(),
                    };
                    // Harn reports this when the call runs, not at compile time.
                    let k = self.name_const(&msg)?;
                    self.emit(Op::ThrowUndefinedBuiltin, &[k]);
                    self.emit(Op::Nil, &[]);
                    return Ok(());
                }
                // Possibly a host function registered on the Vm; resolved when the call runs.
                for a in args {
                    if let Arg::Positional(x) = a {
                        self.compile_expr(x)?;
                    }
                }
                self.pos = pos;
                let k = self.name_const(name)?;
                self.emit(Op::CallHost, &[k, args.len() as u32]);
                return Ok(());
            }
            r => self.emit_resolved_get(name, r)?,
        }
        if spread {
            self.compile_args_list(args)?;
            self.pos = pos;
            self.emit(Op::CallSpread, &[]);
        } else {
            for a in args {
                if let Arg::Positional(x) = a {
                    self.compile_expr(x)?;
                }
            }
            self.pos = pos;
            self.emit(Op::Call, &[args.len() as u32]);
        }
        Ok(())
    }

    fn compile_binary(&mut self, op: BinOp, lhs: &Expr, rhs: &Expr, pos: Pos) -> CResult {
        match op {
            BinOp::And | BinOp::Or => {
                self.compile_expr(lhs)?;
                let short = self.emit_jump(if op == BinOp::And { Op::JumpIfFalse } else { Op::JumpIfTrue }, &[]);
                self.compile_expr(rhs)?;
                self.emit(Op::ToBool, &[]);
                let end = self.emit_jump(Op::Jump, &[]);
                self.patch(short);
                self.emit(if op == BinOp::And { Op::False } else { Op::True }, &[]);
                self.patch(end);
            }
            BinOp::NullCoalesce => {
                self.compile_expr(lhs)?;
                let end = self.emit_jump(Op::JumpIfNotNil, &[]);
                self.compile_expr(rhs)?;
                self.patch(end);
            }
            BinOp::Pipe => {
                self.compile_expr(lhs)?;
                self.compile_expr(rhs)?;
                self.pos = pos;
                self.emit(Op::Pipe, &[]);
            }
            _ => {
                self.compile_expr(lhs)?;
                if let (Some(const_op), Some(k)) = (binop_form(op, BinaryForm::Const), literal_constant(rhs)) {
                    let k = self.constant(k)?;
                    self.pos = pos;
                    self.emit(const_op, &[k]);
                    return Ok(());
                }
                if let Some(local_op) = binop_form(op, BinaryForm::Local) {
                    if let Some(local) = self.plain_local(rhs) {
                        self.pos = pos;
                        self.emit(local_op, &[local as u32]);
                        return Ok(());
                    }
                }
                self.compile_expr(rhs)?;
                self.pos = pos;
                self.emit(binop_opcode(op).expect("compiled with jumps"), &[]);
            }
        }
        Ok(())
    }

    fn compile_retry(&mut self, count: &Expr, body: &Block) -> CResult {
        // Run the body; on a throw, try again until `count` attempts are used,
        // then re-throw the last error.
        let left = self.hidden_slot("attempts")?;
        self.compile_expr(count)?;
        self.emit(Op::SetLocal, &[left as u32]);
        let top = self.here();
        let handler = self.emit_jump(Op::TryBegin, &[]);
        self.f().exits.push(Exit::Handler);
        self.push_scope();
        self.compile_block_stmts(body)?;
        self.pop_scope();
        self.f().exits.pop();
        self.emit(Op::TryEnd, &[]);
        let end = self.emit_jump(Op::Jump, &[]);
        self.patch(handler);
        self.emit(Op::GetLocal, &[left as u32]);
        self.emit_const(Value::Int(1))?;
        self.emit(Op::Sub, &[]);
        self.emit(Op::Dup, &[]);
        self.emit(Op::SetLocal, &[left as u32]);
        self.emit_const(Value::Int(0))?;
        self.emit(Op::Gt, &[]);
        let give_up = self.emit_jump(Op::JumpIfFalse, &[]);
        self.emit(Op::Pop, &[]);
        self.emit(Op::Jump, &[top as u32]);
        self.patch(give_up);
        self.emit(Op::Rethrow, &[]);
        self.patch(end);
        self.emit(Op::Nil, &[]);
        Ok(())
    }

    // --- match

    fn compile_match(&mut self, subject: &Expr, arms: &[MatchArm]) -> CResult {
        self.compile_expr(subject)?;
        let subj = self.hidden_slot("match")?;
        self.emit(Op::SetLocal, &[subj as u32]);
        let mut ends = Vec::new();
        for arm in arms {
            self.pos = arm.pos;
            self.push_scope();
            let mut to_body = Vec::new();
            let mut next_alt: Vec<usize> = Vec::new();
            for (i, p) in arm.patterns.iter().enumerate() {
                for j in next_alt.drain(..) {
                    self.patch(j);
                }
                self.compile_pattern_test(p, subj, &mut next_alt)?;
                if i + 1 < arm.patterns.len() {
                    to_body.push(self.emit_jump(Op::Jump, &[]));
                }
            }
            for j in to_body {
                self.patch(j);
            }
            if let Some(g) = &arm.guard {
                self.compile_expr(g)?;
                next_alt.push(self.emit_jump(Op::JumpIfFalse, &[]));
            }
            self.compile_block_value(&arm.body)?;
            ends.push(self.emit_jump(Op::Jump, &[]));
            for j in next_alt {
                self.patch(j);
            }
            self.pop_scope();
        }
        self.emit_const(Value::str("No match arm matched the value"))?;
        self.emit(Op::Throw, &[]);
        for j in ends {
            self.patch(j);
        }
        Ok(())
    }

    /// Emits a test of the match subject against `p`: falls through on a
    /// match (with bindings stored), jumps via `fails` otherwise.
    fn compile_pattern_test(&mut self, p: &MatchPattern, subj: u16, fails: &mut Vec<usize>) -> CResult {
        match p {
            MatchPattern::Wildcard => {}
            MatchPattern::Binding(name) => {
                self.emit(Op::GetLocal, &[subj as u32]);
                let slot = self.declare(name, true, LocalKind::Plain)?;
                self.emit(Op::SetLocal, &[slot as u32]);
            }
            MatchPattern::Value(x) => {
                self.emit(Op::GetLocal, &[subj as u32]);
                self.compile_expr(x)?;
                self.emit(Op::Eq, &[]);
                fails.push(self.emit_jump(Op::JumpIfFalse, &[]));
            }
            MatchPattern::EnumVariant { enum_name, variant, bindings } => {
                self.emit(Op::GetLocal, &[subj as u32]);
                self.emit_named(Op::IsVariant, &format!("{enum_name}.{variant}"))?;
                fails.push(self.emit_jump(Op::JumpIfFalse, &[]));
                for (i, b) in bindings.iter().flatten().enumerate() {
                    if let Some(name) = b {
                        self.emit(Op::GetLocal, &[subj as u32]);
                        self.emit_named(Op::GetProp, "fields")?;
                        self.emit_const(Value::Int(i as i64))?;
                        self.emit(Op::Index, &[]);
                        let slot = self.declare(name, true, LocalKind::Plain)?;
                        self.emit(Op::SetLocal, &[slot as u32]);
                    }
                }
            }
            MatchPattern::Dict(entries) => {
                self.emit(Op::GetLocal, &[subj as u32]);
                self.emit_named(Op::IsType, "dict")?;
                fails.push(self.emit_jump(Op::JumpIfFalse, &[]));
                for (key, sub) in entries {
                    self.emit_sub_pattern(sub, subj, Value::str(key.clone()), fails)?;
                }
            }
            MatchPattern::List(elems) => {
                self.emit(Op::GetLocal, &[subj as u32]);
                self.emit_named(Op::IsType, "list")?;
                fails.push(self.emit_jump(Op::JumpIfFalse, &[]));
                let len_id = builtins::builtin_id("len").expect("len is a builtin");
                self.emit(Op::GetLocal, &[subj as u32]);
                self.emit(Op::CallBuiltin, &[len_id, 1]);
                self.emit_const(Value::Int(elems.len() as i64))?;
                self.emit(Op::Ge, &[]);
                fails.push(self.emit_jump(Op::JumpIfFalse, &[]));
                for (i, sub) in elems.iter().enumerate() {
                    self.emit_sub_pattern(sub, subj, Value::Int(i as i64), fails)?;
                }
            }
        }
        Ok(())
    }

    fn emit_sub_pattern(&mut self, sub: &MatchPattern, subj: u16, key: Value, fails: &mut Vec<usize>) -> CResult {
        match sub {
            MatchPattern::Wildcard => Ok(()),
            MatchPattern::Binding(name) => {
                self.emit(Op::GetLocal, &[subj as u32]);
                self.emit_const(key)?;
                self.emit(Op::Index, &[]);
                let slot = self.declare(name, true, LocalKind::Plain)?;
                self.emit(Op::SetLocal, &[slot as u32]);
                Ok(())
            }
            MatchPattern::Value(x) => {
                self.emit(Op::GetLocal, &[subj as u32]);
                self.emit_const(key)?;
                self.emit(Op::Index, &[]);
                self.compile_expr(x)?;
                self.emit(Op::Eq, &[]);
                fails.push(self.emit_jump(Op::JumpIfFalse, &[]));
                Ok(())
            }
            _ => Err(self.error("nested patterns are not supported inside dict or list patterns")),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// `main(__harness(__clock_ms()))` when the file declares a top-level
/// `fn main` taking one parameter (harn 0.9's `fn main(harness: Harness)`);
/// a pipeline, when there is one, stays the entry instead, as on harn 0.9.11.
fn harness_main_call(items: &[Stmt]) -> Option<Stmt> {
    let main = items.iter().find_map(|s| match &s.kind {
        StmtKind::FnDecl(f) if f.name == "main" && f.params.len() == 1 && !f.params[0].rest => Some(f),
        _ => None,
    })?;
    let call = |name: &str, args: Vec<Expr>| Expr {
        kind: ExprKind::Call {
            name: name.to_string(),
            type_args: Vec::new(),
            args: args.into_iter().map(Arg::Positional).collect(),
        },
        pos: main.pos,
    };
    let harness = call("__harness", vec![call("__clock_ms", Vec::new())]);
    Some(Stmt { kind: StmtKind::Expr(call("main", vec![harness])), pos: main.pos })
}

/// `let NAME = __run_input("NAME")`: an entry pipeline parameter bound to the
/// host's input of that name (see `Vm::set_run_inputs`).
fn run_input_binding(name: &str, pos: Pos) -> Stmt {
    let value = Expr {
        kind: ExprKind::Call {
            name: "__run_input".to_string(),
            type_args: Vec::new(),
            args: vec![Arg::Positional(Expr { kind: ExprKind::Str(name.to_string()), pos })],
        },
        pos,
    };
    Stmt { kind: StmtKind::Let { pattern: Pattern::Ident(name.to_string()), ty: None, value }, pos }
}

fn is_declaration(k: &StmtKind) -> bool {
    matches!(
        k,
        StmtKind::FnDecl(_)
            | StmtKind::Struct(_)
            | StmtKind::Enum(_)
            | StmtKind::Impl(_)
            | StmtKind::Interface(_)
            | StmtKind::TypeAlias(_)
            | StmtKind::Unsupported { .. }
    )
}

/// The op of a binary operator that is one instruction; None for the
/// operators compiled with jumps or as calls (`&& || ?? |>`).
fn binop_opcode(op: BinOp) -> Option<Op> {
    Some(match op {
        BinOp::Add => Op::Add,
        BinOp::Sub => Op::Sub,
        BinOp::Mul => Op::Mul,
        BinOp::Div => Op::Div,
        BinOp::Mod => Op::Mod,
        BinOp::Pow => Op::Pow,
        BinOp::Eq => Op::Eq,
        BinOp::Ne => Op::Ne,
        BinOp::Lt => Op::Lt,
        BinOp::Gt => Op::Gt,
        BinOp::Le => Op::Le,
        BinOp::Ge => Op::Ge,
        BinOp::In => Op::In,
        BinOp::NotIn => Op::NotIn,
        BinOp::And | BinOp::Or | BinOp::NullCoalesce | BinOp::Pipe => return None,
    })
}

/// `op` in another operand form of its adaptive binary op, when
/// `define_ops!` defines that form for it.
fn binop_form(op: BinOp, form: BinaryForm) -> Option<Op> {
    binop_opcode(op)?.with_form(form)
}

/// The value of a literal that `CONST` would push (so it can be an operand instead).
fn literal_constant(e: &Expr) -> Option<Value> {
    match &e.kind {
        ExprKind::Int(i) => Some(Value::Int(*i)),
        ExprKind::Float(f) => Some(Value::Float(*f)),
        ExprKind::Duration(ms) => Some(Value::Duration(*ms)),
        ExprKind::Str(s) => Some(Value::str(s.clone())),
        _ => None,
    }
}

/// True for an expression with no statements inside it (no block, `if`,
/// `match`, `try`, closure, `?`), so evaluating it cannot assign a plain local
/// of the function compiling it: calls run other frames, which see only
/// snapshots (a local a closure captures and assigns is a cell, never plain).
fn cannot_assign(e: &Expr) -> bool {
    let args_ok = |args: &[Arg]| args.iter().all(|a| matches!(a, Arg::Positional(x) if cannot_assign(x)));
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Duration(_)
        | ExprKind::Str(_)
        | ExprKind::Bool(_)
        | ExprKind::Nil
        | ExprKind::Ident(_) => true,
        ExprKind::List(elems) => elems.iter().all(|x| matches!(x, ListElem::Item(x) if cannot_assign(x))),
        ExprKind::Call { args, .. } => args_ok(args),
        ExprKind::MethodCall { object, args, .. } => cannot_assign(object) && args_ok(args),
        ExprKind::Property { object, .. } => cannot_assign(object),
        ExprKind::Index { object, index, .. } => cannot_assign(object) && cannot_assign(index),
        ExprKind::Binary { lhs, rhs, .. } => cannot_assign(lhs) && cannot_assign(rhs),
        ExprKind::Unary { operand, .. } => cannot_assign(operand),
        ExprKind::Ternary { cond, then, else_ } => cannot_assign(cond) && cannot_assign(then) && cannot_assign(else_),
        ExprKind::StructConstruct { fields, .. } => fields.iter().all(|(_, x)| cannot_assign(x)),
        ExprKind::EnumConstruct { args, .. } => args_ok(args),
        ExprKind::InterpolatedStr(parts) => parts.iter().all(|p| match p {
            StrSegment::Lit(_) => true,
            StrSegment::Expr(x) => cannot_assign(x),
        }),
        ExprKind::Dict(entries) => entries.iter().all(|e| match e {
            DictEntry::Pair { key: DictKey::Name(_), value } => cannot_assign(value),
            DictEntry::Pair { key: DictKey::Computed(k), value } => cannot_assign(k) && cannot_assign(value),
            DictEntry::Spread(x) => cannot_assign(x),
        }),
        _ => false,
    }
}

enum PathKey<'a> {
    Name(String),
    Expr(&'a Expr),
}

/// For `a.b[c].d`, returns `a` and pushes the keys `b`, `c`, `d`.
fn assignment_root<'a>(e: &'a Expr, keys: &mut Vec<PathKey<'a>>) -> Option<&'a str> {
    match &e.kind {
        ExprKind::Ident(name) => Some(name),
        ExprKind::Property { object, name, .. } => {
            let root = assignment_root(object, keys)?;
            keys.push(PathKey::Name(name.clone()));
            Some(root)
        }
        ExprKind::Index { object, index, .. } => {
            let root = assignment_root(object, keys)?;
            keys.push(PathKey::Expr(index));
            Some(root)
        }
        _ => None,
    }
}

/// Root names of assignment targets in a function body (not nested functions).
fn collect_assigned(stmts: &[Stmt], out: &mut Vec<String>) {
    fn push(out: &mut Vec<String>, name: &str) {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    fn in_expr(e: &Expr, out: &mut Vec<String>) {
        match &e.kind {
            ExprKind::If { then, else_, .. } => {
                collect_assigned(then, out);
                match else_ {
                    Some(ElseBranch::Block(b)) => collect_assigned(b, out),
                    Some(ElseBranch::If(x)) => in_expr(x, out),
                    None => {}
                }
            }
            ExprKind::Match { arms, .. } => arms.iter().for_each(|a| collect_assigned(&a.body, out)),
            ExprKind::TryCatch { body, catch, finally } => {
                collect_assigned(body, out);
                if let Some(c) = catch {
                    collect_assigned(&c.body, out);
                }
                if let Some(f) = finally {
                    collect_assigned(f, out);
                }
            }
            ExprKind::Retry { body, .. } | ExprKind::Deadline { body, .. } => collect_assigned(body, out),
            _ => {}
        }
    }
    for s in stmts {
        match &s.kind {
            StmtKind::Assign { target, .. } => {
                let mut keys = Vec::new();
                if let Some(root) = assignment_root(target, &mut keys) {
                    push(out, root);
                }
            }
            StmtKind::Expr(e) => in_expr(e, out),
            StmtKind::While { body, .. } | StmtKind::For { body, .. } => collect_assigned(body, out),
            StmtKind::Guard { else_body, .. } => collect_assigned(else_body, out),
            StmtKind::Defer(b) | StmtKind::Mutex(b) => collect_assigned(b, out),
            StmtKind::Let { value, .. } | StmtKind::Var { value, .. } => in_expr(value, out),
            _ => {}
        }
    }
}
