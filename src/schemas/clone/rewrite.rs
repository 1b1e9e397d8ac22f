//! Rewrites references to the source schema (`src.name`, `"Src".name`) into the target's.
//!
//! PostgreSQL's deparsers print most of the source's names unqualified (see `catalog.rs`); what
//! is left is qualified names: function headers, names shadowed by pg_catalog, and whatever a
//! function body or a string cast to a reg* type spells out. This is a small SQL lexer, not a
//! text replace: it knows identifiers, quoted identifiers, string literals and comments, so
//! `srcx.t`, `x.src.t` and `'src.t'` in an ordinary literal are left alone.

use std::collections::HashSet;

use pgrx::spi::quote_identifier;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Deparsed DDL: string literals are data, except one cast to a reg* type (`'src.seq'::regclass`).
    Code,
    /// Function bodies: also inside string literals (dynamic SQL names tables in strings).
    Everywhere,
}

pub struct Rewriter {
    /// The source schema as an unquoted identifier matches it (lowercase), if it can be one.
    bare: Option<String>,
    /// The source schema as a quoted identifier: `"Src"`.
    quoted: String,
    target: String,
    /// Names of the source's objects: `src.x` is a reference to the schema only when `x` is one
    /// (with a table named like its schema, `src.col` is a column reference).
    names: HashSet<String>,
}

impl Rewriter {
    pub fn new(source: &str, target: &str, names: HashSet<String>) -> Self {
        let ident = quote_identifier(source);
        Rewriter {
            bare: (ident == source).then(|| source.to_string()),
            quoted: format!("\"{}\"", source.replace('"', "\"\"")),
            target: quote_identifier(target),
            names,
        }
    }

    pub fn rewrite(&self, sql: &str, scope: Scope) -> String {
        self.scan(&sql.chars().collect::<Vec<_>>(), scope, false)
    }

    /// `in_literal`: the text is the inside of a string literal, so a target name with a quote
    /// must double it.
    fn scan(&self, s: &[char], scope: Scope, in_literal: bool) -> String {
        let mut out = String::with_capacity(s.len() + 16);
        let mut i = 0;
        let mut prev_significant: Option<char> = None;
        while i < s.len() {
            let c = s[i];
            if c == '-' && s.get(i + 1) == Some(&'-') {
                let end = s[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(s.len(), |p| i + p);
                out.extend(&s[i..end]);
                i = end;
                continue;
            }
            if c == '/' && s.get(i + 1) == Some(&'*') {
                let end = find(s, i + 2, &['*', '/']).map_or(s.len(), |p| p + 2);
                out.extend(&s[i..end]);
                i = end;
                continue;
            }
            if c == '\'' && !in_literal {
                let escapes = i > 0 && matches!(s[i - 1], 'E' | 'e');
                let end = literal_end(s, i + 1, escapes);
                let inner = &s[i + 1..end.min(s.len())];
                let after = &s[(end + 1).min(s.len())..];
                let cast_to_reg = starts_with_cast(after, "::reg");
                let content = inner.iter().collect::<String>().replace("''", "'");
                let names_schema =
                    content == self.quoted || self.bare.as_deref() == Some(content.as_str());
                if names_schema && starts_with_cast(after, "::regnamespace") {
                    // '"Src"'::regnamespace is the schema itself.
                    out.push_str(&pgrx::spi::quote_literal(&self.target));
                    i = end + 1;
                    prev_significant = Some('\'');
                    continue;
                }
                out.push('\'');
                if scope == Scope::Everywhere || cast_to_reg {
                    out.push_str(&self.scan(inner, scope, true));
                } else {
                    out.extend(inner);
                }
                if end < s.len() {
                    out.push('\'');
                }
                i = end + 1;
                prev_significant = Some('\'');
                continue;
            }
            if c == '"' {
                let end = quoted_end(s, i + 1);
                let token: String = s[i..(end + 1).min(s.len())].iter().collect();
                i = end + 1;
                self.emit_identifier(
                    &mut out,
                    &token,
                    token == self.quoted,
                    prev_significant,
                    s,
                    i,
                    in_literal,
                );
                prev_significant = Some('"');
                continue;
            }
            if c.is_alphabetic() || c == '_' || !c.is_ascii() {
                let start = i;
                while i < s.len()
                    && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '$' || !s[i].is_ascii())
                {
                    i += 1;
                }
                let token: String = s[start..i].iter().collect();
                let matches = self
                    .bare
                    .as_deref()
                    .is_some_and(|b| token.to_ascii_lowercase() == b);
                self.emit_identifier(
                    &mut out,
                    &token,
                    matches,
                    prev_significant,
                    s,
                    i,
                    in_literal,
                );
                prev_significant = Some('a');
                continue;
            }
            if c.is_ascii_digit() || c == '$' {
                // Numbers and $n parameters / dollar quotes: never a schema name.
                let start = i;
                i += 1;
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == '_') {
                    i += 1;
                }
                out.extend(&s[start..i]);
                prev_significant = Some('0');
                continue;
            }
            out.push(c);
            if !c.is_whitespace() {
                prev_significant = Some(c);
            }
            i += 1;
        }
        out
    }

    /// Writes `token`, or the target in its place when it names the source schema: it is
    /// followed by a `.` and not itself preceded by one.
    #[allow(clippy::too_many_arguments)]
    fn emit_identifier(
        &self,
        out: &mut String,
        token: &str,
        matches: bool,
        prev: Option<char>,
        s: &[char],
        next: usize,
        in_literal: bool,
    ) {
        if matches && prev != Some('.') && self.names_source_object(s, next) {
            if in_literal {
                out.push_str(&self.target.replace('\'', "''"));
            } else {
                out.push_str(&self.target);
            }
        } else {
            out.push_str(token);
        }
    }
}

