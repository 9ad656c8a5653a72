//! How zkCli prints things: Apache's formats (the Stat block, ACL lines,
//! dates as Java's `Date.toString()`), the safe rendering of binary data,
//! hex dumps, and the `--json` forms.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::Serialize;

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
    to_json(&s)
}

/// Serializes one of the `--json` forms. Serializing these plain structs
/// cannot fail; an empty object stands in should it ever.
fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("{}"))
}

/// A Stat in JSON, with Apache's field names and zxids and times as plain
/// numbers. Fields are declared in the order they are printed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonStat {
    #[serde(rename = "cZxid")]
    czxid: i64,
    ctime: i64,
    #[serde(rename = "mZxid")]
    mzxid: i64,
    mtime: i64,
    #[serde(rename = "pZxid")]
    pzxid: i64,
    cversion: i32,
    data_version: i32,
    acl_version: i32,
    ephemeral_owner: i64,
    data_length: i32,
    num_children: i32,
}

impl From<&Stat> for JsonStat {
    fn from(stat: &Stat) -> JsonStat {
        JsonStat {
            czxid: stat.czxid,
            ctime: stat.ctime,
            mzxid: stat.mzxid,
            mtime: stat.mtime,
            pzxid: stat.pzxid,
            cversion: stat.cversion,
            data_version: stat.version,
            acl_version: stat.aversion,
            ephemeral_owner: stat.ephemeral_owner,
            data_length: stat.data_length,
            num_children: stat.num_children,
        }
    }
}

/// One ACL entry in JSON, its permissions as letters.
#[derive(Serialize)]
struct JsonAclEntry<'a> {
    scheme: &'a str,
    id: &'a str,
    perms: String,
}

/// How node data travels in JSON: text when it is UTF-8, base64 otherwise.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum JsonEncoding {
    Utf8,
    Base64,
}

/// `ls --json`: the children, and the Stat with `-s`.
pub fn json_children(path: &str, children: &[String], stat: Option<&Stat>) -> String {
    #[derive(Serialize)]
    struct Children<'a> {
        path: &'a str,
        children: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        stat: Option<JsonStat>,
    }
    to_json(&Children {
        path,
        children,
        stat: stat.map(JsonStat::from),
    })
}

/// `get --json`: the data with its encoding named, and the Stat.
pub fn json_node(path: &str, data: &[u8], stat: &Stat) -> String {
    #[derive(Serialize)]
    struct Node<'a> {
        path: &'a str,
        data: std::borrow::Cow<'a, str>,
        encoding: JsonEncoding,
        stat: JsonStat,
    }
    let (data, encoding) = match std::str::from_utf8(data) {
        Ok(text) => (text.into(), JsonEncoding::Utf8),
        Err(_) => (
            base64::engine::general_purpose::STANDARD
                .encode(data)
                .into(),
            JsonEncoding::Base64,
        ),
    };
    to_json(&Node {
        path,
        data,
        encoding,
        stat: stat.into(),
    })
}

/// `stat --json`.
pub fn json_path_stat(path: &str, stat: &Stat) -> String {
    #[derive(Serialize)]
    struct PathStat<'a> {
        path: &'a str,
        stat: JsonStat,
    }
    to_json(&PathStat {
        path,
        stat: stat.into(),
    })
}

/// `getAcl --json`: the ACL as `{scheme, id, perms}` entries, and the Stat.
pub fn json_acl(path: &str, acl: &[Acl], stat: &Stat) -> String {
    #[derive(Serialize)]
    struct PathAcl<'a> {
        path: &'a str,
        acl: Vec<JsonAclEntry<'a>>,
        stat: JsonStat,
    }
    to_json(&PathAcl {
        path,
        acl: acl
            .iter()
            .map(|a| JsonAclEntry {
                scheme: &a.id.scheme,
                id: &a.id.id,
                perms: perm_string(a.perms),
            })
            .collect(),
        stat: stat.into(),
    })
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
        let stat = Stat::default();
        assert!(json_node("/b", &[0xff], &stat)
            .starts_with("{\"path\":\"/b\",\"data\":\"/w==\",\"encoding\":\"base64\",\"stat\":{"));
    }

    #[test]
    fn json_forms_keep_apache_field_order() {
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        };
        assert_eq!(
            json_path_stat("/a", &stat),
            "{\"path\":\"/a\",\"stat\":{\"cZxid\":1,\"ctime\":3,\"mZxid\":2,\"mtime\":4,\
             \"pZxid\":11,\"cversion\":6,\"dataVersion\":5,\"aclVersion\":7,\
             \"ephemeralOwner\":8,\"dataLength\":9,\"numChildren\":10}}"
        );
        assert_eq!(
            json_children("/a", &["x".into()], None),
            "{\"path\":\"/a\",\"children\":[\"x\"]}"
        );
        assert!(json_children("/a", &[], Some(&stat))
            .starts_with("{\"path\":\"/a\",\"children\":[],\"stat\":{\"cZxid\":1,"));
        let acl = [Acl {
            perms: perms::READ | perms::ADMIN,
            id: Id::new("digest", "u:x"),
        }];
        assert!(json_acl("/a", &acl, &stat).starts_with(
            "{\"path\":\"/a\",\"acl\":[{\"scheme\":\"digest\",\"id\":\"u:x\",\"perms\":\"ra\"}],\"stat\":{"
        ));
    }

    #[test]
    fn dates_look_like_java() {
        std::env::set_var("TZ", "UTC");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
    }
}
