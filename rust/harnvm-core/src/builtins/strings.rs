//! String builtins and the string helpers shared with string methods.
//!
//! Indices and lengths are in chars (Unicode scalar values). The string
//! builtins coerce non-string arguments by displaying them, as the reference
//! does (`trim(42)` is `"42"`). Operations whose output can grow far beyond
//! their input (repeat, replace, pad, join) check `Limits` first.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;

use super::args::{check_alloc, check_alloc_product, done, opt_text_arg, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow, Limits};
use crate::runtime::error::{VmError, VmResult};
pub use crate::runtime::text::{byte_offset, char_at, char_len, char_slice, clamp_index, repeat};
use crate::runtime::value::{arg, values_equal, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "contains", imp: Native(contains) },
    BuiltinDef { name: "split", imp: Native(split) },
    BuiltinDef { name: "join", imp: Native(join) },
    BuiltinDef { name: "replace", imp: Native(replace) },
    BuiltinDef { name: "trim", imp: Native(trim) },
    BuiltinDef { name: "lowercase", imp: Native(lowercase) },
    BuiltinDef { name: "uppercase", imp: Native(uppercase) },
    BuiltinDef { name: "starts_with", imp: Native(starts_with) },
    BuiltinDef { name: "ends_with", imp: Native(ends_with) },
    BuiltinDef { name: "substring", imp: Native(substring) },
    BuiltinDef { name: "format", imp: Native(format) },
    BuiltinDef { name: "str_pad", imp: Native(str_pad) },
    BuiltinDef { name: "snake_to_camel", imp: Native(snake_to_camel) },
    BuiltinDef { name: "snake_to_pascal", imp: Native(snake_to_pascal) },
    BuiltinDef { name: "snake_to_kebab", imp: Native(snake_to_kebab) },
    BuiltinDef { name: "camel_to_snake", imp: Native(camel_to_snake) },
    BuiltinDef { name: "camel_to_kebab", imp: Native(camel_to_kebab) },
    BuiltinDef { name: "pascal_to_snake", imp: Native(pascal_to_snake) },
    BuiltinDef { name: "kebab_to_snake", imp: Native(kebab_to_snake) },
    BuiltinDef { name: "kebab_to_camel", imp: Native(kebab_to_camel) },
    BuiltinDef { name: "uppercase_first", imp: Native(uppercase_first) },
    BuiltinDef { name: "lowercase_first", imp: Native(lowercase_first) },
    BuiltinDef { name: "title_case", imp: Native(title_case) },
    BuiltinDef { name: "unicode_normalize", imp: Native(unicode_normalize) },
    BuiltinDef { name: "unicode_graphemes", imp: Native(unicode_graphemes) },
    BuiltinDef { name: "basename", imp: Native(basename) },
    BuiltinDef { name: "dirname", imp: Native(dirname) },
    BuiltinDef { name: "extname", imp: Native(extname) },
];

// ---------------------------------------------------------------------------
// Shared helpers

/// Char index of the first (or last) occurrence of `needle`, or -1.
pub fn char_index_of(s: &str, needle: &str, last: bool) -> i64 {
    let found = if last { s.rfind(needle) } else { s.find(needle) };
    found.map_or(-1, |b| char_len(&s[..b]) as i64)
}

/// The chars of `s` as 1-char strings. Each costs a list slot and a small
/// string (about 64 bytes), checked against the memory budget up front, and
/// the loop polls the other budgets.
pub fn chars(s: &str) -> VmResult<Vec<Value>> {
    crate::runtime::native::check_memory(s.len().saturating_mul(64))?;
    let mut out = Vec::with_capacity(s.len().min(1 << 16));
    for c in s.chars() {
        crate::runtime::native::poll()?;
        out.push(Value::str(c.to_string()));
    }
    Ok(out)
}

/// `str::split` pieces (empty pieces kept).
pub fn split_on(s: &str, sep: &str) -> Vec<Value> {
    match sep.as_bytes() {
        // A one-byte separator (",", ".", " ") searches with memchr instead of
        // setting up a substring searcher; the pieces are the same.
        &[byte] if byte.is_ascii() => s.split(char::from(byte)).map(Value::str).collect(),
        _ => s.split(sep).map(Value::str).collect(),
    }
}

