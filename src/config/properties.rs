//! A reader for the `java.util.Properties` text format, the syntax of zoo.cfg.
//!
//! Rules, as `Properties.load` applies them:
//! - lines end at `\n`, `\r` or `\r\n`; leading spaces, tabs and form feeds are skipped;
//! - a line whose first visible character is `#` or `!` is a comment, and blank lines are
//!   skipped;
//! - a line ending in an odd number of backslashes continues on the next line, whose
//!   leading whitespace is dropped; a continuation line starting with `#` is content, not a
//!   comment, while a comment line never continues;
//! - the key ends at the first unescaped `=`, `:`, space, tab or form feed; whitespace and
//!   at most one `=` or `:` after it are skipped, and the rest of the line is the value
//!   (trailing whitespace included);
//! - escapes `\t \n \r \f \uXXXX` are decoded, and any other escaped character stands for
//!   itself (so `\=`, `\:`, `\ ` and `\\` put those characters in keys or values);
//! - a key given twice keeps its last value.
//!
//! Each entry remembers the 1-based line on which its logical line starts, so that
//! configuration errors can point at it.

use std::collections::HashMap;

/// A malformed escape, the one thing that makes `Properties.load` fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PropertiesError {
    /// 1-based line where the logical line holding the bad escape starts.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One key and its value, after escapes are decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The key, exactly as written (decoded, not trimmed).
    pub key: String,
    /// The value, decoded; trailing whitespace is kept, as Java keeps it.
    pub value: String,
    /// 1-based line where this entry starts.
    pub line: usize,
}

/// A key that appeared more than once; the later line's value is the one kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedKey {
    /// The repeated key.
    pub key: String,
    /// Line of the value that was replaced.
    pub replaced_line: usize,
    /// Line of the value now in force.
    pub line: usize,
}

/// The entries of a properties text, in order of each key's first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    entries: Vec<Property>,
    index: HashMap<String, usize>,
    repeated: Vec<RepeatedKey>,
}

impl Properties {
    /// Parses properties text. Only a malformed `\uXXXX` escape is an error.
    pub fn parse(text: &str) -> Result<Properties, PropertiesError> {
        let mut properties = Properties::default();
        for logical in logical_lines(text) {
            let (raw_key, raw_value) = split_key_value(&logical.text);
            let key = unescape(raw_key).map_err(|message| PropertiesError {
                line: logical.line,
                message,
            })?;
            let value = unescape(raw_value).map_err(|message| PropertiesError {
                line: logical.line,
                message,
            })?;
            properties.insert(Property {
                key,
                value,
                line: logical.line,
            });
        }
        Ok(properties)
    }

    fn insert(&mut self, property: Property) {
        match self.index.get(&property.key) {
            Some(&position) => {
                if let Some(existing) = self.entries.get_mut(position) {
                    self.repeated.push(RepeatedKey {
                        key: property.key.clone(),
                        replaced_line: existing.line,
                        line: property.line,
                    });
                    *existing = property;
                }
            }
            None => {
                self.index.insert(property.key.clone(), self.entries.len());
                self.entries.push(property);
            }
        }
    }

    /// The entry for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Property> {
        self.index
            .get(key)
            .and_then(|&position| self.entries.get(position))
    }

    /// All entries, each key once, in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = &Property> {
        self.entries.iter()
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the text held no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every time a key was given again, in file order.
    pub fn repeated(&self) -> &[RepeatedKey] {
        &self.repeated
    }
}

/// A logical line: natural lines joined across continuations, leading whitespace removed,
/// escapes still encoded.
struct LogicalLine {
    text: String,
    line: usize,
}

fn is_properties_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Splits text into natural lines, numbered from 1, accepting all three line terminators.
fn natural_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut number = 1;
    let bytes = text.as_bytes();
    let mut position = 0;
    while position < bytes.len() {
        match bytes.get(position) {
            Some(b'\n') => {
                lines.push((number, &text[start..position]));
                number += 1;
                position += 1;
                start = position;
            }
            Some(b'\r') => {
                lines.push((number, &text[start..position]));
                number += 1;
                position += 1;
                if bytes.get(position) == Some(&b'\n') {
                    position += 1;
                }
                start = position;
            }
            _ => position += 1,
        }
    }
    if start < text.len() {
        lines.push((number, &text[start..]));
    }
    lines
}

