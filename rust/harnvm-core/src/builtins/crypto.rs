//! Bytes, text encodings, hashing and signing builtins.
//!
//! Hash functions return lowercase hex strings; byte-producing builtins
//! return `bytes`. Every builtin that takes "data" accepts either a string
//! (its UTF-8 bytes) or `bytes`. Malformed input (bad hex/base64/base32, a
//! key of the wrong size) throws `"<builtin>: <reason>"`, never panics.

use std::borrow::Cow;
use std::rc::Rc;

use base64::Engine as _;
use hmac::Mac as _;

use super::args::{check_alloc, done, expected, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "bytes_from_string", imp: Native(bytes_from_string) },
    BuiltinDef { name: "bytes_to_string", imp: Native(bytes_to_string) },
    BuiltinDef { name: "bytes_from_hex", imp: Native(bytes_from_hex) },
    BuiltinDef { name: "bytes_to_hex", imp: Native(bytes_to_hex) },
    BuiltinDef { name: "bytes_from_base64", imp: Native(bytes_from_base64) },
    BuiltinDef { name: "bytes_to_base64", imp: Native(bytes_to_base64) },
    BuiltinDef { name: "bytes_len", imp: Native(bytes_len) },
    BuiltinDef { name: "bytes_concat", imp: Native(bytes_concat) },
    BuiltinDef { name: "bytes_slice", imp: Native(bytes_slice) },
    BuiltinDef { name: "base64_encode", imp: Native(base64_encode) },
    BuiltinDef { name: "base64_decode", imp: Native(base64_decode) },
    BuiltinDef { name: "base64url_encode", imp: Native(base64url_encode) },
    BuiltinDef { name: "base64url_decode", imp: Native(base64url_decode) },
    BuiltinDef { name: "base32_encode", imp: Native(base32_encode) },
    BuiltinDef { name: "base32_decode", imp: Native(base32_decode) },
    BuiltinDef { name: "hex_encode", imp: Native(hex_encode) },
    BuiltinDef { name: "hex_decode", imp: Native(hex_decode) },
    BuiltinDef { name: "url_encode", imp: Native(url_encode) },
    BuiltinDef { name: "url_decode", imp: Native(url_decode) },
    BuiltinDef { name: "sha256", imp: Native(sha256) },
    BuiltinDef { name: "sha512", imp: Native(sha512) },
    BuiltinDef { name: "sha1", imp: Native(sha1) },
    BuiltinDef { name: "md5", imp: Native(md5) },
    BuiltinDef { name: "sha3_256", imp: Native(sha3_256) },
    BuiltinDef { name: "sha3_512", imp: Native(sha3_512) },
    BuiltinDef { name: "blake3", imp: Native(blake3_hash) },
    BuiltinDef { name: "hmac_sha256", imp: Native(hmac_sha256) },
    BuiltinDef { name: "hmac_sha256_base64", imp: Native(hmac_sha256_base64) },
    BuiltinDef { name: "constant_time_eq", imp: Native(constant_time_eq) },
    BuiltinDef { name: "ed25519_keypair", imp: Native(ed25519_keypair) },
    BuiltinDef { name: "ed25519_sign", imp: Native(ed25519_sign) },
    BuiltinDef { name: "ed25519_verify", imp: Native(ed25519_verify) },
    BuiltinDef { name: "x25519_keypair", imp: Native(x25519_keypair) },
    BuiltinDef { name: "x25519_agree", imp: Native(x25519_agree) },
    BuiltinDef { name: "signed_url", imp: Native(signed_url) },
    BuiltinDef { name: "verify_signed_url", imp: Native(verify_signed_url) },
    BuiltinDef { name: "uuid", imp: Native(uuid_v4) },
    BuiltinDef { name: "uuid_v4", imp: Native(uuid_v4) },
    BuiltinDef { name: "uuid_v5", imp: Native(uuid_v5) },
    BuiltinDef { name: "uuid_v7", imp: Native(uuid_v7) },
    BuiltinDef { name: "uuid_nil", imp: Native(uuid_nil) },
    BuiltinDef { name: "uuid_parse", imp: Native(uuid_parse) },
];

/// Argument `i` as raw data: a string's UTF-8 bytes or a bytes value; other
/// values are refused so that `sha256(nil)` is an error, not the hash of "nil".
pub fn data_arg<'a>(args: &'a [Value], i: usize, builtin: &str) -> VmResult<Cow<'a, [u8]>> {
    match arg(args, i) {
        Value::Str(s) => Ok(Cow::Borrowed(s.as_bytes())),
        Value::Bytes(b) => Ok(Cow::Borrowed(b.as_slice())),
        other => Err(expected(builtin, "a string or bytes", other)),
    }
}

