//! Compose interpolation (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR:+text}`, `$$`) rewritten as berth text:
//! every reference becomes `${VAR}` (`${VAR:+text}` stays, with VAR empty by default), and
//! what the modifier said (a default, a required message) becomes part of the variable's
//! declaration instead of being repeated at each use.

use crate::model::text::is_variable_name;

/// One use of a variable in a Compose string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub name: String,
    pub default: Option<String>,
    /// `${VAR:?message}`: the message Compose prints when VAR is unset.
    pub required: Option<String>,
    /// `${VAR-default}` (no colon): the default applies only when VAR is unset, not when
    /// it is empty. berth's defaults apply to both.
    pub unset_only: bool,
}

/// A Compose string in berth's text syntax, and the variables it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub text: String,
    pub uses: Vec<Use>,
}

/// Rewrites `input`.
///
/// # Errors
/// What berth cannot express: `${VAR+alternative}` (set but empty counts), an alternative
/// or a default that itself interpolates or holds a `$`, an unterminated `${`, or a
/// reference that is not a variable name.
pub fn translate(input: &str) -> Result<Translated, String> {
    let mut text = String::new();
    let mut uses = Vec::new();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            push_literal_dollar(&mut text, tail);
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end =
                closing_brace(inner).ok_or_else(|| format!("unterminated `${{` in {input:?}"))?;
            let (found, alternative) = braced(&inner[..end])?;
            match alternative {
                Some(alternative) => text.push_str(&format!("${{{}:+{alternative}}}", found.name)),
                None => text.push_str(&format!("${{{}}}", found.name)),
            }
            uses.push(found);
            rest = &inner[end + 1..];
        } else {
            let name_len = after
                .char_indices()
                .find(|(i, c)| {
                    !(c.is_ascii_alphanumeric() || *c == '_') || (*i == 0 && c.is_ascii_digit())
                })
                .map_or(after.len(), |(i, _)| i);
            if name_len == 0 {
                push_literal_dollar(&mut text, after);
                rest = after;
            } else {
                let name = &after[..name_len];
                uses.push(Use {
                    name: name.to_string(),
                    default: None,
                    required: None,
                    unset_only: false,
                });
                text.push_str(&format!("${{{name}}}"));
                rest = &after[name_len..];
            }
        }
    }
    text.push_str(rest);
    Ok(Translated { text, uses })
}

/// The value Compose would give `input` with these variables set (unset ones are empty,
/// as Compose makes them), nested defaults included.
///
/// # Errors
/// Malformed interpolation, or a required variable that is unset.
pub fn resolve(
    input: &str,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end =
                closing_brace(inner).ok_or_else(|| format!("unterminated `${{` in {input:?}"))?;
            let inside = &inner[..end];
            let name_end = inside
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inside.len());
            let (name, modifier) = inside.split_at(name_end);
            let value = env.get(name).map(String::as_str);
            let resolved = if let Some(default) = modifier.strip_prefix(":-") {
                match value {
                    Some(v) if !v.is_empty() => v.to_string(),
                    _ => resolve(default, env)?,
                }
            } else if let Some(default) = modifier.strip_prefix('-') {
                match value {
                    Some(v) => v.to_string(),
                    None => resolve(default, env)?,
                }
            } else if let Some(alternative) = modifier.strip_prefix(":+") {
                match value {
                    Some(v) if !v.is_empty() => resolve(alternative, env)?,
                    _ => String::new(),
                }
            } else if let Some(alternative) = modifier.strip_prefix('+') {
                match value {
                    Some(_) => resolve(alternative, env)?,
                    None => String::new(),
                }
            } else if modifier.starts_with(":?") || modifier.starts_with('?') {
                value
                    .filter(|v| !v.is_empty() || modifier.starts_with('?'))
                    .map(str::to_string)
                    .ok_or_else(|| format!("{name} is required"))?
            } else {
                value.unwrap_or_default().to_string()
            };
            out.push_str(&resolved);
            rest = &inner[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            out.push_str(env.get(&after[..len]).map_or("", String::as_str));
            if len == 0 {
                out.push('$');
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A literal `$` in berth text: bare where it cannot be read as a reference (shell
/// snippets stay readable), `$$` before `{` or `$`.
fn push_literal_dollar(text: &mut String, following: &str) {
    if following.starts_with('{') || following.starts_with('$') {
        text.push_str("$$");
    } else {
        text.push('$');
    }
}

/// Index of the `}` closing a `${`, counting nested `${…}` inside a default.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = inner.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'$' if bytes.get(index + 1) == Some(&b'{') => {
                depth += 1;
                index += 1;
            }
            b'}' if depth == 0 => return Some(index),
            b'}' => depth -= 1,
            _ => {}
        }
        index += 1;
    }
    None
}

