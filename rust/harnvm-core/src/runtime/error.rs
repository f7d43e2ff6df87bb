//! The one error type of the core.
//!
//! `VmError` is a single pointer wide so `Result<Value, VmError>` stays small
//! on the hot path; the payload is built in `#[cold]` constructors.
//! Front-end errors (lex/parse/compile) carry a source position; runtime
//! errors carry the Harn call stack, filled in as the error unwinds.

use std::fmt;

use crate::runtime::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Lex,
    Parse,
    Compile,
    Runtime,
}

#[derive(Debug, Clone)]
pub enum ErrorKind {
    /// `throw v`, `require`, `assert*` and builtin argument errors.
    Thrown(Value),
    /// `Type error: ...`
    Type(String),
    /// `Runtime error: ...`
    Runtime(String),
    DivisionByZero,
    /// Name and an optional "did you mean" suggestion.
    UndefinedVariable(String, Option<String>),
    UndefinedBuiltin(String, Option<String>),
    ImmutableAssignment(String),
    StackOverflow,
    /// A call with fewer arguments than the callee's required parameters
    /// (the message after `Arity mismatch: `). Catchable; never gets a line suffix.
    Arity(String),
    /// A resource limit, typed so hosts map it without reading the message
    /// (`message` is the detail after "Resource limit exceeded: "). Not
    /// catchable by Harn code.
    Limit(LimitKind, String),
    /// The host cancelled the run. Not catchable by Harn code.
    Interrupted,
    /// Lexer, parser or compiler error; the message already includes `at L:C` where Harn puts it.
    Syntax(String),
    /// An imported module could not be found (`module` is the import path as written).
    ModuleNotFound {
        module: String,
        message: String,
    },
    /// An import failed otherwise: a name the module does not export, a
    /// collision, a cycle, a module that cannot be read.
    Import {
        module: String,
        export: Option<String>,
        message: String,
    },
}

/// Which resource a `Limit` error ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The run's wall-clock budget (`VmOptions::time_limit_ms`).
    Time,
    /// An allocation or decoded output beyond `Limits::max_alloc`, or the
    /// run's heap growth beyond its memory budget (`VmOptions::max_memory`).
    Memory,
    /// The run used up its instruction budget (`VmOptions::max_instructions`).
    Instructions,
    /// The run wrote more output than its budget (`VmOptions::max_output`).
    Output,
}

/// One Harn frame of a runtime error's stack trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEntry {
    pub function: String,
    pub file: String,
    pub line: u32,
    /// 1-based; 0 when unknown. (From the chunk's cold position table.)
    pub column: u32,
}

#[derive(Debug, Clone)]
pub struct ErrorData {
    pub kind: ErrorKind,
    pub phase: Phase,
    /// Source line of the failing instruction (runtime) or of the error (front end).
    pub line: u32,
    pub column: u32,
    pub file: String,
    /// The text of the offending source line (front-end errors).
    pub source_line: Option<String>,
    /// Innermost frame first.
    pub stack: Vec<StackEntry>,
}

#[derive(Clone)]
pub struct VmError(pub Box<ErrorData>);

pub type VmResult<T> = Result<T, VmError>;

impl VmError {
    #[cold]
    #[inline(never)]
    pub fn new(kind: ErrorKind) -> VmError {
        VmError(Box::new(ErrorData {
            kind,
            phase: Phase::Runtime,
            line: 0,
            column: 0,
            file: String::new(),
            source_line: None,
            stack: Vec::new(),
        }))
    }

    #[cold]
    pub fn thrown(v: Value) -> VmError {
        VmError::new(ErrorKind::Thrown(v))
    }
    /// A builtin's argument error: Harn throws these as plain strings.
    #[cold]
    pub fn throw_msg(msg: impl Into<String>) -> VmError {
        VmError::new(ErrorKind::Thrown(Value::str(msg.into())))
    }
    #[cold]
    pub fn type_error(msg: impl Into<String>) -> VmError {
        VmError::new(ErrorKind::Type(msg.into()))
    }
    #[cold]
    pub fn runtime(msg: impl Into<String>) -> VmError {
        VmError::new(ErrorKind::Runtime(msg.into()))
    }
    #[cold]
    pub fn limit(kind: LimitKind, msg: impl Into<String>) -> VmError {
        VmError::new(ErrorKind::Limit(kind, msg.into()))
    }