fn ends_with_odd_backslashes(text: &str) -> bool {
    text.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let mut logical = Vec::new();
    // A logical line still collecting continuation lines.
    let mut pending: Option<LogicalLine> = None;
    for (number, natural) in natural_lines(text) {
        let visible = natural.trim_start_matches(is_properties_whitespace);
        let mut current = match pending.take() {
            Some(mut continued) => {
                // An empty continuation line ends the logical line, as in Java.
                if visible.is_empty() {
                    if !continued.text.is_empty() {
                        logical.push(continued);
                    }
                    continue;
                }
                // A continuation that follows only an escaped newline starts the entry here.
                if continued.text.is_empty() {
                    continued.line = number;
                }
                continued.text.push_str(visible);
                continued
            }
            None => {
                if visible.is_empty() || visible.starts_with('#') || visible.starts_with('!') {
                    continue;
                }
                LogicalLine {
                    text: visible.to_owned(),
                    line: number,
                }
            }
        };
        if ends_with_odd_backslashes(&current.text) {
            current.text.pop();
            pending = Some(current);
        } else {
            logical.push(current);
        }
    }
    // At end of input a dangling continuation simply ends the entry.
    if let Some(last) = pending {
        if !last.text.is_empty() {
            logical.push(last);
        }
    }
    logical
}

/// Splits a logical line into its still-escaped key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut separator_seen = false;
    for (position, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            key_end = position;
            value_start = position + c.len_utf8();
            separator_seen = true;
            break;
        }
        if !escaped && is_properties_whitespace(c) {
            key_end = position;
            value_start = position + c.len_utf8();
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let key = &line[..key_end];
    let mut rest = &line[value_start..];
    // After a whitespace separator, one `=` or `:` may still follow, with whitespace around.
    loop {
        let trimmed = rest.trim_start_matches(is_properties_whitespace);
        match trimmed.chars().next() {
            Some(c @ ('=' | ':')) if !separator_seen => {
                separator_seen = true;
                rest = &trimmed[c.len_utf8()..];
            }
            _ => {
                rest = trimmed;
                break;
            }
        }
    }
    (key, rest)
}

/// Decodes Java escapes. `\uXXXX` sequences are gathered as UTF-16 so that surrogate pairs
/// become one character; an unpaired surrogate becomes U+FFFD, since Rust strings cannot
/// hold it.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut utf16: Vec<u16> = Vec::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush_utf16(&mut utf16, &mut out);
            out.push(c);
            continue;
        }
        let Some(escaped) = chars.next() else {
            // Continuation handling removes a final lone backslash; nothing is left to decode.
            break;
        };
        if escaped == 'u' {
            let mut unit: u16 = 0;
            for _ in 0..4 {
                let digit = chars.next().and_then(|d| d.to_digit(16)).ok_or_else(|| {
                    "malformed \\uXXXX escape (four hex digits needed)".to_owned()
                })?;
                // Four hex digits fit in 16 bits.
                unit = (unit << 4) | digit as u16;
            }
            utf16.push(unit);
            continue;
        }
        flush_utf16(&mut utf16, &mut out);
        out.push(match escaped {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\u{c}',
            other => other,
        });
    }
    flush_utf16(&mut utf16, &mut out);
    Ok(out)
}

