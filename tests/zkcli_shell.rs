//! zkCli's interactive shell in a pseudo-terminal: the prompt, history kept
//! across runs, completion of commands and znode paths, and a watch event
//! printed while the prompt waits.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, ZkUnderTest};
use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};
use zookeeper_rs::client::{Client, ClientOptions};

/// How long any expected output may take.
const EXPECT_TIMEOUT_MS: u64 = 20_000;
const UP_ARROW: &str = "\x1b[A";

fn shell(server: &str, history: &Path) -> PtySession {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zkCli"));
    command
        .arg("-server")
        .arg(server)
        .env("ZKCLI_HISTORY", history)
        // A terminal the line editor supports, whatever the test runs in.
        .env("TERM", "xterm");
    spawn_with_options(
        command,
        Options {
            timeout_ms: Some(EXPECT_TIMEOUT_MS),
            strip_ansi_escape_codes: true,
        },
    )
    .expect("spawning zkCli in a pseudo-terminal")
}

/// Types keys without a newline; the pty buffers them until flushed.
fn type_keys(zk: &mut PtySession, keys: &str) {
    zk.send(keys).unwrap();
    zk.flush().unwrap();
}

fn prompt(server: &str, n: usize) -> String {
    format!("[zk: {server}(CONNECTED) {n}] ")
}

#[test]
fn prompt_completion_watches_and_history() {
    let server = Server::start();
    let s = server.connect_string();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");

    let mut zk = shell(&s, &history);
    zk.exp_string(&format!("Connecting to {s}")).unwrap();
    zk.exp_string("Welcome to ZooKeeper!").unwrap();
    zk.exp_string(&prompt(&s, 0)).unwrap();
    zk.send_line("create /w one").unwrap();
    zk.exp_string("Created /w").unwrap();
    zk.exp_string(&prompt(&s, 1)).unwrap();
    zk.send_line("get -w /w").unwrap();
    zk.exp_string("one").unwrap();
    zk.exp_string(&prompt(&s, 2)).unwrap();

    // Another session changes the node while the shell sits at its prompt.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mzxid = runtime.block_on(async {
        let (other, _events) = Client::connect(&s, ClientOptions::default()).await.unwrap();
        other.set_data("/w", b"two", None).await.unwrap().mzxid
    });
    zk.exp_string("WATCHER::").unwrap();
    zk.exp_string(&format!(
        "WatchedEvent state:SyncConnected type:NodeDataChanged path:/w zxid: {mzxid}"
    ))
    .unwrap();

    // Tab completes a command name, then a znode path from the server.
    type_keys(&mut zk, "getAllC\t");
    zk.exp_string("getAllChildrenNumber").unwrap();
    type_keys(&mut zk, " /zoo\t");
    zk.exp_string("/zookeeper").unwrap();
    type_keys(&mut zk, "\r");
    zk.exp_regex("\n2\r?\n").unwrap();
    zk.exp_string(&prompt(&s, 3)).unwrap();
    type_keys(&mut zk, "ls /zookeeper/q\t\r");
    zk.exp_string("[]").unwrap();
    zk.exp_string(&prompt(&s, 4)).unwrap();

    zk.send_line("history").unwrap();
    zk.exp_string("0 - create /w one").unwrap();
    zk.exp_string("3 - ls /zookeeper/quota").unwrap();
    zk.exp_string("4 - history").unwrap();
    zk.exp_string(&prompt(&s, 5)).unwrap();
    zk.send_line("quit").unwrap();
    zk.exp_eof().unwrap();

    let saved = std::fs::read_to_string(&history).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&history).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "history is private: {mode:o}");
    }
    assert!(saved.contains("create /w one"), "{saved}");
    assert!(saved.contains("ls /zookeeper/quota"), "{saved}");

    // A new shell recalls the last run's commands: up past `quit` and
    // `history` to the listing, and run it again.
    let mut zk = shell(&s, &history);
    zk.exp_string(&prompt(&s, 0)).unwrap();
    type_keys(&mut zk, UP_ARROW);
    type_keys(&mut zk, UP_ARROW);
    type_keys(&mut zk, UP_ARROW);
    type_keys(&mut zk, "\r");
    zk.exp_string("[]").unwrap();
    zk.exp_string(&prompt(&s, 1)).unwrap();
    zk.send_line("get /w").unwrap();
    zk.exp_string("two").unwrap();
    zk.exp_string(&prompt(&s, 2)).unwrap();
    zk.send_line("close").unwrap();
    zk.exp_string(&format!("[zk: {s}(CLOSED) 3] ")).unwrap();
    zk.send_line("ls /").unwrap();
    zk.exp_string("Not connected").unwrap();
    zk.send_line("quit").unwrap();
    zk.exp_eof().unwrap();
}

/// A TCP relay whose connections can all be cut at once, to make the shell
/// lose its server without stopping it.
struct Relay {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                links.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { addr, task }
    }

    /// Closes the listener and, with the task's JoinSet, every link.
    fn cut(self) {
        self.task.abort();
    }
}

#[test]
fn reconnection_is_reported_and_the_session_goes_on() {
    let server = Server::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay = runtime.block_on(Relay::start(server.addr()));
    let hosts = format!("{},{}", relay.addr, server.connect_string());
    let dir = tempfile::tempdir().unwrap();
    let mut zk = shell(&hosts, &dir.path().join("history"));
    zk.exp_string(&prompt(&hosts, 0)).unwrap();
    zk.send_line("create -e /mine x").unwrap();
    zk.exp_string("Created /mine").unwrap();
    zk.exp_string(&prompt(&hosts, 1)).unwrap();

    runtime.block_on(async { relay.cut() });
    zk.exp_string(&format!(
        "zkCli: lost the connection to {}",
        relay_addr(&hosts)
    ))
    .unwrap();
    let (_, session) = zk
        .exp_regex(&format!(
            "zkCli: reconnected to {}, session 0x[0-9a-f]+ resumed",
            regex_escape(&server.connect_string())
        ))
        .unwrap();
    assert!(session.contains("resumed"));
    // The ephemeral node survived: the same session went on.
    zk.send_line("getEphemerals /").unwrap();
    zk.exp_string("[/mine]").unwrap();
    zk.exp_string(&prompt(&hosts, 2)).unwrap();
    zk.send_line("quit").unwrap();
    zk.exp_eof().unwrap();
}

fn relay_addr(hosts: &str) -> &str {
    hosts.split(',').next().unwrap_or_default()
}

fn regex_escape(text: &str) -> String {
    text.replace('.', "\\.")
}
