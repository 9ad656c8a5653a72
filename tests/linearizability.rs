//! Linearizability of the ensemble under crashes, checked on recorded histories.
//!
//! Clients run concurrent writes and reads against a few znodes of a real
//! three-member ensemble while members are killed and restarted; every
//! operation is recorded (tests/common/history.rs) and the history is checked:
//! writes and synced reads must be linearizable, plain reads sequentially
//! consistent per client. The unit tests below prove that the checker rejects
//! what it must.
//!
//! Environment: `ZKRS_LIN_SEED` replays a run's random choices (the seed is
//! printed); `ZKRS_LIN_HISTORY` keeps the history file of a passing run too (a
//! failing run always keeps it, under target/tmp).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::ensemble::{open, runtime, Ensemble};
use common::history::{self, Action, Op, Outcome, Violation};
use common::try_connect;
use zookeeper_client as zk;

/// Search nodes one key's linearizability check may visit before giving up.
const NODE_BUDGET: u64 = 2_000_000;

// ---------------------------------------------------------------------------
// The checker against hand-made histories.
// ---------------------------------------------------------------------------

fn op(client: u32, invoke_ms: u64, complete_ms: u64, action: Action, outcome: Outcome) -> Op {
    Op {
        client,
        session: 0,
        invoke: Duration::from_millis(invoke_ms),
        complete: Duration::from_millis(complete_ms),
        action,
        outcome,
    }
}

fn set(key: &str, value: &str) -> Action {
    Action::Set {
        key: key.into(),
        value: value.into(),
        expected: None,
    }
}

fn cas(key: &str, value: &str, expected: i32) -> Action {
    Action::Set {
        key: key.into(),
        value: value.into(),
        expected: Some(expected),
    }
}

fn read(key: &str) -> Action {
    Action::Read {
        key: key.into(),
        synced: false,
    }
}

fn synced_read(key: &str) -> Action {
    Action::Read {
        key: key.into(),
        synced: true,
    }
}

fn written(version: i32) -> Outcome {
    Outcome::Written { version }
}

fn value(value: &str, version: i32) -> Outcome {
    Outcome::Value {
        value: value.into(),
        version,
    }
}

fn unknown() -> Outcome {
    Outcome::Unknown("connection loss".into())
}

fn rejected(ops: &[Op]) -> Vec<Violation> {
    match history::check(ops, NODE_BUDGET) {
        Ok(summary) => panic!("accepted ({summary}):\n{}", history::render(ops)),
        Err(violations) => violations,
    }
}

fn accepted(ops: &[Op]) {
    if let Err(violations) = history::check(ops, NODE_BUDGET) {
        let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
        panic!("rejected:\n{}\n{}", text.join("\n"), history::render(ops));
    }
}

#[test]
fn a_linearizable_history_with_overlaps_and_indeterminate_writes_is_accepted() {
    let r = "/r";
    let s = "/s";
    let ops = vec![
        op(1, 0, 10, set(r, "a"), written(1)),
        // Overlaps the write and sees the state before it.
        op(2, 5, 15, synced_read(r), value("", 0)),
        // Indeterminate, and the next synced read shows it took effect.
        op(3, 12, 20, set(r, "b"), unknown()),
        op(2, 30, 40, synced_read(r), value("b", 2)),
        op(1, 45, 50, cas(r, "c", 2), written(3)),
        op(3, 46, 52, cas(r, "x", 2), Outcome::BadVersion),
        // Plain reads may lag behind, as long as each client moves forward.
        op(4, 55, 60, read(r), value("b", 2)),
        op(4, 61, 62, read(r), value("c", 3)),
        // Indeterminate, and it never took effect.
        op(3, 60, 70, set(r, "d"), unknown()),
        op(1, 80, 90, synced_read(r), value("c", 3)),
        // Two overlapping creates: one wins.
        op(
            1,
            100,
            120,
            Action::Create { key: s.into() },
            Outcome::NodeExists,
        ),
        op(
            2,
            101,
            110,
            Action::Create { key: s.into() },
            Outcome::Created,
        ),
        op(
            3,
            105,
            130,
            Action::Exists { key: s.into() },
            Outcome::Present(true),
        ),
        op(4, 140, 150, Action::Delete { key: s.into() }, unknown()),
        op(
            1,
            160,
            170,
            Action::Exists { key: s.into() },
            Outcome::Present(false),
        ),
        op(
            2,
            171,
            175,
            Action::Delete { key: s.into() },
            Outcome::NoNode,
        ),
    ];
    accepted(&ops);
}

