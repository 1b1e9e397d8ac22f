//! The node context: how a tenant chosen with `tenant.set_local()` (or `set_token(..., local =>
//! true)`) on a Citus coordinator reaches the workers.
//!
//! Citus forwards a parameter to the workers only as a `SET LOCAL` statement run in a transaction
//! block (with `citus.propagate_set_commands = 'local'`, which `tenant.citus_setup()` sets for the
//! database); a value set from C, as set_local() sets the tenant, never leaves the node. So after
//! set_local() has judged the role's right, pg_tenant mints a short-lived token for that tenant and
//! that role, signed with the database's node key (`tenant_data.node_key`, made by citus_setup(),
//! a reference table only the extension owner reads), and runs `SET LOCAL pg_tenant.context =
//! '<token>'`, which Citus sends to every worker connection of the transaction. Each node
//! verifies it (its check hook) with the key it holds, and it names the tenant there only:
//! - for the role it was minted for (Citus sends the statement to the connections of every role
//!   in the transaction; another role's connection ignores it),
//! - until it expires (`exp`: NODE_CONTEXT_SECONDS, or the choosing token's `exp` if sooner),
//! - when set with SET LOCAL in the current transaction (a session-level SET is ignored),
//! - in a backend whose session is not locked to a tenant (tenant.set_token(..., lock => true)).
//!
//! tenant.drop() mints one for each table's owner with the claim `drop`, which names no tenant
//! and sets FORCE ROW LEVEL SECURITY aside for that owner on the workers (follow_drop_token);
//! tenant.import() passes the same for each statement that loads a distributed table, and
//! tenant.export() one naming the exported tenant for each that reads one (for_one_statement,
//! which sets the parameter back after that statement). On
//! the coordinator only pg_tenant itself sets the parameter, and only tokens this backend minted
//! count; on a worker, those Citus forwards.
//!
//! What reaches a worker is thus a credential it verifies, never a bare id. The token is visible
//! to its own role (and to pg_read_all_stats members) in the worker's pg_stat_activity while the
//! statement runs: that role could set it again within its lifetime, which grants nothing it did
//! not have minutes before (docs/security.md).

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void};

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use pgrx::pg_sys;
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{refuse_setting, TenantError, TokenError};

/// How long a node context is valid at most, in seconds.
const NODE_CONTEXT_SECONDS: i64 = 300;
/// The audience of node tokens (never accepted as an application's token: another key).
const AUDIENCE: &str = "pg_tenant-node";

static mut CONTEXT: *mut c_char = std::ptr::null_mut();

