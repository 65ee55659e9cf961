//! The T-SQL tokenizer: bare, `[bracketed]` and `"quoted"` identifiers, `'..'` and `N'..'`
//! strings, numbers, `@variables`, `@@functions`, punctuation; `--` and nested `/* */` comments
//! are skipped. Every token keeps its byte range and line so statements can be sliced out of the
//! batch text and errors can name their line.

use super::errors::{SqlError, syntax};

/// What a token is, with its text.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    /// A bare identifier or keyword (keywords are recognized by the parser, case-insensitively).
    Word(String),
    /// A `[bracketed]` or `"quoted"` identifier: never a keyword.
    Quoted(String),
    /// A string literal; `unicode` is true for `N'..'`.
    Str {
        value: String,
        unicode: bool,
    },
    Number(String),
    /// `@name` (the `@` is kept).
    Var(String),
    /// `@@NAME` (the `@@` is kept).
    Global(String),
    /// Punctuation and operators: `( ) , ; . = * + - / < > ! % ~ & | ^ :`, also `<=`, `>=`, `<>`, `!=`.
    Sym(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
    pub line: i32,
}

impl Token {
    /// True when this is the bare keyword `kw` (case-insensitive).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.kind, TokenKind::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    pub fn is_sym(&self, s: &str) -> bool {
        matches!(&self.kind, TokenKind::Sym(x) if x == s)
    }

    /// The identifier this token names, bare or quoted.
    pub fn ident(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Word(w) | TokenKind::Quoted(w) => Some(w),
            _ => None,
        }
    }

    /// The text SQL Server quotes in "Incorrect syntax near '...'".
    pub fn display(&self) -> String {
        match &self.kind {
            TokenKind::Word(w)
            | TokenKind::Quoted(w)
            | TokenKind::Number(w)
            | TokenKind::Var(w)
            | TokenKind::Global(w) => w.clone(),
            TokenKind::Str { value, .. } => value.clone(),
            TokenKind::Sym(s) => s.clone(),
        }
    }
}

/// The tokens of texts seen before: re-scanning them was a tenth of an observation's CPU.
static TOKENIZED: super::memo::Memo<std::sync::Arc<[Token]>> = super::memo::Memo::new();

/// [`tokenize`], remembering the tokens of each text (errors are not remembered).
pub fn tokenize_cached(sql: &str) -> Result<std::sync::Arc<[Token]>, SqlError> {
    if let Some(toks) = TOKENIZED.get(sql) {
        return Ok(toks);
    }
    let toks: std::sync::Arc<[Token]> = tokenize(sql)?.into();
    TOKENIZED.insert(sql.to_string(), toks.clone());
    Ok(toks)
}

/// Split `sql` into tokens. An unterminated string, identifier or comment is error 105/102.
///
/// One loop over the bytes with a branch per kind of token: each branch scans its token to
/// its end, and they share the position and line counters, which splitting would pass around.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, SqlError> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut line = 1i32;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            // T-SQL block comments nest.
            let mut depth = 0;
            loop {
                if i >= bytes.len() {
                    return Err(SqlError::new(113, "Missing end comment mark '*/'.").with_class(15));
                }
                if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            continue;
        }
        let start = i;
        let start_line = line;
        let kind = if (c == b'N' || c == b'n') && bytes.get(i + 1) == Some(&b'\'') {
            i += 1;
            let (value, next, lines) = read_quoted(sql, i, b'\'')?;
            i = next;
            line += lines;
            TokenKind::Str {
                value,
                unicode: true,
            }
        } else if c == b'\'' {
            let (value, next, lines) = read_quoted(sql, i, b'\'')?;
            i = next;
            line += lines;
            TokenKind::Str {
                value,
                unicode: false,
            }
        } else if c == b'[' {
            let (value, next, lines) = read_quoted(sql, i, b']')?;
            i = next;
            line += lines;
            TokenKind::Quoted(value)
        } else if c == b'"' {
            let (value, next, lines) = read_quoted(sql, i, b'"')?;
            i = next;
            line += lines;
            TokenKind::Quoted(value)
        } else if c == b'@' {
            let global = bytes.get(i + 1) == Some(&b'@');
            i += if global { 2 } else { 1 };
            while i < bytes.len() && is_ident_byte(bytes[i]) {
                i += 1;
            }
            let text = sql[start..i].to_string();
            if global {
                TokenKind::Global(text)
            } else {
                TokenKind::Var(text)
            }
        } else if c.is_ascii_digit()
            || (c == b'.' && bytes.get(i + 1).is_some_and(|b| b.is_ascii_digit()))
        {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            TokenKind::Number(sql[start..i].to_string())
        } else if is_ident_start(c) {
            while i < bytes.len() && is_ident_byte(bytes[i]) {
                i += 1;
            }
            TokenKind::Word(sql[start..i].to_string())
        } else {
            let two = sql.get(i..i + 2).unwrap_or("");
            if matches!(two, "<=" | ">=" | "<>" | "!=" | "::") {
                i += 2;
                TokenKind::Sym(two.to_string())
            } else if "(),;.=*+-/<>!%~&|^:".contains(c as char) {
                i += 1;
                TokenKind::Sym((c as char).to_string())
            } else {
                let ch = sql[i..].chars().next().unwrap_or('?');
                return Err(syntax(&ch.to_string()));
            }
        };
        out.push(Token {
            kind,
            start,
            end: i,
            line: start_line,
        });
    }
    Ok(out)
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'#' || c >= 0x80
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'#' || c == b'$' || c >= 0x80
}

/// Read a quoted run starting at `open` (the opening quote); a doubled closing quote is an
/// escaped quote. Returns (value, index after the closing quote, newlines inside).
fn read_quoted(sql: &str, open: usize, close: u8) -> Result<(String, usize, i32), SqlError> {
    let bytes = sql.as_bytes();
    let mut i = open + 1;
    let mut value = String::new();
    let mut seg = i;
    let mut lines = 0;
    loop {
        if i >= bytes.len() {
            let what = format!(
                "Unclosed quotation mark after the character string '{}'.",
                &sql[open + 1..]
            );
            return Err(SqlError::new(105, what).with_class(15));
        }
        if bytes[i] == close {
            if bytes.get(i + 1) == Some(&close) {
                value.push_str(&sql[seg..=i]);
                i += 2;
                seg = i;
                continue;
            }
            value.push_str(&sql[seg..i]);
            return Ok((value, i + 1, lines));
        }
        if bytes[i] == b'\n' {
            lines += 1;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_reads_unicode_strings_brackets_and_skips_nested_comments() {
        let toks =
            tokenize("/* a /* b */ c */ BACKUP [mgc]] x] -- hi\n TO DISK = N'it''s'").unwrap();
        assert!(toks[0].is_kw("backup"));
        assert_eq!(toks[1].kind, TokenKind::Quoted("mgc] x".into()));
        assert_eq!(toks[2].line, 2);
        assert_eq!(
            toks[5].kind,
            TokenKind::Str {
                value: "it's".into(),
                unicode: true
            }
        );
    }

    #[test]
    fn tokenizer_rejects_an_unclosed_string_with_105() {
        assert_eq!(tokenize("SELECT 'abc").unwrap_err().number, 105);
    }
}
