//! YAML emission shared by the YAML targets. serde-saphyr quotes every scalar a YAML 1.1
//! reader would misread (`on`, `yes`, `NO`, `12:30`, `0755`), and emits maps in the order
//! the target types give them.

use serde::Serialize;

use super::RenderError;

pub fn to_yaml<T: Serialize>(artifact: &str, value: &T) -> Result<String, RenderError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    // Folded (`>`) scalars for long commands are valid but hard to read and to diff.
    options.prefer_block_scalars = false;
    // `- item` indented under its key, the way compose files are usually written.
    options.compact_list_indent = false;
    serde_saphyr::to_string_with_options(value, options).map_err(|e| RenderError {
        artifact: artifact.to_string(),
        message: e.to_string(),
    })
}
