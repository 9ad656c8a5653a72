//! The interactive shell: a line editor (rustyline) with history kept across
//! runs and completion of commands and znode paths when standard input is a
//! terminal; plain line reading, without a prompt, when it is a script (as
//! Apache's zkCli does without JLine).

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter, Helper};

use super::commands::COMMANDS;
use super::{err_line, out_line, stdin_is_terminal, Flow, Shell};
use crate::client::Client;

/// How long completion may wait for the server before giving up quietly.
const COMPLETION_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the first prompt waits for the session.
const FIRST_PROMPT_WAIT: Duration = Duration::from_secs(2);
/// Lines of history kept on disk.
const HISTORY_SIZE: usize = 1000;

/// Runs the shell until `quit` or end of input; returns the exit status of
/// the last command, as Apache's zkCli does.
pub fn run(shell: &mut Shell) -> u8 {
    out_line(&format!("Connecting to {}", shell.host));
    if let Err(e) = shell.connect() {
        err_line(&e.message);
        return e.exit_code;
    }
    out_line("Welcome to ZooKeeper!");
    if stdin_is_terminal() {
        // A first prompt that already says CONNECTED, unless the servers
        // are slow to answer.
        shell.wait_connected(FIRST_PROMPT_WAIT);
        match run_editor(shell) {
            Ok(code) => code,
            Err(e) => {
                err_line(&format!(
                    "zkCli: the line editor failed ({e}); reading lines plainly"
                ));
                run_script(shell)
            }
        }
    } else {
        run_script(shell)
    }
}

/// Runs one line; returns whether to go on and the status to exit with.
fn run_line(shell: &mut Shell, line: &str) -> (Flow, u8) {
    let words = super::split_line(line);
    if words.is_empty() {
        return (Flow::Continue, 0);
    }
    let outcome = super::commands::execute(shell, words, line.trim().to_string());
    shell.flush_events();
    match outcome {
        Ok(flow) => (flow, 0),
        Err(e) => {
            err_line(&e.message);
            (Flow::Continue, e.exit_code)
        }
    }
}

fn run_script(shell: &mut Shell) -> u8 {
    let mut status = 0;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (flow, code) = run_line(shell, &line);
        // Like Apache's, `quit` exits with the status of the command
        // before it.
        if flow == Flow::Quit {
            break;
        }
        if !line.trim().is_empty() {
            status = code;
        }
    }
    status
}

/// Where history is kept: `$ZKCLI_HISTORY`, else
/// `$XDG_STATE_HOME/zkcli_history`, else `~/.zkcli_history`.
pub fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ZKCLI_HISTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(dir).join("zkcli_history"));
    }
    std::env::var_os("HOME")
        .filter(|p| !p.is_empty())
        .map(|home| PathBuf::from(home).join(".zkcli_history"))
}

fn run_editor(shell: &mut Shell) -> rustyline::Result<u8> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_SIZE)?
        .history_ignore_space(true)
        .auto_add_history(false)
        .build();
    let current = Arc::new(Mutex::new(shell.client.clone()));
    let helper = ZnodeHelper {
        client: current.clone(),
        runtime: shell.runtime.handle().clone(),
    };
    let mut editor: Editor<ZnodeHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(helper));
    let history = history_path();
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // A missing file is a first run.
        let _ = editor.load_history(path);
    }
    let mut printer = editor.create_external_printer()?;
    shell.notices.set_printer(Box::new(move |text: String| {
        let _ = printer.print(text);
    }));
    let mut status = 0;
    loop {
        let prompt = shell.prompt();
        match editor.readline(&prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(path) = &history {
                        // Appending after each line keeps history when the
                        // shell is killed.
                        let _ = editor.append_history(path);
                        restrict_to_owner(path);
                    }
                }
                let (flow, code) = run_line(shell, &line);
                if flow == Flow::Quit {
                    break;
                }
                if !line.trim().is_empty() {
                    status = code;
                }
                if let Ok(mut slot) = current.lock() {
                    *slot = shell.client.clone();
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(status)
}

/// History holds `addauth` lines, credentials included: only the owner
/// may read it.
fn restrict_to_owner(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// Completes command names in the first word and znode paths in words
/// that start with `/`, asking the server for the children.
struct ZnodeHelper {
    client: Arc<Mutex<Option<Client>>>,
    runtime: tokio::runtime::Handle,
}

impl ZnodeHelper {
    fn children(&self, dir: &str) -> Vec<String> {
        let client = match self.client.lock() {
            Ok(slot) => slot.clone(),
            Err(_) => None,
        };
        let Some(client) = client else {
            return Vec::new();
        };
        self.runtime.block_on(async {
            match tokio::time::timeout(COMPLETION_TIMEOUT, client.get_children(dir, false)).await {
                Ok(Ok(mut children)) => {
                    children.sort();
                    children
                }
                _ => Vec::new(),
            }
        })
    }
}

impl Completer for ZnodeHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.rfind(char::is_whitespace).map_or(0, |at| {
            at + before[at..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &before[start..];
        let pair = |s: String| Pair {
            display: s.clone(),
            replacement: s,
        };
        if word.starts_with('/') {
            let cut = word.rfind('/').unwrap_or(0);
            let (dir, prefix) = (&word[..cut.max(1)], &word[cut + 1..]);
            let candidates = self
                .children(dir)
                .into_iter()
                .filter(|child| child.starts_with(prefix))
                .map(|child| {
                    if dir == "/" {
                        pair(format!("/{child}"))
                    } else {
                        pair(format!("{dir}/{child}"))
                    }
                })
                .collect();
            return Ok((start, candidates));
        }
        if before[..start].trim().is_empty() {
            let candidates = COMMANDS
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| name.starts_with(word))
                .map(|name| pair(name.to_string()))
                .collect();
            return Ok((start, candidates));
        }
        Ok((start, Vec::new()))
    }
}

impl Hinter for ZnodeHelper {
    type Hint = String;
}

impl Highlighter for ZnodeHelper {}

impl Validator for ZnodeHelper {}

impl Helper for ZnodeHelper {}