#[test]
fn a_stale_synced_read_after_a_completed_write_is_rejected() {
    let ops = vec![
        op(1, 0, 10, set("/r", "a"), written(1)),
        op(2, 20, 30, synced_read("/r"), value("", 0)),
    ];
    let violations = rejected(&ops);
    println!("{}", violations[0]);
    assert!(
        violations
            .iter()
            .any(|v| matches!(v, Violation::NotLinearizable { key, .. } if key == "/r")),
        "{violations:?}"
    );
    // The same read without the sync promises less: another client may lag.
    let mut plain = ops.clone();
    plain[1].action = read("/r");
    accepted(&plain);
}

#[test]
fn a_lost_acknowledged_write_is_rejected() {
    // The server acknowledged "a" as version 1, yet later hands out version 1
    // again: "a" was lost.
    let ops = vec![
        op(1, 0, 10, set("/r", "a"), written(1)),
        op(2, 5, 30, set("/r", "b"), unknown()),
        op(3, 40, 50, synced_read("/r"), value("b", 1)),
    ];
    let violations = rejected(&ops);
    assert!(
        violations
            .iter()
            .any(|v| matches!(v, Violation::NotLinearizable { .. })),
        "{violations:?}"
    );
    assert!(
        violations
            .iter()
            .any(|v| matches!(v, Violation::Inconsistent { .. })),
        "{violations:?}"
    );
    // An acknowledged create that a later synced exists does not see.
    let ops = vec![
        op(
            1,
            0,
            10,
            Action::Create { key: "/s".into() },
            Outcome::Created,
        ),
        op(
            2,
            20,
            30,
            Action::Exists { key: "/s".into() },
            Outcome::Present(false),
        ),
    ];
    let violations = rejected(&ops);
    assert!(
        matches!(&violations[..], [Violation::NotLinearizable { key, .. }] if key == "/s"),
        "{violations:?}"
    );
}

#[test]
fn a_version_going_backwards_for_one_client_is_rejected() {
    let ops = vec![
        op(1, 0, 10, set("/r", "a"), written(1)),
        op(2, 20, 25, read("/r"), value("a", 1)),
        op(2, 30, 35, read("/r"), value("", 0)),
    ];
    let violations = rejected(&ops);
    assert!(
        matches!(&violations[..], [Violation::Inconsistent { explanation, .. }]
            if explanation.contains("client 2")),
        "{violations:?}"
    );
    // Two clients may see the versions in either order...
    let mut two_clients = ops.clone();
    two_clients[2].client = 3;
    accepted(&two_clients);
    // ...and so may two sessions of one client.
    let mut two_sessions = ops.clone();
    two_sessions[2].session = 1;
    accepted(&two_sessions);
    // A client's own write counts as seeing its version.
    let own = vec![
        op(1, 0, 10, set("/r", "a"), written(1)),
        op(1, 20, 25, read("/r"), value("", 0)),
    ];
    rejected(&own);
}

#[test]
fn reads_of_values_nobody_wrote_or_not_yet_written_are_rejected() {
    let invented = vec![
        op(1, 0, 10, set("/r", "a"), written(1)),
        op(2, 20, 25, read("/r"), value("z", 1)),
    ];
    rejected(&invented);
    let from_the_future = vec![
        op(2, 0, 5, read("/r"), value("a", 1)),
        op(1, 10, 20, set("/r", "a"), written(1)),
    ];
    rejected(&from_the_future);
    let wrong_version = vec![
        op(1, 0, 10, set("/r", "a"), written(1)),
        op(2, 20, 25, read("/r"), value("a", 2)),
    ];
    rejected(&wrong_version);
}

