//! ACL evaluation and preparation, with the semantics of Apache's
//! `ZooKeeperServer.checkACL`, `PrepRequestProcessor.fixupACL` and its
//! authentication providers (`world`, `digest`, `ip`, `sasl`, `x509`).
//!
//! Schemes we know are handled here by name rather than through a provider
//! registry: there are only five, and their rules never change at run time.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use crate::proto::{Acl, ErrorCode, Id};

/// Whether identities `auth` may exercise `perm` on a node whose ACL is `acl`.
///
/// An empty ACL grants everything (as in Apache); so does any identity with the
/// `super` scheme. Otherwise an entry must grant `perm` and match: `world:anyone`
/// matches everyone, `digest` and `x509` ids match by equality, `sasl` by
/// equality or when the session is the `super` principal, and `ip` entries
/// (`addr` or `addr/bits`, IPv4 or IPv6) match the session's `ip` id.
pub fn check(acl: &[Acl], perm: i32, auth: &[Id], skip_acl: bool) -> bool {
    if skip_acl || acl.is_empty() {
        return true;
    }
    if auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter()
        .filter(|entry| entry.perms & perm != 0)
        .any(|entry| entry_matches(&entry.id, auth))
}

fn entry_matches(acl_id: &Id, auth: &[Id]) -> bool {
    let same_scheme = || auth.iter().filter(|a| a.scheme == acl_id.scheme);
    match acl_id.scheme.as_str() {
        "world" => acl_id.id == "anyone",
        "digest" | "x509" => same_scheme().any(|a| a.id == acl_id.id),
        "sasl" => same_scheme().any(|a| a.id == "super" || a.id == acl_id.id),
        "ip" => same_scheme().any(|a| ip_matches(&a.id, &acl_id.id)),
        _ => false,
    }
}

/// Apache's `DigestAuthenticationProvider.generateDigest`: `"user:password"`
/// becomes `"user:" + base64(sha1("user:password"))`.
pub fn digest(user_password: &str) -> String {
    let user = user_password
        .split_once(':')
        .map_or(user_password, |(user, _)| user);
    let hash = Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", BASE64.encode(hash))
}

/// Whether `user_password` (as a client sends it with `addauth digest`)
/// authenticates as the configured super user, whose setting has the form
/// `super:<base64 sha1>`.
pub fn super_digest_matches(super_digest: &str, user_password: &str) -> bool {
    digest(user_password) == super_digest
}

