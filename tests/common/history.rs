//! Histories of concurrent client operations and a checker for them.
//!
//! A history is every operation the clients issued: who issued it, when it was
//! invoked and when it completed (offsets from one `Instant`, so comparable
//! across clients), what it asked and what came back. An operation whose
//! outcome the client cannot know (connection loss, timeout, a moved or expired
//! session) is *indeterminate*: it may have taken effect at any moment after its
//! invocation, or never.
//!
//! Two kinds of keys are modelled, each key on its own (linearizability is
//! compositional, so the keys are checked separately):
//! - a *register*: a znode that always exists, written with `setData`
//!   (unconditional or compare-and-set on a version) and read with `getData`;
//!   its state is (value, version) and every written value is unique, so each
//!   read names the write it saw;
//! - a *set member*: a znode that is created and deleted; its state is present
//!   or absent.
//!
//! What is checked:
//! - writes and synced reads (a `sync` then a read on the same client, one
//!   operation from the sync's invocation to the read's completion) are
//!   linearizable: Wing & Gong's search with Lowe's memoisation of (operations
//!   linearized, model state), bounded by a node budget so that a pathological
//!   history gives up instead of hanging;
//! - plain reads are sequentially consistent per client: every (value,
//!   version) read was written by a write invoked before the read completed,
//!   one version never carries two values, and within one session the versions
//!   a client sees of a key (by reads and by its own writes) never go back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

/// One operation of one client.
#[derive(Clone, Debug)]
pub struct Op {
    /// The client (one sequential worker) that issued it.
    pub client: u32,
    /// Which of the client's sessions: a new session starts afresh, so the
    /// per-client checks apply per (client, session).
    pub session: u32,
    /// When it was invoked, from the history's origin.
    pub invoke: Duration,
    /// When its outcome arrived (for an indeterminate operation: when the
    /// client gave up on it; the checker treats that as never).
    pub complete: Duration,
    pub action: Action,
    pub outcome: Outcome,
}

/// What an operation asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `setData(key, value, expected.unwrap_or(-1))` on a register.
    Set {
        key: String,
        value: String,
        expected: Option<i32>,
    },
    /// `getData(key)` on a register; `synced`: preceded by `sync(key)` on the
    /// same client, the pair being one operation.
    Read { key: String, synced: bool },
    /// `create(key)` of a set member.
    Create { key: String },
    /// `delete(key, -1)` of a set member.
    Delete { key: String },
    /// `sync(key)` then `exists(key)` of a set member.
    Exists { key: String },
}

impl Action {
    pub fn key(&self) -> &str {
        match self {
            Action::Set { key, .. }
            | Action::Read { key, .. }
            | Action::Create { key }
            | Action::Delete { key }
            | Action::Exists { key } => key,
        }
    }

    fn is_register(&self) -> bool {
        matches!(self, Action::Set { .. } | Action::Read { .. })
    }
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A set succeeded; the znode's new version.
    Written {
        version: i32,
    },
    /// A compare-and-set found another version.
    BadVersion,
    /// A read's data and version.
    Value {
        value: String,
        version: i32,
    },
    Created,
    NodeExists,
    Deleted,
    NoNode,
    /// Whether `exists` found the znode.
    Present(bool),
    /// The outcome cannot be known; the text says why.
    Unknown(String),
    /// A definite answer no correct server gives to this operation (an error
    /// code the model has no place for); always a violation.
    Unexpected(String),
}

impl Outcome {
    pub fn is_unknown(&self) -> bool {
        matches!(self, Outcome::Unknown(_))
    }
}

/// Why a history was rejected.
#[derive(Clone, Debug)]
pub enum Violation {
    /// No order of the key's writes and synced reads fits the model.
    NotLinearizable { key: String, explanation: String },
    /// The search for an order spent its node budget without an answer.
    GaveUp { key: String, nodes: u64, ops: usize },
    /// A plain read, or one client's view of a key, contradicts the model.
    Inconsistent { key: String, explanation: String },
    /// The server gave an answer the model has no place for.
    Unexpected { op: usize, answer: String },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotLinearizable { key, explanation } => {
                write!(f, "{key}: not linearizable: {explanation}")
            }
            Violation::GaveUp { key, nodes, ops } => write!(
                f,
                "{key}: checker gave up after {nodes} search nodes on {ops} operations \
                 (neither proven linearizable nor refuted)"
            ),
            Violation::Inconsistent { key, explanation } => {
                write!(f, "{key}: not sequentially consistent: {explanation}")
            }
            Violation::Unexpected { op, answer } => {
                write!(f, "#{op}: the server answered {answer}")
            }
        }
    }
}

