//! `to_xml(value, options?)` and `from_xml(text)`, shaped as harn 0.9.11
//! shapes them.
//!
//! `from_xml` gives `{root_name: content}`. An element's content is its text
//! (nil when empty; typed: `true`/`false`, ints and floats are values) when
//! it has neither attributes nor children; a list when
//! its only children are two or more of one tag; otherwise a dict with
//! `@attr` (the attributes), `@text` (the trimmed text) and one entry per
//! child tag (a list when the tag repeats). Comments, processing
//! instructions and doctypes are skipped; CDATA is text. Option
//! `preserve_repeated_tag: true` keeps the tag of such repeated children:
//! the element is then `{tag: [..]}` rather than the bare list.
//!
//! `to_xml` wraps the value in `<root>` (option `root`), writes dict entries
//! as child elements (keys made into XML names), list items as `<item>`
//! (option `item_tag`),
//! nil as an empty element; options `pretty` (two-space indentation) and
//! `declaration` (an `<?xml ...?>` line).

use super::args::{check_alloc, done, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, key_of, DictMap, HStr, Value};

// `__to_xml`/`__from_xml` are the same functions under names `std/xml`'s
// exports (which shadow `to_xml`/`from_xml` inside that module) can call.
pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "to_xml", imp: Native(to_xml) },
    BuiltinDef { name: "from_xml", imp: Native(from_xml) },
    BuiltinDef { name: "__to_xml", imp: Native(to_xml) },
    BuiltinDef { name: "__from_xml", imp: Native(from_xml) },
];

/// Deepest element nesting either direction follows.
const MAX_DEPTH: usize = 256;

fn k(s: &str) -> HStr {
    key_of(&Value::str(s))
}

fn option<'a>(options: &'a Value, name: &str) -> Option<&'a Value> {
    match options {
        Value::Dict(d) => d.get(&k(name)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// to_xml

/// A dict key as an element name: characters outside `[A-Za-z0-9_.:-]`
/// become `_`, a name not starting with a letter or `_` gets a `_` prefix,
/// and the empty key is `item`.
fn element_name(key: &str) -> String {
    if key.is_empty() {
        return "item".into();
    }
    let body: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':') { c } else { '_' }).collect();
    let first = key.chars().next().unwrap_or('_');
    if first.is_alphabetic() || first == '_' {
        body
    } else {
        format!("_{body}")
    }
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
}

struct Writer {
    out: String,
    pretty: bool,
    /// The element name of list items (option `item_tag`, made a valid name).
    item_tag: String,
}

impl Writer {
    fn indent(&mut self, depth: usize) {
        if self.pretty {
            if !self.out.is_empty() {
                self.out.push('\n');
            }
            for _ in 0..depth {
                self.out.push_str("  ");
            }
        }
    }

    /// Writes `<name>` with `v` as its content at nesting `depth`.
    fn element(&mut self, name: &str, v: &Value, depth: usize) -> VmResult<()> {
        if depth > MAX_DEPTH {
            return Err(VmError::throw_msg("to_xml: value nested too deeply"));
        }
        self.indent(depth);
        let children: Vec<(String, &Value)> = match v {
            Value::Nil => {
                self.out.push_str(&format!("<{name} />"));
                return Ok(());
            }
            Value::Dict(d) => d.iter().map(|(key, val)| (element_name(key), val)).collect(),
            Value::List(items) | Value::Set(items) => items.iter().map(|val| (self.item_tag.clone(), val)).collect(),
            scalar => {
                self.out.push_str(&format!("<{name}>"));
                escape_text(&scalar.display(), &mut self.out);
                self.out.push_str(&format!("</{name}>"));
                return Ok(());
            }
        };
        self.out.push_str(&format!("<{name}>"));
        for (child, val) in &children {
            self.element(child, val, depth + 1)?;
        }
        if !children.is_empty() {
            self.indent(depth);
        }
        self.out.push_str(&format!("</{name}>"));
        Ok(())
    }
}

fn to_xml(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let options = arg(args, 1);
    let root = match option(options, "root") {
        Some(Value::Str(s)) => element_name(s),
        _ => "root".to_string(),
    };
    let item_tag = match option(options, "item_tag") {
        Some(Value::Str(s)) => element_name(s),
        _ => "item".to_string(),
    };
    let mut w = Writer { out: String::new(), pretty: option(options, "pretty").is_some_and(Value::is_truthy), item_tag };
    w.element(&root, arg(args, 0), 0)?;
    if option(options, "declaration").is_some_and(Value::is_truthy) {
        let sep = if w.pretty { "\n" } else { "" };
        w.out = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{sep}{}", w.out);
    }
    done(Value::str(w.out))
}

// ---------------------------------------------------------------------------
// from_xml

struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

fn err(msg: impl Into<String>) -> VmError {
    VmError::throw_msg(format!("from_xml: {}", msg.into()))
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.i = self.s.len() - trimmed.len();
    }

    /// Skips `<!-- -->`, `<? ?>` and `<! >` at the cursor; false if none is there.
    fn skip_misc(&mut self) -> VmResult<bool> {
        let r = self.rest();
        let (open, close, what) = if r.starts_with("<!--") {
            ("<!--", "-->", "unterminated <!--")
        } else if r.starts_with("<?") {
            ("<?", "?>", "unterminated <?...?>")
        } else if r.starts_with("<!") && !r.starts_with("<![CDATA[") {
            ("<!", ">", "unterminated <!...>")
        } else {
            return Ok(false);
        };
        match r[open.len()..].find(close) {
            Some(at) => {
                self.i += open.len() + at + close.len();
                Ok(true)
            }
            None => Err(err(what)),
        }
    }

    /// An XML name: a letter, `_` or `:`, then letters, digits and `_-.:`.
    fn name(&mut self) -> VmResult<String> {
        let r = self.rest();
        let starts_well = r.chars().next().is_some_and(|c| c.is_alphabetic() || matches!(c, '_' | ':'));
        let end = r.find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))).unwrap_or(r.len());
        if !starts_well {
            return Err(err("expected element name"));
        }
        self.i += end;
        Ok(r[..end].to_string())
    }

    fn element(&mut self, depth: usize) -> VmResult<Element> {
        if depth > MAX_DEPTH {
            return Err(err("document nested too deeply"));
        }
        // At '<'.
        self.i += 1;
        let name = self.name()?;
        if self.rest().is_empty() {
            // 0.9.11 reports a start tag cut off after its name this way.
            return Err(err("expected element name"));
        }
        let mut el = Element { name, attrs: vec![], text: String::new(), children: vec![] };
        loop {
            self.skip_ws();
            let r = self.rest();
            if r.is_empty() {
                return Err(err("unterminated element"));
            }
            if let Some(after) = r.strip_prefix("/>") {
                self.i = self.s.len() - after.len();
                return Ok(el);
            }
            if r.starts_with('>') {
                self.i += 1;
                break;
            }
            let attr = self.name()?;
            self.skip_ws();
            if !self.rest().starts_with('=') {
                return Err(err("expected `=`"));
            }
            self.i += 1;
            self.skip_ws();
            let quote = match self.rest().chars().next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return Err(err("attribute value must be quoted")),
            };
            self.i += 1;
            let Some(end) = self.rest().find(quote) else {
                return Err(err("unterminated attribute value"));
            };
            let raw = &self.rest()[..end];
            let value = unescape(raw)?;
            self.i += end + 1;
            el.attrs.push((attr, value));
        }
        // Content up to the closing tag.
        loop {
            let r = self.rest();
            if r.is_empty() {
                return Err(err("unterminated element"));
            }
            if r.starts_with("</") {
                self.i += 2;
                let close = self.name()?;
                self.skip_ws();
                if !self.rest().starts_with('>') {
                    return Err(err("expected `>`"));
                }
                if close != el.name {
                    return Err(err(format!("mismatched close tag: opened <{}>, closed </{close}>", el.name)));
                }
                self.i += 1;
                return Ok(el);
            }
            if let Some(body) = r.strip_prefix("<![CDATA[") {
                let Some(end) = body.find("]]>") else { return Err(err("unterminated CDATA")) };
                el.text.push_str(&body[..end]);
                self.i += "<![CDATA[".len() + end + 3;
                continue;
            }
            if self.skip_misc()? {
                continue;
            }
            if r.starts_with('<') {
                let child = self.element(depth + 1)?;
                el.children.push(child);
                continue;
            }
            let end = r.find('<').unwrap_or(r.len());
            let text = unescape(&r[..end])?;
            el.text.push_str(&text);
            self.i += end;
        }
    }
}

