//! SQL arguments that pgrx's own types cannot read cleanly.
//!
//! pgrx reads a `jsonb` argument by printing it and parsing the text with serde_json, and fails
//! with an internal error (XX000, pgrx's own message and source location) on a value jsonb holds
//! but serde_json's numbers do not (`1e400`), and rounds a number to a double on the way
//! (`12345678901234567890.123` loses its digits). [`Jsonb`] reads the same way for arguments
//! pg_tenant reads itself (limits, settings), and reports such a value as a bad argument (22023)
//! instead; [`JsonbDatum`] keeps a jsonb argument pg_tenant only passes on to SQL (rows to
//! import) as PostgreSQL holds it, exact.

use pgrx::callconv::{Arg, ArgAbi, BoxRet, FcInfo};
use pgrx::nullable::Nullable;
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable,
};
use pgrx::{direct_function_call, FromDatum, IntoDatum};

use crate::error::TenantError;

/// A jsonb datum as jsonb_out prints it (jsonb_out detoasts it and returns a palloc'd string).
///
/// # Safety
/// `datum` is a jsonb value.
unsafe fn jsonb_text(datum: pg_sys::Datum) -> String {
    direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)])
        .map(|c| {
            let owned = c.to_string_lossy().into_owned();
            pg_sys::pfree(c.as_ptr() as *mut std::ffi::c_void);
            owned
        })
        .unwrap_or_default()
}

/// A `jsonb` argument of an SQL function, as serde_json's value.
pub struct Jsonb(pub serde_json::Value);

impl FromDatum for Jsonb {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Jsonb> {
        if is_null {
            return None;
        }
        let text = jsonb_text(datum);
        match serde_json::from_str(&text) {
            Ok(value) => Some(Jsonb(value)),
            Err(e) => {
                // (serde_json's position, "at line 1 column 424", counts in jsonb's own output.)
                let reason = e.to_string();
                let reason = reason.split(" at line ").next().unwrap_or("").to_owned();
                crate::error::guarded(|| TenantError::UnreadableJson(reason).raise())
            }
        }
    }
}

/// A `jsonb` value passed between SQL and pg_tenant untouched, as PostgreSQL's own value (an
/// argument valid while the function call runs, or a result).
pub struct JsonbDatum(pg_sys::Datum);

impl JsonbDatum {
    /// The value as jsonb prints it.
    pub fn text(&self) -> String {
        unsafe { jsonb_text(self.0) }
    }

    /// jsonb read from its text (jsonb_in), in the current memory context.
    pub fn from_text(text: &str) -> JsonbDatum {
        let text = std::ffi::CString::new(text).unwrap_or_default();
        let datum = unsafe {
            pgrx::direct_function_call_as_datum(
                pg_sys::jsonb_in,
                &[Some(pg_sys::Datum::from(text.as_ptr()))],
            )
        };
        JsonbDatum(datum.unwrap_or_else(|| {
            crate::error::guarded(|| TenantError::UnreadableJson("not jsonb".into()).raise())
        }))
    }
}

impl FromDatum for JsonbDatum {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<JsonbDatum> {
        (!is_null).then_some(JsonbDatum(datum))
    }
}

impl IntoDatum for JsonbDatum {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

unsafe impl BoxRet for JsonbDatum {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}

/// What pgrx needs of a type to take it as an argument, declared as SQL's `jsonb`.
macro_rules! jsonb_argument {
    ($ty:ident) => {
        unsafe impl SqlTranslatable for $ty {
            const TYPE_IDENT: &'static str = pgrx::pgrx_sql_entity_graph::pgrx_resolved_type!($ty);
            const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
                pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
            const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> =
                Ok(SqlMappingRef::literal("jsonb"));
            const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
                Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
        }

        unsafe impl<'fcx> ArgAbi<'fcx> for $ty {
            unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
                unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| {
                    crate::error::guarded(|| TenantError::NullArgument("jsonb").raise())
                })
            }

            unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
                unsafe { arg.unbox_arg_using_from_datum() }.into()
            }
        }
    };
}
jsonb_argument!(Jsonb);
jsonb_argument!(JsonbDatum);
