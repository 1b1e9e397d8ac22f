//! Signed tenant tokens: `tenant.set_token(jwt)` and the `pg_tenant.token` parameter.
//!
//! The token is the credential: any role may present one, and the tenant it names (claim
//! `pg_tenant.jwt_claim`, default `tenant`, a slug or an id) becomes the session's. Verification
//! is jsonwebtoken's: the signature (HS256/384/512 with a shared secret, EdDSA or ES256 with a
//! PEM public key; never `none`, never an algorithm no key is registered for), `exp` (required)
//! and `nbf`, and `aud`/`iss` when `pg_tenant.jwt_audience`/`jwt_issuer` are set. The keys live
//! in `tenant_data.signing_keys`, which only the extension owner reads and only a superuser changes
//! (`tenant.set_signing_key`): a parameter would show through SHOW in sessions that have not
//! loaded the library yet. Replay: `set_token` for the session refuses a token older (`iat`)
//! than one the session already used, and a `jti` seen before; transaction-scoped tokens
//! (`local => true`, the parameter) are what poolers interleave from many clients on one server
//! session, so for them `exp` alone bounds reuse.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr};

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde_json::Value;

use crate::error::{guarded, packed_sqlstate, required, TenantError, TokenError};

extension_sql_file!(
    "../sql/tokens.sql",
    name = "token_keys",
    requires = ["registry_tables"]
);

static mut JWT_CLAIM: *mut c_char = std::ptr::null_mut();
static mut JWT_AUDIENCE: *mut c_char = std::ptr::null_mut();
static mut JWT_ISSUER: *mut c_char = std::ptr::null_mut();
static mut TOKEN: *mut c_char = std::ptr::null_mut();

/// A verified token: the tenant it names and what replay detection needs.
#[derive(Debug, Clone)]
pub struct Verified {
    pub tenant: String,
    pub iat: Option<i64>,
    /// Required by verify(), so always there for a verified token.
    pub exp: Option<i64>,
    pub jti: Option<String>,
}

/// What the parameter's token resolved to; checked again at every use (exp, the session lock,
/// transaction_only), since all three can change while the value stays.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    id: pgrx::Uuid,
    iat: Option<i64>,
    exp: Option<i64>,
}

thread_local! {
    /// Newest `iat` and the `jti`s this session has accepted (replay detection).
    static SEEN: RefCell<(Option<i64>, Vec<String>)> = const { RefCell::new((None, Vec::new())) };
    /// Tokens this backend verified (signature, validity, claims), each with the tenant claim it
    /// names, newest last. The parameter decides the tenant only through this list: what is
    /// trusted is the exact value that was verified, never a flag another statement can reset.
    static VERIFIED: RefCell<Vec<(String, Verified)>> = const { RefCell::new(Vec::new()) };
    /// The value of `pg_tenant.token` as PostgreSQL last assigned it, and what it resolved to.
    static PARAMETER: RefCell<(Option<String>, Option<Resolved>)> = const { RefCell::new((None, None)) };
    /// Values of `pg_tenant.token` that passed the check hook in this transaction (set by a
    /// statement of this transaction, not restored by a rollback, RESET or the end of a SET LOCAL).
    static CHECKED_IN_XACT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// (transaction, role, whether that role may act as tenants only for a transaction).
    static TXN_ONLY: std::cell::Cell<Option<(u64, pg_sys::Oid, bool)>> = const { std::cell::Cell::new(None) };
}

/// How many verified tokens a backend remembers (a rollback may bring an earlier one back; one
/// that is no longer remembered is verified again).
const VERIFIED_KEPT: usize = 16;

fn remember_verified(token: &str, verified: &Verified) {
    VERIFIED.with(|v| {
        let mut v = v.borrow_mut();
        v.retain(|(t, _)| t != token);
        v.push((token.to_string(), verified.clone()));
        if v.len() > VERIFIED_KEPT {
            v.remove(0);
        }
    });
}

/// The signing keys changed (cache.rs): every token is verified again at its next use.
pub fn forget_verified() {
    VERIFIED.with(|v| v.borrow_mut().clear());
    PARAMETER.with(|p| p.borrow_mut().1 = None);
}

fn verified(token: &str) -> Option<Verified> {
    VERIFIED.with(|v| {
        v.borrow()
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, verified)| verified.clone())
    })
}

