//! Round trips of every record, golden bytes written by hand from
//! `zookeeper.jute`, and hostile input.

use super::*;
use crate::jute::{DecodeError, Record};
use crate::proto::{Acl, ErrorCode, Id, Stat};

/// Bytes from whitespace-separated hex pairs.
fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|pair| u8::from_str_radix(pair, 16).unwrap())
        .collect()
}

/// Checks the length prefix and returns the frame without it.
fn strip_length(frame: &[u8]) -> &[u8] {
    let declared = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    assert_eq!(declared as usize, frame.len() - 4, "length prefix");
    &frame[4..]
}

fn stat(seed: i64) -> Stat {
    Stat {
        czxid: seed,
        mzxid: seed + 1,
        ctime: seed + 2,
        mtime: seed + 3,
        version: 4,
        cversion: 5,
        aversion: 6,
        ephemeral_owner: seed + 7,
        data_length: 8,
        num_children: 9,
        pzxid: seed + 10,
    }
}

fn acl() -> Vec<Acl> {
    vec![
        Acl {
            perms: 31,
            id: Id::anyone(),
        },
        Acl {
            perms: 1,
            id: Id::new("digest", "bob:abc="),
        },
    ]
}

fn create(path: &str, flags: i32, ttl: Option<i64>) -> CreateRequest {
    CreateRequest {
        path: path.to_owned(),
        data: b"payload".to_vec(),
        acl: acl(),
        flags,
        ttl,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// One of every request variant, with the fields a decoder gives back.
fn every_request() -> Vec<Request> {
    let watches = SetWatches {
        relative_zxid: 0x1_0000_0005,
        data: strings(&["/d1", "/d2"]),
        exist: strings(&["/e"]),
        child: vec![],
        persistent: vec![],
        persistent_recursive: vec![],
    };
    let watches2 = SetWatches {
        persistent: strings(&["/p"]),
        persistent_recursive: strings(&["/r1", "/r2"]),
        ..watches.clone()
    };
    vec![
        Request::Create(create("/c", 0, None)),
        Request::Create2(create("/c2", 3, None)),
        Request::CreateContainer(create("/cc", 4, None)),
        Request::CreateTtl(create("/ct", 5, Some(60_000))),
        Request::Delete {
            path: "/del".into(),
            version: -1,
        },
        Request::Exists {
            path: "/ex".into(),
            watch: true,
        },
        Request::GetData {
            path: "/gd".into(),
            watch: false,
        },
        Request::SetData {
            path: "/sd".into(),
            data: vec![0, 1, 2, 255],
            version: 7,
        },
        Request::GetAcl { path: "/ga".into() },
        Request::SetAcl {
            path: "/sa".into(),
            acl: acl(),
            version: 2,
        },
        Request::GetChildren {
            path: "/gc".into(),
            watch: true,
        },
        Request::GetChildren2 {
            path: "/gc2".into(),
            watch: false,
        },
        Request::Sync { path: "/s".into() },
        Request::Ping,
        Request::Check {
            path: "/ck".into(),
            version: 3,
        },
        Request::Multi(vec![
            MultiOp::Create {
                op: 1,
                req: create("/m1", 0, None),
            },
            MultiOp::Create {
                op: 15,
                req: create("/m2", 2, None),
            },
            MultiOp::Create {
                op: 19,
                req: create("/m3", 4, None),
            },
            MultiOp::Create {
                op: 21,
                req: create("/m4", 6, Some(1000)),
            },
            MultiOp::Delete {
                path: "/m5".into(),
                version: 1,
            },
            MultiOp::SetData {
                path: "/m6".into(),
                data: b"d".to_vec(),
                version: -1,
            },
            MultiOp::Check {
                path: "/m7".into(),
                version: 0,
            },
        ]),
        Request::Multi(vec![]),
        Request::MultiRead(vec![
            ReadOp::GetChildren {
                path: "/r1".into(),
                watch: false,
            },
            ReadOp::GetData {
                path: "/r2".into(),
                watch: true,
            },
        ]),
        Request::Reconfig {
            raw: ReconfigRequest {
                joining_servers: Some("server.4=h:2888:3888;2181".into()),
                leaving_servers: None,
                new_members: None,
                cur_config_id: -1,
            }
            .to_bytes(),
        },
        Request::CheckWatches {
            path: "/cw".into(),
            watcher_type: 3,
        },
        Request::RemoveWatches {
            path: "/rw".into(),
            watcher_type: 1,
        },
        Request::Auth {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b"bob:secret".to_vec(),
        },
        Request::SetWatches(watches),
        Request::SetWatches2(watches2),
        Request::Sasl {
            token: vec![9, 8, 7],
        },
        Request::GetEphemerals {
            prefix_path: "/".into(),
        },
        Request::GetAllChildrenNumber { path: "/n".into() },
        Request::AddWatch {
            path: "/aw".into(),
            mode: 1,
        },
        Request::WhoAmI,
        Request::CloseSession,
    ]
}

/// One of every reply body, with the opcode it answers.
fn every_response() -> Vec<(i32, Response)> {
    vec![
        (2, Response::Empty),
        (11, Response::Empty),
        (100, Response::Empty),
        (101, Response::Empty),
        (105, Response::Empty),
        (17, Response::Empty),
        (18, Response::Empty),
        (-11, Response::Empty),
        (1, Response::Create { path: "/c".into() }),
        (
            15,
            Response::Create2 {
                path: "/c2".into(),
                stat: stat(100),
            },
        ),
        (
            19,
            Response::Create2 {
                path: "/cc".into(),
                stat: stat(110),
            },
        ),
        (
            21,
            Response::Create2 {
                path: "/ct0000000001".into(),
                stat: stat(120),
            },
        ),
        (3, Response::Stat { stat: stat(200) }),
        (5, Response::Stat { stat: stat(210) }),
        (7, Response::Stat { stat: stat(220) }),
        (13, Response::Stat { stat: stat(230) }),
        (
            4,
            Response::GetData {
                data: b"value".to_vec(),
                stat: stat(300),
            },
        ),
        (
            16,
            Response::GetData {
                data: b"server.1=a:2888:3888;2181\nversion=100000000".to_vec(),
                stat: stat(310),
            },
        ),
        (
            6,
            Response::GetAcl {
                acl: acl(),
                stat: stat(400),
            },
        ),
        (
            8,
            Response::GetChildren {
                children: strings(&["a", "b", "c"]),
            },
        ),
        (
            12,
            Response::GetChildren2 {
                children: strings(&["x"]),
                stat: stat(500),
            },
        ),
        (9, Response::Sync { path: "/s".into() }),
        (
            14,
            Response::Multi(vec![
                MultiResult::Create { path: "/m1".into() },
                MultiResult::Create2 {
                    path: "/m2".into(),
                    stat: stat(600),
                },
                MultiResult::Delete,
                MultiResult::SetData { stat: stat(610) },
                MultiResult::Check,
            ]),
        ),
        (
            14,
            Response::Multi(vec![
                MultiResult::Error { err: 0 },
                MultiResult::Error {
                    err: ErrorCode::NoNode.code(),
                },
                MultiResult::Error {
                    err: ErrorCode::RuntimeInconsistency.code(),
                },
            ]),
        ),
        (14, Response::Multi(vec![])),
        (
            22,
            Response::Multi(vec![
                MultiResult::GetData {
                    data: b"v".to_vec(),
                    stat: stat(700),
                },
                MultiResult::GetChildren {
                    children: strings(&["k1", "k2"]),
                },
                MultiResult::Error {
                    err: ErrorCode::NoAuth.code(),
                },
            ]),
        ),
        (
            103,
            Response::GetEphemerals {
                ephemerals: strings(&["/e1", "/e2/x"]),
            },
        ),
        (104, Response::GetAllChildrenNumber { total: 12345 }),
        (
            107,
            Response::WhoAmI {
                clients: vec![
                    ClientInfo {
                        auth_scheme: "ip".into(),
                        user: "127.0.0.1".into(),
                    },
                    ClientInfo {
                        auth_scheme: "digest".into(),
                        user: "bob".into(),
                    },
                ],
            },
        ),
        (106, Response::AddWatch),
        (
            102,
            Response::Sasl {
                token: vec![1, 2, 3],
            },
        ),
    ]
}

/// Requests whose body a decoder reads field by field (the others are kept
/// raw or ignored, so no byte sequence is wrong for them).
fn is_parsed(request: &Request) -> bool {
    !matches!(request, Request::Reconfig { .. } | Request::Unknown { .. })
}

#[test]
fn every_request_round_trips() {
    for request in every_request() {
        let frame = request.encode(42);
        let (header, decoded) = decode_request(strip_length(&frame)).unwrap();
        assert_eq!(
            header,
            RequestHeader {
                xid: 42,
                op: request.op_code()
            }
        );
        assert_eq!(decoded, request);
    }
}

#[test]
fn every_reply_round_trips() {
    for (op, response) in every_response() {
        let header = ReplyHeader {
            xid: 42,
            zxid: 0x5_0000_0001,
            err: 0,
        };
        let frame = encode_reply(&header, &response);
        let body = strip_length(&frame);
        assert_eq!(decode_reply_header(body).unwrap(), header);
        assert_eq!(
            decode_reply(op, body).unwrap(),
            (header, response),
            "op {op}"
        );
    }
}

#[test]
fn opcodes_match_apache() {
    let expected = [
        1, 15, 19, 21, 2, 3, 4, 5, 6, 7, 8, 12, 9, 11, 13, 14, 14, 22, 16, 17, 18, 100, 101, 105,
        102, 103, 104, 106, 107, -11,
    ];
    let actual: Vec<i32> = every_request().iter().map(Request::op_code).collect();
    assert_eq!(actual, expected);
}

#[test]
fn connect_request_golden_bytes_with_read_only() {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x1234,
        timeout_ms: 30_000,
        session_id: 0,
        password: (1..=16).collect(),
        read_only: Some(false),
    };
    let expected = hex("00 00 00 2d \
         00 00 00 00 \
         00 00 00 00 00 00 12 34 \
         00 00 75 30 \
         00 00 00 00 00 00 00 00 \
         00 00 00 10 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 \
         00");
    assert_eq!(request.encode(), expected);
    assert_eq!(ConnectRequest::decode(&expected[4..]).unwrap(), request);
}

#[test]
fn connect_request_golden_bytes_without_read_only() {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: 0x0100_0000_0000_0002,
        password: vec![0xaa; 16],
        read_only: None,
    };
    let expected = hex("00 00 00 2c \
         00 00 00 00 \
         00 00 00 00 00 00 00 00 \
         00 00 27 10 \
         01 00 00 00 00 00 00 02 \
         00 00 00 10 aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa aa");
    assert_eq!(request.encode(), expected);
    assert_eq!(ConnectRequest::decode(&expected[4..]).unwrap(), request);
}

