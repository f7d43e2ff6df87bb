//! Source text to syntax tree: positions, the lexer, the parser and the AST.

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod pos;

pub use pos::Pos;
