//! `zkCli`: Apache's command-line shell for ZooKeeper, on [`crate::client`].
//!
//! Commands, options and output follow Apache 3.9's `ZooKeeperMain` so that
//! runbooks and scripts keep working; the additions (`--json`, safe binary
//! output, data from files, huge-tree walks, reconnection status lines) are
//! listed by `help`. The binary `src/bin/zk_cli.rs` only calls [`main`].

mod args;
mod commands;
mod format;
mod interactive;
mod quota;
mod tree;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;

use crate::client::{Client, ClientOptions, Events, SessionState, Status};

pub use args::split_line;

/// Exit status of a command that failed (Apache's `CliException` default).
const EXIT_FAILED: u8 = 1;
/// Exit status for a bad command line.
const EXIT_USAGE: u8 = 2;
/// Exit status of an unknown command (Apache's `CommandNotFoundException`).
const EXIT_NOT_FOUND: u8 = 127;

/// A command that failed: the message goes to stderr, the code is the exit
/// status in one-shot mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    pub exit_code: u8,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            exit_code: EXIT_FAILED,
        }
    }

    /// A malformed command (wrong options or arguments).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(message)
    }
}

/// The program's own flags. Apache spells them with one dash (`-server`);
/// both spellings are accepted.
#[derive(Debug, Parser)]
#[command(
    name = "zkCli",
    version = crate::ZOOKEEPER_VERSION,
    about = "ZooKeeper command-line shell",
    after_help = "Without a command, opens an interactive shell; `help` lists the commands."
)]
struct Flags {
    /// Servers to connect to: host:port[,host:port...][/chroot].
    #[arg(long, default_value = "localhost:2181")]
    server: String,
    /// Session timeout in milliseconds.
    #[arg(long, default_value_t = 30000)]
    timeout: u64,
    /// Accept a read-only server.
    #[arg(short = 'r', long = "readonly")]
    read_only: bool,
    /// Wait for the connection before running the command (the default).
    #[arg(long)]
    waitforconnection: bool,
    /// Apache's client properties file; accepted and ignored.
    #[arg(long = "client-configuration", value_name = "FILE")]
    client_configuration: Option<String>,
    /// Print get, stat, ls and getAcl results as JSON.
    #[arg(long)]
    json: bool,
    /// The command and its arguments (none: interactive shell).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Apache's single-dash long flags, rewritten for clap. Only words before
/// the command are looked at, so a command's own options are left alone.
fn normalise_flags(argv: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(argv.len());
    let mut iter = argv.into_iter();
    if let Some(program) = iter.next() {
        out.push(program);
    }
    let mut expects_value = false;
    for arg in iter.by_ref() {
        let text = arg.to_string_lossy().into_owned();
        if expects_value {
            expects_value = false;
            out.push(arg);
            continue;
        }
        match text.as_str() {
            "-server" | "-timeout" | "-client-configuration" => {
                out.push(OsString::from(format!("-{text}")));
                expects_value = true;
            }
            "-waitforconnection" | "-json" => out.push(OsString::from(format!("-{text}"))),
            "--server" | "--timeout" | "--client-configuration" => {
                out.push(arg);
                expects_value = true;
            }
            _ if text.starts_with('-') => out.push(arg),
            _ => {
                // The command: everything from here on is its own.
                out.push(OsString::from("--"));
                out.push(arg);
                break;
            }
        }
    }
    out.extend(iter);
    out
}

/// Runs zkCli with the process's arguments.
pub fn main() -> ExitCode {
    let argv = normalise_flags(std::env::args_os().collect());
    let flags = match Flags::try_parse_from(argv) {
        Ok(flags) => flags,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("zkCli: cannot start: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let options = ClientOptions {
        session_timeout: Duration::from_millis(flags.timeout),
        request_timeout: Duration::from_millis(flags.timeout.max(1000)),
        read_only: flags.read_only,
        ..ClientOptions::default()
    };
    let mut shell = Shell::new(runtime, flags.server.clone(), options, flags.json);
    if flags.command.is_empty() {
        let code = interactive::run(&mut shell);
        shell.shutdown();
        return ExitCode::from(code);
    }
    shell.print_events = false;
    let code = match shell.connect() {
        Ok(()) => match shell.execute(flags.command) {
            Ok(_) => 0,
            Err(e) => {
                err_line(&e.message);
                e.exit_code
            }
        },
        Err(e) => {
            err_line(&e.message);
            e.exit_code
        }
    };
    shell.shutdown();
    ExitCode::from(code)
}

/// Set once stdout is gone (a closed pipe): long listings stop early.
static STDOUT_BROKEN: AtomicBool = AtomicBool::new(false);

/// Writes one line to stdout; false once stdout is closed.
pub(crate) fn out_line(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    let ok = writeln!(stdout, "{text}")
        .and_then(|_| stdout.flush())
        .is_ok();
    if !ok {
        STDOUT_BROKEN.store(true, Ordering::Relaxed);
    }
    ok
}

/// Writes text to stdout as is.
pub(crate) fn out_text(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    let ok = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .is_ok();
    if !ok {
        STDOUT_BROKEN.store(true, Ordering::Relaxed);
    }
    ok
}

/// Writes text to stderr as is.
pub(crate) fn err_text(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes one line to stderr.
pub(crate) fn err_line(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

/// Where watch events and status lines go: straight to the terminal, or,
/// while the line editor owns it, through the editor so the prompt is
/// redrawn below them.
#[derive(Clone, Default)]
pub(crate) struct Notices {
    printer: Arc<Mutex<Option<Printer>>>,
}

/// Prints through the line editor.
type Printer = Box<dyn FnMut(String) + Send>;

impl Notices {
    fn set_printer(&self, printer: Printer) {
        if let Ok(mut slot) = self.printer.lock() {
            *slot = Some(printer);
        }
    }

    /// Prints a block of text that ends with a newline.
    fn print(&self, text: String) {
        if let Ok(mut slot) = self.printer.lock() {
            if let Some(printer) = slot.as_mut() {
                printer(text);
                return;
            }
        }
        out_text(&text);
    }

    /// Prints a status line on stderr (through the editor when it runs).
    fn status(&self, text: String) {
        if let Ok(mut slot) = self.printer.lock() {
            if let Some(printer) = slot.as_mut() {
                printer(format!("{text}\n"));
                return;
            }
        }
        err_line(&text);
    }
}

/// The shell's state: the session, the command history, the switches.
pub(crate) struct Shell {
    runtime: tokio::runtime::Runtime,
    /// The connect string as given, shown in the prompt.
    host: String,
    options: ClientOptions,
    client: Option<Client>,
    /// Whether watch events are printed (`printwatches`).
    print_watches: Arc<AtomicBool>,
    /// Whether to print events at all (not in one-shot mode).
    print_events: bool,
    /// `--json` given on the command line.
    json: bool,
    /// Commands by number, as `history` and `redo` see them.
    history: Vec<String>,
    notices: Notices,
    /// The session's events, when they are printed.
    events: Option<SharedEvents>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Shell {
    fn new(
        runtime: tokio::runtime::Runtime,
        host: String,
        options: ClientOptions,
        json: bool,
    ) -> Shell {
        Shell {
            runtime,
            host,
            options,
            client: None,
            print_watches: Arc::new(AtomicBool::new(true)),
            print_events: true,
            json,
            history: Vec::new(),
            notices: Notices::default(),
            events: None,
            background: Vec::new(),
        }
    }

    /// The prompt: `[zk: host:port(CONNECTED) 3] `.
    pub fn prompt(&self) -> String {
        let state = self
            .client
            .as_ref()
            .map_or("CLOSED", |c| c.state().apache_name());
        format!("[zk: {}({}) {}] ", self.host, state, self.history.len())
    }

    /// Starts a session with the current connect string; the previous one,
    /// if any, is closed.
    fn connect(&mut self) -> Result<(), CliError> {
        self.disconnect();
        let _guard = self.runtime.enter();
        let (client, events) = Client::start(&self.host, self.options.clone()).map_err(|e| {
            let mut error = CliError::new(e.to_string());
            error.exit_code = EXIT_USAGE;
            error
        })?;
        if self.print_events {
            let shared = SharedEvents {
                events: Arc::new(Mutex::new(events)),
                enabled: self.print_watches.clone(),
                notices: self.notices.clone(),
            };
            self.background
                .push(self.runtime.spawn(shared.clone().run()));
            self.events = Some(shared);
        }
        self.background.push(
            self.runtime
                .spawn(report_status(client.status_changes(), self.notices.clone())),
        );
        self.client = Some(client);
        Ok(())
    }

    fn disconnect(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.state().is_final() {
                let _ = self.runtime.block_on(client.close());
            }
        }
        // Let the last events (Closed) reach the terminal before the tasks
        // that print them stop.
        self.events = None;
        let tasks = std::mem::take(&mut self.background);
        self.runtime.block_on(async {
            for task in tasks {
                let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
            }
        });
    }

    fn shutdown(mut self) {
        self.disconnect();
        self.runtime.shutdown_timeout(Duration::from_millis(200));
    }

    /// Waits up to `limit` for the session; a failure shows in the prompt.
    fn wait_connected(&self, limit: Duration) {
        if let Some(client) = &self.client {
            let _ = self.runtime.block_on(client.wait_connected(limit));
        }
    }

    /// Prints the events that arrived while a command ran.
    pub fn flush_events(&self) {
        if let Some(events) = &self.events {
            events.flush();
        }
    }

    /// Runs one command given as words.
    pub fn execute(&mut self, words: Vec<String>) -> Result<Flow, CliError> {
        let line = commands::words_to_line(&words);
        commands::execute(self, words, line)
    }
}

/// What the shell does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Quit,
}

/// The session's events, shared by the task that prints them as they come
/// and the shell, which prints those already queued after each command so
/// that they appear before the next prompt (and before `printwatches off`
/// takes effect). Each is printed while the lock is held, so none is
/// printed out of order.
#[derive(Clone)]
struct SharedEvents {
    events: Arc<Mutex<Events>>,
    enabled: Arc<AtomicBool>,
    notices: Notices,
}

impl SharedEvents {
    fn print(&self, event: &crate::client::WatchedEvent) {
        if self.enabled.load(Ordering::Relaxed) {
            self.notices.print(format!("\nWATCHER::\n\n{event}\n"));
        }
    }

    /// Prints the events already queued.
    fn flush(&self) {
        if let Ok(mut events) = self.events.lock() {
            while let Some(event) = events.try_recv() {
                self.print(&event);
            }
        }
    }

    /// Prints events as they come until the session ends.
    async fn run(self) {
        loop {
            let more = std::future::poll_fn(|cx| {
                let Ok(mut events) = self.events.lock() else {
                    return std::task::Poll::Ready(false);
                };
                match events.poll_recv(cx) {
                    std::task::Poll::Ready(Some(event)) => {
                        self.print(&event);
                        std::task::Poll::Ready(true)
                    }
                    std::task::Poll::Ready(None) => std::task::Poll::Ready(false),
                    std::task::Poll::Pending => std::task::Poll::Pending,
                }
            })
            .await;
            if !more {
                return;
            }
        }
    }
}

/// Reports connection losses and recoveries on stderr, naming the servers,
/// so an operator sees what the client is doing.
async fn report_status(mut status: tokio::sync::watch::Receiver<Status>, notices: Notices) {
    let mut last = status.borrow_and_update().clone();
    while status.changed().await.is_ok() {
        let now = status.borrow_and_update().clone();
        match (last.state, now.state) {
            (
                SessionState::Connected | SessionState::ConnectedReadOnly,
                SessionState::Disconnected,
            ) => {
                notices.status(format!(
                    "zkCli: lost the connection to {} ({}); reconnecting through the server list",
                    now.server
                        .map_or_else(|| "the server".to_string(), |a| a.to_string()),
                    now.last_error.as_deref().unwrap_or("no reason given")
                ));
            }
            (
                SessionState::Disconnected,
                SessionState::Connected | SessionState::ConnectedReadOnly,
            ) => {
                notices.status(format!(
                    "zkCli: reconnected to {}, session 0x{:x} resumed",
                    now.server
                        .map_or_else(|| "a server".to_string(), |a| a.to_string()),
                    now.session_id
                ));
            }
            (_, SessionState::Expired) => {
                notices.status(format!(
                    "zkCli: session 0x{:x} expired; use `connect` for a new one",
                    now.session_id
                ));
            }
            (_, SessionState::AuthFailed) => {
                notices.status(
                    "zkCli: the server refused the credentials; the session is closed".to_string(),
                );
            }
            _ => {}
        }
        last = now;
    }
}

/// Whether standard input is a terminal (interactive editing) or a script.
fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        normalise_flags(words.iter().map(OsString::from).collect())
            .into_iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn apache_single_dash_flags() {
        assert_eq!(
            argv(&["zkCli", "-server", "h:1", "-timeout", "5", "-r", "ls", "-s", "/"]),
            [
                "zkCli",
                "--server",
                "h:1",
                "--timeout",
                "5",
                "-r",
                "--",
                "ls",
                "-s",
                "/"
            ]
        );
        let flags =
            Flags::try_parse_from(argv(&["zkCli", "-server", "h:1", "get", "-s", "/a"])).unwrap();
        assert_eq!(flags.server, "h:1");
        assert_eq!(flags.command, ["get", "-s", "/a"]);
        let flags = Flags::try_parse_from(argv(&["zkCli", "--json", "stat", "/a"])).unwrap();
        assert!(flags.json);
        assert_eq!(flags.command, ["stat", "/a"]);
    }
}
