//! The catalog queries clone_schema reads its source with. Each returns the statements that
//! recreate one kind of object in the target, in the columns of [`super::Step`]:
//! `phase, node, ord, kind, ddl, body, run_as, as_owner`.
//!
//! They run with `search_path = pg_catalog, <source>, pg_temp`, so that PostgreSQL's deparsers
//! (pg_get_expr, pg_get_viewdef, format_type, regclass output...) print the source's own objects
//! unqualified; replayed with the target in its place, those names resolve to the target's
//! objects. Names the deparsers still qualify with the source (shadowed by pg_catalog, or always
//! qualified like a function header) are rewritten by [`super::rewrite`]. Every object created is
//! named `target.name` explicitly: the first schema of the path is pg_catalog.
//!
//! The source is on that path, and whoever owns it may have put functions and operators there
//! (an exact-type `quote_ident(name)` beats pg_catalog's `quote_ident(text)`): so every
//! function, operator and catalog these queries use is named with its schema (`pg_catalog.x`,
//! `OPERATOR(pg_catalog.=)`; `= ANY` instead of `IN`, searched `CASE` instead of `CASE x WHEN`,
//! no `NULLIF`, all of which find `=` on the path). Only the deparsers see the source's names.
//!
//! Parameters: $1 source namespace oid, $2 target schema name, $3 source schema name, and the
//! source's relations, types and functions as oid arrays ($4, $5, $6), read once: pg_class,
//! pg_type and pg_proc have no index on the namespace alone, and with thousands of tenant
//! schemas a scan per query would dominate.

/// Phases (the first column), in the order pg_dump restores: 1 definitions, each followed by
/// its owner (11, placed there by [`super::order`]), 2 partition attachments and sequence
/// ownership, 3 data, 4 sequence values, 5 indexes and keys, 6 index attachments, 7 replica
/// identity and clustering, 8 triggers, rules, policies and row security (which would have fired
/// on the data load), 9 extended statistics, 10 comments, 11 owners of what has no definition
/// step (statistics), 12 privileges, 13 foreign keys (checked once the data is in, by the owner
/// of their table, who may need a REFERENCES grant of phase 12), 14 default privileges,
/// 15 materialized view refreshes.
///
/// The last column, `as_owner`, names the owner of what the statement creates or acts on (the
/// source object's owner, who owns its clone): the statement runs as that role inside a
/// security-restricted operation, because PostgreSQL evaluates expressions of that owner while
/// parsing or running it (a literal of the owner's array, composite or range type runs its
/// element domain's CHECK through the type's input function in every statement that holds one:
/// views, defaults, CHECK constraints, index expressions and predicates, trigger conditions,
/// rules, policies, function defaults; generated columns and partition keys when a table is
/// created, partition constraints and CHECK constraints when a partition is attached, the
/// generated columns, CHECK and domain constraints and casts of a data copy, index expressions
/// while a foreign key's check is planned, an aggregate's initial value through its type's input
/// function, the constant calls of a domain's CHECK constraint when it is added). Statements
/// that evaluate nothing of anyone's (types without expressions, sequences, comments, owners,
/// grants) run as the caller.
pub mod phase {
    pub const DEFINITION: i32 = 1;
    pub const DATA: i32 = 3;
    pub const SEQUENCE_VALUES: i32 = 4;
    pub const OWNER: i32 = 11;
    pub const REFRESH: i32 = 15;
}

/// Objects clone_schema refuses (it would otherwise lose or misplace them). One text per object.
pub const UNSUPPORTED: &str = r#"
SELECT pg_catalog.format('%s %s', kind, name) FROM (
    SELECT 'foreign table' AS kind, pg_catalog.quote_ident(relname) AS name FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) ANY($4) AND relkind OPERATOR(pg_catalog.=) 'f'
    UNION ALL SELECT 'typed table', pg_catalog.quote_ident(relname) FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) ANY($4) AND relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) AND reloftype OPERATOR(pg_catalog.<>) 0
    UNION ALL SELECT 'base type', pg_catalog.quote_ident(typname) FROM pg_catalog.pg_type WHERE oid OPERATOR(pg_catalog.=) ANY($5) AND typtype OPERATOR(pg_catalog.=) ANY ('{b,p}'::pg_catalog."char"[]) AND NOT (typelem OPERATOR(pg_catalog.<>) 0 AND typlen OPERATOR(pg_catalog.=) -1)
    UNION ALL SELECT 'range type with a canonical function', pg_catalog.quote_ident(t.typname) FROM pg_catalog.pg_type t JOIN pg_catalog.pg_range r ON r.rngtypid OPERATOR(pg_catalog.=) t.oid WHERE t.oid OPERATOR(pg_catalog.=) ANY($5) AND r.rngcanonical OPERATOR(pg_catalog.<>) 0
    UNION ALL SELECT 'operator', oprname FROM pg_catalog.pg_operator WHERE oprnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT 'operator class', pg_catalog.quote_ident(opcname) FROM pg_catalog.pg_opclass WHERE opcnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT 'operator family', pg_catalog.quote_ident(opfname) FROM pg_catalog.pg_opfamily WHERE opfnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT 'text search configuration', pg_catalog.quote_ident(cfgname) FROM pg_catalog.pg_ts_config WHERE cfgnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT 'text search dictionary', pg_catalog.quote_ident(dictname) FROM pg_catalog.pg_ts_dict WHERE dictnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT 'text search parser', pg_catalog.quote_ident(prsname) FROM pg_catalog.pg_ts_parser WHERE prsnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT 'text search template', pg_catalog.quote_ident(tmplname) FROM pg_catalog.pg_ts_template WHERE tmplnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT 'conversion', pg_catalog.quote_ident(conname) FROM pg_catalog.pg_conversion WHERE connamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT DISTINCT 'member of extension', pg_catalog.quote_ident(e.extname) FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
        WHERE d.deptype OPERATOR(pg_catalog.=) 'e' AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass AND (pg_catalog.pg_identify_object(d.classid, d.objid, 0)).schema OPERATOR(pg_catalog.=) $3
) u ORDER BY 1
"#;

