//! HTTP cookie helpers and HMAC-signed cookies/sessions.
//!
//! Signed values are `value.SIG` where SIG is the unpadded base64url
//! HMAC-SHA256 of the value; session tokens are `v1.PAYLOAD.SIG` with the
//! payload as base64url JSON. Verification compares signatures in constant
//! time and reports `{ok: false, error: "invalid_signature"}` on mismatch.

use base64::Engine as _;

use super::args::{done, expected, text_arg};
use super::crypto::{ct_eq, data_arg, hmac_sha256_raw, str_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "cookie_parse", imp: Native(cookie_parse) },
    BuiltinDef { name: "cookie_serialize", imp: Native(cookie_serialize) },
    BuiltinDef { name: "cookie_delete", imp: Native(cookie_delete) },
    BuiltinDef { name: "cookie_sign", imp: Native(cookie_sign) },
    BuiltinDef { name: "cookie_verify", imp: Native(cookie_verify) },
    BuiltinDef { name: "session_sign", imp: Native(session_sign) },
    BuiltinDef { name: "session_verify", imp: Native(session_verify) },
    BuiltinDef { name: "session_cookie", imp: Native(session_cookie) },
    BuiltinDef { name: "session_from_cookies", imp: Native(session_from_cookies) },
    BuiltinDef { name: "cookie_round_trip", imp: Native(cookie_round_trip) },
];

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn k(s: &str) -> HStr {
    std::rc::Rc::new(s.to_string())
}

#[cold]
fn fail(builtin: &str, reason: impl std::fmt::Display) -> VmError {
    VmError::throw_msg(format!("{builtin}: {reason}"))
}

/// `(cookies, duplicates, invalid)` of a `Cookie:` header, first value wins.
fn parse_header(header: &str) -> (Vec<(String, String)>, DictMap, Vec<Value>) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut all: Vec<(String, Vec<Value>)> = Vec::new();
    let mut invalid = Vec::new();
    for segment in header.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        match segment.split_once('=') {
            Some((name, value)) if valid_name(name.trim()) => {
                let (name, value) = (name.trim().to_string(), value.trim().trim_matches('"').to_string());
                match all.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, values)) => values.push(Value::str(value.as_str())),
                    None => {
                        all.push((name.clone(), vec![Value::str(value.as_str())]));
                        pairs.push((name, value));
                    }
                }
            }
            _ => invalid.push(Value::str(segment)),
        }
    }
    let duplicates = all.into_iter().filter(|(_, v)| v.len() > 1).map(|(n, v)| (k(&n), Value::list(v))).collect();
    (pairs, duplicates, invalid)
}

/// RFC 6265 cookie-name: an HTTP token.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn pairs_dict(pairs: &[(String, String)]) -> Value {
    Value::dict(pairs.iter().map(|(n, v)| (k(n), Value::str(v.as_str()))).collect())
}

fn cookie_parse(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (pairs, duplicates, invalid) = parse_header(&text_arg(args, 0));
    done(Value::dict_from([
        ("cookies", pairs_dict(&pairs)),
        ("duplicates", Value::dict(duplicates)),
        ("invalid", Value::list(invalid)),
    ]))
}

fn opt<'a>(opts: Option<&'a DictMap>, name: &str) -> Option<&'a Value> {
    opts.and_then(|o| o.get(&k(name))).filter(|v| !v.is_nil())
}

fn opts_arg<'a>(args: &'a [Value], i: usize, builtin: &str) -> VmResult<Option<&'a DictMap>> {
    match arg(args, i) {
        Value::Dict(d) => Ok(Some(d)),
        Value::Nil => Ok(None),
        other => Err(expected(builtin, "an options dict", other)),
    }
}

