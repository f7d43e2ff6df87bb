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

use std::cell::RefCell;
use std::rc::Rc;

use regex::{Regex, RegexBuilder};
use rustc_hash::FxHashMap;

use super::args::{check_alloc, done, opt_text_arg};
use super::{BuiltinDef, Ctx, Flow};
use crate::error::{VmError, VmResult};
use crate::value::{DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "regex_match", func: regex_match },
    BuiltinDef { name: "regex_replace", func: regex_replace },
    BuiltinDef { name: "regex_replace_all", func: regex_replace },
    BuiltinDef { name: "regex_captures", func: regex_captures },
    BuiltinDef { name: "regex_split", func: regex_split },
];

/// Patterns kept per thread before the cache is flushed.
const CACHE_CAPACITY: usize = 256;

thread_local! {
    static CACHE: RefCell<FxHashMap<(String, String), Rc<Regex>>> = RefCell::new(FxHashMap::default());
}

/// The compiled `pattern` with `flags`, from the cache when possible.
fn compiled(pattern: &str, flags: &str, builtin: &str) -> VmResult<Rc<Regex>> {
    let key = (flags.to_string(), pattern.to_string());
    if let Some(re) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
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
                return Err(VmError::throw_msg(format!(
                    "{builtin}: invalid regex flag '{other}' (expected some of i, m, s, x)"
                )))
            }
        };
    }
    let re = Rc::new(builder.build().map_err(|e| VmError::throw_msg(format!("{builtin}: invalid regex: {e}")))?);
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, Rc::clone(&re));
    });
    Ok(re)
}

/// The flags argument at `i` (missing or nil = none).
fn flags(args: &[Value], i: usize) -> String {
    opt_text_arg(args, i).map(|f| f.into_owned()).unwrap_or_default()
}

fn regex_match(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (Some(pattern), Some(text)) = (opt_text_arg(args, 0), opt_text_arg(args, 1)) else {
        return done(Value::Nil);
    };
    let re = compiled(&pattern, &flags(args, 2), "regex_match")?;
    let matches: Vec<Value> = re.find_iter(&text).map(|m| Value::str(m.as_str())).collect();
    done(if matches.is_empty() { Value::Nil } else { Value::list(matches) })
}

fn regex_replace(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (Some(pattern), Some(replacement), Some(text)) =
        (opt_text_arg(args, 0), opt_text_arg(args, 1), opt_text_arg(args, 2))
    else {
        return done(Value::Nil);
    };
    let re = compiled(&pattern, &flags(args, 3), "regex_replace")?;
    // Same result as `Regex::replace_all`, built piecewise so a replacement
    // that multiplies the text hits the allocation limit instead of the OOM killer.
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in re.captures_iter(&text) {
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
    let re = compiled(&pattern, &flags(args, 2), "regex_captures")?;
    let names: Vec<(usize, &str)> = re.capture_names().enumerate().filter_map(|(i, n)| Some((i, n?))).collect();
    let text_value = |m: Option<regex::Match>| m.map_or(Value::Nil, |m| Value::str(m.as_str()));
    let results = re
        .captures_iter(&text)
        .map(|caps| {
            let mut entry = DictMap::new();
            for &(i, name) in &names {
                if caps.get(i).is_some() {
                    entry.insert(HStr::new(name.to_string()), text_value(caps.get(i)));
                }
            }
            entry.insert(HStr::new("match".to_string()), text_value(caps.get(0)));
            entry.insert(
                HStr::new("groups".to_string()),
                Value::list((1..caps.len()).map(|i| text_value(caps.get(i))).collect()),
            );
            Value::dict(entry)
        })
        .collect();
    done(Value::list(results))
}

fn regex_split(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (Some(text), Some(pattern)) = (opt_text_arg(args, 0), opt_text_arg(args, 1)) else {
        return done(Value::Nil);
    };
    let re = compiled(&pattern, &flags(args, 2), "regex_split")?;
    done(Value::list(re.split(&text).map(Value::str).collect()))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use crate::value::Value;

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
            Ok("[{groups: [2024, 01, nil], match: 2024-01, year: 2024}, {groups: [1999, 12, nil], match: 1999-12, year: 1999}]"
                .into())
        );
        assert_eq!(call("regex_captures", &[r"\d", "none"]), Ok("[]".into()));
    }

    #[test]
    fn invalid_patterns_throw() {
        let err = call("regex_match", &["[oops", "text"]).unwrap_err();
        assert!(err.starts_with("Thrown: regex_match: invalid regex: "), "{err}");
        let err = call("regex_match", &["a", "a", "q"]).unwrap_err();
        assert_eq!(err, "Thrown: regex_match: invalid regex flag 'q' (expected some of i, m, s, x)");
    }
}
