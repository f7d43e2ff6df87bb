//! `jwt_sign(algorithm, claims, private_key)` and
//! `jwt_verify(algorithm, token, key)`, as harn 0.9.11 has them.
//!
//! Both go through the `jsonwebtoken` crate (pure-Rust backend), so token
//! layout, key parsing and error names are the crate's: the header is
//! `{"typ":"JWT","alg":..}`, claims are the dict's JSON (keys sorted, as
//! `json_stringify` writes them), and failures read `InvalidToken`,
//! `InvalidSignature`, `InvalidKeyFormat`, `Base64 error: ...`.
//! Signing takes ES256 (PKCS#8 PEM) or RS256 (PKCS#1 or PKCS#8 PEM) keys;
//! verifying also takes HS256 with a shared secret. Verification checks the
//! signature and the `aud` claim's presence rules of the crate, not `exp`
//! or `nbf`, and requires no claims, matching 0.9.11.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};

use super::args::done;
use super::json::{from_json, to_json};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, Value};

pub(super) static TABLE: &[BuiltinDef] =
    &[BuiltinDef { name: "jwt_sign", imp: Native(jwt_sign) }, BuiltinDef { name: "jwt_verify", imp: Native(jwt_verify) }];

/// Argument `i` as text, or 0.9.11's type error naming the parameter.
fn text_arg<'a>(args: &'a [Value], i: usize, builtin: &str, param: &str) -> VmResult<&'a str> {
    let v = arg(args, i);
    v.as_str()
        .ok_or_else(|| VmError::type_error(format!("'{builtin}' parameter `{param}` expects string, got {}", v.type_name())))
}

fn jwt_sign(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let alg_name = text_arg(args, 0, "jwt_sign", "algorithm")?;
    let claims = arg(args, 1);
    if !matches!(claims, Value::Dict(_)) {
        return Err(VmError::type_error(format!("'jwt_sign' parameter `claims` expects dict, got {}", claims.type_name())));
    }
    let pem = text_arg(args, 2, "jwt_sign", "private_key")?;
    let alg = match alg_name {
        "ES256" => Algorithm::ES256,
        "RS256" => Algorithm::RS256,
        other => return Err(VmError::runtime(format!("jwt_sign: unsupported algorithm `{other}`; expected ES256 or RS256"))),
    };
    let key = if alg == Algorithm::ES256 {
        EncodingKey::from_ec_pem(pem.as_bytes())
    } else {
        EncodingKey::from_rsa_pem(pem.as_bytes())
    }
    .map_err(|e| VmError::runtime(format!("jwt_sign: invalid {alg_name} PEM private key: {e}")))?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = format!("{{\"typ\":\"JWT\",\"alg\":\"{alg_name}\"}}");
    let message = format!("{}.{}", b64.encode(header), b64.encode(to_json(claims)?));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, alg)
        .map_err(|e| VmError::runtime(format!("jwt_sign: signing failed: {e}")))?;
    done(Value::str(format!("{message}.{signature}")))
}

fn jwt_verify(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let alg_name = text_arg(args, 0, "jwt_verify", "algorithm")?;
    let token = text_arg(args, 1, "jwt_verify", "token")?;
    let key_text = text_arg(args, 2, "jwt_verify", "key")?;
    let fail = |msg: String| VmError::throw_msg(format!("jwt_verify: {msg}"));
    let (alg, key) = match alg_name {
        "HS256" => (Algorithm::HS256, Ok(DecodingKey::from_secret(key_text.as_bytes()))),
        "ES256" => (Algorithm::ES256, DecodingKey::from_ec_pem(key_text.as_bytes())),
        "RS256" => (Algorithm::RS256, DecodingKey::from_rsa_pem(key_text.as_bytes())),
        other => return Err(fail(format!("unsupported algorithm '{other}'"))),
    };
    let key = key.map_err(|e| fail(format!("invalid {alg_name} public key: {e}")))?;
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| fail(e.to_string()))?;
    done(Value::dict_from([("claims", from_json(&data.claims)), ("valid", Value::Bool(true))]))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use crate::runtime::value::Value;

    // Throwaway keys generated with openssl for these tests (also under tests/fixtures/jwt).
    const EC_PRIVATE: &str = include_str!("../../../../tests/fixtures/jwt/es256_private.pem");
    const EC_PUBLIC: &str = include_str!("../../../../tests/fixtures/jwt/es256_public.pem");
    const RSA_PRIVATE: &str = include_str!("../../../../tests/fixtures/jwt/rs256_private.pem");
    const RSA_PUBLIC: &str = include_str!("../../../../tests/fixtures/jwt/rs256_public.pem");

    fn call(name: &str, args: &[Value]) -> String {
        run_builtin(name, args, &no_callback).map(|v| v.display()).unwrap_or_else(|e| e)
    }

    fn claims() -> Value {
        Value::dict_from([("sub", Value::str("a")), ("n", Value::Int(1))])
    }

    #[test]
    fn sign_then_verify_round_trips() {
        for (alg, private, public) in [("ES256", EC_PRIVATE, EC_PUBLIC), ("RS256", RSA_PRIVATE, RSA_PUBLIC)] {
            let token = call("jwt_sign", &[Value::str(alg), claims(), Value::str(private)]);
            assert_eq!(token.split('.').count(), 3, "{token}");
            assert_eq!(
                call("jwt_verify", &[Value::str(alg), Value::str(&token), Value::str(public)]),
                "{claims: {n: 1, sub: a}, valid: true}"
            );
            // A changed payload no longer matches the signature.
            let mut parts: Vec<&str> = token.split('.').collect();
            parts[1] = "eyJzdWIiOiJiIn0";
            let forged = parts.join(".");
            assert!(call("jwt_verify", &[Value::str(alg), Value::str(forged), Value::str(public)])
                .ends_with("jwt_verify: InvalidSignature"));
        }
    }

    #[test]
    fn errors_use_the_crate_names() {
        let token = call("jwt_sign", &[Value::str("ES256"), claims(), Value::str(EC_PRIVATE)]);
        assert!(call("jwt_verify", &[Value::str("RS256"), Value::str(&token), Value::str(RSA_PUBLIC)])
            .ends_with("jwt_verify: InvalidAlgorithm"));
        assert!(call("jwt_verify", &[Value::str("ES256"), Value::str("abc"), Value::str(EC_PUBLIC)])
            .ends_with("jwt_verify: InvalidToken"));
        assert!(call("jwt_verify", &[Value::str("ES384"), Value::str(&token), Value::str(EC_PUBLIC)])
            .ends_with("jwt_verify: unsupported algorithm 'ES384'"));
        assert!(call("jwt_sign", &[Value::str("ES256"), claims(), Value::str("nope")])
            .ends_with("jwt_sign: invalid ES256 PEM private key: InvalidKeyFormat"));
        assert!(call("jwt_sign", &[Value::str("HS256"), claims(), Value::str("k")])
            .ends_with("jwt_sign: unsupported algorithm `HS256`; expected ES256 or RS256"));
    }
}