#[test]
fn connect_response_writes_read_only_only_when_present() {
    let mut response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4000,
        session_id: 0x0100_0000_0000_0001,
        password: vec![7; 16],
        read_only: None,
    };
    let without = hex("00 00 00 24 \
         00 00 00 00 \
         00 00 0f a0 \
         01 00 00 00 00 00 00 01 \
         00 00 00 10 07 07 07 07 07 07 07 07 07 07 07 07 07 07 07 07");
    assert_eq!(response.encode(), without);
    assert_eq!(ConnectResponse::decode(&without[4..]).unwrap(), response);

    response.read_only = Some(true);
    let with = response.encode();
    assert_eq!(with.len(), without.len() + 1);
    assert_eq!(with[3], 0x25);
    assert_eq!(with.last(), Some(&1));
    assert_eq!(ConnectResponse::decode(&with[4..]).unwrap(), response);
}

#[test]
fn connect_records_reject_truncation_and_trailing_bytes() {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 1,
        timeout_ms: 2,
        session_id: 3,
        password: vec![4; 16],
        read_only: Some(true),
    };
    let frame = request.encode();
    let body = &frame[4..];
    // Cutting off exactly the readOnly byte leaves a valid old-style request;
    // every shorter cut is an error.
    for cut in 0..body.len() - 1 {
        assert!(ConnectRequest::decode(&body[..cut]).is_err(), "cut {cut}");
    }
    let mut long = body.to_vec();
    long.push(0);
    assert_eq!(
        ConnectRequest::decode(&long),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
}

