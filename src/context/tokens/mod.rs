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
//!
//! settings.rs defines the parameters, verify.rs verifies, replay.rs refuses replays,
//! parameter.rs is `pg_tenant.token`, api.rs the SQL functions.

mod api;
mod parameter;
mod replay;
mod settings;
mod verify;

pub use parameter::{on_xact, parameter_is_set, parameter_tenant, parameter_tenant_quietly};
pub use replay::refuse_if_locked;
pub use settings::init;
pub use verify::{forget_verified, refuse_if_expired};

use pgrx::prelude::*;

extension_sql_file!(
    "../../../sql/tokens.sql",
    name = "token_keys",
    requires = ["registry_tables"]
);
