//! Client-side path checks and the chroot translation.

use super::error::Error;

/// Refuses the paths Apache's client refuses before sending anything, with
/// the same messages (`PathUtils.validatePath`), so zkCli prints what
/// operators are used to.
pub fn validate_path(path: &str) -> Result<(), Error> {
    let invalid = |reason: String| {
        Error::InvalidPath(format!("Invalid path string \"{path}\" caused by {reason}"))
    };
    if path.is_empty() {
        return Err(Error::InvalidPath("Path length must be > 0".into()));
    }
    if !path.starts_with('/') {
        return Err(Error::InvalidPath(
            "Path must start with / character".into(),
        ));
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(Error::InvalidPath(
            "Path must not end with / character".into(),
        ));
    }
    // Positions are counted in UTF-16 units in Apache's message; characters
    // are close enough for a message and exact for ASCII paths.
    let chars: Vec<char> = path.chars().collect();
    for i in 1..chars.len() {
        let c = chars[i];
        let last = chars[i - 1];
        let ends_segment = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            return Err(invalid(format!("null character not allowed @{i}")));
        }
        if c == '/' && last == '/' {
            return Err(invalid(format!("empty node name specified @{i}")));
        }
        if c == '.' && last == '.' && i >= 2 && chars[i - 2] == '/' && ends_segment {
            return Err(invalid(format!("relative paths not allowed @{i}")));
        }
        if c == '.' && last == '/' && ends_segment {
            return Err(invalid(format!("relative paths not allowed @{i}")));
        }
        if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
        {
            return Err(invalid(format!("invalid character @{i}")));
        }
    }
    Ok(())
}

/// Validates a path that will get a sequence suffix: as Apache does, the
/// check runs on the path with a digit appended, so `/a/` is allowed.
pub fn validate_sequential_path(path: &str) -> Result<(), Error> {
    validate_path(&format!("{path}1")).map_err(|_| match validate_path(path) {
        Err(e) => e,
        Ok(()) => Error::InvalidPath(format!("Invalid path string \"{path}\"")),
    })
}

/// Maps paths between the caller's view and the server's under a chroot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chroot(Option<String>);

impl Chroot {
    pub fn new(chroot: Option<String>) -> Chroot {
        Chroot(chroot)
    }

    /// The chroot itself, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The server's path for a caller's path.
    pub fn to_server(&self, client_path: &str) -> String {
        match &self.0 {
            None => client_path.to_string(),
            Some(root) if client_path == "/" => root.clone(),
            Some(root) => format!("{root}{client_path}"),
        }
    }

    /// The caller's path for a server's path; a path outside the chroot is
    /// returned unchanged (the server should never send one).
    pub fn to_client(&self, server_path: &str) -> String {
        match &self.0 {
            None => server_path.to_string(),
            Some(root) => match server_path.strip_prefix(root.as_str()) {
                Some("") => "/".to_string(),
                Some(rest) if rest.starts_with('/') => rest.to_string(),
                _ => server_path.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_messages() {
        let msg = |p: &str| validate_path(p).unwrap_err().to_string();
        assert_eq!(msg("a"), "Path must start with / character");
        assert_eq!(msg(""), "Path length must be > 0");
        assert_eq!(msg("/a/"), "Path must not end with / character");
        assert_eq!(
            msg("/a//b"),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            msg("/a/../b"),
            "Invalid path string \"/a/../b\" caused by relative paths not allowed @4"
        );
        assert_eq!(
            msg("/a/./b"),
            "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"
        );
        assert_eq!(
            msg("/a\u{1}"),
            "Invalid path string \"/a\u{1}\" caused by invalid character @2"
        );
        for ok in ["/", "/a", "/a/b.c", "/..a", "/a.", "/zookeeper/quota"] {
            validate_path(ok).unwrap();
        }
        validate_sequential_path("/a/").unwrap();
        assert!(validate_sequential_path("a").is_err());
    }

    #[test]
    fn chroot_round_trip() {
        let c = Chroot::new(Some("/app".into()));
        assert_eq!(c.to_server("/"), "/app");
        assert_eq!(c.to_server("/x"), "/app/x");
        assert_eq!(c.to_client("/app"), "/");
        assert_eq!(c.to_client("/app/x"), "/x");
        assert_eq!(c.to_client("/apple"), "/apple");
        let none = Chroot::default();
        assert_eq!(none.to_server("/x"), "/x");
        assert_eq!(none.to_client("/x"), "/x");
    }
}