/// A `Set-Cookie` value; `defaults` supplies attributes missing from `opts`.
fn serialize(builtin: &str, name: &str, value: &str, opts: Option<&DictMap>, defaults: &[(&str, Value)]) -> VmResult<String> {
    if !valid_name(name) {
        return Err(fail(builtin, format!("invalid cookie name '{name}'")));
    }
    if value.bytes().any(|b| b.is_ascii_control() || b == b';' || b == b',' || b == b' ' || b == b'"' || b == b'\\') {
        return Err(fail(builtin, format!("invalid cookie value for '{name}'")));
    }
    let get = |n: &str| opt(opts, n).cloned().or_else(|| defaults.iter().find(|(d, _)| *d == n).map(|(_, v)| v.clone()));
    let mut out = format!("{name}={value}");
    if let Some(path) = get("path") {
        out.push_str(&format!("; Path={}", path.display()));
    }
    if let Some(domain) = get("domain") {
        out.push_str(&format!("; Domain={}", domain.display()));
    }
    if let Some(max_age) = get("max_age") {
        let n = max_age.as_int().ok_or_else(|| fail(builtin, "max_age must be an int"))?;
        out.push_str(&format!("; Max-Age={n}"));
    }
    if let Some(expires) = get("expires") {
        out.push_str(&format!("; Expires={}", expires.display()));
    }
    if get("http_only").is_some_and(|v| v.is_truthy()) {
        out.push_str("; HttpOnly");
    }
    let secure = get("secure").is_some_and(|v| v.is_truthy());
    if secure {
        out.push_str("; Secure");
    }
    if let Some(same_site) = get("same_site") {
        let same_site = same_site.display();
        match same_site.as_str() {
            "Strict" | "Lax" => {}
            "None" if secure => {}
            "None" => return Err(fail(builtin, "same_site None requires secure")),
            other => return Err(fail(builtin, format!("same_site must be Strict, Lax or None, got '{other}'"))),
        }
        out.push_str(&format!("; SameSite={same_site}"));
    }
    Ok(out)
}

fn cookie_serialize(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "cookie_serialize";
    let name = str_arg(args, 0, NAME)?;
    let value = text_arg(args, 1);
    done(Value::str(serialize(NAME, name, &value, opts_arg(args, 2, NAME)?, &[])?))
}

fn cookie_delete(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "cookie_delete";
    let name = str_arg(args, 0, NAME)?;
    let defaults = [
        ("path", Value::str("/")),
        ("max_age", Value::Int(0)),
        ("expires", Value::str("Thu, 01 Jan 1970 00:00:00 GMT")),
        ("http_only", Value::Bool(true)),
        ("secure", Value::Bool(true)),
        ("same_site", Value::str("Lax")),
    ];
    let mut opts = opts_arg(args, 1, NAME)?.cloned().unwrap_or_default();
    opts.remove(&k("max_age"));
    opts.remove(&k("expires"));
    done(Value::str(serialize(NAME, name, "", Some(&opts), &defaults)?))
}

fn signature(secret: &[u8], data: &str) -> String {
    B64.encode(hmac_sha256_raw(secret, data.as_bytes()))
}

fn cookie_sign(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let value = text_arg(args, 0);
    let secret = data_arg(args, 1, "cookie_sign")?;
    done(Value::str(format!("{value}.{}", signature(&secret, &value))))
}

fn verdict(ok: Option<(&str, Value)>, error: &str) -> Value {
    match ok {
        Some((key, v)) => Value::dict_from([("ok", Value::Bool(true)), (if key == "value" { "value" } else { "payload" }, v)]),
        None => Value::dict_from([("ok", Value::Bool(false)), ("error", Value::str(error))]),
    }
}

fn cookie_verify(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let signed = text_arg(args, 0);
    let secret = data_arg(args, 1, "cookie_verify")?;
    let Some((value, sig)) = signed.rsplit_once('.') else {
        return done(verdict(None, "malformed"));
    };
    let good = ct_eq(signature(&secret, value).as_bytes(), sig.as_bytes());
    done(verdict(good.then(|| ("value", Value::str(value))), "invalid_signature"))
}

fn sign_session(payload: &Value, secret: &[u8]) -> VmResult<String> {
    let body = format!("v1.{}", B64.encode(super::json::to_json(payload)?));
    let sig = signature(secret, &body);
    Ok(format!("{body}.{sig}"))
}

fn verify_session(token: &str, secret: &[u8]) -> Value {
    let Some((body, sig)) = token.rsplit_once('.') else { return verdict(None, "malformed") };
    let Some(encoded) = body.strip_prefix("v1.") else { return verdict(None, "malformed") };
    if !ct_eq(signature(secret, body).as_bytes(), sig.as_bytes()) {
        return verdict(None, "invalid_signature");
    }
    let payload =
        B64.decode(encoded).ok().and_then(|raw| String::from_utf8(raw).ok()).and_then(|text| super::json::parse_json(&text).ok());
    match payload {
        Some(p) => verdict(Some(("payload", p)), ""),
        None => verdict(None, "malformed"),
    }
}

