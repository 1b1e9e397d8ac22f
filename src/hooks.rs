//! Calling the next planner, executor or utility hook: the hook installed before ours, or
//! PostgreSQL's own function when there is none. The hooks (context::hooks,
//! quotas::row_counter::hooks, stats::hooks, isolation::routing, exemption.rs) save the previous hook when they
//! install theirs and pass it here.
//!
//! The hooks call these directly, not through pgrx's wrappers: those turn an error into a Rust
//! panic and back, which keeps only PostgreSQL's own SQLSTATEs, and every error of every statement
//! passes through these hooks. Neither these functions nor the hooks hold anything to drop; the
//! Rust work runs in guarded functions before or after the call.

use pgrx::pg_sys;

unsafe extern "C-unwind" {
    fn standard_planner(
        parse: *mut pg_sys::Query,
        query_string: *const std::ffi::c_char,
        cursor_options: std::ffi::c_int,
        bound_params: pg_sys::ParamListInfo,
    ) -> *mut pg_sys::PlannedStmt;
    fn standard_ExecutorStart(query: *mut pg_sys::QueryDesc, eflags: std::ffi::c_int);
    fn standard_ExecutorRun(
        query: *mut pg_sys::QueryDesc,
        direction: pg_sys::ScanDirection::Type,
        count: u64,
        execute_once: bool,
    );
    fn standard_ExecutorFinish(query: *mut pg_sys::QueryDesc);
    fn standard_ExecutorEnd(query: *mut pg_sys::QueryDesc);
    fn standard_ProcessUtility(
        stmt: *mut pg_sys::PlannedStmt,
        query_string: *const std::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

/// `install_hook!(PREV, name_hook, f)`: saves PostgreSQL's hook `pg_sys::name_hook` in the
/// static `PREV` and puts `f` in its place (from _PG_init; unsafe: writes the statics).
macro_rules! install_hook {
    ($prev:ident, $hook:ident, $f:expr) => {
        $prev = ::pgrx::pg_sys::$hook;
        ::pgrx::pg_sys::$hook = Some($f);
    };
}
pub(crate) use install_hook;

/// `executor_run_hook!(fn name(query, PREV) { before } { after })` defines an ExecutorRun_hook
/// that runs `before`, the next hook (saved in the static `PREV`), then `after`; `query` names
/// the QueryDesc.
macro_rules! executor_run_hook {
    ($vis:vis fn $name:ident($query:ident, $prev:ident) $before:block $after:block) => {
        $vis unsafe extern "C-unwind" fn $name(
            $query: *mut ::pgrx::pg_sys::QueryDesc,
            direction: ::pgrx::pg_sys::ScanDirection::Type,
            count: u64,
            execute_once: bool,
        ) {
            $before
            $crate::hooks::executor_run($prev, $query, direction, count, execute_once);
            $after
        }
    };
}
pub(crate) use executor_run_hook;

/// The arguments PostgreSQL passes a planner hook, bound together by [`planner_hook!`].
#[derive(Clone, Copy)]
pub struct Planning {
    pub parse: *mut pg_sys::Query,
    pub query_string: *const std::ffi::c_char,
    pub cursor_options: std::ffi::c_int,
    pub bound_params: pg_sys::ParamListInfo,
}

impl Planning {
    /// Plans the query: the hook installed before ours, or PostgreSQL's own planner.
    ///
    /// # Safety
    /// From a planner hook, with its arguments.
    #[inline(always)]
    pub unsafe fn run(self, prev: pg_sys::planner_hook_type) -> *mut pg_sys::PlannedStmt {
        planner(
            prev,
            self.parse,
            self.query_string,
            self.cursor_options,
            self.bound_params,
        )
    }
}

/// `planner_hook!(fn name(call) { ... })` defines `unsafe extern "C-unwind" fn name` with the
/// signature of PostgreSQL's planner_hook, its arguments bound to `call` (a [`Planning`]); the
/// body returns the plan.
macro_rules! planner_hook {
    ($vis:vis fn $name:ident($call:ident) $body:block) => {
        $vis unsafe extern "C-unwind" fn $name(
            parse: *mut ::pgrx::pg_sys::Query,
            query_string: *const ::std::ffi::c_char,
            cursor_options: ::std::ffi::c_int,
            bound_params: ::pgrx::pg_sys::ParamListInfo,
        ) -> *mut ::pgrx::pg_sys::PlannedStmt {
            let $call = $crate::hooks::Planning {
                parse,
                query_string,
                cursor_options,
                bound_params,
            };
            $body
        }
    };
}
pub(crate) use planner_hook;

/// `post_parse_analyze_hook!(fn name(PREV, query) { ... })` defines a post_parse_analyze_hook
/// that calls the hook saved in `PREV` (a static), then runs the body, which may read the
/// analyzed statement as `query` (a `*mut Query`).
macro_rules! post_parse_analyze_hook {
    ($vis:vis fn $name:ident($prev:ident, $query:ident) $body:block) => {
        #[::pgrx::pg_guard]
        $vis unsafe extern "C-unwind" fn $name(
            pstate: *mut ::pgrx::pg_sys::ParseState,
            query: *mut ::pgrx::pg_sys::Query,
            jstate: *mut ::pgrx::pg_sys::JumbleState,
        ) {
            if let Some(prev) = $prev {
                prev(pstate, query, jstate);
            }
            let $query = query;
            $body
        }
    };
}
pub(crate) use post_parse_analyze_hook;

/// # Safety
/// From a planner hook, with its arguments.
#[inline(always)]
pub unsafe fn planner(
    prev: pg_sys::planner_hook_type,
    parse: *mut pg_sys::Query,
    query_string: *const std::ffi::c_char,
    cursor_options: std::ffi::c_int,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    match prev {
        Some(prev) => prev(parse, query_string, cursor_options, bound_params),
        None => standard_planner(parse, query_string, cursor_options, bound_params),
    }
}

/// # Safety
/// From an ExecutorStart hook, with its arguments.
#[inline(always)]
pub unsafe fn executor_start(
    prev: pg_sys::ExecutorStart_hook_type,
    query: *mut pg_sys::QueryDesc,
    eflags: std::ffi::c_int,
) {
    match prev {
        Some(prev) => prev(query, eflags),
        None => standard_ExecutorStart(query, eflags),
    }
}

/// # Safety
/// From an ExecutorRun hook, with its arguments.
#[inline(always)]
pub unsafe fn executor_run(
    prev: pg_sys::ExecutorRun_hook_type,
    query: *mut pg_sys::QueryDesc,
    direction: pg_sys::ScanDirection::Type,
    count: u64,
    execute_once: bool,
) {
    match prev {
        Some(prev) => prev(query, direction, count, execute_once),
        None => standard_ExecutorRun(query, direction, count, execute_once),
    }
}

/// # Safety
/// From an ExecutorFinish hook, with its argument.
#[inline(always)]
pub unsafe fn executor_finish(
    prev: pg_sys::ExecutorFinish_hook_type,
    query: *mut pg_sys::QueryDesc,
) {
    match prev {
        Some(prev) => prev(query),
        None => standard_ExecutorFinish(query),
    }
}

/// # Safety
/// From an ExecutorEnd hook, with its argument.
#[inline(always)]
pub unsafe fn executor_end(prev: pg_sys::ExecutorEnd_hook_type, query: *mut pg_sys::QueryDesc) {
    match prev {
        Some(prev) => prev(query),
        None => standard_ExecutorEnd(query),
    }
}

/// The arguments PostgreSQL passes a ProcessUtility hook, bound together by [`utility_hook!`].
#[derive(Clone, Copy)]
pub struct Utility {
    pub stmt: *mut pg_sys::PlannedStmt,
    pub query_string: *const std::ffi::c_char,
    pub read_only_tree: bool,
    pub context: pg_sys::ProcessUtilityContext::Type,
    pub params: pg_sys::ParamListInfo,
    pub query_env: *mut pg_sys::QueryEnvironment,
    pub dest: *mut pg_sys::DestReceiver,
    pub qc: *mut pg_sys::QueryCompletion,
}

impl Utility {
    /// The statement's parse node when it is of the type `tag` names (`T` is that node's struct).
    ///
    /// # Safety
    /// From a ProcessUtility hook; `T` must be the struct of `tag`.
    pub unsafe fn node<T>(&self, tag: pg_sys::NodeTag) -> Option<*mut T> {
        let node = (*self.stmt).utilityStmt;
        (!node.is_null() && (*node).type_ == tag).then_some(node as *mut T)
    }

    /// Runs the statement: the hook installed before ours, or PostgreSQL's own function.
    ///
    /// # Safety
    /// From a ProcessUtility hook, with its arguments.
    #[inline(always)]
    pub unsafe fn run(self, prev: pg_sys::ProcessUtility_hook_type) {
        let next = prev.unwrap_or(standard_ProcessUtility);
        next(
            self.stmt,
            self.query_string,
            self.read_only_tree,
            self.context,
            self.params,
            self.query_env,
            self.dest,
            self.qc,
        )
    }
}

/// `utility_hook!(fn name(call) { ... })` defines `unsafe extern "C-unwind" fn name` with the
/// signature of PostgreSQL's ProcessUtility_hook, its arguments bound to `call` (a [`Utility`]).
/// PostgreSQL's eight arguments are spelt out here only.
macro_rules! utility_hook {
    ($vis:vis fn $name:ident($call:ident) $body:block) => {
        #[allow(clippy::too_many_arguments)]
        $vis unsafe extern "C-unwind" fn $name(
            stmt: *mut ::pgrx::pg_sys::PlannedStmt,
            query_string: *const ::std::ffi::c_char,
            read_only_tree: bool,
            context: ::pgrx::pg_sys::ProcessUtilityContext::Type,
            params: ::pgrx::pg_sys::ParamListInfo,
            query_env: *mut ::pgrx::pg_sys::QueryEnvironment,
            dest: *mut ::pgrx::pg_sys::DestReceiver,
            qc: *mut ::pgrx::pg_sys::QueryCompletion,
        ) {
            let $call = $crate::hooks::Utility {
                stmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            };
            $body
        }
    };
}
pub(crate) use utility_hook;
