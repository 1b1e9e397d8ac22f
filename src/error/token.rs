//! Why a signed tenant token was refused: one kind per SQLSTATE.

use super::sqlstate;

/// Why a token was refused; each kind has its own SQLSTATE.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenError {
    /// Not a JWT: bad structure, base64 or JSON.
    Malformed(String),
    /// Forged, signed with another key, or with an algorithm that is not accepted.
    BadSignature(String),
    /// `exp` passed or `nbf` not reached.
    Expired(String),
    /// Older than a token this session already used.
    Replayed(String),
    /// Signature fine, claims not: audience, issuer, missing exp or tenant claim.
    Claims(String),
    /// No key is configured for the token's algorithm.
    NoKey(String),
}

impl TokenError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => sqlstate::TOKEN_MALFORMED,
            TokenError::BadSignature(_) => sqlstate::TOKEN_SIGNATURE,
            TokenError::Expired(_) => sqlstate::TOKEN_EXPIRED,
            TokenError::Replayed(_) => sqlstate::TOKEN_REPLAYED,
            TokenError::Claims(_) => sqlstate::TOKEN_CLAIMS,
            TokenError::NoKey(_) => sqlstate::TOKEN_NO_KEY,
        }
    }

    pub fn message(&self) -> String {
        match self {
            TokenError::Malformed(m) => format!("malformed tenant token: {m}"),
            TokenError::BadSignature(m) => format!("tenant token signature rejected: {m}"),
            TokenError::Expired(m) => format!("tenant token is not valid now: {m}"),
            TokenError::Replayed(m) => format!("tenant token replayed: {m}"),
            TokenError::Claims(m) => format!("tenant token claims rejected: {m}"),
            TokenError::NoKey(m) => format!("tenant tokens cannot be verified: {m}"),
        }
    }
}

#[cfg(test)]
mod unit_tests {
    use super::TokenError;

    #[test]
    fn token_errors_have_their_own_sqlstates_and_say_what_is_wrong() {
        let all = [
            TokenError::Malformed("m".into()),
            TokenError::BadSignature("b".into()),
            TokenError::Expired("e".into()),
            TokenError::Replayed("r".into()),
            TokenError::Claims("c".into()),
            TokenError::NoKey("k".into()),
        ];
        let codes: Vec<_> = all.iter().map(|e| e.sqlstate()).collect();
        assert_eq!(
            codes,
            ["PT020", "PT021", "PT022", "PT023", "PT024", "PT025"]
        );
        for e in &all {
            assert!(
                e.message().starts_with("malformed tenant token")
                    || e.message().starts_with("tenant token")
            );
        }
    }
}
