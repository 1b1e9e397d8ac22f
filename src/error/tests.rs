//! pg_tenant's errors as PostgreSQL raises them (pgrx tests).

use pgrx::prelude::*;

#[pg_schema]
mod tests {
    use crate::error::report::packed_sqlstate;
    use crate::error::TenantError;
    use pgrx::prelude::*;
    use std::ffi::c_int;

    #[pg_test]
    fn packs_sqlstates_like_postgres() {
        assert_eq!(
            packed_sqlstate("22023"),
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE as c_int
        );
        assert_eq!(
            packed_sqlstate("55P02"),
            PgSqlErrorCode::ERRCODE_CANT_CHANGE_RUNTIME_PARAM as c_int
        );
        assert_eq!(
            packed_sqlstate("42501"),
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as c_int
        );
    }

    #[pg_test]
    fn every_error_has_a_five_character_sqlstate_and_a_message() {
        let all = [
            TenantError::NoTenant,
            TenantError::UnknownTenant("x".into()),
            TenantError::Suspended {
                slug: "x".into(),
                reason: None,
            },
            TenantError::NotAllowedToActAs {
                tenant: "x".into(),
                role: "r".into(),
            },
            TenantError::InvalidSlug {
                slug: "X".into(),
                reason: "r",
            },
            TenantError::DuplicateSlug("x".into()),
            TenantError::NullArgument("a"),
            TenantError::InvalidArgument {
                argument: "a",
                reason: "r".into(),
            },
            TenantError::WrongColumnType {
                table: "t".into(),
                column: "c".into(),
                found: "text".into(),
            },
            TenantError::WrongObjectType {
                object: "o".into(),
                expected: "a table",
            },
            TenantError::NotProtected("t".into()),
            TenantError::TruncateRefused("t".into()),
        ];
        for e in all {
            assert_eq!(e.sqlstate().len(), 5, "{e}");
            assert!(e
                .sqlstate()
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
            assert!(!e.message().is_empty());
        }
    }

    /// The SQLSTATE survives the trip through PostgreSQL's error machinery, as a client sees it.
    #[pg_test]
    fn raised_errors_keep_their_sqlstate() {
        let caught = Spi::get_one::<String>(
            "CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
               'BEGIN EXECUTE q; RETURN ''ok''; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END';
             SELECT pg_temp.sqlstate_of('SELECT tenant.current()')",
        );
        assert_eq!(caught.unwrap().as_deref(), Some("PT001"));
    }
}