/// Dependencies between the definitions (phase 1), as pairs of node keys: `node` needs `needs`.
/// Sub-objects (column defaults, CHECK constraints, a view's rule, array and row types) count
/// as their owner.
pub const DEPENDENCIES: &str = r#"
WITH types AS (
    SELECT t.oid, CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'c' AND r.relkind OPERATOR(pg_catalog.<>) 'c' THEN 'rel:' OPERATOR(pg_catalog.||) t.typrelid
                       WHEN t.typtype OPERATOR(pg_catalog.=) 'm' THEN 'type:' OPERATOR(pg_catalog.||) mr.rngtypid
                       ELSE 'type:' OPERATOR(pg_catalog.||) t.oid END AS node
    FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) t.typrelid LEFT JOIN pg_catalog.pg_range mr ON mr.rngmultitypid OPERATOR(pg_catalog.=) t.oid
    WHERE t.oid OPERATOR(pg_catalog.=) ANY($5) AND NOT (t.typelem OPERATOR(pg_catalog.<>) 0 AND t.typlen OPERATOR(pg_catalog.=) -1)
), objects(classid, objid, node) AS (
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, c.oid, CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'c' THEN 'type:' OPERATOR(pg_catalog.||) c.reltype ELSE 'rel:' OPERATOR(pg_catalog.||) c.oid END
        FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S,c}'::pg_catalog."char"[])
    UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, oid, node FROM types
    UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, a.oid, t.node FROM pg_catalog.pg_type a JOIN types t ON t.oid OPERATOR(pg_catalog.=) a.typelem
        WHERE a.oid OPERATOR(pg_catalog.=) ANY($5) AND a.typlen OPERATOR(pg_catalog.=) -1
    UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass::pg_catalog.oid, oid, 'func:' OPERATOR(pg_catalog.||) oid FROM pg_catalog.pg_proc WHERE oid OPERATOR(pg_catalog.=) ANY($6)
    UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass::pg_catalog.oid, oid, 'coll:' OPERATOR(pg_catalog.||) oid FROM pg_catalog.pg_collation WHERE collnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass::pg_catalog.oid, d.oid, 'rel:' OPERATOR(pg_catalog.||) d.adrelid FROM pg_catalog.pg_attrdef d
        JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid AND a.attnum OPERATOR(pg_catalog.=) d.adnum
        WHERE d.adrelid OPERATOR(pg_catalog.=) ANY($4) AND a.attgenerated OPERATOR(pg_catalog.<>) ''
    UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass::pg_catalog.oid, k.oid, CASE WHEN k.contypid OPERATOR(pg_catalog.<>) 0 THEN 'type:' OPERATOR(pg_catalog.||) k.contypid ELSE 'rel:' OPERATOR(pg_catalog.||) k.conrelid END
        FROM pg_catalog.pg_constraint k WHERE (k.conrelid OPERATOR(pg_catalog.=) ANY($4) OR k.contypid OPERATOR(pg_catalog.=) ANY($5)) AND k.contype OPERATOR(pg_catalog.=) 'c'
    UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass::pg_catalog.oid, w.oid, 'rel:' OPERATOR(pg_catalog.||) w.ev_class FROM pg_catalog.pg_rewrite w JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) w.ev_class
        WHERE w.ev_class OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND w.rulename OPERATOR(pg_catalog.=) '_RETURN'
)
SELECT DISTINCT a.node, b.node AS needs
FROM objects a
CROSS JOIN LATERAL (SELECT refclassid, refobjid FROM pg_catalog.pg_depend
                    WHERE classid OPERATOR(pg_catalog.=) a.classid AND objid OPERATOR(pg_catalog.=) a.objid AND deptype OPERATOR(pg_catalog.=) 'n') d
JOIN objects b ON b.classid OPERATOR(pg_catalog.=) d.refclassid AND b.objid OPERATOR(pg_catalog.=) d.refobjid
WHERE a.node OPERATOR(pg_catalog.<>) b.node
UNION
SELECT 'rel:' OPERATOR(pg_catalog.||) i.inhrelid, 'rel:' OPERATOR(pg_catalog.||) i.inhparent
FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) i.inhparent
WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND p.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) AND NOT c.relispartition
"#;

/// `WITH (...)` from a reloptions array, values quoted.
const OPTIONS: &str = "(SELECT pg_catalog.string_agg(pg_catalog.format('%s=%L', pg_catalog.split_part(o, '=', 1), pg_catalog.substr(o, pg_catalog.strpos(o, '=') OPERATOR(pg_catalog.+) 1)), ', ') FROM pg_catalog.unnest(OPTS) o)";

fn options(array: &str) -> String {
    OPTIONS.replace("OPTS", array)
}