/// Seconds since the epoch at the start of the current statement (one clock per statement, so a
/// token does not expire half-way through a scan).
fn statement_time() -> i64 {
    let micros = unsafe { pg_sys::GetCurrentStatementStartTimestamp() };
    micros.div_euclid(1_000_000) + 946_684_800
}

/// Refuses a tenant context whose token's `exp` has passed (as verify() judges it: valid up to
/// and including the second of exp).
pub fn refuse_if_expired(exp: Option<i64>) {
    if let Some(exp) = exp {
        if statement_time() > exp {
            TenantError::Token(TokenError::Expired(
                "the token that chose the tenant has expired".into(),
            ))
            .raise();
        }
    }
}

fn setting(ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    let value = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    (!value.is_empty()).then_some(value)
}

/// Defines the token parameters. Called from gucs::init() before the prefix is reserved.
pub fn init() {
    unsafe {
        // A change of what a token must say makes every token be verified again.
        let define =
            |name: &CStr, short: &CStr, boot: &CStr, var: *mut *mut c_char, flags: c_int| {
                pg_sys::DefineCustomStringVariable(
                    name.as_ptr(),
                    short.as_ptr(),
                    std::ptr::null(),
                    var,
                    boot.as_ptr(),
                    pg_sys::GucContext::PGC_SUSET,
                    flags,
                    None,
                    Some(verification_settings_changed),
                    None,
                );
            };
        define(
            c"pg_tenant.jwt_claim",
            c"The token claim that names the tenant (a slug or an id).",
            c"tenant",
            &raw mut JWT_CLAIM,
            pg_sys::GUC_NOT_IN_SAMPLE as c_int,
        );
        define(
            c"pg_tenant.jwt_audience",
            c"When set, a token's aud must contain it.",
            c"",
            &raw mut JWT_AUDIENCE,
            pg_sys::GUC_NOT_IN_SAMPLE as c_int,
        );
        define(
            c"pg_tenant.jwt_issuer",
            c"When set, a token's iss must equal it.",
            c"",
            &raw mut JWT_ISSUER,
            pg_sys::GUC_NOT_IN_SAMPLE as c_int,
        );
        pg_sys::DefineCustomStringVariable(
            c"pg_tenant.token".as_ptr(),
            c"A signed tenant token (JWT); verified when set, and then it names the session's tenant.".as_ptr(),
            c"SET [LOCAL] pg_tenant.token = '<jwt>', or in the connection's options. Empty: no token.".as_ptr(),
            &raw mut TOKEN,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            (pg_sys::GUC_NOT_IN_SAMPLE | pg_sys::GUC_NO_SHOW_ALL) as c_int,
            Some(check_token_guc),
            Some(assign_token_guc),
            // A credential: SHOW, current_setting() and set_config()'s result never print it
            // (behind a pooler, the next client of the server session could read it otherwise).
            Some(show_token_guc),
        );
    }
}

/// The algorithms a key can be registered for.
const ALGORITHMS: &[(&str, Algorithm)] = &[
    ("HS256", Algorithm::HS256),
    ("HS384", Algorithm::HS384),
    ("HS512", Algorithm::HS512),
    ("EdDSA", Algorithm::EdDSA),
    ("ES256", Algorithm::ES256),
];