#[test]
fn an_unexpected_answer_is_a_violation() {
    let ops = vec![op(
        1,
        0,
        10,
        set("/r", "a"),
        Outcome::Unexpected("NoNode".into()),
    )];
    let violations = rejected(&ops);
    assert!(
        matches!(&violations[..], [Violation::Unexpected { op: 0, .. }]),
        "{violations:?}"
    );
}

#[test]
fn the_checker_gives_up_when_its_budget_runs_out() {
    let ops = random_linearizable_history(7, 200);
    match history::check(&ops, 10) {
        Err(violations) => {
            let gave_up = violations
                .iter()
                .find(|v| matches!(v, Violation::GaveUp { .. }));
            let message = gave_up.expect("a GaveUp").to_string();
            assert!(message.contains("checker gave up"), "{message}");
        }
        Ok(summary) => panic!("a budget of 10 nodes sufficed: {summary}"),
    }
}

#[test]
fn long_concurrent_histories_check_within_the_budget() {
    for seed in 1..=3 {
        let ops = random_linearizable_history(seed, 600);
        let started = Instant::now();
        match history::check(&ops, NODE_BUDGET) {
            Ok(summary) => println!(
                "seed {seed}: {} ops, {summary}, wall {:?}",
                ops.len(),
                started.elapsed()
            ),
            Err(violations) => {
                let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
                panic!("seed {seed}: {}", text.join("\n"));
            }
        }
    }
}

#[test]
fn a_corrupted_long_history_is_rejected() {
    let mut ops = random_linearizable_history(11, 400);
    // Make one acknowledged write's version collide with an earlier one's.
    let writes: Vec<usize> = (0..ops.len())
        .filter(|i| matches!(ops[*i].outcome, Outcome::Written { version } if version > 5))
        .collect();
    let victim = writes[writes.len() / 2];
    if let Outcome::Written { version } = &mut ops[victim].outcome {
        *version -= 3;
    }
    for violation in rejected(&ops) {
        println!("{violation}");
    }
}

/// xorshift64*: reproducible randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// A history of `count` operations by eight clients on one register, made
/// linearizable by construction: each operation takes effect at a random
/// instant inside its interval. A tenth of the writes are indeterminate, half
/// of those never taking effect.
fn random_linearizable_history(seed: u64, count: usize) -> Vec<Op> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let clients = 8;
    let mut free_at = vec![0u64; clients];
    // (linearization point, op index, applies)
    let mut planned = Vec::new();
    let mut ops = Vec::new();
    for n in 0..count {
        let client = rng.below(clients as u64) as usize;
        let invoke = free_at[client] + rng.below(20);
        let complete = invoke + 1 + rng.below(60);
        free_at[client] = complete + 1;
        let point = invoke * 1000 + rng.below((complete - invoke) * 1000);
        let action = match rng.below(10) {
            0..=3 => set("/r", &format!("v{n}")),
            4..=5 => cas("/r", &format!("v{n}"), 0),
            6..=7 => synced_read("/r"),
            _ => read("/r"),
        };
        let indeterminate = matches!(action, Action::Set { .. }) && rng.below(10) == 0;
        let applies = !indeterminate || rng.below(2) == 0;
        planned.push((point, ops.len(), applies, indeterminate));
        ops.push(op(client as u32, invoke, complete, action, unknown()));
    }
    planned.sort();
    let (mut current, mut version) = (String::new(), 0);
    let mut last_read: HashMap<u32, i32> = HashMap::new();
    for (_, i, applies, indeterminate) in planned {
        let client = ops[i].client;
        let outcome = match &mut ops[i].action {
            Action::Set {
                value, expected, ..
            } => {
                if let Some(expected) = expected {
                    // Aim at the version this client last saw, so some succeed.
                    *expected = last_read.get(&client).copied().unwrap_or(0);
                }
                if !applies {
                    unknown()
                } else if expected.is_some_and(|e| e != version) {
                    if indeterminate {
                        unknown()
                    } else {
                        Outcome::BadVersion
                    }
                } else {
                    current = value.clone();
                    version += 1;
                    if indeterminate {
                        unknown()
                    } else {
                        written(version)
                    }
                }
            }
            Action::Read { .. } => value(&current, version),
            _ => unreachable!(),
        };
        if let Outcome::Value { version, .. } | Outcome::Written { version } = outcome {
            last_read.insert(client, version);
        }
        ops[i].outcome = outcome;
    }
    ops
}

