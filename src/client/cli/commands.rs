//! The commands: parsing each one's options and arguments as Apache does,
//! running it, and printing in Apache's format (or JSON).

use std::io::Read;

use base64::Engine as _;

use super::args::{flag, parse, valued, Opt, Parsed, ALREADY_SELECTED, MISSING_OPTION};
use super::format::{self, DataFormat};
use super::quota::{self, QuotaError, StatsTrack};
use super::tree;
use super::{err_line, err_text, out_line, out_text, CliError, Flow, Shell, EXIT_NOT_FOUND};
use crate::client::{keeper_message, Client, Error};
use crate::proto::{Acl, AddWatchMode, CreateMode, ErrorCode, Id, WatcherType};

/// Every command with its syntax, as `help` and the usage lines show them.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "addWatch",
        "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    ),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    (
        "create",
        "[-s] [-e] [-c] [-t ttl] [-b] [-f file] path [data] [acl]",
    ),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("get", "[-s] [-w] [-b] [-x] [--json] path"),
    ("getAcl", "[-s] [--json] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("help", ""),
    ("history", ""),
    ("listquota", "path"),
    ("ls", "[-s] [-w] [-R] [--json] path"),
    ("printwatches", "on|off"),
    ("quit", ""),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-p|-r|-a] [-l]"),
    ("set", "[-s] [-v version] [-b] [-f file] path [data]"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("stat", "[-w] [--json] path"),
    ("sync", "path"),
    ("version", ""),
    ("whoami", ""),
];

/// What `help` adds to the list: the behaviour beyond Apache's.
const HELP_NOTES: &str = "\
Beyond Apache's zkCli:
\tcreate/set -f FILE   take the data from FILE; -f - reads standard input
\tcreate/set -b        the data argument is base64
\tget -b / get -x      show the data as base64 / as a hex dump
\t--json               get, stat, ls and getAcl print JSON (also as a program flag)
\tData that is not printable text is shown escaped (\\n, \\xNN, \\\\).
\tls -R and deleteall walk the tree one node at a time, so trees of any size work;
\tdeleteall deletes in multi batches of -b nodes (default 1000).
\tHistory is kept in $ZKCLI_HISTORY, else $XDG_STATE_HOME/zkcli_history, else ~/.zkcli_history.";

fn usage_of(command: &str) -> String {
    COMMANDS
        .iter()
        .find(|(name, _)| *name == command)
        .map_or_else(
            || command.to_string(),
            |(name, syntax)| format!("{name} {syntax}"),
        )
}

/// Apache's usage list, printed for an unknown command and by `help`.
fn usage_text() -> String {
    let mut text = String::from(
        "ZooKeeper -server host:port -client-configuration properties-file cmd args\n",
    );
    for (name, syntax) in COMMANDS {
        text.push_str(&format!("\t{name} {syntax}\n"));
    }
    text
}

/// Runs one command: `words` as split, `line` as typed (for `history`).
pub fn execute(shell: &mut Shell, words: Vec<String>, line: String) -> Result<Flow, CliError> {
    let Some(command) = words.first().cloned() else {
        err_text(&usage_text());
        return Err(CliError::new("No command entered"));
    };
    shell.history.push(line);
    match command.as_str() {
        "quit" => return Ok(Flow::Quit),
        "redo" => return redo(shell, &words),
        "history" => {
            let count = shell.history.len() - 1;
            for i in count.saturating_sub(10)..=count {
                if let Some(line) = shell.history.get(i) {
                    out_line(&format!("{i} - {line}"));
                }
            }
            return Ok(Flow::Continue);
        }
        "printwatches" => {
            match words.get(1) {
                None => out_line(&format!(
                    "printwatches is {}",
                    if shell
                        .print_watches
                        .load(std::sync::atomic::Ordering::Relaxed)
                    {
                        "on"
                    } else {
                        "off"
                    }
                )),
                Some(value) => {
                    shell
                        .print_watches
                        .store(value == "on", std::sync::atomic::Ordering::Relaxed);
                    true
                }
            };
            return Ok(Flow::Continue);
        }
        "connect" => {
            if let Some(host) = words.get(1) {
                shell.host = host.clone();
            }
            shell.connect()?;
            return Ok(Flow::Continue);
        }
        "help" => {
            out_text(&usage_text());
            out_line(HELP_NOTES);
            return Ok(Flow::Continue);
        }
        "version" => {
            if words.len() > 1 {
                return Err(CliError::usage(usage_of("version")));
            }
            out_line(&format!(
                "ZooKeeper CLI version: {}",
                crate::ZOOKEEPER_VERSION
            ));
            return Ok(Flow::Continue);
        }
        _ => {}
    }
    if !COMMANDS.iter().any(|(name, _)| *name == command) {
        err_text(&usage_text());
        return Err(CliError {
            message: format!("Command not found: Command not found {command}"),
            exit_code: EXIT_NOT_FOUND,
        });
    }
    let Some(client) = shell.client.clone().filter(|c| !c.state().is_final()) else {
        return Err(CliError::new("Not connected"));
    };
    let json = shell.json;
    shell
        .runtime
        .block_on(run(&client, &command, &words, json))?;
    if command == "close" {
        // The prompt keeps the closed session's state, as Apache's does.
        shell.client = Some(client);
    }
    Ok(Flow::Continue)
}