/// Prepares an ACL from a create or setACL request, as `fixupACL` does:
/// removes duplicates, rejects an empty list, unknown schemes and malformed ids
/// with `InvalidAcl`, and replaces each `auth` entry by the session's
/// authenticated identities (`digest`, `sasl`, `x509`; not `ip`, `world` or
/// `super`), failing if there are none.
///
/// Permission bits are passed through unchecked, as Apache does.
pub fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        let id = &entry.id;
        if id.scheme == "world" && id.id == "anyone" {
            fixed.push(entry.clone());
        } else if id.scheme == "auth" {
            let mut expanded = false;
            for authenticated in auth.iter().filter(|a| is_authenticated_scheme(&a.scheme)) {
                expanded = true;
                fixed.push(Acl {
                    perms: entry.perms,
                    id: authenticated.clone(),
                });
            }
            if !expanded {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid_id(id) {
            fixed.push(entry.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(fixed)
}

/// Schemes whose provider says `isAuthenticated()`: only these stand in for
/// the `auth` pseudo-scheme.
fn is_authenticated_scheme(scheme: &str) -> bool {
    matches!(scheme, "digest" | "sasl" | "x509")
}

fn is_valid_id(id: &Id) -> bool {
    match id.scheme.as_str() {
        "digest" => java_split_count(&id.id, ':') == 2,
        "ip" => parse_ip_expr(&id.id).is_some(),
        "sasl" => is_valid_kerberos_name(&id.id),
        // Apache defers to X500Principal's parser; distinguished names are
        // opaque to us and compared by equality only.
        "x509" => true,
        _ => false,
    }
}

/// How many pieces Java's `s.split(sep)` returns: trailing empty strings are
/// dropped, but a string without the separator is one piece even when empty.
fn java_split_count(s: &str, sep: char) -> usize {
    if !s.contains(sep) {
        return 1;
    }
    let pieces: Vec<&str> = s.split(sep).collect();
    let trailing_empty = pieces.iter().rev().take_while(|p| p.is_empty()).count();
    pieces.len() - trailing_empty
}

/// Apache's `KerberosName` accepts a name without `@` as a bare service name,
/// and otherwise wants `service[/host]@realm` with no further `/` or `@`.
fn is_valid_kerberos_name(name: &str) -> bool {
    let Some((principal, realm)) = name.split_once('@') else {
        return true;
    };
    if realm.contains(['@', '/']) {
        return false;
    }
    match principal.split_once('/') {
        Some((service, host)) => !service.contains('@') && !host.contains(['/', '@']),
        None => true,
    }
}

/// An `ip` ACL expression: the address bytes (4 or 16) and the prefix length.
fn parse_ip_expr(expr: &str) -> Option<(Vec<u8>, u32)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (expr, None),
    };
    let bytes = parse_ip_addr(addr)?;
    let max_bits = (bytes.len() * 8) as u32;
    let bits = match bits {
        Some(bits) => {
            let bits = java_parse_int(bits, 10)?;
            u32::try_from(bits).ok().filter(|&b| b <= max_bits)?
        }
        None => max_bits,
    };
    Some((bytes, bits))
}

/// Whether the client address `client` falls within the ACL expression `expr`.
fn ip_matches(client: &str, expr: &str) -> bool {
    let Some((mut acl_addr, bits)) = parse_ip_expr(expr) else {
        return false;
    };
    let Some(mut client_addr) = parse_ip_addr(client) else {
        return false;
    };
    if client_addr.len() != acl_addr.len() {
        return false;
    }
    mask(&mut acl_addr, bits);
    mask(&mut client_addr, bits);
    client_addr == acl_addr
}

fn mask(addr: &mut [u8], bits: u32) {
    let whole = (bits / 8) as usize;
    let partial = bits % 8;
    for (i, byte) in addr.iter_mut().enumerate() {
        if i < whole {
            continue;
        }
        if i == whole && partial != 0 {
            *byte &= !(0xffu8 >> partial);
        } else {
            *byte = 0;
        }
    }
}

/// Apache's address parser: anything with a `:` is IPv6, else anything with a
/// `.` is IPv4.
fn parse_ip_addr(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        parse_ipv6(addr)
    } else if addr.contains('.') {
        parse_ipv4(addr)
    } else {
        None
    }
}

fn parse_ipv4(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts
        .iter()
        .map(|part| {
            java_parse_int(part, 10)
                .filter(|v| (0..=255).contains(v))
                .map(|v| v as u8)
        })
        .collect()
}

/// IPv6 in Apache's own dialect: eight groups, or fewer around one `::`; no
/// embedded IPv4 and no zone ids.
fn parse_ipv6(addr: &str) -> Option<Vec<u8>> {
    let halves: Vec<&str> = addr.split("::").collect();
    let split_groups = |s: &str| -> Vec<String> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split(':').map(str::to_owned).collect()
        }
    };
    let (head, tail) = match halves.as_slice() {
        [whole] => {
            let groups: Vec<String> = whole.split(':').map(str::to_owned).collect();
            if groups.len() != 8 {
                return None;
            }
            (groups, Vec::new())
        }
        [head, tail] => {
            let (head, tail) = (split_groups(head), split_groups(tail));
            if head.len() + tail.len() >= 8 {
                return None;
            }
            (head, tail)
        }
        _ => return None,
    };
    let mut bytes = vec![0u8; 16];
    let mut write = |start: usize, groups: &[String]| -> Option<()> {
        for (i, group) in groups.iter().enumerate() {
            if group.is_empty() || group.chars().count() > 4 {
                return None;
            }
            let value = java_parse_int(group, 16)?;
            bytes[start + 2 * i] = (value >> 8) as u8;
            bytes[start + 2 * i + 1] = value as u8;
        }
        Some(())
    };
    write(0, &head)?;
    write(16 - 2 * tail.len(), &tail)?;
    Some(bytes)
}

