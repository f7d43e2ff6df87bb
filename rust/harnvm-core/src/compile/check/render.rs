//! Rendering of a diagnostic the way `harn check` prints it (reference §1.3):
//! header, `--> file:line:col`, the source line, a caret under the span, then
//! help and notes.

use crate::compile::check::Diagnostic;

/// `diag` as text (several lines, ending with a newline); `source` is the
/// text of the diagnostic's file.
pub fn render(diag: &Diagnostic, source: &str) -> String {
    let mut out = String::new();
    out.push_str(diag.severity.as_str());
    if let Some(code) = diag.code {
        out.push('[');
        out.push_str(code);
        out.push(']');
    }
    out.push_str(": ");
    out.push_str(&diag.message);
    out.push('\n');
    let src_line = if diag.line == 0 { None } else { source.lines().nth(diag.line as usize - 1) };
    let Some(text) = src_line else {
        if let Some(h) = &diag.help {
            out.push_str(&format!("  = help: {h}\n"));
        }
        for n in &diag.notes {
            out.push_str(&format!("  = note: {n}\n"));
        }
        return out;
    };
    let num = diag.line.to_string();
    let pad = " ".repeat(num.len() + 1);
    out.push_str(&format!("{pad}--> {}:{}:{}\n", diag.file, diag.line, diag.column));
    out.push_str(&format!("{pad} |\n"));
    out.push_str(&format!("{:>w$} | {text}\n", num, w = num.len() + 1));
    let col = diag.column.max(1) as usize;
    let width = match diag.end {
        Some((l, c)) if l == diag.line && c as usize > col => c as usize - col,
        Some((l, _)) if l > diag.line => text.chars().count().saturating_sub(col - 1).max(1),
        _ => 1,
    };
    out.push_str(&format!("{pad} | {}{}\n", " ".repeat(col - 1), "^".repeat(width)));
    if let Some(h) = &diag.help {
        out.push_str(&format!("{pad} = help: {h}\n"));
    }
    for n in &diag.notes {
        out.push_str(&format!("{pad} = note: {n}\n"));
    }
    out
}
