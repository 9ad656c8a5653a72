//! zkCli in one-shot mode against our server: each command's stdout,
//! stderr and exit status, line by line.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, ZkUnderTest};
use zookeeper_rs::client::{Client, ClientOptions};
use zookeeper_rs::proto::{Acl, CreateMode, MultiOp};

/// What one run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn out_lines(&self) -> Vec<String> {
        self.stdout.lines().map(mask).collect()
    }

    fn err_lines(&self) -> Vec<String> {
        self.stderr.lines().map(str::to_string).collect()
    }
}

/// Masks the lines of a Stat block that depend on the clock and on how
/// many sessions came before (each takes zxids).
fn mask(line: &str) -> String {
    match line.split_once(" = ") {
        Some((key @ ("ctime" | "mtime"), _)) => format!("{key} = <time>"),
        Some((key @ ("cZxid" | "mZxid" | "pZxid"), value)) if value.starts_with("0x") => {
            format!("{key} = <zxid>")
        }
        _ => line.to_string(),
    }
}

fn zkcli(server: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
    // Files, not pipes: a long listing must not block on a full pipe while
    // the test waits for the exit.
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zkCli"))
        .arg("-server")
        .arg(server)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawning zkCli");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input).expect("writing stdin");
    }
    let mut status = None;
    let exited = common::wait_until(
        || {
            status = child.try_wait().expect("waiting for zkCli");
            status.is_some()
        },
        Duration::from_secs(60),
    );
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    let run = Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    };
    assert!(exited, "zkCli {args:?} did not exit within 60 s: {run:?}");
    run
}

fn ok(server: &str, args: &[&str]) -> Vec<String> {
    let run = zkcli(server, args, None);
    assert_eq!(run.code, 0, "zkCli {args:?} failed: {run:?}");
    run.out_lines()
}

fn fails(server: &str, args: &[&str], code: i32, message: &str) {
    let run = zkcli(server, args, None);
    assert_eq!(run.code, code, "zkCli {args:?}: {run:?}");
    assert_eq!(
        run.err_lines().last().map(String::as_str),
        Some(message),
        "zkCli {args:?}: {run:?}"
    );
}

fn stat_lines(rest: [&str; 6]) -> Vec<String> {
    let mut lines = vec![
        "cZxid = <zxid>".to_string(),
        "ctime = <time>".to_string(),
        "mZxid = <zxid>".to_string(),
        "mtime = <time>".to_string(),
        "pZxid = <zxid>".to_string(),
    ];
    let names = [
        "cversion",
        "dataVersion",
        "aclVersion",
        "ephemeralOwner",
        "dataLength",
        "numChildren",
    ];
    for (name, value) in names.iter().zip(rest) {
        lines.push(format!("{name} = {value}"));
    }
    lines
}

#[test]
fn commands_print_what_apache_prints() {
    let server = Server::start();
    let s = server.connect_string();
    let s = s.as_str();
    assert_eq!(ok(s, &["create", "/a", "hello"]), ["Created /a"]);
    assert_eq!(ok(s, &["get", "/a"]), ["hello"]);
    let mut expected = vec!["hello".to_string()];
    expected.extend(stat_lines(["0", "0", "0", "0x0", "5", "0"]));
    assert_eq!(ok(s, &["get", "-s", "/a"]), expected);
    // Options may follow the arguments, as with Apache's parser.
    assert_eq!(ok(s, &["set", "/a", "world", "-s", "-v", "0"]), {
        stat_lines(["0", "1", "0", "0x0", "5", "0"])
    });
    assert_eq!(
        ok(s, &["create", "-s", "/a/seq-", "x"]),
        ["Created /a/seq-0000000000"]
    );
    assert_eq!(ok(s, &["create", "/a/b"]), ["Created /a/b"]);
    assert_eq!(ok(s, &["ls", "/a"]), ["[b, seq-0000000000]"]);
    let mut expected = vec!["[b, seq-0000000000]".to_string()];
    expected.extend(stat_lines(["2", "1", "0", "0x0", "5", "2"]));
    assert_eq!(ok(s, &["ls", "-s", "/a"]), expected);
    assert_eq!(
        ok(s, &["ls", "-R", "/a"]),
        ["/a", "/a/b", "/a/seq-0000000000"]
    );
    assert_eq!(ok(s, &["getAcl", "/a"]), ["'world,'anyone", ": cdrwa"]);
    assert_eq!(
        ok(s, &["setAcl", "/a/b", "world:anyone:rw,ip:127.0.0.1:a"]),
        Vec::<String>::new()
    );
    assert_eq!(
        ok(s, &["getAcl", "/a/b"]),
        ["'world,'anyone", ": rw", "'ip,'127.0.0.1", ": a"]
    );
    assert_eq!(ok(s, &["getAllChildrenNumber", "/a"]), ["2"]);
    assert_eq!(ok(s, &["getEphemerals", "/"]), ["[]"]);
    assert_eq!(ok(s, &["sync", "/a"]), ["Sync is OK"]);
    assert_eq!(ok(s, &["whoami"]), ["Auth scheme: User", "ip: 127.0.0.1"]);
    assert_eq!(
        ok(s, &["version"]),
        [format!(
            "ZooKeeper CLI version: {}",
            zookeeper_rs::ZOOKEEPER_VERSION
        )]
    );
    assert_eq!(ok(s, &["delete", "-v", "0", "/a/b"]), Vec::<String>::new());
    assert_eq!(ok(s, &["deleteall", "/a"]), Vec::<String>::new());
    fails(s, &["stat", "/a"], 1, "Node does not exist: /a");
}

