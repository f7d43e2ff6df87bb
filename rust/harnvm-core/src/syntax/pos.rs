//! Source positions: where a token, node or instruction came from.

/// A 1-based line and column (cold data: kept beside code, never read while
/// it runs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}
