//! Lexer: Harn source text → tokens (language reference §1).
//!
//! Newlines are tokens (statements are newline-separated); spaces, tabs,
//! carriage returns, comments and `\`-newline continuations are skipped.
//! String interpolations keep the raw `${...}` text plus its source position;
//! the parser re-lexes and parses it so errors point into the string.
//! The first error aborts lexing, with Harn's exact message text.

use std::fmt;

use crate::runtime::error::{Phase, VmError, VmResult};

macro_rules! keywords {
    ($($variant:ident = $text:literal,)*) => {
        /// Reserved words. Contextual words (`gen`, `each`, `settle`, `with`,
        /// `as`, `stream`, `timeout`, `default`, `not`, `out`, `where`) are
        /// plain identifiers to the lexer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Kw { $($variant,)* }

        impl Kw {
            pub fn as_str(self) -> &'static str {
                match self { $(Kw::$variant => $text,)* }
            }

            pub fn from_word(word: &str) -> Option<Kw> {
                match word { $($text => Some(Kw::$variant),)* _ => None }
            }
        }
    };
}

keywords! {
    Break = "break",
    Catch = "catch",
    Continue = "continue",
    Deadline = "deadline",
    Defer = "defer",
    Emit = "emit",
    Else = "else",
    Enum = "enum",
    EvalPack = "eval_pack",
    Exclusive = "exclusive",
    Extends = "extends",
    False = "false",
    Finally = "finally",
    Fn = "fn",
    For = "for",
    From = "from",
    Guard = "guard",
    If = "if",
    Impl = "impl",
    Import = "import",
    In = "in",
    Interface = "interface",
    Let = "let",
    Match = "match",
    Mutex = "mutex",
    Nil = "nil",
    Override = "override",
    Parallel = "parallel",
    Pipeline = "pipeline",
    Pub = "pub",
    Require = "require",
    Retry = "retry",
    Return = "return",
    Select = "select",
    Skill = "skill",
    Spawn = "spawn",
    Struct = "struct",
    Throw = "throw",
    To = "to",
    Tool = "tool",
    True = "true",
    Try = "try",
    Type = "type",
    Var = "var",
    While = "while",
    Yield = "yield",
}

impl Kw {
    /// Whether the keyword may be used as a member name (`op.type`) or a bare
    /// dict key (`{for: 1}`).
    pub fn is_member_name(self) -> bool {
        !matches!(self, Kw::Finally | Kw::Require | Kw::Select | Kw::Skill | Kw::EvalPack)
    }
}

/// One piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Lit(String),
    /// The raw text between `${` and `}` and the position of its first character.
    Expr {
        text: String,
        line: u32,
        column: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Kw(Kw),
    Int(i64),
    Float(f64),
    /// Milliseconds.
    Duration(i64),
    Str(String),
    RawStr(String),
    InterpStr(Vec<Segment>),
    // Two-character operators.
    EqEq,
    NotEq,
    AndAnd,
    OrOr,
    PipeGt,
    QuestionQuestion,
    StarStar,
    QuestionDot,
    Arrow,
    LtEq,
    GtEq,
    PlusEq,
    MinusEq,
    StarEq,
    SlashEq,
    PercentEq,
    // Single-character operators and delimiters.
    Assign,
    Bang,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Lt,
    Gt,
    Question,
    Bar,
    At,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Semicolon,
    Newline,
    Eof,
}