/// Argument `i` as a string (no coercion).
pub fn str_arg<'a>(args: &'a [Value], i: usize, builtin: &str) -> VmResult<&'a str> {
    match arg(args, i) {
        Value::Str(s) => Ok(s.as_str()),
        other => Err(expected(builtin, "a string", other)),
    }
}

pub fn bytes_value(data: Vec<u8>) -> Value {
    Value::Bytes(Rc::new(data))
}

#[cold]
fn fail(builtin: &str, reason: impl std::fmt::Display) -> VmError {
    VmError::throw_msg(format!("{builtin}: {reason}"))
}

/// Bytes as text; invalid UTF-8 is an error rather than silently replaced.
fn utf8_text(builtin: &str, data: Vec<u8>) -> VmResult<Value> {
    String::from_utf8(data).map(Value::str).map_err(|_| fail(builtin, "result is not valid UTF-8"))
}

pub fn to_hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Hex (either case) to bytes, with the `hex` crate's messages that Harn shows.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(text.as_bytes()).map_err(|e| match e.kind {
        data_encoding::DecodeKind::Length => "Odd number of digits".to_string(),
        _ => {
            let c = text.as_bytes().get(e.position).map_or('?', |b| *b as char);
            format!("Invalid character '{c}' at position {}", e.position)
        }
    })
}

fn bytes_from_string(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(bytes_value(data_arg(args, 0, "bytes_from_string")?.into_owned()))
}

fn bytes_to_string(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "bytes_to_string")?;
    done(Value::str(String::from_utf8_lossy(&data).into_owned()))
}

fn bytes_from_hex(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let text = str_arg(args, 0, "bytes_from_hex")?;
    // A runtime error, as the reference raises it.
    done(bytes_value(from_hex(text).map_err(|e| VmError::runtime(format!("bytes_from_hex: {e}")))?))
}

fn bytes_to_hex(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(to_hex(&data_arg(args, 0, "bytes_to_hex")?)))
}

fn decode_base64(builtin: &str, text: &str) -> VmResult<Vec<u8>> {
    let text = text.trim();
    let engine = if text.contains(['-', '_']) {
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        &base64::engine::general_purpose::STANDARD_NO_PAD
    };
    engine.decode(text.trim_end_matches('=')).map_err(|e| fail(builtin, format!("invalid base64: {e}")))
}

fn bytes_from_base64(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(bytes_value(decode_base64("bytes_from_base64", str_arg(args, 0, "bytes_from_base64")?)?))
}

fn bytes_to_base64(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "bytes_to_base64")?;
    done(Value::str(base64::engine::general_purpose::STANDARD.encode(data)))
}

fn bytes_len(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Int(data_arg(args, 0, "bytes_len")?.len() as i64))
}

fn bytes_concat(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let mut out = Vec::new();
    for i in 0..args.len() {
        let part = data_arg(args, i, "bytes_concat")?;
        check_alloc(out.len() + part.len(), ctx.limits, "bytes_concat")?;
        out.extend_from_slice(&part);
    }
    done(bytes_value(out))
}

fn bytes_slice(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "bytes_slice")?;
    let len = data.len() as i64;
    let clamp = |v: &Value, default: i64| -> VmResult<usize> {
        let n = match v {
            Value::Nil => default,
            Value::Int(n) => *n,
            other => return Err(expected("bytes_slice", "an int", other)),
        };
        let n = if n < 0 { (len + n).max(0) } else { n.min(len) };
        Ok(n as usize)
    };
    let start = clamp(arg(args, 1), 0)?;
    let end = clamp(arg(args, 2), len)?.max(start);
    done(bytes_value(data[start..end].to_vec()))
}

fn base64_encode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "base64_encode")?;
    done(Value::str(base64::engine::general_purpose::STANDARD.encode(data)))
}

fn base64_decode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = decode_base64("base64_decode", str_arg(args, 0, "base64_decode")?)?;
    done(utf8_text("base64_decode", data)?)
}

fn base64url_encode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "base64url_encode")?;
    done(Value::str(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)))
}

fn base64url_decode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let text = str_arg(args, 0, "base64url_decode")?.trim().trim_end_matches('=');
    let data = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| fail("base64url_decode", format!("invalid base64url: {e}")))?;
    done(utf8_text("base64url_decode", data)?)
}