/// A command given as words (one-shot mode) as history shows it: re-joined,
/// quoted where needed.
pub fn words_to_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if w.is_empty() || w.contains(char::is_whitespace) {
                if w.contains('"') {
                    format!("'{w}'")
                } else {
                    format!("\"{w}\"")
                }
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn redo(shell: &mut Shell, words: &[String]) -> Result<Flow, CliError> {
    let current = shell.history.len() - 1;
    let Some(arg) = words.get(1) else {
        return Err(CliError::usage(usage_of("redo")));
    };
    let index =
        parse_java_int(arg).ok_or_else(|| CliError::new(format!("For input string: \"{arg}\"")))?;
    let index = usize::try_from(index)
        .ok()
        .filter(|&i| i < current)
        .ok_or_else(|| CliError::new("Command index out of range"))?;
    let line = shell.history[index].clone();
    let words = super::split_line(&line);
    if words.first().map(String::as_str) == Some("redo") {
        return Err(CliError::new("No redoing redos"));
    }
    // The redo's own entry becomes the command it repeats.
    shell.history.pop();
    execute(shell, words, line)
}

/// `Integer.decode`: decimal, or hex with 0x / #, or octal with 0.
fn parse_java_int(text: &str) -> Option<i32> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .or_else(|| digits.strip_prefix('#'))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    i32::try_from(if negative { -value } else { value }).ok()
}

/// Parses a command's words; too few arguments is the usage line.
fn parse_command(spec: &[Opt], words: &[String], min_args: usize) -> Result<Parsed, CliError> {
    let parsed = parse(spec, words)?;
    if parsed.args.len() < min_args {
        return Err(CliError::usage(usage_of(&words[0])));
    }
    Ok(parsed)
}

/// Apache's message for a failed call (`CliWrapperException`).
fn call_failed(error: Error, path: &str) -> CliError {
    let path_of = |p: &Option<String>| p.clone().unwrap_or_else(|| path.to_string());
    let message = match &error {
        Error::Keeper { code, path: p } => match ErrorCode::from_i32(*code) {
            Some(ErrorCode::NoNode) => format!("Node does not exist: {}", path_of(p)),
            Some(ErrorCode::NoChildrenForEphemerals) => {
                format!("Ephemerals cannot have children: {}", path_of(p))
            }
            Some(ErrorCode::NodeExists) => format!("Node already exists: {}", path_of(p)),
            Some(ErrorCode::NotEmpty) => format!("Node not empty: {}", path_of(p)),
            Some(ErrorCode::NotReadOnly) => format!("Not a read-only call: {}", path_of(p)),
            Some(ErrorCode::InvalidAcl) => format!("Acl is not valid : {}", path_of(p)),
            Some(ErrorCode::NoAuth) => format!("Insufficient permission : {}", path_of(p)),
            Some(ErrorCode::BadArguments) => {
                format!("Arguments are not valid : {}", path_of(p))
            }
            Some(ErrorCode::BadVersion) => format!("version No is not valid : {}", path_of(p)),
            Some(ErrorCode::QuotaExceeded) => format!("Quota has exceeded : {}", path_of(p)),
            _ => keeper_message(*code, Some(&path_of(p))),
        },
        Error::ConnectionLoss | Error::SessionExpired | Error::AuthFailed => {
            keeper_message(error.code().unwrap_or_default(), Some(path))
        }
        other => other.to_string(),
    };
    CliError::new(message)
}

