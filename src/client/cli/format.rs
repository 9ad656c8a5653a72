//! How zkCli prints things: Apache's formats (the Stat block, ACL lines,
//! dates as Java's `Date.toString()`), the safe rendering of binary data,
//! hex dumps, and the `--json` forms.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::proto::{perms, Acl, Stat};

/// Apache's Stat block (`StatPrinter`), one field a line.
pub fn stat_block(stat: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\n\
         cversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\n\
         dataLength = {}\nnumChildren = {}\n",
        stat.czxid,
        java_date(stat.ctime),
        stat.mzxid,
        java_date(stat.mtime),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}

/// Milliseconds since the epoch as Java's `Date.toString()` prints them in
/// the local time zone: `Sun Nov 22 05:30:21 UTC 2026`.
pub fn java_date(millis: i64) -> String {
    let seconds = millis.div_euclid(1000) as libc::time_t;
    // SAFETY: localtime_r (which reads TZ once, on first use) and strftime
    // write only into the buffers given, which are sized for them, and the
    // format is NUL-terminated.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&seconds, &mut tm).is_null() {
            return millis.to_string();
        }
        let mut buf = [0u8; 64];
        let format = b"%a %b %d %H:%M:%S %Z %Y\0";
        let len = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            format.as_ptr().cast(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }
}

/// Apache's permission letters (`ZKUtil.getPermString`): c d r w a.
pub fn perm_string(bits: i32) -> String {
    let mut out = String::new();
    for (bit, letter) in [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ] {
        if bits & bit != 0 {
            out.push(letter);
        }
    }
    out
}

/// One ACL entry as `getAcl` prints it: the id in jute's record text form
/// (which ends in a newline), then `: perms`.
pub fn acl_entry(acl: &Acl) -> String {
    format!(
        "{},{}\n: {}",
        jute_string(&acl.id.scheme),
        jute_string(&acl.id.id),
        perm_string(acl.perms)
    )
}

/// A string in jute's text form: a leading quote and a few characters
/// percent-escaped.
fn jute_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// How node data is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    /// As is when it is printable text, escaped otherwise.
    Safe,
    /// Base64 (Apache's `get -b`).
    Base64,
    /// A hex dump (Apache's `get -x`).
    Hex,
}

/// Renders data for a terminal or a script.
pub fn render_data(data: &[u8], format: DataFormat) -> String {
    match format {
        DataFormat::Safe => safe_text(data),
        DataFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(data),
        DataFormat::Hex => hex_dump(data),
    }
}

/// Whether data can go to a terminal unchanged: valid UTF-8 without control
/// characters other than tab and line breaks.
pub fn is_printable(data: &[u8]) -> bool {
    match std::str::from_utf8(data) {
        Ok(text) => text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r')),
        Err(_) => false,
    }
}

/// Printable data as is; anything else with its control characters and
/// invalid bytes escaped (`\n`, `\x00`, `\u{85}`) and backslashes doubled,
/// so that the output is unambiguous and cannot drive the terminal.
pub fn safe_text(data: &[u8]) -> String {
    if is_printable(data) {
        return String::from_utf8_lossy(data).into_owned();
    }
    let mut out = String::with_capacity(data.len() * 2);
    for chunk in data.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() && (c as u32) < 0x80 => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out
}

/// A hex dump in the layout Apache's `get -x` prints (netty's
/// `prettyHexDump`): offsets, sixteen bytes a row, and their ASCII.
pub fn hex_dump(data: &[u8]) -> String {
    let mut out = String::new();
    out.push_str("         +-------------------------------------------------+\n");
    out.push_str("         |  0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f |\n");
    out.push_str("+--------+-------------------------------------------------+----------------+");
    for (row, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "\n|{:08x}|", row * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str(" |");
        for i in 0..16 {
            out.push(match chunk.get(i) {
                Some(&b) if (0x20..0x7f).contains(&b) => b as char,
                Some(_) => '.',
                None => ' ',
            });
        }
        out.push('|');
    }
    out.push_str("\n+--------+-------------------------------------------------+----------------+");
    out
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Stat as a JSON object, with Apache's field names and zxids and times
/// as plain numbers.
pub fn json_stat(stat: &Stat) -> String {
    format!(
        "{{\"cZxid\":{},\"ctime\":{},\"mZxid\":{},\"mtime\":{},\"pZxid\":{},\
         \"cversion\":{},\"dataVersion\":{},\"aclVersion\":{},\"ephemeralOwner\":{},\
         \"dataLength\":{},\"numChildren\":{}}}",
        stat.czxid,
        stat.ctime,
        stat.mzxid,
        stat.mtime,
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}

/// Node data in JSON: text when it is UTF-8, base64 otherwise, with the
/// encoding named.
pub fn json_data(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => format!("\"data\":{},\"encoding\":\"utf8\"", json_string(text)),
        Err(_) => format!(
            "\"data\":{},\"encoding\":\"base64\"",
            json_string(&base64::engine::general_purpose::STANDARD.encode(data))
        ),
    }
}

/// A list of strings as a JSON array.
pub fn json_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| json_string(s)).collect();
    format!("[{}]", items.join(","))
}

/// An ACL as a JSON array of `{scheme, id, perms}`.
pub fn json_acl(acl: &[Acl]) -> String {
    let items: Vec<String> = acl
        .iter()
        .map(|a| {
            format!(
                "{{\"scheme\":{},\"id\":{},\"perms\":{}}}",
                json_string(&a.id.scheme),
                json_string(&a.id.id),
                json_string(&perm_string(a.perms))
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Id;

    #[test]
    fn acl_lines_match_apache() {
        let acl = Acl {
            perms: perms::ALL,
            id: Id::anyone(),
        };
        assert_eq!(acl_entry(&acl), "'world,'anyone\n: cdrwa");
        let acl = Acl {
            perms: perms::READ | perms::ADMIN,
            id: Id::new("digest", "u:a,b"),
        };
        assert_eq!(acl_entry(&acl), "'digest,'u:a%2Cb\n: ra");
    }

    #[test]
    fn binary_data_is_escaped_and_text_is_not() {
        assert_eq!(safe_text(b"hello world\n"), "hello world\n");
        assert_eq!(safe_text("héllo".as_bytes()), "héllo");
        assert_eq!(
            safe_text(b"a\x00b\\\xff\x1b[2J"),
            "a\\x00b\\\\\\xff\\x1b[2J"
        );
        assert!(!is_printable(b"\x1b[31m"));
    }

    #[test]
    fn hex_dump_rows() {
        let dump = hex_dump(b"hello");
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(
            lines[3],
            "|00000000| 68 65 6c 6c 6f                                  |hello           |"
        );
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_string("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
        assert_eq!(
            json_data(&[0xff]),
            "\"data\":\"/w==\",\"encoding\":\"base64\""
        );
    }

    #[test]
    fn dates_look_like_java() {
        std::env::set_var("TZ", "UTC");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    }
}
