//! systemd unit files as data: sections of `Key=value` entries in the order given, and one
//! writer that applies systemd's escaping. Pure.

/// A unit file being built: `[Section]` headers with their entries, in order.
#[derive(Debug, Default)]
pub struct UnitFile {
    sections: Vec<(&'static str, Vec<(&'static str, String)>)>,
}

impl UnitFile {
    pub fn section(mut self, name: &'static str) -> Self {
        self.sections.push((name, Vec::new()));
        self
    }

    /// Adds `key=value` to the current section. `value` is written as given: use
    /// [`specifiers`] and [`exec_line`] to escape what systemd would expand.
    pub fn entry(mut self, key: &'static str, value: impl Into<String>) -> Self {
        if let Some((_, entries)) = self.sections.last_mut() {
            entries.push((key, value.into()));
        }
        self
    }

    /// The file's text: a leading comment, sections separated by a blank line.
    pub fn render(&self, comment: &str) -> String {
        let mut out = String::new();
        for line in comment.lines() {
            out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
        }
        for (index, (name, entries)) in self.sections.iter().enumerate() {
            if index > 0 || !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("[{name}]\n"));
            for (key, value) in entries {
                out.push_str(&format!("{key}={value}\n"));
            }
        }
        out
    }
}

/// Escapes `%` so systemd does not read it as a specifier (`%n`, `%h`…).
pub fn specifiers(value: &str) -> String {
    value.replace('%', "%%")
}

/// An `Exec*=` command line from arguments: each quoted when it needs to be, `%` and `$`
/// escaped so systemd passes them through untouched.
pub fn exec_line(args: &[&str]) -> String {
    args.iter()
        .map(|arg| exec_arg(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn exec_arg(arg: &str) -> String {
    let escaped = specifiers(arg).replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| !c.is_whitespace() && !"\"'\\;".contains(c));
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// An `Environment=` assignment, quoted for systemd.
pub fn environment(name: &str, value: &str) -> String {
    let escaped = specifiers(&format!("{name}={value}"))
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::{UnitFile, environment, exec_line};

    #[test]
    fn escapes_what_systemd_would_expand() {
        assert_eq!(exec_line(&["/bin/date", "+%Y"]), "/bin/date +%%Y");
        assert_eq!(
            exec_line(&["sh", "-c", "echo $HOME"]),
            "sh -c \"echo $$HOME\""
        );
        assert_eq!(
            environment("CMD", "pg_dump -U \"a\" 50%"),
            "\"CMD=pg_dump -U \\\"a\\\" 50%%\""
        );
    }

    #[test]
    fn renders_sections_in_order() {
        let unit = UnitFile::default()
            .section("Unit")
            .entry("Description", "x")
            .section("Install")
            .entry("WantedBy", "multi-user.target");
        assert_eq!(
            unit.render("made by a test"),
            "# made by a test\n\n[Unit]\nDescription=x\n\n[Install]\nWantedBy=multi-user.target\n"
        );
    }
}