/// The statements, one query per kind of object.
pub fn step_queries() -> Vec<String> {
    let mut q: Vec<String> = Vec::new();

    // ---- definitions (phase 1), ordered later by their dependencies ----
    q.push(r#"
SELECT 1, 'coll:' OPERATOR(pg_catalog.||) c.oid, c.oid::pg_catalog.int8, 'collation',
       pg_catalog.format('CREATE COLLATION %I.%I (%s%s)', $2, c.collname,
              CASE WHEN c.collprovider OPERATOR(pg_catalog.=) 'i' THEN pg_catalog.format('provider = icu, locale = %L', j OPERATOR(pg_catalog.->>) 'colliculocale')
                   ELSE pg_catalog.format('provider = libc, lc_collate = %L, lc_ctype = %L', c.collcollate, c.collctype) END,
              CASE WHEN NOT c.collisdeterministic THEN ', deterministic = false' ELSE '' END),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_collation c, pg_catalog.to_jsonb(c) j WHERE c.collnamespace OPERATOR(pg_catalog.=) $1"#.into());

    q.push(r#"
SELECT 1, 'type:' OPERATOR(pg_catalog.||) t.oid, t.oid::pg_catalog.int8, 'type',
       pg_catalog.format('CREATE TYPE %I.%I AS ENUM (%s)', $2, t.typname,
              (SELECT coalesce(pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder), '')
               FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) t.oid)),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_type t WHERE t.oid OPERATOR(pg_catalog.=) ANY($5) AND t.typtype OPERATOR(pg_catalog.=) 'e'"#.into());

    q.push(r#"
SELECT 1, 'type:' OPERATOR(pg_catalog.||) t.oid, t.oid::pg_catalog.int8, 'type',
       pg_catalog.format('CREATE TYPE %I.%I AS (%s)', $2, t.typname,
              (SELECT coalesce(pg_catalog.string_agg(pg_catalog.format('%I %s%s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                          CASE WHEN a.attcollation OPERATOR(pg_catalog.<>) 0 AND a.attcollation OPERATOR(pg_catalog.<>) at.typcollation
                               THEN ' COLLATE ' OPERATOR(pg_catalog.||) a.attcollation::pg_catalog.regcollation::pg_catalog.text ELSE '' END), ', ' ORDER BY a.attnum), '')
               FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type at ON at.oid OPERATOR(pg_catalog.=) a.atttypid
               WHERE a.attrelid OPERATOR(pg_catalog.=) t.typrelid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) t.typrelid WHERE t.oid OPERATOR(pg_catalog.=) ANY($5) AND t.typtype OPERATOR(pg_catalog.=) 'c' AND r.relkind OPERATOR(pg_catalog.=) 'c'"#.into());

    q.push(r#"
SELECT 1, 'type:' OPERATOR(pg_catalog.||) t.oid, t.oid::pg_catalog.int8, 'domain',
       pg_catalog.format('CREATE DOMAIN %I.%I AS %s%s%s%s', $2, t.typname, pg_catalog.format_type(t.typbasetype, t.typtypmod),
              CASE WHEN t.typcollation OPERATOR(pg_catalog.<>) 0 AND t.typcollation OPERATOR(pg_catalog.<>) bt.typcollation
                   THEN ' COLLATE ' OPERATOR(pg_catalog.||) t.typcollation::pg_catalog.regcollation::pg_catalog.text ELSE '' END,
              CASE WHEN t.typdefaultbin IS NOT NULL THEN ' DEFAULT ' OPERATOR(pg_catalog.||) pg_catalog.pg_get_expr(t.typdefaultbin, 0) ELSE '' END,
              CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END)
       OPERATOR(pg_catalog.||) coalesce((SELECT pg_catalog.string_agg(pg_catalog.format('; ALTER DOMAIN %I.%I ADD CONSTRAINT %I %s', $2, t.typname, k.conname,
                                             pg_catalog.pg_get_constraintdef(k.oid)), '' ORDER BY k.conname)
                    FROM pg_catalog.pg_constraint k WHERE k.contypid OPERATOR(pg_catalog.=) t.oid AND k.contype OPERATOR(pg_catalog.=) 'c'), ''),
       false, NULL::pg_catalog.oid,
       -- ALTER DOMAIN ... ADD CONSTRAINT folds constant calls of the owner's functions.
       t.typowner
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_type bt ON bt.oid OPERATOR(pg_catalog.=) t.typbasetype WHERE t.oid OPERATOR(pg_catalog.=) ANY($5) AND t.typtype OPERATOR(pg_catalog.=) 'd'"#.into());

    q.push(r#"
SELECT 1, 'type:' OPERATOR(pg_catalog.||) t.oid, t.oid::pg_catalog.int8, 'type',
       pg_catalog.format('CREATE TYPE %I.%I AS RANGE (SUBTYPE = %s%s%s%s%s)', $2, t.typname, pg_catalog.format_type(r.rngsubtype, NULL),
              CASE WHEN NOT opc.opcdefault THEN pg_catalog.format(', SUBTYPE_OPCLASS = %I.%I', opcn.nspname, opc.opcname) ELSE '' END,
              CASE WHEN r.rngcollation OPERATOR(pg_catalog.<>) 0 AND r.rngcollation OPERATOR(pg_catalog.<>) st.typcollation
                   THEN ', COLLATION = ' OPERATOR(pg_catalog.||) r.rngcollation::pg_catalog.regcollation::pg_catalog.text ELSE '' END,
              CASE WHEN r.rngsubdiff OPERATOR(pg_catalog.<>) 0 THEN ', SUBTYPE_DIFF = ' OPERATOR(pg_catalog.||) r.rngsubdiff::pg_catalog.regproc::pg_catalog.text ELSE '' END,
              CASE WHEN mt.typname IS NOT NULL THEN pg_catalog.format(', MULTIRANGE_TYPE_NAME = %I.%I', $2, mt.typname) ELSE '' END),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_range r ON r.rngtypid OPERATOR(pg_catalog.=) t.oid JOIN pg_catalog.pg_type st ON st.oid OPERATOR(pg_catalog.=) r.rngsubtype
JOIN pg_catalog.pg_opclass opc ON opc.oid OPERATOR(pg_catalog.=) r.rngsubopc JOIN pg_catalog.pg_namespace opcn ON opcn.oid OPERATOR(pg_catalog.=) opc.opcnamespace
LEFT JOIN pg_catalog.pg_type mt ON mt.oid OPERATOR(pg_catalog.=) (pg_catalog.to_jsonb(r) OPERATOR(pg_catalog.->>) 'rngmultitypid')::pg_catalog.oid
WHERE t.oid OPERATOR(pg_catalog.=) ANY($5) AND t.typtype OPERATOR(pg_catalog.=) 'r'"#.into());

    // Functions and procedures: PostgreSQL's own definition, with the source schema rewritten in
    // the header and the body (`body` = true). Internal ones (range constructors) come with their type.
    q.push(r#"
SELECT 1, 'func:' OPERATOR(pg_catalog.||) p.oid, p.oid::pg_catalog.int8, CASE WHEN p.prokind OPERATOR(pg_catalog.=) 'p' THEN 'procedure' ELSE 'function' END,
       pg_catalog.pg_get_functiondef(p.oid), true, NULL::pg_catalog.oid, p.proowner
FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) ANY($6) AND p.prokind OPERATOR(pg_catalog.=) ANY ('{f,p,w}'::pg_catalog."char"[])
AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) ANY ('{i,e}'::pg_catalog."char"[]))"#.into());

    q.push(r#"
SELECT 1, 'func:' OPERATOR(pg_catalog.||) p.oid, p.oid::pg_catalog.int8, 'aggregate',
       pg_catalog.format('CREATE AGGREGATE %I.%I(%s) (SFUNC = %s, STYPE = %s%s)', $2, p.proname, pg_catalog.pg_get_function_arguments(p.oid),
              a.aggtransfn::pg_catalog.regproc::pg_catalog.text, pg_catalog.format_type(a.aggtranstype, NULL), pg_catalog.concat(
              CASE WHEN a.aggtransspace OPERATOR(pg_catalog.<>) 0 THEN ', SSPACE = ' OPERATOR(pg_catalog.||) a.aggtransspace END,
              CASE WHEN a.aggfinalfn OPERATOR(pg_catalog.<>) 0 THEN ', FINALFUNC = ' OPERATOR(pg_catalog.||) a.aggfinalfn::pg_catalog.regproc::pg_catalog.text END,
              CASE WHEN a.aggfinalextra THEN ', FINALFUNC_EXTRA' END,
              CASE WHEN a.aggfinalfn OPERATOR(pg_catalog.<>) 0 THEN ', FINALFUNC_MODIFY = ' OPERATOR(pg_catalog.||) CASE WHEN a.aggfinalmodify OPERATOR(pg_catalog.=) 'r' THEN 'READ_ONLY' WHEN a.aggfinalmodify OPERATOR(pg_catalog.=) 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END END,
              CASE WHEN a.aggcombinefn OPERATOR(pg_catalog.<>) 0 THEN ', COMBINEFUNC = ' OPERATOR(pg_catalog.||) a.aggcombinefn::pg_catalog.regproc::pg_catalog.text END,
              CASE WHEN a.aggserialfn OPERATOR(pg_catalog.<>) 0 THEN ', SERIALFUNC = ' OPERATOR(pg_catalog.||) a.aggserialfn::pg_catalog.regproc::pg_catalog.text END,
              CASE WHEN a.aggdeserialfn OPERATOR(pg_catalog.<>) 0 THEN ', DESERIALFUNC = ' OPERATOR(pg_catalog.||) a.aggdeserialfn::pg_catalog.regproc::pg_catalog.text END,
              CASE WHEN a.agginitval IS NOT NULL THEN ', INITCOND = ' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(a.agginitval) END,
              CASE WHEN a.aggmtransfn OPERATOR(pg_catalog.<>) 0 THEN ', MSFUNC = ' OPERATOR(pg_catalog.||) a.aggmtransfn::pg_catalog.regproc::pg_catalog.text OPERATOR(pg_catalog.||) ', MINVFUNC = ' OPERATOR(pg_catalog.||) a.aggminvtransfn::pg_catalog.regproc::pg_catalog.text
                                                OPERATOR(pg_catalog.||) ', MSTYPE = ' OPERATOR(pg_catalog.||) pg_catalog.format_type(a.aggmtranstype, NULL) END,
              CASE WHEN a.aggmtransspace OPERATOR(pg_catalog.<>) 0 THEN ', MSSPACE = ' OPERATOR(pg_catalog.||) a.aggmtransspace END,
              CASE WHEN a.aggmfinalfn OPERATOR(pg_catalog.<>) 0 THEN ', MFINALFUNC = ' OPERATOR(pg_catalog.||) a.aggmfinalfn::pg_catalog.regproc::pg_catalog.text END,
              CASE WHEN a.aggmfinalextra THEN ', MFINALFUNC_EXTRA' END,
              CASE WHEN a.aggmfinalfn OPERATOR(pg_catalog.<>) 0 THEN ', MFINALFUNC_MODIFY = ' OPERATOR(pg_catalog.||) CASE WHEN a.aggmfinalmodify OPERATOR(pg_catalog.=) 'r' THEN 'READ_ONLY' WHEN a.aggmfinalmodify OPERATOR(pg_catalog.=) 's' THEN 'SHAREABLE' ELSE 'READ_WRITE' END END,
              CASE WHEN a.aggminitval IS NOT NULL THEN ', MINITCOND = ' OPERATOR(pg_catalog.||) pg_catalog.quote_literal(a.aggminitval) END,
              CASE WHEN a.aggsortop OPERATOR(pg_catalog.<>) 0 THEN (SELECT pg_catalog.format(', SORTOP = OPERATOR(%I.%s)', n.nspname, o.oprname)
                                               FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace WHERE o.oid OPERATOR(pg_catalog.=) a.aggsortop) END,
              CASE WHEN p.proparallel OPERATOR(pg_catalog.=) 's' THEN ', PARALLEL = SAFE' WHEN p.proparallel OPERATOR(pg_catalog.=) 'r' THEN ', PARALLEL = RESTRICTED' END,
              CASE WHEN a.aggkind OPERATOR(pg_catalog.=) 'h' THEN ', HYPOTHETICAL' END)),
       false, NULL::pg_catalog.oid,
       -- CREATE AGGREGATE runs its state type's input function on the initial values.
       CASE WHEN a.agginitval IS NOT NULL OR a.aggminitval IS NOT NULL THEN p.proowner END
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_aggregate a ON a.aggfnoid OPERATOR(pg_catalog.=) p.oid WHERE p.oid OPERATOR(pg_catalog.=) ANY($6)"#.into());

    // Sequences of their own (identity sequences come with their column).
    q.push(r#"
SELECT 1, 'rel:' OPERATOR(pg_catalog.||) c.oid, c.oid::pg_catalog.int8, 'sequence',
       pg_catalog.format('CREATE %sSEQUENCE %I.%I AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s%s',
              CASE WHEN c.relpersistence OPERATOR(pg_catalog.=) 'u' THEN 'UNLOGGED ' ELSE '' END, $2, c.relname, pg_catalog.format_type(s.seqtypid, NULL),
              s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequence s ON s.seqrelid OPERATOR(pg_catalog.=) c.oid
WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) 'S'
AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'i')"#.into());

    // Tables. Partitions are created standalone with every column and CHECK constraint (as
    // pg_dump does) and attached in phase 2; inheritance children list only their local
    // columns and constraints and name their parents.
    q.push(format!(r#"
SELECT 1, 'rel:' OPERATOR(pg_catalog.||) c.oid, c.oid::pg_catalog.int8, 'table',
       pg_catalog.format('CREATE %sTABLE %I.%I (%s)%s%s%s%s%s', CASE WHEN c.relpersistence OPERATOR(pg_catalog.=) 'u' THEN 'UNLOGGED ' ELSE '' END, $2, c.relname,
              pg_catalog.concat_ws(', ', cols.list, checks.list),
              CASE WHEN NOT c.relispartition AND inh.list IS NOT NULL THEN ' INHERITS (' OPERATOR(pg_catalog.||) inh.list OPERATOR(pg_catalog.||) ')' ELSE '' END,
              CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN ' PARTITION BY ' OPERATOR(pg_catalog.||) pg_catalog.pg_get_partkeydef(c.oid) ELSE '' END,
              CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'r' AND am.amname OPERATOR(pg_catalog.<>) 'heap' THEN ' USING ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(am.amname) ELSE '' END,
              CASE WHEN opts.list IS NOT NULL THEN ' WITH (' OPERATOR(pg_catalog.||) opts.list OPERATOR(pg_catalog.||) ')' ELSE '' END,
              CASE WHEN c.reltablespace OPERATOR(pg_catalog.<>) 0 THEN ' TABLESPACE ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(ts.spcname) ELSE '' END)
       OPERATOR(pg_catalog.||) coalesce(extras.list, ''),
       false, NULL::pg_catalog.oid,
       -- PostgreSQL plans generated columns and partition key expressions when it creates the
       -- table (to check that they are immutable), and parses CHECK constraints and literals of
       -- the owner's array, composite and range types (their element domains' input functions
       -- run then): the owner creates it.
       c.relowner
FROM pg_catalog.pg_class c
LEFT JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam
LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid OPERATOR(pg_catalog.=) c.reltablespace
LEFT JOIN LATERAL (
    SELECT pg_catalog.string_agg(pg_catalog.format('%I %s%s%s%s%s%s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attcollation OPERATOR(pg_catalog.<>) 0 AND a.attcollation OPERATOR(pg_catalog.<>) at.typcollation
                    THEN ' COLLATE ' OPERATOR(pg_catalog.||) a.attcollation::pg_catalog.regcollation::pg_catalog.text ELSE '' END,
               CASE WHEN a.attcompression OPERATOR(pg_catalog.=) 'p' THEN ' COMPRESSION pglz' WHEN a.attcompression OPERATOR(pg_catalog.=) 'l' THEN ' COMPRESSION lz4' ELSE '' END,
               CASE WHEN a.attgenerated OPERATOR(pg_catalog.=) 's' THEN ' GENERATED ALWAYS AS (' OPERATOR(pg_catalog.||) pg_catalog.pg_get_expr(d.adbin, d.adrelid) OPERATOR(pg_catalog.||) ') STORED' ELSE '' END,
               CASE WHEN a.attidentity OPERATOR(pg_catalog.=) ANY ('{{a,d}}'::pg_catalog."char"[]) THEN
                    pg_catalog.format(' GENERATED %s AS IDENTITY (SEQUENCE NAME %I.%I START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s)',
                           CASE WHEN a.attidentity OPERATOR(pg_catalog.=) 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END, $2, idseq.relname,
                           idseq.seqstart, idseq.seqincrement, idseq.seqmin, idseq.seqmax, idseq.seqcache,
                           CASE WHEN idseq.seqcycle THEN ' CYCLE' ELSE '' END) ELSE '' END,
               CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END), ', ' ORDER BY a.attnum) AS list
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type at ON at.oid OPERATOR(pg_catalog.=) a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid AND d.adnum OPERATOR(pg_catalog.=) a.attnum
    LEFT JOIN LATERAL (SELECT sc.relname, s.* FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_class sc ON sc.oid OPERATOR(pg_catalog.=) dep.objid JOIN pg_catalog.pg_sequence s ON s.seqrelid OPERATOR(pg_catalog.=) sc.oid
                       WHERE dep.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.refobjid OPERATOR(pg_catalog.=) c.oid
                       AND dep.refobjsubid OPERATOR(pg_catalog.=) a.attnum AND dep.deptype OPERATOR(pg_catalog.=) 'i' LIMIT 1) idseq ON true
    WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped AND (a.attislocal OR c.relispartition)
) cols ON true
LEFT JOIN LATERAL (
    SELECT pg_catalog.string_agg(pg_catalog.format('CONSTRAINT %I %s', k.conname, pg_catalog.pg_get_constraintdef(k.oid)), ', ' ORDER BY k.conname) AS list
    FROM pg_catalog.pg_constraint k WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid AND k.contype OPERATOR(pg_catalog.=) 'c' AND k.convalidated AND (k.conislocal OR c.relispartition)
) checks ON true
LEFT JOIN LATERAL (
    SELECT pg_catalog.string_agg(i.inhparent::pg_catalog.regclass::pg_catalog.text, ', ' ORDER BY i.inhseqno) AS list FROM pg_catalog.pg_inherits i WHERE i.inhrelid OPERATOR(pg_catalog.=) c.oid
) inh ON true
LEFT JOIN LATERAL (
    SELECT CASE WHEN o.list OPERATOR(pg_catalog.<>) '' THEN o.list END AS list
    FROM (SELECT pg_catalog.concat_ws(', ', {table_opts}, (SELECT {toast_opts} FROM pg_catalog.pg_class t WHERE t.oid OPERATOR(pg_catalog.=) c.reltoastrelid)) AS list) o
) opts ON true
LEFT JOIN LATERAL (
    SELECT pg_catalog.string_agg(pg_catalog.concat(
               CASE WHEN a.attstattarget OPERATOR(pg_catalog.>=) 0 THEN pg_catalog.format('; ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET STATISTICS %s', $2, c.relname, a.attname, a.attstattarget) END,
               CASE WHEN a.attstorage OPERATOR(pg_catalog.<>) at.typstorage THEN pg_catalog.format('; ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET STORAGE %s', $2, c.relname, a.attname,
                    CASE WHEN a.attstorage OPERATOR(pg_catalog.=) 'p' THEN 'PLAIN' WHEN a.attstorage OPERATOR(pg_catalog.=) 'e' THEN 'EXTERNAL' WHEN a.attstorage OPERATOR(pg_catalog.=) 'm' THEN 'MAIN' ELSE 'EXTENDED' END) END,
               CASE WHEN a.attoptions IS NOT NULL THEN pg_catalog.format('; ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET (%s)', $2, c.relname, a.attname, {att_opts}) END,
               CASE WHEN NOT a.attislocal AND NOT c.relispartition AND a.attnotnull THEN
                    pg_catalog.format('; ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET NOT NULL', $2, c.relname, a.attname) END), '' ORDER BY a.attnum) AS list
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type at ON at.oid OPERATOR(pg_catalog.=) a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid AND d.adnum OPERATOR(pg_catalog.=) a.attnum
    WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
) extras ON true
WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) ANY ('{{r,p}}'::pg_catalog."char"[])"#,
        table_opts = options("c.reloptions"),
        toast_opts = options("t.reloptions").replace("format('%s=%L'", "format('toast.%s=%L'"),
        att_opts = options("a.attoptions"),
    ));

    q.push(format!(r#"
SELECT 1, 'rel:' OPERATOR(pg_catalog.||) c.oid, c.oid::pg_catalog.int8, CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN 'view' ELSE 'materialized view' END,
       CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN pg_catalog.format('CREATE VIEW %I.%I%s AS %s', $2, c.relname,
                                           coalesce(' WITH (' OPERATOR(pg_catalog.||) {opts} OPERATOR(pg_catalog.||) ')', ''), pg_catalog.rtrim(pg_catalog.pg_get_viewdef(c.oid), ';'))
       ELSE pg_catalog.format('CREATE MATERIALIZED VIEW %I.%I%s%s%s AS %s WITH NO DATA', $2, c.relname,
                   CASE WHEN am.amname OPERATOR(pg_catalog.<>) 'heap' THEN ' USING ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(am.amname) ELSE '' END,
                   coalesce(' WITH (' OPERATOR(pg_catalog.||) {opts} OPERATOR(pg_catalog.||) ')', ''),
                   CASE WHEN c.reltablespace OPERATOR(pg_catalog.<>) 0 THEN ' TABLESPACE ' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(ts.spcname) ELSE '' END,
                   pg_catalog.rtrim(pg_catalog.pg_get_viewdef(c.oid), ';')) END,
       false, NULL::pg_catalog.oid, c.relowner
FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam LEFT JOIN pg_catalog.pg_tablespace ts ON ts.oid OPERATOR(pg_catalog.=) c.reltablespace
WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) ANY ('{{v,m}}'::pg_catalog."char"[])"#, opts = options("c.reloptions")));

    // ---- after the definitions ----
    q.push(r#"
SELECT 2, NULL, c.oid::pg_catalog.int8, NULL,
       pg_catalog.format('ALTER TABLE ONLY %s ATTACH PARTITION %I.%I %s', i.inhparent::pg_catalog.regclass::pg_catalog.text, $2, c.relname, pg_catalog.pg_get_expr(c.relpartbound, c.oid)),
       false, NULL::pg_catalog.oid, c.relowner
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_inherits i ON i.inhrelid OPERATOR(pg_catalog.=) c.oid WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relispartition AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[])"#.into());

    q.push(r#"
SELECT 2, NULL, s.oid::pg_catalog.int8, NULL, pg_catalog.format('ALTER SEQUENCE %I.%I OWNED BY %I.%I.%I', $2, s.relname, $2, t.relname, a.attname), false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.objid JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) d.refobjid
JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.oid AND a.attnum OPERATOR(pg_catalog.=) d.refobjsubid
WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype OPERATOR(pg_catalog.=) 'a'
AND s.relkind OPERATOR(pg_catalog.=) 'S' AND s.oid OPERATOR(pg_catalog.=) ANY($4) AND t.oid OPERATOR(pg_catalog.=) ANY($4)"#.into());

    // Column defaults once every definition exists (as pg_dump does when it must): a default
    // may call a function whose body reads the table. Not needed before: the data load gives
    // every column a value.
    q.push(r#"
SELECT 2, NULL, c.oid::pg_catalog.int8, NULL, pg_catalog.format('ALTER TABLE ONLY %I.%I ALTER COLUMN %I SET DEFAULT %s', $2, c.relname, a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid)), false, NULL::pg_catalog.oid, c.relowner
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) c.oid JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) d.adnum
WHERE d.adrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) AND a.attgenerated OPERATOR(pg_catalog.=) '' AND NOT a.attisdropped"#.into());

    q.push(r#"
SELECT 2, NULL, c.oid::pg_catalog.int8, NULL, pg_catalog.format('ALTER VIEW %I.%I ALTER COLUMN %I SET DEFAULT %s', $2, c.relname, a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid)), false, NULL::pg_catalog.oid, c.relowner
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attrdef d ON d.adrelid OPERATOR(pg_catalog.=) c.oid JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.=) d.adnum
WHERE d.adrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) 'v'"#.into());

    // Data: every row of every table, straight from the source (phase 3, only with_data). The
    // rows are inserted by the table's owner (its defaults, CHECK constraints, generated
    // columns, domains and casts run with its rights), who may have no USAGE on the source
    // schema: the caller reads the source through a temporary view it grants to the owner
    // (the view checks the source's privileges and row security as the caller).
    q.push(r#"
SELECT 3, NULL, c.oid::pg_catalog.int8, s.kind, s.ddl, false, NULL::pg_catalog.oid, s.as_owner
FROM pg_catalog.pg_class c CROSS JOIN LATERAL (
    -- A value of one of the source's own types (enum, composite, range, domain, or an array of
    -- them) is not of the clone's type: it goes through its text form, which is exact. The
    -- statement names every type with its schema: it runs with the search_path pinned.
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) AS list,
           pg_catalog.string_agg(CASE WHEN t.oid OPERATOR(pg_catalog.=) ANY($5)
                                      THEN pg_catalog.format('%I::pg_catalog.text::%I.%I', a.attname, $2, t.typname)
                                      WHEN e.oid OPERATOR(pg_catalog.=) ANY($5)
                                      THEN pg_catalog.format('%I::pg_catalog.text::%I.%I[]', a.attname, $2, e.typname)
                                      ELSE pg_catalog.quote_ident(a.attname) END, ', ' ORDER BY a.attnum) AS exprs
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid LEFT JOIN pg_catalog.pg_type e ON e.oid OPERATOR(pg_catalog.=) t.typelem AND t.typlen OPERATOR(pg_catalog.=) -1
    WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '') cols
