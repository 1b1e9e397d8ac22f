//! The catalog queries clone_schema reads its source with. Each returns the statements that
//! recreate one kind of object in the target, in the columns of [`super::Step`]:
//! `phase, node, ord, kind, ddl, body, run_as`.
//!
//! They run with `search_path = pg_catalog, <source>, pg_temp`, so that PostgreSQL's deparsers
//! (pg_get_expr, pg_get_viewdef, format_type, regclass output...) print the source's own objects
//! unqualified; replayed with the target in its place, those names resolve to the target's
//! objects. Names the deparsers still qualify with the source (shadowed by pg_catalog, or always
//! qualified like a function header) are rewritten by [`super::rewrite`]. Every object created is
//! named `target.name` explicitly: the first schema of the path is pg_catalog.
//!
//! Parameters: $1 source namespace oid, $2 target schema name, $3 source schema name, and the
//! source's relations, types and functions as oid arrays ($4, $5, $6), read once: pg_class,
//! pg_type and pg_proc have no index on the namespace alone, and with thousands of tenant
//! schemas a scan per query would dominate.

/// Phases (the first column), in the order pg_dump restores: 1 definitions, 2 partition
/// attachments and sequence ownership, 3 data, 4 sequence values, 5 indexes and keys, 6 index
/// attachments, 7 replica identity and clustering, 8 foreign keys (checked once the data is in),
/// 9 triggers, rules, policies and row security (which would have fired on the data load),
/// 10 extended statistics, 11 comments, 12 owners, 13 privileges, 14 default privileges,
/// 15 materialized view refreshes.
pub mod phase {
    pub const DEFINITION: i32 = 1;
    pub const DATA: i32 = 3;
    pub const SEQUENCE_VALUES: i32 = 4;
    pub const REFRESH: i32 = 15;
}

/// Objects clone_schema refuses (it would otherwise lose or misplace them). One text per object.
pub const UNSUPPORTED: &str = r#"
SELECT format('%s %s', kind, name) FROM (
    SELECT 'foreign table' AS kind, quote_ident(relname) AS name FROM pg_class WHERE oid = ANY($4) AND relkind = 'f'
    UNION ALL SELECT 'typed table', quote_ident(relname) FROM pg_class WHERE oid = ANY($4) AND relkind IN ('r', 'p') AND reloftype <> 0
    UNION ALL SELECT 'base type', quote_ident(typname) FROM pg_type WHERE oid = ANY($5) AND typtype IN ('b', 'p') AND NOT (typelem <> 0 AND typlen = -1)
    UNION ALL SELECT 'range type with a canonical function', quote_ident(t.typname) FROM pg_type t JOIN pg_range r ON r.rngtypid = t.oid WHERE t.oid = ANY($5) AND r.rngcanonical <> 0
    UNION ALL SELECT 'operator', oprname FROM pg_operator WHERE oprnamespace = $1
    UNION ALL SELECT 'operator class', quote_ident(opcname) FROM pg_opclass WHERE opcnamespace = $1
    UNION ALL SELECT 'operator family', quote_ident(opfname) FROM pg_opfamily WHERE opfnamespace = $1
    UNION ALL SELECT 'text search configuration', quote_ident(cfgname) FROM pg_ts_config WHERE cfgnamespace = $1
    UNION ALL SELECT 'text search dictionary', quote_ident(dictname) FROM pg_ts_dict WHERE dictnamespace = $1
    UNION ALL SELECT 'text search parser', quote_ident(prsname) FROM pg_ts_parser WHERE prsnamespace = $1
    UNION ALL SELECT 'text search template', quote_ident(tmplname) FROM pg_ts_template WHERE tmplnamespace = $1
    UNION ALL SELECT 'conversion', quote_ident(conname) FROM pg_conversion WHERE connamespace = $1
    UNION ALL SELECT DISTINCT 'member of extension', quote_ident(e.extname) FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
        WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass AND (pg_identify_object(d.classid, d.objid, 0)).schema = $3
) u ORDER BY 1
"#;