/// Harn's token display, used in `Expected X, got Y` parse errors.
impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tok::Ident(s) => return write!(f, "id({s})"),
            Tok::Kw(k) => k.as_str(),
            Tok::Int(n) => return write!(f, "int({n})"),
            Tok::Float(n) => return write!(f, "float({n})"),
            Tok::Duration(ms) => return write!(f, "duration({ms}ms)"),
            Tok::Str(s) => return write!(f, "str({s})"),
            Tok::RawStr(s) => return write!(f, "rstr({s})"),
            Tok::InterpStr(_) => "istr(...)",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::PipeGt => "|>",
            Tok::QuestionQuestion => "??",
            Tok::StarStar => "**",
            Tok::QuestionDot => "?.",
            Tok::Arrow => "->",
            Tok::LtEq => "<=",
            Tok::GtEq => ">=",
            Tok::PlusEq => "+=",
            Tok::MinusEq => "-=",
            Tok::StarEq => "*=",
            Tok::SlashEq => "/=",
            Tok::PercentEq => "%=",
            Tok::Assign => "=",
            Tok::Bang => "!",
            Tok::Dot => ".",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::Question => "?",
            Tok::Bar => "|",
            Tok::At => "@",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Semicolon => ";",
            Tok::Newline => "\\n",
            Tok::Eof => "EOF",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: u32,
    pub column: u32,
}

/// Lexes a whole source file (a leading `#!` line is skipped).
pub fn tokenize(source: &str) -> VmResult<Vec<Token>> {
    let mut lx = Lexer::new(source, 1, 1);
    if source.starts_with("#!") {
        while lx.peek(0).is_some_and(|c| c != '\n') {
            lx.bump();
        }
    }
    lx.run()
}

/// Lexes a fragment (an interpolation's expression text) whose first
/// character sits at `line:column` of the enclosing file.
pub fn tokenize_at(source: &str, line: u32, column: u32) -> VmResult<Vec<Token>> {
    Lexer::new(source, line, column).run()
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    column: u32,
}

fn lex_error(msg: String, line: u32, column: u32) -> VmError {
    VmError::syntax(Phase::Lex, msg, line, column)
}

fn unexpected_char(c: char, line: u32, column: u32) -> VmError {
    lex_error(format!("Unexpected character '{c}' at {line}:{column}"), line, column)
}

fn unterminated_string(line: u32, column: u32) -> VmError {
    lex_error(format!("Unterminated string at {line}:{column}"), line, column)
}

