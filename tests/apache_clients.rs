//! Apache's own command-line clients against our server: Debian's Java `zkCli.sh` and the C
//! client's `cli_mt` run the same script against Apache ZooKeeper and against ours, and their
//! normalised output must match.
//!
//! `ZKRS_DIFF_SELFTEST=1` runs Apache on both sides.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use sha1::Digest as _;

use common::transcript::assert_same_transcript;
use common::{
    apache_available, cli_mt_available, wait_until, zkcli_available, Impl, ZkUnderTest, CLI_MT,
    ZKCLI,
};

/// A JVM client on two busy cores, a whole script included.
const ZKCLI_TIMEOUT: Duration = Duration::from_secs(90);
const CLI_MT_STEP_TIMEOUT: Duration = Duration::from_secs(15);

fn sides() -> (Impl, Impl) {
    if std::env::var("ZKRS_DIFF_SELFTEST").is_ok_and(|v| v == "1") {
        (Impl::Apache, Impl::Apache)
    } else {
        (Impl::Apache, Impl::Ours)
    }
}

/// Runs `client` against a reference and a candidate server and compares the transcripts.
fn compare(extra_cfg: &str, client: impl Fn(&dyn ZkUnderTest) -> Vec<String>) {
    let (reference, candidate) = sides();
    let candidate_server = candidate.start_with(extra_cfg);
    let reference_server = reference.start_with(extra_cfg);
    let expected = client(reference_server.as_ref());
    let actual = client(candidate_server.as_ref());
    for line in &expected {
        println!("{line}");
    }
    assert_same_transcript(
        &format!("{} (reference)", reference.name()),
        &expected,
        candidate.name(),
        &actual,
    );
}

fn digest_id(user: &str, password: &str) -> String {
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

// --- zkCli.sh --------------------------------------------------------------------------------

/// Runs zkCli.sh with `args` and `stdin`, bounded in time; returns (exit code, merged output).
fn run_zkcli(server: &dyn ZkUnderTest, args: &[&str], stdin: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_path = dir.path().join("zkcli.out");
    let out = File::create(&out_path).expect("output file");
    let mut child = Command::new(ZKCLI)
        .arg("-server")
        .arg(server.connect_string())
        .args(args)
        .env("ZOO_LOG_DIR", dir.path())
        .env(
            "CLIENT_JVMFLAGS",
            "-Dzookeeper.sasl.client=false -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        )
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        // One file for both streams keeps their relative order (both are flushed per line).
        .stdout(out.try_clone().expect("duplicating the output file"))
        .stderr(out)
        .spawn()
        .expect("spawning zkCli.sh");
    let mut input = child.stdin.take().expect("zkCli stdin");
    input
        .write_all(stdin.as_bytes())
        .expect("writing the script");
    drop(input);
    let status = wait_for_exit(&mut child, ZKCLI_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "zkCli.sh against {} did not exit within {ZKCLI_TIMEOUT:?}:\n{}",
            server.name(),
            std::fs::read_to_string(&out_path).unwrap_or_default()
        )
    });
    let output = std::fs::read_to_string(&out_path).expect("reading zkCli output");
    (status, output)
}

fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let mut code = None;
    let exited = wait_until(
        || match child.try_wait() {
            Ok(Some(status)) => {
                code = Some(status.code().unwrap_or(-1));
                true
            }
            _ => false,
        },
        timeout,
    );
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    code
}

/// Masks what differs between two correct servers in zkCli output and drops logging noise.
///
/// Watch notifications are printed by the client's event thread, racing with the command
/// output of the main thread, so they are collected apart and compared as a sorted list.
fn normalise_zkcli(output: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut events = Vec::new();
    for line in output.lines() {
        let line = line.trim_end();
        if line.is_empty()
            || line.starts_with("SLF4J:")
            || line == "WATCHER::"
            || line.starts_with("WatchedEvent state:SyncConnected type:None")
            || line.starts_with("WatchedEvent state:Closed type:None")
        {
            continue;
        }
        if line.starts_with("WatchedEvent ") {
            events.push(line.to_string());
            continue;
        }
        let masked = if line.starts_with("Connecting to ") {
            "Connecting to <server>".to_string()
        } else if let Some((key, value)) = line.split_once(" = ") {
            match key {
                "cZxid" | "mZxid" | "pZxid" => format!("{key} = <zxid>"),
                "ctime" | "mtime" => format!("{key} = <time>"),
                "ephemeralOwner" if value != "0x0" => format!("{key} = <session>"),
                _ => line.to_string(),
            }
        } else {
            line.to_string()
        };
        lines.push(masked);
    }
    events.sort();
    lines.extend(events.into_iter().map(|e| format!("(event) {e}")));
    lines
}

