//! More digests and byte helpers, as harn 0.9.11 names them: `sha224`,
//! `sha384`, `sha512_256`, `sha256_hex`, `sha256_base64url`, `hmac_sha1`,
//! `bytes_eq`, `bytes_to_base64url`, `bytes_to_string_lossy`,
//! `crypto_random_bytes`. Data arguments are strings (their UTF-8 bytes) or
//! bytes; digests come back as lowercase hex.

use std::borrow::Cow;
use std::rc::Rc;

use base64::Engine as _;
use hmac::Mac as _;
use sha2::Digest as _;

use super::args::{done, expected};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "sha224", imp: Native(sha224) },
    BuiltinDef { name: "sha384", imp: Native(sha384) },
    BuiltinDef { name: "sha512_256", imp: Native(sha512_256) },
    BuiltinDef { name: "sha256_hex", imp: Native(sha256_hex) },
    BuiltinDef { name: "sha256_base64url", imp: Native(sha256_base64url) },
    BuiltinDef { name: "hmac_sha1", imp: Native(hmac_sha1) },
    BuiltinDef { name: "bytes_eq", imp: Native(bytes_eq) },
    BuiltinDef { name: "bytes_to_base64url", imp: Native(bytes_to_base64url) },
    BuiltinDef { name: "bytes_to_string_lossy", imp: Native(bytes_to_string_lossy) },
    BuiltinDef { name: "crypto_random_bytes", imp: Native(crypto_random_bytes) },
];

/// The most `crypto_random_bytes` hands out at once (as on 0.9.11).
const MAX_RANDOM_BYTES: i64 = 1024;

fn data<'a>(args: &'a [Value], i: usize, builtin: &str) -> VmResult<Cow<'a, [u8]>> {
    match arg(args, i) {
        Value::Str(s) => Ok(Cow::Borrowed(s.as_bytes())),
        Value::Bytes(b) => Ok(Cow::Borrowed(b.as_slice())),
        other => Err(expected(builtin, "a string or bytes", other)),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn sha224(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(hex(&sha2::Sha224::digest(data(args, 0, "sha224")?))))
}
fn sha384(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(hex(&sha2::Sha384::digest(data(args, 0, "sha384")?))))
}
fn sha512_256(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(hex(&sha2::Sha512_256::digest(data(args, 0, "sha512_256")?))))
}
fn sha256_hex(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(hex(&sha2::Sha256::digest(data(args, 0, "sha256_hex")?))))
}
fn sha256_base64url(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(b64url(&sha2::Sha256::digest(data(args, 0, "sha256_base64url")?))))
}

fn hmac_sha1(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let key = data(args, 0, "hmac_sha1")?;
    let msg = data(args, 1, "hmac_sha1")?;
    // HMAC takes keys of any length.
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&key).map_err(|e| VmError::runtime(format!("hmac_sha1: {e}")))?;
    mac.update(&msg);
    done(Value::str(hex(&mac.finalize().into_bytes())))
}

fn bytes_eq(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let a = data(args, 0, "bytes_eq")?;
    let b = data(args, 1, "bytes_eq")?;
    // Constant time in the contents for equal lengths.
    let same = a.len() == b.len() && a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    done(Value::Bool(same))
}

fn bytes_to_base64url(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(b64url(&data(args, 0, "bytes_to_base64url")?)))
}

fn bytes_to_string_lossy(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let bytes = data(args, 0, "bytes_to_string_lossy")?;
    done(Value::str(String::from_utf8_lossy(&bytes).into_owned()))
}

fn crypto_random_bytes(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let n = match arg(args, 0) {
        Value::Int(n) if *n > 0 => *n,
        other => {
            return Err(VmError::runtime(format!("crypto_random_bytes: n must be a positive integer, got {}", other.type_name())))
        }
    };
    if n > MAX_RANDOM_BYTES {
        return Err(VmError::runtime(format!("crypto_random_bytes: n must be <= {MAX_RANDOM_BYTES}, got {n}")));
    }
    let mut buf = vec![0u8; n as usize];
    getrandom::getrandom(&mut buf).map_err(|e| VmError::runtime(format!("crypto_random_bytes: no OS randomness: {e}")))?;
    done(Value::Bytes(Rc::new(buf)))
}
