//! Placeholder for the PyO3 binding crate.
