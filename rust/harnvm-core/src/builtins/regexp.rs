//! Regex builtins (Rust `regex` syntax, `(?P<name>...)` groups, optional
//! flags string of `i m s x`).
//!
//! * `regex_match(pattern, text, flags?)` → list of every match, or nil
//! * `regex_replace(pattern, replacement, text, flags?)` (alias
//!   `regex_replace_all`) → every match replaced; `$1` / `${name}` refs
//! * `regex_captures(pattern, text, flags?)` → list of
//!   `{match, groups: [...], <name>: ...}` (unmatched groups are nil)
//! * `regex_split(text, pattern, flags?)` → list of pieces (NOTE the order)
//!
//! A missing or nil pattern/text gives nil (`[]` for captures); an invalid
//! pattern or flag throws `<builtin>: invalid regex: ...`.
//! Compiled patterns are cached per thread.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::{Regex, RegexBuilder};
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::args::{check_alloc, done, interned, opt_text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::native::{charge_work, poll};
use crate::runtime::value::{DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "regex_match", imp: Native(regex_match) },
    BuiltinDef { name: "regex_replace", imp: Native(regex_replace) },
    BuiltinDef { name: "regex_replace_all", imp: Native(regex_replace) },
    BuiltinDef { name: "regex_captures", imp: Native(regex_captures) },
    BuiltinDef { name: "regex_split", imp: Native(regex_split) },
];

/// Compiled patterns kept per thread before the cache is flushed.
const CACHE_CAPACITY: usize = 256;

/// A compiled pattern with its named groups as ready-made dict keys.
struct CompiledRegex {
    regex: Regex,
    /// `(group index, name)` of every named group.
    named_groups: Vec<(usize, HStr)>,
}

/// Compiled patterns by pattern text, then by flags (almost always one entry).
/// Keyed by the pattern alone so a lookup borrows the argument's text
/// instead of building an owned key per call.
struct RegexCache {
    /// The pattern string last used without flags, by identity: a call site
    /// passes the same constant string every time, so a pointer compare finds
    /// it without hashing. Holding the string keeps its address from being reused.
    last: Option<(HStr, Rc<CompiledRegex>)>,
    by_pattern: FxHashMap<String, Vec<(String, Rc<CompiledRegex>)>>,
    len: usize,
}

thread_local! {
    static CACHE: RefCell<RegexCache> = const {
        RefCell::new(RegexCache { last: None, by_pattern: HashMap::with_hasher(FxBuildHasher), len: 0 })
    };
}

/// The compiled `pattern` with `flags`, from the cache when possible;
/// `pattern_arg` is the argument the pattern text came from.
fn compiled(pattern_arg: &Value, pattern: &str, flags: &str, builtin: &str) -> VmResult<Rc<CompiledRegex>> {
    let identity = match pattern_arg {
        Value::Str(s) if flags.is_empty() => Some(s),
        _ => None,
    };
    let remember = |cache: &mut RegexCache, re: &Rc<CompiledRegex>| {
        if let Some(s) = identity {
            cache.last = Some((Rc::clone(s), Rc::clone(re)));
        }
    };
    let cached = CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if let (Some(s), Some((last, re))) = (identity, &cache.last) {
            if Rc::ptr_eq(s, last) {
                return Some(Rc::clone(re));
            }
        }
        let variants = cache.by_pattern.get(pattern)?;
        let re = variants.iter().find(|(f, _)| f == flags).map(|(_, re)| Rc::clone(re))?;
        remember(&mut cache, &re);
        Some(re)
    });
    if let Some(re) = cached {
        return Ok(re);
    }
    let mut builder = RegexBuilder::new(pattern);
    for flag in flags.chars() {
        match flag {
            'i' => builder.case_insensitive(true),
            'm' => builder.multi_line(true),
            's' => builder.dot_matches_new_line(true),
            'x' => builder.ignore_whitespace(true),
            other => {
                return Err(VmError::throw_msg(format!("{builtin}: invalid regex flag '{other}' (expected some of i, m, s, x)")))
            }
        };
    }
    let regex = builder.build().map_err(|e| VmError::throw_msg(format!("{builtin}: invalid regex: {e}")))?;
    let named_groups = regex.capture_names().enumerate().filter_map(|(i, n)| Some((i, Rc::new(n?.to_string())))).collect();
    let re = Rc::new(CompiledRegex { regex, named_groups });
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len >= CACHE_CAPACITY {
            cache.by_pattern.clear();
            cache.len = 0;
        }
        cache.len += 1;
        cache.by_pattern.entry(pattern.to_string()).or_default().push((flags.to_string(), Rc::clone(&re)));
        remember(&mut cache, &re);
    });
    Ok(re)
}

/// The flags argument at `i` (missing or nil = none).
fn flags(args: &[Value], i: usize) -> Cow<'_, str> {
    opt_text_arg(args, i).unwrap_or_default()
}

