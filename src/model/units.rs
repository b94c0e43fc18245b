//! Durations and sizes as the schema's contracts accept them (`Duration`, `ByteSize`),
//! turned into numbers for the backends that need numbers (Kubernetes probes, the engine).

/// Nanoseconds in a duration such as `"1m30s"`, `"500ms"` or `"1.5h"`. The contract has
/// already checked the shape; an unknown unit counts as zero rather than failing.
pub fn duration_ns(duration: &str) -> u64 {
    let mut total: f64 = 0.0;
    let mut number = String::new();
    let mut chars = duration.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if let Some(&next) = chars.peek().filter(|n| n.is_ascii_alphabetic()) {
            unit.push(next);
            chars.next();
        }
        let value: f64 = number.parse().unwrap_or(0.0);
        number.clear();
        let scale = match unit.as_str() {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" => 1e3,
            "ns" => 1.0,
            _ => 0.0,
        };
        total += value * scale;
    }
    // Durations in stack files are far below u64::MAX nanoseconds (584 years).
    total.round() as u64
}

/// Bytes in a size such as `"512M"` or `"1.5g"`: b, k, m, g are bytes, KiB, MiB, GiB, as
/// Docker reads them.
pub fn bytes(size: &str) -> u64 {
    let Some(unit) = size.chars().last() else {
        return 0;
    };
    let scale: f64 = match unit.to_ascii_lowercase() {
        'k' => 1024.0,
        'm' => 1024.0 * 1024.0,
        'g' => 1024.0 * 1024.0 * 1024.0,
        _ => 1.0,
    };
    let number: f64 = size[..size.len() - unit.len_utf8()].parse().unwrap_or(0.0);
    (number * scale).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_add_their_parts() {
        assert_eq!(duration_ns("1m30s"), 90_000_000_000);
        assert_eq!(duration_ns("500ms"), 500_000_000);
        assert_eq!(duration_ns("1.5h"), 5_400_000_000_000);
        assert_eq!(duration_ns("250us"), 250_000);
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes("512M"), 512 * 1024 * 1024);
        assert_eq!(bytes("1g"), 1024 * 1024 * 1024);
        assert_eq!(bytes("1.5k"), 1536);
        assert_eq!(bytes("100b"), 100);
    }
}