thread_local! {
    /// The value of `pg_tenant.context` as PostgreSQL last assigned it.
    static VALUE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Node tokens this backend verified, newest last.
    static VERIFIED: RefCell<Vec<(String, NodeClaims)>> = const { RefCell::new(Vec::new()) };
    /// Node tokens this backend minted (pass_to_workers), newest last: on a coordinator only
    /// these count.
    static MINTED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Set while pass_to_workers runs its own SET LOCAL.
    static ISSUING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The node key as last read (None: not read since it may have changed; Some(None): there
    /// is none). Emptied with the registry cache, whose invalidation the key's table (and its
    /// placement on this node) sends when it changes (registry::cache).
    static KEY: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
    /// Whether follow_drop_token set SECURITY_NOFORCE_RLS.
    static NOFORCE_SET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Whether this node is a Citus worker (its group is not the coordinator's), once known.
    static WORKER: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether this node is a Citus worker: a node whose Citus group is not the coordinator's (0).
/// There a node token Citus forwards counts; on the coordinator (or without Citus) only one this
/// backend minted does. Needs a transaction to find out the first time; false until then.
fn this_node_is_worker() -> bool {
    if let Some(known) = WORKER.with(|w| w.get()) {
        return known;
    }
    if !unsafe { pg_sys::IsTransactionState() } || !crate::citus::installed() {
        return false;
    }
    // (Citus's catalog, read as the extension owner: not every role may read it.)
    let worker = crate::owner::as_extension_owner(|| {
        crate::owner::read_one::<i32>("SELECT groupid FROM pg_catalog.pg_dist_local_group", &[])
    })
    .is_some_and(|group| group != 0);
    WORKER.with(|w| w.set(Some(worker)));
    worker
}

thread_local! {
    /// Whether this node is a Citus coordinator, once known (see [`this_node_is_coordinator`]).
    static COORDINATOR: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether this node is the Citus coordinator: its group is the coordinator's (0) and the node
/// list names a node of that group (citus_set_coordinator_host()). A node of another group is a
/// worker; a node of group 0 without that entry (a worker whose metadata is not synced yet, a
/// coordinator not set up yet) is not a coordinator yet and is asked again next time.
pub fn this_node_is_coordinator() -> bool {
    if let Some(known) = COORDINATOR.with(|c| c.get()) {
        return known;
    }
    if !unsafe { pg_sys::IsTransactionState() } || !crate::citus::installed() {
        return false;
    }
    let (group, listed) = crate::owner::as_extension_owner(|| {
        Spi::connect(|client| {
            let row = client
                .select(
                    "SELECT l.groupid, EXISTS (SELECT FROM pg_catalog.pg_dist_node n
                         WHERE n.groupid OPERATOR(pg_catalog.=) 0) FROM pg_catalog.pg_dist_local_group l",
                    Some(1),
                    &[],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>((row.get::<i32>(1)?, row.get::<bool>(2)?))
        })
        .unwrap_or((None, None))
    });
    match (group, listed) {
        (Some(0), Some(true)) => COORDINATOR.with(|c| c.set(Some(true))),
        (Some(g), _) if g != 0 => COORDINATOR.with(|c| c.set(Some(false))),
        _ => {}
    }
    COORDINATOR.with(|c| c.get()).unwrap_or(false)
}

fn minted_here(token: &str) -> bool {
    MINTED.with(|m| m.borrow().iter().any(|t| t == token))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeClaims {
    tenant: String,
    role: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// Minted by tenant.drop() (and tenant.import()) for a table owner: it names no tenant; on a worker it sets FORCE
    /// ROW LEVEL SECURITY aside for the owner (follow_drop_token), and the write guard lets the
    /// owner's deletes through (the tenant may be suspended), as on the coordinator.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    drop: bool,
    /// The coordinator judged the role's grant for this tenant read-only (context::writes_as):
    /// the write guards on a worker refuse its writes as the coordinator's would.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The database's node key, if Citus is installed and citus_setup() made one (read as the
/// extension owner, from this node's placement; kept until the registry cache is emptied, see
/// [`forget_key`]).
fn node_key() -> Option<String> {
    if let Some(known) = KEY.with(|k| k.borrow().clone()) {
        return known;
    }
    // (With the latest snapshot: a REPEATABLE READ transaction's would keep a replaced key.)
    let key = crate::citus::installed()
        .then(|| {
            crate::owner::as_extension_owner(|| {
                crate::owner::read_latest(crate::owner::data_sql(
                    "SELECT secret FROM tenant_data.node_key",
                ))
            })
        })
        .flatten();
    KEY.with(|k| *k.borrow_mut() = Some(key.clone()));
    key
}

/// Forgets the node key read, and the node tokens verified with it (registry::cache::clear: a
/// change of tenant_data.node_key, here or through Citus on its placement, invalidates the cache
/// like the registry's tables do): a token of a key replaced is refused from then on.
pub fn forget_key() {
    KEY.with(|k| *k.borrow_mut() = None);
    VERIFIED.with(|v| v.borrow_mut().clear());
}

/// Makes a new node key when there is none (tenant.citus_setup(); superuser, as the extension
/// owner). Returns whether it made one.
pub fn make_node_key() -> bool {
    forget_key();
    if node_key().is_some() {
        return false;
    }
    let mut bytes = [0u8; 32];
    if !unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr() as *mut c_void, bytes.len()) } {
        error!("pg_tenant: could not generate a random node key");
    }
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::owner::as_extension_owner(|| {
        crate::owner::run_with_args(
            crate::owner::data_sql("INSERT INTO tenant_data.node_key (secret) VALUES ($1)"),
            &[secret.as_str().into()],
        )
    });
    true
}

/// After set_local()/set_token(..., local => true) chose `tenant` (and judged the role's right):
/// passes it to the Citus workers of this transaction as a node token, when Citus is installed,
/// citus_setup() made the node key, and a transaction block is open (outside one the context
/// ends with the statement). `exp` is the choosing token's, if a token chose the tenant;
/// `read_only`: the role's grant lets it read only (the workers then refuse its writes).
pub fn pass_to_workers(tenant: pgrx::Uuid, exp: Option<i64>, read_only: bool) {
    if unsafe { pg_sys::IsTransactionBlock() } {
        send(tenant, exp, false, read_only);
    }
}

/// tenant.set() (for the session) or tenant.reset(): a node context that tenant.set_local()
/// passed on earlier in the transaction ends with the context it was minted for (it would
/// otherwise still name that tenant, to the workers and to this node).
pub fn end_for_workers() {
    if VALUE.with(|v| v.borrow().is_none()) || !unsafe { pg_sys::IsTransactionBlock() } {
        return;
    }
    set_locally("");
}

/// Before tenant.drop() deletes a tenant's rows from a table as the table's owner (the current
/// role): on the workers the owner is then not subject to its tables' FORCE ROW LEVEL SECURITY
/// (as on the coordinator), so the DELETE (which names the tenant) reaches the rows there, and
/// the owner's code acts as no tenant. Nothing without Citus.
pub fn pass_to_workers_for_maintenance(tenant: pgrx::Uuid) {
    send(tenant, None, true, false);
}

/// Runs `f`, one statement pg_tenant runs on a Citus table as the table's owner (the current
/// role) for tenant.export() or tenant.import() (export::table_data), with that owner's
/// connections to the workers acting as `tenant`: a node token for the owner naming the tenant,
/// as set_local() passes one (so each worker's own row security selects, and accepts, exactly
/// that tenant's rows). With `maintenance`, the token is instead the one tenant.drop() mints
/// (it names no tenant and sets FORCE ROW LEVEL SECURITY aside for the owner on the workers).
/// When `f` returns, `pg_tenant.context` is set back to what it was, on this node and on the
/// workers, so no later statement of the transaction acts as the tenant there; when it fails,
/// the transaction (or the savepoint) rolls back, and Citus with it the forwarded value. Nothing
/// but `f` without Citus or a node key.
pub fn for_one_statement<R>(tenant: pgrx::Uuid, maintenance: bool, f: impl FnOnce() -> R) -> R {
    if !crate::citus::installed() || node_key().is_none() {
        return f();
    }
    let previous = VALUE.with(|v| v.borrow().clone()).unwrap_or_default();
    // (Outside a transaction block Citus reads the shards without one: the token would not
    // reach them, and the read would fail closed.)
    crate::citus::use_coordinated_transaction();
    send(tenant, None, maintenance, false);
    let result = f();
    set_locally(&previous);
    result
}

/// Mints the node token for `tenant` and the current role and sets it with SET LOCAL (which
/// Citus forwards), when Citus is installed and citus_setup() made the node key.
fn send(tenant: pgrx::Uuid, exp: Option<i64>, drop: bool, read_only: bool) {
    let Some(key) = node_key() else {
        return;
    };
    let now = now();
    let claims = NodeClaims {
        tenant: tenant.to_string(),
        role: crate::owner::role_name(crate::owner::current_role()),
        aud: AUDIENCE.into(),
        iat: now,
        exp: exp.map_or(now + NODE_CONTEXT_SECONDS, |e| {
            e.min(now + NODE_CONTEXT_SECONDS)
        }),
        drop,
        read_only,
    };
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap_or_else(|_| error!("pg_tenant: could not sign the node context"));
    remember(&token, &claims);
    MINTED.with(|m| {
        let mut m = m.borrow_mut();
        m.push(token.clone());
        if m.len() > 16 {
            m.remove(0);
        }
    });
    set_locally(&token);
}

/// Sets `pg_tenant.context` with a real SET LOCAL statement, as the caller: Citus forwards only
/// those, and only in what it counts as a multi-statement transaction: a transaction block, or
/// else a DO block (so also when tenant.drop() runs as a statement of its own; in a transaction
/// block the plain statement, which costs no PL/pgSQL compilation). A token is base64url and
/// dots, quoted anyway (and dollar-quoting cannot be closed by it).
fn set_locally(value: &str) {
    struct EndIssuing;
    impl Drop for EndIssuing {
        fn drop(&mut self) {
            ISSUING.with(|i| i.set(false));
        }
    }
    let _end = EndIssuing;
    // A token is base64url and dots (this node's, or a value restored after one statement):
    // nothing else goes into the statement, which the DO block's dollar quotes could not hold.
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        error!("pg_tenant: pg_tenant.context holds a value that is not a node token");
    }
    ISSUING.with(|i| i.set(true));
    let set = format!(
        "SET LOCAL pg_tenant.context = {}",
        pgrx::spi::quote_literal(value)
    );
    let sql = if unsafe { pg_sys::IsTransactionBlock() } {
        set
    } else {
        format!("DO $pg_tenant$BEGIN {set}; END$pg_tenant$")
    };
    // (Not pgrx's Spi::run, which assigns the transaction an id first, as for a write: a
    // transaction with one writes a commit record, which a SET needs no more than set_local()'s
    // caller does.)
    let query = std::ffi::CString::new(sql).expect("a statement has no NUL");
    let status = unsafe {
        pg_sys::SPI_connect();
        let status = pg_sys::SPI_execute(query.as_ptr(), false, 0);
        pg_sys::SPI_finish();
        status
    };
    if status < 0 {
        error!("pg_tenant: setting pg_tenant.context failed (SPI status {status})");
    }
}

fn remember(token: &str, claims: &NodeClaims) {
    VERIFIED.with(|v| {
        let mut v = v.borrow_mut();
        v.retain(|(t, _)| t != token);
        v.push((token.to_string(), claims.clone()));
        if v.len() > 16 {
            v.remove(0);
        }
    });
}

fn verified(token: &str) -> Option<NodeClaims> {
    VERIFIED.with(|v| {
        v.borrow()
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, c)| c.clone())
    })
}

/// Verifies a node token with this node's key (signature, audience, exp).
fn verify(token: &str) -> Result<NodeClaims, TokenError> {
    // A key replaced since this backend last looked is seen now, not at its next lock.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let key = node_key().ok_or_else(|| {
        TokenError::NoKey(
            "this database has no node key (tenant.citus_setup() on the coordinator makes it)"
                .into(),
        )
    })?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "aud"]);
    decode::<NodeClaims>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .map(|d| d.claims)
    .map_err(|e| {
        use jsonwebtoken::errors::ErrorKind::*;
        match e.kind() {
            ExpiredSignature => TokenError::Expired("the node context has expired".into()),
            InvalidAudience | MissingRequiredClaim(_) => {
                TokenError::Claims("it is not a node context".into())
            }
            InvalidSignature | InvalidAlgorithm => TokenError::BadSignature(
                "the node context is not signed with this database's node key".into(),
            ),
            _ => TokenError::Malformed("the node context is not a node token".into()),
        }
    })
}

