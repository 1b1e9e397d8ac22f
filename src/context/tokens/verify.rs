//! Verifying a token: the signature with the registered key, `exp`/`nbf`, `aud`/`iss`, the
//! tenant claim; the tokens this backend verified, kept until the keys or settings change.

use std::cell::RefCell;

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use pgrx::pg_sys;
use serde_json::Value;

use crate::error::{TenantError, TokenError};

use super::parameter::PARAMETER;
use super::settings::{setting, JWT_AUDIENCE, JWT_CLAIM, JWT_ISSUER};

thread_local! {
    /// Tokens this backend verified (signature, validity, claims), each with the tenant claim it
    /// names, newest last. The parameter decides the tenant only through this list: what is
    /// trusted is the exact value that was verified, never a flag another statement can reset.
    pub(super) static VERIFIED: RefCell<Vec<(String, Verified)>> = const { RefCell::new(Vec::new()) };
}

/// A verified token: the tenant it names and what replay detection needs.
#[derive(Debug, Clone)]
pub struct Verified {
    pub tenant: String,
    pub iat: Option<i64>,
    /// Required by verify(), so always there for a verified token.
    pub exp: Option<i64>,
    pub jti: Option<String>,
}

/// How many verified tokens a backend remembers (a rollback may bring an earlier one back; one
/// that is no longer remembered is verified again).
pub(super) const VERIFIED_KEPT: usize = 16;

pub(super) fn remember_verified(token: &str, verified: &Verified) {
    VERIFIED.with(|v| {
        let mut v = v.borrow_mut();
        v.retain(|(t, _)| t != token);
        v.push((token.to_string(), verified.clone()));
        if v.len() > VERIFIED_KEPT {
            v.remove(0);
        }
    });
}

/// The signing keys changed (registry::cache calls it, see init): every token is verified again at its next use.
pub fn forget_verified() {
    VERIFIED.with(|v| v.borrow_mut().clear());
    PARAMETER.with(|p| p.borrow_mut().1 = None);
}

pub(super) fn verified(token: &str) -> Option<Verified> {
    VERIFIED.with(|v| {
        v.borrow()
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, verified)| verified.clone())
    })
}

/// Seconds since the epoch at the start of the current statement (one clock per statement, so a
/// token does not expire half-way through a scan).
pub(super) fn statement_time() -> i64 {
    let micros = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    micros.div_euclid(1_000_000) + 946_684_800
}

/// Refuses a tenant context whose token's `exp` has passed (as verify() judges it: valid up to
/// and including the second of exp).
pub fn refuse_if_expired(exp: Option<i64>) {
    if expired(exp) {
        TenantError::Token(TokenError::Expired(
            "the token that chose the tenant has expired".into(),
        ))
        .raise();
    }
}

/// Whether a token with this `exp` has expired (at the statement's time).
pub(super) fn expired(exp: Option<i64>) -> bool {
    exp.is_some_and(|exp| statement_time() > exp)
}

/// The algorithms a key can be registered for.
pub(super) const ALGORITHMS: &[(&str, Algorithm)] = &[
    ("HS256", Algorithm::HS256),
    ("HS384", Algorithm::HS384),
    ("HS512", Algorithm::HS512),
    ("EdDSA", Algorithm::EdDSA),
    ("ES256", Algorithm::ES256),
];

/// The decoding key for `alg` from its key text (secret or PEM).
pub(super) fn decoding_key(alg: Algorithm, key: &str) -> Result<DecodingKey, String> {
    match alg {
        Algorithm::EdDSA => {
            DecodingKey::from_ed_pem(key.as_bytes()).map_err(|e| describe(e.kind()))
        }
        Algorithm::ES256 => {
            DecodingKey::from_ec_pem(key.as_bytes()).map_err(|e| describe(e.kind()))
        }
        _ => Ok(DecodingKey::from_secret(key.as_bytes())),
    }
}

/// The key registered for an algorithm (read as the extension owner; needs a transaction).
pub(super) fn registered_key(alg: &str) -> Option<String> {
    crate::owner::as_extension_owner(|| {
        crate::owner::read_one::<String>(
            crate::owner::data_sql("SELECT key FROM tenant_data.signing_keys WHERE algorithm OPERATOR(pg_catalog.=) $1"),
            &[alg.into()],
        )
    })
}

/// What went wrong with a token, in words (never the verifier's internal names).
pub(super) fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match kind {
        InvalidSignature => "the signature does not match the registered key".into(),
        InvalidAlgorithm | InvalidAlgorithmName => {
            "the algorithm does not match the registered key".into()
        }
        ExpiredSignature => "it has expired (exp)".into(),
        ImmatureSignature => "it is not valid yet (nbf)".into(),
        InvalidAudience => "its audience (aud) is not pg_tenant.jwt_audience".into(),
        InvalidIssuer => "its issuer (iss) is not pg_tenant.jwt_issuer".into(),
        InvalidSubject => "its subject (sub) is not accepted".into(),
        MissingRequiredClaim(claim) => format!("the required claim \"{claim}\" is missing"),
        InvalidKeyFormat | InvalidEcdsaKey | InvalidRsaKey(_) => {
            "the registered key is not usable".into()
        }
        InvalidToken => "it is not three base64url parts separated by dots".into(),
        Base64(_) => "a part is not valid base64url".into(),
        Json(_) => "a part is not valid JSON".into(),
        Utf8(_) => "a part is not valid UTF-8".into(),
        _ => "it is not a valid token".into(),
    }
}