/// What a passing check looked at.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Per key: operations in the linearizability search, and nodes it visited.
    pub searched: BTreeMap<String, (usize, u64)>,
    pub plain_reads: usize,
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checked in {:.1} ms: {} plain reads;",
            self.elapsed.as_secs_f64() * 1e3,
            self.plain_reads
        )?;
        for (key, (ops, nodes)) in &self.searched {
            write!(f, " {key}: {ops} ops/{nodes} nodes;")?;
        }
        Ok(())
    }
}

/// Checks `ops` (indices in violations refer to positions in `ops`); the
/// linearizability search of each key may visit at most `node_budget` nodes.
pub fn check(ops: &[Op], node_budget: u64) -> Result<Summary, Vec<Violation>> {
    let started = Instant::now();
    let mut violations = Vec::new();
    let mut summary = Summary::default();
    for (index, op) in ops.iter().enumerate() {
        if let Outcome::Unexpected(answer) = &op.outcome {
            violations.push(Violation::Unexpected {
                op: index,
                answer: answer.clone(),
            });
        }
    }
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, op) in ops.iter().enumerate() {
        by_key.entry(op.action.key()).or_default().push(index);
    }
    for (key, indices) in by_key {
        let registers = indices.iter().filter(|i| ops[**i].action.is_register());
        let kinds = registers.count();
        assert!(
            kinds == 0 || kinds == indices.len(),
            "{key} is used both as a register and as a set member"
        );
        if kinds > 0 {
            let (plain, problems) = check_register_reads(ops, key, &indices);
            summary.plain_reads += plain;
            violations.extend(problems);
        }
        let searched: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|i| in_search(&ops[*i]))
            .collect();
        let (nodes, verdict) = if kinds > 0 {
            Search::<Register>::new(ops, &searched).run(node_budget)
        } else {
            Search::<Member>::new(ops, &searched).run(node_budget)
        };
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Refuted(explanation) => violations.push(Violation::NotLinearizable {
                key: key.to_owned(),
                explanation,
            }),
            Verdict::GaveUp => violations.push(Violation::GaveUp {
                key: key.to_owned(),
                nodes,
                ops: searched.len(),
            }),
        }
        summary
            .searched
            .insert(key.to_owned(), (searched.len(), nodes));
    }
    summary.elapsed = started.elapsed();
    if violations.is_empty() {
        Ok(summary)
    } else {
        Err(violations)
    }
}

/// Whether an operation takes part in the linearizability search: writes
/// (indeterminate ones too: they may explain what others saw) and synced reads
/// that completed. Plain reads promise less; a read that failed says nothing.
fn in_search(op: &Op) -> bool {
    if matches!(op.outcome, Outcome::Unexpected(_)) {
        return false;
    }
    match op.action {
        Action::Read { synced, .. } => synced && !op.outcome.is_unknown(),
        Action::Exists { .. } => !op.outcome.is_unknown(),
        Action::Set { .. } | Action::Create { .. } | Action::Delete { .. } => true,
    }
}

/// The register value every key starts with (the znode is created empty).
pub const INITIAL_VALUE: &str = "";

