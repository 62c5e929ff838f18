//! `NAME=VALUE` assignments, read from the words the shell gives `cfg set`.
//!
//! Besides `NAME=VALUE` (split on the first `=`, so a value may hold `=`),
//! the spaced forms work: `NAME = VALUE`, `NAME= VALUE`, `NAME =VALUE`, and
//! the form Prefect's docs print, `NAME = [1, 10, 100]`, which a shell
//! splits into `NAME`, `=`, `[1,`, `10,`, `100]`. A value continues over
//! the next words while it is incomplete — empty after a split `=`, with an
//! unclosed `[`, or ending in `,` — and the words are joined by one space.
//! A word after a complete value must start a new assignment.

use std::fmt;
use std::str::FromStr;

/// One assignment from the command line; the daemon parses the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The name as typed (canonical or alias).
    pub(crate) name: String,
    /// The raw value.
    pub(crate) value: String,
}

/// A word that is not part of any assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Failed to parse argument '{}'. Use the format 'VAR=VAL'.",
            self.0
        )
    }
}

impl std::error::Error for ParseError {}

/// One word, `NAME=VALUE`.
impl FromStr for Assignment {
    type Err = ParseError;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        match word.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok(Assignment {
                name: name.to_owned(),
                value: value.to_owned(),
            }),
            _ => Err(ParseError(word.to_owned())),
        }
    }
}

/// A word that can be a setting name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_name(word: &str) -> bool {
    let mut bytes = word.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether a value needs more words: an unclosed `[` or a trailing `,`.
fn incomplete(value: &str) -> bool {
    let open = value.matches('[').count() > value.matches(']').count();
    open || value.trim_end().ends_with(',')
}

/// Reads the words given to `cfg set` as assignments, in order.
///
/// # Errors
/// The first word that is neither an assignment nor the continuation of an
/// incomplete value.
pub(crate) fn parse(words: &[String]) -> Result<Vec<Assignment>, ParseError> {
    let mut out: Vec<Assignment> = Vec::new();
    // After a lone `=`, the next word is the value whatever it looks like.
    let mut must_take = false;
    // The current value was split from its name (`NAME= VALUE`) and is still
    // empty, so a following word that is not an assignment is its value.
    let mut awaiting = false;
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        if must_take {
            out.last_mut().expect("a name precedes a lone '='").value = word.clone();
            must_take = false;
            continue;
        }
        if is_name(word) && words.get(i).is_some_and(|next| next.starts_with('=')) {
            // `NAME =VALUE` or `NAME = VALUE`.
            let rest = &words[i][1..];
            i += 1;
            must_take = rest.is_empty() && i < words.len();
            out.push(Assignment {
                name: word.clone(),
                value: rest.to_owned(),
            });
            awaiting = false;
            continue;
        }
        if let Some((name, value)) = word.split_once('=')
            && is_name(name)
        {
            awaiting = value.is_empty();
            out.push(Assignment {
                name: name.to_owned(),
                value: value.to_owned(),
            });
            continue;
        }
        match out.last_mut() {
            Some(current) if awaiting => {
                current.value = word.clone();
                awaiting = false;
            }
            Some(current) if incomplete(&current.value) => {
                current.value.push(' ');
                current.value.push_str(word);
            }
            // Prefect reads any text before the first '=' as the name; the
            // daemon then says whether such a setting exists.
            _ => out.push(word.parse()?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn pairs(line: &str) -> Vec<(String, String)> {
        parse(&words(line))
            .unwrap()
            .into_iter()
            .map(|a| (a.name, a.value))
            .collect()
    }

    fn one(name: &str, value: &str) -> Vec<(String, String)> {
        vec![(name.to_owned(), value.to_owned())]
    }

    #[test]
    fn plain_assignments_split_on_the_first_equals() {
        assert_eq!(pairs("A=1"), one("A", "1"));
        assert_eq!(pairs("A=x=y"), one("A", "x=y"));
        assert_eq!(pairs("A="), one("A", ""));
        assert_eq!(
            pairs("A=1 B=2"),
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!("A=b=c".parse::<Assignment>().unwrap().value, "b=c");
    }

    #[test]
    fn the_spaced_form_from_prefects_docs() {
        assert_eq!(
            pairs("PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS = [1, 10, 100]"),
            one("PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS", "[1, 10, 100]")
        );
        assert_eq!(pairs("A = 5"), one("A", "5"));
        assert_eq!(pairs("A= 5"), one("A", "5"));
        assert_eq!(pairs("A =5"), one("A", "5"));
        assert_eq!(pairs("A = -1"), one("A", "-1"));
        assert_eq!(pairs("A=[1, 10, 100]"), one("A", "[1, 10, 100]"));
        assert_eq!(pairs("A= [1, 10, 100]"), one("A", "[1, 10, 100]"));
        assert_eq!(pairs("A = 1, 10, 100"), one("A", "1, 10, 100"));
        assert_eq!(pairs("A = x=y"), one("A", "x=y"));
    }

    #[test]
    fn several_assignments_in_mixed_forms() {
        assert_eq!(
            pairs("A = [1, 2] B=3 C =4 D= 5 E = 6"),
            vec![
                ("A".into(), "[1, 2]".into()),
                ("B".into(), "3".into()),
                ("C".into(), "4".into()),
                ("D".into(), "5".into()),
                ("E".into(), "6".into()),
            ]
        );
        // An empty value followed by an assignment stays empty (as Prefect).
        assert_eq!(
            pairs("A= B=2"),
            vec![("A".into(), "".into()), ("B".into(), "2".into())]
        );
    }

    #[test]
    fn words_that_are_not_assignments_fail_like_prefect() {
        let err = parse(&words("FOO")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failed to parse argument 'FOO'. Use the format 'VAR=VAL'."
        );
        assert_eq!(parse(&words("A=1 FOO")).unwrap_err().0, "FOO");
        assert_eq!(parse(&words("=5")).unwrap_err().0, "=5");
        assert_eq!(parse(&words("A = 1 = 2")).unwrap_err().0, "=");
        // A trailing lone '=' leaves the value empty (the daemon judges it).
        assert_eq!(pairs("A ="), one("A", ""));
    }

    #[test]
    fn text_before_the_equals_is_the_name_even_if_odd() {
        let a = parse(&["my key=3".to_owned()]).unwrap();
        assert_eq!(a[0].name, "my key");
        assert_eq!(a[0].value, "3");
    }
}
