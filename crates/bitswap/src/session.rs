//! Sessions: related wants (the blocks of one DAG) that go to the peers that have served the
//! session or said they have one of its blocks, their want-blocks spread over those peers by how
//! fast each delivers; and the DAG fetch that walks links with a bounded, growing window of wants.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use cairn_blockstore::Block;
use cid::Cid;
use futures::StreamExt;
use futures::stream::{BoxStream, FuturesUnordered};
use tokio::sync::mpsc;

use crate::{Bitswap, BitswapError};

/// Extracts a block's links (e.g. `cairn_blockstore::codec::links` for raw, dag-pb and dag-cbor).
pub type LinksFn = Arc<dyn Fn(&Block) -> Result<Vec<Cid>, String> + Send + Sync>;

/// Progress of a DAG fetch: one item per block, local or fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DagProgress {
    /// The block just handled.
    pub cid: Cid,
    /// Blocks handled so far (Kubo's `pin add --progress` counts these).
    pub blocks: u64,
    /// Bytes of those blocks.
    pub bytes: u64,
}

impl DagProgress {
    /// A progress item (for walks done outside Bitswap, e.g. an offline walk of the store).
    pub fn new(cid: Cid, blocks: u64, bytes: u64) -> Self {
        DagProgress { cid, blocks, bytes }
    }
}

/// A Bitswap session. Dropping it forgets which peers served it or said they have its blocks.
#[derive(Debug)]
pub struct Session {
    bitswap: Bitswap,
    id: u64,
}

impl Session {
    pub(crate) fn new(bitswap: Bitswap, id: u64) -> Self {
        Session { bitswap, id }
    }

    /// Fetches one block (the store is checked first); dropping the future cancels the want.
    pub async fn get(&self, cid: &Cid) -> Result<Block, BitswapError> {
        self.bitswap.want(cid, Some(self.id), 1).await
    }

    /// Fetches `root` and everything it links to, depth-first by priority, with at most
    /// [`Config::session_window_start`](crate::Config::session_window_start) wants outstanding at
    /// first, one more per block received, up to `session_window_max`. Blocks already stored are
    /// read, not fetched. Shared subtrees are fetched once: the fetch remembers each CID it has
    /// seen (about 100 bytes per block of the DAG).
    ///
    /// The stream yields one [`DagProgress`] per block and ends after the last; an error (a block
    /// whose links cannot be read, the store failing, Bitswap stopping) ends it. Dropping the stream
    /// cancels every outstanding want. Wrap it in a timeout for a deadline.
    pub fn fetch_dag(
        self,
        root: Cid,
        links: LinksFn,
    ) -> BoxStream<'static, Result<DagProgress, BitswapError>> {
        let (tx, mut rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let config = self.bitswap.config().clone();
            let mut queue = VecDeque::from([root]);
            let mut seen = HashSet::from([root]);
            let mut inflight = FuturesUnordered::new();
            let mut window = config.session_window_start.max(1);
            let (mut blocks, mut bytes) = (0u64, 0u64);
            // Earlier CIDs get higher priority, so peers send the DAG roughly in walk order.
            let mut priority = i32::MAX;
            loop {
                while inflight.len() < window {
                    let Some(cid) = queue.pop_front() else { break };
                    let session = &self;
                    priority = priority.saturating_sub(1);
                    let p = priority;
                    inflight.push(async move {
                        (cid, session.bitswap.want(&cid, Some(session.id), p).await)
                    });
                }
                if inflight.is_empty() {
                    break;
                }
                let next = tokio::select! {
                    _ = tx.closed() => return,
                    n = inflight.next() => n,
                };
                let Some((cid, result)) = next else { break };
                let item = match result {
                    Ok(block) => match links(&block) {
                        Ok(children) => {
                            for c in children {
                                if seen.insert(c) {
                                    queue.push_back(c);
                                }
                            }
                            blocks += 1;
                            bytes += block.len() as u64;
                            window = (window + 1).min(config.session_window_max.max(1));
                            Ok(DagProgress { cid, blocks, bytes })
                        }
                        Err(reason) => Err(BitswapError::Links { cid, reason }),
                    },
                    Err(e) => Err(e),
                };
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.bitswap.close_session(self.id);
    }
}