fn zkcli_session_script() -> String {
    let digest = digest_id("carol", "pw");
    format!(
        "\
create /cli
create /cli/a hello
create -e /cli/eph e
create -s /cli/seq- s
create -s /cli/seq- s
create -c /cli/ctr
create /cli/ctr/kid
create /cli/a again
create /nope/x
get /cli/a
get -s /cli/a
set /cli/a world
set -v 0 /cli/a stale
set -s -v 1 /cli/a w2
stat /cli/a
stat /nope
ls /cli
ls -s /cli
ls -R /cli
ls /nope
getAllChildrenNumber /cli
getEphemerals /cli
delete /cli
delete -v 9 /cli/a
delete /cli/a
get /cli/a
setAcl /cli/seq-0000000002 world:anyone:r
getAcl /cli/seq-0000000002
set /cli/seq-0000000002 x
create /cli/d x digest:{digest}:cdrwa
get /cli/d
addauth digest carol:pw
get /cli/d
getAcl /cli/d
whoami
sync /cli
get -w /cli/d
set /cli/d y
ls -w /cli
create /cli/new
deleteall /cli/ctr
ls /cli
quit
"
    )
}

#[test]
fn zkcli_interactive_session() {
    if !apache_available() || !zkcli_available() {
        return;
    }
    compare("", |server| {
        let (code, output) = run_zkcli(server, &[], &zkcli_session_script());
        let mut lines = normalise_zkcli(&output);
        lines.push(format!("exit code {code}"));
        lines
    });
}

#[test]
fn zkcli_one_shot_commands() {
    if !apache_available() || !zkcli_available() {
        return;
    }
    compare("", |server| {
        let mut lines = Vec::new();
        for command in [
            &["create", "/one", "shot"][..],
            &["get", "-s", "/one"],
            &["get", "/missing"],
            &["create", "/one", "again"],
            &["ls", "/"],
        ] {
            let (code, output) = run_zkcli(server, command, "");
            lines.push(format!("$ zkCli.sh {} -> exit {code}", command.join(" ")));
            lines.extend(normalise_zkcli(&output));
        }
        lines
    });
}

// --- cli_mt ----------------------------------------------------------------------------------

/// An interactive cli_mt session: commands go in one at a time, and each is followed by a
/// fence (a delete of a node that never exists) whose completion, delivered in order on the
/// client's completion thread, proves every earlier completion has been printed.
struct CliMt {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    fences: u32,
}

impl CliMt {
    fn start(addr: SocketAddr) -> CliMt {
        let mut child = Command::new(CLI_MT)
            .arg("-h")
            .arg(addr.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning cli_mt");
        let stdin = child.stdin.take().expect("cli_mt stdin");
        let lines = Arc::new(Mutex::new(Vec::new()));
        // Everything of interest goes to stderr; stdout only carries `myid`, unused here.
        let readers = [
            Box::new(child.stderr.take().expect("cli_mt stderr")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().expect("cli_mt stdout")),
        ]
        .into_iter()
        .map(|stream| {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            })
        })
        .collect();
        let mut cli = CliMt {
            child,
            stdin: Some(stdin),
            lines,
            readers,
            fences: 0,
        };
        cli.wait_for_line("session established", |l| {
            l.starts_with("Got a new session id")
        });
        cli
    }

    fn wait_for_line(&mut self, what: &str, predicate: impl Fn(&str) -> bool) {
        let lines = Arc::clone(&self.lines);
        let found = wait_until(
            || lines.lock().unwrap().iter().any(|l| predicate(l)),
            CLI_MT_STEP_TIMEOUT,
        );
        if !found {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "cli_mt: no {what} within {CLI_MT_STEP_TIMEOUT:?}; output so far:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
        }
    }

    fn run(&mut self, command: &str) {
        self.fences += 1;
        let fence = format!("/zkrs-fence-{}", self.fences);
        let stdin = self.stdin.as_mut().expect("cli_mt stdin is open");
        // One write per batch of whole lines: cli_mt loses a partial line left in its buffer.
        let batch = format!("{command}\ndelete {fence}\n");
        stdin
            .write_all(batch.as_bytes())
            .expect("writing to cli_mt");
        stdin.flush().expect("flushing cli_mt stdin");
        let done = format!("{fence}: rc = ");
        self.wait_for_line(&format!("completion of {command:?}"), |l| {
            l.starts_with(&done)
        });
    }

    fn finish(mut self) -> Vec<String> {
        let mut stdin = self.stdin.take().expect("cli_mt stdin is open");
        stdin.write_all(b"quit\n").expect("writing quit");
        drop(stdin);
        if wait_for_exit(&mut self.child, CLI_MT_STEP_TIMEOUT).is_none() {
            panic!("cli_mt did not exit after quit");
        }
        // The pipes reach EOF once the process has exited, so the readers end too.
        for reader in self.readers.drain(..) {
            reader.join().expect("cli_mt output reader");
        }
        let lines = self.lines.lock().unwrap().clone();
        lines
    }
}