/// The decoding key for `alg` from its key text (secret or PEM).
fn decoding_key(alg: Algorithm, key: &str) -> Result<DecodingKey, String> {
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
fn registered_key(alg: &str) -> Option<String> {
    crate::owner::as_extension_owner(|| {
        crate::owner::read_one::<String>(
            crate::owner::data_sql("SELECT key FROM tenant_data.signing_keys WHERE algorithm OPERATOR(pg_catalog.=) $1"),
            &[alg.into()],
        )
    })
}

/// What went wrong with a token, in words (never the verifier's internal names).
fn describe(kind: &jsonwebtoken::errors::ErrorKind) -> String {
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

/// Verifies a token's signature, validity period and claims (not replay, not the registry).
pub fn verify(token: &str) -> Result<Verified, TokenError> {
    if crate::gucs::settings_overridden_by_client() {
        return Err(TokenError::NoKey(
            "this session's connection options tried to set pg_tenant's superuser-only token settings, which replaced their configured values: no token is accepted in it".into(),
        ));
    }
    let header = decode_header(token).map_err(|e| {
        // A header naming an algorithm jsonwebtoken does not know at all ("none" included).
        if e.to_string().contains("unknown variant") {
            TokenError::BadSignature(
                "the header names an algorithm that is not accepted (HS256, HS384, HS512, EdDSA, ES256 are)".into(),
            )
        } else {
            TokenError::Malformed(describe(e.kind()))
        }
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

/// Refuses a token older than one this session used already, or a `jti` seen before (a token
/// presented again right after itself is the same credential, and fine).
fn check_replay(v: &Verified) -> Result<(), TokenError> {
    SEEN.with(|seen| {
        let seen = seen.borrow();
        if let (Some(newest), Some(iat)) = (seen.0, v.iat) {
            if iat < newest {
                return Err(TokenError::Replayed(
                    "issued (iat) before a token this session already used".into(),
                ));
            }
        }
        if let Some(jti) = &v.jti {
            if seen.1.iter().any(|j| j == jti) && seen.1.last() != Some(jti) {
                return Err(TokenError::Replayed(format!(
                    "jti \"{jti}\" was used before"
                )));
            }
        }
        Ok(())
    })
}

fn remember(v: &Verified) {
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        seen.0 = seen.0.max(v.iat);
        if let Some(jti) = &v.jti {
            seen.1.retain(|j| j != jti);
            seen.1.push(jti.clone());
            if seen.1.len() > 1000 {
                seen.1.remove(0);
            }
        }
    });
}

/// The tenant named by `pg_tenant.token`, resolved through the registry (cached); the
/// unknown-tenant error when the token names no tenant. None when no token is set. A value this
/// backend has not verified yet (one given in the connection's options before a transaction
/// could read the keys) is verified here, and refused with the token's error if it fails. At
/// every use the token must still be valid (exp), newer than a session lock, and, for a role
/// granted transaction_only, set by a statement of this transaction.
pub fn parameter_tenant() -> Option<pgrx::Uuid> {
    // The hot path (every tenant.current()): no token, or one already resolved; no copying.
    let (set, resolved) = PARAMETER.with(|p| {
        let p = p.borrow();
        (p.0.is_some(), p.1)
    });
    if !set {
        return None;
    }
    let r = match resolved {
        Some(r) => r,
        None => resolve_parameter(),
    };
    // A parallel worker runs for its leader, which judged the token when the statement began.
    if unsafe { pg_sys::ParallelWorkerNumber } < 0 {
        refuse_if_expired(r.exp);
        refuse_below_lock(r.iat).unwrap_or_else(|e| TenantError::Token(e).raise());
        if transaction_only_now() && !parameter_set_in_this_transaction() {
            TenantError::TransactionOnly(crate::owner::role_name(crate::owner::current_role()))
                .raise();
        }
    }
    Some(r.id)
}

/// Verifies (unless this backend verified this exact value already) and resolves the token.
fn resolve_parameter() -> Resolved {
    let token = PARAMETER.with(|p| p.borrow().0.clone()).unwrap_or_default();
    let v = match verified(&token) {
        Some(v) => v,
        None => {
            let v = verify(&token).unwrap_or_else(|e| TenantError::Token(e).raise());
            remember_verified(&token, &v);
            v
        }
    };
    let id = crate::registry::lookup(&v.tenant)
        .map(|t| t.id)
        .unwrap_or_else(|| TenantError::UnknownTenant(v.tenant.clone()).raise());
    let r = Resolved {
        id,
        iat: v.iat,
        exp: v.exp,
    };
    // Only if the parameter still holds this token (the lookup ran SQL).
    PARAMETER.with(|p| {
        let mut p = p.borrow_mut();
        if p.0.as_deref() == Some(token.as_str()) {
            p.1 = Some(r);
        }
    });
    r
}

/// Whether the current role may act as tenants only for a transaction (judged once per
/// transaction and role).
fn transaction_only_now() -> bool {
    let role = crate::owner::current_role();
    let generation = crate::gucs::transaction_generation();
    if let Some((g, r, only)) = TXN_ONLY.with(|t| t.get()) {
        if g == generation && r == role {
            return only;
        }
    }
    let only = crate::context::transaction_only_role();
    TXN_ONLY.with(|t| t.set(Some((generation, role, only))));
    only
}

/// Whether the value of `pg_tenant.token` in force was set by a statement of this transaction:
/// it passed the check hook in this transaction, and the parameter has changed in this
/// transaction (PostgreSQL keeps a stack entry for every change until the transaction ends; a
/// value committed earlier, restored by ROLLBACK TO, RESET or the end of a SET LOCAL, or applied
/// when the library loaded has none, or did not pass the check hook in this transaction).
fn parameter_set_in_this_transaction() -> bool {
    let Some(value) = PARAMETER.with(|p| p.borrow().0.clone()) else {
        return false;
    };
    CHECKED_IN_XACT.with(|c| c.borrow().contains(&value))
        && crate::gucs::changed_in_this_transaction(c"pg_tenant.token")
}

/// Transaction events: the per-transaction judgements end with it.
pub fn on_xact() {
    CHECKED_IN_XACT.with(|c| c.borrow_mut().clear());
}

/// Whether `pg_tenant.token` is set (it then decides the tenant).
pub fn parameter_is_set() -> bool {
    PARAMETER.with(|p| p.borrow().0.is_some())
}

/// While set_token(..., lock => true) holds the session, only a newer token (later iat) may
/// name the tenant.
fn refuse_below_lock(iat: Option<i64>) -> Result<(), TokenError> {
    match crate::gucs::session_lock() {
        Some((_, locked_iat)) if iat.is_none_or(|iat| iat <= locked_iat) => {
            Err(TokenError::Replayed(
                "the session is locked to a token; only a newer one (later iat) can change the tenant"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

/// Refuses tenant.set/set_local/reset while set_token(..., lock => true) holds the session, or
/// while pg_tenant.token decides the tenant.
pub fn refuse_if_locked() {
    if crate::gucs::session_lock().is_some() {
        TenantError::SessionLocked.raise();
    }
    if parameter_is_set() {
        TenantError::TokenParameterSet.raise();
    }
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.set_signing_key(algorithm text, key text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.set_signing_key(text, text) IS 'pg_tenant: register the key that verifies tenant tokens of an algorithm (HS256/HS384/HS512: a secret of at least 32 bytes; EdDSA/ES256: a PEM public key); NULL removes it. Superusers only';
"#,
    requires = ["token_keys"]
)]
fn set_signing_key(algorithm: Option<&str>, key: Option<&str>) {
    guarded(|| {
        let algorithm = required(algorithm, "algorithm");
        if !crate::owner::is_superuser(crate::owner::current_role()) {
            TenantError::NotSuperuser("tenant.set_signing_key").raise();
        }
        let Some((name, alg)) = ALGORITHMS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(algorithm))
            .copied()
        else {
            TenantError::invalid(
                "algorithm",
                "must be one of HS256, HS384, HS512, EdDSA, ES256",
            )
            .raise()
        };
        match key {
            None => crate::owner::run_as_owner(
                crate::owner::data_sql("DELETE FROM tenant_data.signing_keys WHERE algorithm OPERATOR(pg_catalog.=) $1"),
                &[name.into()],
            ),
            Some(key) => {
                if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
                    && key.len() < 32
                {
                    TenantError::invalid("key", "an HMAC secret needs at least 32 bytes").raise();
                }
                if decoding_key(alg, key).is_err() {
                    TenantError::invalid("key", format!("not a PEM public key for {name}")).raise();
                }
                crate::owner::run_as_owner(
                    crate::owner::data_sql("INSERT INTO tenant_data.signing_keys (algorithm, key) VALUES ($1, $2)
                     ON CONFLICT (algorithm) DO UPDATE SET key = EXCLUDED.key, updated_at = pg_catalog.now()"),
                    &[name.into(), key.into()],
                );
            }
        }
        crate::audit::record(
            "set_signing_key",
            None,
            serde_json::json!({"algorithm": name, "removed": key.is_none()}),
        );
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.set_token(token text, local boolean DEFAULT false, "lock" boolean DEFAULT false)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.set_token(text, boolean, boolean) IS 'pg_tenant: verify a signed tenant token (JWT) and act as the tenant it names; lock => true: only a newer token can change the tenant afterwards';
"#
)]
fn set_token(token: Option<&str>, local: Option<bool>, lock: Option<bool>) -> pgrx::Uuid {
    guarded(|| {
        let token = required(token, "token");
        let local = required(local, "local");
        let lock = required(lock, "lock");
        if parameter_is_set() {
            TenantError::TokenParameterSet.raise();
        }
        if !local && crate::context::transaction_only_role() {
            TenantError::TransactionOnly(crate::owner::role_name(crate::owner::current_role()))
                .raise();
        }
        let v = verify(token).unwrap_or_else(|e| TenantError::Token(e).raise());
        // Replay is judged for the session's own tokens; a transaction-scoped one is what
        // transaction poolers interleave from many clients on one server session (see README).
        if !local {
            check_replay(&v).unwrap_or_else(|e| TenantError::Token(e).raise());
        }
        refuse_below_lock(v.iat).unwrap_or_else(|e| TenantError::Token(e).raise());
        if lock && v.iat.is_none() {
            TenantError::Token(TokenError::Claims(
                "a token that locks the session needs an iat claim".into(),
            ))
            .raise();
        }
        let t = crate::registry::lookup(&v.tenant)
            .unwrap_or_else(|| TenantError::UnknownTenant(v.tenant.clone()).raise());
        crate::context::enter(&t, local, v.exp);
        if !local {
            remember(&v);
        }
        // A lock is never lifted by a token: a newer one (refuse_below_lock let it through)
        // moves it to its tenant and iat, for the same scope as the token's context.
        if lock || crate::gucs::session_lock().is_some() {
            let iat = v.iat.unwrap_or_else(|| {
                TenantError::Token(TokenError::Claims(
                    "a token that changes a locked session needs an iat claim".into(),
                ))
                .raise()
            });
            crate::gucs::apply_lock(Some((t.id, iat)), local);
        }
        t.id
    })
}

#[pg_guard]
unsafe extern "C-unwind" fn check_token_guc(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let value = if newval.is_null() || (*newval).is_null() {
        String::new()
    } else {
        CStr::from_ptr(*newval).to_string_lossy().into_owned()
    };
    // No token, or a parallel worker copying its leader's (already verified) value.
    if value.is_empty() || pg_sys::InitializingParallelWorker {
        return true;
    }
    // Connection options with the library preloaded: no transaction (or, while the backend
    // starts, no snapshot) to read the keys with yet. Accepted for now, unverified: the first
    // use verifies this exact value (see parameter_tenant) and fails closed.
    if !pg_sys::IsTransactionState()
        || (!pg_sys::ActiveSnapshotSet() && pg_sys::ActivePortal.is_null())
    {
        return true;
    }
    // No replay judgement here: the parameter is the form poolers and Citus forward, which
    // interleave many clients' tokens on one server session (exp bounds a token's use).
    match verify(&value).and_then(|v| refuse_below_lock(v.iat).map(|_| v)) {
        Ok(v) => {
            remember_verified(&value, &v);
            CHECKED_IN_XACT.with(|c| {
                let mut c = c.borrow_mut();
                if !c.contains(&value) {
                    c.push(value.clone());
                }
            });
            true
        }
        Err(e) => {
            pg_sys::GUC_check_errcode(packed_sqlstate(e.sqlstate()));
            let message = std::ffi::CString::new(e.message()).unwrap_or_default();
            pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(message.as_ptr());
            false
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn verification_settings_changed(
    _newval: *const c_char,
    _extra: *mut c_void,
) {
    forget_verified();
}

/// What SHOW prints for the token: whether one is set, never the token.
#[pg_guard]
unsafe extern "C-unwind" fn show_token_guc() -> *const c_char {
    if setting(TOKEN).is_some() {
        c"(hidden)".as_ptr()
    } else {
        c"".as_ptr()
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_token_guc(newval: *const c_char, _extra: *mut c_void) {
    // No decoding here: the value counts only once it is found verified (parameter_tenant).
    let value = if newval.is_null() {
        String::new()
    } else {
        CStr::from_ptr(newval).to_string_lossy().into_owned()
    };
    PARAMETER.with(|p| *p.borrow_mut() = ((!value.is_empty()).then_some(value), None));
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
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
