//! Text that may reference stack variables, parsed once when the model is built. `${NAME}`
//! reads variable NAME; `${NAME:+text}` is `text` when NAME is set and not empty, else
//! nothing (Compose's alternative value; `text` is literal, without `$` or `}`); `$$` is a
//! literal `$`, and so is a `$` not followed by `{` (so shell snippets read naturally). Every model field that may carry a reference has the
//! type [`Text`]; backends turn its pieces into their own syntax and never parse text.

use serde::Deserialize;

/// A piece of parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text; any `$` in it is a real dollar sign.
    Text(String),
    /// A reference to the stack variable of that name.
    Var(String),
    /// `${NAME:+alternative}`: the alternative when the variable is set and not empty.
    IfSet { name: String, alternative: String },
}

/// Text with its variable references resolved into pieces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    written: String,
    pieces: Vec<Piece>,
}

/// Every message of a malformed reference starts so; the model tells such an error (the
/// user's text) from a schema/model mismatch by it.
pub const REFERENCE_ERROR: &str = "malformed variable reference: ";

impl Text {
    /// Parses text written in a module.
    ///
    /// # Errors
    /// An unterminated `${`, or a reference that is neither a variable name nor
    /// `${NAME:+text}` (other compose modifiers like `${A:-x}` are not allowed: defaults
    /// belong in the variable's declaration).
    pub fn parse(text: &str) -> Result<Text, String> {
        parse(text).map(|pieces| Text {
            written: text.to_string(),
            pieces,
        })
    }

    /// Text without references, whatever `$` it holds.
    pub fn literal(text: &str) -> Text {
        let pieces = if text.is_empty() {
            Vec::new()
        } else {
            vec![Piece::Text(text.to_string())]
        };
        Text {
            written: text.replace('$', "$$"),
            pieces,
        }
    }

    /// The text as the module wrote it, for messages and for fields used as keys.
    pub fn written(&self) -> &str {
        &self.written
    }

    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The variables referenced, in order of appearance (repeats included).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Var(name) | Piece::IfSet { name, .. } => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Whether the text holds a `${NAME:+text}`, which some backends decide when they
    /// build (see `render::fidelity`).
    pub fn has_alternative(&self) -> bool {
        self.pieces
            .iter()
            .any(|piece| matches!(piece, Piece::IfSet { .. }))
    }

    /// The text itself when it references no variable.
    pub fn as_literal(&self) -> Option<String> {
        self.variables()
            .next()
            .is_none()
            .then(|| self.render(str::to_string, |_| String::new(), |_, _| String::new()))
    }

    /// The one variable the text consists of, for `"${HTTP_PORT}"`.
    pub fn sole_variable(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Var(name)] => Some(name),
            _ => None,
        }
    }

    /// The text in a target's syntax: each literal piece through `literal`, each
    /// reference through `variable`, each `${NAME:+text}` through `if_set(NAME, text)`.
    pub fn render(
        &self,
        literal: impl Fn(&str) -> String,
        variable: impl Fn(&str) -> String,
        if_set: impl Fn(&str, &str) -> String,
    ) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => literal(text),
                Piece::Var(name) => variable(name),
                Piece::IfSet { name, alternative } => if_set(name, alternative),
            })
            .collect()
    }

    /// The text as a module writes it: `$$` for every literal `$`, `${NAME}` for references.
    pub fn source(&self) -> String {
        self.render(
            |text| text.replace('$', "$$"),
            |name| format!("${{{name}}}"),
            |name, alternative| format!("${{{name}:+{alternative}}}"),
        )
    }

    /// The text with every reference replaced by `value(name)`; `None` as soon as one
    /// has no value.
    pub fn resolve<'a>(&self, value: impl Fn(&str) -> Option<&'a str>) -> Option<String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Var(name) => out.push_str(value(name)?),
                Piece::IfSet { name, alternative } => {
                    if !value(name)?.is_empty() {
                        out.push_str(alternative);
                    }
                }
            }
        }
        Some(out)
    }
}

