//! Line numbers for TOML keys, so an error can say where a value is.
//!
//! `toml::Table` drops spans; this walks the span-keeping parse tree once and
//! records the line of every key by its dotted path (`tasks.default_retries`,
//! `settings[2].name`).

use std::collections::HashMap;

use toml::de::{DeTable, DeValue};

/// The 1-based line holding byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> u32 {
    let end = offset.min(text.len());
    let newlines = text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Lines of a text by byte offset: the newlines' offsets once, then each
/// lookup is a binary search.
#[derive(Debug)]
pub(crate) struct Lines(Vec<usize>);

impl Lines {
    pub(crate) fn new(text: &str) -> Self {
        Self(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// The 1-based line holding byte `offset`.
    pub(crate) fn at(&self, offset: usize) -> u32 {
        line_at(&self.0, offset)
    }
}

/// The line of every key in a TOML document, by dotted path.
#[derive(Debug, Default)]
pub struct KeyLines(HashMap<String, u32>);

impl KeyLines {
    /// Indexes `text`; a document that does not parse gives an empty index
    /// (the caller reports the syntax error from its own parse).
    pub fn new(text: &str) -> Self {
        let mut lines = HashMap::new();
        if let Ok(table) = DeTable::parse(text) {
            // Newline offsets once, so each key's line is a binary search
            // (a 10,000-key file would otherwise rescan the text per key).
            walk(&Lines::new(text).0, "", table.get_ref(), &mut lines);
        }
        Self(lines)
    }

    /// The line of the key at `path`, if it was found.
    pub fn get(&self, path: &str) -> Option<u32> {
        self.0.get(path).copied()
    }
}

fn line_at(newlines: &[usize], offset: usize) -> u32 {
    u32::try_from(newlines.partition_point(|&nl| nl < offset) + 1).unwrap_or(u32::MAX)
}

fn walk(newlines: &[usize], prefix: &str, table: &DeTable<'_>, out: &mut HashMap<String, u32>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.insert(path.clone(), line_at(newlines, key.span().start));
        match value.get_ref() {
            DeValue::Table(inner) => walk(newlines, &path, inner, out),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        walk(newlines, &format!("{path}[{i}]"), inner, out);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_dotted_and_array_keys() {
        let text = "a = 1\n[tasks]\ndefault_retries = 2\n\n[[settings]]\nname = \"X\"\n[[settings]]\nname = \"Y\"\nb.c = 3\n";
        let lines = KeyLines::new(text);
        assert_eq!(lines.get("a"), Some(1));
        assert_eq!(lines.get("tasks.default_retries"), Some(3));
        assert_eq!(lines.get("settings[0].name"), Some(6));
        assert_eq!(lines.get("settings[1].name"), Some(8));
        assert_eq!(lines.get("settings[1].b.c"), Some(9));
        assert_eq!(lines.get("missing"), None);
    }
}
