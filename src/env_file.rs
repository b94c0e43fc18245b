//! Env files as Compose reads them: `KEY=value` lines, `#` comments, optional `export `,
//! single-quoted values taken literally, double-quoted ones with `\n`-style escapes, and
//! unquoted values up to an inline ` #` comment (spaces inside are kept: `OS=Oracle Linux`).
//! Unquoted and double-quoted values may read variables defined above them (`${A}`,
//! `${A:-default}`); one this file does not define reads as empty.

use std::collections::BTreeMap;

/// Parses an env file.
///
/// # Errors
/// A line that is not `KEY=value` (with its 1-based number), or an unterminated quote.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut values = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, raw)) = line.split_once('=') else {
            // A bare name: Compose looks it up in its own environment; nothing to read here.
            continue;
        };
        let key = key.trim();
        if !crate::model::text::is_variable_name(key) && !key.contains('.') {
            return Err((number, format!("`{key}` is not a variable name")));
        }
        let raw = raw.trim_start();
        let value = if let Some(rest) = raw.strip_prefix('\'') {
            quoted(rest, '\'', number, &mut lines)?
        } else if let Some(rest) = raw.strip_prefix('"') {
            expand(&unescape(&quoted(rest, '"', number, &mut lines)?), &values)
        } else {
            let end = raw.find(" #").unwrap_or(raw.len());
            expand(raw[..end].trim_end(), &values)
        };
        values.insert(key.to_string(), value);
    }
    Ok(values)
}

/// The text up to the closing quote, which may be on a later line.
fn quoted<'a>(
    first: &str,
    quote: char,
    number: usize,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<String, (usize, String)> {
    let mut text = String::new();
    let mut current = first.to_string();
    loop {
        let mut escaped = false;
        for (at, c) in current.char_indices() {
            if c == quote && !escaped {
                text.push_str(&current[..at]);
                return Ok(text);
            }
            escaped = quote == '"' && c == '\\' && !escaped;
        }
        text.push_str(&current);
        text.push('\n');
        match lines.next() {
            Some((_, next)) => current = next.to_string(),
            None => return Err((number, format!("unterminated {quote}-quoted value"))),
        }
    }
}

fn expand(value: &str, defined: &BTreeMap<String, String>) -> String {
    crate::import::interpolation::resolve(value, defined).unwrap_or_else(|_| value.to_string())
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn compose_env_file_forms() {
        let env = parse(
            "# c\nA=1\nexport B = two words # note\nC='lit $X # no'\nD=\"a\\nb\"\nE=\nF\nG=\"multi\nline\"\n",
        )
        .expect("parses");
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "two words");
        assert_eq!(env["C"], "lit $X # no");
        assert_eq!(env["D"], "a\nb");
        assert_eq!(env["E"], "");
        assert!(!env.contains_key("F"));
        assert_eq!(env["G"], "multi\nline");
        assert_eq!(
            parse("A='open\n"),
            Err((1, "unterminated '-quoted value".into()))
        );
    }
}