/// Plain-read and per-client checks of one register.
fn check_register_reads(ops: &[Op], key: &str, indices: &[usize]) -> (usize, Vec<Violation>) {
    let mut problems = Vec::new();
    let mut complain = |explanation: String| {
        problems.push(Violation::Inconsistent {
            key: key.to_owned(),
            explanation,
        })
    };
    // Which writes could have produced each value, and the version a completed
    // write gave it.
    let mut writes: HashMap<&str, (usize, Option<i32>)> = HashMap::new();
    for &i in indices {
        if let Action::Set { value, .. } = &ops[i].action {
            match ops[i].outcome {
                Outcome::Written { version } => {
                    writes.insert(value, (i, Some(version)));
                }
                Outcome::Unknown(_) => {
                    writes.insert(value, (i, None));
                }
                _ => {}
            }
        }
    }
    let mut plain = 0;
    let mut value_of_version: HashMap<i32, (&str, usize)> = HashMap::new();
    value_of_version.insert(0, (INITIAL_VALUE, usize::MAX));
    for &i in indices {
        let op = &ops[i];
        let (value, version) = match (&op.action, &op.outcome) {
            (Action::Read { synced, .. }, Outcome::Value { value, version }) => {
                plain += usize::from(!synced);
                (value.as_str(), *version)
            }
            (Action::Set { value, .. }, Outcome::Written { version }) => (value.as_str(), *version),
            _ => continue,
        };
        if let Some((other, by)) = value_of_version.insert(version, (value, i)) {
            if other != value {
                let by = if by == usize::MAX {
                    "the initial state".to_owned()
                } else {
                    format!("#{by}")
                };
                complain(format!(
                    "version {version} carries {value:?} in #{i} but {other:?} in {by}"
                ));
            }
        }
        if !matches!(op.action, Action::Read { .. }) || value == INITIAL_VALUE {
            if value == INITIAL_VALUE && version != 0 {
                complain(format!("#{i} read the initial value at version {version}"));
            }
            continue;
        }
        match writes.get(value) {
            None => complain(format!(
                "#{i} read {value:?}, which no write that may have taken effect wrote"
            )),
            Some((w, _)) if ops[*w].invoke > op.complete => complain(format!(
                "#{i} read {value:?} before #{w}, which wrote it, was invoked"
            )),
            Some((w, Some(written))) if *written != version => complain(format!(
                "#{i} read {value:?} at version {version}, but #{w} wrote it as version {written}"
            )),
            _ => {}
        }
    }
    // One client's view: its operations are sequential, so invocation order
    // is its program order.
    let mut sessions: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    for &i in indices {
        sessions
            .entry((ops[i].client, ops[i].session))
            .or_default()
            .push(i);
    }
    for ((client, session), mut mine) in sessions {
        mine.sort_by_key(|i| ops[*i].invoke);
        let mut seen: Option<(i32, usize)> = None;
        for i in mine {
            let (version, is_write) = match (&ops[i].action, &ops[i].outcome) {
                (Action::Read { .. }, Outcome::Value { version, .. }) => (*version, false),
                (Action::Set { .. }, Outcome::Written { version }) => (*version, true),
                _ => continue,
            };
            if let Some((before, by)) = seen {
                if version < before || (is_write && version == before) {
                    complain(format!(
                        "client {client} (session {session}) saw version {before} in #{by}, \
                         then version {version} in #{i}"
                    ));
                }
            }
            if seen.map_or(true, |(before, _)| version >= before) {
                seen = Some((version, i));
            }
        }
    }
    (plain, problems)
}

/// A sequential specification: a state and the operations' effect on it.
trait Model: Sized {
    type State: Clone + Eq + std::hash::Hash + fmt::Debug;
    fn new(ops: &[Op], searched: &[usize]) -> Self;
    fn initial(&self) -> Self::State;
    /// The state after `op` takes effect in `state`, or None if the model
    /// cannot produce `op`'s outcome there. An indeterminate operation's
    /// outcome is whatever the model gives (failing to apply it is the same as
    /// dropping it, which the search also allows).
    fn step(&self, state: &Self::State, op: &Op) -> Option<Self::State>;
    fn describe(&self, state: &Self::State) -> String;
    /// Indeterminate operations of one pool are interchangeable: the same
    /// precondition and the same effect, nothing later tells them apart, and
    /// each may be dropped. Of two members, the one invoked first can stand
    /// wherever the other could, so the search only ever places a pool's
    /// members in invocation order; without this, every subset of the pending
    /// indeterminate writes is a new search state.
    fn pool(&self, op: &Op) -> Option<i64>;
}

/// A register: (value, version). Values a synced read returned are interned;
/// every other value is [`UNSEEN`], since no operation of the search can tell
/// them apart.
struct Register {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

/// The value of a register whose value no synced read returned.
const UNSEEN: u32 = u32::MAX;

impl Register {
    fn id(&self, value: &str) -> u32 {
        self.ids.get(value).copied().unwrap_or(UNSEEN)
    }
}

impl Model for Register {
    type State = (u32, i32);

    fn new(ops: &[Op], searched: &[usize]) -> Self {
        let mut register = Register {
            ids: HashMap::new(),
            names: Vec::new(),
        };
        let mut intern = |value: &str| {
            if !register.ids.contains_key(value) {
                register
                    .ids
                    .insert(value.to_owned(), register.names.len() as u32);
                register.names.push(value.to_owned());
            }
        };
        intern(INITIAL_VALUE);
        for &i in searched {
            if let Outcome::Value { value, .. } = &ops[i].outcome {
                intern(value);
            }
        }
        register
    }

