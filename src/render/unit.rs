//! systemd unit files as data: sections of `Key=value` entries in the order given, and one
//! writer that applies systemd's escaping. Pure. Whatever a value holds, the writer emits
//! exactly one line for it: `%` is doubled (no specifier expansion), a control character
//! is written as a C escape (which systemd unescapes in quoted `Exec*=` and
//! `Environment=` words, and shows as is elsewhere), and a value ending in a lone `\`
//! cannot join the next line. Validation refuses control characters before this; the
//! writer holds even if it did not.

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

    /// Adds `key=value` to the current section. `value` is the text systemd should see
    /// after specifier expansion: the writer escapes `%`. Build `Exec*=` and
    /// `Environment=` values with [`exec_line`] and [`environment`], which quote words.
    pub fn entry(mut self, key: &'static str, value: impl Into<String>) -> Self {
        if let Some((_, entries)) = self.sections.last_mut() {
            entries.push((key, value.into()));
        }
        self
    }

    /// Passes every entry of the sections called `section` through `rewrite`, in order.
    pub fn rewrite(
        mut self,
        section: &str,
        rewrite: impl Fn(&'static str, String) -> (&'static str, String),
    ) -> Self {
        for (_, entries) in self
            .sections
            .iter_mut()
            .filter(|(name, _)| *name == section)
        {
            *entries = std::mem::take(entries)
                .into_iter()
                .map(|(key, value)| rewrite(key, value))
                .collect();
        }
        self
    }

    /// The file's text: a leading comment, sections separated by a blank line.
    pub fn render(&self, comment: &str) -> String {
        let mut out = String::new();
        // `lines` also drops the `\r` of a `\r\n`; a lone `\r` is made visible.
        for line in comment.lines() {
            let line = visible(line);
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str(&format!("# {line}\n"));
            }
        }
        for (index, (name, entries)) in self.sections.iter().enumerate() {
            if index > 0 || !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("[{name}]\n"));
            for (key, value) in entries {
                out.push_str(&one_line(key, value));
            }
        }
        out
    }
}

/// An `Exec*=` command line from arguments: each quoted when it needs to be, `$`
/// escaped so systemd passes it through untouched.
pub fn exec_line(args: &[&str]) -> String {
    args.iter()
        .map(|arg| exec_arg(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn exec_arg(arg: &str) -> String {
    let escaped = arg.replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"\"'\\;".contains(c));
    if plain { escaped } else { quoted(&escaped) }
}

/// An `Environment=` assignment, quoted for systemd.
pub fn environment(name: &str, value: &str) -> String {
    quoted(&format!("{name}={value}"))
}

/// A double-quoted word with systemd's C escapes, so that nothing inside it can end it.
fn quoted(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push_str(&visible(&c.to_string())),
        }
    }
    out.push('"');
    out
}

/// `key=value` and a line feed, with `%` doubled; a line whose last backslash escapes
/// nothing would continue onto the next line, so it gets a trailing space.
fn one_line(key: &str, value: &str) -> String {
    let line = format!("{key}={}", visible(value).replace('%', "%%"));
    let mut escaped = false;
    for c in line.chars() {
        escaped = !escaped && c == '\\';
    }
    if escaped {
        format!("{line} \n")
    } else {
        format!("{line}\n")
    }
}

/// Control characters as C escapes (`\n`, `\r`, `\t` is kept, others `\xNN`), so text
/// never holds a line break.
fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push('\t'),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{UnitFile, environment, exec_line};

    fn service(key: &'static str, value: String) -> String {
        UnitFile::default()
            .section("Service")
            .entry(key, value)
            .render("")
    }

    #[test]
    fn escapes_what_systemd_would_expand() {
        assert_eq!(
            service("ExecStart", exec_line(&["/bin/date", "+%Y"])),
            "[Service]\nExecStart=/bin/date +%%Y\n"
        );
        assert_eq!(
            exec_line(&["sh", "-c", "echo $HOME"]),
            "sh -c \"echo $$HOME\""
        );
        assert_eq!(
            service("Environment", environment("CMD", "pg_dump -U \"a\" 50%")),
            "[Service]\nEnvironment=\"CMD=pg_dump -U \\\"a\\\" 50%%\"\n"
        );
    }

    #[test]
    fn no_value_or_comment_can_start_a_line() {
        let unit = UnitFile::default()
            .section("Unit")
            .entry("Description", "x\nExecStartPre=/bin/touch /tmp/pwned\r")
            .entry("Documentation", "ends in a backslash \\")
            .section("Service")
            .entry("Environment", environment("A", "\"\nLD_PRELOAD=/x"))
            .entry("ExecStart", exec_line(&["sh", "-c", "a\nb"]));
        let text = unit.render("header\r[Service]\nsecond line");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "# header\\r[Service]",
                "# second line",
                "",
                "[Unit]",
                "Description=x\\nExecStartPre=/bin/touch /tmp/pwned\\r",
                "Documentation=ends in a backslash \\ ",
                "",
                "[Service]",
                "Environment=\"A=\\\"\\nLD_PRELOAD=/x\"",
                "ExecStart=sh -c \"a\\nb\"",
            ]
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
