//! Bitswap's streams: the inbound accept loop over what [`Inbound`](crate::Inbound) accepted (one
//! reader task per stream, reading messages until EOF as go-bitswap's `handleNewStream` does),
//! and one writer task per peer that keeps a long-lived outbound stream on libp2p-stream,
//! negotiating the newest version the peer speaks.

use futures::io::BufReader;
use libp2p::PeerId;
use libp2p_stream::{Control, OpenStreamError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::CoreMsg;
use crate::message::{BitswapMessage, MAX_MESSAGE_SIZE, ProtocolVersion, read_frame, write_frame};

/// Messages a peer's writer holds before senders wait: bounded, so a slow peer cannot make the
/// node queue without limit (the server also bounds its own messages in flight per peer).
const WRITER_QUEUE: usize = 32;

/// Spawns the task that takes the streams [`Inbound`](crate::Inbound) accepted; each stream
/// gets a reader that decodes messages and hands them to the core.
pub(crate) fn spawn_inbound(
    streams: crate::InboundStreams,
    core: mpsc::Sender<CoreMsg>,
    cancel: CancellationToken,
) {
    let mut streams = streams.0;
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => break,
                n = streams.recv() => n,
            };
            let Some((peer, stream)) = next else {
                break;
            };
            let core = core.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = read_loop(peer, stream, core) => {}
                }
            });
        }
    });
}

async fn read_loop(peer: PeerId, stream: libp2p::Stream, core: mpsc::Sender<CoreMsg>) {
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    loop {
        match read_frame(&mut reader, MAX_MESSAGE_SIZE).await {
            Ok(Some(bytes)) => {
                let msg = match BitswapMessage::decode(&bytes) {
                    Ok(m) => CoreMsg::Inbound {
                        peer,
                        msg: Box::new(m),
                        wire_bytes: bytes.len(),
                    },
                    Err(e) => CoreMsg::BadMessage {
                        peer,
                        reason: e.to_string(),
                    },
                };
                let bad = matches!(msg, CoreMsg::BadMessage { .. });
                if core.send(msg).await.is_err() || bad {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = core
                    .send(CoreMsg::BadMessage {
                        peer,
                        reason: e.to_string(),
                    })
                    .await;
                return;
            }
        }
    }
}

/// What a peer's writer sends: a message, and how many bytes of it the server counts in flight.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub msg: BitswapMessage,
    /// Non-zero for server messages: reported back with [`CoreMsg::Sent`] once written.
    pub server_bytes: usize,
}

/// The sending side of one peer's writer task.
#[derive(Debug, Clone)]
pub(crate) struct PeerWriter {
    tx: mpsc::Sender<Outgoing>,
}

impl PeerWriter {
    /// Spawns the writer task for `peer`. It opens the stream on the first message.
    pub(crate) fn spawn(
        peer: PeerId,
        control: Control,
        core: mpsc::UnboundedSender<CoreMsg>,
        cancel: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = write_loop(peer, control, rx, core) => {}
            }
        });
        PeerWriter { tx }
    }

    /// Queues a message; waits while the writer's queue is full. `false` once the writer is gone.
    pub(crate) async fn send(&self, out: Outgoing) -> bool {
        self.tx.send(out).await.is_ok()
    }

    /// Queues a message without waiting; `false` when the queue is full or the writer gone.
    pub(crate) fn try_send(&self, out: Outgoing) -> bool {
        self.tx.try_send(out).is_ok()
    }
}

/// Opens a stream on the newest version the peer accepts.
async fn open(
    control: &mut Control,
    peer: PeerId,
) -> Result<(libp2p::Stream, ProtocolVersion), (bool, String)> {
    let mut last = String::new();
    for v in ProtocolVersion::ALL {
        match control.open_stream(peer, v.protocol()).await {
            Ok(s) => return Ok((s, v)),
            Err(OpenStreamError::UnsupportedProtocol(_)) => continue,
            Err(e) => {
                last = e.to_string();
                return Err((false, last));
            }
        }
    }
    if last.is_empty() {
        last = "the peer speaks no Bitswap version".into();
    }
    Err((true, last))
}

async fn write_loop(
    peer: PeerId,
    mut control: Control,
    mut rx: mpsc::Receiver<Outgoing>,
    core: mpsc::UnboundedSender<CoreMsg>,
) {
    let mut stream: Option<(libp2p::Stream, ProtocolVersion)> = None;
    while let Some(out) = rx.recv().await {
        let mut written = false;
        // One retry on a fresh stream: a long-lived stream may have been reset by the peer.
        for _attempt in 0..2 {
            if stream.is_none() {
                match open(&mut control, peer).await {
                    Ok(s) => stream = Some(s),
                    Err((unsupported, reason)) => {
                        tracing::debug!(%peer, %reason, "bitswap: cannot open a stream");
                        let _ = core.send(CoreMsg::WriterFailed { peer, unsupported });
                        break;
                    }
                }
            }
            let (s, version) = stream.as_mut().expect("opened above");
            let body = out.msg.encode(*version);
            match write_frame(s, &body).await {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "bitswap: write failed; reopening");
                    stream = None;
                }
            }
        }
        if out.server_bytes > 0 {
            let _ = core.send(CoreMsg::Sent {
                peer,
                server_bytes: out.server_bytes,
            });
        }
        if !written && stream.is_none() {
            // Give up on what is queued: the core re-sends wants when the peer reconnects.
            while let Ok(out) = rx.try_recv() {
                if out.server_bytes > 0 {
                    let _ = core.send(CoreMsg::Sent {
                        peer,
                        server_bytes: out.server_bytes,
                    });
                }
            }
        }
    }
    if let Some((mut s, _)) = stream {
        let _ = futures::AsyncWriteExt::close(&mut s).await;
    }
}