/// Java's `Integer.parseInt` for ASCII input: an optional sign, then at least
/// one digit, within `i32`.
fn java_parse_int(s: &str, radix: u32) -> Option<i32> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::perms;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    #[test]
    fn digest_matches_apache_generate_digest() {
        // Values produced by Apache's DigestAuthenticationProvider.
        assert_eq!(digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
        assert_eq!(digest("user:password"), "user:tpUq/4Pn5A64fVZyQ0gOJ8ZWqkY=");
        // Only the first colon separates the user.
        assert_eq!(
            digest("a:b:c"),
            format!("a:{}", BASE64.encode(Sha1::digest(b"a:b:c")))
        );
        assert_eq!(
            digest("nocolon"),
            format!("nocolon:{}", BASE64.encode(Sha1::digest(b"nocolon")))
        );
        assert!(super_digest_matches(
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            "super:test"
        ));
        assert!(!super_digest_matches(
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
            "super:wrong"
        ));
    }

    #[test]
    fn check_world_digest_super_and_empty() {
        let node = vec![
            acl(perms::READ, "world", "anyone"),
            acl(perms::ALL, "digest", "bob:hash"),
        ];
        let nobody: Vec<Id> = vec![Id::new("ip", "10.0.0.1")];
        let bob = vec![Id::new("ip", "10.0.0.1"), Id::new("digest", "bob:hash")];
        let superuser = vec![Id::new("super", "")];
        assert!(check(&node, perms::READ, &nobody, false));
        assert!(!check(&node, perms::WRITE, &nobody, false));
        assert!(check(&node, perms::WRITE, &bob, false));
        assert!(check(&node, perms::ADMIN, &superuser, false));
        assert!(check(&node, perms::WRITE, &nobody, true));
        assert!(check(&[], perms::WRITE, &nobody, false));
        // world with another id, and unknown schemes, never match.
        assert!(!check(
            &[acl(perms::ALL, "world", "bob")],
            perms::READ,
            &nobody,
            false
        ));
        assert!(!check(
            &[acl(perms::ALL, "auth", "")],
            perms::READ,
            &[Id::new("auth", "")],
            false
        ));
        // The scheme must match, not only the id.
        assert!(!check(
            &[acl(perms::ALL, "digest", "x")],
            perms::READ,
            &[Id::new("sasl", "x")],
            false
        ));
    }

    #[test]
    fn check_sasl_and_x509() {
        let node = vec![
            acl(perms::ALL, "sasl", "alice"),
            acl(perms::READ, "x509", "CN=a"),
        ];
        assert!(check(
            &node,
            perms::WRITE,
            &[Id::new("sasl", "alice")],
            false
        ));
        assert!(check(
            &node,
            perms::WRITE,
            &[Id::new("sasl", "super")],
            false
        ));
        assert!(!check(
            &node,
            perms::WRITE,
            &[Id::new("sasl", "bob")],
            false
        ));
        assert!(check(&node, perms::READ, &[Id::new("x509", "CN=a")], false));
        assert!(!check(
            &node,
            perms::WRITE,
            &[Id::new("x509", "CN=a")],
            false
        ));
    }

    #[test]
    fn ip_matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.1", "10.0.0.1", true),
            ("10.0.0.2", "10.0.0.1", false),
            ("10.0.0.2", "10.0.0.1/24", true),
            ("10.0.1.2", "10.0.0.1/24", false),
            ("10.0.1.2", "10.0.0.1/23", true),
            ("10.0.2.2", "10.0.0.1/23", false),
            ("192.168.7.9", "0.0.0.0/0", true),
            ("10.0.0.1", "10.0.0.1/32", true),
            ("10.0.0.1", "10.0.0.1/33", false),
            ("10.0.0.1", "10.0.0.1/-1", false),
            ("10.0.0.1", "10.0.0.1/x", false),
            ("10.0.0.1", "10.0.0.256", false),
            ("10.0.0.1", "10.0.0", false),
            ("10.0.0.1", "+10.0.0.1", true),
            ("10.0.0.1", "localhost", false),
            ("::1", "::1", true),
            ("0:0:0:0:0:0:0:1", "::1", true),
            ("::2", "::1", false),
            ("2001:db8::1", "2001:db8::/32", true),
            ("2001:db9::1", "2001:db8::/32", false),
            ("2001:db8::1", "2001:db8::/129", false),
            (
                "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
                "2001:db8:85a3::8a2e:370:7334",
                true,
            ),
            // IPv4 client against an IPv6 expression and vice versa.
            ("10.0.0.1", "::/0", false),
            ("::1", "0.0.0.0/0", false),
        ];
        for &(client, expr, expected) in cases {
            let node = vec![acl(perms::READ, "ip", expr)];
            assert_eq!(
                check(&node, perms::READ, &[Id::new("ip", client)], false),
                expected,
                "client {client} expr {expr}"
            );
        }
    }

    #[test]
    fn ipv6_parser_rejects_like_apache() {
        for bad in [
            "1",
            "1:2",
            "1::2:",
            ":1::2:",
            "1:2:3:4:5:6:7:8:",
            "1:2:3:4:5:6:7:8:9",
            "1:2::3:4:5:6:7:8",
            "1::2::",
            "1:abcdf::",
            "efgh::",
            "1:: ",
            " 1::",
            "::ffff:1.2.3.4",
        ] {
            assert_eq!(parse_ipv6(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_ipv6("2001:db8::8a2e:370:7334").unwrap(),
            vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x34]
        );
        assert_eq!(parse_ipv6("::").unwrap(), vec![0; 16]);
    }

    #[test]
    fn fixup_acl_table() {
        let digest_user = Id::new("digest", "bob:hash");
        let auth = vec![
            Id::new("ip", "127.0.0.1"),
            digest_user.clone(),
            Id::new("super", ""),
        ];
        let world = acl(perms::ALL, "world", "anyone");

        assert_eq!(fixup_acl(&[], &auth), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup_acl(std::slice::from_ref(&world), &auth),
            Ok(vec![world.clone()])
        );
        // Duplicates go, first occurrence kept in order.
        assert_eq!(
            fixup_acl(
                &[world.clone(), acl(1, "ip", "10.0.0.0/8"), world.clone()],
                &auth
            ),
            Ok(vec![world.clone(), acl(1, "ip", "10.0.0.0/8")])
        );
        // auth expands to authenticated ids only (not ip, not super).
        assert_eq!(
            fixup_acl(&[acl(perms::READ, "auth", "")], &auth),
            Ok(vec![Acl {
                perms: perms::READ,
                id: digest_user.clone()
            }])
        );
        assert_eq!(
            fixup_acl(
                &[acl(perms::READ, "auth", "")],
                &[Id::new("ip", "127.0.0.1")]
            ),
            Err(ErrorCode::InvalidAcl)
        );
        let bad: &[Acl] = &[
            acl(1, "world", "everyone"),
            acl(1, "super", ""),
            acl(1, "unknown", "x"),
            acl(1, "digest", "nopassword"),
            acl(1, "digest", "user:"),
            acl(1, "digest", "a:b:c"),
            acl(1, "ip", "10.0.0.1/40"),
            acl(1, "ip", "host.example"),
            acl(1, "ip", "nonsense"),
            acl(1, "sasl", "a@b@c"),
            acl(1, "sasl", "a/b/c@R"),
        ];
        for entry in bad {
            assert_eq!(
                fixup_acl(std::slice::from_ref(entry), &auth),
                Err(ErrorCode::InvalidAcl),
                "{entry:?}"
            );
        }
        let good: &[Acl] = &[
            acl(1, "digest", "user:abc="),
            acl(1, "digest", ":abc"),
            acl(1, "ip", "10.0.0.1"),
            acl(1, "ip", "10.0.0.0/8"),
            acl(1, "ip", "fe80::/10"),
            acl(1, "sasl", "zkclient"),
            acl(1, "sasl", "zk/host@REALM"),
            acl(1, "x509", "CN=client"),
            // Apache does not validate permission bits.
            acl(0, "world", "anyone"),
            acl(1 << 10, "world", "anyone"),
        ];
        for entry in good {
            assert_eq!(
                fixup_acl(std::slice::from_ref(entry), &auth),
                Ok(vec![entry.clone()]),
                "{entry:?}"
            );
        }
    }
}
