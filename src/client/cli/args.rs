//! Splitting a shell line into words and a command's words into options and
//! arguments, the way Apache's zkCli does (its quoting rule, then
//! commons-cli's parser: options may come anywhere among the arguments).

use std::collections::HashMap;

use super::CliError;

/// Splits a line as Apache's zkCli does: a word is a run of non-blanks, or
/// a whole `"…"` or `'…'` (quotes removed). There are no escapes, and a
/// quote inside a word is an ordinary character.
pub fn split_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let first = rest.chars().next().unwrap_or(' ');
        let (word, after) = if first == '"' || first == '\'' {
            match rest[1..].find(first) {
                Some(end) => (&rest[1..end + 1], &rest[end + 2..]),
                // An unclosed quote is an ordinary word, quote included.
                None => split_at_blank(rest),
            }
        } else {
            split_at_blank(rest)
        };
        words.push(word.to_string());
        rest = after.trim_start();
    }
    words
}

fn split_at_blank(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(at) => (&s[..at], &s[at..]),
        None => (s, ""),
    }
}

// Apache prints commons-cli's exceptions whole, class name included, and
// scripts may match on that text.
const UNRECOGNIZED: &str = "org.apache.commons.cli.UnrecognizedOptionException";
const MISSING_ARGUMENT: &str = "org.apache.commons.cli.MissingArgumentException";
/// For a second option of a mutually exclusive group.
pub const ALREADY_SELECTED: &str = "org.apache.commons.cli.AlreadySelectedException";
/// For a required option group none of whose options was given.
pub const MISSING_OPTION: &str = "org.apache.commons.cli.MissingOptionException";

/// One option a command takes: a one-letter name (`-s`) or a word (`--json`).
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub name: &'static str,
    pub takes_value: bool,
}

/// A flag.
pub const fn flag(name: &'static str) -> Opt {
    Opt {
        name,
        takes_value: false,
    }
}

/// An option with a value.
pub const fn valued(name: &'static str) -> Opt {
    Opt {
        name,
        takes_value: true,
    }
}

/// A command's words sorted into options and arguments. `args[0]` is the
/// command itself.
#[derive(Debug, Default)]
pub struct Parsed {
    pub args: Vec<String>,
    options: HashMap<&'static str, Option<String>>,
    /// The options in the order given, for mutually exclusive groups.
    pub order: Vec<&'static str>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.options.contains_key(name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.options.get(name).and_then(|v| v.as_deref())
    }

    /// The argument at `index` (0 is the command).
    pub fn arg(&self, index: usize) -> Option<&str> {
        self.args.get(index).map(String::as_str)
    }
}

fn is_negative_number(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-') && word[1..].parse::<f64>().is_ok()
}

/// Parses `words` against `spec` as commons-cli's `DefaultParser` does: an
/// option may appear anywhere; `--` ends the options; `-` alone and
/// negative numbers are arguments; `-abc` is `-a -b -c` when those are
/// flags, and `-v3` is `-v 3`.
pub fn parse(spec: &[Opt], words: &[String]) -> Result<Parsed, CliError> {
    let find = |name: &str| spec.iter().find(|o| o.name == name).copied();
    let mut parsed = Parsed::default();
    let mut iter = words.iter().peekable();
    let mut options_done = false;
    let take_value = |opt: Opt,
                      inline: Option<&str>,
                      iter: &mut std::iter::Peekable<std::slice::Iter<'_, String>>|
     -> Result<Option<String>, CliError> {
        if !opt.takes_value {
            return Ok(None);
        }
        if let Some(value) = inline.filter(|v| !v.is_empty()) {
            return Ok(Some(value.to_string()));
        }
        match iter.peek() {
            Some(next) if !next.starts_with('-') || is_negative_number(next) || next.len() == 1 => {
                Ok(iter.next().cloned())
            }
            _ => Err(CliError::usage(format!(
                "{MISSING_ARGUMENT}: Missing argument for option: {}",
                opt.name
            ))),
        }
    };
    while let Some(word) = iter.next() {
        if options_done || parsed.args.is_empty() {
            parsed.args.push(word.clone());
            continue;
        }
        if word == "--" {
            options_done = true;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let opt = find(name).ok_or_else(|| {
                CliError::usage(format!("{UNRECOGNIZED}: Unrecognized option: {word}"))
            })?;
            let value = take_value(opt, inline, &mut iter)?;
            parsed.order.push(opt.name);
            parsed.options.insert(opt.name, value);
            continue;
        }
        let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) else {
            parsed.args.push(word.clone());
            continue;
        };
        if let Some(opt) = find(short) {
            let value = take_value(opt, None, &mut iter)?;
            parsed.order.push(opt.name);
            parsed.options.insert(opt.name, value);
            continue;
        }
        if is_negative_number(word) {
            parsed.args.push(word.clone());
            continue;
        }
        // A cluster of one-letter options, the last of which may take the
        // rest of the word as its value.
        let mut rest = short;
        while let Some(c) = rest.chars().next() {
            let name = &rest[..c.len_utf8()];
            let opt = find(name).ok_or_else(|| {
                CliError::usage(format!("{UNRECOGNIZED}: Unrecognized option: -{name}"))
            })?;
            rest = &rest[c.len_utf8()..];
            if opt.takes_value {
                let value = take_value(opt, Some(rest), &mut iter)?;
                parsed.order.push(opt.name);
                parsed.options.insert(opt.name, value);
                break;
            }
            parsed.order.push(opt.name);
            parsed.options.insert(opt.name, None);
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_line(s)
    }

    #[test]
    fn splitting_follows_apache() {
        assert_eq!(words("  create /a  hello "), ["create", "/a", "hello"]);
        assert_eq!(words("set /a \"two words\""), ["set", "/a", "two words"]);
        assert_eq!(words("set /a 'it''s'"), ["set", "/a", "it", "s"]);
        assert_eq!(words("set /a \"\""), ["set", "/a", ""]);
        assert_eq!(words("set /a a\"b c\""), ["set", "/a", "a\"b", "c\""]);
        assert_eq!(words("set /a \"open"), ["set", "/a", "\"open"]);
        assert!(words("   ").is_empty());
    }

    #[test]
    fn options_anywhere_and_clusters() {
        let spec = [flag("s"), valued("v"), flag("w"), flag("json")];
        let p = parse(&spec, &words("set /a data -s -v 3")).unwrap();
        assert_eq!(p.args, ["set", "/a", "data"]);
        assert!(p.has("s"));
        assert_eq!(p.value("v"), Some("3"));
        let p = parse(&spec, &words("get -sw --json /a")).unwrap();
        assert!(p.has("s") && p.has("w") && p.has("json"));
        let p = parse(&spec, &words("set -v3 /a -1")).unwrap();
        assert_eq!(p.value("v"), Some("3"));
        assert_eq!(p.args, ["set", "/a", "-1"]);
        let p = parse(&spec, &words("set /a -- -s")).unwrap();
        assert_eq!(p.args, ["set", "/a", "-s"]);
        assert_eq!(
            parse(&spec, &words("get -q /a")).unwrap_err().message,
            format!("{UNRECOGNIZED}: Unrecognized option: -q")
        );
        assert_eq!(
            parse(&spec, &words("set /a x -v")).unwrap_err().message,
            format!("{MISSING_ARGUMENT}: Missing argument for option: v")
        );
    }
}
