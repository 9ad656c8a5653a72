//! The same scripted session through Debian's Apache `zkCli.sh` and through
//! our zkCli, each against a fresh server of ours: the outputs must match
//! once times, zxids and session ids are masked.

mod common;

use std::fs::File;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_until, zkcli_available, Server, ZkUnderTest, ZKCLI};

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `program` with `args` and the script on stdin; returns the exit
/// status and both streams merged in order.
fn run_script(mut command: Command, script: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_path = dir.path().join("out");
    let out = File::create(&out_path).expect("output file");
    let mut child = command
        .env("ZOO_LOG_DIR", dir.path())
        .env(
            "CLIENT_JVMFLAGS",
            "-Dzookeeper.sasl.client=false -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        )
        .env("ZKCLI_HISTORY", dir.path().join("history"))
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("duplicating the output file"))
        .stderr(out)
        .spawn()
        .expect("spawning the client");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(script.as_bytes())
        .expect("writing the script");
    drop(stdin);
    let mut code = None;
    let exited = wait_until(
        || match child.try_wait() {
            Ok(Some(status)) => {
                code = Some(status.code().unwrap_or(-1));
                true
            }
            _ => false,
        },
        RUN_TIMEOUT,
    );
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(exited, "the client did not finish the script:\n{output}");
    (code.unwrap_or(-1), output)
}

/// Keeps what both clients must agree on: session state changes are
/// dropped (they depend on timing); watch events are printed by a
/// thread of their own in both, racing with command output, so they are
/// compared as a sorted list; 3.9 adds ` zxid: N` to them, 3.8 does not.
fn normalise(output: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut events = Vec::new();
    for line in output.lines() {
        let line = line.trim_end();
        if line.is_empty()
            || line.starts_with("SLF4J:")
            || line.starts_with("JLine support")
            || line == "WATCHER::"
            || line.starts_with("WatchedEvent state:SyncConnected type:None")
            || line.starts_with("WatchedEvent state:Closed type:None")
            // The Java client sometimes sees the server close the socket
            // after closeSession before it marks itself closed.
            || line.starts_with("WatchedEvent state:Disconnected type:None")
            // Apache's client raises PersistentWatchRemoved on a thread of
            // its own after removewatches and, on a loaded machine, zkCli.sh
            // can quit before printing it; ours always prints it.
            || line.starts_with("WatchedEvent state:SyncConnected type:PersistentWatchRemoved")
        {
            continue;
        }
        if let Some(event) = line.strip_prefix("WatchedEvent ") {
            let event = match event.rsplit_once(" zxid: ") {
                Some((event, _)) => event,
                None => event,
            };
            events.push(format!("(event) {event}"));
            continue;
        }
        let masked = match line.split_once(" = ") {
            Some((key @ ("cZxid" | "mZxid" | "pZxid"), _)) => format!("{key} = <zxid>"),
            Some((key @ ("ctime" | "mtime"), _)) => format!("{key} = <time>"),
            Some(("ephemeralOwner", value)) if value != "0x0" => {
                "ephemeralOwner = <session>".to_string()
            }
            _ => line.to_string(),
        };
        lines.push(masked);
    }
    events.sort();
    lines.extend(events);
    lines
}

const SCRIPT: &str = "\
create /cli
create /cli/a hello
create -e /cli/eph e
create -s /cli/seq- s
create -s /cli/seq- s
create -c /cli/ctr
create /cli/ctr/kid
create /cli/a again
create /nope/x
create -c -e /bad
create bad
get /cli/a
get -s /cli/a
get /nope
set /cli/a world
set -v 0 /cli/a stale
set -s -v 1 /cli/a w2
set /cli/a \"two words\"
get /cli/a
stat /cli/a
stat /nope
ls /cli
ls -s /cli
ls -R /cli
ls /nope
ls -q /cli
getAllChildrenNumber /cli
getEphemerals /cli
delete /cli
delete -v 9 /cli/a
delete /cli/a
get /cli/a
setAcl /cli/seq-0000000002 world:anyone:r
getAcl /cli/seq-0000000002
getAcl -s /cli/seq-0000000002
set /cli/seq-0000000002 x
addauth digest carol:pw
create /cli/d x auth::cdrwa
get /cli/d
getAcl /cli/d
whoami
sync /cli
get -w /cli/d
set /cli/d y
ls -w /cli
create /cli/new
stat -w /cli/gone
create /cli/gone
addWatch /cli
create /cli/new/x
delete /cli/new/x
removewatches /cli
removewatches /cli
printwatches
printwatches off
set /cli/new x
printwatches on
setquota -n 3 /cli
setquota -b 100 /cli
listquota /cli
setquota -n 3 /cli/ctr
delquota -n /cli
listquota /cli
delquota /cli
listquota /cli
deleteall /cli/ctr
ls /cli
history
redo 21
redo 999
quit
";

#[test]
fn scripted_session_matches_apache_zkcli() {
    if !zkcli_available() {
        return;
    }
    let apache_server = Server::start();
    let mut apache = Command::new(ZKCLI);
    apache.arg("-server").arg(apache_server.connect_string());
    let (apache_code, apache_output) = run_script(apache, SCRIPT);

    let our_server = Server::start();
    let mut ours = Command::new(env!("CARGO_BIN_EXE_zkCli"));
    ours.arg("-server").arg(our_server.connect_string());
    let (our_code, our_output) = run_script(ours, SCRIPT);

    let mut expected = normalise(&apache_output);
    let mut actual = normalise(&our_output);
    // A reference that did not run the script proves nothing.
    assert!(
        expected.iter().any(|l| l == "Created /cli/ctr/kid") && expected.len() > 100,
        "zkCli.sh did not run the script:\n{apache_output}"
    );
    // The servers' addresses differ; nothing else may.
    for (lines, server) in [
        (&mut expected, apache_server.connect_string()),
        (&mut actual, our_server.connect_string()),
    ] {
        for line in lines.iter_mut() {
            *line = line.replace(&server, "<server>");
        }
    }
    expected.push(format!("exit {apache_code}"));
    actual.push(format!("exit {our_code}"));
    if expected != actual {
        let mut report = String::new();
        let width = expected.len().max(actual.len());
        for i in 0..width {
            let a = expected.get(i).map_or("", String::as_str);
            let b = actual.get(i).map_or("", String::as_str);
            let mark = if a == b { ' ' } else { '!' };
            report.push_str(&format!("{mark} {a:<60} | {b}\n"));
        }
        panic!("zkCli.sh (left) and ours (right) differ:\n{report}");
    }
}