fn parse_version(parsed: &Parsed) -> Result<Option<i32>, CliError> {
    match parsed.value("v") {
        None => Ok(None),
        Some(text) => text
            .parse::<i32>()
            .map(Some)
            .map_err(|_| CliError::new(format!("For input string: \"{text}\""))),
    }
}

/// The data of create/set: the argument, decoded with -b, or the content of
/// the -f file (`-` for standard input).
fn data_argument(parsed: &Parsed, index: usize) -> Result<Option<Vec<u8>>, CliError> {
    if let Some(file) = parsed.value("f") {
        let mut data = Vec::new();
        let read = if file == "-" {
            std::io::stdin().lock().read_to_end(&mut data)
        } else {
            std::fs::File::open(file).and_then(|mut f| f.read_to_end(&mut data))
        };
        read.map_err(|e| CliError::new(format!("cannot read {file}: {e}")))?;
        return Ok(Some(data));
    }
    let Some(text) = parsed.arg(index) else {
        return Ok(None);
    };
    if parsed.has("b") {
        return base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(Some)
            .map_err(|e| CliError::new(format!("the data is not base64: {e}")));
    }
    Ok(Some(text.as_bytes().to_vec()))
}

/// Apache's ACL syntax: `scheme:id:perms[,…]`; malformed entries are
/// reported and skipped, as Apache does.
pub fn parse_acl(text: &str) -> Vec<Acl> {
    let mut acl = Vec::new();
    for entry in text.split(',') {
        let (Some(first), Some(last)) = (entry.find(':'), entry.rfind(':')) else {
            err_line(&format!("{entry} does not have the form scheme:id:perm"));
            continue;
        };
        if first == last {
            err_line(&format!("{entry} does not have the form scheme:id:perm"));
            continue;
        }
        let mut perms = 0;
        for c in entry[last + 1..].chars() {
            perms |= match c {
                'r' => crate::proto::perms::READ,
                'w' => crate::proto::perms::WRITE,
                'c' => crate::proto::perms::CREATE,
                'd' => crate::proto::perms::DELETE,
                'a' => crate::proto::perms::ADMIN,
                other => {
                    err_line(&format!("Unknown perm type: {other}"));
                    0
                }
            };
        }
        acl.push(Acl {
            perms,
            id: Id::new(&entry[..first], &entry[first + 1..last]),
        });
    }
    acl
}

