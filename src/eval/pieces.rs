//! The operands of the stack file's own top-level `&` (`postgres {…} & app {…} & {…}`),
//! each evaluated on its own, so `explain` can list every piece that defines a field
//! inside the stack layer, not only the merge of them. The operands are found in Nickel's
//! own syntax tree (never by searching the text), and every place read back is mapped to
//! the stack file's line and column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nickel_lang_core::{
    ast::{Ast, AstAlloc, Node as AstNode, primop::PrimOp},
    files::Files,
    parser::{ErrorTolerantParser, grammar::TermParser, lexer::Lexer},
};

use super::{nickel_string, profile_expr};
use crate::error::Location;
use crate::project::{ProfileRef, StackRef};

/// The virtual name of the generated expression: in the stack's folder, so the stack's
/// relative imports resolve as they do from the stack file itself.
pub(super) const PIECES_FILE: &str = "__berth_pieces__.ncl";

/// The generated program and how to read its places back.
pub(super) struct Generated {
    /// The expression to evaluate: a record `{ __berth_operand_NNN = { stack, overrides } }`,
    /// one field per operand, each split by `berth.layers` as the whole stack is.
    pub source: String,
    /// Its virtual path (see [`PIECES_FILE`]).
    pub path: PathBuf,
    pub remap: Remap,
}

/// Maps byte offsets of the generated expression back to the stack file.
pub(super) struct Remap {
    /// The stack file, as berth names it in messages.
    file: PathBuf,
    original: String,
    /// `(start in generated, start in original, length)`: the spans copied verbatim.
    copied: Vec<(usize, usize, usize)>,
}

/// Field name prefix of each operand in the generated record; zero-padded so the
/// record's sorted order is the operands' order.
pub(super) const OPERAND: &str = "__berth_operand_";

/// The generated expression for `stack`'s operands, or `None` when its body is no `&` of
/// two or more operands (the stack layer is then one piece already) or does not parse.
pub(super) fn generate(
    stack: &StackRef,
    profile: &ProfileRef,
    original: String,
    shown_as: PathBuf,
) -> Option<Generated> {
    let ((chain_start, chain_end), operands) = operand_spans(&original)?;
    let prefix = format!(
        "let berth = import \"berth.ncl\" in\nlet __berth_profile = {} in\nlet __berth_module = (\n",
        profile_expr(profile)
    );
    let mut source = prefix;
    let mut copied = Vec::new();
    let mut copy = |source: &mut String, from: usize, to: usize| {
        copied.push((source.len(), from, to - from));
        source.push_str(&original[from..to]);
    };
    copy(&mut source, 0, chain_start);
    source.push_str("{\n");
    for (index, (start, end)) in operands.iter().enumerate() {
        source.push_str(&format!("{OPERAND}{index:03} = ("));
        copy(&mut source, *start, *end);
        source.push_str("),\n");
    }
    source.push_str("}\n");
    copy(&mut source, chain_end, original.len());
    let stem = nickel_string(&stack.name);
    source.push_str(&format!(
        "\n) in\n\
         let __berth_settings = (berth.layers \"{stem}\" __berth_module __berth_profile).settings in\n\
         let __berth_operands = if std.is_function __berth_module then __berth_module __berth_settings else __berth_module in\n\
         std.record.map (fun _name operand =>\n  \
           let parts = berth.layers \"{stem}\" operand __berth_profile in\n  \
           {{ stack = parts.stack, overrides = parts.overrides }}\n\
         ) __berth_operands\n"
    ));
    let path = stack
        .path
        .parent()
        .unwrap_or(Path::new("."))
        .join(PIECES_FILE);
    Some(Generated {
        source,
        path,
        remap: Remap {
            file: shown_as,
            original,
            copied,
        },
    })
}

