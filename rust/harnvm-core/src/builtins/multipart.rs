//! `multipart/form-data` building and parsing (RFC 7578), and JUnit XML
//! test-report parsing.
//!
//! Parsing is bounded by caller-supplied limits (`max_total_bytes`,
//! `max_field_bytes`, `max_fields`, defaulting to the VM allocation limit),
//! and malformed bodies throw `multipart_parse: ...`.

use std::rc::Rc;

use super::args::{done, expected};
use super::crypto::{bytes_value, data_arg, to_hex};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "multipart_form_data", imp: Native(multipart_form_data) },
    BuiltinDef { name: "multipart_parse", imp: Native(multipart_parse) },
    BuiltinDef { name: "multipart_field_text", imp: Native(multipart_field_text) },
    BuiltinDef { name: "multipart_field_bytes", imp: Native(multipart_field_bytes) },
    BuiltinDef { name: "parse_junit_xml", imp: Native(parse_junit_xml) },
];

fn k(s: &str) -> HStr {
    Rc::new(s.to_string())
}

#[cold]
fn fail(builtin: &str, reason: impl std::fmt::Display) -> VmError {
    VmError::throw_msg(format!("{builtin}: {reason}"))
}

fn header_safe(builtin: &str, text: &str) -> VmResult<()> {
    if text.contains(['\r', '\n', '"']) {
        return Err(fail(builtin, format!("invalid characters in '{text}'")));
    }
    Ok(())
}

fn multipart_form_data(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "multipart_form_data";
    let Value::List(parts) = arg(args, 0) else {
        return Err(expected(NAME, "a list of {name, content} dicts", arg(args, 0)));
    };
    let mut seed = [0u8; 12];
    let _ = getrandom::getrandom(&mut seed);
    let boundary = format!("harn-{}", to_hex(&seed));
    let mut body = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let Value::Dict(d) = part else {
            return Err(fail(NAME, format!("part {i} must be a dict, got {}", part.type_name())));
        };
        let get = |n: &str| d.get(&k(n)).filter(|v| !v.is_nil());
        let name = get("name").map(Value::display).ok_or_else(|| fail(NAME, format!("part {i} needs a 'name'")))?;
        header_safe(NAME, &name)?;
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes());
        if let Some(filename) = get("filename") {
            let filename = filename.display();
            header_safe(NAME, &filename)?;
            body.extend_from_slice(format!("; filename=\"{filename}\"").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = get("content_type") {
            let ct = ct.display();
            header_safe(NAME, &ct)?;
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        if let Some(Value::Dict(headers)) = get("headers") {
            for (hn, hv) in headers.iter() {
                let hv = hv.display();
                header_safe(NAME, hn)?;
                header_safe(NAME, &hv)?;
                body.extend_from_slice(format!("{hn}: {hv}\r\n").as_bytes());
            }
        }
        body.extend_from_slice(b"\r\n");
        match get("content") {
            Some(Value::Bytes(b)) => body.extend_from_slice(b),
            Some(other) => body.extend_from_slice(other.display().as_bytes()),
            None => {}
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    done(Value::dict_from([
        ("content_type", Value::str(format!("multipart/form-data; boundary={boundary}"))),
        ("boundary", Value::str(boundary)),
        ("body", bytes_value(body)),
    ]))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// `name="value"` parameters of a header like Content-Disposition.
fn header_param(header: &str, param: &str) -> Option<String> {
    header.split(';').map(str::trim).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case(param).then(|| v.trim().trim_matches('"').to_string())
    })
}

fn multipart_parse(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "multipart_parse";
    let body = data_arg(args, 0, NAME)?;
    let content_type = match arg(args, 1) {
        Value::Str(s) => s.to_string(),
        other => return Err(expected(NAME, "a content type string", other)),
    };
    let limit = |n: &str, default: usize| -> VmResult<usize> {
        match arg(args, 2) {
            Value::Dict(d) => match d.get(&k(n)) {
                None | Some(Value::Nil) => Ok(default),
                Some(Value::Int(v)) if *v >= 0 => Ok(*v as usize),
                Some(other) => Err(fail(NAME, format!("{n} must be a non-negative int, got {}", other.display()))),
            },
            _ => Ok(default),
        }
    };
    let max_total = limit("max_total_bytes", ctx.limits.max_alloc)?;
    let max_field = limit("max_field_bytes", ctx.limits.max_alloc)?;
    let max_fields = limit("max_fields", 1000)?;
    if body.len() > max_total {
        return Err(fail(NAME, format!("body is {} bytes, more than max_total_bytes {max_total}", body.len())));
    }
    let boundary = header_param(&content_type, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| fail(NAME, "content type has no boundary"))?;
    let delim = format!("--{boundary}").into_bytes();
    let mut pos = find(&body, &delim, 0).ok_or_else(|| fail(NAME, "boundary not found in body"))? + delim.len();
    let mut fields = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            break;
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(fail(NAME, "malformed part delimiter"));
        }
        pos += 2;
        let head_end = find(&body, b"\r\n\r\n", pos).ok_or_else(|| fail(NAME, "part headers are not terminated"))?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).into_owned();
        let content_start = head_end + 4;
        let mut closing = b"\r\n".to_vec();
        closing.extend_from_slice(&delim);
        let content_end =
            find(&body, &closing, content_start).ok_or_else(|| fail(NAME, "part is not terminated by the boundary"))?;
        let content = body[content_start..content_end].to_vec();
        if fields.len() >= max_fields {
            return Err(fail(NAME, format!("more than max_fields {max_fields} fields")));
        }
        if content.len() > max_field {
            return Err(fail(NAME, format!("a field is {} bytes, more than max_field_bytes {max_field}", content.len())));
        }
        let mut headers = DictMap::new();
        for line in head.split("\r\n").filter(|l| !l.is_empty()) {
            let (hn, hv) = line.split_once(':').ok_or_else(|| fail(NAME, format!("malformed header line '{line}'")))?;
            headers.insert(k(&hn.trim().to_ascii_lowercase()), Value::str(hv.trim()));
        }
        let disposition = headers.get(&k("content-disposition")).map(Value::display).unwrap_or_default();
        let name = header_param(&disposition, "name").ok_or_else(|| fail(NAME, "part has no form-data name"))?;
        let filename = header_param(&disposition, "filename");
        let content_type = headers.get(&k("content-type")).cloned().unwrap_or(Value::Nil);
        // Text is offered for non-file parts that are valid UTF-8.
        let text = match (&filename, std::str::from_utf8(&content)) {
            (None, Ok(t)) => Value::str(t),
            _ => Value::Nil,
        };
        let mut field = DictMap::new();
        field.insert(k("name"), Value::str(name));
        field.insert(k("filename"), filename.map_or(Value::Nil, Value::str));
        field.insert(k("content_type"), content_type);
        field.insert(k("headers"), Value::dict(headers));
        field.insert(k("text"), text);
        field.insert(k("content"), bytes_value(content));
        fields.push(Value::dict(field));
        pos = content_end + closing.len();
    }
    done(Value::dict_from([
        ("field_count", Value::Int(fields.len() as i64)),
        ("total_bytes", Value::Int(body.len() as i64)),
        ("fields", Value::list(fields)),
    ]))
}