fn session_sign(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let secret = data_arg(args, 1, "session_sign")?;
    done(Value::str(sign_session(arg(args, 0), &secret)?))
}

fn session_verify(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let secret = data_arg(args, 1, "session_verify")?;
    done(verify_session(&text_arg(args, 0), &secret))
}

fn session_cookie(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "session_cookie";
    let name = str_arg(args, 0, NAME)?;
    let secret = data_arg(args, 2, NAME)?;
    let token = sign_session(arg(args, 1), &secret)?;
    let defaults = [
        ("path", Value::str("/")),
        ("http_only", Value::Bool(true)),
        ("secure", Value::Bool(true)),
        ("same_site", Value::str("Lax")),
    ];
    done(Value::str(serialize(NAME, name, &token, opts_arg(args, 3, NAME)?, &defaults)?))
}

fn session_from_cookies(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (pairs, _, _) = parse_header(&text_arg(args, 0));
    let name = text_arg(args, 1);
    let secret = data_arg(args, 2, "session_from_cookies")?;
    done(match pairs.iter().find(|(n, _)| *n == name) {
        Some((_, token)) => verify_session(token, &secret),
        None => verdict(None, "missing"),
    })
}

/// Applies `Set-Cookie` values to a `Cookie:` header the way a browser jar
/// would (Max-Age=0 deletes) and returns `{cookies, cookie_header}`.
fn cookie_round_trip(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (mut jar, _, _) = parse_header(&text_arg(args, 0));
    let set_cookies = match arg(args, 1) {
        Value::List(items) => items.iter().map(Value::display).collect::<Vec<_>>(),
        Value::Str(s) => vec![s.to_string()],
        Value::Nil => Vec::new(),
        other => return Err(expected("cookie_round_trip", "a list of Set-Cookie values", other)),
    };
    for line in set_cookies {
        let mut parts = line.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else { continue };
        let deleted = parts.any(|attr| attr.eq_ignore_ascii_case("max-age=0"));
        jar.retain(|(n, _)| n != name);
        if !deleted {
            jar.push((name.to_string(), value.to_string()));
        }
    }
    let header = jar.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ");
    done(Value::dict_from([("cookies", pairs_dict(&jar)), ("cookie_header", Value::str(header))]))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<String, String> {
        run_builtin(name, args, &no_callback).map(|v| v.display())
    }

    #[test]
    fn parse_serialize_and_validate() {
        assert_eq!(
            call("cookie_parse", &[Value::str("a=1; b=2; a=3; junk")]).unwrap(),
            "{cookies: {a: 1, b: 2}, duplicates: {a: [1, 3]}, invalid: [junk]}"
        );
        assert_eq!(
            call("cookie_serialize", &[Value::str("bad name"), Value::str("v")]).unwrap_err(),
            "Thrown: cookie_serialize: invalid cookie name 'bad name'"
        );
        let none = Value::dict_from([("same_site", Value::str("None"))]);
        assert_eq!(
            call("cookie_serialize", &[Value::str("a"), Value::str("v"), none]).unwrap_err(),
            "Thrown: cookie_serialize: same_site None requires secure"
        );
    }

    #[test]
    fn signatures_detect_tampering() {
        let signed = run_builtin("cookie_sign", &[Value::str("v"), Value::str("s")], &no_callback).unwrap();
        assert_eq!(call("cookie_verify", &[signed.clone(), Value::str("s")]).unwrap(), "{ok: true, value: v}");
        assert_eq!(call("cookie_verify", &[signed, Value::str("t")]).unwrap(), "{error: invalid_signature, ok: false}");
        let token =
            run_builtin("session_sign", &[Value::dict_from([("u", Value::Int(1))]), Value::str("s")], &no_callback).unwrap();
        assert_eq!(call("session_verify", &[token, Value::str("s")]).unwrap(), "{ok: true, payload: {u: 1}}");
        assert_eq!(call("session_verify", &[Value::str("garbage"), Value::str("s")]).unwrap(), "{error: malformed, ok: false}");
    }
}