/// As the module wrote it, for messages and notes.
impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written)
    }
}

impl<'de> Deserialize<'de> for Text {
    /// A string, number or boolean (environment values may be written as any of them; the
    /// contracts decide which fields allow which).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(deserializer)?;
        let written = match raw {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "expected a string, number or boolean, got {other}"
                )));
            }
        };
        Text::parse(&written).map_err(serde::de::Error::custom)
    }
}

/// Splits `text` into literal pieces and variable references.
fn parse(text: &str) -> Result<Vec<Piece>, String> {
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
                .ok_or_else(|| format!("{REFERENCE_ERROR}unterminated `${{` in {text:?}"))?;
            let reference = &inner[..end];
            let piece = match reference.split_once(":+") {
                Some((name, alternative)) if is_variable_name(name) => {
                    if alternative.contains('$') {
                        return Err(format!(
                            "{REFERENCE_ERROR}`${{{reference}}}`: the text after `:+` is literal and holds no `$`"
                        ));
                    }
                    Piece::IfSet {
                        name: name.to_string(),
                        alternative: alternative.to_string(),
                    }
                }
                _ if is_variable_name(reference) => Piece::Var(reference.to_string()),
                _ => {
                    return Err(format!(
                        "{REFERENCE_ERROR}`${{{reference}}}` is not a variable reference; write `${{NAME}}` (or `${{NAME:+text}}`) and declare NAME (with its default) in `variables`"
                    ));
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
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

pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::{Piece, Text};

    fn check(input: &str, expect: &[Piece]) {
        let text = Text::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(text.pieces(), expect, "parsing {input:?}");
        assert_eq!(
            Text::parse(&text.source()).map(|t| t.pieces().to_vec()),
            Ok(expect.to_vec()),
            "source round trip of {input:?}"
        );
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
        check("$${NOT}", &[text("${NOT}")]);
        check("a$${B}", &[text("a${B}")]);
        check("a$$${B}", &[text("a$"), var("B")]);
    }

    #[test]
    fn alternatives_are_literal_text_chosen_by_their_variable() {
        let if_set = |name: &str, alternative: &str| Piece::IfSet {
            name: name.to_string(),
            alternative: alternative.to_string(),
        };
        check(
            "-v${DEBUG:+ --debug}",
            &[text("-v"), if_set("DEBUG", " --debug")],
        );
        check("${A:+}", &[if_set("A", "")]);
        let text = Text::parse("x${A:+yes}").unwrap();
        assert_eq!(text.variables().collect::<Vec<_>>(), ["A"]);
        assert!(text.has_alternative() && text.as_literal().is_none());
        assert_eq!(text.resolve(|_| Some("1")).as_deref(), Some("xyes"));
        assert_eq!(text.resolve(|_| Some("")).as_deref(), Some("x"));
        assert!(
            Text::parse("${A:+$B}")
                .unwrap_err()
                .contains("holds no `$`")
        );
        assert!(Text::parse("${1A:+x}").is_err());
    }

    #[test]
    fn rejects_modifiers_and_unterminated() {
        assert!(Text::parse("${A:-x}").unwrap_err().contains("declare NAME"));
        assert!(Text::parse("${A").unwrap_err().contains("unterminated"));
        assert!(Text::parse("${}").is_err());
    }

    #[test]
    fn resolves_or_says_none() {
        let text = Text::parse("/srv/${DIR}/x").unwrap();
        assert_eq!(
            text.resolve(|name| (name == "DIR").then_some("app")),
            Some("/srv/app/x".into())
        );
        assert_eq!(text.resolve(|_| None), None);
        assert_eq!(Text::literal("a$b").as_literal(), Some("a$b".into()));
        assert_eq!(text.as_literal(), None);
        assert_eq!(Text::parse("${P}").unwrap().sole_variable(), Some("P"));
    }
}
