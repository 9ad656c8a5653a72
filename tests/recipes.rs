//! The recipes users build on ZooKeeper (as kazoo and Curator implement
//! them), written with the `zookeeper-client` crate and run against a
//! 3-member ensemble whose leader is killed and restarted mid-run. Clients
//! know every member. Connection loss during the failover is normal: the
//! recipes retry as careful users do, resolving every write whose outcome is
//! unknown; only violations of what a recipe promises fail a test.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ensemble::{client, open, runtime, Ensemble};
use common::wait_until;
use zookeeper_client as zk;

/// How long one operation may keep failing with connection loss before the
/// test gives up: a failover takes a few seconds.
const RETRY_BOUND: Duration = Duration::from_secs(60);
/// How long a waiter trusts a watch before looking again for itself.
const WATCH_RECHECK: Duration = Duration::from_secs(2);
/// Bound on elections and on each phase of a test.
const PHASE: Duration = Duration::from_secs(90);

fn ephemeral_sequential() -> zk::CreateOptions<'static> {
    zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all())
}

fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

/// Errors after which the server may or may not have applied the request,
/// or was briefly unable to: a careful client retries (resolving first
/// whatever was not idempotent). A connection reset while a request is in
/// flight comes as an I/O error (`Custom`).
fn transient(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::ConnectionLoss
            | zk::Error::Timeout
            | zk::Error::NoHosts
            | zk::Error::Throttled
            | zk::Error::Custom(_)
    )
}