fn field_content(args: &[Value], builtin: &str) -> VmResult<Rc<Vec<u8>>> {
    match arg(args, 0) {
        Value::Dict(d) => match d.get(&k("content")) {
            Some(Value::Bytes(b)) => Ok(b.clone()),
            Some(Value::Str(s)) => Ok(Rc::new(s.as_bytes().to_vec())),
            _ => Err(fail(builtin, "field has no content")),
        },
        other => Err(expected(builtin, "a multipart field dict", other)),
    }
}

fn multipart_field_text(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let content = field_content(args, "multipart_field_text")?;
    let text =
        String::from_utf8(content.to_vec()).map_err(|_| fail("multipart_field_text", "field content is not valid UTF-8"))?;
    done(Value::str(text))
}

fn multipart_field_bytes(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bytes(field_content(args, "multipart_field_bytes")?))
}

// ---- JUnit XML -----------------------------------------------------------------

/// One test case as the reference reports it.
fn case_value(
    classname: Option<&str>,
    name: &str,
    time: Option<f64>,
    status: &str,
    message: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
) -> Value {
    let full = match classname {
        Some(c) if !c.is_empty() => format!("{c}::{name}"),
        _ => name.to_string(),
    };
    let opt = |s: Option<String>| s.map_or(Value::Nil, Value::str);
    Value::dict_from([
        ("name", Value::str(full)),
        ("status", Value::str(status)),
        ("duration_ms", time.map_or(Value::Nil, |t| Value::Int((t * 1000.0).round() as i64))),
        ("message", opt(message)),
        ("stdout", opt(stdout)),
        ("stderr", opt(stderr)),
    ])
}