    fn initial(&self) -> Self::State {
        (0, 0)
    }

    fn step(&self, &(current, version): &Self::State, op: &Op) -> Option<Self::State> {
        match (&op.action, &op.outcome) {
            (
                Action::Read { .. },
                Outcome::Value {
                    value,
                    version: read,
                },
            ) => (self.id(value) == current && *read == version).then_some((current, version)),
            (Action::Set { expected, .. }, Outcome::BadVersion) => {
                (expected.is_some_and(|e| e != version)).then_some((current, version))
            }
            (
                Action::Set {
                    value, expected, ..
                },
                outcome,
            ) => {
                let applies = expected.map_or(true, |e| e == version);
                let fits = match outcome {
                    Outcome::Written { version: written } => *written == version + 1,
                    Outcome::Unknown(_) => true,
                    _ => false,
                };
                (applies && fits).then(|| (self.id(value), version + 1))
            }
            _ => None,
        }
    }

    fn describe(&self, &(value, version): &Self::State) -> String {
        match self.names.get(value as usize) {
            Some(name) => format!("value {name:?} at version {version}"),
            None => format!("a value no synced read returned, at version {version}"),
        }
    }

    fn pool(&self, op: &Op) -> Option<i64> {
        match (&op.action, &op.outcome) {
            (
                Action::Set {
                    value, expected, ..
                },
                Outcome::Unknown(_),
            ) if self.id(value) == UNSEEN => Some(expected.map_or(i64::MIN, i64::from)),
            _ => None,
        }
    }
}

/// A set member: present or absent; starts absent.
struct Member;

impl Model for Member {
    type State = bool;

    fn new(_: &[Op], _: &[usize]) -> Self {
        Member
    }

    fn initial(&self) -> bool {
        false
    }

    fn step(&self, &present: &bool, op: &Op) -> Option<bool> {
        let unknown = op.outcome.is_unknown();
        match (&op.action, &op.outcome) {
            (Action::Create { .. }, Outcome::Created) => (!present).then_some(true),
            (Action::Create { .. }, Outcome::NodeExists) => present.then_some(true),
            (Action::Create { .. }, _) if unknown => (!present).then_some(true),
            (Action::Delete { .. }, Outcome::Deleted) => present.then_some(false),
            (Action::Delete { .. }, Outcome::NoNode) => (!present).then_some(false),
            (Action::Delete { .. }, _) if unknown => present.then_some(false),
            (Action::Exists { .. }, Outcome::Present(found)) => {
                (*found == present).then_some(present)
            }
            _ => None,
        }
    }

    fn describe(&self, present: &bool) -> String {
        if *present { "present" } else { "absent" }.to_owned()
    }