impl Lexer {
    fn new(source: &str, line: u32, column: u32) -> Lexer {
        Lexer { chars: source.chars().collect(), pos: 0, line, column }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    /// Consumes one char, keeping line/column in step.
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    fn run(mut self) -> VmResult<Vec<Token>> {
        let mut tokens = Vec::new();
        while let Some(c) = self.peek(0) {
            let (line, column) = (self.line, self.column);
            let push = |tokens: &mut Vec<Token>, tok| tokens.push(Token { tok, line, column });
            match c {
                ' ' | '\t' | '\r' => {
                    self.bump();
                }
                '\n' => {
                    self.bump();
                    push(&mut tokens, Tok::Newline);
                }
                // `\` + newline joins lines (a `\r\n` ending is accepted too).
                '\\' if self.peek(1) == Some('\n') => {
                    self.bump();
                    self.bump();
                }
                '\\' if self.peek(1) == Some('\r') && self.peek(2) == Some('\n') => {
                    self.bump();
                    self.bump();
                    self.bump();
                }
                '/' if self.peek(1) == Some('/') => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                '/' if self.peek(1) == Some('*') => self.block_comment()?,
                '"' => {
                    let tok = self.string()?;
                    push(&mut tokens, tok);
                }
                'r' if self.peek(1) == Some('"') => {
                    let tok = self.raw_string()?;
                    push(&mut tokens, tok);
                }
                c if c.is_ascii_digit() => {
                    let tok = self.number();
                    push(&mut tokens, tok);
                }
                c if c.is_alphabetic() || c == '_' => {
                    let mut word = String::new();
                    while let Some(c) = self.peek(0).filter(|c| c.is_alphanumeric() || *c == '_') {
                        word.push(c);
                        self.bump();
                    }
                    let tok = match Kw::from_word(&word) {
                        Some(kw) => Tok::Kw(kw),
                        None => Tok::Ident(word),
                    };
                    push(&mut tokens, tok);
                }
                _ => {
                    let tok = self.operator().ok_or_else(|| unexpected_char(c, line, column))?;
                    push(&mut tokens, tok);
                }
            }
        }
        tokens.push(Token { tok: Tok::Eof, line: self.line, column: self.column });
        Ok(tokens)
    }

    fn block_comment(&mut self) -> VmResult<()> {
        let (line, column) = (self.line, self.column);
        self.bump();
        self.bump();
        // Block comments nest: `/* /* */ */`.
        let mut depth = 1usize;
        while depth > 0 {
            match (self.peek(0), self.peek(1)) {
                (Some('/'), Some('*')) => {
                    self.bump();
                    self.bump();
                    depth += 1;
                }
                (Some('*'), Some('/')) => {
                    self.bump();
                    self.bump();
                    depth -= 1;
                }
                (Some(_), _) => {
                    self.bump();
                }
                (None, _) => return Err(lex_error(format!("Unterminated block comment at {line}:{column}"), line, column)),
            }
        }
        Ok(())
    }

    fn operator(&mut self) -> Option<Tok> {
        let c = self.peek(0)?;
        let two = match (c, self.peek(1)) {
            ('=', Some('=')) => Some(Tok::EqEq),
            ('!', Some('=')) => Some(Tok::NotEq),
            ('&', Some('&')) => Some(Tok::AndAnd),
            ('|', Some('|')) => Some(Tok::OrOr),
            ('|', Some('>')) => Some(Tok::PipeGt),
            ('?', Some('?')) => Some(Tok::QuestionQuestion),
            ('*', Some('*')) => Some(Tok::StarStar),
            ('?', Some('.')) => Some(Tok::QuestionDot),
            ('-', Some('>')) => Some(Tok::Arrow),
            ('<', Some('=')) => Some(Tok::LtEq),
            ('>', Some('=')) => Some(Tok::GtEq),
            ('+', Some('=')) => Some(Tok::PlusEq),
            ('-', Some('=')) => Some(Tok::MinusEq),
            ('*', Some('=')) => Some(Tok::StarEq),
            ('/', Some('=')) => Some(Tok::SlashEq),
            ('%', Some('=')) => Some(Tok::PercentEq),
            _ => None,
        };
        if let Some(tok) = two {
            self.bump();
            self.bump();
            return Some(tok);
        }
        let one = match c {
            '=' => Tok::Assign,
            '!' => Tok::Bang,
            '.' => Tok::Dot,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '%' => Tok::Percent,
            '<' => Tok::Lt,
            '>' => Tok::Gt,
            '?' => Tok::Question,
            '|' => Tok::Bar,
            '@' => Tok::At,
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            ';' => Tok::Semicolon,
            _ => return None,
        };
        self.bump();
        Some(one)
    }

    fn number(&mut self) -> Tok {
        let mut text = String::new();
        while let Some(c) = self.peek(0).filter(char::is_ascii_digit) {
            text.push(c);
            self.bump();
        }
        // A `.` only continues the number when a digit follows (`42.method()`).
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            text.push('.');
            self.bump();
            while let Some(c) = self.peek(0).filter(char::is_ascii_digit) {
                text.push(c);
                self.bump();
            }
            return Tok::Float(text.parse().unwrap_or(f64::NAN));
        }
        let Ok(n) = text.parse::<i64>() else {
            // Too big for i64: Harn falls back to a float.
            return Tok::Float(text.parse().unwrap_or(f64::INFINITY));
        };
        if let Some(ms) = self.duration_unit() {
            return Tok::Duration(n.saturating_mul(ms));
        }
        Tok::Int(n)
    }

    /// Consumes a duration unit right after an integer, returning its size in
    /// ms. A unit followed by another alphanumeric char is not a unit (`5sec`).
    fn duration_unit(&mut self) -> Option<i64> {
        let boundary = |c: Option<char>| !c.is_some_and(char::is_alphanumeric);
        if self.peek(0) == Some('m') && self.peek(1) == Some('s') && boundary(self.peek(2)) {
            self.bump();
            self.bump();
            return Some(1);
        }
        let ms = match self.peek(0)? {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 604_800_000,
            _ => return None,
        };
        if !boundary(self.peek(1)) {
            return None;
        }
        self.bump();
        Some(ms)
    }

