//! A lexical pass over Nickel source, before and after evaluation. Before: how deep records,
//! arrays and parentheses nest, because Nickel recurses once per level and a stack overflow
//! aborts the whole process, which no handler can catch. After a parse error at the end of
//! a file: where the unterminated string began, which Nickel cannot say.

/// Deepest nesting berth evaluates. Real stacks nest about ten levels; a debug build
/// evaluates 2,000 on its evaluation thread, so this leaves a wide margin.
pub const MAX_DEPTH: usize = 256;

/// A place in the scanned text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub line: u32,
    pub column: u32,
}

/// What the scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Where nesting first went past [`MAX_DEPTH`].
    pub too_deep: Option<Place>,
    /// Where the string still open at the end of the text began: the first string that
    /// spans lines when there is one (a missing `"` makes the next string's quote close
    /// it), else the last one opened.
    pub unterminated: Option<Place>,
}

/// What the scanner is inside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Code; `interpolation` when it is a `%{ … }` inside a string, closed by its `}`.
    Code {
        brackets: usize,
        interpolation: bool,
    },
    /// `"…"`.
    Str,
    /// `m%"…"%`, with this many `%`.
    Multiline(usize),
}

/// Scans `source` for nesting past [`MAX_DEPTH`] and an unterminated string.
pub fn scan(source: &str) -> Scanned {
    let chars: Vec<char> = source.chars().collect();
    let mut modes = vec![Mode::Code {
        brackets: 0,
        interpolation: false,
    }];
    let mut depth = 0usize;
    let (mut line, mut column) = (1u32, 0u32);
    let mut scanned = Scanned {
        too_deep: None,
        unterminated: None,
    };
    let mut string_start = Place { line, column };
    let mut first_multiline_string: Option<Place> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            column = 0;
        } else {
            column += 1;
        }
        let here = Place { line, column };
        let Some(mode) = modes.last_mut() else { break };
        match mode {
            Mode::Code {
                brackets,
                interpolation,
            } => match c {
                '#' => {
                    while i + 1 < chars.len() && chars[i + 1] != '\n' {
                        i += 1;
                    }
                }
                '{' | '[' | '(' => {
                    *brackets += 1;
                    depth += 1;
                    if depth > MAX_DEPTH && scanned.too_deep.is_none() {
                        scanned.too_deep = Some(here);
                    }
                }
                '}' if *brackets == 0 && *interpolation => {
                    modes.pop();
                    depth = depth.saturating_sub(1);
                }
                '}' | ']' | ')' => {
                    *brackets = brackets.saturating_sub(1);
                    depth = depth.saturating_sub(1);
                }
                '"' => {
                    string_start = here;
                    modes.push(Mode::Str);
                }
                '%' => {
                    let n_percent = count(&chars, i, '%');
                    let opens = chars.get(i + n_percent) == Some(&'"')
                        && i > 0
                        && chars[i - 1].is_alphanumeric();
                    if opens {
                        string_start = Place {
                            line,
                            column: column.saturating_sub(1),
                        };
                        modes.push(Mode::Multiline(n_percent));
                        column += u32::try_from(n_percent).unwrap_or(u32::MAX);
                        i += n_percent;
                    }
                }
                _ => {}
            },
            Mode::Str => match c {
                '\\' => {
                    i += 1;
                    column += 1;
                }
                '"' => {
                    modes.pop();
                }
                '%' if chars.get(i + 1) == Some(&'{') => {
                    modes.push(interpolation());
                    depth += 1;
                    i += 1;
                    column += 1;
                }
                '\n' => {
                    first_multiline_string.get_or_insert(string_start);
                }
                _ => {}
            },
            Mode::Multiline(n_percent) => {
                let n = *n_percent;
                if c == '"' && count(&chars, i + 1, '%') >= n {
                    modes.pop();
                    column += u32::try_from(n).unwrap_or(u32::MAX);
                    i += n;
                } else if c == '%' && count(&chars, i, '%') == n && chars.get(i + n) == Some(&'{') {
                    modes.push(interpolation());
                    depth += 1;
                    column += u32::try_from(n).unwrap_or(u32::MAX);
                    i += n;
                }
            }
        }
        i += 1;
    }
    if matches!(modes.last(), Some(Mode::Str | Mode::Multiline(_))) {
        scanned.unterminated = Some(first_multiline_string.unwrap_or(string_start));
    }
    scanned
}

fn interpolation() -> Mode {
    Mode::Code {
        brackets: 0,
        interpolation: true,
    }
}

/// How many `c` in a row start at `from`.
fn count(chars: &[char], from: usize, c: char) -> usize {
    chars.iter().skip(from).take_while(|x| **x == c).count()
}

#[cfg(test)]
mod tests {
    use super::{MAX_DEPTH, Place, scan};

    fn check(source: &str, too_deep: Option<(u32, u32)>, unterminated: Option<(u32, u32)>) {
        let place = |p: Option<(u32, u32)>| p.map(|(line, column)| Place { line, column });
        let scanned = scan(source);
        assert_eq!(scanned.too_deep, place(too_deep), "too_deep in {source:?}");
        assert_eq!(
            scanned.unterminated,
            place(unterminated),
            "unterminated in {source:?}"
        );
    }

    #[test]
    fn balanced_code_is_fine() {
        check(
            "{ a = [1, (2)], b = \"{[(\", c = m%\"}}}\"% } # {{{\n",
            None,
            None,
        );
        check("{ a = \"x %{ \"y\" ++ \"}\" } z\" }", None, None);
        check("{ a = m%%\"x %%{ {b = 1}.b } \"% y\"%% }", None, None);
    }

    #[test]
    fn nesting_past_the_limit_is_found_where_it_goes_past() {
        let deep = "[".repeat(MAX_DEPTH + 5);
        let column = u32::try_from(MAX_DEPTH + 1).expect("small");
        check(&format!("x =\n{deep}"), Some((2, column)), None);
        let at_limit = format!("{}{}", "{a=".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        check(&at_limit, None, None);
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let source = format!("# {}\n\"{}\"", "[".repeat(1000), "(".repeat(1000));
        check(&source, None, None);
    }

    #[test]
    fn an_unterminated_string_is_found_where_it_began() {
        // The quote missing on line 2 makes line 3's first quote close it, and line 3's
        // second quote opens a string that runs to the end: line 2 is the one to fix.
        check("{\n  a = \"abc,\n  b = \"y\",\n}\n", None, Some((2, 7)));
        check("{ a = \"abc }", None, Some((1, 7)));
        check("{ a = m%\"abc }", None, Some((1, 7)));
    }
}
