//! `berth explain`'s text: the value, then each definition with its place, layer and
//! priority, the winner marked, then why, then the variables the value reads.

use serde_json::Value;

use super::{Definition, Explanation, Outcome, SchemaDefault};

/// The explanation as people read it.
pub fn text(explanation: &Explanation) -> String {
    let Explanation {
        path,
        stack,
        profile,
        value,
        definitions,
        schema_default,
        why,
        variables,
    } = explanation;
    let mut out = format!("{path}  (stack {stack}, profile {profile})\n");
    match value {
        Some(value) => out.push_str(&format!("  value: {}\n", one_line(value))),
        None => out.push_str("  value: not set\n"),
    }
    if !definitions.is_empty() {
        out.push_str("  definitions (merge order):\n");
    }
    for definition in definitions {
        out.push_str(&definition_text(definition));
    }
    if let Some(SchemaDefault { field, default }) = schema_default {
        out.push_str(&format!(
            "  berth default: {default}  (schema {field}, applied by berth when no layer sets it)\n"
        ));
    }
    out.push_str(&format!("  why: {why}\n"));
    for variable in variables {
        let default = match (&variable.default, variable.secret) {
            (_, true) => "secret, no default".to_string(),
            (Some(default), false) => format!("default {}", one_line(default)),
            (None, false) => "no default".to_string(),
        };
        let line = variable
            .env_template_line
            .map(|line| format!(", documented at .env.template:{line}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  reads ${{{}}}: {default}{line}\n",
            variable.name
        ));
        if let Some(description) = &variable.description {
            out.push_str(&format!("    {description}\n"));
        }
    }
    out
}

fn definition_text(definition: &Definition) -> String {
    let Definition {
        layer,
        location,
        field_location,
        priority,
        inside,
        value,
        outcome,
    } = definition;
    let mark = match outcome {
        Outcome::Won => "won ",
        Outcome::Merged => "merged",
        Outcome::Lost { .. } => "lost",
    };
    let place = location
        .as_ref()
        .map_or_else(|| "(set by berth)".to_string(), ToString::to_string);
    let mut priority = priority.clone();
    if let Some(inside) = inside {
        priority.push_str(&format!(", inside `{inside}`"));
    }
    let mut out = format!("    {mark:<6} {layer:<28} {priority:<12} {place}\n");
    if let Some(field) = field_location {
        out.push_str(&format!("           field declared at {field}\n"));
    }
    out.push_str(&format!("           = {}\n", one_line(value)));
    if let Outcome::Lost { to, at } = outcome {
        out.push_str(&format!("           replaced by {to} at {at}\n"));
    }
    out
}

/// Which definition won, and why, in a sentence.
pub fn why(definitions: &[Definition], default: Option<&SchemaDefault>, has_value: bool) -> String {
    let winners: Vec<&Definition> = definitions
        .iter()
        .filter(|d| matches!(d.outcome, Outcome::Won | Outcome::Merged))
        .collect();
    let losers: Vec<&Definition> = definitions
        .iter()
        .filter(|d| matches!(d.outcome, Outcome::Lost { .. }))
        .collect();
    match (winners.as_slice(), losers.is_empty()) {
        ([], _) if default.is_some() => {
            "no layer sets it, so berth applies the default its schema documents".to_string()
        }
        ([], _) if has_value => "set by berth itself".to_string(),
        ([], _) => "no layer sets it and it has no default: it is left out".to_string(),
        ([only], true) => format!("only {} sets it ({})", only.layer, only.priority),
        ([only], false) => format!(
            "{} has the highest priority ({}) over {}: a higher priority replaces the others whole",
            only.layer,
            deciding(only),
            losers
                .iter()
                .map(|d| format!("{} ({})", d.layer, deciding(d)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (several, _) => format!(
            "{} have the same priority ({}): their values merge (records merge field by field, equal values agree)",
            counted_layers(several),
            deciding(several[0])
        ),
    }
}

/// The layers of `definitions` in order, each once, with how many of the stack file's
/// operands it holds when more than one (`service module ×2`).
fn counted_layers(definitions: &[&Definition]) -> String {
    let mut layers: Vec<(&str, usize)> = Vec::new();
    for definition in definitions {
        match layers
            .iter_mut()
            .find(|(layer, _)| *layer == definition.layer)
        {
            Some((_, n)) => *n += 1,
            None => layers.push((&definition.layer, 1)),
        }
    }
    layers
        .iter()
        .map(|(layer, n)| match n {
            1 => (*layer).to_string(),
            n => format!("{layer} ×{n}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn deciding(definition: &Definition) -> String {
    match &definition.inside {
        Some(inside) => format!("`{inside}`"),
        None => definition.priority.clone(),
    }
}

/// JSON on one line, shortened past 200 characters.
fn one_line(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 200 {
        let cut: String = text.chars().take(197).collect();
        format!("{cut}…")
    } else {
        text
    }
}