/// Runs a command that needs the session.
async fn run(client: &Client, command: &str, words: &[String], json: bool) -> Result<(), CliError> {
    match command {
        "ls" => ls(client, words, json).await,
        "get" => get(client, words, json).await,
        "set" => set(client, words).await,
        "create" => create(client, words).await,
        "delete" => delete(client, words).await,
        "deleteall" => delete_all(client, words).await,
        "stat" => stat(client, words, json).await,
        "setAcl" => set_acl(client, words).await,
        "getAcl" => get_acl(client, words, json).await,
        "addauth" => {
            let p = parse_command(&[], words, 2)?;
            let scheme = p.arg(1).unwrap_or_default();
            let auth = p.arg(2).unwrap_or_default();
            client
                .add_auth(scheme, auth.as_bytes())
                .await
                .map_err(|e| CliError::new(e.to_string()))
        }
        "sync" => {
            let p = parse_command(&[], words, 2)?;
            let path = p.arg(1).unwrap_or_default();
            match client.sync(path).await {
                Ok(_) => {
                    out_line("Sync is OK");
                    Ok(())
                }
                Err(Error::InvalidPath(m)) => Err(CliError::new(m)),
                Err(e) => {
                    out_line(&format!("Sync has failed. rc={}", e.code().unwrap_or(-1)));
                    Err(CliError::new(e.to_string()))
                }
            }
        }
        "addWatch" => {
            let p = parse(&[valued("m")], words)?;
            if p.args.len() != 2 {
                return Err(CliError::usage(usage_of("addWatch")));
            }
            let mode = match p.value("m").map(str::to_ascii_uppercase).as_deref() {
                None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
                Some("PERSISTENT") => AddWatchMode::Persistent,
                Some(_) => return Err(CliError::usage(usage_of("addWatch"))),
            };
            let path = p.arg(1).unwrap_or_default();
            client
                .add_watch(path, mode)
                .await
                .map_err(|e| call_failed(e, path))
        }
        "removewatches" => {
            let spec = [
                flag("c"),
                flag("d"),
                flag("p"),
                flag("r"),
                flag("a"),
                flag("l"),
            ];
            let p = parse_command(&spec, words, 2)?;
            let kind = if p.has("c") {
                WatcherType::Children
            } else if p.has("d") {
                WatcherType::Data
            } else if p.has("p") {
                WatcherType::Persistent
            } else if p.has("r") {
                WatcherType::PersistentRecursive
            } else {
                WatcherType::Any
            };
            let path = p.arg(1).unwrap_or_default();
            client
                .remove_watches(path, kind, p.has("l"))
                .await
                .map_err(|e| call_failed(e, path))
        }
        "whoami" => {
            let clients = client
                .who_am_i()
                .await
                .map_err(|e| CliError::new(e.to_string()))?;
            out_line("Auth scheme: User");
            for info in clients {
                out_line(&format!("{}: {}", info.auth_scheme, info.user));
            }
            Ok(())
        }
        "getEphemerals" => {
            let p = parse(&[], words)?;
            let prefix = p.arg(1).unwrap_or("/");
            let ephemerals = client
                .get_ephemerals(prefix)
                .await
                .map_err(|e| call_failed(e, prefix))?;
            out_line(&format!("[{}]", ephemerals.join(", ")));
            Ok(())
        }
        "getAllChildrenNumber" => {
            let p = parse_command(&[], words, 2)?;
            let path = p.arg(1).unwrap_or_default();
            let total = client
                .get_all_children_number(path)
                .await
                .map_err(|e| call_failed(e, path))?;
            out_line(&total.to_string());
            Ok(())
        }
        "setquota" => set_quota(client, words).await,
        "listquota" => list_quota(client, words).await,
        "delquota" => del_quota(client, words).await,
        "config" => {
            let p = parse(&[flag("c"), flag("w"), flag("s")], words)?;
            let (data, stat) = client
                .get_config(p.has("w"))
                .await
                .map_err(|e| call_failed(e, "/zookeeper/config"))?;
            let text = String::from_utf8_lossy(&data);
            if p.has("c") {
                out_line(&client_config(&text));
            } else {
                out_line(&text);
            }
            if p.has("s") {
                out_text(&format::stat_block(&stat));
            }
            Ok(())
        }
        "close" => client
            .close()
            .await
            .map_err(|e| CliError::new(e.to_string())),
        other => Err(CliError::new(format!("Command not found: {other}"))),
    }
}

