//! Noticing that an RPC client has gone away, as Go's server (and so Kubo) does.
//!
//! Go's `net/http` keeps a read pending on every connection while a handler runs; when it sees
//! end-of-file or an error, it cancels the request's context, and Kubo's long-running commands
//! (`pubsub/sub`, `routing/findprovs`, a `block/get` or `cat` waiting on Bitswap, `pin/add`) end
//! and release what they hold. hyper only notices a closed connection when a write fails, which
//! for a stream that writes nothing (a quiet pubsub topic, a want nobody answers) is never.
//!
//! [`watch`] gives each accepted TCP connection a second handle on the same socket (a `dup`ed
//! descriptor, registered with the reactor on its own) and waits for the kernel to report the
//! read side closed (`EPOLLRDHUP`: the peer sent FIN or reset the connection). It never reads,
//! so it takes no bytes from hyper; it only learns of the close, at once, whether or not
//! anything is being written. The [`ClientGone`] token it trips reaches every request of that
//! connection as a request extension.
//!
//! A client that half-closes after sending its request (HTTP/1.0 scripts, `nc -q`) looks the
//! same as one that went away; Go cancels its context too, but a command that finishes anyway
//! is still answered. cairn does the same: a command whose client has gone gets
//! [`GONE_GRACE`] to finish (and is answered if it does), then it is dropped.

use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How long a command whose client has gone may still run: long enough for a half-closed
/// HTTP/1.0 client's quick command to be answered, short enough that a vanished client's
/// subscription or want is released within a second.
pub const GONE_GRACE: Duration = Duration::from_millis(500);

/// Tripped when the client of a connection has gone away (its read side closed). Requests
/// reach it as an extension; a request without one (a router served by something other than
/// [`crate::serve`]) has a token that never trips.
#[derive(Clone, Debug, Default)]
pub struct ClientGone(CancellationToken);

impl ClientGone {
    /// Waits until the client has gone.
    pub async fn gone(&self) {
        self.0.cancelled().await
    }

    /// Whether the client has gone already.
    pub fn is_gone(&self) -> bool {
        self.0.is_cancelled()
    }
}

/// Watches `tcp` for its peer closing. Returns the connection's [`ClientGone`] and a guard that
/// stops the watch (and closes the second descriptor) when dropped: hold it exactly as long as
/// the connection is served, since the socket stays open while either descriptor is.
///
/// # Errors
/// Duplicating the descriptor or registering it with the reactor failed (out of descriptors);
/// the caller serves the connection without a watch.
pub fn watch(tcp: &TcpStream) -> std::io::Result<(ClientGone, DropGuard)> {
    let watcher = TcpStream::from_std(duplicate(tcp)?)?;
    let gone = CancellationToken::new();
    let stop = CancellationToken::new();
    let (trip, stopped) = (gone.clone(), stop.clone());
    tokio::spawn(async move {
        tokio::select! {
            () = read_closed(&watcher) => trip.cancel(),
            () = stopped.cancelled() => {}
        }
        // `watcher` is dropped here, closing the duplicate descriptor.
    });
    Ok((ClientGone(gone), stop.drop_guard()))
}

/// A second descriptor for the socket of `tcp` (non-blocking, as the original is).
#[cfg(unix)]
fn duplicate(tcp: &TcpStream) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::AsFd;
    let owned = tcp.as_fd().try_clone_to_owned()?;
    let std = std::net::TcpStream::from(owned);
    std.set_nonblocking(true)?;
    Ok(std)
}

/// Elsewhere there is no watch: connections are served as before.
#[cfg(not(unix))]
fn duplicate(_: &TcpStream) -> std::io::Result<std::net::TcpStream> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Resolves once the kernel reports the read side of `tcp` closed (or the socket failed).
async fn read_closed(tcp: &TcpStream) {
    loop {
        match tcp.ready(Interest::READABLE).await {
            Ok(ready) if ready.is_read_closed() => return,
            Ok(_) => {
                // Bytes are waiting for hyper (a body, a pipelined request). Clear this
                // handle's readiness without reading them: the next wake is the next segment
                // or the close, so a slow upload costs a wake per segment, not a spin.
                let _ = tcp.try_io(Interest::READABLE, || {
                    Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                });
            }
            Err(_) => return,
        }
    }
}