// ---------------------------------------------------------------------------
// The ensemble under crashes.
// ---------------------------------------------------------------------------

const REGISTERS: [&str; 4] = ["/lin/r0", "/lin/r1", "/lin/r2", "/lin/r3"];
const SET_MEMBERS: [&str; 2] = ["/lin/s0", "/lin/s1"];
/// Concurrent clients; the last `ROAMING` list every member and move on failure.
const CLIENTS: u32 = 8;
const ROAMING: u32 = 3;
/// How long clients issue operations, and how many each may issue.
const WORKLOAD: Duration = Duration::from_secs(22);
const OPS_PER_CLIENT: usize = 220;
/// An operation unanswered this long is indeterminate.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// The faults, in order, as long as the workload lasts.
const FAULTS: [(Target, Signal); 7] = [
    (Target::Leader, Signal::Kill),
    (Target::Follower, Signal::Kill),
    (Target::Leader, Signal::Term),
    (Target::Follower, Signal::Kill),
    (Target::Leader, Signal::Kill),
    (Target::Leader, Signal::Term),
    (Target::Follower, Signal::Kill),
];

#[derive(Clone, Copy, Debug)]
enum Target {
    Leader,
    Follower,
}

#[derive(Clone, Copy, Debug)]
enum Signal {
    Kill,
    Term,
}