/// The variable a `${…}` uses, and its `:+` alternative if it has one.
fn braced(inside: &str) -> Result<(Use, Option<String>), String> {
    let name_end = inside
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inside.len());
    let (name, modifier) = inside.split_at(name_end);
    if !is_variable_name(name) {
        return Err(format!(
            "`${{{inside}}}` does not start with a variable name"
        ));
    }
    let mut found = Use {
        name: name.to_string(),
        default: None,
        required: None,
        unset_only: false,
    };
    let literal = |value: &str| -> Result<String, String> {
        let translated = translate(value)?;
        if translated.uses.is_empty() {
            Ok(value.replace("$$", "$"))
        } else {
            Err(format!(
                "the default of `${{{inside}}}` reads another variable; a berth default is plain text"
            ))
        }
    };
    if modifier.is_empty() {
    } else if let Some(default) = modifier.strip_prefix(":-") {
        found.default = Some(literal(default)?);
    } else if let Some(default) = modifier.strip_prefix('-') {
        found.default = Some(literal(default)?);
        found.unset_only = true;
    } else if let Some(message) = modifier
        .strip_prefix(":?")
        .or_else(|| modifier.strip_prefix('?'))
    {
        found.required = Some(message.to_string());
    } else if let Some(alternative) = modifier.strip_prefix(":+") {
        if alternative.contains('$') {
            return Err(format!(
                "the alternative of `${{{inside}}}` holds a `$`; berth's `${{NAME:+text}}` takes plain text"
            ));
        }
        // Unset is empty, as Compose reads it: the variable is declared with "".
        found.default = Some(String::new());
        return Ok((found, Some(alternative.to_string())));
    } else if modifier.starts_with('+') {
        return Err(format!(
            "`${{{inside}}}` substitutes a value when {name} is set, even empty; berth has only `${{{name}:+text}}` (set and not empty)"
        ));
    } else {
        return Err(format!("`${{{inside}}}` is not a Compose interpolation"));
    }
    Ok((found, None))
}

#[cfg(test)]
mod tests {
    use super::{Use, translate};

    fn uses(input: &str) -> Vec<Use> {
        translate(input).expect("translates").uses
    }

    #[test]
    fn rewrites_every_form_to_a_plain_reference() {
        let t = translate("a ${A} $B ${C:-x y} ${D-} ${E:?need E} $$F $$ {G} cost 5$").expect("ok");
        assert_eq!(t.text, "a ${A} ${B} ${C} ${D} ${E} $F $ {G} cost 5$");
        let u = t.uses;
        assert_eq!(u.len(), 5);
        assert_eq!(u[2].default.as_deref(), Some("x y"));
        assert_eq!(u[3].default.as_deref(), Some(""));
        assert!(u[3].unset_only);
        assert_eq!(u[4].required.as_deref(), Some("need E"));
    }

    #[test]
    fn keeps_literal_dollars_that_would_read_as_references() {
        assert_eq!(translate("$${X}").expect("ok").text, "$${X}");
        assert_eq!(translate("$$$$").expect("ok").text, "$$$");
        assert!(uses("$$HOME").is_empty());
    }

    #[test]
    fn defaults_with_dollars_and_odd_forms() {
        assert_eq!(
            uses("${P-:2283:2283}")[0].default.as_deref(),
            Some(":2283:2283")
        );
        let alternative = translate("-v${DEBUG:+ --debug}").expect("translates");
        assert_eq!(alternative.text, "-v${DEBUG:+ --debug}");
        assert_eq!(alternative.uses[0].default.as_deref(), Some(""));
        assert!(translate("${A+x}").is_err());
        assert!(translate("${A:+$$x}").is_err());
        assert!(translate("${A:+${B}}").is_err());
        assert!(translate("${A:-${B}}").is_err());
        assert!(translate("${A").is_err());
        assert!(translate("${1A}").is_err());
    }

    #[test]
    fn resolves_like_compose() {
        let env = std::collections::BTreeMap::from([("B".to_string(), "b".to_string())]);
        assert_eq!(super::resolve("x:${A:-$B}", &env).as_deref(), Ok("x:b"));
        assert_eq!(
            super::resolve("${A:+y}${B:+y}$$", &env).as_deref(),
            Ok("y$")
        );
        assert!(super::resolve("${A:?need}", &env).is_err());
    }
}