async fn ls(client: &Client, words: &[String], json: bool) -> Result<(), CliError> {
    let spec = [flag("?"), flag("s"), flag("w"), flag("R"), flag("json")];
    let mut p = parse(&spec, words)?;
    if p.has("?") {
        out_line("usage: ls [options] path");
        out_line(" -?       help\n -R       recurse\n -s       stat\n -w       watch");
    }
    if p.args.len() > 2 {
        // Apache's old form `ls path watch`.
        err_line("'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.");
        p.args.truncate(2);
        let mut words = p.args.clone();
        words.push("-w".into());
        p = parse(&spec, &words)?;
    }
    let Some(path) = p.arg(1).map(str::to_string) else {
        return Err(CliError::usage(usage_of("ls")));
    };
    let json = json || p.has("json");
    let watch = p.has("w");
    if p.has("R") {
        let mut failures = Vec::new();
        let mut first = true;
        if json {
            out_text("[");
        }
        let walked = tree::walk(
            client,
            &path,
            watch,
            |node| {
                if json {
                    let sep = if first { "" } else { "," };
                    first = false;
                    out_text(&format!("{sep}{}", format::json_string(node)))
                } else {
                    out_line(node)
                }
            },
            |node, e| failures.push(call_failed(e, node).message),
        )
        .await;
        if json {
            out_line("]");
        }
        walked.map_err(|e| call_failed(e, &path))?;
        for failure in &failures {
            err_line(failure);
        }
        if !failures.is_empty() {
            return Err(CliError::new(format!(
                "{} node(s) could not be listed",
                failures.len()
            )));
        }
        return Ok(());
    }
    let (mut children, stat) = if p.has("s") || json {
        let (children, stat) = client
            .get_children2(&path, watch)
            .await
            .map_err(|e| call_failed(e, &path))?;
        (children, Some(stat))
    } else {
        let children = client
            .get_children(&path, watch)
            .await
            .map_err(|e| call_failed(e, &path))?;
        (children, None)
    };
    children.sort();
    if json {
        let stat = stat.filter(|_| p.has("s"));
        out_line(&format::json_children(&path, &children, stat.as_ref()));
        return Ok(());
    }
    out_line(&format!("[{}]", children.join(", ")));
    if let (true, Some(stat)) = (p.has("s"), stat) {
        out_text(&format::stat_block(&stat));
    }
    Ok(())
}

async fn get(client: &Client, words: &[String], json: bool) -> Result<(), CliError> {
    let spec = [flag("s"), flag("w"), flag("b"), flag("x"), flag("json")];
    let mut p = parse_command(&spec, words, 2)?;
    if p.args.len() > 2 {
        err_line(
            "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
        );
        let mut words = words.to_vec();
        if let Some(last) = p.args.last().cloned() {
            if let Some(at) = words.iter().rposition(|w| *w == last) {
                words[at] = "-w".into();
            }
        }
        p = parse_command(&spec, &words, 2)?;
    }
    let path = p.arg(1).unwrap_or_default().to_string();
    let (data, stat) = client
        .get_data(&path, p.has("w"))
        .await
        .map_err(|e| call_failed(e, &path))?;
    if json || p.has("json") {
        out_line(&format::json_node(&path, &data, &stat));
        return Ok(());
    }
    let data_format = if p.has("x") {
        DataFormat::Hex
    } else if p.has("b") {
        DataFormat::Base64
    } else {
        DataFormat::Safe
    };
    out_line(&format::render_data(&data, data_format));
    if p.has("s") {
        out_text(&format::stat_block(&stat));
    }
    Ok(())
}

async fn set(client: &Client, words: &[String]) -> Result<(), CliError> {
    let spec = [flag("s"), valued("v"), flag("b"), valued("f")];
    let p = parse(&spec, words)?;
    let min_args = if p.has("f") { 2 } else { 3 };
    if p.args.len() < min_args {
        return Err(CliError::usage(usage_of("set")));
    }
    let path = p.arg(1).unwrap_or_default();
    let data = data_argument(&p, 2)?.unwrap_or_default();
    let version = parse_version(&p)?;
    let stat = client
        .set_data(path, &data, version)
        .await
        .map_err(|e| call_failed(e, path))?;
    if p.has("s") {
        out_text(&format::stat_block(&stat));
    }
    Ok(())
}

/// Apache refuses TTLs outside (0, 2^40).
const MAX_TTL: i64 = 0xFF_FFFF_FFFF;