/// Dependencies between the definitions (phase 1), as pairs of node keys: `node` needs `needs`.
/// Sub-objects (column defaults, CHECK constraints, a view's rule, array and row types) count
/// as their owner.
pub const DEPENDENCIES: &str = r#"
WITH types AS (
    SELECT t.oid, CASE WHEN t.typtype = 'c' AND r.relkind <> 'c' THEN 'rel:' || t.typrelid
                       WHEN t.typtype = 'm' THEN 'type:' || mr.rngtypid
                       ELSE 'type:' || t.oid END AS node
    FROM pg_type t LEFT JOIN pg_class r ON r.oid = t.typrelid LEFT JOIN pg_range mr ON mr.rngmultitypid = t.oid
    WHERE t.oid = ANY($5) AND NOT (t.typelem <> 0 AND t.typlen = -1)
), objects(classid, objid, node) AS (
    SELECT 'pg_class'::regclass::oid, c.oid, CASE WHEN c.relkind = 'c' THEN 'type:' || c.reltype ELSE 'rel:' || c.oid END
        FROM pg_class c WHERE c.oid = ANY($4) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c')
    UNION ALL SELECT 'pg_type'::regclass::oid, oid, node FROM types
    UNION ALL SELECT 'pg_type'::regclass::oid, a.oid, t.node FROM pg_type a JOIN types t ON t.oid = a.typelem
        WHERE a.oid = ANY($5) AND a.typlen = -1
    UNION ALL SELECT 'pg_proc'::regclass::oid, oid, 'func:' || oid FROM pg_proc WHERE oid = ANY($6)
    UNION ALL SELECT 'pg_collation'::regclass::oid, oid, 'coll:' || oid FROM pg_collation WHERE collnamespace = $1
    UNION ALL SELECT 'pg_attrdef'::regclass::oid, d.oid, 'rel:' || d.adrelid FROM pg_attrdef d
        JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
        WHERE d.adrelid = ANY($4) AND a.attgenerated <> ''
    UNION ALL SELECT 'pg_constraint'::regclass::oid, k.oid, CASE WHEN k.contypid <> 0 THEN 'type:' || k.contypid ELSE 'rel:' || k.conrelid END
        FROM pg_constraint k WHERE (k.conrelid = ANY($4) OR k.contypid = ANY($5)) AND k.contype = 'c'
    UNION ALL SELECT 'pg_rewrite'::regclass::oid, w.oid, 'rel:' || w.ev_class FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class
        WHERE w.ev_class = ANY($4) AND c.oid = ANY($4) AND w.rulename = '_RETURN'
)
SELECT DISTINCT a.node, b.node AS needs
FROM objects a
CROSS JOIN LATERAL (SELECT refclassid, refobjid FROM pg_depend
                    WHERE classid = a.classid AND objid = a.objid AND deptype = 'n') d
JOIN objects b ON b.classid = d.refclassid AND b.objid = d.refobjid
WHERE a.node <> b.node
UNION
SELECT 'rel:' || i.inhrelid, 'rel:' || i.inhparent
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE c.oid = ANY($4) AND p.oid = ANY($4) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"#;

/// `WITH (...)` from a reloptions array, values quoted.
const OPTIONS: &str = "(SELECT string_agg(format('%s=%L', split_part(o, '=', 1), substr(o, strpos(o, '=') + 1)), ', ') FROM unnest(OPTS) o)";

fn options(array: &str) -> String {
    OPTIONS.replace("OPTS", array)
}

/// The statements, one query per kind of object.
pub fn step_queries() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();

    // ---- definitions (phase 1), ordered later by their dependencies ----
    q.push(r#"
SELECT 1, 'coll:' || c.oid, c.oid::int8, 'collation',
       format('CREATE COLLATION %I.%I (%s%s)', $2, c.collname,
              CASE c.collprovider WHEN 'i' THEN format('provider = icu, locale = %L', j->>'colliculocale')
                   ELSE format('provider = libc, lc_collate = %L, lc_ctype = %L', c.collcollate, c.collctype) END,
              CASE WHEN NOT c.collisdeterministic THEN ', deterministic = false' ELSE '' END),
       false, NULL::oid
FROM pg_collation c, to_jsonb(c) j WHERE c.collnamespace = $1"#.into());

    q.push(r#"
SELECT 1, 'type:' || t.oid, t.oid::int8, 'type',
       format('CREATE TYPE %I.%I AS ENUM (%s)', $2, t.typname,
              (SELECT coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder), '')
               FROM pg_enum e WHERE e.enumtypid = t.oid)),
       false, NULL::oid