/// Parses `<testcase>` elements anywhere in the document; malformed XML
/// yields the cases read before the error (so garbage yields `[]`).
fn parse_junit_xml(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    use quick_xml::events::Event;
    let data = data_arg(args, 0, "parse_junit_xml")?;
    let text = String::from_utf8_lossy(&data).into_owned();
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut cases = Vec::new();
    // The open test case: (classname, name, time, status, message, stdout, stderr).
    type Open = (Option<String>, String, Option<f64>, String, Option<String>, Option<String>, Option<String>);
    let mut current: Option<Open> = None;
    // Which child element's text is being collected.
    let mut collecting: Option<(String, String)> = None;
    let attrs = |e: &quick_xml::events::BytesStart| -> Vec<(String, String)> {
        e.attributes()
            .flatten()
            .map(|a| {
                let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                let value = a.unescape_value().map(|v| v.into_owned()).unwrap_or_default();
                (key, value)
            })
            .collect()
    };
    let attr = |list: &[(String, String)], n: &str| list.iter().find(|(a, _)| a == n).map(|(_, v)| v.clone());
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) | Err(_) => break,
            Ok(e) => e,
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) if e.name().as_ref() == b"testcase" => {
                let list = attrs(e);
                let case = (
                    attr(&list, "classname"),
                    attr(&list, "name").unwrap_or_default(),
                    attr(&list, "time").and_then(|t| t.parse::<f64>().ok()),
                    "passed".to_string(),
                    None,
                    None,
                    None,
                );
                if let Some(unclosed) = current.take() {
                    cases.push(unclosed);
                }
                if matches!(event, Event::Empty(_)) {
                    cases.push(case);
                } else {
                    current = Some(case);
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if let Some(case) = current.as_mut() {
                    let list = attrs(e);
                    match tag.as_str() {
                        "failure" => {
                            case.3 = "failed".into();
                            case.4 = attr(&list, "message");
                        }
                        "error" => {
                            case.3 = "errored".into();
                            case.4 = attr(&list, "message");
                        }
                        "skipped" => {
                            case.3 = "skipped".into();
                            case.4 = attr(&list, "message");
                        }
                        _ => {}
                    }
                    if matches!(event, Event::Start(_)) {
                        collecting = Some((tag, String::new()));
                    }
                }
            }
            Event::Text(t) => {
                if let Some((_, buf)) = collecting.as_mut() {
                    buf.push_str(&t.unescape().map(|c| c.into_owned()).unwrap_or_default());
                }
            }
            Event::CData(t) => {
                if let Some((_, buf)) = collecting.as_mut() {
                    buf.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(e) => {
                let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if tag == "testcase" {
                    if let Some(case) = current.take() {
                        cases.push(case);
                    }
                } else if let (Some(case), Some((open, buf))) = (current.as_mut(), collecting.take()) {
                    let body = buf.trim().to_string();
                    match open.as_str() {
                        "failure" | "error" | "skipped" if !body.is_empty() => {
                            case.4 = Some(match case.4.take() {
                                Some(m) => format!("{m}\n{body}"),
                                None => body,
                            });
                        }
                        "system-out" => case.5 = Some(body),
                        "system-err" => case.6 = Some(body),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(case) = current.take() {
        cases.push(case);
    }
    let out = cases.into_iter().map(|(c, n, t, s, m, o, e)| case_value(c.as_deref(), &n, t, &s, m, o, e)).collect();
    done(Value::list(out))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<String, String> {
        run_builtin(name, args, &no_callback).map(|v| v.display())
    }

    #[test]
    fn multipart_round_trip_and_limits() {
        let parts = Value::list(vec![Value::dict_from([("name", Value::str("a")), ("content", Value::str("hello"))])]);
        let built = run_builtin("multipart_form_data", &[parts], &no_callback).unwrap();
        let Value::Dict(d) = &built else { panic!("dict") };
        let body = d.get(&k("body")).unwrap().clone();
        let ct = d.get(&k("content_type")).unwrap().clone();
        let parsed = call("multipart_parse", &[body.clone(), ct.clone()]).unwrap();
        assert!(parsed.contains("field_count: 1") && parsed.contains("text: hello"), "{parsed}");
        let small = Value::dict_from([("max_field_bytes", Value::Int(2))]);
        assert_eq!(
            call("multipart_parse", &[body.clone(), ct, small]).unwrap_err(),
            "Thrown: multipart_parse: a field is 5 bytes, more than max_field_bytes 2"
        );
        assert_eq!(
            call("multipart_parse", &[body, Value::str("multipart/form-data")]).unwrap_err(),
            "Thrown: multipart_parse: content type has no boundary"
        );
    }

    #[test]
    fn junit_cases() {
        let xml = Value::str("<testsuite><testcase classname=\"c\" name=\"a\" time=\"0.5\"><failure message=\"m\">t</failure></testcase><testcase name=\"b\"/></testsuite>");
        assert_eq!(
            call("parse_junit_xml", &[xml]).unwrap(),
            "[{duration_ms: 500, message: m\nt, name: c::a, status: failed, stderr: nil, stdout: nil}, {duration_ms: nil, message: nil, name: b, status: passed, stderr: nil, stdout: nil}]"
        );
        assert_eq!(call("parse_junit_xml", &[Value::str("<<<")]).unwrap(), "[]");
    }
}
