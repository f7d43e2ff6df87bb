//! Placeholder, replaced by the parser work.
pub struct Program;