CROSS JOIN LATERAL (VALUES
    (1, NULL, pg_catalog.format('CREATE TEMPORARY VIEW pg_tenant_clone_rows AS SELECT %s FROM ONLY %I.%I; GRANT SELECT ON pg_temp.pg_tenant_clone_rows TO %I',
                                cols.list, $3, c.relname, pg_catalog.pg_get_userbyid(c.relowner)), NULL::pg_catalog.oid),
    (2, 'rows', pg_catalog.format('INSERT INTO %I.%I (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp.pg_tenant_clone_rows', $2, c.relname, cols.list, cols.exprs), c.relowner),
    (3, NULL, 'DROP VIEW pg_temp.pg_tenant_clone_rows', NULL)
) s(n, kind, ddl, as_owner)
WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) 'r' AND cols.list IS NOT NULL
ORDER BY c.oid, s.n"#.into());

    q.push(r#"
SELECT 4, NULL, c.oid::pg_catalog.int8, NULL,
       -- The source's value read now, by oid (never by name later: the owner could have put a
       -- view of its own in the sequence's place meanwhile).
       pg_catalog.format('SELECT pg_catalog.setval(%L, %s, %s)', pg_catalog.format('%I.%I', $2, c.relname),
                         coalesce(pg_catalog.pg_sequence_last_value(c.oid), s.seqstart),
                         CASE WHEN pg_catalog.pg_sequence_last_value(c.oid) IS NULL THEN 'false' ELSE 'true' END),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_sequence s ON s.seqrelid OPERATOR(pg_catalog.=) c.oid
WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) 'S'"#.into());

    // Indexes and the constraints that own one; partition indexes are attached to their parent's.
    q.push(r#"
SELECT 5, NULL, k.oid::pg_catalog.int8, 'constraint',
       pg_catalog.format('ALTER TABLE ONLY %I.%I ADD CONSTRAINT %I %s', $2, c.relname, k.conname, pg_catalog.pg_get_constraintdef(k.oid)), false, NULL::pg_catalog.oid, c.relowner
FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) k.conrelid
WHERE k.conrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND (k.contype OPERATOR(pg_catalog.=) ANY ('{p,u,x}'::pg_catalog."char"[]) OR (k.contype OPERATOR(pg_catalog.=) 'c' AND NOT k.convalidated AND k.conislocal))"#.into());

    q.push(r#"
SELECT 5, NULL, i.indexrelid::pg_catalog.int8, 'index', pg_catalog.pg_get_indexdef(i.indexrelid), false, NULL::pg_catalog.oid, c.relowner
FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indrelid
WHERE i.indrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4)
AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid OPERATOR(pg_catalog.=) i.indexrelid AND k.conrelid OPERATOR(pg_catalog.=) i.indrelid AND k.contype OPERATOR(pg_catalog.=) ANY ('{p,u,x}'::pg_catalog."char"[]))"#.into());

    q.push(r#"
SELECT 6, NULL, (CASE WHEN ch.relkind OPERATOR(pg_catalog.=) 'I' THEN 1 ELSE 0 END)::pg_catalog.int8, NULL,
       pg_catalog.format('ALTER INDEX %I.%I ATTACH PARTITION %I.%I', $2, p.relname, $2, ch.relname), false, NULL::pg_catalog.oid, p.relowner
FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class ch ON ch.oid OPERATOR(pg_catalog.=) i.inhrelid JOIN pg_catalog.pg_class p ON p.oid OPERATOR(pg_catalog.=) i.inhparent
WHERE ch.relkind OPERATOR(pg_catalog.=) ANY ('{i,I}'::pg_catalog."char"[]) AND ch.oid OPERATOR(pg_catalog.=) ANY($4) AND p.oid OPERATOR(pg_catalog.=) ANY($4)"#.into());

    q.push(r#"
SELECT 7, NULL, c.oid::pg_catalog.int8, NULL,
       pg_catalog.format('ALTER TABLE ONLY %I.%I REPLICA IDENTITY %s', $2, c.relname,
              CASE WHEN c.relreplident OPERATOR(pg_catalog.=) 'n' THEN 'NOTHING' WHEN c.relreplident OPERATOR(pg_catalog.=) 'f' THEN 'FULL'
                   ELSE 'USING INDEX ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.quote_ident(ic.relname) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) x.indexrelid
                                           WHERE x.indrelid OPERATOR(pg_catalog.=) c.oid AND x.indisreplident) END), false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog."char"[]) AND c.relreplident OPERATOR(pg_catalog.<>) 'd'