    fn raw_string(&mut self) -> VmResult<Tok> {
        let (line, column) = (self.line, self.column);
        self.bump(); // r
        self.bump(); // "
        let mut value = String::new();
        loop {
            match self.peek(0) {
                Some('"') => {
                    self.bump();
                    return Ok(Tok::RawStr(value));
                }
                Some('\n') | None => return Err(unterminated_string(line, column)),
                Some(c) => {
                    value.push(c);
                    self.bump();
                }
            }
        }
    }

    fn string(&mut self) -> VmResult<Tok> {
        if self.peek(1) == Some('"') && self.peek(2) == Some('"') {
            return self.triple_string();
        }
        let (line, column) = (self.line, self.column);
        self.bump();
        let mut lit = String::new();
        let mut segments = Vec::new();
        loop {
            match self.peek(0) {
                Some('"') => {
                    self.bump();
                    break;
                }
                Some('\n') | None => return Err(unterminated_string(line, column)),
                Some('$') if self.peek(1) == Some('{') => {
                    if !lit.is_empty() {
                        segments.push(Segment::Lit(std::mem::take(&mut lit)));
                    }
                    segments.push(self.interpolation(line, column)?);
                }
                Some('\\') => {
                    self.bump();
                    let Some(escaped) = self.peek(0) else {
                        return Err(unterminated_string(line, column));
                    };
                    if escaped == '\n' {
                        return Err(unterminated_string(line, column));
                    }
                    self.bump();
                    match escaped {
                        'n' => lit.push('\n'),
                        'r' => lit.push('\r'),
                        't' => lit.push('\t'),
                        '\\' => lit.push('\\'),
                        '"' => lit.push('"'),
                        '$' => lit.push('$'),
                        // Unknown escapes keep both characters (`"\d"`).
                        other => {
                            lit.push('\\');
                            lit.push(other);
                        }
                    }
                }
                Some(c) => {
                    lit.push(c);
                    self.bump();
                }
            }
        }
        if segments.is_empty() {
            return Ok(Tok::Str(lit));
        }
        if !lit.is_empty() {
            segments.push(Segment::Lit(lit));
        }
        Ok(Tok::InterpStr(segments))
    }

    /// Scans `${ ... }` (at `$`), counting braces but not understanding
    /// quotes, exactly like Harn. `(line, column)` is the string's start.
    fn interpolation(&mut self, line: u32, column: u32) -> VmResult<Segment> {
        self.bump(); // $
        self.bump(); // {
        let (expr_line, expr_column) = (self.line, self.column);
        let mut depth = 1usize;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(unterminated_string(line, column));
            };
            if c == '{' {
                depth += 1;
            } else if c == '}' {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            text.push(c);
            self.bump();
        }
        self.bump(); // }
        if text.trim().is_empty() {
            // Harn reports the position just past the closing brace.
            return Err(unexpected_char('}', self.line, self.column));
        }
        Ok(Segment::Expr { text, line: expr_line, column: expr_column })
    }

    /// `"""..."""`: multi-line, no escapes, `${}` allowed, common indent removed.
    fn triple_string(&mut self) -> VmResult<Tok> {
        let (line, column) = (self.line, self.column);
        self.bump();
        self.bump();
        self.bump();
        // One newline right after the opening quotes is dropped.
        if self.peek(0) == Some('\n') {
            self.bump();
        } else if self.peek(0) == Some('\r') && self.peek(1) == Some('\n') {
            self.bump();
            self.bump();
        }
        let mut pieces: Vec<Piece> = Vec::new();
        loop {
            match self.peek(0) {
                None => return Err(unterminated_string(line, column)),
                Some('"') if self.peek(1) == Some('"') && self.peek(2) == Some('"') => {
                    self.bump();
                    self.bump();
                    self.bump();
                    break;
                }
                Some('$') if self.peek(1) == Some('{') => {
                    pieces.push(Piece::Expr(self.interpolation(line, column)?));
                }
                Some(c) => {
                    pieces.push(Piece::Char(c));
                    self.bump();
                }
            }
        }
        Ok(dedent(pieces))
    }
}

