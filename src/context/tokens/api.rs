//! The SQL API: `tenant.set_signing_key` and `tenant.set_token`.

use jsonwebtoken::Algorithm;
use pgrx::prelude::*;

use crate::error::{guarded, required, TenantError, TokenError};

use super::parameter::parameter_is_set;
use super::replay::{check_replay, refuse_below_lock, remember};
use super::verify::{decoding_key, verify, ALGORITHMS};

#[pg_extern(
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
                     ON CONFLICT (algorithm) DO UPDATE SET key = EXCLUDED.key, updated_at = EXCLUDED.updated_at"),
                    &[name.into(), key.into()],
                );
            }
        }
        crate::registry::audit::record(
            "set_signing_key",
            None,
            serde_json::json!({"algorithm": name, "removed": key.is_none()}),
        );
    })
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.set_token(token text, local boolean DEFAULT false, "lock" boolean DEFAULT false)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.set_token(text, boolean, boolean) IS 'pg_tenant: verify a signed tenant token (JWT) and act as the tenant it names; lock => true: only a newer token can change the tenant afterwards';
"#)]
fn set_token(token: Option<&str>, local: Option<bool>, lock: Option<bool>) -> pgrx::Uuid {
    guarded(|| {
        crate::context::refuse_in_restricted_operation("tenant.set_token()");
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
        if local {
            crate::node_context::pass_to_workers(t.id, v.exp, false);
        }
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