/// Every occurrence of `old` replaced, within the allocation limit.
pub fn replace_all(s: &str, old: &str, new: &str, limits: &Limits) -> VmResult<String> {
    if new.len() > old.len() {
        // An empty `old` matches between every char (and at both ends).
        let count = if old.is_empty() { char_len(s) + 1 } else { s.matches(old).count() };
        let growth = (count as u128).saturating_mul((new.len() - old.len()) as u128);
        check_alloc((s.len() as u128).saturating_add(growth).min(usize::MAX as u128) as usize, limits, "replace")?;
    }
    Ok(s.replace(old, new))
}

/// Where padding goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PadSide {
    Left,
    Right,
    Both,
}

/// `s` padded with `fill` to `width` chars (unchanged when already that wide).
/// `Both` puts the odd char on the right.
pub fn pad(s: &str, width: i64, fill: char, side: PadSide, limits: &Limits) -> VmResult<String> {
    let len = char_len(s) as i64;
    if width <= len {
        return Ok(s.to_string());
    }
    let missing = (width - len) as u128;
    check_alloc_product(missing, fill.len_utf8() as u128, limits, "string pad")?;
    let missing = missing as usize;
    let (left, right) = match side {
        PadSide::Left => (missing, 0),
        PadSide::Right => (0, missing),
        PadSide::Both => (missing / 2, missing - missing / 2),
    };
    let mut out = String::with_capacity(s.len() + missing * fill.len_utf8());
    out.extend(std::iter::repeat_n(fill, left));
    out.push_str(s);
    out.extend(std::iter::repeat_n(fill, right));
    Ok(out)
}

/// The displayed items joined with `sep`, within the allocation limit.
pub fn join_display(items: &[Value], sep: &str, limits: &Limits) -> VmResult<String> {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match item {
            Value::Str(s) => out.push_str(s),
            other => other.write_display(&mut out),
        }
        check_alloc(out.len(), limits, "join")?;
    }
    Ok(out)
}

/// Splits an identifier into words at `_`, `-`, whitespace, lower→upper
/// changes, and before the last capital of an acronym followed by lowercase
/// (`HTTPServer` → `HTTP`, `Server`).
fn words(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' || c == '-' || c.is_whitespace() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_numeric() || (prev.is_uppercase() && next_is_lower) {
                words.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// First char upper-cased, the rest lower-cased.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or(String::new(), |first| first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect())
}

/// First char mapped by `f`, the rest unchanged.
fn map_first(s: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = s.chars();
    chars.next().map_or(String::new(), |first| f(first) + chars.as_str())
}

/// Identifier case styles.
#[derive(Clone, Copy)]
enum Case {
    Snake,
    Kebab,
    Camel,
    Pascal,
}

fn convert_case(s: &str, case: Case) -> String {
    let words = words(s);
    match case {
        Case::Snake | Case::Kebab => {
            let sep = if matches!(case, Case::Snake) { "_" } else { "-" };
            words.iter().map(|w| w.to_lowercase()).collect::<Vec<_>>().join(sep)
        }
        Case::Camel | Case::Pascal => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 && matches!(case, Case::Camel) { w.to_lowercase() } else { capitalized(w) })
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// Builtins

fn string_result(s: impl Into<String>) -> VmResult<Flow> {
    done(Value::str(s))
}

/// `contains(s, sub)` substring test, or `contains(list, x)` membership.
fn contains(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let found = match arg(args, 0) {
        Value::Str(s) => s.contains(text_arg(args, 1).as_ref()),
        Value::List(items) | Value::Set(items) => items.iter().any(|v| values_equal(v, arg(args, 1))),
        _ => false,
    };
    done(Value::Bool(found))
}

fn split(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let sep = opt_text_arg(args, 1).unwrap_or(Cow::Borrowed(" "));
    done(Value::list(split_on(&text_arg(args, 0), &sep)))
}

fn join(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match arg(args, 0) {
        Value::List(items) | Value::Set(items) => string_result(join_display(items, &text_arg(args, 1), ctx.limits)?),
        _ => string_result(""),
    }
}

fn replace(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(replace_all(&text_arg(args, 0), &text_arg(args, 1), &text_arg(args, 2), ctx.limits)?)
}

fn trim(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(text_arg(args, 0).trim())
}

fn lowercase(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(text_arg(args, 0).to_lowercase())
}

fn uppercase(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(text_arg(args, 0).to_uppercase())
}

fn starts_with(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(text_arg(args, 0).starts_with(text_arg(args, 1).as_ref())))
}