FROM pg_type t WHERE t.oid = ANY($5) AND t.typtype = 'e'"#.into());

    q.push(r#"
SELECT 1, 'type:' || t.oid, t.oid::int8, 'type',
       format('CREATE TYPE %I.%I AS (%s)', $2, t.typname,
              (SELECT coalesce(string_agg(format('%I %s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                          CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation
                               THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END), ', ' ORDER BY a.attnum), '')
               FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
               WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)),
       false, NULL::oid
FROM pg_type t JOIN pg_class r ON r.oid = t.typrelid WHERE t.oid = ANY($5) AND t.typtype = 'c' AND r.relkind = 'c'"#.into());

    q.push(r#"
SELECT 1, 'type:' || t.oid, t.oid::int8, 'domain',
       format('CREATE DOMAIN %I.%I AS %s%s%s%s', $2, t.typname, format_type(t.typbasetype, t.typtypmod),
              CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation
                   THEN ' COLLATE ' || t.typcollation::regcollation::text ELSE '' END,
              CASE WHEN t.typdefaultbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(t.typdefaultbin, 0) ELSE '' END,
              CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END)
       || coalesce((SELECT string_agg(format('; ALTER DOMAIN %I.%I ADD CONSTRAINT %I %s', $2, t.typname, k.conname,
                                             pg_get_constraintdef(k.oid)), '' ORDER BY k.conname)
                    FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c'), ''),
       false, NULL::oid
FROM pg_type t JOIN pg_type bt ON bt.oid = t.typbasetype WHERE t.oid = ANY($5) AND t.typtype = 'd'"#.into());

    q.push(r#"
SELECT 1, 'type:' || t.oid, t.oid::int8, 'type',
       format('CREATE TYPE %I.%I AS RANGE (SUBTYPE = %s%s%s%s%s)', $2, t.typname, format_type(r.rngsubtype, NULL),
              CASE WHEN NOT opc.opcdefault THEN format(', SUBTYPE_OPCLASS = %I.%I', opcn.nspname, opc.opcname) ELSE '' END,
              CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation
                   THEN ', COLLATION = ' || r.rngcollation::regcollation::text ELSE '' END,
              CASE WHEN r.rngsubdiff <> 0 THEN ', SUBTYPE_DIFF = ' || r.rngsubdiff::regproc::text ELSE '' END,
              CASE WHEN mt.typname IS NOT NULL THEN format(', MULTIRANGE_TYPE_NAME = %I.%I', $2, mt.typname) ELSE '' END),
       false, NULL::oid
FROM pg_type t JOIN pg_range r ON r.rngtypid = t.oid JOIN pg_type st ON st.oid = r.rngsubtype
JOIN pg_opclass opc ON opc.oid = r.rngsubopc JOIN pg_namespace opcn ON opcn.oid = opc.opcnamespace
LEFT JOIN pg_type mt ON mt.oid = (to_jsonb(r)->>'rngmultitypid')::oid
WHERE t.oid = ANY($5) AND t.typtype = 'r'"#.into());

    // Functions and procedures: PostgreSQL's own definition, with the source schema rewritten in
    // the header and the body (`body` = true). Internal ones (range constructors) come with their type.
    q.push(r#"
SELECT 1, 'func:' || p.oid, p.oid::int8, CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
       pg_get_functiondef(p.oid), true, NULL::oid
FROM pg_proc p WHERE p.oid = ANY($6) AND p.prokind IN ('f', 'p', 'w')
AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype IN ('i', 'e'))"#.into());

    q.push(r#"
SELECT 1, 'func:' || p.oid, p.oid::int8, 'aggregate',
       format('CREATE AGGREGATE %I.%I(%s) (SFUNC = %s, STYPE = %s%s)', $2, p.proname, pg_get_function_arguments(p.oid),
              a.aggtransfn::regproc::text, format_type(a.aggtranstype, NULL), concat(
              CASE WHEN a.aggtransspace <> 0 THEN ', SSPACE = ' || a.aggtransspace END,
              CASE WHEN a.aggfinalfn <> 0 THEN ', FINALFUNC = ' || a.aggfinalfn::regproc::text END,
              CASE WHEN a.aggfinalextra THEN ', FINALFUNC_EXTRA' END,
              CASE WHEN a.aggfinalfn <> 0 THEN ', FINALFUNC_MODIFY = ' || CASE a.aggfinalmodify WHEN 'r' THEN 'READ_ONLY' WHEN 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END END,
              CASE WHEN a.aggcombinefn <> 0 THEN ', COMBINEFUNC = ' || a.aggcombinefn::regproc::text END,
              CASE WHEN a.aggserialfn <> 0 THEN ', SERIALFUNC = ' || a.aggserialfn::regproc::text END,
              CASE WHEN a.aggdeserialfn <> 0 THEN ', DESERIALFUNC = ' || a.aggdeserialfn::regproc::text END,
              CASE WHEN a.agginitval IS NOT NULL THEN ', INITCOND = ' || quote_literal(a.agginitval) END,
              CASE WHEN a.aggmtransfn <> 0 THEN ', MSFUNC = ' || a.aggmtransfn::regproc::text || ', MINVFUNC = ' || a.aggminvtransfn::regproc::text
                                                || ', MSTYPE = ' || format_type(a.aggmtranstype, NULL) END,
              CASE WHEN a.aggmtransspace <> 0 THEN ', MSSPACE = ' || a.aggmtransspace END,
              CASE WHEN a.aggmfinalfn <> 0 THEN ', MFINALFUNC = ' || a.aggmfinalfn::regproc::text END,
              CASE WHEN a.aggmfinalextra THEN ', MFINALFUNC_EXTRA' END,
              CASE WHEN a.aggmfinalfn <> 0 THEN ', MFINALFUNC_MODIFY = ' || CASE a.aggmfinalmodify WHEN 'r' THEN 'READ_ONLY' WHEN 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END END,
              CASE WHEN a.aggminitval IS NOT NULL THEN ', MINITCOND = ' || quote_literal(a.aggminitval) END,
              CASE WHEN a.aggsortop <> 0 THEN (SELECT format(', SORTOP = OPERATOR(%I.%s)', n.nspname, o.oprname)
                                               FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE o.oid = a.aggsortop) END,
              CASE p.proparallel WHEN 's' THEN ', PARALLEL = SAFE' WHEN 'r' THEN ', PARALLEL = RESTRICTED' END,
              CASE WHEN a.aggkind = 'h' THEN ', HYPOTHETICAL' END)),
       false, NULL::oid
FROM pg_proc p JOIN pg_aggregate a ON a.aggfnoid = p.oid WHERE p.oid = ANY($6)"#.into());

    // Sequences of their own (identity sequences come with their column).
    q.push(r#"
SELECT 1, 'rel:' || c.oid, c.oid::int8, 'sequence',
       format('CREATE %sSEQUENCE %I.%I AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s',
              CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END, $2, c.relname, format_type(s.seqtypid, NULL),
              s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END),
       false, NULL::oid
FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
WHERE c.oid = ANY($4) AND c.relkind = 'S'
AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i')"#.into());

    // Tables. Partitions are created standalone with every column and CHECK constraint (as
    // pg_dump does) and attached in phase 2; inheritance children list only their local
    // columns and constraints and name their parents.
    q.push(format!(r#"
SELECT 1, 'rel:' || c.oid, c.oid::int8, 'table',
       format('CREATE %sTABLE %I.%I (%s)%s%s%s%s%s', CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END, $2, c.relname,
              concat_ws(', ', cols.list, checks.list),
              CASE WHEN NOT c.relispartition AND inh.list IS NOT NULL THEN ' INHERITS (' || inh.list || ')' ELSE '' END,
              CASE WHEN c.relkind = 'p' THEN ' PARTITION BY ' || pg_get_partkeydef(c.oid) ELSE '' END,
              CASE WHEN c.relkind = 'r' AND am.amname <> 'heap' THEN ' USING ' || quote_ident(am.amname) ELSE '' END,
              CASE WHEN opts.list IS NOT NULL THEN ' WITH (' || opts.list || ')' ELSE '' END,
              CASE WHEN c.reltablespace <> 0 THEN ' TABLESPACE ' || quote_ident(ts.spcname) ELSE '' END)
       || coalesce(extras.list, ''),
       false, NULL::oid
FROM pg_class c
LEFT JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
LEFT JOIN LATERAL (
    SELECT string_agg(format('%I %s%s%s%s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attcollation <> 0 AND a.attcollation <> at.typcollation
                    THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END,
               CASE a.attcompression WHEN 'p' THEN ' COMPRESSION pglz' WHEN 'l' THEN ' COMPRESSION lz4' ELSE '' END,
               CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED' ELSE '' END,
               CASE WHEN a.attidentity IN ('a', 'd') THEN
                    format(' GENERATED %s AS IDENTITY (SEQUENCE NAME %I.%I START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s)',
                           CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END, $2, idseq.relname,
                           idseq.seqstart, idseq.seqincrement, idseq.seqmin, idseq.seqmax, idseq.seqcache,
                           CASE WHEN idseq.seqcycle THEN ' CYCLE' ELSE '' END) ELSE '' END,
               CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END), ', ' ORDER BY a.attnum) AS list
    FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    LEFT JOIN LATERAL (SELECT sc.relname, s.* FROM pg_depend dep JOIN pg_class sc ON sc.oid = dep.objid JOIN pg_sequence s ON s.seqrelid = sc.oid
                       WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass AND dep.refobjid = c.oid
                       AND dep.refobjsubid = a.attnum AND dep.deptype = 'i' LIMIT 1) idseq ON true
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND (a.attislocal OR c.relispartition)
) cols ON true
LEFT JOIN LATERAL (
    SELECT string_agg(format('CONSTRAINT %I %s', k.conname, pg_get_constraintdef(k.oid)), ', ' ORDER BY k.conname) AS list
    FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c' AND k.convalidated AND (k.conislocal OR c.relispartition)
) checks ON true
LEFT JOIN LATERAL (
    SELECT string_agg(i.inhparent::regclass::text, ', ' ORDER BY i.inhseqno) AS list FROM pg_inherits i WHERE i.inhrelid = c.oid
) inh ON true
LEFT JOIN LATERAL (
    SELECT nullif(concat_ws(', ', {table_opts}, (SELECT {toast_opts} FROM pg_class t WHERE t.oid = c.reltoastrelid)), '') AS list
) opts ON true
LEFT JOIN LATERAL (
    SELECT string_agg(concat(
               CASE WHEN a.attstattarget >= 0 THEN format('; ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET STATISTICS %s', $2, c.relname, a.attname, a.attstattarget) END,
               CASE WHEN a.attstorage <> at.typstorage THEN format('; ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET STORAGE %s', $2, c.relname, a.attname,
                    CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END) END,
               CASE WHEN a.attoptions IS NOT NULL THEN format('; ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET (%s)', $2, c.relname, a.attname, {att_opts}) END,
               CASE WHEN NOT a.attislocal AND NOT c.relispartition AND a.attnotnull THEN
                    format('; ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET NOT NULL', $2, c.relname, a.attname) END), '' ORDER BY a.attnum) AS list
    FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
) extras ON true
WHERE c.oid = ANY($4) AND c.relkind IN ('r', 'p')"#,
        table_opts = options("c.reloptions"),
        toast_opts = options("t.reloptions").replace("format('%s=%L'", "format('toast.%s=%L'"),
        att_opts = options("a.attoptions"),
    ));

    q.push(format!(r#"
SELECT 1, 'rel:' || c.oid, c.oid::int8, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END,
       CASE c.relkind WHEN 'v' THEN format('CREATE VIEW %I.%I%s AS %s', $2, c.relname,
                                           coalesce(' WITH (' || {opts} || ')', ''), rtrim(pg_get_viewdef(c.oid), ';'))
       ELSE format('CREATE MATERIALIZED VIEW %I.%I%s%s%s AS %s WITH NO DATA', $2, c.relname,
                   CASE WHEN am.amname <> 'heap' THEN ' USING ' || quote_ident(am.amname) ELSE '' END,
                   coalesce(' WITH (' || {opts} || ')', ''),
                   CASE WHEN c.reltablespace <> 0 THEN ' TABLESPACE ' || quote_ident(ts.spcname) ELSE '' END,
                   rtrim(pg_get_viewdef(c.oid), ';')) END,
       false, NULL::oid
FROM pg_class c LEFT JOIN pg_am am ON am.oid = c.relam LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace
WHERE c.oid = ANY($4) AND c.relkind IN ('v', 'm')"#, opts = options("c.reloptions")));

    // ---- after the definitions ----
    q.push(r#"
SELECT 2, NULL, c.oid::int8, NULL,
       format('ALTER TABLE ONLY %s ATTACH PARTITION %I.%I %s', i.inhparent::regclass::text, $2, c.relname, pg_get_expr(c.relpartbound, c.oid)),
       false, NULL::oid
FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid WHERE c.oid = ANY($4) AND c.relispartition AND c.relkind IN ('r', 'p')"#.into());

    q.push(r#"
SELECT 2, NULL, s.oid::int8, NULL, format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', $2, s.relname, $2, t.relname, a.attname), false, NULL::oid
FROM pg_depend d JOIN pg_class s ON s.oid = d.objid JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'
AND s.relkind = 'S' AND s.oid = ANY($4) AND t.oid = ANY($4)"#.into());

    // Column defaults once every definition exists (as pg_dump does when it must): a default
    // may call a function whose body reads the table. Not needed before: the data load gives
    // every column a value.
    q.push(r#"
SELECT 2, NULL, c.oid::int8, NULL, format('ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET DEFAULT %s', $2, c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid)), false, NULL::oid
FROM pg_class c JOIN pg_attrdef d ON d.adrelid = c.oid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.adnum
WHERE d.adrelid = ANY($4) AND c.oid = ANY($4) AND c.relkind IN ('r', 'p') AND a.attgenerated = '' AND NOT a.attisdropped"#.into());

    q.push(r#"
SELECT 2, NULL, c.oid::int8, NULL, format('ALTER VIEW %I.%I ALTER COLUMN %I SET DEFAULT %s', $2, c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid)), false, NULL::oid
FROM pg_class c JOIN pg_attrdef d ON d.adrelid = c.oid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.adnum
WHERE d.adrelid = ANY($4) AND c.oid = ANY($4) AND c.relkind = 'v'"#.into());

    // Data: every row of every table, straight from the source (phase 3, only with_data).
    q.push(r#"
SELECT 3, NULL, c.oid::int8, 'rows',
       format('INSERT INTO %I.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM ONLY %I.%I', $2, c.relname, cols.list, cols.exprs, $3, c.relname),
       false, NULL::oid
FROM pg_class c CROSS JOIN LATERAL (
    -- A value of one of the source's own types (enum, composite, range, domain, or an array of
    -- them) is not of the clone's type: it goes through its text form, which is exact.
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) AS list,
           string_agg(CASE WHEN t.oid = ANY($5) OR e.oid = ANY($5)
                           THEN format('%I::text::%s', a.attname, format_type(a.atttypid, a.atttypmod))
                           ELSE quote_ident(a.attname) END, ', ' ORDER BY a.attnum) AS exprs
    FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typlen = -1
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') cols
WHERE c.oid = ANY($4) AND c.relkind = 'r' AND cols.list IS NOT NULL"#.into());

    q.push(r#"
SELECT 4, NULL, c.oid::int8, NULL,
       format('SELECT pg_catalog.setval(%L, last_value, is_called) FROM %I.%I', format('%I.%I', $2, c.relname), $3, c.relname),
       false, NULL::oid
FROM pg_class c WHERE c.oid = ANY($4) AND c.relkind = 'S'"#.into());

    // Indexes and the constraints that own one; partition indexes are attached to their parent's.
    q.push(r#"
SELECT 5, NULL, k.oid::int8, 'constraint',
       format('ALTER TABLE ONLY %I.%I ADD CONSTRAINT %I %s', $2, c.relname, k.conname, pg_get_constraintdef(k.oid)), false, NULL::oid
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE k.conrelid = ANY($4) AND c.oid = ANY($4) AND (k.contype IN ('p', 'u', 'x') OR (k.contype = 'c' AND NOT k.convalidated AND k.conislocal))"#.into());

    q.push(r#"
SELECT 5, NULL, i.indexrelid::int8, 'index', pg_get_indexdef(i.indexrelid), false, NULL::oid
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE i.indrelid = ANY($4) AND c.oid = ANY($4)
AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))"#.into());

    q.push(r#"
SELECT 6, NULL, (CASE WHEN ch.relkind = 'I' THEN 1 ELSE 0 END)::int8, NULL,
       format('ALTER INDEX %I.%I ATTACH PARTITION %I.%I', $2, p.relname, $2, ch.relname), false, NULL::oid
FROM pg_inherits i JOIN pg_class ch ON ch.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
WHERE ch.relkind IN ('i', 'I') AND ch.oid = ANY($4) AND p.oid = ANY($4)"#.into());

    q.push(r#"
SELECT 7, NULL, c.oid::int8, NULL,
       format('ALTER TABLE ONLY %I.%I REPLICA IDENTITY %s', $2, c.relname,
              CASE c.relreplident WHEN 'n' THEN 'NOTHING' WHEN 'f' THEN 'FULL'
                   ELSE 'USING INDEX ' || (SELECT quote_ident(ic.relname) FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                                           WHERE x.indrelid = c.oid AND x.indisreplident) END), false, NULL::oid
FROM pg_class c WHERE c.oid = ANY($4) AND c.relkind IN ('r', 'p') AND c.relreplident <> 'd'
UNION ALL
SELECT 7, NULL, x.indexrelid::int8, NULL,
       format('ALTER INDEX %I.%I ALTER COLUMN %s SET STATISTICS %s', $2, ic.relname, a.attnum, a.attstattarget), false, NULL::oid
FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid JOIN pg_attribute a ON a.attrelid = x.indexrelid
WHERE x.indrelid = ANY($4) AND a.attstattarget >= 0
UNION ALL
SELECT 7, NULL, c.oid::int8, NULL, format('ALTER TABLE %I.%I CLUSTER ON %I', $2, c.relname, ic.relname), false, NULL::oid
FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class ic ON ic.oid = x.indexrelid
WHERE x.indrelid = ANY($4) AND c.oid = ANY($4) AND x.indisclustered"#.into());

    // Foreign keys once the data is in (checked then). Those a partition inherits come with
    // its parent's.
    q.push(r#"
SELECT 8, NULL, k.oid::int8, 'foreign key',
       format('ALTER TABLE %s%I.%I ADD CONSTRAINT %I %s', CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY ' END, $2, c.relname,
              k.conname, pg_get_constraintdef(k.oid)), false, NULL::oid
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE k.conrelid = ANY($4) AND c.oid = ANY($4) AND k.contype = 'f' AND k.conparentid = 0"#.into());

    // Triggers, rules, policies and row security, which would have fired on the data load.
    q.push(r#"
SELECT 9, NULL, t.oid::int8, 'trigger',
       pg_get_triggerdef(t.oid) || CASE t.tgenabled
           WHEN 'D' THEN format('; ALTER TABLE %I.%I DISABLE TRIGGER %I', $2, c.relname, t.tgname)
           WHEN 'R' THEN format('; ALTER TABLE %I.%I ENABLE REPLICA TRIGGER %I', $2, c.relname, t.tgname)
           WHEN 'A' THEN format('; ALTER TABLE %I.%I ENABLE ALWAYS TRIGGER %I', $2, c.relname, t.tgname) ELSE '' END,
       false, NULL::oid
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgrelid = ANY($4) AND c.oid = ANY($4) AND NOT t.tgisinternal AND t.tgparentid = 0"#.into());

    // A trigger a partition got from its parent, enabled or disabled on its own.
    q.push(r#"
SELECT 9, NULL, t.oid::int8, NULL,
       format('ALTER TABLE %I.%I %s TRIGGER %I', $2, c.relname,
              CASE t.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' WHEN 'A' THEN 'ENABLE ALWAYS' ELSE 'ENABLE' END, t.tgname),
       false, NULL::oid
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_trigger pt ON pt.oid = t.tgparentid
WHERE t.tgrelid = ANY($4) AND c.oid = ANY($4) AND t.tgparentid <> 0 AND (t.tgenabled <> 'O' OR pt.tgenabled <> 'O')"#.into());

    q.push(r#"
SELECT 9, NULL, w.oid::int8, 'rule',
       pg_get_ruledef(w.oid) || CASE w.ev_enabled
           WHEN 'D' THEN format('; ALTER TABLE %I.%I DISABLE RULE %I', $2, c.relname, w.rulename)
           WHEN 'R' THEN format('; ALTER TABLE %I.%I ENABLE REPLICA RULE %I', $2, c.relname, w.rulename)
           WHEN 'A' THEN format('; ALTER TABLE %I.%I ENABLE ALWAYS RULE %I', $2, c.relname, w.rulename) ELSE '' END,
       false, NULL::oid
FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class
WHERE w.ev_class = ANY($4) AND c.oid = ANY($4) AND w.rulename <> '_RETURN'"#.into());

    q.push(r#"
SELECT 9, NULL, p.oid::int8, 'policy',
       format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s%s%s', p.polname, $2, c.relname,
              CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
              CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
              (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ' ORDER BY n)
               FROM unnest(p.polroles) WITH ORDINALITY u(r, n)),
              CASE WHEN p.polqual IS NOT NULL THEN ' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')' ELSE '' END,
              CASE WHEN p.polwithcheck IS NOT NULL THEN ' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')' ELSE '' END),
       false, NULL::oid
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.polrelid = ANY($4) AND c.oid = ANY($4)"#.into());

    q.push(r#"
SELECT 9, NULL, c.oid::int8, NULL,
       concat_ws('; ', CASE WHEN c.relrowsecurity THEN format('ALTER TABLE ONLY %I.%I ENABLE ROW LEVEL SECURITY', $2, c.relname) END,
                       CASE WHEN c.relforcerowsecurity THEN format('ALTER TABLE ONLY %I.%I FORCE ROW LEVEL SECURITY', $2, c.relname) END),
       false, NULL::oid
FROM pg_class c WHERE c.oid = ANY($4) AND (c.relrowsecurity OR c.relforcerowsecurity)"#.into());

    q.push(r#"
SELECT 10, NULL, s.oid::int8, 'statistics',
       pg_get_statisticsobjdef(s.oid) || CASE WHEN s.stxstattarget >= 0
           THEN format('; ALTER STATISTICS %I.%I SET STATISTICS %s', $2, s.stxname, s.stxstattarget) ELSE '' END,
       false, NULL::oid
FROM pg_statistic_ext s WHERE s.stxnamespace = $1"#.into());

    // Comments, owners and privileges of everything above, through one list of objects.
    q.push(format!(r#"
WITH objects(classid, objid, ref, kind, owner, acl, grant_kind, owner_follows) AS ({OBJECTS})
SELECT 11, NULL, d.objoid::int8, 'comment',
       CASE WHEN d.objsubid = 0 THEN format('COMMENT ON %s %s IS %L', o.kind, o.ref, d.description)
            ELSE format('COMMENT ON COLUMN %s.%I IS %L', o.ref, (SELECT attname FROM pg_attribute WHERE attrelid = d.objoid AND attnum = d.objsubid), d.description) END,
       false, NULL::oid
FROM pg_description d JOIN objects o ON o.classid = d.classoid AND o.objid = d.objoid
UNION ALL
SELECT 12, NULL, o.objid::int8, NULL, format('ALTER %s %s OWNER TO %I', o.kind, o.ref, pg_get_userbyid(o.owner)), false, NULL::oid
FROM objects o WHERE o.owner IS NOT NULL AND NOT o.owner_follows AND o.owner <> current_user::regrole
UNION ALL
SELECT 13, NULL, o.objid::int8, 'privilege', s.ddl, false, s.run_as
FROM objects o CROSS JOIN LATERAL (
    SELECT format('REVOKE ALL ON %s %s FROM PUBLIC; REVOKE ALL ON %s %s FROM %I', o.grant_kind, o.ref, o.grant_kind, o.ref, pg_get_userbyid(o.owner)) AS ddl, NULL::oid AS run_as, 0 AS n
    UNION ALL
    SELECT format('GRANT %s ON %s %s TO %s%s', string_agg(x.privilege_type, ', '), o.grant_kind, o.ref,
                  CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
                  CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
           CASE WHEN x.grantor <> o.owner THEN x.grantor END, min(x.n)
    FROM aclexplode(o.acl) WITH ORDINALITY x(grantor, grantee, privilege_type, is_grantable, n)
    GROUP BY x.grantor, x.grantee, x.is_grantable
    ORDER BY 3
) s WHERE o.acl IS NOT NULL
UNION ALL
SELECT 13, NULL, c.oid::int8, 'privilege',
       format('GRANT %s (%I) ON TABLE %I.%I TO %s%s', string_agg(x.privilege_type, ', '), a.attname, $2, c.relname,
              CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
              CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
       false, CASE WHEN x.grantor <> c.relowner THEN x.grantor END
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid CROSS JOIN LATERAL aclexplode(a.attacl) x
WHERE c.oid = ANY($4) AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
GROUP BY c.oid, c.relname, c.relowner, a.attnum, a.attname, x.grantor, x.grantee, x.is_grantable
"#, OBJECTS = OBJECTS));

    q.push(r#"
SELECT 14, NULL, d.oid::int8, 'privilege',
       format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT %s ON %s TO %s%s', pg_get_userbyid(d.defaclrole), $2,
              string_agg(x.privilege_type, ', '),
              CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' END,
              CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
              CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
       false, NULL::oid
FROM pg_default_acl d CROSS JOIN LATERAL aclexplode(d.defaclacl) x
WHERE d.defaclnamespace = $1 AND d.defaclobjtype IN ('r', 'S', 'f', 'T')
GROUP BY d.oid, d.defaclrole, d.defaclobjtype, x.grantee, x.is_grantable"#.into());

    q.push(r#"
SELECT 15, 'rel:' || c.oid, c.oid::int8, NULL, format('REFRESH MATERIALIZED VIEW %I.%I', $2, c.relname), false, NULL::oid
FROM pg_class c WHERE c.oid = ANY($4) AND c.relkind = 'm' AND c.relispopulated"#.into());
    q
}

/// Every object of the source that can carry a comment, an owner or privileges, with the
/// reference that names its clone: (classid, objid, ref, kind, owner, acl, grant_kind,
/// owner_follows).
/// reference that names its clone: (classid, objid, ref, kind, owner, acl, grant_kind).
const OBJECTS: &str = r#"
    SELECT 'pg_namespace'::regclass, n.oid, quote_ident($2), 'SCHEMA', n.nspowner, n.nspacl, 'SCHEMA', false
    FROM pg_namespace n WHERE n.oid = $1
    UNION ALL
    SELECT 'pg_class'::regclass, c.oid, format('%I.%I', $2, c.relname),
           CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                          WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX' ELSE 'TABLE' END,
           c.relowner, c.relacl, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
           -- Indexes, and sequences owned by a column, take their table's owner with it.
           c.relkind IN ('i', 'I') OR (c.relkind = 'S' AND EXISTS (
               SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    FROM pg_class c WHERE c.oid = ANY($4) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i', 'I')
    UNION ALL
    SELECT 'pg_class'::regclass, c.oid, format('%I.%I', $2, c.relname), 'TYPE', NULL, NULL, NULL, false
    FROM pg_class c WHERE c.oid = ANY($4) AND c.relkind = 'c'
    UNION ALL
    SELECT 'pg_type'::regclass, t.oid, format('%I.%I', $2, t.typname), CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
           t.typowner, t.typacl, 'TYPE', false
    FROM pg_type t LEFT JOIN pg_class r ON r.oid = t.typrelid
    WHERE t.oid = ANY($5) AND t.typtype IN ('e', 'd', 'r', 'c') AND (t.typtype <> 'c' OR r.relkind = 'c')
    UNION ALL
    SELECT 'pg_proc'::regclass, p.oid, format('%I.%I(%s)', $2, p.proname, pg_get_function_identity_arguments(p.oid)),
           CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
           p.proowner, p.proacl, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, false
    FROM pg_proc p WHERE p.oid = ANY($6)
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype IN ('i', 'e'))
    UNION ALL
    SELECT 'pg_collation'::regclass, c.oid, format('%I.%I', $2, c.collname), 'COLLATION', c.collowner, NULL, NULL, false
    FROM pg_collation c WHERE c.collnamespace = $1
    UNION ALL
    SELECT 'pg_statistic_ext'::regclass, s.oid, format('%I.%I', $2, s.stxname), 'STATISTICS', s.stxowner, NULL, NULL, false
    FROM pg_statistic_ext s WHERE s.stxnamespace = $1
    UNION ALL
    SELECT 'pg_constraint'::regclass, k.oid,
           CASE WHEN k.contypid <> 0 THEN format('%I ON DOMAIN %I.%I', k.conname, $2, t.typname)
                ELSE format('%I ON %I.%I', k.conname, $2, c.relname) END, 'CONSTRAINT', NULL, NULL, NULL, false
    FROM pg_constraint k LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type t ON t.oid = k.contypid
    WHERE (k.conrelid = ANY($4) OR k.contypid = ANY($5))
    UNION ALL
    SELECT 'pg_trigger'::regclass, g.oid, format('%I ON %I.%I', g.tgname, $2, c.relname), 'TRIGGER', NULL, NULL, NULL, false
    FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid WHERE g.tgrelid = ANY($4) AND c.oid = ANY($4) AND NOT g.tgisinternal
    UNION ALL
    SELECT 'pg_policy'::regclass, p.oid, format('%I ON %I.%I', p.polname, $2, c.relname), 'POLICY', NULL, NULL, NULL, false
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.polrelid = ANY($4) AND c.oid = ANY($4)
    UNION ALL
    SELECT 'pg_rewrite'::regclass, w.oid, format('%I ON %I.%I', w.rulename, $2, c.relname), 'RULE', NULL, NULL, NULL, false
    FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class WHERE w.ev_class = ANY($4) AND c.oid = ANY($4) AND w.rulename <> '_RETURN'
"#;
