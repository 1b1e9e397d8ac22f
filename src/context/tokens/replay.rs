//! Replay: a session refuses a token older (`iat`) than one it used, a `jti` seen before, and
//! while locked (set_token(..., lock => true)) any token not newer than the lock's.

use std::cell::RefCell;

use crate::error::{TenantError, TokenError};

use super::parameter::parameter_is_set;
use super::verify::Verified;

thread_local! {
    /// Newest `iat` and the `jti`s this session has accepted (replay detection).
    pub(super) static SEEN: RefCell<(Option<i64>, Vec<String>)> = const { RefCell::new((None, Vec::new())) };
}

/// Refuses a token older than one this session used already, or a `jti` seen before (a token
/// presented again right after itself is the same credential, and fine).
pub(super) fn check_replay(v: &Verified) -> Result<(), TokenError> {
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

pub(super) fn remember(v: &Verified) {
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

/// While set_token(..., lock => true) holds the session, only a newer token (later iat) may
/// name the tenant.
pub(super) fn refuse_below_lock(iat: Option<i64>) -> Result<(), TokenError> {
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