fn ends_with(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(text_arg(args, 0).ends_with(text_arg(args, 1).as_ref())))
}

/// `substring(s, start, length?)`: unlike the method, the third argument is
/// a LENGTH. A negative start is clamped to 0.
fn substring(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let s = text_arg(args, 0);
    let start = arg(args, 1).as_int().unwrap_or(0).max(0);
    let end = arg(args, 2).as_int().map(|length| start.saturating_add(length.max(0)));
    string_result(char_slice(&s, start, end))
}

/// `format(template, args...)`: each `{}` takes the next argument; with a
/// dict as the only argument, `{name}` takes `dict.name`. Placeholders with
/// nothing to fill them stay verbatim.
fn format(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let template = text_arg(args, 0);
    let named = match args {
        [_, Value::Dict(map)] => Some(map),
        _ => None,
    };
    let mut positional = args.iter().skip(1);
    let mut out = String::with_capacity(template.len());
    let mut rest: &str = &template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').filter(|&c| after[..c].chars().all(|ch| ch.is_alphanumeric() || ch == '_'));
        match close {
            Some(0) => match positional.next() {
                Some(v) => v.write_display(&mut out),
                None => out.push_str("{}"),
            },
            Some(c) => {
                let name = &after[..c];
                match named.and_then(|map| map.get(&name.to_string())) {
                    Some(v) => v.write_display(&mut out),
                    None => {
                        let _ = write!(out, "{{{name}}}");
                    }
                }
            }
            None => {
                out.push('{');
                rest = after;
                continue;
            }
        }
        rest = &after[close.unwrap_or(0) + 1..];
    }
    out.push_str(rest);
    string_result(out)
}

/// `str_pad(s, width, fill = " ", side = "right")`, side one of
/// `"left"`, `"right"`, `"both"`.
fn str_pad(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let s = text_arg(args, 0);
    let width = arg(args, 1).as_int().unwrap_or(0);
    let fill = opt_text_arg(args, 2).and_then(|f| f.chars().next()).unwrap_or(' ');
    let side = match opt_text_arg(args, 3).as_deref() {
        None | Some("right") => PadSide::Right,
        Some("left") => PadSide::Left,
        Some("both") => PadSide::Both,
        Some(other) => {
            return Err(VmError::throw_msg(format!("str_pad: side must be \"left\", \"right\" or \"both\", got \"{other}\"")))
        }
    };
    string_result(pad(&s, width, fill, side, ctx.limits)?)
}

fn snake_to_camel(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(convert_case(&text_arg(args, 0), Case::Camel))
}
fn kebab_to_camel(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(convert_case(&text_arg(args, 0), Case::Camel))
}
fn snake_to_pascal(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(convert_case(&text_arg(args, 0), Case::Pascal))
}
fn camel_to_snake(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(convert_case(&text_arg(args, 0), Case::Snake))
}
fn pascal_to_snake(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(convert_case(&text_arg(args, 0), Case::Snake))
}
fn kebab_to_snake(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(convert_case(&text_arg(args, 0), Case::Snake))
}
fn snake_to_kebab(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(convert_case(&text_arg(args, 0), Case::Kebab))
}
fn camel_to_kebab(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(convert_case(&text_arg(args, 0), Case::Kebab))
}

fn uppercase_first(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(map_first(&text_arg(args, 0), |c| c.to_uppercase().collect()))
}

fn lowercase_first(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    string_result(map_first(&text_arg(args, 0), |c| c.to_lowercase().collect()))
}

/// Upper-cases the first letter of every space-separated word.
fn title_case(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let s = text_arg(args, 0);
    let titled: Vec<String> = s.split(' ').map(|w| map_first(w, |c| c.to_uppercase().collect())).collect();
    string_result(titled.join(" "))
}