/// A char or an interpolation of a triple-quoted string, before dedenting.
enum Piece {
    Char(char),
    Expr(Segment),
}

/// Applies the triple-quoted dedent rules: the minimum indent (spaces/tabs)
/// over non-blank lines of the literal text is stripped from every line,
/// whitespace-only lines become empty, and one trailing newline is removed.
/// With an indent of 0 only the trailing newline goes.
fn dedent(mut pieces: Vec<Piece>) -> Tok {
    // Minimum indent over the literal text (interpolations removed), as Harn does.
    let mut min_indent: Option<usize> = None;
    let mut indent = 0usize;
    let mut at_line_start = true;
    let mut blank = true;
    let mut finish_line = |indent: usize, blank: bool| {
        if !blank {
            min_indent = Some(min_indent.map_or(indent, |m| m.min(indent)));
        }
    };
    for piece in &pieces {
        let Piece::Char(c) = piece else { continue };
        match c {
            '\n' => {
                finish_line(indent, blank);
                indent = 0;
                at_line_start = true;
                blank = true;
            }
            ' ' | '\t' if at_line_start => indent += 1,
            c => {
                at_line_start = false;
                if !c.is_whitespace() {
                    blank = false;
                }
            }
        }
    }
    finish_line(indent, blank);
    let min_indent = min_indent.unwrap_or(0);

    if min_indent > 0 {
        pieces = strip_indent(pieces, min_indent);
    }
    if matches!(pieces.last(), Some(Piece::Char('\n'))) {
        pieces.pop();
    }

    let mut segments = Vec::new();
    let mut lit = String::new();
    for piece in pieces {
        match piece {
            Piece::Char(c) => lit.push(c),
            Piece::Expr(seg) => {
                if !lit.is_empty() {
                    segments.push(Segment::Lit(std::mem::take(&mut lit)));
                }
                segments.push(seg);
            }
        }
    }
    if segments.is_empty() {
        return Tok::Str(lit);
    }
    if !lit.is_empty() {
        segments.push(Segment::Lit(lit));
    }
    Tok::InterpStr(segments)
}