UNION ALL
SELECT 7, NULL, x.indexrelid::pg_catalog.int8, NULL,
       pg_catalog.format('ALTER INDEX %I.%I ALTER COLUMN %s SET STATISTICS %s', $2, ic.relname, a.attnum, a.attstattarget), false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) x.indexrelid JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) x.indexrelid
WHERE x.indrelid OPERATOR(pg_catalog.=) ANY($4) AND a.attstattarget OPERATOR(pg_catalog.>=) 0
UNION ALL
SELECT 7, NULL, c.oid::pg_catalog.int8, NULL, pg_catalog.format('ALTER TABLE %I.%I CLUSTER ON %I', $2, c.relname, ic.relname), false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) x.indrelid JOIN pg_catalog.pg_class ic ON ic.oid OPERATOR(pg_catalog.=) x.indexrelid
WHERE x.indrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND x.indisclustered"#.into());

    // Foreign keys once the data is in and the privileges are. Checking one plans a query over
    // both tables (whose index expressions PostgreSQL then evaluates): the key is added NOT VALID
    // by the caller (no check, no REFERENCES grant needed) and validated by its table's owner.
    // A partitioned table takes no NOT VALID key: its owner adds it, checked. Those a partition
    // inherits come with its parent's.
    q.push(r#"
SELECT 13, NULL, k.oid::pg_catalog.int8, s.kind, s.ddl, false, NULL::pg_catalog.oid, s.as_owner
FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) k.conrelid
CROSS JOIN LATERAL (
    SELECT 1 AS n, 'foreign key' AS kind,
           pg_catalog.format('ALTER TABLE ONLY %I.%I ADD CONSTRAINT %I %s%s', $2, c.relname, k.conname, pg_catalog.pg_get_constraintdef(k.oid),
                             CASE WHEN k.convalidated THEN ' NOT VALID' ELSE '' END) AS ddl, NULL::pg_catalog.oid AS as_owner
    WHERE c.relkind OPERATOR(pg_catalog.<>) 'p'
    UNION ALL
    SELECT 2, NULL, pg_catalog.format('ALTER TABLE ONLY %I.%I VALIDATE CONSTRAINT %I', $2, c.relname, k.conname), c.relowner
    WHERE c.relkind OPERATOR(pg_catalog.<>) 'p' AND k.convalidated
    UNION ALL
    SELECT 1, 'foreign key', pg_catalog.format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', $2, c.relname, k.conname, pg_catalog.pg_get_constraintdef(k.oid)), c.relowner
    WHERE c.relkind OPERATOR(pg_catalog.=) 'p'
) s
WHERE k.conrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND k.contype OPERATOR(pg_catalog.=) 'f' AND k.conparentid OPERATOR(pg_catalog.=) 0
ORDER BY k.oid, s.n"#.into());

    // Triggers, rules, policies and row security, which would have fired on the data load.
    q.push(format!(r#"
SELECT 8, NULL, t.oid::pg_catalog.int8, 'trigger',
       pg_catalog.pg_get_triggerdef(t.oid) OPERATOR(pg_catalog.||) {},
       -- Only a WHEN condition is parsed (the owner creates those); pg_tenant's own triggers
       -- (the quota trigger, which only attach_quota's callers may attach) have none.
       false, NULL::pg_catalog.oid, CASE WHEN t.tgqual IS NOT NULL THEN c.relowner END
FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid
WHERE t.tgrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND NOT t.tgisinternal AND t.tgparentid OPERATOR(pg_catalog.=) 0"#,
        enable_state("t.tgenabled", "TRIGGER", "t.tgname")
    ));

    // A trigger a partition got from its parent, enabled or disabled on its own.
    q.push(r#"
SELECT 8, NULL, t.oid::pg_catalog.int8, NULL,
       pg_catalog.format('ALTER TABLE %I.%I %s TRIGGER %I', $2, c.relname,
              CASE WHEN t.tgenabled OPERATOR(pg_catalog.=) 'D' THEN 'DISABLE' WHEN t.tgenabled OPERATOR(pg_catalog.=) 'R' THEN 'ENABLE REPLICA' WHEN t.tgenabled OPERATOR(pg_catalog.=) 'A' THEN 'ENABLE ALWAYS' ELSE 'ENABLE' END, t.tgname),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid JOIN pg_catalog.pg_trigger pt ON pt.oid OPERATOR(pg_catalog.=) t.tgparentid
WHERE t.tgrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND t.tgparentid OPERATOR(pg_catalog.<>) 0 AND (t.tgenabled OPERATOR(pg_catalog.<>) 'O' OR pt.tgenabled OPERATOR(pg_catalog.<>) 'O')"#.into());

    q.push(format!(r#"
SELECT 8, NULL, w.oid::pg_catalog.int8, 'rule',
       pg_catalog.pg_get_ruledef(w.oid) OPERATOR(pg_catalog.||) {},
       false, NULL::pg_catalog.oid, c.relowner
FROM pg_catalog.pg_rewrite w JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) w.ev_class
WHERE w.ev_class OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND w.rulename OPERATOR(pg_catalog.<>) '_RETURN'"#,
        enable_state("w.ev_enabled", "RULE", "w.rulename")
    ));

    q.push(r#"
SELECT 8, NULL, p.oid::pg_catalog.int8, 'policy',
       pg_catalog.format('CREATE POLICY %I ON %I.%I AS %s FOR %s TO %s%s%s', p.polname, $2, c.relname,
              CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
              CASE WHEN p.polcmd OPERATOR(pg_catalog.=) 'r' THEN 'SELECT' WHEN p.polcmd OPERATOR(pg_catalog.=) 'a' THEN 'INSERT' WHEN p.polcmd OPERATOR(pg_catalog.=) 'w' THEN 'UPDATE' WHEN p.polcmd OPERATOR(pg_catalog.=) 'd' THEN 'DELETE' ELSE 'ALL' END,
              (SELECT pg_catalog.string_agg(CASE WHEN r OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r)) END, ', ' ORDER BY n)
               FROM pg_catalog.unnest(p.polroles) WITH ORDINALITY u(r, n)),
              CASE WHEN p.polqual IS NOT NULL THEN ' USING (' OPERATOR(pg_catalog.||) pg_catalog.pg_get_expr(p.polqual, p.polrelid) OPERATOR(pg_catalog.||) ')' ELSE '' END,
              CASE WHEN p.polwithcheck IS NOT NULL THEN ' WITH CHECK (' OPERATOR(pg_catalog.||) pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) OPERATOR(pg_catalog.||) ')' ELSE '' END),
       false, NULL::pg_catalog.oid, c.relowner
FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid WHERE p.polrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4)"#.into());

    q.push(r#"
SELECT 8, NULL, c.oid::pg_catalog.int8, NULL,
       pg_catalog.concat_ws('; ', CASE WHEN c.relrowsecurity THEN pg_catalog.format('ALTER TABLE ONLY %I.%I ENABLE ROW LEVEL SECURITY', $2, c.relname) END,
                       CASE WHEN c.relforcerowsecurity THEN pg_catalog.format('ALTER TABLE ONLY %I.%I FORCE ROW LEVEL SECURITY', $2, c.relname) END),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND (c.relrowsecurity OR c.relforcerowsecurity)"#.into());

    q.push(r#"
SELECT 9, NULL, s.oid::pg_catalog.int8, 'statistics',
       pg_catalog.pg_get_statisticsobjdef(s.oid) OPERATOR(pg_catalog.||) CASE WHEN s.stxstattarget OPERATOR(pg_catalog.>=) 0
           THEN pg_catalog.format('; ALTER STATISTICS %I.%I SET STATISTICS %s', $2, s.stxname, s.stxstattarget) ELSE '' END,
       false, NULL::pg_catalog.oid, s.stxowner
FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace OPERATOR(pg_catalog.=) $1"#.into());

    // Comments, owners and privileges of everything above, through one list of objects.
    q.push(format!(r#"
WITH objects(classid, objid, ref, kind, owner, acl, grant_kind, owner_follows, node) AS ({OBJECTS})
SELECT 10, NULL, d.objoid::pg_catalog.int8, 'comment',
       CASE WHEN d.objsubid OPERATOR(pg_catalog.=) 0 THEN pg_catalog.format('COMMENT ON %s %s IS %L', o.kind, o.ref, d.description)
            ELSE pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', o.ref, (SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid OPERATOR(pg_catalog.=) d.objoid AND attnum OPERATOR(pg_catalog.=) d.objsubid), d.description) END,
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_description d JOIN objects o ON o.classid OPERATOR(pg_catalog.=) d.classoid AND o.objid OPERATOR(pg_catalog.=) d.objoid
UNION ALL
SELECT 11, o.node, o.objid::pg_catalog.int8, NULL, pg_catalog.format('ALTER %s %s OWNER TO %I', o.kind, o.ref, pg_catalog.pg_get_userbyid(o.owner)), false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM objects o WHERE o.owner IS NOT NULL AND NOT o.owner_follows AND o.owner OPERATOR(pg_catalog.<>) current_user::pg_catalog.regrole
UNION ALL
SELECT 12, NULL, o.objid::pg_catalog.int8, 'privilege', s.ddl, false, s.run_as, NULL::pg_catalog.oid
FROM objects o CROSS JOIN LATERAL (
    SELECT pg_catalog.format('REVOKE ALL ON %s %s FROM PUBLIC; REVOKE ALL ON %s %s FROM %I', o.grant_kind, o.ref, o.grant_kind, o.ref, pg_catalog.pg_get_userbyid(o.owner)) AS ddl, NULL::pg_catalog.oid AS run_as, 0 AS n
    UNION ALL
    SELECT pg_catalog.format('GRANT %s ON %s %s TO %s%s', pg_catalog.string_agg(x.privilege_type, ', '), o.grant_kind, o.ref,
                  CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END,
                  CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
           CASE WHEN x.grantor OPERATOR(pg_catalog.<>) o.owner THEN x.grantor END, pg_catalog.min(x.n)
    FROM pg_catalog.aclexplode(o.acl) WITH ORDINALITY x(grantor, grantee, privilege_type, is_grantable, n)
    GROUP BY x.grantor, x.grantee, x.is_grantable
    ORDER BY 3
) s WHERE o.acl IS NOT NULL
UNION ALL
SELECT 12, NULL, c.oid::pg_catalog.int8, 'privilege',
       pg_catalog.format('GRANT %s (%I) ON TABLE %I.%I TO %s%s', pg_catalog.string_agg(x.privilege_type, ', '), a.attname, $2, c.relname,
              CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END,
              CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
       false, CASE WHEN x.grantor OPERATOR(pg_catalog.<>) c.relowner THEN x.grantor END, NULL::pg_catalog.oid
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x
WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND a.attacl IS NOT NULL AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
GROUP BY c.oid, c.relname, c.relowner, a.attnum, a.attname, x.grantor, x.grantee, x.is_grantable
"#, OBJECTS = OBJECTS));

    q.push(r#"
SELECT 14, NULL, d.oid::pg_catalog.int8, 'privilege',
       pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT %s ON %s TO %s%s', pg_catalog.pg_get_userbyid(d.defaclrole), $2,
              pg_catalog.string_agg(x.privilege_type, ', '),
              CASE WHEN d.defaclobjtype OPERATOR(pg_catalog.=) 'r' THEN 'TABLES' WHEN d.defaclobjtype OPERATOR(pg_catalog.=) 'S' THEN 'SEQUENCES' WHEN d.defaclobjtype OPERATOR(pg_catalog.=) 'f' THEN 'FUNCTIONS' WHEN d.defaclobjtype OPERATOR(pg_catalog.=) 'T' THEN 'TYPES' END,
              CASE WHEN x.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END,
              CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END),
       false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_default_acl d CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) x
WHERE d.defaclnamespace OPERATOR(pg_catalog.=) $1 AND d.defaclobjtype OPERATOR(pg_catalog.=) ANY ('{r,S,f,T}'::pg_catalog."char"[])
GROUP BY d.oid, d.defaclrole, d.defaclobjtype, x.grantee, x.is_grantable"#.into());

    q.push(r#"
SELECT 15, 'rel:' OPERATOR(pg_catalog.||) c.oid, c.oid::pg_catalog.int8, NULL, pg_catalog.format('REFRESH MATERIALIZED VIEW %I.%I', $2, c.relname), false, NULL::pg_catalog.oid, NULL::pg_catalog.oid
FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) 'm' AND c.relispopulated"#.into());
    q
}

/// Every object of the source that can carry a comment, an owner or privileges, with the
/// reference that names its clone: (classid, objid, ref, kind, owner, acl, grant_kind,
/// owner_follows, node). `node` is the key of the definition step the owner follows ('schema'
/// for the schema, which is given its owner first, as pg_dump's restore does).
const OBJECTS: &str = r#"
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid, pg_catalog.quote_ident($2), 'SCHEMA', n.nspowner, n.nspacl, 'SCHEMA', false, 'schema'
    FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) $1
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, pg_catalog.format('%I.%I', $2, c.relname),
           CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'v' THEN 'VIEW' WHEN c.relkind OPERATOR(pg_catalog.=) 'm' THEN 'MATERIALIZED VIEW' WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 'SEQUENCE'
                          WHEN c.relkind OPERATOR(pg_catalog.=) 'i' THEN 'INDEX' WHEN c.relkind OPERATOR(pg_catalog.=) 'I' THEN 'INDEX' ELSE 'TABLE' END,
           c.relowner, c.relacl, CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
           -- Indexes and identity sequences take their table's owner with it. (A sequence owned by
           -- a column is created on its own, and given its owner before OWNED BY links it.)
           c.relkind OPERATOR(pg_catalog.=) ANY ('{i,I}'::pg_catalog."char"[]) OR (c.relkind OPERATOR(pg_catalog.=) 'S' AND EXISTS (
               SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) c.oid
               AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype OPERATOR(pg_catalog.=) 'i')),
           'rel:' OPERATOR(pg_catalog.||) c.oid
    FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,m,S,i,I}'::pg_catalog."char"[])
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, pg_catalog.format('%I.%I', $2, c.relname), 'TYPE', NULL, NULL, NULL, false, NULL
    FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ANY($4) AND c.relkind OPERATOR(pg_catalog.=) 'c'
    UNION ALL
    SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, pg_catalog.format('%I.%I', $2, t.typname), CASE WHEN t.typtype OPERATOR(pg_catalog.=) 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
           t.typowner, t.typacl, 'TYPE', false, 'type:' OPERATOR(pg_catalog.||) t.oid
    FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) t.typrelid
    WHERE t.oid OPERATOR(pg_catalog.=) ANY($5) AND t.typtype OPERATOR(pg_catalog.=) ANY ('{e,d,r,c}'::pg_catalog."char"[]) AND (t.typtype OPERATOR(pg_catalog.<>) 'c' OR r.relkind OPERATOR(pg_catalog.=) 'c')
    UNION ALL
    SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, pg_catalog.format('%I.%I(%s)', $2, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)),
           CASE WHEN p.prokind OPERATOR(pg_catalog.=) 'a' THEN 'AGGREGATE' WHEN p.prokind OPERATOR(pg_catalog.=) 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
           p.proowner, p.proacl, CASE WHEN p.prokind OPERATOR(pg_catalog.=) 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, false,
           'func:' OPERATOR(pg_catalog.||) p.oid
    FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) ANY($6)
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) ANY ('{i,e}'::pg_catalog."char"[]))
    UNION ALL
    SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, c.oid, pg_catalog.format('%I.%I', $2, c.collname), 'COLLATION', c.collowner, NULL, NULL, false, 'coll:' OPERATOR(pg_catalog.||) c.oid
    FROM pg_catalog.pg_collation c WHERE c.collnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL
    SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, s.oid, pg_catalog.format('%I.%I', $2, s.stxname), 'STATISTICS', s.stxowner, NULL, NULL, false, NULL
    FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace OPERATOR(pg_catalog.=) $1
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid,
           CASE WHEN k.contypid OPERATOR(pg_catalog.<>) 0 THEN pg_catalog.format('%I ON DOMAIN %I.%I', k.conname, $2, t.typname)
                ELSE pg_catalog.format('%I ON %I.%I', k.conname, $2, c.relname) END, 'CONSTRAINT', NULL, NULL, NULL, false, NULL
    FROM pg_catalog.pg_constraint k LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) k.conrelid LEFT JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) k.contypid
    WHERE (k.conrelid OPERATOR(pg_catalog.=) ANY($4) OR k.contypid OPERATOR(pg_catalog.=) ANY($5))
    UNION ALL
    SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, g.oid, pg_catalog.format('%I ON %I.%I', g.tgname, $2, c.relname), 'TRIGGER', NULL, NULL, NULL, false, NULL
    FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid WHERE g.tgrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND NOT g.tgisinternal
    UNION ALL
    SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, pg_catalog.format('%I ON %I.%I', p.polname, $2, c.relname), 'POLICY', NULL, NULL, NULL, false, NULL
    FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.polrelid WHERE p.polrelid OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4)
    UNION ALL
    SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, w.oid, pg_catalog.format('%I ON %I.%I', w.rulename, $2, c.relname), 'RULE', NULL, NULL, NULL, false, NULL
    FROM pg_catalog.pg_rewrite w JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) w.ev_class WHERE w.ev_class OPERATOR(pg_catalog.=) ANY($4) AND c.oid OPERATOR(pg_catalog.=) ANY($4) AND w.rulename OPERATOR(pg_catalog.<>) '_RETURN'
"#;

/// SQL appended to a trigger's or rule's definition: the statement that gives the copy the
/// source's enable state (`state`: D disabled, R replica, A always, O as created).
fn enable_state(state: &str, kind: &str, name: &str) -> String {
    let alter = |verb: &str| {
        format!("pg_catalog.format('; ALTER TABLE %I.%I {verb} {kind} %I', $2, c.relname, {name})")
    };
    format!(
        "CASE WHEN {state} OPERATOR(pg_catalog.=) 'D' THEN {} \
              WHEN {state} OPERATOR(pg_catalog.=) 'R' THEN {} \
              WHEN {state} OPERATOR(pg_catalog.=) 'A' THEN {} ELSE '' END",
        alter("DISABLE"),
        alter("ENABLE REPLICA"),
        alter("ENABLE ALWAYS")
    )
}
