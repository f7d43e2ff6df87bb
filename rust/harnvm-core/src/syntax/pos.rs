//! Source positions: where a token, node or instruction came from.

/// A 1-based line and column (cold data: kept beside code, never read while
/// it runs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// What an error report shows of a source line: at most about `width`
/// display columns around the 1-based character `column`, and the padding
/// that puts a caret under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excerpt {
    /// The shown text; `...` marks a cut at either end.
    pub text: String,
    /// Goes before the caret: tabs stay tabs (so the caret lines up however
    /// tabs render), every other character becomes as many spaces as the
    /// terminal columns it takes (two for wide CJK characters, none for
    /// combining marks).
    pub pad: String,
}

/// Cuts `line` to the part around `column` (see [`Excerpt`]). A column past
/// the end points just after the last character.
pub fn excerpt(line: &str, column: u32, width: usize) -> Excerpt {
    use unicode_width::UnicodeWidthChar;
    let line = line.trim_end_matches(['\r', '\n']);
    let chars: Vec<char> = line.chars().collect();
    let w = |c: char| if c == '\t' { 1 } else { c.width().unwrap_or(0) };
    let at = (column.max(1) as usize - 1).min(chars.len());
    // Walk left from the error up to half the budget, then right with what is left.
    let mut start = at;
    let mut used = 0;
    while start > 0 && used + w(chars[start - 1]) <= width / 2 {
        start -= 1;
        used += w(chars[start]);
    }
    let mut end = at;
    while end < chars.len() && used + w(chars[end]) <= width {
        used += w(chars[end]);
        end += 1;
    }
    // A short tail leaves room to show more on the left.
    while start > 0 && used + w(chars[start - 1]) <= width {
        start -= 1;
        used += w(chars[start]);
    }
    let mut text = String::new();
    let mut pad = String::new();
    if start > 0 {
        text.push_str("...");
        pad.push_str("   ");
    }
    text.extend(&chars[start..end]);
    if end < chars.len() {
        text.push_str("...");
    }
    for &c in &chars[start..at] {
        if c == '\t' {
            pad.push('\t');
        } else {
            pad.extend(std::iter::repeat_n(' ', w(c)));
        }
    }
    Excerpt { text, pad }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_are_whole_and_the_caret_counts_wide_characters() {
        let e = excerpt("let s = \"日本語\" + @", 17, 120);
        assert_eq!(e.text, "let s = \"日本語\" + @");
        // 9 narrow characters, 3 wide ones (6 columns), then `" + ` (4).
        assert_eq!(e.pad.len(), 9 + 6 + 4);
        assert_eq!(excerpt("\tx = @", 6, 120).pad, "\t    ");
    }

    #[test]
    fn long_lines_are_cut_around_the_error() {
        let line = format!("{}@{}", "a".repeat(100_000), "b".repeat(100_000));
        let e = excerpt(&line, 100_001, 120);
        assert!(e.text.len() <= 126, "{}", e.text.len());
        assert!(e.text.starts_with("...a") && e.text.ends_with("b..."));
        assert_eq!(e.text.chars().nth(e.pad.chars().count()), Some('@'));
        // An error near the start shows the start, uncut.
        let e = excerpt(&line, 3, 120);
        assert!(e.text.starts_with("aaa") && e.text.ends_with("..."));
        assert_eq!(e.pad, "  ");
    }
}