impl Drop for CliMt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Masks zxids, times and session ids in cli_mt output; sorts child lists, whose order the
/// protocol leaves open; drops the fences and timings.
fn normalise_cli_mt(raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut children: Vec<String> = Vec::new();
    let flush = |out: &mut Vec<String>, children: &mut Vec<String>| {
        children.sort();
        out.append(children);
    };
    let mut in_listing = false;
    for line in raw {
        if line.starts_with("/zkrs-fence-") || line.starts_with("time = ") {
            if line.starts_with("time = ") && in_listing {
                flush(&mut out, &mut children);
                in_listing = false;
            }
            continue;
        }
        if line.contains("ZOO_INFO") || line.contains("ZOO_DEBUG") {
            continue;
        }
        let trimmed = line.trim_start_matches('\t');
        let masked = if line.starts_with("Got a new session id") {
            "Got a new session id: <session>".to_string()
        } else if trimmed.starts_with("ctime = ") {
            "\tctime = <time>".to_string()
        } else if trimmed.starts_with("mtime=") {
            "\tmtime=<time>".to_string()
        } else if trimmed.starts_with("czxid=") {
            "\tczxid=<zxid>".to_string()
        } else if trimmed.starts_with("mzxid=") {
            "\tmzxid=<zxid>".to_string()
        } else if trimmed.starts_with("ephemeralOwner = ") && trimmed != "ephemeralOwner = 0" {
            "\tephemeralOwner = <session>".to_string()
        } else {
            line.clone()
        };
        if in_listing && line.starts_with('\t') && !line.contains('=') {
            children.push(masked);
            continue;
        }
        if in_listing {
            flush(&mut out, &mut children);
            in_listing = false;
        }
        // A listing follows `<path>: rc = 0` printed by ls/ls2 completions.
        if line.starts_with('/') && line.ends_with(": rc = 0") {
            in_listing = true;
        }
        out.push(masked);
    }
    flush(&mut out, &mut children);
    out
}

#[test]
fn cli_mt_session() {
    if !apache_available() || !cli_mt_available() {
        return;
    }
    compare("", |server| {
        let mut cli = CliMt::start(server.addr());
        for command in [
            "create /c",
            "create /c/a",
            "create2 /c/b",
            "create +e /c/eph",
            "create +s /c/seq-",
            "create +es /c/eseq-",
            "create /c/a",
            "create /nope/x",
            "create /c/eph/kid",
            "get /c/a",
            "set /c/a some data",
            "get /c/a",
            "ls /c",
            "ls2 /c",
            "ls /nope",
            "exists /c/a",
            "exists /nope",
            "wexists /later",
            "create /later",
            "get /c/b",
            "delete /c/a",
            "delete /c/b",
            "delete /c",
            "get /c/a",
            "sync /c",
            "addauth digest dave:pw",
            "ls /",
        ] {
            cli.run(command);
        }
        normalise_cli_mt(&cli.finish())
    });
}

/// The normaliser must not hide real differences: a changed version survives it.
#[test]
fn cli_mt_normaliser_keeps_versions() {
    let raw = |version: &str| {
        vec![
            "/c/a: rc = 0 Stat:".to_string(),
            "\tctime = Sun Nov 22 04:40:40 2026".to_string(),
            "\tczxid=45".to_string(),
            format!("\tversion={version}\taversion=0"),
            "/c: rc = 0".to_string(),
            "\tb".to_string(),
            "\ta".to_string(),
            "time = 3 msec".to_string(),
        ]
    };
    let one = normalise_cli_mt(&raw("1"));
    let two = normalise_cli_mt(&raw("2"));
    assert_ne!(one, two);
    assert_eq!(
        one,
        vec![
            "/c/a: rc = 0 Stat:",
            "\tctime = <time>",
            "\tczxid=<zxid>",
            "\tversion=1\taversion=0",
            "/c: rc = 0",
            "\ta",
            "\tb",
        ]
    );
}