#[test]
fn failures_exit_non_zero_with_apache_messages() {
    let server = Server::start();
    let s = server.connect_string();
    let s = s.as_str();
    ok(s, &["create", "/a", "x"]);
    ok(s, &["create", "/a/kid"]);
    fails(s, &["get", "/missing"], 1, "Node does not exist: /missing");
    fails(s, &["create", "/a", "y"], 1, "Node already exists: /a");
    fails(
        s,
        &["create", "/no/such"],
        1,
        "Node does not exist: /no/such",
    );
    fails(
        s,
        &["set", "-v", "7", "/a", "z"],
        1,
        "version No is not valid : /a",
    );
    fails(s, &["delete", "/a"], 1, "Node not empty: /a");
    fails(s, &["get", "a"], 1, "Path must start with / character");
    fails(s, &["get"], 1, "get [-s] [-w] [-b] [-x] [--json] path");
    fails(
        s,
        &["get", "-q", "/a"],
        1,
        "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -q",
    );
    fails(
        s,
        &["set", "/a", "x", "-v"],
        1,
        "org.apache.commons.cli.MissingArgumentException: Missing argument for option: v",
    );
    fails(
        s,
        &["create", "-c", "-e", "/c"],
        1,
        "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
    );
    fails(
        s,
        &["nosuch"],
        127,
        "Command not found: Command not found nosuch",
    );
    fails(
        s,
        &["removewatches", "/a"],
        1,
        "KeeperErrorCode = No such watcher for /a",
    );
    // Credentials guard a node for this one-shot session only.
    let digest = zookeeper_rs::acl::digest("carol:pw");
    ok(s, &["create", "/d", "x", &format!("digest:{digest}:cdrwa")]);
    fails(s, &["get", "/d"], 1, "Insufficient permission : /d");

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let run = zkcli(&dead_addr, &["-timeout", "2000", "ls", "/"], None);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.err_lines().last().map(String::as_str),
        Some("KeeperErrorCode = ConnectionLoss for /"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn json_binary_data_and_files() {
    let server = Server::start();
    let s = server.connect_string();
    let s = s.as_str();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob");
    std::fs::write(&file, [0u8, 0xff, b'a', b'\n', 0x1b]).unwrap();
    let file = file.to_str().unwrap();
    assert_eq!(ok(s, &["create", "-f", file, "/bin"]), ["Created /bin"]);
    // Not printable: escaped, so the terminal is never driven by the data.
    assert_eq!(ok(s, &["get", "/bin"]), ["\\x00\\xffa\\n\\x1b"]);
    assert_eq!(ok(s, &["get", "-b", "/bin"]), ["AP9hChs="]);
    assert_eq!(
        ok(s, &["get", "-x", "/bin"])[3],
        "|00000000| 00 ff 61 0a 1b                                  |..a..           |"
    );
    let json = ok(s, &["--json", "get", "/bin"]);
    assert_eq!(json.len(), 1);
    assert!(
        json[0].starts_with(
            r#"{"path":"/bin","data":"AP9hChs=","encoding":"base64","stat":{"cZxid":"#
        ),
        "{json:?}"
    );

    let run = zkcli(
        s,
        &["set", "-f", "-", "/bin"],
        Some("from stdin \u{e9}".as_bytes()),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(ok(s, &["get", "/bin"]), ["from stdin \u{e9}"]);
    assert_eq!(ok(s, &["set", "-b", "/bin", "aGk="]), Vec::<String>::new());
    assert_eq!(
        ok(s, &["get", "--json", "/bin"])[0]
            .split(",\"stat\"")
            .next()
            .unwrap(),
        r#"{"path":"/bin","data":"hi","encoding":"utf8""#
    );
    ok(s, &["create", "/bin/k\"id", "1"]);
    assert_eq!(
        ok(s, &["ls", "--json", "/bin"]),
        [r#"{"path":"/bin","children":["k\"id"]}"#]
    );
    assert_eq!(
        ok(s, &["--json", "ls", "-R", "/bin"]),
        [r#"["/bin","/bin/k\"id"]"#]
    );
    let acl = ok(s, &["getAcl", "--json", "/bin"]);
    assert!(
        acl[0].starts_with(
            r#"{"path":"/bin","acl":[{"scheme":"world","id":"anyone","perms":"cdrwa"}],"stat":{"#
        ),
        "{acl:?}"
    );
    let stat = ok(s, &["stat", "--json", "/bin"]);
    assert!(stat[0].contains(r#""numChildren":1}"#), "{stat:?}");
}

#[test]
fn chroot_and_quotas() {
    let server = Server::start();
    let s = server.connect_string();
    ok(&s, &["create", "/app"]);
    let chrooted = format!("{s}/app");
    assert_eq!(ok(&chrooted, &["create", "/x", "1"]), ["Created /x"]);
    assert_eq!(ok(&s, &["get", "/app/x"]), ["1"]);
    assert_eq!(ok(&chrooted, &["ls", "/"]), ["[x]"]);

    assert_eq!(
        ok(&s, &["setquota", "-n", "5", "/app"]),
        Vec::<String>::new()
    );
    let run = zkcli(&s, &["listquota", "/app"], None);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.err_lines(),
        ["absolute path is /zookeeper/quota/app/zookeeper_limits"]
    );
    assert_eq!(
        run.out_lines(),
        [
            "Output quota for /app count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
            "Output stat for /app count=2,bytes=1",
        ]
    );
    fails(
        &s,
        &["setquota", "-n", "3", "/app/x"],
        1,
        "/app/x has a parent /app which has a quota",
    );
    assert_eq!(ok(&s, &["delquota", "/app"]), Vec::<String>::new());
    let run = zkcli(&s, &["listquota", "/app"], None);
    assert_eq!(run.err_lines()[1], "quota for /app does not exist.");
    assert_eq!(ok(&s, &["ls", "/zookeeper/quota"]), ["[]"]);
}

/// Creates `count` nodes under `parent`, each with a `name_len`-byte name,
/// in multi batches.
async fn populate(client: &Client, parent: &str, count: usize, name_len: usize) {
    let acl = Acl::open_unsafe();
    client
        .create(parent, b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    let mut ops = Vec::new();
    for i in 0..count {
        let name = format!("{i:06}{}", "n".repeat(name_len - 6));
        ops.push(MultiOp::Create {
            op: 1,
            req: zookeeper_rs::proto::CreateRequest {
                path: format!("{parent}/{name}"),
                data: Vec::new(),
                acl: acl.clone(),
                flags: 0,
                ttl: None,
            },
        });
        if ops.len() == 500 {
            client.multi(std::mem::take(&mut ops)).await.unwrap();
        }
    }
    if !ops.is_empty() {
        client.multi(ops).await.unwrap();
    }
}

#[test]
fn huge_trees_stay_within_the_frame_limit() {
    let server = Server::start();
    let s = server.connect_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // 3 000 nodes whose paths add up to well over a megabyte: one listing
    // or one multi of them all would not fit in a frame.
    runtime.block_on(async {
        let (client, _events) = Client::connect(&s, ClientOptions::default()).await.unwrap();
        client
            .create("/big", b"", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
        for branch in 0..6 {
            populate(&client, &format!("/big/b{branch}"), 500, 400).await;
        }
    });
    let listed = ok(&s, &["ls", "-R", "/big"]);
    assert_eq!(listed.len(), 1 + 6 + 6 * 500);
    assert_eq!(listed[..3], ["/big", "/big/b0", "/big/b1"]);
    assert!(listed[7].starts_with("/big/b0/000000n"), "{}", listed[7]);
    // A batch of 5 000 would be a 1.3 MB request: the batches are cut by
    // size too.
    assert_eq!(
        ok(&s, &["deleteall", "/big", "-b", "5000"]),
        Vec::<String>::new()
    );
    fails(&s, &["stat", "/big"], 1, "Node does not exist: /big");
}

#[test]
fn a_reply_over_the_frame_limit_fails_alone() {
    let server = Server::start();
    let s = server.connect_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (client, _events) = Client::connect(&s, ClientOptions::default()).await.unwrap();
        // 2 700 names of 400 bytes: the child list alone is over 1 MB.
        populate(&client, "/wide", 2_700, 400).await;
        let err = client.get_children("/wide", false).await.unwrap_err();
        assert!(
            matches!(err, zookeeper_rs::client::Error::FrameTooLarge { .. }),
            "{err:?}"
        );
        // The connection survived it.
        assert!(client.exists("/wide", false).await.unwrap().is_some());
        assert_eq!(
            client.get_all_children_number("/wide").await.unwrap(),
            2_700
        );
    });
}