fn unescape(raw: &str) -> VmResult<String> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let Some(semi) = after.find(';') else { return Err(err("entity missing `;`")) };
        let entity = &after[..semi];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => out.push(c),
            None => return Err(err(format!("unknown entity &{entity};"))),
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of a leaf element's text, typed as harn 0.9.11 types it:
/// `true`/`false` are bools, an i64 literal is an int, a number written
/// with a fraction or exponent is a float, anything else stays text.
fn leaf_value(text: String) -> Value {
    match text.as_str() {
        "" => return Value::Nil,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    // Only text with a fraction or exponent: `inf`, `NaN` and an int too
    // big for i64 stay text (an exponent past f64's range is infinity).
    if text.contains(['.', 'e', 'E']) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::str(text)
}

fn content(el: Element, keep_tag: bool) -> Value {
    let text = el.text.trim().to_string();
    if el.attrs.is_empty() && el.children.is_empty() {
        return leaf_value(text);
    }
    let one_tag = !keep_tag && el.children.len() >= 2 && el.children.iter().all(|c| c.name == el.children[0].name);
    if el.attrs.is_empty() && text.is_empty() && one_tag {
        return Value::list(el.children.into_iter().map(|c| content(c, keep_tag)).collect());
    }
    let mut out = DictMap::new();
    if !el.attrs.is_empty() {
        let attrs: DictMap = el.attrs.into_iter().map(|(a, v)| (k(&a), Value::str(v))).collect();
        out.insert(k("@attr"), Value::dict(attrs));
    }
    if !text.is_empty() {
        out.insert(k("@text"), Value::str(text));
    }
    // Children grouped by tag, in order; a repeated tag becomes a list.
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for child in el.children {
        let name = child.name.clone();
        let v = content(child, keep_tag);
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, vs)) => vs.push(v),
            None => groups.push((name, vec![v])),
        }
    }
    for (name, mut vs) in groups {
        let v = if vs.len() == 1 { vs.pop().unwrap_or(Value::Nil) } else { Value::list(vs) };
        out.insert(k(&name), v);
    }
    Value::dict(out)
}

fn from_xml(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let text = text_arg(args, 0);
    let keep_tag = option(arg(args, 1), "preserve_repeated_tag").is_some_and(Value::is_truthy);
    check_alloc(text.len(), ctx.limits, "from_xml")?;
    let mut p = Parser { s: &text, i: 0 };
    loop {
        p.skip_ws();
        if !p.skip_misc()? {
            break;
        }
    }
    if p.rest().is_empty() {
        return done(Value::dict(DictMap::new()));
    }
    if !p.rest().starts_with('<') {
        return Err(err("expected `<`"));
    }
    let root = p.element(0)?;
    let name = root.name.clone();
    let mut out = DictMap::new();
    out.insert(k(&name), content(root, keep_tag));
    done(Value::dict(out))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::k;
    use crate::runtime::value::{DictMap, Value};

    fn call(name: &str, args: &[Value]) -> String {
        run_builtin(name, args, &no_callback).map_or_else(|e| e, |v| v.display())
    }

    fn options(name: &str, value: Value) -> Value {
        let mut d = DictMap::new();
        d.insert(k(name), value);
        Value::dict(d)
    }

    #[test]
    fn item_tag_names_list_items() {
        let list = Value::list(vec![Value::Int(1), Value::list(vec![Value::Int(2)])]);
        assert_eq!(
            call("to_xml", &[list.clone(), options("item_tag", Value::str("a b"))]),
            "<root><a_b>1</a_b><a_b><a_b>2</a_b></a_b></root>"
        );
        assert_eq!(
            call("__to_xml", &[list, options("item_tag", Value::str(""))]),
            "<root><item>1</item><item><item>2</item></item></root>"
        );
    }

    #[test]
    fn preserve_repeated_tag_keeps_the_inner_tag() {
        let doc = Value::str("<r><as><a>1</a><a>2</a></as></r>");
        assert_eq!(call("from_xml", std::slice::from_ref(&doc)), "{r: {as: [1, 2]}}");
        assert_eq!(
            call("__from_xml", &[doc.clone(), options("preserve_repeated_tag", Value::Bool(true))]),
            "{r: {as: {a: [1, 2]}}}"
        );
        assert_eq!(call("from_xml", &[doc, options("preserve_repeated_tag", Value::Bool(false))]), "{r: {as: [1, 2]}}");
    }

    #[test]
    fn leaf_text_is_typed() {
        let typed = |text: &str| {
            let v = run_builtin("from_xml", &[Value::str(format!("<a>{text}</a>"))], &no_callback).unwrap_or(Value::Nil);
            match &v {
                Value::Dict(d) => d.get(&k("a")).cloned().unwrap_or(Value::Nil),
                _ => Value::Nil,
            }
        };
        assert!(matches!(typed(" 7 "), Value::Int(7)));
        assert!(matches!(typed("+3"), Value::Int(3)));
        assert!(matches!(typed("true"), Value::Bool(true)));
        assert!(matches!(typed("1e3"), Value::Float(f) if f == 1000.0));
        assert!(matches!(typed(".5"), Value::Float(f) if f == 0.5));
        assert!(matches!(typed("1.0e400"), Value::Float(f) if f.is_infinite()));
        for text in ["True", "NaN", "inf", "0x10", "1_000", "99999999999999999999", "12abc", "null"] {
            assert!(matches!(typed(text), Value::Str(_)), "{text}");
        }
        assert!(matches!(typed(""), Value::Nil));
    }
}