/// The tenant `pg_tenant.context` names for the current role in this transaction, or None.
/// Raises when the value is not a valid node token or has expired.
pub fn node_tenant() -> Option<pgrx::Uuid> {
    let claims = judged()?;
    // A token tenant.drop() minted names no tenant: the owner's code that runs during the drop
    // (its triggers) must not read the tenant's rows elsewhere. The owner's deletes reach its
    // own tables' rows because FORCE ROW LEVEL SECURITY is set aside for it (follow_drop_token).
    if claims.drop {
        return None;
    }
    uuid::Uuid::parse_str(&claims.tenant)
        .ok()
        .map(|u| pgrx::Uuid::from_bytes(*u.as_bytes()))
}

/// Whether the node context of the current role says the coordinator judged its grant read-only
/// (judged as node_tenant() judges it; a drop's token is never read-only).
pub fn node_read_only() -> bool {
    VALUE.with(|v| v.borrow().is_some()) && judged().is_some_and(|c| c.read_only && !c.drop)
}

/// Whether this node acts for tenant.drop() on the coordinator (a node token it minted for the
/// current role, judged as node_tenant() judges it).
pub fn acting_for_drop() -> bool {
    VALUE.with(|v| v.borrow().is_some()) && judged().is_some_and(|c| c.drop)
}