    fn pool(&self, op: &Op) -> Option<i64> {
        match (&op.action, &op.outcome) {
            (Action::Create { .. }, Outcome::Unknown(_)) => Some(0),
            (Action::Delete { .. }, Outcome::Unknown(_)) => Some(1),
            _ => None,
        }
    }
}

enum Verdict {
    Linearizable,
    Refuted(String),
    GaveUp,
}

/// One event of the search's list: an operation's call or its return.
/// Indeterminate operations have no return: nothing forces them in.
#[derive(Clone, Copy)]
struct Event {
    op: usize,
    call: bool,
}

/// Wing & Gong's search with Lowe's memoisation, over one key's operations.
struct Search<'a, M: Model> {
    ops: &'a [Op],
    /// The operations searched, as indices into `ops`; the search's own
    /// numbering (and the bit set's) is the position in this list.
    searched: Vec<usize>,
    model: M,
    events: Vec<Event>,
    /// A doubly linked list over `events`; slot `events.len()` is the head.
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each searched operation, the positions of its call and return.
    call_at: Vec<usize>,
    return_at: Vec<Option<usize>>,
    /// For each searched operation in a pool: the pool's number and the
    /// operation's rank in it (by invocation); per pool, how many are placed.
    pooled: Vec<Option<(usize, usize)>>,
    placed_in_pool: Vec<usize>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(ops: &'a [Op], searched: &[usize]) -> Self {
        let model = M::new(ops, searched);
        let mut events = Vec::new();
        for (local, &i) in searched.iter().enumerate() {
            events.push(Event {
                op: local,
                call: true,
            });
            if !ops[i].outcome.is_unknown() {
                events.push(Event {
                    op: local,
                    call: false,
                });
            }
        }
        // Calls sort before returns at the same instant: operations that
        // touch are taken as concurrent, the lenient reading.
        let time = |e: &Event| {
            let op = &ops[searched[e.op]];
            (if e.call { op.invoke } else { op.complete }, !e.call)
        };
        events.sort_by_key(time);
        let n = events.len();
        let head = n;
        let next = (0..=n).map(|i| if i == head { 0 } else { i + 1 }).collect();
        let prev = (0..=n).map(|i| if i == 0 { head } else { i - 1 }).collect();
        let mut call_at = vec![0; searched.len()];
        let mut return_at = vec![None; searched.len()];
        for (position, event) in events.iter().enumerate() {
            if event.call {
                call_at[event.op] = position;
            } else {
                return_at[event.op] = Some(position);
            }
        }
        let mut pools: HashMap<i64, usize> = HashMap::new();
        let mut pooled = vec![None; searched.len()];
        let mut placed_in_pool = Vec::new();
        for event in events.iter().filter(|e| e.call) {
            if let Some(key) = model.pool(&ops[searched[event.op]]) {
                let pool = *pools.entry(key).or_insert_with(|| {
                    placed_in_pool.push(0);
                    placed_in_pool.len() - 1
                });
                // Counts members so far, giving each its rank.
                pooled[event.op] = Some((pool, placed_in_pool[pool]));
                placed_in_pool[pool] += 1;
            }
        }
        placed_in_pool.iter_mut().for_each(|n| *n = 0);
        Search {
            ops,
            searched: searched.to_vec(),
            model,
            events,
            next,
            prev,
            call_at,
            return_at,
            pooled,
            placed_in_pool,
        }
    }

    fn head(&self) -> usize {
        self.events.len()
    }