/// RFC 4648 base32 with `=` padding.
pub fn base32_encode_bytes(data: &[u8]) -> String {
    data_encoding::BASE32.encode(data)
}

/// Strict RFC 4648 base32 (upper case, padded), as Harn decodes it.
pub fn base32_decode_bytes(text: &str) -> Result<Vec<u8>, data_encoding::DecodeError> {
    data_encoding::BASE32.decode(text.as_bytes())
}

fn base32_encode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(base32_encode_bytes(&data_arg(args, 0, "base32_encode")?)))
}

fn base32_decode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = base32_decode_bytes(str_arg(args, 0, "base32_decode")?)
        .map_err(|e| VmError::runtime(format!("base32 decode error: {e}")))?;
    done(utf8_text("base32_decode", data)?)
}

fn hex_encode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(to_hex(&data_arg(args, 0, "hex_encode")?)))
}

fn hex_decode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = from_hex(str_arg(args, 0, "hex_decode")?).map_err(|e| VmError::runtime(format!("hex decode error: {e}")))?;
    done(utf8_text("hex_decode", data)?)
}

/// Characters left as they are by `url_encode` (RFC 3986 unreserved).
const URL_UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, URL_UNRESERVED).to_string()
}

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`).
pub fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let text: Cow<str> = if plus_is_space { Cow::Owned(text.replace('+', " ")) } else { Cow::Borrowed(text) };
    percent_encoding::percent_decode_str(&text).decode_utf8_lossy().into_owned()
}

fn url_encode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(percent_encode(&text_arg(args, 0))))
}

fn url_decode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(percent_decode(&text_arg(args, 0), true)))
}

fn digest_hex<D: sha2::Digest>(args: &[Value], builtin: &str) -> VmResult<Flow> {
    let data = data_arg(args, 0, builtin)?;
    done(Value::str(to_hex(&D::digest(&data))))
}

fn sha256(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    digest_hex::<sha2::Sha256>(args, "sha256")
}
fn sha512(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    digest_hex::<sha2::Sha512>(args, "sha512")
}
fn sha1(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    digest_hex::<sha1::Sha1>(args, "sha1")
}
fn md5(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    digest_hex::<md5::Md5>(args, "md5")
}
fn sha3_256(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    digest_hex::<sha3::Sha3_256>(args, "sha3_256")
}
fn sha3_512(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    digest_hex::<sha3::Sha3_512>(args, "sha3_512")
}
fn blake3_hash(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let data = data_arg(args, 0, "blake3")?;
    done(Value::str(blake3::hash(&data).to_hex().to_string()))
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256_raw(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let key = data_arg(args, 0, "hmac_sha256")?;
    let msg = data_arg(args, 1, "hmac_sha256")?;
    done(Value::str(to_hex(&hmac_sha256_raw(&key, &msg))))
}

fn hmac_sha256_base64(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let key = data_arg(args, 0, "hmac_sha256_base64")?;
    let msg = data_arg(args, 1, "hmac_sha256_base64")?;
    done(Value::str(base64::engine::general_purpose::STANDARD.encode(hmac_sha256_raw(&key, &msg))))
}

/// Equality whose running time does not depend on where inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    // `subtle` compares slices of unequal length as unequal (without a timing leak on content).
    bool::from(a.ct_eq(b))
}

fn constant_time_eq(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let a = data_arg(args, 0, "constant_time_eq")?;
    let b = data_arg(args, 1, "constant_time_eq")?;
    done(Value::Bool(ct_eq(&a, &b)))
}

fn random_key(builtin: &str) -> VmResult<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| fail(builtin, format!("no OS randomness: {e}")))?;
    Ok(key)
}

/// A 32-byte key given as 64 hex digits (or raw bytes).
fn key32_arg(args: &[Value], i: usize, builtin: &str, what: &str) -> VmResult<[u8; 32]> {
    let raw = match arg(args, i) {
        Value::Str(s) => from_hex(s).map_err(|e| fail(builtin, format!("{what} is not hex: {e}")))?,
        Value::Bytes(b) => b.to_vec(),
        other => return Err(expected(builtin, &format!("a hex {what}"), other)),
    };
    raw.try_into().map_err(|raw: Vec<u8>| fail(builtin, format!("{what} must be 32 bytes, got {}", raw.len())))
}

fn keypair_dict(private: &[u8], public: &[u8]) -> Value {
    Value::dict_from([("private", Value::str(to_hex(private))), ("public", Value::str(to_hex(public)))])
}

fn ed25519_keypair(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    let signing = ed25519_dalek::SigningKey::from_bytes(&random_key("ed25519_keypair")?);
    done(keypair_dict(&signing.to_bytes(), &signing.verifying_key().to_bytes()))
}

fn ed25519_sign(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    use ed25519_dalek::Signer as _;
    let signing = ed25519_dalek::SigningKey::from_bytes(&key32_arg(args, 0, "ed25519_sign", "private key")?);
    let msg = data_arg(args, 1, "ed25519_sign")?;
    done(Value::str(to_hex(&signing.sign(&msg).to_bytes())))
}

fn ed25519_verify(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let public = key32_arg(args, 0, "ed25519_verify", "public key")?;
    let msg = data_arg(args, 1, "ed25519_verify")?;
    let sig = match arg(args, 2) {
        Value::Str(s) => from_hex(s).ok(),
        Value::Bytes(b) => Some(b.to_vec()),
        other => return Err(expected("ed25519_verify", "a hex signature", other)),
    };
    // A malformed key or signature simply does not verify.
    let ok = (|| {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public).ok()?;
        let sig: [u8; 64] = sig?.try_into().ok()?;
        key.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig)).ok()
    })()
    .is_some();
    done(Value::Bool(ok))
}

fn x25519_keypair(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    let secret = x25519_dalek::StaticSecret::from(random_key("x25519_keypair")?);
    let public = x25519_dalek::PublicKey::from(&secret);
    done(keypair_dict(secret.as_bytes(), public.as_bytes()))
}

fn x25519_agree(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let secret = x25519_dalek::StaticSecret::from(key32_arg(args, 0, "x25519_agree", "private key")?);
    let public = x25519_dalek::PublicKey::from(key32_arg(args, 1, "x25519_agree", "public key")?);
    done(Value::str(to_hex(secret.diffie_hellman(&public).as_bytes())))
}

// ---- signed URLs -------------------------------------------------------------

/// Splits `url` into (base without query/fragment, query pairs).
fn split_query(url: &str) -> (String, Vec<(String, String)>) {
    let url = url.split('#').next().unwrap_or("");
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let pairs = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect();
    (base.to_string(), pairs)
}

/// Percent-encodes a path, keeping `/` and any existing `%XX` escapes' meaning.
fn encode_path(base: &str) -> String {
    let (prefix, path) = match base.find("://") {
        Some(i) => {
            let rest = &base[i + 3..];
            let slash = rest.find('/').map_or(base.len(), |j| i + 3 + j);
            (&base[..slash], &base[slash..])
        }
        None => ("", base),
    };
    let path = percent_decode(path, false);
    let encoded: Vec<String> = path.split('/').map(percent_encode).collect();
    format!("{prefix}{}", encoded.join("/"))
}

fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    sorted.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
}

/// The text a signed URL's signature covers: path plus the sorted query without `sig`.
fn signing_input(base: &str, pairs: &[(String, String)]) -> String {
    format!("{base}?{}", canonical_query(pairs))
}

fn signed_url(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "signed_url";
    let url = str_arg(args, 0, NAME)?;
    let claims = match arg(args, 1) {
        Value::Dict(d) => Some(d.clone()),
        Value::Nil => None,
        other => return Err(expected(NAME, "a dict of claims", other)),
    };
    let secret = data_arg(args, 2, NAME)?;
    let expires = match arg(args, 3) {
        Value::Int(n) => *n,
        Value::Float(f) => *f as i64,
        other => return Err(expected(NAME, "an expiry timestamp (int)", other)),
    };
    let kid = match arg(args, 4) {
        Value::Dict(opts) => opts.get(&HStr::new("kid".into())).map(|v| v.display()),
        Value::Nil => None,
        other => return Err(expected(NAME, "an options dict", other)),
    };
    let (base, mut pairs) = split_query(url);
    let base = encode_path(&base);
    for (k, v) in claims.iter().flat_map(|d| d.iter()) {
        pairs.push((k.to_string(), v.display()));
    }
    pairs.push(("exp".into(), expires.to_string()));
    if let Some(kid) = kid {
        pairs.push(("kid".into(), kid));
    }
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hmac_sha256_raw(&secret, signing_input(&base, &pairs).as_bytes()));
    pairs.push(("sig".into(), sig));
    done(Value::str(format!("{base}?{}", canonical_query(&pairs))))
}

fn verify_signed_url(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    const NAME: &str = "verify_signed_url";
    let url = str_arg(args, 0, NAME)?;
    let now = match arg(args, 2) {
        Value::Int(n) => *n,
        Value::Float(f) => *f as i64,
        Value::Nil => chrono::Utc::now().timestamp(),
        other => return Err(expected(NAME, "a timestamp (int)", other)),
    };
    let skew = match arg(args, 3) {
        Value::Dict(opts) => opts.get(&HStr::new("skew_seconds".into())).and_then(Value::as_int).unwrap_or(0),
        _ => 0,
    };
    let (base, all_pairs) = split_query(url);
    let mut sig = None;
    let mut pairs = Vec::new();
    for (k, v) in all_pairs {
        if k == "sig" {
            sig = Some(v);
        } else {
            pairs.push((k, v));
        }
    }
    let lookup = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let kid = lookup("kid");
    let expires = lookup("exp").and_then(|e| e.parse::<i64>().ok());
    let secret: Option<Vec<u8>> = match (arg(args, 1), &kid) {
        (Value::Dict(keys), Some(kid)) => keys.get(&HStr::new(kid.clone())).map(|v| v.display().into_bytes()),
        (Value::Dict(_), None) => None,
        (Value::Str(s), _) => Some(s.as_bytes().to_vec()),
        (Value::Bytes(b), _) => Some(b.to_vec()),
        (other, _) => return Err(expected(NAME, "a secret or a dict of secrets by key id", other)),
    };
    let signature_valid = match (&secret, &sig) {
        (Some(secret), Some(sig)) => {
            let want = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(hmac_sha256_raw(secret, signing_input(&base, &pairs).as_bytes()));
            ct_eq(want.as_bytes(), sig.as_bytes())
        }
        _ => false,
    };
    let expired = expires.is_none_or(|exp| now > exp.saturating_add(skew));
    let reason = if sig.is_none() {
        "missing_signature"
    } else if secret.is_none() {
        "unknown_key"
    } else if !signature_valid {
        "bad_signature"
    } else if expired {
        "expired"
    } else {
        "ok"
    };
    let mut claims = DictMap::new();
    for (k, v) in &pairs {
        if k != "exp" && k != "kid" {
            claims.insert(HStr::new(k.clone()), Value::str(v.as_str()));
        }
    }
    done(Value::dict_from([
        ("valid", Value::Bool(reason == "ok")),
        ("signature_valid", Value::Bool(signature_valid)),
        ("expired", Value::Bool(expired)),
        ("reason", Value::str(reason)),
        ("kid", kid.map_or(Value::Nil, Value::str)),
        ("expires_at", expires.map_or(Value::Nil, Value::Int)),
        ("claims", Value::dict(claims)),
    ]))
}

// ---- uuid --------------------------------------------------------------------

fn uuid_v4(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::str(uuid::Uuid::new_v4().to_string()))
}

fn uuid_v7(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::str(uuid::Uuid::now_v7().to_string()))
}

fn uuid_nil(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::str(uuid::Uuid::nil().to_string()))
}

fn uuid_v5(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let namespace = str_arg(args, 0, "uuid_v5")?;
    let namespace = match namespace {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => uuid::Uuid::parse_str(other).map_err(|e| fail("uuid_v5", format!("invalid namespace: {e}")))?,
    };
    let name = data_arg(args, 1, "uuid_v5")?;
    done(Value::str(uuid::Uuid::new_v5(&namespace, &name).to_string()))
}

/// The canonical lowercase form, or nil when the text is not a UUID.
fn uuid_parse(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let text = str_arg(args, 0, "uuid_parse")?;
    done(uuid::Uuid::parse_str(text).map_or(Value::Nil, |u| Value::str(u.to_string())))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn s(text: &str) -> Value {
        Value::str(text)
    }

    fn call(name: &str, args: &[Value]) -> Result<String, String> {
        run_builtin(name, args, &no_callback).map(|v| v.display())
    }

    #[test]
    fn known_digests() {
        assert_eq!(call("sha256", &[s("abc")]).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(call("md5", &[s("hello")]).unwrap(), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(call("sha1", &[s("abc")]).unwrap(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn encodings_round_trip() {
        assert_eq!(base32_encode_bytes(b"foobar"), "MZXW6YTBOI======");
        assert_eq!(base32_decode_bytes("MZXW6YTBOI======").unwrap(), b"foobar");
        for n in 0..12 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 5) as u8).collect();
            assert_eq!(base32_decode_bytes(&base32_encode_bytes(&data)).unwrap(), data);
        }
        assert_eq!(call("base64url_encode", &[s(">>>???///")]).unwrap(), "Pj4-Pz8_Ly8v");
        assert_eq!(call("hex_decode", &[s("68656c6c6f")]).unwrap(), "hello");
    }

    #[test]
    fn malformed_input_is_a_clear_error() {
        assert_eq!(call("bytes_from_hex", &[s("abc")]).unwrap_err(), "Runtime error: bytes_from_hex: Odd number of digits");
        assert_eq!(
            call("hex_decode", &[s("zz")]).unwrap_err(),
            "Runtime error: hex decode error: Invalid character 'z' at position 0"
        );
        assert_eq!(call("hex_decode", &[s("0A")]).unwrap(), "\n");
        assert!(call("base64_decode", &[s("!!!")]).unwrap_err().starts_with("Thrown: base64_decode: invalid base64"));
        // The reference's messages (data-encoding's strict RFC 4648 base32).
        assert_eq!(call("base32_decode", &[s("1")]).unwrap_err(), "Runtime error: base32 decode error: invalid length at 0");
        assert_eq!(call("base32_decode", &[s("A")]).unwrap_err(), "Runtime error: base32 decode error: invalid length at 0");
        assert_eq!(
            call("base32_decode", &[s("mzxw6ytboi======")]).unwrap_err(),
            "Runtime error: base32 decode error: invalid symbol at 0"
        );
        assert!(!ct_eq(b"abc", b"abd") && !ct_eq(b"abc", b"ab") && ct_eq(b"abc", b"abc"));
        assert_eq!(call("sha256", &[Value::Int(1)]).unwrap_err(), "Thrown: sha256: expected a string or bytes, got int");
        assert_eq!(call("hex_decode", &[s("ff")]).unwrap_err(), "Thrown: hex_decode: result is not valid UTF-8");
        assert_eq!(
            call("ed25519_sign", &[s("abcd"), s("m")]).unwrap_err(),
            "Thrown: ed25519_sign: private key must be 32 bytes, got 2"
        );
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            call("hmac_sha256", &[s("Jefe"), s("what do ya want for nothing?")]).unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signatures_round_trip_and_reject_tampering() {
        let kp = run_builtin("ed25519_keypair", &[], &no_callback).unwrap();
        let Value::Dict(kp) = &kp else { panic!("keypair is a dict") };
        let private = kp.get(&HStr::new("private".into())).unwrap().clone();
        let public = kp.get(&HStr::new("public".into())).unwrap().clone();
        let sig = run_builtin("ed25519_sign", &[private, s("msg")], &no_callback).unwrap();
        assert_eq!(call("ed25519_verify", &[public.clone(), s("msg"), sig.clone()]).unwrap(), "true");
        assert_eq!(call("ed25519_verify", &[public.clone(), s("msh"), sig]).unwrap(), "false");
        assert_eq!(call("ed25519_verify", &[public, s("msg"), s("00")]).unwrap(), "false");
    }

    #[test]
    fn signed_url_verifies_and_detects_expiry() {
        let link =
            run_builtin("signed_url", &[s("/a b"), Value::dict_from([("x", s("1/2"))]), s("k"), Value::Int(100)], &no_callback)
                .unwrap();
        assert!(link.display().starts_with("/a%20b?"), "{}", link.display());
        let ok = call("verify_signed_url", &[link.clone(), s("k"), Value::Int(100)]).unwrap();
        assert!(ok.contains("reason: ok"), "{ok}");
        let late = call("verify_signed_url", &[link.clone(), s("k"), Value::Int(101)]).unwrap();
        assert!(late.contains("reason: expired"), "{late}");
        let wrong = call("verify_signed_url", &[link, s("other"), Value::Int(1)]).unwrap();
        assert!(wrong.contains("reason: bad_signature"), "{wrong}");
    }

    #[test]
    fn uuids() {
        assert_eq!(call("uuid", &[]).unwrap().len(), 36);
        assert_eq!(call("uuid_nil", &[]).unwrap(), "00000000-0000-0000-0000-000000000000");
        assert_eq!(call("uuid_parse", &[s("nope")]).unwrap(), "nil");
        assert_eq!(call("uuid_v5", &[s("dns"), s("example.com")]).unwrap(), "cfbff0d1-9375-5685-968c-48ce8b15ae17");
    }
}