/// `unicode_normalize(s, form = "NFC")`, form one of NFC, NFD, NFKC, NFKD.
fn unicode_normalize(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    use unicode_normalization::UnicodeNormalization;
    let s = text_arg(args, 0);
    let form = opt_text_arg(args, 1).map_or_else(|| "NFC".to_string(), |f| f.to_uppercase());
    string_result(match form.as_str() {
        "NFC" => s.nfc().collect::<String>(),
        "NFD" => s.nfd().collect(),
        "NFKC" => s.nfkc().collect(),
        "NFKD" => s.nfkd().collect(),
        other => {
            return Err(VmError::throw_msg(format!("unicode_normalize: form must be NFC, NFD, NFKC or NFKD, got \"{other}\"")))
        }
    })
}

/// The extended grapheme clusters of a string (what a reader sees as characters).
fn unicode_graphemes(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    use unicode_segmentation::UnicodeSegmentation;
    done(Value::list(text_arg(args, 0).graphemes(true).map(Value::str).collect()))
}

fn basename(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let path = text_arg(args, 0);
    string_result(Path::new(path.as_ref()).file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()))
}

fn dirname(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let path = text_arg(args, 0);
    string_result(Path::new(path.as_ref()).parent().map_or(String::new(), |p| p.to_string_lossy().into_owned()))
}

