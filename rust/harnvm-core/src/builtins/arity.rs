//! Builtin arity as harn 0.9.11 checks it: a call with a count outside a
//! builtin's declared range fails with `Arity mismatch: 'len' expects 1
//! argument, got 2` (catchable) before the builtin runs.
//!
//! The ranges are cold data generated from the oracle (`arity_table.rs`, by
//! `python -m tests.oracle_golden.probe_arity`), resolved once into a dense
//! per-id array, so the call path costs one lookup and two compares.
//! Builtins 0.9.11 does not check, does not have, or that the conformance
//! suite calls with other counts are `PERMISSIVE`: extra arguments are
//! ignored and missing ones read as nil, as before.

use std::sync::LazyLock;

use super::arity_table::ORACLE_ARITY;
use super::{builtin_id, BUILTINS};
use crate::runtime::error::{ErrorKind, VmError};

/// Upper bound meaning "no limit" (0.9.11's `expects at least N arguments`).
pub(super) const VARIADIC: u8 = u8::MAX;
/// No check at all.
pub(super) const PERMISSIVE: (u8, u8) = (0, VARIADIC);

/// (min, max) per builtin id; builtins missing from the generated table
/// (added after it was last regenerated) are permissive.
static BOUNDS_BY_ID: LazyLock<Vec<(u8, u8)>> = LazyLock::new(|| {
    let mut bounds = vec![PERMISSIVE; BUILTINS.len()];
    for &(name, range) in ORACLE_ARITY {
        if let Some(id) = builtin_id(name) {
            bounds[id as usize] = range;
        }
    }
    bounds
});

/// The accepted argument counts of builtin `id`: (min, max), max `VARIADIC`
/// for no upper limit.
pub fn bounds(id: u32) -> (u8, u8) {
    BOUNDS_BY_ID[id as usize]
}

/// Checks `argc` against builtin `id`'s range; the error path is out of line.
#[inline]
pub fn check(id: u32, argc: usize) -> Result<(), VmError> {
    let (min, max) = BOUNDS_BY_ID[id as usize];
    if !accepts(min, max, argc) {
        return Err(mismatch(id, argc));
    }
    Ok(())
}

#[inline]
fn accepts(min: u8, max: u8, argc: usize) -> bool {
    argc >= min as usize && (argc <= max as usize || max == VARIADIC)
}

/// For the static checker: `Some("1 argument")` (what builtin `id` expects)
/// when `argc` is outside its range.
pub fn rejects(id: u32, argc: usize) -> Option<String> {
    let (min, max) = bounds(id);
    (!accepts(min, max, argc)).then(|| expects(min, max))
}

#[cold]
#[inline(never)]
fn mismatch(id: u32, argc: usize) -> VmError {
    let (min, max) = bounds(id);
    let name = super::builtin_name(id);
    VmError::new(ErrorKind::Arity(format!("'{name}' expects {}, got {argc}", expects(min, max))))
}

/// 0.9.11's wording: `1 argument`, `0 arguments`, `1..=2 arguments`,
/// `at least 1 argument`.
fn expects(min: u8, max: u8) -> String {
    let noun = |n: u8| if n == 1 { "argument" } else { "arguments" };
    if max == VARIADIC {
        format!("at least {min} {}", noun(min))
    } else if min == max {
        format!("{min} {}", noun(min))
    } else {
        format!("{min}..={max} arguments")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::builtin_names;

    #[test]
    fn every_registered_builtin_has_a_generated_entry() {
        let table: std::collections::HashSet<&str> = ORACLE_ARITY.iter().map(|(n, _)| *n).collect();
        let missing: Vec<&str> = builtin_names().filter(|n| !table.contains(n)).collect();
        assert!(missing.is_empty(), "no arity entry (rerun tests.oracle_golden.probe_arity): {missing:?}");
        let unknown: Vec<&str> = table.iter().copied().filter(|n| builtin_id(n).is_none()).collect();
        assert!(unknown.is_empty(), "arity entries for builtins harnvm lacks: {unknown:?}");
    }

    #[test]
    fn ranges_are_well_formed() {
        for &(name, (min, max)) in ORACLE_ARITY {
            assert!(min <= max, "{name}: {min} > {max}");
        }
    }

    #[test]
    fn messages_use_the_oracle_wording() {
        let msg = |name: &str, argc| check(builtin_id(name).unwrap(), argc).unwrap_err().message();
        assert_eq!(bounds(builtin_id("len").unwrap()), (1, 1));
        assert_eq!(msg("len", 2), "Arity mismatch: 'len' expects 1 argument, got 2");
        assert_eq!(msg("len", 0), "Arity mismatch: 'len' expects 1 argument, got 0");
        assert_eq!(msg("uuid", 1), "Arity mismatch: 'uuid' expects 0 arguments, got 1");
        assert_eq!(msg("substring", 1), "Arity mismatch: 'substring' expects 2..=3 arguments, got 1");
        assert_eq!(msg("format", 0), "Arity mismatch: 'format' expects at least 1 argument, got 0");
        assert!(check(builtin_id("format").unwrap(), 300).is_ok());
        assert!(check(builtin_id("substring").unwrap(), 3).is_ok());
        assert!(check(builtin_id("to_string").unwrap(), 7).is_ok());
    }
}