fn find(s: &[char], from: usize, pat: &[char]) -> Option<usize> {
    (from..s.len().saturating_sub(pat.len() - 1)).find(|&i| s[i..i + pat.len()] == *pat)
}

/// Index of the quote closing a literal opened before `from` ('' is an escaped quote).
fn literal_end(s: &[char], from: usize, backslash_escapes: bool) -> usize {
    let mut i = from;
    while i < s.len() {
        match s[i] {
            '\\' if backslash_escapes => i += 2,
            '\'' if s.get(i + 1) == Some(&'\'') => i += 2,
            '\'' => return i,
            _ => i += 1,
        }
    }
    s.len()
}

fn quoted_end(s: &[char], from: usize) -> usize {
    let mut i = from;
    while i < s.len() {
        if s[i] == '"' {
            if s.get(i + 1) == Some(&'"') {
                i += 2;
                continue;
            }
            return i;
        }
        i += 1;
    }
    s.len()
}

fn starts_with_cast(s: &[char], cast: &str) -> bool {
    let rest: String = s
        .iter()
        .take(cast.len())
        .collect::<String>()
        .to_ascii_lowercase();
    rest == cast
}

impl Rewriter {
    /// Whether `s[next..]` is `.name` with `name` one of the source's objects.
    fn names_source_object(&self, s: &[char], next: usize) -> bool {
        let skip_space = |mut i: usize| {
            while i < s.len() && s[i].is_whitespace() {
                i += 1;
            }
            i
        };
        let mut i = skip_space(next);
        if s.get(i) != Some(&'.') {
            return false;
        }
        i = skip_space(i + 1);
        let name = if s.get(i) == Some(&'"') {
            let end = quoted_end(s, i + 1);
            s[i + 1..end.min(s.len())]
                .iter()
                .collect::<String>()
                .replace("\"\"", "\"")
        } else {
            let start = i;
            while i < s.len()
                && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '$' || !s[i].is_ascii())
            {
                i += 1;
            }
            s[start..i].iter().collect::<String>().to_ascii_lowercase()
        };
        self.names.contains(&name)
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    #[pg_test]
    fn rewrites_only_qualified_references_to_the_source() {
        let names = ["film", "actor", "s", "t"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let r = Rewriter::new("pagila", "tenant_acme", names);
        assert_eq!(
            r.rewrite(
                "SELECT * FROM pagila.film f JOIN \"pagila\".actor a ON true",
                Scope::Code
            ),
            "SELECT * FROM tenant_acme.film f JOIN tenant_acme.actor a ON true"
        );
        assert_eq!(
            r.rewrite("SELECT pagila_x.f, x.pagila.y, pagila FROM t", Scope::Code),
            "SELECT pagila_x.f, x.pagila.y, pagila FROM t"
        );
        assert_eq!(
            r.rewrite(
                "SELECT 'pagila.film', nextval('pagila.s'::regclass) -- pagila.x",
                Scope::Code
            ),
            "SELECT 'pagila.film', nextval('tenant_acme.s'::regclass) -- pagila.x"
        );
        assert_eq!(
            r.rewrite("EXECUTE 'SELECT 1 FROM pagila.t'", Scope::Everywhere),
            "EXECUTE 'SELECT 1 FROM tenant_acme.t'"
        );
        // A column qualified by a table (or alias) named like the schema stays.
        assert_eq!(
            r.rewrite("SELECT pagila.id FROM pagila.film pagila", Scope::Code),
            "SELECT pagila.id FROM tenant_acme.film pagila"
        );
        assert_eq!(
            r.rewrite("WHERE n = 'pagila'::regnamespace", Scope::Code),
            "WHERE n = 'tenant_acme'::regnamespace"
        );
    }

    #[pg_test]
    fn quotes_names_that_need_it() {
        let r = Rewriter::new(
            "My Src",
            "it's \"new\"",
            ["t".to_string()].into_iter().collect(),
        );
        assert_eq!(
            r.rewrite("SELECT \"My Src\".t, 'x \"My Src\".t'", Scope::Everywhere),
            "SELECT \"it's \"\"new\"\"\".t, 'x \"it''s \"\"new\"\"\".t'"
        );
    }
}