async fn create(client: &Client, words: &[String]) -> Result<(), CliError> {
    let spec = [
        flag("e"),
        flag("s"),
        flag("c"),
        valued("t"),
        flag("b"),
        valued("f"),
    ];
    let p = parse_command(&spec, words, 2)?;
    let (ephemeral, sequential, container) = (p.has("e"), p.has("s"), p.has("c"));
    if container && (ephemeral || sequential) {
        return Err(CliError::new(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl = match p.value("t") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| CliError::new("-t argument must be a long value"))?,
        ),
    };
    if ttl.is_some() && ephemeral {
        return Err(CliError::new("TTLs cannot be used with Ephemeral znodes"));
    }
    if ttl.is_some() && container {
        return Err(CliError::new("TTLs cannot be used with Container znodes"));
    }
    if let Some(ttl) = ttl {
        if ttl <= 0 || ttl > MAX_TTL {
            return Err(CliError::new(format!(
                "ttl must be positive and cannot be larger than: {MAX_TTL}"
            )));
        }
    }
    let mode = match (ephemeral, sequential, container, ttl.is_some()) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    };
    let path = p.arg(1).unwrap_or_default();
    // With -f the data comes from the file, so the next argument is the ACL.
    let (data, acl_index) = if p.has("f") {
        (data_argument(&p, 2)?, 2)
    } else {
        (data_argument(&p, 2)?, 3)
    };
    let acl = match p.arg(acl_index) {
        Some(text) => parse_acl(text),
        None => Acl::open_unsafe(),
    };
    let created = client
        .create2(path, &data.unwrap_or_default(), &acl, mode, ttl)
        .await;
    match created {
        Ok((created, _)) => {
            out_line(&format!("Created {created}"));
            Ok(())
        }
        Err(e) if e.is(ErrorCode::InvalidAcl) => {
            err_line(&e.to_string());
            Err(call_failed(e, path))
        }
        Err(e) if e.is(ErrorCode::EphemeralOnLocalSession) => {
            err_line("Unable to create ephemeral node on a local session");
            Err(call_failed(e, path))
        }
        Err(e) => Err(call_failed(e, path)),
    }
}

async fn delete(client: &Client, words: &[String]) -> Result<(), CliError> {
    let spec = [valued("v")];
    let p = parse_command(&spec, words, 2)?;
    let mut version = parse_version(&p)?;
    if let Some(old_style) = p.arg(2) {
        err_line(
            "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.",
        );
        if version.is_none() {
            version = old_style.parse::<i32>().ok();
        }
    }
    let path = p.arg(1).unwrap_or_default();
    client
        .delete(path, version)
        .await
        .map_err(|e| call_failed(e, path))
}

async fn delete_all(client: &Client, words: &[String]) -> Result<(), CliError> {
    let p = parse_command(&[valued("b")], words, 2)?;
    let batch = match p.value("b") {
        None => 1000,
        Some(text) => text
            .parse::<i32>()
            .map_err(|_| CliError::new("-b argument must be an int value"))?
            .max(0) as usize,
    };
    let path = p.arg(1).unwrap_or_default();
    crate::client::validate_path(path).map_err(|e| CliError::new(e.to_string()))?;
    let report = tree::delete_all(client, path, batch)
        .await
        .map_err(|e| call_failed(e, path))?;
    if report.failures.is_empty() {
        return Ok(());
    }
    for (node, error) in report.failures {
        err_line(&call_failed(error, &node).message);
    }
    Err(CliError::new(
        "Failed to delete some node(s) in the subtree!",
    ))
}

async fn stat(client: &Client, words: &[String], json: bool) -> Result<(), CliError> {
    let spec = [flag("w"), flag("json")];
    let mut p = parse_command(&spec, words, 2)?;
    if p.args.len() > 2 {
        err_line("'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.");
        p.args.truncate(2);
        let mut words = p.args.clone();
        words.push("-w".into());
        p = parse_command(&spec, &words, 2)?;
    }
    let path = p.arg(1).unwrap_or_default();
    let stat = client
        .exists(path, p.has("w"))
        .await
        .map_err(|e| call_failed(e, path))?
        .ok_or_else(|| CliError::new(format!("Node does not exist: {path}")))?;
    if json || p.has("json") {
        out_line(&format::json_path_stat(path, &stat));
    } else {
        out_text(&format::stat_block(&stat));
    }
    Ok(())
}