/// Runs an idempotent operation until it gives an answer other than a
/// transient error.
async fn retry<T, F, Fut>(what: &str, mut op: F) -> Result<T, zk::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, zk::Error>>,
{
    let deadline = Instant::now() + RETRY_BOUND;
    loop {
        match op().await {
            Err(e) if transient(&e) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: still failing with `{e}` after {RETRY_BOUND:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// Creates a persistent node if it is missing.
async fn ensure(c: &zk::Client, path: &str) {
    match retry(path, || c.create(path, b"", &open())).await {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(e) => panic!("creating {path}: {e}"),
    }
}

/// The sequence number a sequential node's name ends with.
fn sequence(name: &str) -> i64 {
    name.rsplit('-').next().unwrap().parse().unwrap()
}

/// Creates an ephemeral sequential node named `{dir}/{tag}-{kind}-N` and
/// returns its path. A create whose outcome is unknown is resolved by looking
/// for a child carrying the tag, as Curator's protected mode and kazoo do:
/// a blind retry would leave an orphan node that blocks everyone until the
/// session ends.
async fn create_tagged(
    c: &zk::Client,
    dir: &str,
    tag: &str,
    kind: &str,
) -> Result<String, zk::Error> {
    let prefix = format!("{tag}-{kind}-");
    let deadline = Instant::now() + RETRY_BOUND;
    loop {
        match c
            .create(&format!("{dir}/{prefix}"), b"", &ephemeral_sequential())
            .await
        {
            Ok((_, seq)) => return Ok(format!("{dir}/{prefix}{seq}")),
            Err(e) if transient(&e) => {
                assert!(Instant::now() < deadline, "creating in {dir}: `{e}`");
                // The member we now talk to may lag behind the leader that
                // applied our create: catch it up before looking.
                retry(dir, || c.sync(dir)).await?;
                let children = retry(dir, || c.list_children(dir)).await?;
                if let Some(mine) = children.iter().find(|n| n.starts_with(&prefix)) {
                    return Ok(format!("{dir}/{mine}"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits until `node` is first among the sequential children of `dir` with
/// `kind` in their name, watching only its predecessor (no herd effect).
async fn wait_until_first(c: &zk::Client, dir: &str, node: &str) -> Result<(), zk::Error> {
    let own = node.rsplit('/').next().unwrap().to_owned();
    loop {
        let mut children = retry(dir, || c.list_children(dir)).await?;
        children.sort_by_key(|n| sequence(n));
        let Some(at) = children.iter().position(|n| *n == own) else {
            // Our node is gone although our session lives: only an
            // expired session removes it.
            return Err(zk::Error::SessionExpired);
        };
        if at == 0 {
            return Ok(());
        }
        let predecessor = format!("{dir}/{}", children[at - 1]);
        let (stat, watcher) = match c.check_and_watch_stat(&predecessor).await {
            Ok(found) => found,
            Err(e) if transient(&e) => continue,
            Err(e) => return Err(e),
        };
        if stat.is_some() {
            let _ = tokio::time::timeout(WATCH_RECHECK, watcher.changed()).await;
        }
    }
}

/// Deletes `path`; a missing node counts as deleted, since a delete retried
/// after connection loss finds its own earlier success.
async fn delete_own(c: &zk::Client, path: &str) -> Result<(), zk::Error> {
    match retry(path, || c.delete(path, None)).await {
        Ok(()) | Err(zk::Error::NoNode) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn session_client(cs: &str) -> zk::Client {
    client(cs).await
}

/// Kills the ZooKeeper leader once `progress` reaches `at_kill`, waits for a
/// new leader, and restarts the old one once `progress` reaches
/// `at_restart`, so the recipe runs before, during and after the failover.
fn kill_and_restart_leader(
    ensemble: &mut Ensemble,
    progress: &AtomicUsize,
    at_kill: usize,
    at_restart: usize,
    diagnose: &dyn Fn() -> String,
) {
    assert!(
        wait_until(|| progress.load(SeqCst) >= at_kill, PHASE),
        "no progress before the kill: {} of {at_kill}\n{}",
        progress.load(SeqCst),
        diagnose()
    );
    let killed_at = Instant::now();
    let (old, new) = ensemble.kill_leader(PHASE);
    println!(
        "leader {old} killed at progress {}; member {new} leads after {:?}",
        progress.load(SeqCst),
        killed_at.elapsed()
    );
    assert!(
        wait_until(|| progress.load(SeqCst) >= at_restart, PHASE),
        "no progress after the leader's death: {} of {at_restart}\n{}",
        progress.load(SeqCst),
        diagnose()
    );
    ensemble.launch(old);
    ensemble.wait_for_roles(PHASE);
}

/// Joins spawned workers, each within the phase bound.
fn join_all<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    rt.block_on(async {
        let mut results = Vec::new();
        for task in tasks {
            let result = tokio::time::timeout(PHASE, task)
                .await
                .expect("a worker did not finish in time")
                .expect("a worker panicked");
            results.push(result);
        }
        results
    })
}

/// A lock as Curator's InterProcessMutex and kazoo's Lock build it: an
/// ephemeral sequential node under the lock's directory; the lowest holds it.
struct Lock {
    dir: String,
    node: Option<String>,
}

impl Lock {
    fn new(dir: &str) -> Lock {
        Lock {
            dir: dir.to_owned(),
            node: None,
        }
    }

    async fn acquire(&mut self, c: &zk::Client, tag: &str) -> Result<(), zk::Error> {
        let node = create_tagged(c, &self.dir, tag, "lock").await?;
        self.node = Some(node.clone());
        wait_until_first(c, &self.dir, &node).await
    }

    async fn release(&mut self, c: &zk::Client) -> Result<(), zk::Error> {
        match self.node.take() {
            Some(node) => delete_own(c, &node).await,
            None => Ok(()),
        }
    }

    /// Whether this client may still act as the holder: its session is alive
    /// and its node, owned by that session, exists.
    async fn still_held(&self, c: &zk::Client) -> bool {
        if c.state() != zk::SessionState::SyncConnected {
            return false;
        }
        let Some(node) = &self.node else { return false };
        match retry(node, || c.check_stat(node)).await {
            Ok(Some(stat)) => stat.ephemeral_owner == c.session_id().0,
            _ => false,
        }
    }
}

/// What each lock worker was doing and who owns the lock's nodes, for the
/// message of a stalled run.
fn diagnose_lock(rt: &tokio::runtime::Runtime, cs: &str, steps: &Mutex<Vec<String>>) -> String {
    let nodes = rt.block_on(async {
        let c = session_client(cs).await;
        let mut nodes = Vec::new();
        for child in c.list_children("/lock").await.unwrap_or_default() {
            let owner = c
                .check_stat(&format!("/lock/{child}"))
                .await
                .ok()
                .flatten()
                .map(|s| s.ephemeral_owner);
            nodes.push(format!("{child} owned by {owner:x?}"));
        }
        nodes
    });
    format!(
        "workers: {:#?}\nlock nodes: {nodes:#?}",
        steps.lock().unwrap()
    )
}

#[test]
fn a_lock_excludes_across_a_leader_failover_and_every_increment_counts() {
    const WORKERS: usize = 4;
    const ROUNDS: usize = 25;
    let mut ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(PHASE);
    let cs = ensemble.connect_string_all();
    let rt = runtime();
    rt.block_on(async {
        ensure(&session_client(&cs).await, "/lock").await;
    });
    // Who believes they hold the lock (worker + 1; 0 for nobody), and the
    // counter only a holder touches, read and written in two steps so that
    // two holders at once would lose an increment.
    let holder = Arc::new(AtomicUsize::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let overlaps = Arc::new(Mutex::new(Vec::<String>::new()));
    let progress = Arc::new(AtomicUsize::new(0));
    let steps = Arc::new(Mutex::new(vec![String::new(); WORKERS]));
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (cs, holder, counter, overlaps, progress, steps) = (
                cs.clone(),
                holder.clone(),
                counter.clone(),
                overlaps.clone(),
                progress.clone(),
                steps.clone(),
            );
            rt.spawn(async move {
                let mut c = session_client(&cs).await;
                let mut expiries = 0;
                let mut round = 0;
                while round < ROUNDS {
                    let mut lock = Lock::new("/lock");
                    let tag = format!("w{w}r{round}e{expiries}");
                    steps.lock().unwrap()[w] =
                        format!("{tag} acquiring, session 0x{:x}", c.session_id().0);
                    match lock.acquire(&c, &tag).await {
                        Ok(()) => {}
                        Err(zk::Error::SessionExpired) => {
                            expiries += 1;
                            c = session_client(&cs).await;
                            continue;
                        }
                        Err(e) => panic!("worker {w} acquiring: {e}"),
                    }
                    if let Err(other) = holder.compare_exchange(0, w + 1, SeqCst, SeqCst) {
                        overlaps.lock().unwrap().push(format!(
                            "worker {w} acquired while worker {} held the lock",
                            other - 1
                        ));
                    }
                    let seen = counter.load(SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    counter.store(seen + 1, SeqCst);
                    // Stop believing before letting go, never after.
                    let _ = holder.compare_exchange(w + 1, 0, SeqCst, SeqCst);
                    steps.lock().unwrap()[w] = format!("{tag} releasing {:?}", lock.node);
                    match lock.release(&c).await {
                        Ok(()) => {}
                        Err(zk::Error::SessionExpired) => {
                            expiries += 1;
                            c = session_client(&cs).await;
                        }
                        Err(e) => panic!("worker {w} releasing: {e}"),
                    }
                    round += 1;
                    progress.fetch_add(1, SeqCst);
                }
                expiries
            })
        })
        .collect();
    let total = WORKERS * ROUNDS;
    kill_and_restart_leader(&mut ensemble, &progress, total / 4, total / 2, &|| {
        diagnose_lock(&rt, &cs, &steps)
    });
    let expiries: Vec<usize> = join_all(&rt, tasks);
    println!("session expiries per worker: {expiries:?}");
    let overlaps = overlaps.lock().unwrap();
    assert!(overlaps.is_empty(), "mutual exclusion broken: {overlaps:?}");
    assert_eq!(counter.load(SeqCst), total as u64, "increments were lost");
    rt.block_on(async {
        let c = session_client(&cs).await;
        let left = retry("/lock", || c.list_children("/lock")).await.unwrap();
        assert!(left.is_empty(), "lock nodes left behind: {left:?}");
    });
}

#[test]
fn a_lock_holder_whose_session_expires_knows_it_lost_the_lock() {
    let ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(PHASE);
    let cs = ensemble.connect_string_all();
    let rt = runtime();
    rt.block_on(async {
        let holder = session_client(&cs).await;
        ensure(&holder, "/lock").await;
        let mut held = Lock::new("/lock");
        held.acquire(&holder, "holder").await.unwrap();
        assert!(held.still_held(&holder).await);
        let mut states = holder.state_watcher();

        let contender = tokio::spawn({
            let cs = cs.clone();
            async move {
                let c = session_client(&cs).await;
                let mut lock = Lock::new("/lock");
                lock.acquire(&c, "contender").await.unwrap();
                (c, lock)
            }
        });
        // The contender queues behind the holder.
        let queued = tokio::time::timeout(PHASE, async {
            loop {
                let n = retry("/lock", || holder.list_children("/lock"))
                    .await
                    .unwrap();
                if n.len() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(queued.is_ok(), "the contender never queued");

        // End the holder's session from outside, as an expiry does: a second
        // client attaches to the session and closes it.
        let twin = zk::Client::connector()
            .with_session(holder.session().clone())
            .with_session_timeout(Duration::from_secs(10))
            .connect(&cs)
            .await
            .unwrap();
        drop(twin);

        let noticed = tokio::time::timeout(PHASE, async {
            loop {
                if states.changed().await == zk::SessionState::Expired {
                    break;
                }
            }
        })
        .await;
        assert!(
            noticed.is_ok(),
            "the holder never learnt that its session expired (state {:?})",
            holder.state()
        );
        assert!(
            !held.still_held(&holder).await,
            "an expired holder still believes it holds the lock"
        );
        match holder.check_stat("/lock").await {
            Err(zk::Error::SessionExpired) => {}
            other => panic!("an expired session still answers: {other:?}"),
        }
        let (c, lock) = tokio::time::timeout(PHASE, contender)
            .await
            .expect("the contender never got the lock")
            .unwrap();
        assert!(lock.still_held(&c).await);
        let children = c.list_children("/lock").await.unwrap();
        assert_eq!(children.len(), 1, "the expired holder's node survived");
    });
}

#[test]
fn at_most_one_client_leads_and_a_leader_is_back_soon_after_the_zookeeper_leader_dies() {
    const CANDIDATES: usize = 4;
    let mut ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(PHASE);
    let cs = ensemble.connect_string_all();
    let rt = runtime();
    rt.block_on(async {
        ensure(&session_client(&cs).await, "/election").await;
    });
    let leaders = Arc::new(AtomicUsize::new(0));
    let terms = Arc::new(AtomicUsize::new(0));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..CANDIDATES)
        .map(|n| {
            let (cs, leaders, terms, violations, stop) = (
                cs.clone(),
                leaders.clone(),
                terms.clone(),
                violations.clone(),
                stop.clone(),
            );
            rt.spawn(async move {
                let mut c = session_client(&cs).await;
                let mut attempt = 0;
                while !stop.load(SeqCst) {
                    attempt += 1;
                    let tag = format!("c{n}a{attempt}");
                    let node = match create_tagged(&c, "/election", &tag, "candidate").await {
                        Ok(node) => node,
                        Err(zk::Error::SessionExpired) => {
                            c = session_client(&cs).await;
                            continue;
                        }
                        Err(e) => panic!("candidate {n}: {e}"),
                    };
                    match wait_until_first(&c, "/election", &node).await {
                        Ok(()) => {}
                        Err(zk::Error::SessionExpired) => {
                            c = session_client(&cs).await;
                            continue;
                        }
                        Err(e) => panic!("candidate {n}: {e}"),
                    }
                    let before = leaders.fetch_add(1, SeqCst);
                    if before != 0 {
                        violations
                            .lock()
                            .unwrap()
                            .push(format!("candidate {n} leads beside {before} other(s)"));
                    }
                    terms.fetch_add(1, SeqCst);
                    // A term of leadership, then abdication: believe first
                    // that we no longer lead, then remove the node.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    leaders.fetch_sub(1, SeqCst);
                    match delete_own(&c, &node).await {
                        Ok(()) => {}
                        Err(zk::Error::SessionExpired) => c = session_client(&cs).await,
                        Err(e) => panic!("candidate {n} resigning: {e}"),
                    }
                }
            })
        })
        .collect();
    assert!(
        wait_until(|| terms.load(SeqCst) >= 5, PHASE),
        "no client became leader"
    );
    let killed_at = Instant::now();
    let (old, _) = ensemble.kill_leader(PHASE);
    let terms_at_kill = terms.load(SeqCst);
    let resumed = wait_until(|| terms.load(SeqCst) > terms_at_kill + 1, PHASE);
    assert!(
        resumed,
        "no client became leader within {PHASE:?} of the ZooKeeper leader's death"
    );
    println!(
        "a new client leader {:?} after the ZooKeeper leader was killed",
        killed_at.elapsed()
    );
    ensemble.launch(old);
    ensemble.wait_for_roles(PHASE);
    let terms_at_restart = terms.load(SeqCst);
    assert!(
        wait_until(|| terms.load(SeqCst) >= terms_at_restart + 5, PHASE),
        "elections stalled after the old leader rejoined"
    );
    stop.store(true, SeqCst);
    join_all(&rt, tasks);
    let violations = violations.lock().unwrap();
    assert!(violations.is_empty(), "two leaders at once: {violations:?}");
    println!("{} terms of leadership", terms.load(SeqCst));
}

/// A double barrier as kazoo's DoubleBarrier builds it: participants enter
/// by creating ephemeral nodes; the last to arrive creates `ready`. They
/// leave by deleting their nodes, the lowest last.
struct DoubleBarrier {
    dir: String,
    name: String,
    size: usize,
}

impl DoubleBarrier {
    fn own(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }

    async fn enter(&self, c: &zk::Client) -> Result<(), zk::Error> {
        let ready = format!("{}/ready", self.dir);
        let own = self.own();
        match retry(&own, || c.create(&own, b"", &ephemeral())).await {
            // Ours, from an attempt whose answer was lost.
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(e),
        }
        loop {
            let (stat, watcher) = match c.check_and_watch_stat(&ready).await {
                Ok(found) => found,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            };
            if stat.is_some() {
                return Ok(());
            }
            let arrived = retry(&self.dir, || c.list_children(&self.dir)).await?;
            if arrived.iter().filter(|n| *n != "ready").count() >= self.size {
                match retry(&ready, || c.create(&ready, b"", &open())).await {
                    Ok(_) | Err(zk::Error::NodeExists) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            let _ = tokio::time::timeout(WATCH_RECHECK, watcher.changed()).await;
        }
    }

    async fn leave(&self, c: &zk::Client) -> Result<(), zk::Error> {
        loop {
            let mut left = retry(&self.dir, || c.list_children(&self.dir)).await?;
            left.retain(|n| n != "ready");
            left.sort();
            if left.is_empty() {
                return Ok(());
            }
            if left.len() == 1 && left[0] == self.name {
                return delete_own(c, &self.own()).await;
            }
            let lowest = left[0] == self.name;
            let awaited = if lowest {
                format!("{}/{}", self.dir, left[left.len() - 1])
            } else {
                if left.contains(&self.name) {
                    delete_own(c, &self.own()).await?;
                }
                format!("{}/{}", self.dir, left[0])
            };
            let (stat, watcher) = match c.check_and_watch_stat(&awaited).await {
                Ok(found) => found,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            };
            if stat.is_some() {
                let _ = tokio::time::timeout(WATCH_RECHECK, watcher.changed()).await;
            }
        }
    }
}

#[test]
fn a_double_barrier_lets_nobody_through_early_across_a_leader_failover() {
    const PARTICIPANTS: usize = 4;
    const ROUNDS: usize = 8;
    let mut ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(PHASE);
    let cs = ensemble.connect_string_all();
    let rt = runtime();
    rt.block_on(async {
        let c = session_client(&cs).await;
        for round in 0..ROUNDS {
            ensure(&c, &format!("/barrier-{round}")).await;
        }
    });
    // Per round: how many began to enter and how many began to leave.
    let entering: Arc<Vec<AtomicUsize>> = Arc::new((0..ROUNDS).map(|_| 0.into()).collect());
    let leaving: Arc<Vec<AtomicUsize>> = Arc::new((0..ROUNDS).map(|_| 0.into()).collect());
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let progress = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..PARTICIPANTS)
        .map(|p| {
            let (cs, entering, leaving, violations, progress) = (
                cs.clone(),
                entering.clone(),
                leaving.clone(),
                violations.clone(),
                progress.clone(),
            );
            rt.spawn(async move {
                let c = session_client(&cs).await;
                for round in 0..ROUNDS {
                    let barrier = DoubleBarrier {
                        dir: format!("/barrier-{round}"),
                        name: format!("p{p}"),
                        size: PARTICIPANTS,
                    };
                    entering[round].fetch_add(1, SeqCst);
                    barrier
                        .enter(&c)
                        .await
                        .unwrap_or_else(|e| panic!("p{p} entering round {round}: {e}"));
                    let inside = entering[round].load(SeqCst);
                    if inside != PARTICIPANTS {
                        violations.lock().unwrap().push(format!(
                            "p{p} entered round {round} with {inside} of {PARTICIPANTS} arrived"
                        ));
                    }
                    progress.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_millis(20 * p as u64)).await;
                    leaving[round].fetch_add(1, SeqCst);
                    barrier
                        .leave(&c)
                        .await
                        .unwrap_or_else(|e| panic!("p{p} leaving round {round}: {e}"));
                    let out = leaving[round].load(SeqCst);
                    if out != PARTICIPANTS {
                        violations.lock().unwrap().push(format!(
                            "p{p} left round {round} with {out} of {PARTICIPANTS} leaving"
                        ));
                    }
                    progress.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    let total = PARTICIPANTS * ROUNDS * 2;
    kill_and_restart_leader(&mut ensemble, &progress, total / 4, total / 2, &String::new);
    join_all(&rt, tasks);
    let violations = violations.lock().unwrap();
    assert!(violations.is_empty(), "{violations:?}");
    assert_eq!(progress.load(SeqCst), total);
}

/// Puts `item` once: the sequential item and a marker named after it are
/// created in one transaction, so a put whose answer was lost is resolved
/// by looking for the marker instead of being repeated blindly.
async fn put_once(c: &zk::Client, item: &str) -> Result<(), zk::Error> {
    let marker = format!("/queue-put/{item}");
    let deadline = Instant::now() + RETRY_BOUND;
    loop {
        let mut txn = c.new_multi_writer();
        txn.add_create("/queue/item-", item.as_bytes(), &open_sequential())?;
        txn.add_create(&marker, b"", &open())?;
        match txn.commit().await.map_err(zk::Error::from) {
            Ok(_) | Err(zk::Error::NodeExists) => return Ok(()),
            Err(e) if transient(&e) => {
                assert!(Instant::now() < deadline, "putting {item}: `{e}`");
                retry(&marker, || c.sync("/queue-put")).await?;
                if retry(&marker, || c.check_stat(&marker)).await?.is_some() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn open_sequential() -> zk::CreateOptions<'static> {
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all())
}

/// How an attempt to take a queue item ended.
enum Take {
    Mine(String),
    Someone,
}

/// Takes the item `name` for `consumer`: one transaction deletes it and
/// records the taker under `/queue-taken`, the way kazoo's LockingQueue
/// marks an entry with its owner's id. When the answer is lost the record
/// says whether the delete was ours; blindly retrying the delete would meet
/// NoNode and drop an item we had in fact taken. The record outlives the
/// session, so even a session that expires mid-transaction is resolved: the
/// client reconnects and asks again.
async fn take(c: &mut zk::Client, cs: &str, name: &str, consumer: &str) -> Result<Take, zk::Error> {
    let item = format!("/queue/{name}");
    let receipt = format!("/queue-taken/{name}");
    let (data, _) = match retry(&item, || c.get_data(&item)).await {
        Ok(found) => found,
        Err(zk::Error::NoNode) => return Ok(Take::Someone),
        Err(e) => return Err(e),
    };
    let payload = String::from_utf8(data).unwrap();
    let deadline = Instant::now() + RETRY_BOUND;
    loop {
        let mut txn = c.new_multi_writer();
        txn.add_delete(&item, None)?;
        txn.add_create(&receipt, consumer.as_bytes(), &open())?;
        match txn.commit().await.map_err(zk::Error::from) {
            Ok(_) => return Ok(Take::Mine(payload)),
            Err(zk::Error::NoNode | zk::Error::NodeExists) => {
                // Gone or recorded: by us in an attempt whose answer was
                // lost, or by someone else.
                retry(&receipt, || c.sync("/queue-taken")).await?;
                return match retry(&receipt, || c.get_data(&receipt)).await {
                    Ok((taker, _)) if taker == consumer.as_bytes() => Ok(Take::Mine(payload)),
                    Ok(_) | Err(zk::Error::NoNode) => Ok(Take::Someone),
                    Err(e) => Err(e),
                };
            }
            Err(zk::Error::SessionExpired) => *c = session_client(cs).await,
            Err(e) if transient(&e) => {
                assert!(Instant::now() < deadline, "taking {name}: `{e}`");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn a_queue_delivers_every_item_exactly_once_across_a_leader_failover() {
    const PRODUCERS: usize = 3;
    const ITEMS: usize = 60;
    const CONSUMERS: usize = 3;
    let mut ensemble = Ensemble::start(3, 0);
    ensemble.wait_for_roles(PHASE);
    let cs = ensemble.connect_string_all();
    let rt = runtime();
    rt.block_on(async {
        let c = session_client(&cs).await;
        for dir in ["/queue", "/queue-put", "/queue-taken"] {
            ensure(&c, dir).await;
        }
    });
    let produced = Arc::new(AtomicUsize::new(0));
    let consumed: Arc<Mutex<HashMap<String, Vec<usize>>>> = Arc::default();
    let producers_done = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (cs, produced, progress) = (cs.clone(), produced.clone(), progress.clone());
            rt.spawn(async move {
                let mut c = session_client(&cs).await;
                let mut i = 0;
                while i < ITEMS {
                    match put_once(&c, &format!("p{p}-{i:03}")).await {
                        Ok(()) => {
                            i += 1;
                            produced.fetch_add(1, SeqCst);
                            progress.fetch_add(1, SeqCst);
                        }
                        Err(zk::Error::SessionExpired) => c = session_client(&cs).await,
                        Err(e) => panic!("producer {p}: {e}"),
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|n| {
            let (cs, consumed, done, progress) = (
                cs.clone(),
                consumed.clone(),
                producers_done.clone(),
                progress.clone(),
            );
            rt.spawn(async move {
                let mut c = session_client(&cs).await;
                let me = format!("consumer-{n}");
                loop {
                    // Read the flag before the listing: an empty queue seen
                    // after every put finished is empty for good.
                    let finished = done.load(SeqCst);
                    let mut items = match retry("/queue", || c.list_children("/queue")).await {
                        Ok(items) => items,
                        Err(zk::Error::SessionExpired) => {
                            c = session_client(&cs).await;
                            continue;
                        }
                        Err(e) => panic!("{me}: {e}"),
                    };
                    if items.is_empty() {
                        if finished {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    items.sort_by_key(|n| sequence(n));
                    match take(&mut c, &cs, &items[0], &me).await {
                        Ok(Take::Mine(payload)) => {
                            consumed.lock().unwrap().entry(payload).or_default().push(n);
                            progress.fetch_add(1, SeqCst);
                        }
                        Ok(Take::Someone) => {}
                        // Nothing was written yet: look again.
                        Err(zk::Error::SessionExpired) => c = session_client(&cs).await,
                        Err(e) => panic!("{me}: {e}"),
                    }
                }
            })
        })
        .collect();
    let total = PRODUCERS * ITEMS;
    kill_and_restart_leader(&mut ensemble, &progress, total / 2, total, &String::new);
    join_all(&rt, producers);
    producers_done.store(true, SeqCst);
    join_all(&rt, consumers);
    assert_eq!(produced.load(SeqCst), total);
    let consumed = consumed.lock().unwrap();
    let twice: Vec<_> = consumed.iter().filter(|(_, by)| by.len() > 1).collect();
    assert!(twice.is_empty(), "items consumed more than once: {twice:?}");
    let lost: Vec<String> = (0..PRODUCERS)
        .flat_map(|p| (0..ITEMS).map(move |i| format!("p{p}-{i:03}")))
        .filter(|item| !consumed.contains_key(item))
        .collect();
    assert!(lost.is_empty(), "items never consumed: {lost:?}");
    assert_eq!(consumed.len(), total, "unexpected items: {consumed:?}");
    rt.block_on(async {
        let c = session_client(&cs).await;
        let left = retry("/queue", || c.list_children("/queue")).await.unwrap();
        assert!(left.is_empty(), "items left in the queue: {left:?}");
    });
}
