//! Whole-subtree walks that stay within the frame limit however large the
//! tree: one `getChildren` per node, depth first, holding only the path
//! from the root and the siblings still to visit; deletions go in `multi`
//! batches bounded in count and in bytes.

use crate::client::{Client, Error};
use crate::proto::{ErrorCode, MultiOp};

/// A delete request's bytes besides its path: multi header, string length,
/// version.
const DELETE_OVERHEAD: usize = 9 + 4 + 4;
/// Keeps a batch well under the server's frame limit whatever its count.
const MAX_BATCH_BYTES: usize = 512 * 1024;

fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Visits `root` and every node below it in Apache's `ls -R` order (a node,
/// then all its children, then each child's subtree), calling `visit` with
/// each path; `visit` returns false to stop. Nodes that vanish during the
/// walk are skipped; other errors on a node are handed to `on_error` and
/// the walk goes on. The root must exist.
pub async fn walk(
    client: &Client,
    root: &str,
    watch: bool,
    mut visit: impl FnMut(&str) -> bool,
    mut on_error: impl FnMut(&str, Error),
) -> Result<(), Error> {
    client.get_data(root, watch).await?;
    if !visit(root) {
        return Ok(());
    }
    // Each entry: the children of one node still to descend into, in
    // reverse order so that pop() yields them in sorted order.
    let mut stack: Vec<Vec<String>> = vec![vec![root.to_string()]];
    while let Some(top) = stack.last_mut() {
        let Some(node) = top.pop() else {
            stack.pop();
            continue;
        };
        let mut children = match client.get_children(&node, watch).await {
            Ok(children) => children,
            Err(e) if e.is(ErrorCode::NoNode) => continue,
            Err(e) => {
                on_error(&node, e);
                continue;
            }
        };
        children.sort();
        let mut paths = Vec::with_capacity(children.len());
        for child in &children {
            let path = child_path(&node, child);
            if !visit(&path) {
                return Ok(());
            }
            paths.push(path);
        }
        paths.reverse();
        stack.push(paths);
    }
    Ok(())
}

/// What a recursive delete did.
#[derive(Debug, Default)]
pub struct DeleteReport {
    pub deleted: u64,
    /// Nodes that could not be deleted, with why.
    pub failures: Vec<(String, Error)>,
}

/// Deletes `root` and everything below it, children before parents, in
/// `multi` batches of at most `batch` deletes (and of bounded size). A batch
/// that fails (a node appeared or vanished meanwhile) is retried one node at
/// a time. `batch` 0 deletes one node per request.
pub async fn delete_all(client: &Client, root: &str, batch: usize) -> Result<DeleteReport, Error> {
    let mut report = DeleteReport::default();
    // The root's existence is checked first so that a missing root is an
    // error, as in Apache.
    client.get_children(root, false).await?;
    let mut batcher = Batcher {
        client,
        limit: batch.max(1),
        ops: Vec::new(),
        bytes: 0,
    };
    // Post-order: a node is queued for deletion once all its children are.
    // Each frame: a node and the children not yet descended into.
    let mut stack: Vec<(String, Option<Vec<String>>)> = vec![(root.to_string(), None)];
    while let Some((node, pending)) = stack.pop() {
        match pending {
            None => match client.get_children(&node, false).await {
                Ok(children) => {
                    let mut paths: Vec<String> =
                        children.iter().map(|c| child_path(&node, c)).collect();
                    paths.sort_unstable_by(|a, b| b.cmp(a));
                    stack.push((node, Some(paths)));
                }
                Err(e) if e.is(ErrorCode::NoNode) => {}
                Err(e) => report.failures.push((node, e)),
            },
            Some(mut children) => match children.pop() {
                Some(child) => {
                    stack.push((node, Some(children)));
                    stack.push((child, None));
                }
                None => batcher.push(&node, &mut report).await,
            },
        }
    }
    batcher.flush(&mut report).await;
    Ok(report)
}

struct Batcher<'a> {
    client: &'a Client,
    limit: usize,
    ops: Vec<String>,
    bytes: usize,
}

impl Batcher<'_> {
    async fn push(&mut self, path: &str, report: &mut DeleteReport) {
        let size = path.len() + DELETE_OVERHEAD;
        if !self.ops.is_empty() && self.bytes + size > MAX_BATCH_BYTES {
            self.flush(report).await;
        }
        self.ops.push(path.to_string());
        self.bytes += size;
        if self.ops.len() >= self.limit {
            self.flush(report).await;
        }
    }

    async fn flush(&mut self, report: &mut DeleteReport) {
        let paths = std::mem::take(&mut self.ops);
        self.bytes = 0;
        if paths.is_empty() {
            return;
        }
        if paths.len() > 1 {
            let ops = paths
                .iter()
                .map(|path| MultiOp::Delete {
                    path: path.clone(),
                    version: -1,
                })
                .collect();
            if self.client.multi(ops).await.is_ok() {
                report.deleted += paths.len() as u64;
                return;
            }
        }
        for path in paths {
            match self.client.delete(&path, None).await {
                Ok(()) => report.deleted += 1,
                Err(e) if e.is(ErrorCode::NoNode) => {}
                Err(e) => report.failures.push((path, e)),
            }
        }
    }
}