/// The claims of `pg_tenant.context` when they count for the current role in this transaction.
fn judged() -> Option<NodeClaims> {
    let token = VALUE.with(|v| v.borrow().clone())?;
    let claims = match verified(&token) {
        Some(c) => c,
        None => {
            let c = verify(&token).unwrap_or_else(|e| TenantError::Token(e).raise());
            remember(&token, &c);
            c
        }
    };
    // A parallel worker runs for its leader, which judged the context when the statement began.
    if unsafe { pg_sys::ParallelWorkerNumber } < 0 {
        if claims.exp <= now() {
            TenantError::Token(TokenError::Expired("the node context has expired".into())).raise();
        }
        if claims.role != crate::owner::role_name(crate::owner::current_role())
            || !crate::gucs::set_locally_in_this_transaction(c"pg_tenant.context")
            || crate::gucs::session_lock().is_some()
            || !(minted_here(&token) || this_node_is_worker())
        {
            return None;
        }
    }
    Some(claims)
}

#[pg_guard]
unsafe extern "C-unwind" fn check_context_guc(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let value = crate::gucs::check_hook_value(newval);
    if value.is_empty() || pg_sys::InitializingParallelWorker || ISSUING.with(|i| i.get()) {
        return true;
    }
    // Set by anyone but pg_tenant itself: never in a session locked to a tenant (Citus would
    // pass it on to the workers, where no lock is known), and on a coordinator never at all.
    if crate::gucs::session_lock().is_some() {
        return refuse_setting(
            crate::error::sqlstate::CANT_CHANGE_PARAMETER,
            "the session is locked to its tenant token: only a newer token can change the tenant",
            Some("RESET ALL or DISCARD ALL end the lock."),
        );
    }
    if pg_sys::IsTransactionState() && !this_node_is_worker() {
        return refuse_setting(
            crate::error::sqlstate::CANT_CHANGE_PARAMETER,
            "parameter \"pg_tenant.context\" is set by pg_tenant itself",
            Some("On a Citus coordinator, call tenant.set_local() (or SET LOCAL pg_tenant.token) instead."),
        );
    }
    if verified(&value).is_some() {
        return true;
    }
    // No transaction to read the key with (connection options): verified at first use.
    if !pg_sys::IsTransactionState()
        || (!pg_sys::ActiveSnapshotSet() && pg_sys::ActivePortal.is_null())
    {
        return true;
    }
    match verify(&value) {
        Ok(c) => {
            remember(&value, &c);
            true
        }
        Err(e) => refuse_setting(e.sqlstate(), &e.message(), None),
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_context_guc(newval: *const c_char, _extra: *mut c_void) {
    let value = crate::gucs::assign_hook_value(newval);
    follow_drop_token(&value);
    VALUE.with(|v| *v.borrow_mut() = (!value.is_empty()).then_some(value));
    crate::tenant_plans::context_changed();
}

/// On a worker, while a token tenant.drop() minted for the current role (a table's owner) is set
/// (SET LOCAL, so until the transaction ends): that role is not subject to FORCE ROW LEVEL
/// SECURITY on its own tables, as on the coordinator, where the drop's own deletes are exempt
/// (exemption::unfiltered); it acts as no tenant (node_tenant). PostgreSQL's SECURITY_NOFORCE_RLS,
/// which its referential checks use the same way. Unlike the coordinator's, this exemption covers
/// whole statements Citus sends and what they run: exemption::noforce_for_drop refuses definer
/// functions and views of other roles meanwhile and forgets the plans made meanwhile.
unsafe fn follow_drop_token(value: &str) {
    let want = !value.is_empty()
        && pg_sys::IsTransactionState()
        && WORKER.with(|w| w.get()) == Some(true)
        && crate::gucs::set_locally_in_this_transaction(c"pg_tenant.context")
        && crate::gucs::session_lock().is_none()
        && verified(value).is_some_and(|c| {
            c.drop
                && c.exp > now()
                && c.role == crate::owner::role_name(crate::owner::current_role())
        });
    set_noforce(want);
}

/// Sets or clears SECURITY_NOFORCE_RLS for the current role, if follow_drop_token's state says
/// it must change.
unsafe fn set_noforce(want: bool) {
    if want == NOFORCE_SET.with(|n| n.get()) {
        return;
    }
    crate::exemption::noforce_for_drop(want.then(crate::owner::current_role));
    NOFORCE_SET.with(|n| n.set(want));
}

#[pg_guard]
unsafe extern "C-unwind" fn show_context_guc() -> *const c_char {
    if VALUE.with(|v| v.borrow().is_some()) {
        c"(hidden)".as_ptr()
    } else {
        c"".as_ptr()
    }
}

/// Defines `pg_tenant.context` (from _PG_init, before gucs::reserve_prefix).
pub fn init() {
    unsafe {
        pg_sys::DefineCustomStringVariable(
            c"pg_tenant.context".as_ptr(),
            c"The tenant context a Citus coordinator passes to its workers (set by tenant.set_local(); a signed node token).".as_ptr(),
            c"Set by pg_tenant itself with SET LOCAL; applications do not set it.".as_ptr(),
            &raw mut CONTEXT,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            (pg_sys::GUC_NOT_IN_SAMPLE | pg_sys::GUC_NO_SHOW_ALL) as c_int,
            Some(check_context_guc),
            Some(assign_context_guc),
            Some(show_context_guc),
        );
    }
}

/// The end of a transaction (registered with crate::xact from _PG_init): whatever a drop token
/// set aside ends with it (a commit keeps the backend's security context as it is).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    if crate::xact::ended(event).is_some() {
        unsafe { set_noforce(false) };
    }
}