#[test]
fn create_request_golden_bytes() {
    let request = Request::Create(CreateRequest {
        path: "/a".into(),
        data: b"x".to_vec(),
        acl: Acl::open_unsafe(),
        flags: 1,
        ttl: None,
    });
    let expected = hex("00 00 00 32 \
         00 00 00 01 00 00 00 01 \
         00 00 00 02 2f 61 \
         00 00 00 01 78 \
         00 00 00 01 \
         00 00 00 1f \
         00 00 00 05 77 6f 72 6c 64 \
         00 00 00 06 61 6e 79 6f 6e 65 \
         00 00 00 01");
    assert_eq!(request.encode(1), expected);
    assert_eq!(
        decode_request(&expected[4..]).unwrap(),
        (RequestHeader { xid: 1, op: 1 }, request)
    );
}

#[test]
fn create_ttl_request_golden_bytes() {
    let request = Request::CreateTtl(CreateRequest {
        path: "/t".into(),
        data: vec![],
        acl: vec![],
        flags: 5,
        ttl: Some(1000),
    });
    let expected = hex("00 00 00 22 \
         00 00 00 02 00 00 00 15 \
         00 00 00 02 2f 74 \
         00 00 00 00 \
         00 00 00 00 \
         00 00 00 05 \
         00 00 00 00 00 00 03 e8");
    assert_eq!(request.encode(2), expected);
    assert_eq!(decode_request(&expected[4..]).unwrap().1, request);
}

