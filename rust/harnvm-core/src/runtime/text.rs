//! Char-indexed string helpers shared by the operators (`s[i]`, `s[a:b]`,
//! `s * n`) and the string builtins. Harn indexes strings by char.

use crate::runtime::error::VmResult;
use crate::runtime::native::{check_alloc_product, Limits};
use crate::runtime::value::Value;

/// Number of chars.
pub fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// Byte offset of char index `i` (the end of the string when `i` is past it).
pub fn byte_offset(s: &str, i: usize) -> usize {
    if s.is_ascii() {
        return i.min(s.len());
    }
    s.char_indices().nth(i).map_or(s.len(), |(b, _)| b)
}

/// Resolves a possibly negative char index against `len`: negative counts
/// from the end; the result is clamped to `0..=len`.
pub fn clamp_index(i: i64, len: usize) -> usize {
    let len = len as i64;
    (if i < 0 { len.saturating_add(i) } else { i }).clamp(0, len) as usize
}

/// Chars `[start, end)` with negative indices counting from the end, clamped.
pub fn char_slice(s: &str, start: i64, end: Option<i64>) -> &str {
    let len = char_len(s);
    let start = clamp_index(start, len);
    let end = end.map_or(len, |e| clamp_index(e, len)).max(start);
    &s[byte_offset(s, start)..byte_offset(s, end)]
}

/// The char at index `i` (negative counts from the end), as a 1-char string.
pub fn char_at(s: &str, i: i64) -> Option<Value> {
    let c = if i < 0 {
        let back = usize::try_from(i.checked_neg()? - 1).ok()?;
        s.chars().rev().nth(back)?
    } else {
        s.chars().nth(usize::try_from(i).ok()?)?
    };
    Some(Value::str(c.to_string()))
}

/// `s` repeated `n` times (`""` for n <= 0), within the allocation limit.
pub fn repeat(s: &str, n: i64, limits: &Limits) -> VmResult<String> {
    if n <= 0 || s.is_empty() {
        return Ok(String::new());
    }
    check_alloc_product(n as u128, s.len() as u128, limits, "string repeat")?;
    let total = s.len() * n as usize;
    if total <= crate::runtime::budget::WORK_PER_CHECK as usize {
        return Ok(s.repeat(n as usize));
    }
    // Big results are built a megabyte at a time, checking the budgets
    // (time, interrupt) between pieces.
    let mut out = String::with_capacity(total);
    let per_piece = (crate::runtime::budget::WORK_PER_CHECK as usize / s.len()).max(1);
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(per_piece);
        for _ in 0..k {
            out.push_str(s);
        }
        left -= k;
        crate::runtime::budget::check()?;
    }
    Ok(out)
}
