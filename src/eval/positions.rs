//! Where each field of an evaluated stack was written: dotted field path → file:line:col.
//! Lets model checks, and later `berth explain`, point at the user's own line.

use std::collections::BTreeMap;
use std::path::Path;

use nickel_lang_core::eval::value::{NickelValue, ValueContentRef};
use nickel_lang_core::files::Files;
use nickel_lang_core::position::{PosTable, TermPos};

use crate::error::Location;
use crate::project::Project;

/// Field path (`services.api.ports[0].published`) to the place its value was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Positions {
    by_path: BTreeMap<String, Location>,
}

impl Positions {
    pub(super) fn collect(
        value: &NickelValue,
        table: &PosTable,
        files: &Files,
        project: &Project,
    ) -> Self {
        let mut positions = Positions::default();
        let mut walker = Walker {
            table,
            files,
            project,
            out: &mut positions.by_path,
        };
        walker.walk(value, &mut String::new());
        positions
    }

    /// The place of `path`, or of its nearest traced ancestor (a value computed by a
    /// function has no place of its own; the field that called it does).
    ///
    /// A value made by a library helper (`berth.bind "./x" "/y"` is written in
    /// schemas/berth.ncl) is located at the nearest enclosing field the user wrote.
    pub fn locate(&self, path: &str) -> Option<Location> {
        let mut path = path;
        let mut in_library = None;
        loop {
            if let Some(location) = self.by_path.get(path) {
                if !location.file.starts_with("schemas") {
                    return Some(location.clone());
                }
                in_library.get_or_insert_with(|| location.clone());
            }
            let Some(end) = path.rfind(['.', '[']) else {
                return in_library;
            };
            path = &path[..end];
        }
    }
}

struct Walker<'a> {
    table: &'a PosTable,
    files: &'a Files,
    project: &'a Project,
    out: &'a mut BTreeMap<String, Location>,
}

impl Walker<'_> {
    fn walk(&mut self, value: &NickelValue, path: &mut String) {
        match value.content_ref() {
            ValueContentRef::Record(record) => {
                let Some(record) = record.into_opt() else {
                    return;
                };
                for (ident, field) in &record.fields {
                    let Some(child) = &field.value else { continue };
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(ident.label());
                    let place = self
                        .location(child.pos(self.table))
                        .or_else(|| self.location(ident.pos));
                    self.record(path, place);
                    self.walk(child, path);
                    path.truncate(len);
                }
            }
            ValueContentRef::Array(array) => {
                for (index, element) in array.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{index}]"));
                    let place = self.location(element.pos(self.table));
                    self.record(path, place);
                    self.walk(element, path);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn record(&mut self, path: &str, place: Option<Location>) {
        if let Some(place) = place {
            self.out.insert(path.to_string(), place);
        }
    }

    fn location(&self, pos: TermPos) -> Option<Location> {
        user_location(self.files, self.project, pos)
    }
}

/// A user-file location for `pos`; `None` for the stdlib and generated sources.
pub(super) fn user_location(files: &Files, project: &Project, pos: TermPos) -> Option<Location> {
    let span = pos.into_opt()?;
    if files.is_stdlib(span.src_id) {
        return None;
    }
    let name = Path::new(files.name(span.src_id));
    if name.file_name().is_some_and(|n| n == "__berth_main__.ncl") {
        return None;
    }
    let at = files.location(span.src_id, span.start).ok()?;
    Some(Location {
        file: project.relative(name).to_path_buf(),
        line: at.line.0 + 1,
        column: at.column.0 + 1,
    })
}