#[test]
fn multi_request_golden_bytes() {
    let request = Request::Multi(vec![
        MultiOp::Check {
            path: "/a".into(),
            version: 3,
        },
        MultiOp::Delete {
            path: "/b".into(),
            version: -1,
        },
    ]);
    let expected = hex("00 00 00 37 \
         00 00 00 07 00 00 00 0e \
         00 00 00 0d 00 ff ff ff ff \
         00 00 00 02 2f 61 00 00 00 03 \
         00 00 00 02 00 ff ff ff ff \
         00 00 00 02 2f 62 ff ff ff ff \
         ff ff ff ff 01 ff ff ff ff");
    assert_eq!(request.encode(7), expected);
    assert_eq!(decode_request(&expected[4..]).unwrap().1, request);
}

#[test]
fn multi_error_reply_golden_bytes() {
    let header = ReplyHeader {
        xid: 7,
        zxid: 0x20,
        err: 0,
    };
    let response = Response::Multi(vec![
        MultiResult::Error {
            err: ErrorCode::BadVersion.code(),
        },
        MultiResult::Error {
            err: ErrorCode::RuntimeInconsistency.code(),
        },
    ]);
    let expected = hex("00 00 00 33 \
         00 00 00 07 00 00 00 00 00 00 00 20 00 00 00 00 \
         ff ff ff ff 00 ff ff ff 99 ff ff ff 99 \
         ff ff ff ff 00 ff ff ff fe ff ff ff fe \
         ff ff ff ff 01 ff ff ff ff");
    assert_eq!(encode_reply(&header, &response), expected);
    assert_eq!(
        decode_reply(14, &expected[4..]).unwrap(),
        (header, response)
    );
}

