//! Splitting a deal's `iexec_args` string into argv, the way a POSIX shell splits words, without
//! a shell: no variable, command, glob or tilde expansion ever happens.

/// Arguments that cannot be split: an unterminated quote or a trailing backslash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid app arguments: {reason}")]
pub struct ArgsError {
    /// What is wrong with them.
    pub reason: String,
}

/// Splits `line` into arguments like a POSIX shell splits words, without any expansion.
///
/// - Unquoted blanks (space, tab, newline) separate arguments; several count as one.
/// - `'...'` keeps everything literally up to the next `'`.
/// - `"..."` keeps everything literally except that a backslash escapes `"`, `\`, `$` and `` ` ``
///   (and removes a backslash-newline); before any other character it stays a backslash.
/// - Outside quotes, a backslash makes the next character literal (a backslash-newline is
///   removed).
/// - `""` and `''` make an empty argument.
/// - `$`, `*`, `~` and the like are ordinary characters.
///
/// # Errors
///
/// [`ArgsError`] on an unterminated quote or a trailing backslash.
///
/// # Examples
///
/// ```
/// use poco_primitives::args::split_args;
///
/// let argv = split_args(r#"100000 --name "hello world" 'a b' c\ d "" $HOME"#).unwrap();
/// assert_eq!(argv, ["100000", "--name", "hello world", "a b", "c d", "", "$HOME"]);
/// ```
pub fn split_args(line: &str) -> Result<Vec<String>, ArgsError> {
    let mut args = Vec::new();
    let mut current = String::new();
    // Whether `current` is an argument (possibly empty, after `""`).
    let mut started = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if started {
                    args.push(std::mem::take(&mut current));
                    started = false;
                }
            }
            '\'' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(invalid("unterminated single quote")),
                    }
                }
            }
            '"' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err(invalid("unterminated double quote")),
                        },
                        Some(c) => current.push(c),
                        None => return Err(invalid("unterminated double quote")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    started = true;
                    current.push(c);
                }
                None => return Err(invalid("trailing backslash")),
            },
            c => {
                started = true;
                current.push(c);
            }
        }
    }
    if started {
        args.push(current);
    }
    Ok(args)
}

fn invalid(reason: &str) -> ArgsError {
    ArgsError { reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        split_args(line).unwrap()
    }

    #[test]
    fn blanks_separate_arguments() {
        assert_eq!(split("a b\tc\nd   e"), ["a", "b", "c", "d", "e"]);
        assert_eq!(split("  leading and trailing  "), ["leading", "and", "trailing"]);
        assert!(split("").is_empty());
        assert!(split(" \t\n ").is_empty());
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(split(r"'a  b' 'c\d' '$x'"), ["a  b", r"c\d", "$x"]);
        assert_eq!(split("'it'\\''s'"), ["it's"]);
    }

    #[test]
    fn double_quotes_escape_a_few_characters() {
        assert_eq!(split(r#""a \"b\" \\ \$ \` \n""#), [r#"a "b" \ $ ` \n"#]);
        assert_eq!(split("\"line\\\ncontinued\""), ["linecontinued"]);
    }

    #[test]
    fn backslash_outside_quotes() {
        assert_eq!(split(r"a\ b c\\d \'"), ["a b", r"c\d", "'"]);
        assert_eq!(split("a\\\nb"), ["ab"]);
    }

    #[test]
    fn quotes_join_adjacent_text_and_make_empty_arguments() {
        assert_eq!(split(r#"pre"mid dle"'post' """#), ["premid dlepost", ""]);
        assert_eq!(split("'' x ''"), ["", "x", ""]);
    }

    #[test]
    fn no_expansion() {
        assert_eq!(split("$HOME ~ * `id` $(id)"), ["$HOME", "~", "*", "`id`", "$(id)"]);
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(split("héllo 'wörld ✓'"), ["héllo", "wörld ✓"]);
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for line in ["'open", "\"open", "\"open\\", "trailing\\"] {
            let err = split_args(line).unwrap_err();
            assert!(!err.reason.is_empty(), "{line}: {err}");
        }
    }
}
