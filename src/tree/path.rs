//! Znode path rules, as Apache's `PathUtils` enforces them.
//!
//! Apache checks paths character by character in UTF-16 code units (Java
//! `char`s), so the forbidden ranges include the surrogates: any character
//! outside the Basic Multilingual Plane is rejected. We walk the UTF-16
//! encoding to give exactly the same answers.

use crate::proto::ErrorCode;

/// Checks `path` against Apache's `PathUtils.validatePath` rules: absolute, no
/// trailing slash (except the root), no empty, `.` or `..` components, no NUL
/// and none of the control, surrogate, private-use or specials characters.
///
/// With `is_sequential`, the path is checked as if the sequence suffix were
/// already appended, so `/queue/` is a valid sequential prefix.
pub fn validate_path(path: &str, is_sequential: bool) -> Result<(), ErrorCode> {
    let valid = if is_sequential {
        // A digit stands in for the suffix, exactly as Apache does it.
        is_valid_path(&format!("{path}1"))
    } else {
        is_valid_path(path)
    };
    if valid {
        Ok(())
    } else {
        Err(ErrorCode::BadArguments)
    }
}

fn is_valid_path(path: &str) -> bool {
    let units: Vec<u16> = path.encode_utf16().collect();
    let Some(&first) = units.first() else {
        return false;
    };
    if first != u16::from(b'/') {
        return false;
    }
    if units.len() == 1 {
        return true;
    }
    if units.last() == Some(&u16::from(b'/')) {
        return false;
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    // A component is exactly "." or ".." when a slash (or the end) follows the dots
    // and a slash precedes them.
    let ends_component = |i: usize| units.get(i + 1).map_or(true, |&u| u == slash);
    for i in 1..units.len() {
        let c = units[i];
        let last = units[i - 1];
        if c == 0 {
            return false;
        }
        if c == slash && last == slash {
            return false;
        }
        if c == dot && last == dot {
            if i >= 2 && units[i - 2] == slash && ends_component(i) {
                return false;
            }
            continue;
        }
        if c == dot {
            if last == slash && ends_component(i) {
                return false;
            }
            continue;
        }
        if is_forbidden_unit(c) {
            return false;
        }
    }
    true
}

fn is_forbidden_unit(c: u16) -> bool {
    matches!(c, 0x0001..=0x001f | 0x007f..=0x009f | 0xd800..=0xf8ff | 0xfff0..=0xffff)
}

/// The parent of `path` by Apache's rule (everything before the last slash),
/// with the root's alias `""` spelled `/`. `None` for the root and for strings
/// without a slash.
pub fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let last_slash = path.rfind('/')?;
    if last_slash == 0 {
        Some("/")
    } else {
        Some(&path[..last_slash])
    }
}

/// The last component of `path` (everything after the last slash).
pub(crate) fn name_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Apache's `PathUtils.getTopNamespace`: the first component, if the path has one.
pub(crate) fn top_namespace(path: &str) -> Option<&str> {
    // Java's split drops trailing empty strings, so "/" has no namespace but
    // "//x" has an empty one.
    let mut parts = path.split('/');
    parts.next()?;
    let second = parts.next()?;
    if second.is_empty() && parts.all(str::is_empty) {
        return None;
    }
    Some(second)
}

/// Java's `String.length()`: the path's length in UTF-16 code units, which is
/// what Apache adds up for `approximate_data_size`.
pub(crate) fn java_length(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.encode_utf16().count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_path_matches_apache_table() {
        let cases: &[(&str, bool)] = &[
            ("/", true),
            ("/this is / a valid/path", true),
            ("", false),
            ("not/valid", false),
            ("/ends/with/slash/", false),
            ("/test\u{0000}", false),
            ("/double//slash", false),
            ("/single/./period", false),
            ("/double/../period", false),
            ("/.", false),
            ("/..", false),
            ("/a/.", false),
            ("/a/..", false),
            ("/...", true),
            ("/.a", true),
            ("/a.", true),
            ("/..a", true),
            ("/a..", true),
            ("/name/with.period.", true),
            ("/test\u{0001}", false),
            ("/test\u{001F}", false),
            ("/test\u{0020}", true),
            ("/test\u{007e}", true),
            ("/test\u{007f}", false),
            ("/test\u{009f}", false),
            ("/test\u{00a0}", true),
            ("/test\u{d7ff}", true),
            ("/test\u{e000}", false),
            ("/test\u{f8ff}", false),
            ("/test\u{f900}", true),
            ("/test\u{ffef}", true),
            ("/test\u{fff0}", false),
            ("/test\u{fffd}", false),
            // Outside the BMP: encoded as surrogates, which Apache rejects.
            ("/emoji\u{1F600}", false),
            ("//", false),
            ("/a//", false),
        ];
        for &(path, ok) in cases {
            assert_eq!(validate_path(path, false).is_ok(), ok, "path {path:?}");
        }
    }

    #[test]
    fn validate_path_sequential_appends_a_digit() {
        assert_eq!(validate_path("/queue/", true), Ok(()));
        assert_eq!(validate_path("/", true), Ok(()));
        assert_eq!(
            validate_path("/queue/", false),
            Err(ErrorCode::BadArguments)
        );
        assert_eq!(validate_path("/a/.", true), Ok(()));
        assert_eq!(validate_path("/a//", true), Err(ErrorCode::BadArguments));
        assert_eq!(validate_path("", true), Err(ErrorCode::BadArguments));
    }

    #[test]
    fn parent_and_name() {
        assert_eq!(parent_of("/"), None);
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/a/b/c"), Some("/a/b"));
        assert_eq!(parent_of("abc"), None);
        assert_eq!(name_of("/a/b"), "b");
        assert_eq!(name_of("/a"), "a");
        assert_eq!(name_of("/"), "");
    }

    #[test]
    fn top_namespace_like_apache() {
        assert_eq!(top_namespace("/n0/n1/n2/n3"), Some("n0"));
        assert_eq!(top_namespace("/n0"), Some("n0"));
        assert_eq!(top_namespace("/"), None);
        assert_eq!(top_namespace(""), None);
    }

    #[test]
    fn java_length_counts_utf16_units() {
        assert_eq!(java_length("/abc"), 4);
        assert_eq!(java_length("/\u{e9}"), 2);
        assert_eq!(java_length("/\u{1F600}"), 3);
    }
}