fn extname(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let path = text_arg(args, 0);
    string_result(Path::new(path.as_ref()).extension().map_or(String::new(), |e| format!(".{}", e.to_string_lossy())))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use crate::runtime::value::Value;

    fn call(name: &str, args: &[Value]) -> String {
        run_builtin(name, args, &no_callback).map_or_else(|e| e, |v| v.display())
    }
    fn s(x: &str) -> Value {
        Value::str(x)
    }

    #[test]
    fn basic_string_builtins() {
        assert_eq!(call("contains", &[s("hello world"), s("lo wo")]), "true");
        assert_eq!(call("contains", &[Value::list(vec![Value::Int(1), Value::Int(2)]), Value::Int(2)]), "true");
        assert_eq!(call("contains", &[Value::Int(5), Value::Int(5)]), "false");
        assert_eq!(call("split", &[s("a,b,c"), s(",")]), "[a, b, c]");
        assert_eq!(call("split", &[s("a b")]), "[a, b]");
        // One-byte separators take the memchr path; the pieces match str::split.
        for (text, sep) in [("1.2.3", "."), (".a..b.", "."), ("", "."), ("abc", "."), ("a,b", ","), ("é.ü", ".")] {
            let expected: Vec<&str> = text.split(sep).collect();
            assert_eq!(call("split", &[s(text), s(sep)]), format!("[{}]", expected.join(", ")), "{text:?} on {sep:?}");
        }
        assert_eq!(call("split", &[s("aébéc"), s("é")]), "[a, b, c]");
        assert_eq!(call("split", &[s("a::b"), s("::")]), "[a, b]");
        assert_eq!(call("split", &[s("ab"), s("")]), "[, a, b, ]");
        assert_eq!(call("join", &[Value::list(vec![s("a"), Value::Int(1)]), s(", ")]), "a, 1");
        assert_eq!(call("join", &[s("not a list")]), "");
        assert_eq!(call("replace", &[s("hello world"), s("world"), s("harn")]), "hello harn");
        assert_eq!(call("trim", &[s("  hi  ")]), "hi");
        assert_eq!(call("trim", &[Value::Int(42)]), "42");
        assert_eq!(call("lowercase", &[s("HeLLo")]), "hello");
        assert_eq!(call("uppercase", &[s("héllo")]), "HÉLLO");
        assert_eq!(call("starts_with", &[s("hello"), s("he")]), "true");
        assert_eq!(call("ends_with", &[s("hello"), s("he")]), "false");
    }

    #[test]
    fn substring_takes_a_length() {
        assert_eq!(call("substring", &[s("hello world"), Value::Int(0), Value::Int(5)]), "hello");
        assert_eq!(call("substring", &[s("hello world"), Value::Int(6)]), "world");
        assert_eq!(call("substring", &[s("hello world"), Value::Int(6), Value::Int(3)]), "wor");
        assert_eq!(call("substring", &[s("héllo"), Value::Int(-3), Value::Int(2)]), "hé");
        assert_eq!(call("substring", &[s("héllo"), Value::Int(3), Value::Int(99)]), "lo");
        assert_eq!(call("substring", &[s("abc"), Value::Int(9)]), "");
    }

    #[test]
    fn format_placeholders() {
        assert_eq!(call("format", &[s("Hello, {}!"), s("world")]), "Hello, world!");
        assert_eq!(call("format", &[s("{} + {} = {}"), Value::Int(1), Value::Int(2), Value::Int(3)]), "1 + 2 = 3");
        assert_eq!(call("format", &[s("{} and {}"), Value::Int(1)]), "1 and {}");
        assert_eq!(call("format", &[s("no placeholders")]), "no placeholders");
        let d = Value::dict_from([("name", s("Alice")), ("city", s("NYC"))]);
        assert_eq!(call("format", &[s("Hello {name} from {city}"), d.clone()]), "Hello Alice from NYC");
        assert_eq!(call("format", &[s("{name} {missing} {a b} {"), d]), "Alice {missing} {a b} {");
    }

    #[test]
    fn padding() {
        assert_eq!(call("str_pad", &[s("ha"), Value::Int(5), s("."), s("left")]), "...ha");
        assert_eq!(call("str_pad", &[s("ha"), Value::Int(5), s("."), s("right")]), "ha...");
        assert_eq!(call("str_pad", &[s("é"), Value::Int(3), s("."), s("both")]), ".é.");
        assert_eq!(call("str_pad", &[s("ab"), Value::Int(5), s("*"), s("both")]), "*ab**");
        assert_eq!(call("str_pad", &[s("abc"), Value::Int(2)]), "abc");
        assert_eq!(
            call("str_pad", &[s("a"), Value::Int(3), s("."), s("middle")]),
            "Thrown: str_pad: side must be \"left\", \"right\" or \"both\", got \"middle\""
        );
        assert!(call("str_pad", &[s("a"), Value::Int(i64::MAX)]).starts_with("Resource limit exceeded: string pad"));
    }

    #[test]
    fn case_conversion() {
        let conv = |name: &str, x: &str| call(name, &[s(x)]);
        assert_eq!(conv("snake_to_camel", "test_file_patterns"), "testFilePatterns");
        assert_eq!(conv("snake_to_camel", "a"), "a");
        assert_eq!(conv("snake_to_camel", ""), "");
        assert_eq!(conv("camel_to_snake", "testFilePatterns"), "test_file_patterns");
        assert_eq!(conv("camel_to_snake", "HTTPServer"), "http_server");
        assert_eq!(conv("camel_to_snake", "already_snake"), "already_snake");
        assert_eq!(conv("snake_to_pascal", "test_file_patterns"), "TestFilePatterns");
        assert_eq!(conv("pascal_to_snake", "TestFilePatterns"), "test_file_patterns");
        assert_eq!(conv("kebab_to_camel", "test-file-patterns"), "testFilePatterns");
        assert_eq!(conv("camel_to_kebab", "testFilePatterns"), "test-file-patterns");
        assert_eq!(conv("snake_to_kebab", "test_file_patterns"), "test-file-patterns");
        assert_eq!(conv("kebab_to_snake", "test-file-patterns"), "test_file_patterns");
        assert_eq!(conv("uppercase_first", "hello"), "Hello");
        assert_eq!(conv("lowercase_first", "Hello"), "hello");
        assert_eq!(conv("title_case", "hello world from harn"), "Hello World From Harn");
        assert_eq!(conv("camel_to_snake", "version2Api"), "version2_api");
    }

    #[test]
    fn unicode() {
        let decomposed = "e\u{301}";
        assert_eq!(call("unicode_normalize", &[s(decomposed), s("NFC")]), "\u{e9}");
        assert_eq!(call("unicode_normalize", &[s("\u{e9}"), s("nfd")]), decomposed);
        assert!(call("unicode_normalize", &[s("x"), s("XYZ")]).starts_with("Thrown: unicode_normalize: form must be"));
        assert_eq!(call("unicode_graphemes", &[s(&format!("{decomposed}x🇫🇷"))]), format!("[{decomposed}, x, 🇫🇷]"));
    }

    #[test]
    fn paths() {
        assert_eq!(call("dirname", &[s("/usr/local/bin/harn")]), "/usr/local/bin");
        assert_eq!(call("basename", &[s("/usr/local/bin/harn")]), "harn");
        assert_eq!(call("extname", &[s("file.txt")]), ".txt");
        assert_eq!(call("extname", &[s("archive.tar.gz")]), ".gz");
        assert_eq!(call("extname", &[s("noext")]), "");
        assert_eq!(call("dirname", &[s("file")]), "");
    }
}