async fn set_acl(client: &Client, words: &[String]) -> Result<(), CliError> {
    let spec = [flag("s"), valued("v"), flag("R")];
    let p = parse_command(&spec, words, 3)?;
    let path = p.arg(1).unwrap_or_default().to_string();
    let acl = parse_acl(p.arg(2).unwrap_or_default());
    let version = parse_version(&p)?;
    if p.has("R") {
        let mut nodes = Vec::new();
        let mut failures = Vec::new();
        // Collect first, then change: setting an ACL may take away the
        // READ permission the walk needs.
        tree::walk(
            client,
            &path,
            false,
            |node| {
                nodes.push(node.to_string());
                true
            },
            |node, e| failures.push(call_failed(e, node).message),
        )
        .await
        .map_err(|e| call_failed(e, &path))?;
        for node in nodes {
            if let Err(e) = client.set_acl(&node, &acl, version).await {
                failures.push(call_failed(e, &node).message);
            }
        }
        for failure in &failures {
            err_line(failure);
        }
        if !failures.is_empty() {
            return Err(CliError::new(format!(
                "the ACL of {} node(s) could not be set",
                failures.len()
            )));
        }
        return Ok(());
    }
    let stat = client
        .set_acl(&path, &acl, version)
        .await
        .map_err(|e| call_failed(e, &path))?;
    if p.has("s") {
        out_text(&format::stat_block(&stat));
    }
    Ok(())
}

async fn get_acl(client: &Client, words: &[String], json: bool) -> Result<(), CliError> {
    let p = parse_command(&[flag("s"), flag("json")], words, 2)?;
    let path = p.arg(1).unwrap_or_default();
    let (acl, stat) = client
        .get_acl(path)
        .await
        .map_err(|e| call_failed(e, path))?;
    if json || p.has("json") {
        out_line(&format::json_acl(path, &acl, &stat));
        return Ok(());
    }
    for entry in &acl {
        out_line(&format::acl_entry(entry));
    }
    if p.has("s") {
        out_text(&format::stat_block(&stat));
    }
    Ok(())
}

/// The quota options: exactly one of them, as Apache's option group.
const QUOTA_KEYS: [(&str, &str); 4] = [
    ("n", quota::COUNT),
    ("b", quota::BYTES),
    ("N", quota::COUNT_HARD),
    ("B", quota::BYTES_HARD),
];

fn one_quota_option(p: &Parsed) -> Result<Option<&'static str>, CliError> {
    let given: Vec<&str> = p
        .order
        .iter()
        .copied()
        .filter(|o| QUOTA_KEYS.iter().any(|(k, _)| k == o))
        .collect();
    if let [first, second, ..] = given.as_slice() {
        return Err(CliError::usage(format!(
            "{ALREADY_SELECTED}: The option '{second}' was specified but an option from this group has already been selected: '{first}'"
        )));
    }
    Ok(given.first().copied())
}

async fn set_quota(client: &Client, words: &[String]) -> Result<(), CliError> {
    let spec = [valued("n"), valued("b"), valued("N"), valued("B")];
    let p = parse(&spec, words)?;
    let Some(option) = one_quota_option(&p)? else {
        return Err(CliError::usage(format!(
            "{MISSING_OPTION}: Missing required option: [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]"
        )));
    };
    if p.args.len() < 2 {
        return Err(CliError::usage(usage_of("setquota")));
    }
    let path = p.arg(1).unwrap_or_default();
    if path.starts_with(quota::QUOTA_ROOT) {
        err_line(&format!(
            "cannot set a quota under the path: {}",
            quota::QUOTA_ROOT
        ));
        return Ok(());
    }
    crate::client::validate_path(path).map_err(|e| CliError::new(e.to_string()))?;
    let Some(value) = p.value(option).and_then(|v| v.parse::<i64>().ok()) else {
        err_line("NumberFormatException happens when parsing the option value");
        return Ok(());
    };
    let is_count = option == "n" || option == "N";
    if is_count && value <= 0 {
        err_line("the num quota must be greater than zero");
        return Ok(());
    }
    if !is_count && value < 0 {
        err_line("the bytes quota must be greater than or equal to zero");
        return Ok(());
    }
    let mut quota = StatsTrack::default();
    for (_, key) in QUOTA_KEYS {
        quota.set(key, -1);
    }
    let key = QUOTA_KEYS
        .iter()
        .find(|(o, _)| *o == option)
        .map_or(quota::COUNT, |(_, k)| k);
    quota.set(key, value);
    match quota::set_quota(client, path, &quota).await {
        Ok(warnings) => {
            for warning in warnings {
                out_line(&warning);
            }
            Ok(())
        }
        Err(QuotaError::Refused(message)) => Err(CliError::new(message)),
        Err(QuotaError::Client(e, at)) => Err(call_failed(e, &at)),
    }
}