    /// A front-end error at a source position.
    #[cold]
    pub fn syntax(phase: Phase, msg: impl Into<String>, line: u32, column: u32) -> VmError {
        let mut e = VmError::new(ErrorKind::Syntax(msg.into()));
        e.0.phase = phase;
        e.0.line = line;
        e.0.column = column;
        e
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Whether Harn `try`/`catch` may intercept this error.
    pub fn is_catchable(&self) -> bool {
        !matches!(
            self.0.kind,
            ErrorKind::Limit(..)
                | ErrorKind::Interrupted
                | ErrorKind::Syntax(_)
                | ErrorKind::ModuleNotFound { .. }
                | ErrorKind::Import { .. }
        )
    }

    /// The value a `catch (e)` binds: the thrown value itself, or the error's display text.
    pub fn catch_value(&self) -> Value {
        match &self.0.kind {
            ErrorKind::Thrown(v) => v.clone(),
            _ => Value::str(self.message()),
        }
    }

    /// Harn's `VmError` Display, without the ` (line N)` suffix.
    pub fn message(&self) -> String {
        match &self.0.kind {
            ErrorKind::Thrown(v) => format!("Thrown: {}", v.display()),
            ErrorKind::Type(m) => format!("Type error: {m}"),
            ErrorKind::Runtime(m) => format!("Runtime error: {m}"),
            ErrorKind::DivisionByZero => "Division by zero".to_string(),
            // With a hint 0.9.11 reports it as a runtime error (the prefix
            // shows in a caught value too); without one, bare.
            ErrorKind::UndefinedVariable(n, None) => format!("Undefined variable: {n}"),
            ErrorKind::UndefinedVariable(n, hint) => {
                format!("Runtime error: Undefined variable: {n}{}", did_you_mean(hint))
            }
            ErrorKind::UndefinedBuiltin(n, hint) => format!("Undefined builtin: {n}{}", did_you_mean(hint)),
            ErrorKind::ImmutableAssignment(n) => format!("Cannot assign to immutable binding: {n}"),
            ErrorKind::StackOverflow => "Stack overflow: too many nested calls".to_string(),
            ErrorKind::Arity(m) => format!("Arity mismatch: {m}"),
            ErrorKind::Limit(_, m) => format!("Resource limit exceeded: {m}"),
            ErrorKind::Interrupted => "Interrupted by host".to_string(),
            ErrorKind::Syntax(m) => m.clone(),
            ErrorKind::ModuleNotFound { message, .. } | ErrorKind::Import { message, .. } => message.clone(),
        }
    }

    /// The message as it reads when the error escapes the program (Harn's
    /// uncaught form): most non-thrown runtime errors are re-wrapped as
    /// `Runtime error: ... (line N)`; type errors keep their prefix.
    pub fn uncaught_message(&self) -> String {
        let line = self.0.line;
        match &self.0.kind {
            ErrorKind::Thrown(_)
            | ErrorKind::Syntax(_)
            | ErrorKind::Limit(..)
            | ErrorKind::Interrupted
            | ErrorKind::Arity(_)
            | ErrorKind::ModuleNotFound { .. }
            | ErrorKind::Import { .. } => self.message(),
            ErrorKind::Type(_) | ErrorKind::Runtime(_) | ErrorKind::UndefinedVariable(_, Some(_)) => {
                with_line(self.message(), line)
            }
            _ => with_line(format!("Runtime error: {}", self.message()), line),
        }
    }

    /// The thrown Harn value, if this error came from `throw`.
    pub fn thrown_value(&self) -> Option<&Value> {
        match &self.0.kind {
            ErrorKind::Thrown(v) => Some(v),
            _ => None,
        }
    }

    /// Records where a runtime error happened, once (innermost position wins).
    pub fn set_location_if_unset(&mut self, file: &str, line: u32) {
        if self.0.line == 0 {
            self.0.line = line;
            self.0.file = file.to_string();
        }
    }

    /// `set_location_if_unset` with the column too (runtime errors: the
    /// failing instruction's position).
    pub fn set_position_if_unset(&mut self, file: &str, line: u32, column: u32) {
        if self.0.line == 0 {
            self.0.line = line;
            self.0.column = column;
            self.0.file = file.to_string();
        }
    }
}

fn did_you_mean(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!(" (did you mean `{h}`?)"),
        None => String::new(),
    }
}

fn with_line(msg: String, line: u32) -> String {
    if line > 0 {
        format!("{msg} (line {line})")
    } else {
        msg
    }
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uncaught_message())
    }
}

impl fmt::Debug for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VmError({:?}: {})", self.0.phase, self.uncaught_message())
    }
}

/// Closest candidate for "did you mean" hints: Levenshtein distance at most
/// 1/2/3 for names of length <=2/<=5/longer; ties prefer the smaller distance,
/// then the closer length, then alphabetical order. Names starting `__` are skipped.
pub fn closest_match<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let n = name.chars().count();
    let max = if n <= 2 {
        1
    } else if n <= 5 {
        2
    } else {
        3
    };
    // Ties prefer a candidate with the same first letter (typos rarely hit it).
    let first = name.chars().next();
    let mut best: Option<(usize, bool, usize, &str)> = None;
    for c in candidates {
        if c.starts_with("__") || c == name {
            continue;
        }
        let d = strsim::levenshtein(name, c);
        if d > max {
            continue;
        }
        let len_diff = (c.chars().count() as isize - n as isize).unsigned_abs();
        let key = (d, c.chars().next() != first, len_diff, c);
        if best.is_none_or(|b| key < b) {
            best = Some(key);
        }
    }
    best.map(|(_, _, _, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_pointer() {
        assert_eq!(std::mem::size_of::<VmError>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn uncaught_messages() {
        let mut e = VmError::new(ErrorKind::DivisionByZero);
        e.set_location_if_unset("x.harn", 3);
        assert_eq!(e.uncaught_message(), "Runtime error: Division by zero (line 3)");
        let mut t = VmError::type_error("Cannot add bool and int");
        t.set_location_if_unset("x.harn", 3);
        assert_eq!(t.uncaught_message(), "Type error: Cannot add bool and int (line 3)");
        let th = VmError::throw_msg("fatal");
        assert_eq!(th.uncaught_message(), "Thrown: fatal");
    }

    #[test]
    fn did_you_mean() {
        assert_eq!(closest_match("reponse", ["response", "request", "x"]), Some("response".into()));
        assert_eq!(closest_match("zz", ["response"]), None);
    }
}