    fn unlink(&mut self, at: usize) {
        let (p, n) = (self.prev[at], self.next[at]);
        self.next[p] = n;
        if n != self.head() {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, at: usize) {
        let (p, n) = (self.prev[at], self.next[at]);
        self.next[p] = at;
        if n != self.head() {
            self.prev[n] = at;
        }
    }

    /// Whether `op` may be placed now: a pool's members go in rank order.
    fn its_turn(&self, op: usize) -> bool {
        self.pooled[op].map_or(true, |(pool, rank)| self.placed_in_pool[pool] == rank)
    }

    fn lift(&mut self, op: usize) {
        if let Some((pool, _)) = self.pooled[op] {
            self.placed_in_pool[pool] += 1;
        }
        self.unlink(self.call_at[op]);
        if let Some(r) = self.return_at[op] {
            self.unlink(r);
        }
    }

    /// Undoes `lift(op)`; lifts are undone in reverse order, so each event's
    /// neighbours are the ones it had when it was unlinked.
    fn unlift(&mut self, op: usize) {
        if let Some((pool, _)) = self.pooled[op] {
            self.placed_in_pool[pool] -= 1;
        }
        if let Some(r) = self.return_at[op] {
            self.relink(r);
        }
        self.relink(self.call_at[op]);
    }

    /// Returns the nodes visited and the verdict.
    fn run(mut self, node_budget: u64) -> (u64, Verdict) {
        let head = self.head();
        let end = head;
        let words = self.searched.len().div_ceil(64).max(1);
        let mut linearized = vec![0u64; words];
        let mut seen: HashSet<(Vec<u64>, M::State)> = HashSet::new();
        let mut state = self.model.initial();
        // Each entry: the operation linearized and the state before it.
        let mut stack: Vec<(usize, M::State)> = Vec::new();
        let mut pending = self.return_at.iter().filter(|r| r.is_some()).count();
        let mut nodes = 0u64;
        // The deepest point reached, for the explanation of a refusal.
        let mut deepest: (usize, M::State, Vec<usize>) = (0, state.clone(), Vec::new());
        let mut cursor = self.next[head];
        while pending > 0 {
            nodes += 1;
            if nodes > node_budget {
                return (nodes, Verdict::GaveUp);
            }
            if cursor == end {
                // Only indeterminate calls were left before the end; nothing
                // forces them, yet returns remain: cannot happen, as returns
                // follow their calls. Treat as a dead end all the same.
                break;
            }
            let event = self.events[cursor];
            if event.call {
                let op = &self.ops[self.searched[event.op]];
                let step = if self.its_turn(event.op) {
                    self.model.step(&state, op)
                } else {
                    None
                };
                if let Some(after) = step {
                    let mut with = linearized.clone();
                    with[event.op / 64] |= 1 << (event.op % 64);
                    if seen.insert((with.clone(), after.clone())) {
                        stack.push((event.op, state));
                        state = after;
                        linearized = with;
                        if self.return_at[event.op].is_some() {
                            pending -= 1;
                        }
                        self.lift(event.op);
                        cursor = self.next[head];
                        continue;
                    }
                }
                cursor = self.next[cursor];
            } else {
                // A return: the operation it closes must already have been
                // placed. Back up.
                if stack.len() >= deepest.0 {
                    deepest = (stack.len(), state.clone(), self.minimal_calls());
                }
                let Some((op, before)) = stack.pop() else {
                    return (nodes, Verdict::Refuted(self.explain(deepest)));
                };
                self.unlift(op);
                linearized[op / 64] &= !(1 << (op % 64));
                if self.return_at[op].is_some() {
                    pending += 1;
                }
                state = before;
                cursor = self.next[self.call_at[op]];
            }
        }
        if pending == 0 {
            (nodes, Verdict::Linearizable)
        } else {
            (nodes, Verdict::Refuted(self.explain(deepest)))
        }
    }

    /// The determinate operations that could be placed next: those called
    /// before the first return still in the list (its own operation among
    /// them). Indeterminate ones are left out: they may always wait.
    fn minimal_calls(&self) -> Vec<usize> {
        let mut found = Vec::new();
        let mut at = self.next[self.head()];
        while at != self.head() {
            let event = self.events[at];
            if !event.call {
                break;
            }
            if self.return_at[event.op].is_some() {
                found.push(event.op);
            }
            at = self.next[at];
        }
        found
    }

    fn explain(&self, (depth, state, candidates): (usize, M::State, Vec<usize>)) -> String {
        let mut text = format!(
            "at best {depth} of {} operations could be ordered; the state was then {}, \
             and none of these could go next:",
            self.searched.len(),
            self.model.describe(&state)
        );
        for local in candidates {
            let i = self.searched[local];
            let _ = write!(text, "\n    {}", render_op(i, &self.ops[i]));
        }
        text
    }
}

/// One line for one operation.
pub fn render_op(index: usize, op: &Op) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let action = match &op.action {
        Action::Set {
            key,
            value,
            expected: None,
        } => format!("set {key} = {value:?}"),
        Action::Set {
            key,
            value,
            expected: Some(v),
        } => format!("cas {key} = {value:?} if version {v}"),
        Action::Read { key, synced: true } => format!("sync+read {key}"),
        Action::Read { key, synced: false } => format!("read {key}"),
        Action::Create { key } => format!("create {key}"),
        Action::Delete { key } => format!("delete {key}"),
        Action::Exists { key } => format!("sync+exists {key}"),
    };
    let outcome = match &op.outcome {
        Outcome::Written { version } => format!("ok, version {version}"),
        Outcome::BadVersion => "BadVersion".to_owned(),
        Outcome::Value { value, version } => format!("{value:?} at version {version}"),
        Outcome::Created => "created".to_owned(),
        Outcome::NodeExists => "NodeExists".to_owned(),
        Outcome::Deleted => "deleted".to_owned(),
        Outcome::NoNode => "NoNode".to_owned(),
        Outcome::Present(found) => if *found { "present" } else { "absent" }.to_owned(),
        Outcome::Unknown(why) => format!("UNKNOWN ({why})"),
        Outcome::Unexpected(answer) => format!("UNEXPECTED {answer}"),
    };
    format!(
        "#{index:<5} c{}.s{} {:>10.3} {:>10.3}  {action} -> {outcome}",
        op.client,
        op.session,
        ms(op.invoke),
        ms(op.complete),
    )
}

/// The whole history as text, one operation a line, in invocation order.
pub fn render(ops: &[Op]) -> String {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|i| ops[*i].invoke);
    let mut text = String::from("#op    client     invoke_ms complete_ms  action -> outcome\n");
    for i in order {
        text.push_str(&render_op(i, &ops[i]));
        text.push('\n');
    }
    text
}
