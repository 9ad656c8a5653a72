//! Small helpers shared by the behaviour tests: bounded async blocks, digest ids, raw
//! requests, and the check that a server still serves after something went wrong.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use sha1::Digest as _;

use super::raw::{op, Body, RawClient, RawStat, Reader};
use super::{wait_until, ZKCLI};

/// How long one raw-client step (connect, one reply) may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `future` on a fresh runtime, failing the test if it takes longer than `limit`.
pub fn block_on<F: Future>(limit: Duration, future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    runtime
        .block_on(async { tokio::time::timeout(limit, future).await })
        .unwrap_or_else(|_| panic!("test body did not finish within {limit:?}"))
}

/// `digest` scheme id for `user:password`, as the server computes it.
pub fn digest_id(user: &str, password: &str) -> String {
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// A raw client with a fresh session.
pub fn raw_client(addr: SocketAddr) -> RawClient {
    RawClient::connect(addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("opening a raw session on {addr}: {e}"))
}

/// A create request body: path, data, ACL and flags.
pub fn create_body(path: &str, data: &[u8], acl: &[(i32, &str, &str)], flags: i32) -> Body {
    Body::new().string(path).buffer(data).acls(acl).int(flags)
}

/// Creates a node with the open ACL; returns the error code (0 on success).
pub fn raw_create(client: &mut RawClient, path: &str, data: &[u8], flags: i32) -> i32 {
    client
        .call(
            op::CREATE,
            &create_body(path, data, &[(31, "world", "anyone")], flags),
        )
        .expect("create")
        .err
}

/// `exists` with an optional watch: the error code and, on success, the Stat.
pub fn raw_exists(client: &mut RawClient, path: &str, watch: bool) -> (i32, Option<RawStat>) {
    let reply = client
        .call(op::EXISTS, &Body::new().string(path).boolean(watch))
        .expect("exists");
    let stat = (reply.err == 0).then(|| Reader::new(&reply.body).stat());
    (reply.err, stat)
}

/// `setData` with any version; returns the error code.
pub fn raw_set(client: &mut RawClient, path: &str, data: &[u8]) -> i32 {
    client
        .call(op::SET_DATA, &Body::new().string(path).buffer(data).int(-1))
        .expect("setData")
        .err
}

/// `delete` with any version; returns the error code.
pub fn raw_delete(client: &mut RawClient, path: &str) -> i32 {
    client
        .call(op::DELETE, &Body::new().string(path).int(-1))
        .expect("delete")
        .err
}

/// Proves that `addr` still serves: a new session, a write and a read, and a clean close.
pub fn assert_still_serves(addr: SocketAddr, what: &str) {
    let mut client = RawClient::connect(addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("after {what}: the server no longer accepts sessions: {e}"));
    let path = format!("/still-serving-{}", client.session_id as u64);
    assert_eq!(
        raw_create(&mut client, &path, b"ok", 1),
        0,
        "after {what}: an ephemeral create failed"
    );
    let (err, stat) = raw_exists(&mut client, &path, false);
    assert_eq!(err, 0, "after {what}: exists failed");
    assert_eq!(stat.map(|s| s.data_length), Some(2));
    client
        .close()
        .unwrap_or_else(|e| panic!("after {what}: closing the session: {e}"));
}

/// Generates `$name::zookeeper_rs` and `$name::apache_reference`, both running `$check` (a
/// `fn(&dyn ZkUnderTest)` in the calling file) on a server started with the zoo.cfg lines `$cfg`. The Apache run
/// proves that the expectations are Apache's, not ours.
#[allow(unused_macros)]
macro_rules! on_both {
    ($name:ident, $cfg:expr, $check:ident) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn zookeeper_rs() {
                let server = $crate::common::Server::start_with(&$cfg);
                super::$check(&server);
            }

            #[test]
            fn apache_reference() {
                if !$crate::common::apache_available() {
                    return;
                }
                let server = $crate::common::ApacheServer::start_with(&$cfg);
                super::$check(&server);
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_both;

/// How long one zkCli.sh run (a JVM and a short script) may take.
pub const ZKCLI_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs Apache's zkCli.sh against `addr` with `script` on its standard input; returns its
/// merged output. Fails the test if it does not exit within [`ZKCLI_TIMEOUT`].
pub fn zkcli_script(addr: SocketAddr, script: &str) -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_path = dir.path().join("zkcli.out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut child = Command::new(ZKCLI)
        .arg("-server")
        .arg(addr.to_string())
        .env("ZOO_LOG_DIR", dir.path())
        .env(
            "CLIENT_JVMFLAGS",
            "-Dzookeeper.sasl.client=false -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        )
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("duplicating the output file"))
        .stderr(out)
        .spawn()
        .expect("spawning zkCli.sh");
    let mut input = child.stdin.take().expect("zkCli stdin");
    input
        .write_all(script.as_bytes())
        .expect("writing the script");
    drop(input);
    let exited = wait_until(
        || child.try_wait().map(|s| s.is_some()).unwrap_or(true),
        ZKCLI_TIMEOUT,
    );
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("zkCli.sh did not exit within {ZKCLI_TIMEOUT:?}:\n{output}");
    }
    output
}