async fn list_quota(client: &Client, words: &[String]) -> Result<(), CliError> {
    let p = parse_command(&[], words, 2)?;
    let path = p.arg(1).unwrap_or_default();
    err_line(&format!("absolute path is {}", quota::limit_path(path)));
    let limits = client.get_data(&quota::limit_path(path), false).await;
    let usage = match &limits {
        Ok(_) => Some(client.get_data(&quota::stat_path(path), false).await),
        Err(_) => None,
    };
    match (limits, usage) {
        (Ok((limits, _)), Some(Ok((usage, _)))) => {
            out_line(&format!(
                "Output quota for {path} {}",
                StatsTrack::parse(&String::from_utf8_lossy(&limits))
            ));
            out_line(&format!(
                "Output stat for {path} {}",
                StatsTrack::parse(&String::from_utf8_lossy(&usage))
            ));
            Ok(())
        }
        (Err(e), _) | (_, Some(Err(e))) if e.is(ErrorCode::NoNode) => {
            err_line(&format!("quota for {path} does not exist."));
            Ok(())
        }
        (Err(e), _) | (_, Some(Err(e))) => Err(call_failed(e, path)),
        (Ok(_), None) => Ok(()),
    }
}

async fn del_quota(client: &Client, words: &[String]) -> Result<(), CliError> {
    let spec = [flag("n"), flag("b"), flag("N"), flag("B")];
    let p = parse_command(&spec, words, 2)?;
    let option = one_quota_option(&p)?;
    let path = p.arg(1).unwrap_or_default();
    crate::client::validate_path(path).map_err(|e| CliError::new(e.to_string()))?;
    let keys: Option<Vec<&str>> = option.map(|o| {
        QUOTA_KEYS
            .iter()
            .filter(|(k, _)| *k == o)
            .map(|(_, key)| *key)
            .collect()
    });
    match quota::delete_quota(client, path, keys.as_deref()).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            out_line(&format!("Quota does not exist for {path}"));
            Ok(())
        }
        Err(e) if e.is(ErrorCode::NoNode) => {
            err_line(&format!("quota for {path} does not exist."));
            Ok(())
        }
        Err(e) => Err(call_failed(e, path)),
    }
}

/// `config -c`: the config version and the servers' client addresses, as
/// a connect string (`ConfigUtils.getClientConfigStr`).
fn client_config(config: &str) -> String {
    let mut version = "";
    let mut servers = Vec::new();
    for line in config.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "version" {
            version = value;
        }
        if key.starts_with("server.") {
            if let Some((_, client)) = value.split_once(';') {
                let client = client.trim();
                servers.push(if client.contains(':') {
                    client.to_string()
                } else {
                    format!("0.0.0.0:{client}")
                });
            }
        }
    }
    format!("{version} {}", servers.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_syntax() {
        let acl = parse_acl("world:anyone:cdrwa,digest:u:hash:r,bad");
        assert_eq!(acl.len(), 2);
        assert_eq!(acl[1].id, Id::new("digest", "u:hash"));
        assert_eq!(acl[1].perms, crate::proto::perms::READ);
    }

    #[test]
    fn java_integers() {
        assert_eq!(parse_java_int("12"), Some(12));
        assert_eq!(parse_java_int("0x1f"), Some(31));
        assert_eq!(parse_java_int("010"), Some(8));
        assert_eq!(parse_java_int("x"), None);
    }

    #[test]
    fn client_config_string() {
        let config = "server.1=a:2888:3888:participant;0.0.0.0:2181\nserver.2=b:2888:3888;2182\nversion=100000000";
        assert_eq!(client_config(config), "100000000 0.0.0.0:2181,0.0.0.0:2182");
    }

    #[test]
    fn history_lines_keep_quoting() {
        let words = vec!["set".to_string(), "/a".into(), "two words".into()];
        assert_eq!(words_to_line(&words), "set /a \"two words\"");
    }
}
