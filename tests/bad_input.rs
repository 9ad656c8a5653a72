//! Hostile and broken input on the client port: oversized and negative frame lengths, garbage
//! instead of a handshake, truncated requests, unknown and unsupported operations, invalid
//! paths and ACLs, and too many connections from one address. Each case checks what the
//! offending client sees and then that the server still serves a well-behaved client.
//!
//! Tests named `…::apache_reference` run the same checks against Debian's Apache ZooKeeper
//! 3.8; the others state where our server differs from Apache on purpose, or where Apache 3.9
//! differs from 3.8.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::raw::{op, Body, RawClient};
use common::support::{
    assert_still_serves, create_body, digest_id, on_both, raw_client, raw_create, IO_TIMEOUT,
};
use common::{wait_until, Server, ZkUnderTest};

/// How long the server may take to close a connection it refuses.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest frame the server accepts (jute.maxbuffer).
const MAX_FRAME: usize = 0xfffff;

const OK: i32 = 0;
const UNIMPLEMENTED: i32 = -6;
const BAD_ARGUMENTS: i32 = -8;
const NO_NODE: i32 = -101;
const INVALID_ACL: i32 = -114;
const RECONFIG_DISABLED: i32 = -123;

/// A length prefix followed by `payload`.
fn framed(len: i32, payload: &[u8]) -> Vec<u8> {
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

/// A bare TCP connection that sends `bytes` first, as a client that never handshakes would.
fn bare_sending(addr: SocketAddr, bytes: &[u8]) -> RawClient {
    let mut client = RawClient::connect_bare(addr, IO_TIMEOUT).expect("connecting");
    // The server may close as soon as it has seen enough; a failed write is a close too.
    let _ = client.send_bytes(bytes);
    client
}

// --- framing -------------------------------------------------------------------------------------

fn oversized_frames_close_the_connection(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    // Before the handshake: only the length is sent; the server must not wait for 1 MiB.
    let mut early = bare_sending(addr, &((MAX_FRAME + 1) as i32).to_be_bytes());
    assert!(
        early.closed_by_server(CLOSE_TIMEOUT),
        "an oversized handshake frame left the connection open"
    );
    assert_still_serves(addr, "an oversized handshake frame");

    // In a session.
    let mut client = raw_client(addr);
    client
        .send_bytes(&((MAX_FRAME + 1) as i32).to_be_bytes())
        .expect("sending a length");
    assert!(
        client.closed_by_server(CLOSE_TIMEOUT),
        "an oversized request frame left the connection open"
    );
    assert_still_serves(addr, "an oversized request frame");
}
on_both!(
    frame_longer_than_maxbuffer_closes,
    "",
    oversized_frames_close_the_connection
);

/// A request whose frame is exactly jute.maxbuffer long is served.
fn largest_frame_is_served(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut client = raw_client(addr);
    assert_eq!(raw_create(&mut client, "/big", b"", 0), OK);
    // Frame = header (8) + path (4 + 4) + data length (4) + data + version (4).
    let data = vec![b'x'; MAX_FRAME - 8 - 8 - 4 - 4];
    let body = Body::new().string("/big").buffer(&data).int(-1);
    assert_eq!(body.0.len() + 8, MAX_FRAME);
    let reply = client.call(op::SET_DATA, &body).expect("setData");
    assert_eq!(reply.err, OK);
    client.close().unwrap();
}
on_both!(
    frame_of_exactly_maxbuffer_is_served,
    "",
    largest_frame_is_served
);

fn negative_lengths_close_the_connection(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut early = bare_sending(addr, &framed(-5, b"junk"));
    assert!(
        early.closed_by_server(CLOSE_TIMEOUT),
        "a negative handshake length left the connection open"
    );
    let mut client = raw_client(addr);
    client
        .send_bytes(&framed(-1, b""))
        .expect("sending a length");
    assert!(
        client.closed_by_server(CLOSE_TIMEOUT),
        "a negative request length left the connection open"
    );
    assert_still_serves(addr, "negative frame lengths");
}
on_both!(
    negative_frame_length_closes,
    "",
    negative_lengths_close_the_connection
);

fn garbage_handshakes_close_the_connection(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let garbage: [&[u8]; 4] = [
        // An HTTP request: "GET " read as a length is far too long.
        b"GET / HTTP/1.1\r\nHost: zk\r\n\r\n",
        // A TLS ClientHello's first bytes.
        &[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ],
        // A well-framed body too short to be a ConnectRequest.
        &framed(5, b"hello"),
        // A ConnectRequest cut off inside its password.
        &framed(
            28,
            &Body::new().int(0).long(0).int(10_000).long(0).int(16).0,
        ),
    ];
    for bytes in garbage {
        let mut client = bare_sending(addr, bytes);
        assert!(
            client.closed_by_server(CLOSE_TIMEOUT),
            "garbage {bytes:02x?} left the connection open"
        );
        assert_still_serves(addr, "garbage before the handshake");
    }
}
on_both!(
    garbage_before_handshake_closes,
    "",
    garbage_handshakes_close_the_connection
);

/// A frame too short for a request header closes the connection.
fn truncated_headers_close_the_connection(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut client = raw_client(addr);
    client.send_frame(&[0, 0, 0]).expect("sending");
    assert!(
        client.closed_by_server(CLOSE_TIMEOUT),
        "a truncated header left the connection open"
    );
    assert_still_serves(addr, "a truncated request header");
}
on_both!(
    truncated_request_header_closes,
    "",
    truncated_headers_close_the_connection
);

/// A request body that ends early closes the connection: its frame was complete, so the client
/// sent something other than what it meant. (Apache answers MarshallingError and keeps reading.)
#[test]
fn truncated_request_body_closes() {
    let server = Server::start();
    let addr = server.addr();
    let mut create = Body::new().int(1).int(op::CREATE).int(100).0;
    create.extend_from_slice(b"abc");
    let truncated = [
        // create: the path claims 100 bytes, 3 follow.
        create,
        // getData without its watch flag.
        Body::new().int(1).int(op::GET_DATA).string("/zookeeper").0,
        // setData without its version.
        Body::new()
            .int(1)
            .int(op::SET_DATA)
            .string("/zookeeper")
            .buffer(b"x")
            .0,
    ];
    for payload in truncated {
        let mut client = raw_client(addr);
        client.send_frame(&payload).expect("sending");
        assert!(
            client.closed_by_server(CLOSE_TIMEOUT),
            "truncated request {payload:02x?} left the connection open"
        );
        assert_still_serves(addr, "a truncated request body");
    }
}

// --- operations the server does not offer --------------------------------------------------------

/// An unknown opcode gets Unimplemented and the connection carries on. Apache answers the same
/// code but then closes the connection, which a client sees as a connection loss; keeping it
/// open costs nothing and spares a confused client its session's watches.
#[test]
fn unknown_opcode_is_unimplemented_and_the_connection_stays() {
    let server = Server::start();
    let addr = server.addr();
    let mut client = raw_client(addr);
    for opcode in [999, 10, 1000, -3] {
        let reply = client
            .call(opcode, &Body::new().string("/x"))
            .expect("reply");
        assert_eq!(reply.err, UNIMPLEMENTED, "opcode {opcode}");
    }
    assert_eq!(raw_create(&mut client, "/after-unknown", b"", 0), OK);
    client.close().unwrap();
    assert_still_serves(addr, "unknown opcodes");
}

/// A check outside a multi is Unimplemented in 3.9 (it has no meaning on its own).
#[test]
fn bare_check_is_unimplemented() {
    let server = Server::start();
    let addr = server.addr();
    let mut client = raw_client(addr);
    assert_eq!(raw_create(&mut client, "/checked", b"", 0), OK);
    let reply = client
        .call(op::CHECK, &Body::new().string("/checked").int(0))
        .expect("reply");
    assert_eq!(reply.err, UNIMPLEMENTED);
    assert_eq!(raw_create(&mut client, "/after-check", b"", 0), OK);
    client.close().unwrap();
    assert_still_serves(addr, "a bare check");
}

fn sasl_without_a_mechanism_is_answered_and_the_session_goes_on(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut client = raw_client(addr);
    let reply = client
        .call(op::SASL, &Body::new().buffer(b"token"))
        .expect("a sasl reply");
    assert_eq!(reply.err, OK);
    assert_eq!(raw_create(&mut client, "/after-sasl", b"", 0), OK);
    client.close().unwrap();
    assert_still_serves(addr, "a SASL request");
}

/// With no SASL mechanism configured the server answers Ok with an empty token and the
/// session carries on unauthenticated, as Apache 3.8 and 3.9 do without a JAAS login: Java
/// clients that have a JAAS Client section depend on it to connect.
#[test]
fn sasl_without_a_mechanism_is_answered() {
    let server = Server::start();
    sasl_without_a_mechanism_is_answered_and_the_session_goes_on(&server);
}

#[test]
fn sasl_without_a_mechanism_is_answered_by_apache_too() {
    if !common::apache_available() {
        return;
    }
    let server = common::ApacheServer::start();
    sasl_without_a_mechanism_is_answered_and_the_session_goes_on(&server);
}

fn reconfig_is_disabled(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut client = raw_client(addr);
    let body = Body::new()
        .string("server.2=127.0.0.1:2888:3888;2181")
        .string("")
        .string("")
        .long(-1);
    let reply = client.call(op::RECONFIG, &body).expect("a reconfig reply");
    assert_eq!(reply.err, RECONFIG_DISABLED);
    assert_eq!(raw_create(&mut client, "/after-reconfig", b"", 0), OK);
    client.close().unwrap();
    assert_still_serves(addr, "a reconfig request");
}
on_both!(reconfig_is_reconfig_disabled, "", reconfig_is_disabled);

// --- invalid arguments ---------------------------------------------------------------------------

/// Paths no node may have. Every write refuses them with BadArguments; create does so once it
/// has found the parent, so a bad name under a parent that cannot exist is NoNode (Apache's
/// order of checks).
const BAD_PATHS: [&str; 12] = [
    "",
    "noslash",
    "/parent/",
    "//",
    "/.",
    "/parent/.",
    "/parent/..",
    "/parent//child",
    "/parent/./child",
    "/nul\0inside",
    "/control\u{1}char",
    "/private-use\u{e000}",
];

fn invalid_paths_are_refused(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut client = raw_client(addr);
    assert_eq!(raw_create(&mut client, "/parent", b"", 0), OK);
    for path in BAD_PATHS {
        let parent_cannot_exist = path.contains("//child") || path.contains("/./");
        let expected = if parent_cannot_exist {
            NO_NODE
        } else {
            BAD_ARGUMENTS
        };
        let create = client
            .call(
                op::CREATE,
                &create_body(path, b"", &[(31, "world", "anyone")], 0),
            )
            .expect("create reply");
        assert_eq!(create.err, expected, "create {path:?}");
        let set = client
            .call(op::SET_DATA, &Body::new().string(path).buffer(b"").int(-1))
            .expect("setData reply");
        assert_eq!(set.err, BAD_ARGUMENTS, "setData {path:?}");
        let set_acl = client
            .call(
                op::SET_ACL,
                &Body::new()
                    .string(path)
                    .acls(&[(31, "world", "anyone")])
                    .int(-1),
            )
            .expect("setACL reply");
        assert_eq!(set_acl.err, BAD_ARGUMENTS, "setACL {path:?}");
    }
    // Bad names are caught before the ACL is looked at: a bad path with a bad ACL is about
    // the ACL only when the path passes the first, cheap check.
    let both_bad = client
        .call(op::CREATE, &create_body("noslash", b"", &[], 0))
        .expect("create reply");
    assert_eq!(both_bad.err, BAD_ARGUMENTS);
    let acl_first = client
        .call(op::CREATE, &create_body("/parent/", b"", &[], 0))
        .expect("create reply");
    assert_eq!(acl_first.err, INVALID_ACL);
    // A sequential node's name may end in a slash: the counter follows it.
    let seq = client
        .call(
            op::CREATE,
            &create_body("/parent/", b"", &[(31, "world", "anyone")], 2),
        )
        .expect("create reply");
    assert_eq!(seq.err, OK, "sequential create of /parent/");
    assert_eq!(
        raw_create(&mut client, "/parent/after-bad-paths", b"", 0),
        OK
    );
    client.close().unwrap();
    assert_still_serves(addr, "invalid paths");
}
on_both!(
    invalid_paths_are_bad_arguments,
    "",
    invalid_paths_are_refused
);

fn invalid_acls_are_invalid_acl(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut client = raw_client(addr);
    let alice = digest_id("alice", "pw");
    let bad: [&[(i32, &str, &str)]; 7] = [
        &[],
        &[(31, "digest", "alice")],
        &[(31, "auth", "")],
        &[(31, "nosuchscheme", "x")],
        &[(31, "world", "somebody")],
        &[(31, "ip", "not-an-address")],
        &[(31, "ip", "127.0.0.1/99")],
    ];
    for acl in bad {
        let create = client
            .call(op::CREATE, &create_body("/acl-bad", b"", acl, 0))
            .expect("create reply");
        assert_eq!(create.err, INVALID_ACL, "create with {acl:?}");
    }
    assert_eq!(raw_create(&mut client, "/acl-target", b"", 0), OK);
    for acl in bad {
        let set = client
            .call(
                op::SET_ACL,
                &Body::new().string("/acl-target").acls(acl).int(-1),
            )
            .expect("setACL reply");
        assert_eq!(set.err, INVALID_ACL, "setACL with {acl:?}");
    }
    // Valid ones, for contrast.
    let good: [&[(i32, &str, &str)]; 3] = [
        &[(31, "digest", &alice)],
        &[(1, "ip", "127.0.0.1"), (31, "ip", "10.0.0.0/8")],
        &[(31, "world", "anyone")],
    ];
    for (i, acl) in good.iter().enumerate() {
        let create = client
            .call(
                op::CREATE,
                &create_body(&format!("/acl-good-{i}"), b"", acl, 0),
            )
            .expect("create reply");
        assert_eq!(create.err, OK, "create with {acl:?}");
    }
    client.close().unwrap();
    assert_still_serves(addr, "invalid ACLs");
}
on_both!(
    invalid_acls_are_invalid_acl,
    "",
    invalid_acls_are_invalid_acl
);

// --- connection limits ---------------------------------------------------------------------------

/// A new session once the server admits one: a connection that just closed (the harness's
/// readiness probe) may still count against the limit for a moment.
fn admitted_client(addr: SocketAddr) -> RawClient {
    let mut admitted = None;
    assert!(
        wait_until(
            || match RawClient::connect(addr, IO_TIMEOUT) {
                Ok(client) => {
                    admitted = Some(client);
                    true
                }
                Err(_) => false,
            },
            CLOSE_TIMEOUT
        ),
        "no connection admitted within {CLOSE_TIMEOUT:?}"
    );
    admitted.unwrap()
}

fn third_connection_from_one_address_is_refused(server: &dyn ZkUnderTest) {
    let addr = server.addr();
    let mut first = admitted_client(addr);
    let mut second = admitted_client(addr);
    match RawClient::connect(addr, IO_TIMEOUT) {
        Err(_) => {}
        Ok(mut third) => assert!(
            third.closed_by_server(CLOSE_TIMEOUT),
            "a third connection from 127.0.0.1 was served"
        ),
    }
    // The first two keep working.
    assert_eq!(raw_create(&mut first, "/first", b"", 1), OK);
    assert_eq!(raw_create(&mut second, "/second", b"", 1), OK);
    // Once one leaves, a new connection is welcome again.
    first.close().unwrap();
    let mut replacement = admitted_client(addr);
    assert_eq!(raw_create(&mut replacement, "/replacement", b"", 1), OK);
    assert_eq!(raw_create(&mut second, "/second-again", b"", 1), OK);
}
on_both!(
    max_client_cnxns_refuses_the_third,
    "maxClientCnxns=2",
    third_connection_from_one_address_is_refused
);