fn regex_match(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (Some(pattern), Some(text)) = (opt_text_arg(args, 0), opt_text_arg(args, 1)) else {
        return done(Value::Nil);
    };
    let re = compiled(&args[0], &pattern, &flags(args, 2), "regex_match")?;
    charge_work(text.len())?;
    let matches: Vec<Value> =
        re.regex.find_iter(&text).map(|m| poll().map(|_| Value::str(m.as_str()))).collect::<VmResult<_>>()?;
    done(if matches.is_empty() { Value::Nil } else { Value::list(matches) })
}

fn regex_replace(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (Some(pattern), Some(replacement), Some(text)) = (opt_text_arg(args, 0), opt_text_arg(args, 1), opt_text_arg(args, 2))
    else {
        return done(Value::Nil);
    };
    let re = compiled(&args[0], &pattern, &flags(args, 3), "regex_replace")?;
    charge_work(text.len())?;
    // Same result as `Regex::replace_all`, built piecewise so a replacement
    // that multiplies the text hits the allocation limit instead of the OOM killer.
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in re.regex.captures_iter(&text) {
        let whole = caps.get(0).expect("group 0 always participates");
        out.push_str(&text[last..whole.start()]);
        caps.expand(&replacement, &mut out);
        last = whole.end();
        check_alloc(out.len(), ctx.limits, "regex_replace")?;
    }
    out.push_str(&text[last..]);
    done(Value::str(out))
}

fn regex_captures(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (Some(pattern), Some(text)) = (opt_text_arg(args, 0), opt_text_arg(args, 1)) else {
        return done(Value::list(vec![]));
    };
    let re = compiled(&args[0], &pattern, &flags(args, 2), "regex_captures")?;
    charge_work(text.len())?;
    let text_value = |m: Option<regex::Match>| m.map_or(Value::Nil, |m| Value::str(m.as_str()));
    // Match positions in characters and 1-based lines, counted incrementally
    // (matches come in order).
    let (mut seen_bytes, mut seen_chars, mut seen_lines) = (0usize, 0i64, 1i64);
    let mut advance = |to: usize| {
        let part = &text[seen_bytes..to];
        seen_chars += part.chars().count() as i64;
        seen_lines += part.bytes().filter(|b| *b == b'\n').count() as i64;
        seen_bytes = to;
        (seen_chars, seen_lines)
    };
    let results = re
        .regex
        .captures_iter(&text)
        .map(|caps| {
            poll()?;
            let mut entry = DictMap::new();
            if let Some(whole) = caps.get(0) {
                let (start, line) = advance(whole.start());
                let (end, _) = advance(whole.end());
                entry.insert(interned("start"), Value::Int(start));
                entry.insert(interned("end"), Value::Int(end));
                entry.insert(interned("line"), Value::Int(line));
            }
            for (i, name) in &re.named_groups {
                if let Some(group) = caps.get(*i) {
                    entry.insert(Rc::clone(name), Value::str(group.as_str()));
                }
            }
            entry.insert(interned("match"), text_value(caps.get(0)));
            entry.insert(interned("groups"), Value::list((1..caps.len()).map(|i| text_value(caps.get(i))).collect()));
            Ok(Value::dict(entry))
        })
        .collect::<VmResult<_>>()?;
    done(Value::list(results))
}