#[test]
fn writes_and_synced_reads_stay_linearizable_while_members_crash() {
    let seed = std::env::var("ZKRS_LIN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("seed {seed} (rerun with ZKRS_LIN_SEED={seed})");
    let mut ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(Duration::from_secs(30));
    let everyone: Vec<String> = (0..3).map(|i| ensemble.connect_string(i)).collect();
    let rt = runtime();
    rt.block_on(async {
        let c = common::ensemble::client(&everyone.join(",")).await;
        c.create("/lin", b"", &open()).await.unwrap();
        for key in REGISTERS {
            c.create(key, history::INITIAL_VALUE.as_bytes(), &open())
                .await
                .unwrap();
        }
        // Every member has the keys before the clients start.
        c.sync("/lin").await.unwrap();
    });

    let origin = Instant::now();
    let deadline = origin + WORKLOAD;
    let (mut ops, faults) = std::thread::scope(|scope| {
        let ensemble = &mut ensemble;
        let nemesis = scope.spawn(move || nemesis(ensemble, origin, deadline));
        let ops = rt.block_on(async {
            let mut workers = Vec::new();
            for id in 0..CLIENTS {
                let connect = if id >= CLIENTS - ROAMING {
                    // Start each roaming client on a different member.
                    let mut all = everyone.clone();
                    all.rotate_left(id as usize % 3);
                    all.join(",")
                } else {
                    everyone[id as usize % 3].clone()
                };
                let seed = seed ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                workers.push(tokio::spawn(client_loop(
                    id, connect, origin, deadline, seed,
                )));
            }
            let mut ops = Vec::new();
            for worker in workers {
                ops.extend(worker.await.unwrap());
            }
            ops
        });
        (ops, nemesis.join().unwrap())
    });

    // With every member back, one client per member reads everything, after
    // a sync and then plainly: acknowledged writes lost in the crashes, or
    // members that disagree, show here at the latest.
    ensemble.wait_for_roles(Duration::from_secs(30));
    rt.block_on(async {
        for (member, connect) in everyone.iter().enumerate() {
            let id = CLIENTS + member as u32;
            let c = common::ensemble::client(connect).await;
            for key in REGISTERS {
                ops.push(synced_read_op(&c, id, 0, origin, key).await);
                ops.push(read_op(&c, id, 0, origin, key).await);
            }
            for key in SET_MEMBERS {
                ops.push(synced_exists_op(&c, id, 0, origin, key).await);
            }
        }
    });

    let crashes = faults.iter().filter(|f| !f.contains("restarted")).count();
    println!("{crashes} crashes:\n  {}", faults.join("\n  "));
    println!("{}", tally(&ops));
    let verdict = history::check(&ops, NODE_BUDGET);
    match verdict {
        Ok(summary) => {
            println!("{} operations; {summary}", ops.len());
            if std::env::var_os("ZKRS_LIN_HISTORY").is_some() {
                let path = save_history(seed, &faults, &[], &ops);
                println!("history in {}", path.display());
            }
        }
        Err(violations) => {
            let path = save_history(seed, &faults, &violations, &ops);
            let text: Vec<String> = violations
                .iter()
                .take(10)
                .map(ToString::to_string)
                .collect();
            panic!(
                "{} violation(s) in a history of {} operations (seed {seed}); \
                 the whole history is in {}\n{}",
                violations.len(),
                ops.len(),
                path.display(),
                text.join("\n")
            );
        }
    }
}

/// Kills and restarts members, one at a time so that a quorum always remains,
/// until the workload is nearly over; returns what it did, for the report.
fn nemesis(ensemble: &mut Ensemble, origin: Instant, until: Instant) -> Vec<String> {
    let mut log = Vec::new();
    let at = |origin: Instant| format!("{:6.2} s", origin.elapsed().as_secs_f64());
    // Let the clients get going on a healthy ensemble first.
    std::thread::sleep(Duration::from_millis(1500));
    for (round, (target, signal)) in FAULTS.into_iter().enumerate() {
        // A fault needs time to crash, restart and settle before the end.
        if Instant::now() + Duration::from_secs(5) > until {
            break;
        }
        let leader = ensemble.wait_for_roles(Duration::from_secs(30));
        let victim = match target {
            Target::Leader => leader,
            Target::Follower => (leader + 1 + round % 2) % 3,
        };
        match signal {
            Signal::Kill => ensemble.kill(victim),
            Signal::Term => {
                ensemble.stop(victim);
            }
        }
        log.push(format!(
            "{}: {signal:?} server.{} ({target:?})",
            at(origin),
            victim + 1
        ));
        // Down for a while, long enough for clients to notice.
        std::thread::sleep(Duration::from_millis(800 + (round as u64 * 431) % 1200));
        ensemble.launch(victim);
        let leader = ensemble.wait_for_roles(Duration::from_secs(30));
        log.push(format!(
            "{}: restarted server.{}; leader server.{}",
            at(origin),
            victim + 1,
            leader + 1
        ));
        // Healthy for a while before the next fault.
        std::thread::sleep(Duration::from_millis(1200));
    }
    log
}

/// One client: issues random operations one at a time until the deadline or
/// its operation count, starting a new session if its session ends.
async fn client_loop(
    id: u32,
    connect: String,
    origin: Instant,
    deadline: Instant,
    seed: u64,
) -> Vec<Op> {
    let mut rng = Rng(seed | 1);
    let mut ops = Vec::new();
    let mut session = 0;
    let Some(mut client) = connect_before(&connect, deadline).await else {
        return ops;
    };
    let mut known_version: HashMap<&str, i32> = HashMap::new();
    let mut written = 0u32;
    while ops.len() < OPS_PER_CLIENT && Instant::now() < deadline {
        let roll = rng.below(100);
        let register = REGISTERS[rng.below(REGISTERS.len() as u64) as usize];
        let member = SET_MEMBERS[rng.below(SET_MEMBERS.len() as u64) as usize];
        // Half writes (three in five unconditional, the rest compare-and-set
        // on the last version seen), a third reads, the rest on set members.
        let op = match roll {
            0..=49 => {
                written += 1;
                let value = format!("c{id}-{written}");
                let expected =
                    (roll >= 30).then(|| known_version.get(register).copied().unwrap_or(0));
                set_op(&client, id, session, origin, register, value, expected).await
            }
            50..=74 => read_op(&client, id, session, origin, register).await,
            75..=84 => synced_read_op(&client, id, session, origin, register).await,
            85..=89 => create_op(&client, id, session, origin, member).await,
            90..=94 => delete_op(&client, id, session, origin, member).await,
            _ => synced_exists_op(&client, id, session, origin, member).await,
        };
        if let Outcome::Value { version, .. } | Outcome::Written { version } = op.outcome {
            known_version.insert(op_key(&op), version);
        }
        ops.push(op);
        if client.state().is_terminated() {
            session += 1;
            known_version.clear();
            match connect_before(&connect, deadline).await {
                Some(fresh) => client = fresh,
                None => break,
            }
        }
        let pause = 20 + rng.below(80);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
    ops
}

fn op_key(op: &Op) -> &'static str {
    let key = op.action.key();
    REGISTERS
        .iter()
        .chain(SET_MEMBERS.iter())
        .find(|k| **k == key)
        .copied()
        .unwrap_or("")
}

async fn connect_before(connect: &str, deadline: Instant) -> Option<zk::Client> {
    loop {
        match try_connect(connect).await {
            Ok(client) => return Some(client),
            Err(_) if Instant::now() >= deadline => return None,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Runs `request` with the operation timeout; the result, or the outcome
/// recorded when it failed.
async fn bounded<T>(
    request: impl std::future::Future<Output = Result<T, zk::Error>>,
) -> Result<T, zk::Error> {
    match tokio::time::timeout(OP_TIMEOUT, request).await {
        Ok(result) => result,
        Err(_) => Err(zk::Error::Timeout),
    }
}

/// The outcome of an error the operation's model has no definite place for:
/// indeterminate when the request may or may not have been carried out,
/// unexpected when the server definitely answered something wrong.
fn failure(error: zk::Error) -> Outcome {
    use zk::Error as E;
    match error {
        // The server's "not replicated, outcome unknown" answer (ZooKeeper's
        // ConnectionLoss code, which this client only knows as its own).
        E::UnexpectedErrorCode(-4) => Outcome::Unknown("ConnectionLoss from the server".into()),
        E::NoNode
        | E::NodeExists
        | E::BadVersion
        | E::NotEmpty
        | E::NoAuth
        | E::InvalidAcl
        | E::BadArguments(_)
        | E::Unimplemented
        | E::MarshallingError
        | E::NoChildrenForEphemerals
        | E::QuotaExceeded
        | E::UnexpectedErrorCode(_) => Outcome::Unexpected(error.to_string()),
        other => Outcome::Unknown(other.to_string()),
    }
}

fn record(
    id: u32,
    session: u32,
    origin: Instant,
    invoked: Instant,
    action: Action,
    outcome: Outcome,
) -> Op {
    Op {
        client: id,
        session,
        invoke: invoked - origin,
        complete: origin.elapsed(),
        action,
        outcome,
    }
}

async fn set_op(
    c: &zk::Client,
    id: u32,
    session: u32,
    origin: Instant,
    key: &str,
    value: String,
    expected: Option<i32>,
) -> Op {
    let invoked = Instant::now();
    let outcome = match bounded(c.set_data(key, value.as_bytes(), expected)).await {
        Ok(stat) => Outcome::Written {
            version: stat.version,
        },
        Err(zk::Error::BadVersion) if expected.is_some() => Outcome::BadVersion,
        Err(e) => failure(e),
    };
    let action = Action::Set {
        key: key.into(),
        value,
        expected,
    };
    record(id, session, origin, invoked, action, outcome)
}

fn value_outcome((data, stat): (Vec<u8>, zk::Stat)) -> Outcome {
    match String::from_utf8(data) {
        Ok(value) => Outcome::Value {
            value,
            version: stat.version,
        },
        Err(e) => Outcome::Unexpected(format!("data that is not a written value: {e}")),
    }
}

async fn read_op(c: &zk::Client, id: u32, session: u32, origin: Instant, key: &str) -> Op {
    let invoked = Instant::now();
    let outcome = match bounded(c.get_data(key)).await {
        Ok(answer) => value_outcome(answer),
        Err(e) => failure(e),
    };
    let action = Action::Read {
        key: key.into(),
        synced: false,
    };
    record(id, session, origin, invoked, action, outcome)
}

async fn synced_read_op(c: &zk::Client, id: u32, session: u32, origin: Instant, key: &str) -> Op {
    let invoked = Instant::now();
    let outcome = match bounded(c.sync(key)).await {
        Err(e) => Outcome::Unknown(format!("sync: {e}")),
        Ok(()) => match bounded(c.get_data(key)).await {
            Ok(answer) => value_outcome(answer),
            Err(e) => failure(e),
        },
    };
    let action = Action::Read {
        key: key.into(),
        synced: true,
    };
    record(id, session, origin, invoked, action, outcome)
}

async fn create_op(c: &zk::Client, id: u32, session: u32, origin: Instant, key: &str) -> Op {
    let invoked = Instant::now();
    let outcome = match bounded(c.create(key, b"", &open())).await {
        Ok(_) => Outcome::Created,
        Err(zk::Error::NodeExists) => Outcome::NodeExists,
        Err(e) => failure(e),
    };
    let action = Action::Create { key: key.into() };
    record(id, session, origin, invoked, action, outcome)
}

async fn delete_op(c: &zk::Client, id: u32, session: u32, origin: Instant, key: &str) -> Op {
    let invoked = Instant::now();
    let outcome = match bounded(c.delete(key, None)).await {
        Ok(()) => Outcome::Deleted,
        Err(zk::Error::NoNode) => Outcome::NoNode,
        Err(e) => failure(e),
    };
    let action = Action::Delete { key: key.into() };
    record(id, session, origin, invoked, action, outcome)
}

async fn synced_exists_op(c: &zk::Client, id: u32, session: u32, origin: Instant, key: &str) -> Op {
    let invoked = Instant::now();
    let outcome = match bounded(c.sync(key)).await {
        Err(e) => Outcome::Unknown(format!("sync: {e}")),
        Ok(()) => match bounded(c.check_stat(key)).await {
            Ok(stat) => Outcome::Present(stat.is_some()),
            Err(e) => failure(e),
        },
    };
    let action = Action::Exists { key: key.into() };
    record(id, session, origin, invoked, action, outcome)
}

/// Operations by kind and outcome, for the test's output.
fn tally(ops: &[Op]) -> String {
    let mut counts: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for op in ops {
        let kind = match &op.action {
            Action::Set { expected: None, .. } => "set",
            Action::Set { .. } => "cas",
            Action::Read { synced: false, .. } => "read",
            Action::Read { .. } => "sync+read",
            Action::Create { .. } => "create",
            Action::Delete { .. } => "delete",
            Action::Exists { .. } => "sync+exists",
        };
        let outcome = match &op.outcome {
            Outcome::Written { .. } | Outcome::Value { .. } => "ok".to_owned(),
            Outcome::Present(found) => if *found { "present" } else { "absent" }.to_owned(),
            Outcome::Unknown(why) => format!("unknown: {why}"),
            other => format!("{other:?}"),
        };
        *counts.entry((kind, outcome)).or_default() += 1;
    }
    let lines: Vec<String> = counts
        .into_iter()
        .map(|((kind, outcome), n)| format!("  {kind:<12} {outcome:<40} {n:>5}"))
        .collect();
    format!("operations by kind and outcome:\n{}", lines.join("\n"))
}

/// Writes the history where it outlives the test; returns the path.
fn save_history(seed: u64, faults: &[String], violations: &[Violation], ops: &[Op]) -> PathBuf {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "linearizability-{stamp}-{}.history",
        std::process::id()
    ));
    let mut text = format!("seed {seed}\n\nfaults:\n");
    for fault in faults {
        text.push_str(&format!("  {fault}\n"));
    }
    text.push_str("\nviolations:\n");
    for violation in violations {
        text.push_str(&format!("  {violation}\n"));
    }
    text.push_str(&format!("\n{}\n\n", tally(ops)));
    text.push_str(&history::render(ops));
    std::fs::write(&path, text).unwrap();
    path
}
