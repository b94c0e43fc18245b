//! Durations and sizes as the schema's contracts accept them (`Duration`, `ByteSize`),
//! typed once at the model boundary: each keeps the text the user wrote (Compose and
//! Prometheus read that spelling) and the number the other backends need (Kubernetes
//! probes, the engine). A text the contract should have refused fails deserialization
//! instead of counting as zero.

use std::fmt;

use serde::Deserialize;

/// A duration such as `"1m30s"`, `"500ms"` or `"1.5h"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Duration {
    written: String,
    nanos: u64,
}

impl Duration {
    /// As the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    pub fn nanos(&self) -> u64 {
        self.nanos
    }

    /// Whole seconds, rounded up (a 500ms timeout is 1 s where only seconds exist).
    pub fn seconds_ceil(&self) -> u64 {
        self.nanos.div_ceil(1_000_000_000)
    }
}

impl TryFrom<String> for Duration {
    type Error = String;

    fn try_from(written: String) -> Result<Duration, String> {
        let nanos = duration_ns(&written).ok_or_else(|| {
            format!("{written:?}: expected a duration such as \"10s\", \"1m30s\" or \"500ms\"")
        })?;
        Ok(Duration { written, nanos })
    }
}

impl From<&str> for Duration {
    /// For defaults written in the code; panics on a malformed literal (a bug, not input).
    fn from(written: &str) -> Duration {
        Duration::try_from(written.to_string()).expect("a valid duration literal")
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// A memory size such as `"512M"` or `"1.5g"`: b, k, m, g are bytes, KiB, MiB, GiB, as
/// Docker reads them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ByteSize {
    written: String,
    bytes: u64,
}

impl ByteSize {
    /// As the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl TryFrom<String> for ByteSize {
    type Error = String;

    fn try_from(written: String) -> Result<ByteSize, String> {
        let bytes = bytes(&written).ok_or_else(|| {
            format!("{written:?}: expected a size such as \"512M\" or \"8G\" (units b, k, m, g)")
        })?;
        Ok(ByteSize { written, bytes })
    }
}

impl From<&str> for ByteSize {
    /// For defaults written in the code; panics on a malformed literal (a bug, not input).
    fn from(written: &str) -> ByteSize {
        ByteSize::try_from(written.to_string()).expect("a valid size literal")
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// Nanoseconds in a duration: one or more `<number><unit>` parts, units h, m, s, ms, us,
/// ns; `None` for anything else (and past u64 nanoseconds, 584 years).
pub fn duration_ns(duration: &str) -> Option<u64> {
    let mut total: f64 = 0.0;
    let mut rest = duration;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    (total.is_finite() && total < u64::MAX as f64).then(|| total.round() as u64)
}

/// Bytes in a size such as `"512M"` or `"1.5g"`; `None` for anything else.
pub fn bytes(size: &str) -> Option<u64> {
    let unit = size.chars().last()?;
    let scale: f64 = match unit.to_ascii_lowercase() {
        'b' => 1.0,
        'k' => 1024.0,
        'm' => 1024.0 * 1024.0,
        'g' => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let number = &size[..size.len() - unit.len_utf8()];
    if number.starts_with(['-', '+']) {
        return None;
    }
    let total = number.parse::<f64>().ok()? * scale;
    (total.is_finite() && total < u64::MAX as f64).then(|| total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_add_their_parts() {
        assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Some(500_000_000));
        assert_eq!(duration_ns("1.5h"), Some(5_400_000_000_000));
        assert_eq!(duration_ns("250us"), Some(250_000));
    }

    #[test]
    fn unknown_units_and_shapes_are_no_duration() {
        for text in ["", "10", "10x", "1d", "s", "1..5s", "10s5"] {
            assert_eq!(duration_ns(text), None, "{text}");
        }
        assert!(Duration::try_from("10 s".to_string()).is_err());
        assert_eq!(Duration::from("1500ms").seconds_ceil(), 2);
    }

    #[test]
    fn unknown_size_units_are_no_size() {
        for text in ["", "512", "1t", "-1g", "m"] {
            assert_eq!(bytes(text), None, "{text}");
        }
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes("512M"), Some(512 * 1024 * 1024));
        assert_eq!(bytes("1g"), Some(1024 * 1024 * 1024));
        assert_eq!(bytes("1.5k"), Some(1536));
        assert_eq!(bytes("100b"), Some(100));
    }
}