#[test]
fn watch_event_golden_bytes() {
    let event = WatcherEvent {
        event_type: 3,
        state: 3,
        path: "/a".into(),
    };
    let expected = hex("00 00 00 1e \
         ff ff ff ff 00 00 00 00 00 00 00 05 00 00 00 00 \
         00 00 00 03 00 00 00 03 00 00 00 02 2f 61");
    assert_eq!(encode_watch_event(5, &event), expected);
    let (header, decoded) = decode_watch_event(&expected[4..]).unwrap();
    assert_eq!(header.xid, -1);
    assert_eq!(header.zxid, 5);
    assert_eq!(decoded, event);
}

#[test]
fn add_watch_reply_carries_a_zero_code() {
    let header = ReplyHeader {
        xid: 9,
        zxid: 1,
        err: 0,
    };
    let expected = hex("00 00 00 14 \
         00 00 00 09 00 00 00 00 00 00 00 01 00 00 00 00 \
         00 00 00 00");
    assert_eq!(encode_reply(&header, &Response::AddWatch), expected);
    // A reply without the code is what breaks Apache's client.
    let bare = encode_reply(&header, &Response::Empty);
    assert!(decode_reply(106, &bare[4..]).is_err());
}

#[test]
fn set_watches_omits_the_persistent_lists() {
    let watches = SetWatches {
        relative_zxid: 1,
        data: strings(&["/d"]),
        exist: vec![],
        child: vec![],
        persistent: vec![],
        persistent_recursive: vec![],
    };
    let v1 = Request::SetWatches(watches.clone()).encode_body();
    let v2 = Request::SetWatches2(watches).encode_body();
    assert_eq!(v1.len(), 8 + 4 + 4 + 2 + 4 + 4);
    assert_eq!(v2.len(), v1.len() + 8);
    assert_eq!(&v2[..v1.len()], &v1[..]);
    // A SetWatches2 body under opcode 101 has stray bytes.
    assert!(Request::decode_body(101, &v2).is_err());
}

#[test]
fn only_create_ttl_carries_a_ttl() {
    let with_ttl = create("/x", 5, Some(9));
    let plain = Request::Create2(with_ttl.clone()).encode_body();
    let ttl = Request::CreateTtl(with_ttl.clone()).encode_body();
    assert_eq!(ttl.len(), plain.len() + 8);
    assert_eq!(&ttl[plain.len()..], &9i64.to_be_bytes());
    let decoded = Request::decode_body(15, &plain).unwrap();
    assert_eq!(
        decoded,
        Request::Create2(CreateRequest {
            ttl: None,
            ..with_ttl
        })
    );
}

#[test]
fn truncated_requests_are_errors_that_keep_the_header() {
    for request in every_request().into_iter().filter(is_parsed) {
        let frame = request.encode(5);
        let body = strip_length(&frame);
        for cut in 0..body.len() {
            let err = decode_request(&body[..cut]).unwrap_err();
            if cut < RequestHeader::LEN {
                assert_eq!(err.header, None);
            } else {
                assert_eq!(
                    err.header,
                    Some(RequestHeader {
                        xid: 5,
                        op: request.op_code()
                    }),
                    "{request:?} cut at {cut}"
                );
            }
            assert!(
                matches!(err.error, DecodeError::Truncated { .. }),
                "{request:?} cut at {cut}: {err}"
            );
        }
    }
}

#[test]
fn requests_with_trailing_bytes_are_rejected() {
    for request in every_request().into_iter().filter(is_parsed) {
        let mut frame = request.encode(5);
        frame.push(0);
        let err = decode_request(&frame[4..]).unwrap_err();
        assert_eq!(err.error, DecodeError::TrailingBytes { count: 1 });
        assert!(err.header.is_some());
    }
}

