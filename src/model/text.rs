//! Text that may reference stack variables. `${NAME}` reads variable NAME; `$$` is a
//! literal `$`, and so is a `$` not followed by `{` (so shell snippets read naturally).
//! Renderers decide how a reference becomes target syntax; this module only parses.

/// A piece of parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text; any `$` in it is a real dollar sign.
    Text(String),
    /// A reference to the stack variable of that name.
    Var(String),
}

/// Splits `text` into literal pieces and variable references.
///
/// # Errors
/// An unterminated `${`, or a reference that is not a plain variable name (compose
/// modifiers like `${A:-x}` are not allowed: defaults belong in the variable's declaration).
pub fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            literal.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .ok_or_else(|| format!("unterminated `${{` in {text:?}"))?;
            let name = &inner[..end];
            if !is_variable_name(name) {
                return Err(format!(
                    "`${{{name}}}` is not a variable reference; write `${{NAME}}` and declare NAME (with its default) in `variables`"
                ));
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Var(name.to_string()));
            rest = &inner[end + 1..];
        } else {
            literal.push('$');
            rest = after;
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// The variables `text` references, in order; empty when it does not parse.
pub fn references(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Var(name) => Some(name),
            Piece::Text(_) => None,
        })
        .collect()
}

pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::{Piece, parse};

    fn check(input: &str, expect: &[Piece]) {
        assert_eq!(parse(input).as_deref(), Ok(expect), "parsing {input:?}");
    }

    fn text(s: &str) -> Piece {
        Piece::Text(s.to_string())
    }

    fn var(s: &str) -> Piece {
        Piece::Var(s.to_string())
    }

    #[test]
    fn references_and_dollars() {
        check("plain", &[text("plain")]);
        check(
            "postgres://u:${PW}@db/app",
            &[text("postgres://u:"), var("PW"), text("@db/app")],
        );
        check("${A}${B}", &[var("A"), var("B")]);
        check("cost $$5", &[text("cost $5")]);
        check("echo $HOME", &[text("echo $HOME")]);
        check("end$", &[text("end$")]);
    }

    #[test]
    fn rejects_modifiers_and_unterminated() {
        assert!(parse("${A:-x}").unwrap_err().contains("declare NAME"));
        assert!(parse("${A").unwrap_err().contains("unterminated"));
        assert!(parse("${}").is_err());
    }
}