/// Strips up to `n` leading spaces/tabs from every line; lines holding only
/// whitespace (and no interpolation) become empty.
fn strip_indent(pieces: Vec<Piece>, n: usize) -> Vec<Piece> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut line: Vec<Piece> = Vec::new();
    let flush = |line: &mut Vec<Piece>, out: &mut Vec<Piece>| {
        let whitespace_only = line.iter().all(|p| matches!(p, Piece::Char(c) if c.is_whitespace()));
        if whitespace_only {
            line.clear();
            return;
        }
        let strip = line.iter().take(n).take_while(|p| matches!(p, Piece::Char(' ' | '\t'))).count();
        out.extend(line.drain(..).skip(strip));
    };
    for piece in pieces {
        if matches!(piece, Piece::Char('\n')) {
            flush(&mut line, &mut out);
            out.push(piece);
        } else {
            line.push(piece);
        }
    }
    flush(&mut line, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn err(src: &str) -> String {
        tokenize(src).unwrap_err().message()
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(
            toks("42 3.5 42.x 5ms 5s 2m 1h 1d 1w 5sec 1.5s"),
            vec![
                Tok::Int(42),
                Tok::Float(3.5),
                Tok::Int(42),
                Tok::Dot,
                Tok::Ident("x".into()),
                Tok::Duration(5),
                Tok::Duration(5000),
                Tok::Duration(120_000),
                Tok::Duration(3_600_000),
                Tok::Duration(86_400_000),
                Tok::Duration(604_800_000),
                Tok::Int(5),
                Tok::Ident("sec".into()),
                Tok::Float(1.5),
                Tok::Ident("s".into()),
                Tok::Eof,
            ]
        );
        assert_eq!(toks("99999999999999999999")[0], Tok::Float(1e20));
        assert_eq!(toks("5msx")[..2], [Tok::Int(5), Tok::Ident("msx".into())]);
    }

    #[test]
    fn operators_and_keywords() {
        assert_eq!(
            toks("a ?? b |> c ?. d -> e ** f != g += h\n"),
            vec![
                Tok::Ident("a".into()),
                Tok::QuestionQuestion,
                Tok::Ident("b".into()),
                Tok::PipeGt,
                Tok::Ident("c".into()),
                Tok::QuestionDot,
                Tok::Ident("d".into()),
                Tok::Arrow,
                Tok::Ident("e".into()),
                Tok::StarStar,
                Tok::Ident("f".into()),
                Tok::NotEq,
                Tok::Ident("g".into()),
                Tok::PlusEq,
                Tok::Ident("h".into()),
                Tok::Newline,
                Tok::Eof,
            ]
        );
        assert_eq!(toks("for gen")[..2], [Tok::Kw(Kw::For), Tok::Ident("gen".into())]);
    }

    #[test]
    fn comments_shebang_continuation() {
        assert_eq!(
            toks("#!/usr/bin/env harn\na /* x /* y */ z */ b // c\nd \\\n e"),
            vec![
                Tok::Newline,
                Tok::Ident("a".into()),
                Tok::Ident("b".into()),
                Tok::Newline,
                Tok::Ident("d".into()),
                Tok::Ident("e".into()),
                Tok::Eof,
            ]
        );
        assert_eq!(err("a /* /* */"), "Unterminated block comment at 1:3");
        assert_eq!(err("a\n # b"), "Unexpected character '#' at 2:2");
    }

    #[test]
    fn strings() {
        assert_eq!(toks(r#""a\n\t\\\"\$\d""#)[0], Tok::Str("a\n\t\\\"$\\d".into()));
        assert_eq!(toks(r#"r"a\n${x}""#)[0], Tok::RawStr("a\\n${x}".into()));
        assert_eq!(
            toks(r#""x=${a + {b}["c"]}!""#)[0],
            Tok::InterpStr(vec![
                Segment::Lit("x=".into()),
                Segment::Expr { text: "a + {b}[\"c\"]".into(), line: 1, column: 6 },
                Segment::Lit("!".into()),
            ])
        );
        assert_eq!(err("let x = \"abc\nx"), "Unterminated string at 1:9");
        assert_eq!(err("\"${}\""), "Unexpected character '}' at 1:5");
        assert_eq!(err("\"${ x"), "Unterminated string at 1:1");
        assert_eq!(err("x = `"), "Unexpected character '`' at 1:5");
    }

    #[test]
    fn triple_quoted_dedent() {
        let src = "let s = \"\"\"\n    hello\n      world\n\n    \"\"\"";
        assert_eq!(toks(src)[3], Tok::Str("hello\n  world\n".into()));
        let src = "\"\"\"\nhello\n  world\n\"\"\"";
        assert_eq!(toks(src)[0], Tok::Str("hello\n  world".into()));
        let src = "\"\"\"\n  a ${x}\n    b\n  \"\"\"";
        assert_eq!(
            toks(src)[0],
            Tok::InterpStr(vec![
                Segment::Lit("a ".into()),
                Segment::Expr { text: "x".into(), line: 2, column: 7 },
                Segment::Lit("\n  b".into()),
            ])
        );
        assert_eq!(toks(r#""""no \n escapes""""#)[0], Tok::Str("no \\n escapes".into()));
    }

    #[test]
    fn positions() {
        let t = tokenize("a\n  bb(c)").unwrap();
        let pos: Vec<_> = t.iter().map(|t| (t.line, t.column)).collect();
        assert_eq!(pos, vec![(1, 1), (1, 2), (2, 3), (2, 5), (2, 6), (2, 7), (2, 8)]);
    }

    #[test]
    fn token_display() {
        assert_eq!(Tok::Newline.to_string(), "\\n");
        assert_eq!(Tok::Ident("x".into()).to_string(), "id(x)");
        assert_eq!(Tok::Float(1.5).to_string(), "float(1.5)");
        assert_eq!(Tok::Duration(500).to_string(), "duration(500ms)");
        assert_eq!(Tok::Kw(Kw::Else).to_string(), "else");
        assert_eq!(Tok::Eof.to_string(), "EOF");
    }
}