fn regex_split(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (Some(text), Some(pattern)) = (opt_text_arg(args, 0), opt_text_arg(args, 1)) else {
        return done(Value::Nil);
    };
    let re = compiled(&args[1], &pattern, &flags(args, 2), "regex_split")?;
    charge_work(text.len())?;
    let pieces = re.regex.split(&text).map(|p| poll().map(|_| Value::str(p))).collect::<VmResult<_>>()?;
    done(Value::list(pieces))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use crate::runtime::value::Value;

    fn call(name: &str, args: &[&str]) -> Result<String, String> {
        let args: Vec<Value> = args.iter().map(|a| Value::str(*a)).collect();
        run_builtin(name, &args, &no_callback).map(|v| v.display())
    }

    #[test]
    fn matching_with_flags() {
        assert_eq!(call("regex_match", &[r"\d+", "abc 123 def 456"]), Ok("[123, 456]".into()));
        assert_eq!(call("regex_match", &["hello", "HeLLo", "i"]), Ok("[HeLLo]".into()));
        assert_eq!(call("regex_match", &["^b", "a\nB", "im"]), Ok("[B]".into()));
        assert_eq!(call("regex_match", &["a.+c", "a\nb\nc", "s"]), Ok("[a\nb\nc]".into()));
        assert_eq!(call("regex_match", &["a b c", "abc", "x"]), Ok("[abc]".into()));
        assert_eq!(call("regex_match", &["hello", "world"]), Ok("nil".into()));
    }

    #[test]
    fn replacing_and_splitting() {
        assert_eq!(call("regex_replace", &[r"(\w+)\s(\w+)", "$2 $1", "hello world"]), Ok("world hello".into()));
        assert_eq!(call("regex_replace_all", &[r"(?P<word>\w+)", "<$word>", "one two"]), Ok("<one> <two>".into()));
        assert_eq!(call("regex_split", &["a, b, c", r",\s*"]), Ok("[a, b, c]".into()));
        let big = "x".repeat(2000);
        let err = call("regex_replace", &["", &big, &big]).unwrap_err();
        assert!(err.starts_with("Resource limit exceeded: regex_replace"), "{}", &err[..80]);
    }

    #[test]
    fn captures() {
        assert_eq!(
            call("regex_captures", &[r"(?P<year>\d{4})-(\d{2})(x)?", "2024-01 1999-12"]),
            Ok("[{end: 7, groups: [2024, 01, nil], line: 1, match: 2024-01, start: 0, year: 2024}, {end: 15, groups: [1999, 12, nil], line: 1, match: 1999-12, start: 8, year: 1999}]"
                .into())
        );
        assert_eq!(call("regex_captures", &[r"\d", "none"]), Ok("[]".into()));
    }

    #[test]
    fn cache_keeps_patterns_and_flags_apart() {
        // More distinct patterns than the cache holds, twice over: every
        // lookup (fresh, cached, after a flush) must give that pattern's result.
        for round in 0..2 {
            for n in 0..(super::CACHE_CAPACITY + 50) {
                let pattern = format!("^a{{{n}}}$");
                let text = "a".repeat(n);
                assert_eq!(call("regex_match", &[&pattern, &text]), Ok(format!("[{text}]")), "round {round}, n {n}");
                assert_eq!(call("regex_match", &[&pattern, &format!("{text}a")]), Ok("nil".into()));
            }
        }
        // The same pattern text with different flags is a different regex.
        for _ in 0..3 {
            assert_eq!(call("regex_match", &["abc", "ABC"]), Ok("nil".into()));
            assert_eq!(call("regex_match", &["abc", "ABC", "i"]), Ok("[ABC]".into()));
            assert_eq!(call("regex_match", &["abc", "abc"]), Ok("[abc]".into()));
        }
    }

    #[test]
    fn cache_by_identity_never_confuses_strings() {
        use super::super::callback::test_driver::{no_callback, run_builtin};
        // One string object used as the pattern over and over (the constant
        // of a call site), interleaved with other strings of other texts.
        let digits = Value::str("[0-9]+");
        let letters = Value::str("[a-z]+");
        let text = Value::str("ab12cd345");
        let run =
            |pattern: &Value| run_builtin("regex_match", &[pattern.clone(), text.clone()], &no_callback).map(|v| v.display());
        for _ in 0..3 {
            assert_eq!(run(&digits), Ok("[12, 345]".into()));
            assert_eq!(run(&letters), Ok("[ab, cd]".into()));
            assert_eq!(run(&Value::str("[0-9]+")), Ok("[12, 345]".into()));
            assert_eq!(run(&Value::str("c")), Ok("[c]".into()));
        }
        // A non-string pattern is displayed and compiled like its text.
        assert_eq!(
            run_builtin("regex_match", &[Value::Int(12), text.clone()], &no_callback).map(|v| v.display()),
            Ok("[12]".into())
        );
    }

    #[test]
    fn named_groups_and_reserved_keys() {
        // Named-group keys are built once per pattern; each result still gets
        // its own values, and `match`/`groups` win over groups of those names.
        for _ in 0..2 {
            assert_eq!(
                call("regex_captures", &[r"(?P<k>\w)=(?P<match>\d)", "a=1 b=2"]),
                Ok("[{end: 3, groups: [a, 1], k: a, line: 1, match: a=1, start: 0}, {end: 7, groups: [b, 2], k: b, line: 1, match: b=2, start: 4}]"
                    .into())
            );
        }
    }

    #[test]
    fn invalid_patterns_throw() {
        let err = call("regex_match", &["[oops", "text"]).unwrap_err();
        assert!(err.starts_with("Thrown: regex_match: invalid regex: "), "{err}");
        let err = call("regex_match", &["a", "a", "q"]).unwrap_err();
        assert_eq!(err, "Thrown: regex_match: invalid regex flag 'q' (expected some of i, m, s, x)");
        // A failed compile is not cached: the same bad pattern fails again,
        // in every builtin, and a good pattern still works in between.
        for (builtin, args) in [
            ("regex_match", &["(unclosed", "x"][..]),
            ("regex_captures", &["(unclosed", "x"]),
            ("regex_replace", &["(unclosed", "y", "x"]),
            ("regex_match", &["(unclosed", "x"]),
        ] {
            let err = call(builtin, args).unwrap_err();
            assert!(err.starts_with(&format!("Thrown: {builtin}: invalid regex: ")), "{err}");
            assert_eq!(call("regex_match", &["x", "x"]), Ok("[x]".into()));
        }
        let err = call("regex_split", &["text", "[oops"]).unwrap_err();
        assert!(err.starts_with("Thrown: regex_split: invalid regex: "), "{err}");
    }
}