fn flush_utf16(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.extend(
        char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, usize)> {
        Properties::parse(text)
            .unwrap()
            .iter()
            .map(|p| (p.key.clone(), p.value.clone(), p.line))
            .collect()
    }

    fn one(text: &str) -> (String, String) {
        let all = pairs(text);
        assert_eq!(all.len(), 1, "expected one entry in {text:?}, got {all:?}");
        (all[0].0.clone(), all[0].1.clone())
    }

    #[test]
    fn separators_equals_colon_and_whitespace() {
        assert_eq!(one("a=b"), ("a".into(), "b".into()));
        assert_eq!(one("a:b"), ("a".into(), "b".into()));
        assert_eq!(one("a b"), ("a".into(), "b".into()));
        assert_eq!(one("a\tb"), ("a".into(), "b".into()));
        assert_eq!(one("a \u{c} b"), ("a".into(), "b".into()));
        assert_eq!(one("a  =  b"), ("a".into(), "b".into()));
        assert_eq!(one("a : b"), ("a".into(), "b".into()));
    }

    #[test]
    fn only_first_separator_is_consumed() {
        assert_eq!(one("a==b"), ("a".into(), "=b".into()));
        assert_eq!(one("a = :b"), ("a".into(), ":b".into()));
        assert_eq!(one("a b=c"), ("a".into(), "b=c".into()));
        assert_eq!(one("url=http://x:1/"), ("url".into(), "http://x:1/".into()));
    }

    #[test]
    fn key_without_value() {
        assert_eq!(one("lonely"), ("lonely".into(), "".into()));
        assert_eq!(one("lonely="), ("lonely".into(), "".into()));
        assert_eq!(one("lonely   "), ("lonely".into(), "".into()));
    }

    #[test]
    fn trailing_whitespace_of_value_is_kept() {
        assert_eq!(one("a=b  "), ("a".into(), "b  ".into()));
    }

    #[test]
    fn comments_and_blank_lines() {
        let all = pairs("# hash\n! bang\n\n   \n  # indented\nk=v\n\t! tabbed\n");
        assert_eq!(all, vec![("k".into(), "v".into(), 6)]);
    }

    #[test]
    fn hash_after_key_is_part_of_value() {
        assert_eq!(
            one("k=v # not a comment"),
            ("k".into(), "v # not a comment".into())
        );
    }

    #[test]
    fn leading_whitespace_is_skipped() {
        assert_eq!(pairs("   k = v\n"), vec![("k".into(), "v".into(), 1)]);
    }

    #[test]
    fn line_continuation_joins_and_drops_leading_whitespace() {
        let all = pairs("k = one, \\\n     two, \\\n\tthree\nnext=1\n");
        assert_eq!(
            all,
            vec![
                ("k".into(), "one, two, three".into(), 1),
                ("next".into(), "1".into(), 4)
            ]
        );
    }

    #[test]
    fn continuation_line_starting_with_hash_is_content() {
        assert_eq!(one("k=a\\\n#b"), ("k".into(), "a#b".into()));
    }

    #[test]
    fn comment_line_does_not_continue() {
        let all = pairs("# comment \\\nk=v\n");
        assert_eq!(all, vec![("k".into(), "v".into(), 2)]);
    }

    #[test]
    fn even_backslashes_do_not_continue() {
        let all = pairs("k=a\\\\\nnext=b\n");
        assert_eq!(
            all,
            vec![
                ("k".into(), "a\\".into(), 1),
                ("next".into(), "b".into(), 2)
            ]
        );
    }

    #[test]
    fn empty_continuation_line_ends_entry() {
        let all = pairs("k=a\\\n\nnext=b\n");
        assert_eq!(
            all,
            vec![("k".into(), "a".into(), 1), ("next".into(), "b".into(), 3)]
        );
    }

    #[test]
    fn continuation_at_end_of_input() {
        assert_eq!(one("k=a\\"), ("k".into(), "a".into()));
    }

    #[test]
    fn line_terminators_cr_lf_and_crlf() {
        let all = pairs("a=1\rb=2\r\nc=3\nd=4");
        assert_eq!(
            all,
            vec![
                ("a".into(), "1".into(), 1),
                ("b".into(), "2".into(), 2),
                ("c".into(), "3".into(), 3),
                ("d".into(), "4".into(), 4)
            ]
        );
        assert_eq!(one("k=a\\\r\n  b\r\n"), ("k".into(), "ab".into()));
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            one("k=a\\tb\\nc\\rd\\fe"),
            ("k".into(), "a\tb\nc\rd\u{c}e".into())
        );
        assert_eq!(one("k=\\u0041\\u00e9"), ("k".into(), "Aé".into()));
        assert_eq!(one("k=\\q\\\\"), ("k".into(), "q\\".into()));
        assert_eq!(one("k=\\uD83D\\uDE00"), ("k".into(), "😀".into()));
    }

    #[test]
    fn escaped_separators_belong_to_the_key() {
        assert_eq!(one("a\\=b=c"), ("a=b".into(), "c".into()));
        assert_eq!(one("a\\:b:c"), ("a:b".into(), "c".into()));
        assert_eq!(one("a\\ b c"), ("a b".into(), "c".into()));
    }

    #[test]
    fn escaped_leading_space_in_value_is_kept() {
        assert_eq!(one("k=\\  v"), ("k".into(), "  v".into()));
    }

    #[test]
    fn malformed_unicode_escape_names_line() {
        let err = Properties::parse("a=1\nb=\\u12g4\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("\\uXXXX"), "{err}");
        assert!(Properties::parse("b=\\u12").is_err());
    }

    #[test]
    fn repeated_key_last_wins_and_is_recorded() {
        let props = Properties::parse("a=1\nb=2\na=3\n").unwrap();
        assert_eq!(props.len(), 2);
        let a = props.get("a").unwrap();
        assert_eq!((a.value.as_str(), a.line), ("3", 3));
        assert_eq!(
            props.repeated(),
            &[RepeatedKey {
                key: "a".into(),
                replaced_line: 1,
                line: 3
            }]
        );
    }

    #[test]
    fn entry_line_is_where_it_starts() {
        let all = pairs("\n\n# c\n  k = v \\\n w\n");
        assert_eq!(all, vec![("k".into(), "v w".into(), 4)]);
    }

    #[test]
    fn empty_input() {
        assert!(Properties::parse("").unwrap().is_empty());
        assert!(Properties::parse("\n\n# only comments\n")
            .unwrap()
            .is_empty());
    }
}