impl Remap {
    /// The stack file's place of a byte of the generated expression; `None` for what berth
    /// wrote itself.
    pub(super) fn location(&self, generated: usize) -> Option<Location> {
        let (from, to, _) = self
            .copied
            .iter()
            .find(|(start, _, len)| (*start..start + len).contains(&generated))?;
        let offset = to + (generated - from);
        let before = self.original.get(..offset)?;
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        Some(Location {
            file: self.file.clone(),
            line: u32::try_from(before.matches('\n').count() + 1).ok()?,
            column: u32::try_from(before[line_start..].chars().count() + 1).ok()?,
        })
    }
}

/// The byte span of the top-level `&` chain of a stack file (under its `let`s,
/// `fun profile =>` and annotations) and of each of its operands. `None` with fewer than
/// two operands.
#[expect(clippy::type_complexity, reason = "two spans, named in the doc")]
fn operand_spans(source: &str) -> Option<((usize, usize), Vec<(usize, usize)>)> {
    let alloc = AstAlloc::new();
    let mut files = Files::empty();
    let file_id = files.add("stack.ncl", source);
    let ast: Ast = TermParser::new()
        .parse_strict(&alloc, file_id, Lexer::new(source))
        .ok()?;
    let mut body = &ast;
    loop {
        body = match &body.node {
            AstNode::Let { body, .. } | AstNode::Fun { body, .. } => body,
            AstNode::Annotated { inner, .. } => inner,
            _ => break,
        };
    }
    let chain = body.pos.into_opt()?;
    let mut operands = Vec::new();
    flatten(body, &mut operands)?;
    (operands.len() >= 2).then_some(((chain.start.0 as usize, chain.end.0 as usize), operands))
}

/// `a & b & c` (left-nested) into its operands' spans, in order.
fn flatten(ast: &Ast, out: &mut Vec<(usize, usize)>) -> Option<()> {
    match &ast.node {
        AstNode::PrimOpApp {
            op: PrimOp::Merge(_),
            args,
        } if args.len() == 2 => {
            flatten(&args[0], out)?;
            flatten(&args[1], out)
        }
        _ => {
            let span = ast.pos.into_opt()?;
            out.push((span.start.0 as usize, span.end.0 as usize));
            Some(())
        }
    }
}

/// The pieces' layer trees, in operand order (record keys sorted by their padded index).
pub(super) fn in_order<T>(pieces: BTreeMap<String, T>) -> Vec<T> {
    pieces
        .into_iter()
        .filter(|(name, _)| name.starts_with(OPERAND))
        .map(|(_, piece)| piece)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(source: &str, expect: &[&str]) {
        let spans = operand_spans(source)
            .map(|(_, spans)| spans)
            .unwrap_or_default();
        let texts: Vec<&str> = spans.iter().map(|(s, e)| &source[*s..*e]).collect();
        assert_eq!(texts, expect);
    }

    #[test]
    fn operands_under_lets_and_a_function() {
        check(
            "let m = import \"m.ncl\" in\nfun profile =>\n  let x = 1 in\n  m { a = x } & (if profile.debug then {} else { b = 1 })\n  & { c = { d = 1 } & { e = 2 } }",
            &[
                "m { a = x }",
                "(if profile.debug then {} else { b = 1 })",
                "{ c = { d = 1 } & { e = 2 } }",
            ],
        );
    }

    #[test]
    fn the_chain_spans_its_first_and_last_operand() {
        let source = "fun p =>\n  (a 1) & b # a comment\n";
        let ((start, end), _) = operand_spans(source).expect("a chain");
        assert_eq!(&source[start..end], "(a 1) & b");
    }

    #[test]
    fn a_copied_byte_maps_to_its_line_and_column() {
        let remap = Remap {
            file: PathBuf::from("modules/stacks/x.ncl"),
            original: "ab\ncdé f".to_string(),
            copied: vec![(10, 0, 9)],
        };
        let at = |generated| remap.location(generated).map(|l| (l.line, l.column));
        assert_eq!(at(10), Some((1, 1)));
        // After a two-byte character, the column counts characters.
        assert_eq!(at(10 + 8), Some((2, 5)));
        assert_eq!(at(9), None, "berth's own text has no place");
    }

    #[test]
    fn one_operand_is_no_chain() {
        check("fun p => { a = 1 & 2 }", &[]);
    }
}
