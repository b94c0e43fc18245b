//! A small Nickel document model and its printer, for writing modules a person would
//! have written: two-space indentation, one field per line, short lists on one line,
//! comments above the fields they explain, trailing commas.

use std::fmt::Write;

/// A Nickel expression the importer writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Array(Vec<Expr>),
    Record(Vec<Field>),
    /// Written as is: a helper call such as `berth.volume "data" "/data"`.
    Raw(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub value: Expr,
    /// Comment lines written above the field (without `# `).
    pub comments: Vec<String>,
}

impl Field {
    pub fn new(name: impl Into<String>, value: Expr) -> Field {
        Field {
            name: name.into(),
            value,
            comments: Vec::new(),
        }
    }

    pub fn commented(mut self, comments: Vec<String>) -> Field {
        self.comments = comments;
        self
    }
}

/// Width under which an array of scalars is written on one line.
const LINE: usize = 96;

/// Prints `expr` at `indent` (in levels of two spaces); the first line is not indented.
pub fn print(expr: &Expr, indent: usize) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr, indent);
    out
}

fn write_expr(out: &mut String, expr: &Expr, indent: usize) {
    match expr {
        Expr::Str(text) => out.push_str(&string(text)),
        Expr::Int(number) => out.push_str(&number.to_string()),
        Expr::Float(number) => out.push_str(&float(*number)),
        Expr::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Expr::Raw(code) => out.push_str(code),
        Expr::Array(items) => write_array(out, items, indent),
        Expr::Record(fields) => write_record(out, fields, indent),
    }
}

fn write_array(out: &mut String, items: &[Expr], indent: usize) {
    if items.is_empty() {
        out.push_str("[]");
        return;
    }
    let inline = items.iter().all(is_scalar).then(|| {
        let parts: Vec<String> = items.iter().map(|item| print(item, 0)).collect();
        format!("[{}]", parts.join(", "))
    });
    match inline {
        Some(line) if line.len() + indent * 2 <= LINE => out.push_str(&line),
        _ => {
            out.push_str("[\n");
            for item in items {
                pad(out, indent + 1);
                write_expr(out, item, indent + 1);
                out.push_str(",\n");
            }
            pad(out, indent);
            out.push(']');
        }
    }
}

fn write_record(out: &mut String, fields: &[Field], indent: usize) {
    if fields.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push_str("{\n");
    for field in fields {
        for comment in &field.comments {
            pad(out, indent + 1);
            if comment.is_empty() {
                out.push_str("#\n");
            } else {
                let _ = writeln!(out, "# {comment}");
            }
        }
        pad(out, indent + 1);
        out.push_str(&field_name(&field.name));
        out.push_str(" = ");
        write_expr(out, &field.value, indent + 1);
        out.push_str(",\n");
    }
    pad(out, indent);
    out.push('}');
}

fn is_scalar(expr: &Expr) -> bool {
    !matches!(expr, Expr::Array(_) | Expr::Record(_))
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

fn float(number: f64) -> String {
    let text = number.to_string();
    if text.contains(['.', 'e', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

/// A Nickel string literal. `%{` would start an interpolation, so it is escaped.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '%' if chars.peek() == Some(&'{') => out.push_str("\\%"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const KEYWORDS: &[&str] = &[
    "if",
    "then",
    "else",
    "let",
    "in",
    "fun",
    "import",
    "forall",
    "null",
    "true",
    "false",
    "match",
    "rec",
    "default",
    "force",
    "doc",
    "optional",
    "priority",
    "not_exported",
    "Array",
    "Number",
    "String",
    "Bool",
    "Dyn",
    "include",
];

/// A record field name: bare when Nickel reads it as an identifier, quoted otherwise.
pub fn field_name(name: &str) -> String {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let bare = starts_well
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '\'')
        && !KEYWORDS.contains(&name);
    if bare { name.to_string() } else { string(name) }
}

#[cfg(test)]
mod tests {
    use super::{Expr, Field, field_name, print, string};

    #[test]
    fn strings_escape_what_nickel_reads_specially() {
        assert_eq!(
            string("a \"b\" \\ %{x} 50% ${Y}\n"),
            r#""a \"b\" \\ \%{x} 50% ${Y}\n""#
        );
    }

    #[test]
    fn names_are_quoted_only_when_needed() {
        assert_eq!(field_name("web-1"), "web-1");
        assert_eq!(field_name("wazuh.master"), "\"wazuh.master\"");
        assert_eq!(field_name("default"), "\"default\"");
        assert_eq!(field_name("1st"), "\"1st\"");
    }

    #[test]
    fn records_and_arrays_print_one_field_per_line() {
        let expr = Expr::Record(vec![
            Field::new("image", Expr::Str("redis:7".into())),
            Field::new(
                "command",
                Expr::Array(vec![Expr::Str("redis-server".into())]),
            )
            .commented(vec!["why".into()]),
            Field::new("labels", Expr::Record(vec![])),
        ]);
        assert_eq!(
            print(&expr, 0),
            "{\n  image = \"redis:7\",\n  # why\n  command = [\"redis-server\"],\n  labels = {},\n}"
        );
    }
}
