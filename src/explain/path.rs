//! A field path as users write it: `services.api.environment.LOG_LEVEL`,
//! `services.api.ports[0].published`, `services.x.sysctls."net.core.somaxconn"`.

use std::fmt;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl Segment {
    pub fn key(&self) -> Option<&str> {
        match self {
            Segment::Key(key) => Some(key),
            Segment::Index(_) => None,
        }
    }
}

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

impl FieldPath {
    pub fn new(segments: Vec<Segment>) -> FieldPath {
        FieldPath { segments }
    }

    /// Parses a dotted path; a key holding a dot or other punctuation is quoted.
    ///
    /// # Errors
    /// An empty path or key, an unterminated quote, an index that is not a number.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        loop {
            let (segment, after) = key(rest).map_err(|why| format!("`{text}`: {why}"))?;
            segments.push(segment);
            let (indexes, after) = indexes(after).map_err(|why| format!("`{text}`: {why}"))?;
            segments.extend(indexes);
            match after.strip_prefix('.') {
                Some(next) => rest = next,
                None if after.is_empty() => break,
                None => return Err(format!("`{text}`: unexpected `{after}`")),
            }
        }
        Ok(FieldPath { segments })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The keys, indexes left out.
    pub fn keys(&self) -> Vec<String> {
        self.segments
            .iter()
            .filter_map(Segment::key)
            .map(str::to_string)
            .collect()
    }

    /// The part of the path merges work on: up to the first index (arrays never merge,
    /// so a layer defines a whole array or none of it).
    pub fn merge_prefix(&self) -> &[Segment] {
        let end = self
            .segments
            .iter()
            .position(|segment| matches!(segment, Segment::Index(_)))
            .unwrap_or(self.segments.len());
        &self.segments[..end]
    }
}

fn key(text: &str) -> Result<(Segment, &str), String> {
    if let Some(quoted) = text.strip_prefix('"') {
        let end = quoted.find('"').ok_or("unterminated quote")?;
        return Ok((Segment::Key(quoted[..end].to_string()), &quoted[end + 1..]));
    }
    let end = text.find(['.', '[']).unwrap_or(text.len());
    if end == 0 {
        return Err("empty field name".to_string());
    }
    Ok((Segment::Key(text[..end].to_string()), &text[end..]))
}

fn indexes(mut text: &str) -> Result<(Vec<Segment>, &str), String> {
    let mut out = Vec::new();
    while let Some(inner) = text.strip_prefix('[') {
        let end = inner.find(']').ok_or("unterminated `[`")?;
        let index = inner[..end]
            .parse()
            .map_err(|_| format!("`[{}]` is no array index", &inner[..end]))?;
        out.push(Segment::Index(index));
        text = &inner[end + 1..];
    }
    Ok((out, text))
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if at > 0 {
                        f.write_str(".")?;
                    }
                    let plain = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if plain {
                        f.write_str(key)?;
                    } else {
                        write!(f, "\"{key}\"")?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, shown: &str) {
        assert_eq!(FieldPath::parse(text).expect(text).to_string(), shown);
    }

    #[test]
    fn paths_read_back_as_written() {
        check("services.api.replicas", "services.api.replicas");
        check(
            "services.api.ports[0].published",
            "services.api.ports[0].published",
        );
        check(
            "services.x.sysctls.\"net.core.somaxconn\"",
            "services.x.sysctls.\"net.core.somaxconn\"",
        );
        check("overrides.prod-lite", "overrides.prod-lite");
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", "a..b", "a.", "a[x]", "a[0", "\"a"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad}");
        }
    }
}