#[test]
fn truncated_and_padded_replies_are_rejected() {
    let header = ReplyHeader {
        xid: 1,
        zxid: 2,
        err: 0,
    };
    for (op, response) in every_response() {
        let mut frame = encode_reply(&header, &response);
        let body = strip_length(&frame).to_vec();
        for cut in 0..body.len() {
            assert!(
                decode_reply(op, &body[..cut]).is_err(),
                "op {op} cut at {cut}"
            );
        }
        frame.push(0);
        assert_eq!(
            decode_reply(op, &frame[4..]),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }
}

#[test]
fn error_replies_have_no_body() {
    let header = ReplyHeader {
        xid: 3,
        zxid: 4,
        err: ErrorCode::NoNode.code(),
    };
    let frame = encode_reply(&header, &Response::Empty);
    assert_eq!(frame.len(), 4 + ReplyHeader::LEN);
    assert_eq!(
        decode_reply(4, &frame[4..]).unwrap(),
        (header, Response::Empty)
    );
    // Apache's server sometimes leaves a body behind an error; like its
    // client, the decoder skips it.
    let with_body = encode_reply(&header, &Response::Stat { stat: stat(1) });
    assert_eq!(
        decode_reply(5, &with_body[4..]).unwrap(),
        (header, Response::Empty)
    );
}

#[test]
fn unknown_opcodes_decode_to_unknown() {
    for op in [0, 10, 20, 23, 99, 108, 999, -1, -10, i32::MIN] {
        let mut frame = Request::Unknown { op }.encode(11);
        assert_eq!(frame.len(), 4 + RequestHeader::LEN);
        frame.extend_from_slice(b"whatever follows");
        assert_eq!(
            decode_request(&frame[4..]).unwrap(),
            (RequestHeader { xid: 11, op }, Request::Unknown { op })
        );
    }
}

#[test]
fn reconfig_body_is_kept_raw() {
    let reconfig = ReconfigRequest {
        joining_servers: None,
        leaving_servers: Some("3".into()),
        new_members: None,
        cur_config_id: 0x1_0000_0000,
    };
    let frame = Request::Reconfig {
        raw: reconfig.to_bytes(),
    }
    .encode(1);
    let (_, decoded) = decode_request(&frame[4..]).unwrap();
    let Request::Reconfig { raw } = decoded else {
        panic!("not a reconfig: {decoded:?}");
    };
    assert_eq!(ReconfigRequest::from_bytes(&raw).unwrap(), reconfig);
}

#[test]
fn multis_refuse_foreign_members() {
    let read_in_write = Request::MultiRead(vec![ReadOp::GetData {
        path: "/a".into(),
        watch: false,
    }])
    .encode_body();
    assert_eq!(
        Request::decode_body(14, &read_in_write),
        Err(DecodeError::InvalidValue {
            what: "multi member opcode",
            value: 4
        })
    );
    let write_in_read = Request::Multi(vec![MultiOp::Delete {
        path: "/a".into(),
        version: 0,
    }])
    .encode_body();
    assert!(Request::decode_body(22, &write_in_read).is_err());
    let ping_in_multi = Request::Multi(vec![MultiOp::Create {
        op: 11,
        req: create("/x", 0, None),
    }])
    .encode_body();
    assert!(Request::decode_body(14, &ping_in_multi).is_err());
}

#[test]
fn multi_end_marker_is_recognised_by_its_done_flag() {
    // Apache stops at any header with done set, whatever its type and err.
    let body = hex("00 00 00 00 01 00 00 00 00");
    assert_eq!(Request::decode_body(14, &body), Ok(Request::Multi(vec![])));
}

#[test]
fn forged_lengths_are_errors_not_allocations() {
    let forged = [
        // create: path length far beyond the frame
        (1, hex("7f ff ff ff 2f")),
        // create: negative path length
        (1, hex("ff ff ff fe")),
        // create: ACL count far beyond the frame
        (1, hex("00 00 00 01 2f 00 00 00 00 7f ff ff ff")),
        // setData: data length beyond the frame
        (5, hex("00 00 00 01 2f 7f ff ff f0 00")),
        // setWatches: list count beyond the frame
        (101, hex("00 00 00 00 00 00 00 00 7f ff ff ff")),
        // setWatches2: negative list count
        (
            105,
            hex("00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80 00 00 00"),
        ),
        // multi: header announcing a create whose record is cut short
        (14, hex("00 00 00 01 00 ff ff ff ff 7f ff ff ff")),
        // auth: null scheme
        (100, hex("00 00 00 00 ff ff ff ff 00 00 00 00")),
        // exists: invalid UTF-8 path
        (3, hex("00 00 00 02 c3 28 00")),
    ];
    for (op, body) in forged {
        assert!(
            Request::decode_body(op, &body).is_err(),
            "op {op} body {body:02x?}"
        );
    }
    let forged_replies = [
        (8, hex("7f ff ff ff")),
        (107, hex("7f ff ff ff 00 00")),
        (6, hex("00 ff ff ff")),
        (4, hex("7f ff ff ff")),
        (14, hex("00 00 00 08 00 00 00 00 00 7f ff ff ff")),
        // a multi result type no server writes
        (14, hex("00 00 00 0b 00 00 00 00 00")),
    ];
    for (op, body) in forged_replies {
        let mut frame = vec![0u8; ReplyHeader::LEN];
        frame.extend_from_slice(&body);
        assert!(
            decode_reply(op, &frame).is_err(),
            "op {op} body {body:02x?}"
        );
    }
}

#[test]
fn null_buffers_and_vectors_read_as_empty() {
    // create with null data and a null ACL vector, as Jute allows.
    let body = hex("00 00 00 02 2f 61 ff ff ff ff ff ff ff ff 00 00 00 00");
    assert_eq!(
        Request::decode_body(1, &body).unwrap(),
        Request::Create(CreateRequest {
            path: "/a".into(),
            data: vec![],
            acl: vec![],
            flags: 0,
            ttl: None,
        })
    );
    // getEphemerals with a null prefix means "all of them".
    assert_eq!(
        Request::decode_body(103, &hex("ff ff ff ff")).unwrap(),
        Request::GetEphemerals {
            prefix_path: String::new()
        }
    );
}

#[test]
fn decode_errors_name_the_request() {
    let err = decode_request(&hex("00 00 00 05 00 00 00 01 00")).unwrap_err();
    assert_eq!(err.header, Some(RequestHeader { xid: 5, op: 1 }));
    let text = err.to_string();
    assert!(text.contains("xid 5") && text.contains("op 1"), "{text}");
    assert!(std::error::Error::source(&err).is_some());
    let short = decode_request(&hex("00 00")).unwrap_err();
    assert_eq!(short.header, None);
}

/// Corrupted frames (every byte overwritten in turn, then pseudo-random
/// garbage) must decode to a value or an error, never panic or over-allocate.
#[test]
fn corrupted_frames_never_panic() {
    let mut frames: Vec<(i32, Vec<u8>)> = every_request()
        .iter()
        .map(|request| (request.op_code(), request.encode(1)[4..].to_vec()))
        .collect();
    let header = ReplyHeader {
        xid: 1,
        zxid: 1,
        err: 0,
    };
    frames.extend(
        every_response()
            .iter()
            .map(|(op, response)| (*op, encode_reply(&header, response)[4..].to_vec())),
    );
    for (op, frame) in &frames {
        for position in 0..frame.len() {
            for value in [0x00, 0x7f, 0x80, 0xff] {
                let mut corrupted = frame.clone();
                corrupted[position] = value;
                let _ = decode_request(&corrupted);
                let _ = decode_reply(*op, &corrupted);
                let _ = decode_watch_event(&corrupted);
                let _ = ConnectRequest::decode(&corrupted);
                let _ = ConnectResponse::decode(&corrupted);
            }
        }
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let len = (state >> 56) as usize;
        let garbage: Vec<u8> = (0..len)
            .map(|i| (state.rotate_left(i as u32 * 7) >> 24) as u8)
            .collect();
        let op = (state >> 40) as i32 % 110;
        let _ = decode_request(&garbage);
        let _ = decode_reply(op, &garbage);
    }
}
