//! T-SQL literal and identifier quoting. Every name and path the operator puts into statement
//! text goes through here, so a hostile database name or share path cannot change a statement's
//! meaning. Values go through `sp_executesql` parameters wherever T-SQL allows them; these are for
//! the places it does not (identifiers, `BACKUP ... TO DISK =` in DDL, `KILL`).

/// A bracket-quoted identifier: `[name]` with every `]` doubled.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('[');
    for c in name.chars() {
        if c == ']' {
            out.push(']');
        }
        out.push(c);
    }
    out.push(']');
    out
}

/// A Unicode string literal: `N'text'` with every `'` doubled.
pub fn nstring(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("N'");
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_is_bracketed() {
        assert_eq!(ident("mgc"), "[mgc]");
    }

    #[test]
    fn closing_bracket_in_identifier_is_doubled() {
        assert_eq!(ident("a]b"), "[a]]b]");
        assert_eq!(ident("]; DROP DATABASE [x"), "[]]; DROP DATABASE [x]");
    }

    #[test]
    fn opening_bracket_in_identifier_is_left_alone() {
        assert_eq!(ident("[x"), "[[x]");
    }

    #[test]
    fn quote_in_string_literal_is_doubled() {
        assert_eq!(
            nstring(r"\\fs\share\o'brien.trn"),
            r"N'\\fs\share\o''brien.trn'"
        );
        assert_eq!(nstring("'; KILL 1; --"), "N'''; KILL 1; --'");
    }

    #[test]
    fn unicode_survives_string_quoting() {
        assert_eq!(nstring("채팅"), "N'채팅'");
    }

    #[test]
    fn quoted_text_has_no_unbalanced_delimiters() {
        // Whatever the input, the quoted form must be one token: an even number of quotes
        // inside N'...', and every `]` inside [...] doubled.
        for s in ["", "'", "''", "]", "]]", "a'b]c", "\u{0}", "x\n]'\r"] {
            let q = nstring(s);
            let inner = &q[2..q.len() - 1];
            assert_eq!(inner.matches('\'').count() % 2, 0, "{q}");
            assert_eq!(inner.replace("''", ""), s.replace('\'', ""));
            let b = ident(s);
            let inner = &b[1..b.len() - 1];
            assert_eq!(inner.replace("]]", ""), s.replace(']', ""));
        }
    }
}