/// The `alg` a token's header names, when the header is base64url-encoded JSON with a string
/// `alg` (read apart from jsonwebtoken, which refuses a header naming an algorithm it does not
/// know without saying which).
fn header_algorithm(token: &str) -> Option<String> {
    use base64::Engine;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice::<Value>(&json).ok()?.get("alg")? {
        Value::String(alg) => Some(alg.clone()),
        _ => None,
    }
}

/// Verifies a token's signature, validity period and claims (not replay, not the registry).
pub fn verify(token: &str) -> Result<Verified, TokenError> {
    if crate::gucs::settings_overridden_by_client() {
        return Err(TokenError::NoKey(
            "this session's connection options tried to set pg_tenant's superuser-only token settings, which replaced their configured values: no token is accepted in it".into(),
        ));
    }
    let header = decode_header(token).map_err(|e| match (e.kind(), header_algorithm(token)) {
        // A header jsonwebtoken could not read because it names an algorithm that is not
        // accepted (one jsonwebtoken does not know at all, "none" included).
        (jsonwebtoken::errors::ErrorKind::Json(_), Some(alg))
            if !ALGORITHMS.iter().any(|(name, _)| *name == alg) =>
        {
            TokenError::BadSignature(
                "the header names an algorithm that is not accepted (HS256, HS384, HS512, EdDSA, ES256 are)".into(),
            )
        }
        (kind, _) => TokenError::Malformed(describe(kind)),
    })?;
    let Some((name, alg)) = ALGORITHMS.iter().find(|(_, a)| *a == header.alg).copied() else {
        return Err(TokenError::BadSignature(format!(
            "algorithm {:?} is not accepted",
            header.alg
        )));
    };
    let key_text = registered_key(name).ok_or_else(|| {
        TokenError::NoKey(format!(
            "no key is registered for {name} (tenant.set_signing_key)"
        ))
    })?;
    let key = decoding_key(alg, &key_text)
        .map_err(|e| TokenError::NoKey(format!("the {name} key is not usable: {e}")))?;
    let mut validation = Validation::new(alg);
    validation.leeway = 0;
    validation.validate_nbf = true;
    // exp always; aud and iss when configured (a token without them must not pass the check).
    let mut required = vec!["exp"];
    match setting(unsafe { JWT_AUDIENCE }) {
        Some(aud) => {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        None => validation.validate_aud = false,
    }
    if let Some(iss) = setting(unsafe { JWT_ISSUER }) {
        validation.set_issuer(&[iss]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    let data = decode::<Value>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind::*;
        let text = describe(e.kind());
        match e.kind() {
            InvalidSignature | InvalidAlgorithm | InvalidAlgorithmName => {
                TokenError::BadSignature(text)
            }
            ExpiredSignature | ImmatureSignature => TokenError::Expired(text),
            InvalidAudience | InvalidIssuer | MissingRequiredClaim(_) | InvalidSubject => {
                TokenError::Claims(text)
            }
            InvalidKeyFormat | InvalidEcdsaKey | InvalidRsaKey(_) => TokenError::NoKey(text),
            _ => TokenError::Malformed(text),
        }
    })?;
    let claim = setting(unsafe { JWT_CLAIM }).unwrap_or_else(|| "tenant".into());
    let tenant = match data.claims.get(&claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(TokenError::Claims(format!(
                "claim \"{claim}\" naming the tenant is missing or not a string"
            )))
        }
    };
    // The dates are NumericDates (RFC 7519): a present one that is not a number is refused (a
    // verifier could otherwise skip it).
    for claim in ["exp", "nbf", "iat"] {
        if data.claims.get(claim).is_some_and(|v| !v.is_number()) {
            return Err(TokenError::Claims(format!(
                "the {claim} claim must be a number of seconds"
            )));
        }
    }
    // NumericDate may have a fraction: whole seconds, rounded towards "sooner".
    let seconds = |claim: &str| {
        data.claims
            .get(claim)
            .and_then(Value::as_f64)
            .map(|f| f.floor() as i64)
    };
    let exp = seconds("exp")
        .ok_or_else(|| TokenError::Claims("the exp claim must be a number of seconds".into()))?;
    Ok(Verified {
        tenant,
        iat: seconds("iat"),
        exp: Some(exp),
        jti: data
            .claims
            .get("jti")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use jsonwebtoken::{encode, EncodingKey, Header};
    use pgrx::prelude::*;

    /// A throwaway Ed25519 key pair, for this test only.
    const PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJfJ5S2OvV+J8SQ5JCZR2/6+ebeSQwAEmrjEpQoqO6Mw\n-----END PRIVATE KEY-----\n";
    const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA/7QCgoYnnmgovkzIeOeA2NMNBIHnbDmGKUbCGSrVLcQ=\n-----END PUBLIC KEY-----\n";
    const OTHER_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIMBC90VO2gDU7qXq6aC0toBAIeqW43cKTyPPfg40GhbK\n-----END PRIVATE KEY-----\n";

    /// A throwaway P-256 key pair, for this test only.
    const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgG/FOzGJRlDSMPXRR\nRM4RgTmPFzq6xUTtmLOYjAlIUdShRANCAARwzEaTl+djWY75gu43N8zuJUjtU0sM\nDXPT9IpiHq1NDIqyByameDFfUdptNHh3zPa1ukZx4B6/prljgckdcqzj\n-----END PRIVATE KEY-----\n";
    const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcMxGk5fnY1mO+YLuNzfM7iVI7VNL\nDA1z0/SKYh6tTQyKsgcmpngxX1HabTR4d8z2tbpGceAev6a5Y4HJHXKs4w==\n-----END PUBLIC KEY-----\n";

    fn claims(tenant: &str) -> serde_json::Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        serde_json::json!({"tenant": tenant, "exp": now + 60})
    }

    fn token(private: &str, tenant: &str) -> String {
        let key = EncodingKey::from_ed_pem(private.as_bytes()).unwrap();
        encode(
            &Header::new(jsonwebtoken::Algorithm::EdDSA),
            &claims(tenant),
            &key,
        )
        .unwrap()
    }

    #[pg_test]
    fn es256_tokens_verify_and_an_hs256_token_signed_with_the_public_key_does_not() {
        Spi::run("SELECT tenant.create('pgtest-tokens-ec')").unwrap();
        Spi::run_with_args(
            "SELECT tenant.set_signing_key('ES256', $1)",
            &[EC_PUBLIC.into()],
        )
        .unwrap();
        Spi::run("SELECT tenant.set_signing_key('HS256', repeat('s', 40))").unwrap();
        let ec_key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let es = encode(
            &Header::new(jsonwebtoken::Algorithm::ES256),
            &claims("pgtest-tokens-ec"),
            &ec_key,
        )
        .unwrap();
        assert!(super::verify(&es).is_ok());
        // Algorithm confusion: the public key (which is no secret) used as an HMAC secret.
        let confused_key = EncodingKey::from_secret(EC_PUBLIC.as_bytes());
        let confused = encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims("pgtest-tokens-ec"),
            &confused_key,
        )
        .unwrap();
        let refused = super::verify(&confused);
        assert!(
            matches!(refused, Err(super::TokenError::BadSignature(_))),
            "{refused:?}"
        );
        Spi::run(
            "SELECT tenant.set_signing_key('ES256', NULL), tenant.set_signing_key('HS256', NULL)",
        )
        .unwrap();
    }

    #[pg_test]
    fn eddsa_tokens_verify_with_the_registered_public_key_only() {
        Spi::run("SELECT tenant.create('pgtest-tokens-ed')").unwrap();
        Spi::run_with_args(
            "SELECT tenant.set_signing_key('EdDSA', $1)",
            &[PUBLIC.into()],
        )
        .unwrap();
        let id = Spi::get_one_with_args::<pgrx::Uuid>(
            "SELECT tenant.set_token($1)",
            &[token(PRIVATE, "pgtest-tokens-ed").as_str().into()],
        )
        .unwrap();
        assert!(id.is_some());
        let forged = super::verify(&token(OTHER_PRIVATE, "pgtest-tokens-ed"));
        assert!(
            matches!(forged, Err(super::TokenError::BadSignature(_))),
            "{forged:?}"
        );
        Spi::run("SELECT tenant.set_signing_key('EdDSA', NULL)").unwrap();
        let unkeyed = super::verify(&token(PRIVATE, "pgtest-tokens-ed"));
        assert!(
            matches!(unkeyed, Err(super::TokenError::NoKey(_))),
            "{unkeyed:?}"
        );
    }
}

#[cfg(test)]
mod unit {
    use super::header_algorithm;

    fn b64(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn the_header_algorithm_is_read_from_the_first_part() {
        let token = |h: &str| format!("{}.e30.sig", b64(h));
        assert_eq!(
            header_algorithm(&token(r#"{"alg":"none"}"#)).as_deref(),
            Some("none")
        );
        assert_eq!(
            header_algorithm(&token(r#"{"alg":"HS256","typ":"JWT"}"#)).as_deref(),
            Some("HS256")
        );
        assert_eq!(header_algorithm(&token(r#"{"alg":7}"#)), None);
        assert_eq!(header_algorithm(&token(r#"{"typ":"JWT"}"#)), None);
        assert_eq!(header_algorithm(&token("not json")), None);
        assert_eq!(header_algorithm("!!!.e30.sig"), None);
        assert_eq!(header_algorithm(""), None);
    }
}
