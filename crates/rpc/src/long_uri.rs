//! Request lines longer than hyper can hold, accepted as Go's server (and so Kubo) accepts them.
//!
//! Go's `net/http` reads up to `DefaultMaxHeaderBytes` (1 MiB) of request line and headers, so a
//! Kubo client may send a 70,000-byte `arg`, or `arg=<cid>` two thousand times. hyper refuses any
//! request-target over 65,534 bytes with a bare `414` (`http::Uri` cannot hold more), whatever its
//! buffer size. `LongUriIo` sits between the socket and hyper: it follows HTTP/1.1 request
//! framing (heads, `Content-Length` and chunked bodies, so keep-alive and pipelined requests stay
//! in step) and, when a request-target is too long for hyper, moves its query string into the
//! [`QUERY_HEADER`] header and leaves hyper the short path. The API handler reads the query from
//! there. Everything else passes through unchanged; anything it does not understand
//! (HTTP/2, upgrades, malformed heads) switches it to plain pass-through for the rest of the
//! connection, where hyper answers as it always did.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::HeaderMap;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most request line and headers read for one request: Go's `http.DefaultMaxHeaderBytes`.
pub(crate) const MAX_HEAD: usize = 1 << 20;

/// The longest request-target hyper accepts (its `MAX_URI_LEN`, `u16::MAX - 1`).
const HYPER_MAX_URI: usize = (u16::MAX - 1) as usize;

/// The header that carries a query string moved out of an over-long request-target. A client
/// that sends it itself only changes its own request's query.
pub const QUERY_HEADER: &str = "x-cairn-long-query";

/// The most headers parsed in a head (hyper's own default limit is 100).
const MAX_HEADERS: usize = 128;

/// Buffer capacity a connection keeps between requests. A long head (up to [`MAX_HEAD`]) grows
/// `held` and `out` to its size; kept, that is up to 2 MiB for every idle keep-alive connection
/// that once sent one (8 GiB at the default 4,096-connection cap), so it is given back once the
/// bytes have gone to hyper. Ordinary traffic (16 KiB reads) stays under it and reuses its buffers.
const RETAIN: usize = 64 * 1024;

/// The longest chunk-size or trailer line followed before giving up on framing.
const MAX_LINE: usize = 8 * 1024;

/// The query string a request was sent with: the [`QUERY_HEADER`] if [`LongUriIo`] moved it
/// there, else `uri_query` (the URI's own).
pub(crate) fn query<'a>(headers: &'a HeaderMap, uri_query: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(QUERY_HEADER)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .or(uri_query)
}

/// The bytes hyper is handed for a connection whose client sent `pieces` (one read each) and
/// then closed: the same bytes, except that request-targets too long for hyper have their query
/// moved into [`QUERY_HEADER`]. For tests and fuzzing: any split of the same bytes gives the
/// same result, and nothing panics.
pub fn rewrite_for_hyper<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut io = LongUriIo::new(());
    for piece in pieces {
        io.held.extend_from_slice(piece);
        io.process();
    }
    io.pass_through();
    io.out
}

/// Where the reader is in the request stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Forwarding this many more bytes of a `Content-Length` body.
    Body(u64),
    /// Collecting a chunk-size line.
    ChunkSize,
    /// Forwarding this many more bytes of chunk data.
    ChunkData(u64),
    /// Forwarding the CRLF after chunk data.
    ChunkEnd,
    /// Forwarding trailer lines up to the empty one.
    Trailers,
    /// Not following the framing any more: everything passes through.
    PassThrough,
}

/// A connection's byte stream with over-long request-targets rewritten for hyper (see the
/// module documentation). Writes pass through untouched.
#[derive(Debug)]
pub(crate) struct LongUriIo<T> {
    inner: T,
    state: State,
    /// Bytes read but not yet classified (a partial head or line).
    held: Vec<u8>,
    /// Bytes ready for hyper, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// How much of `held` was searched for the end of a head already, so a head arriving a
    /// byte at a time is not searched from its start each time.
    scanned: usize,
    eof: bool,
}

impl<T> LongUriIo<T> {
    pub(crate) fn new(inner: T) -> Self {
        LongUriIo {
            inner,
            state: State::Head,
            held: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            scanned: 0,
            eof: false,
        }
    }

    /// Moves `n` held bytes to the output unchanged.
    fn forward(&mut self, n: usize) {
        self.out.extend(self.held.drain(..n));
        self.scanned = 0;
    }

    fn pass_through(&mut self) {
        self.state = State::PassThrough;
        let n = self.held.len();
        self.forward(n);
    }

    /// Runs the framing over the held bytes as far as they go.
    fn process(&mut self) {
        loop {
            match self.state {
                State::PassThrough => return self.pass_through(),
                State::Head => {
                    // HTTP/2 (prior knowledge) never returns to HTTP/1 framing.
                    if self.held.starts_with(b"PRI ") {
                        return self.pass_through();
                    }
                    // The blank line may straddle the last search's end by up to 3 bytes.
                    let from = self.scanned.saturating_sub(3);
                    let Some(end) = head_end(&self.held, from) else {
                        self.scanned = self.held.len();
                        if self.held.len() > MAX_HEAD + 4 {
                            // hyper answers 431 for it.
                            self.pass_through();
                        }
                        return;
                    };
                    match rewrite_head(&self.held[..end]) {
                        Some((Some(new), next)) => {
                            self.held.drain(..end);
                            self.scanned = 0;
                            self.out.extend_from_slice(&new);
                            self.state = next;
                        }
                        Some((None, next)) => {
                            self.forward(end);
                            self.state = next;
                        }
                        None => return self.pass_through(),
                    }
                }
                State::Body(left) | State::ChunkData(left) => {
                    if self.held.is_empty() {
                        return;
                    }
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(self.held.len());
                    self.forward(n);
                    let left = left - n as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::ChunkSize | State::ChunkEnd | State::Trailers => {
                    let Some(nl) = self.held.iter().position(|&b| b == b'\n') else {
                        if self.held.len() > MAX_LINE {
                            self.pass_through();
                        }
                        return;
                    };
                    let line = &self.held[..nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let next = match self.state {
                        State::ChunkSize => match chunk_size(line) {
                            Some(0) => State::Trailers,
                            Some(n) => State::ChunkData(n),
                            None => return self.pass_through(),
                        },
                        State::ChunkEnd if line.is_empty() => State::ChunkSize,
                        State::ChunkEnd => return self.pass_through(),
                        _ if line.is_empty() => State::Head,
                        _ => State::Trailers,
                    };
                    self.forward(nl + 1);
                    self.state = next;
                }
            }
        }
    }
}

/// The index just past the blank line that ends a head (`\r\n\r\n` or a bare `\n\n`),
/// searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        let rest = &buf[nl + 1..];
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        i = nl + 1;
    }
    None
}

/// A chunk-size line's size (hex, optional `;extensions`).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.split(|&b| b == b';').next()?;
    let text = std::str::from_utf8(digits).ok()?.trim();
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// Parses a complete head and decides how its body is framed. Returns the head to hand hyper
/// (`Some(rewritten)`, or `None` to forward the original bytes) and the state after it; `None`
/// when the head is not one this reader can follow (hyper then sees it unchanged).
fn rewrite_head(raw: &[u8]) -> Option<(Option<Vec<u8>>, State)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(raw), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let (method, target, version) = (req.method?, req.path?, req.version?);
    if method.eq_ignore_ascii_case("CONNECT") {
        return None;
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("upgrade") {
            return None;
        }
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // hyper accepts only `chunked` last; anything else is its error to report.
            let last = h.value.rsplit(|&b| b == b',').next()?;
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return None;
            }
            chunked = true;
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
            if length.is_some_and(|m| m != n) {
                return None;
            }
            length = Some(n);
        }
    }
    let next = if chunked {
        State::ChunkSize
    } else {
        match length {
            Some(n) if n > 0 => State::Body(n),
            _ => State::Head,
        }
    };
    if target.len() <= HYPER_MAX_URI {
        return Some((None, next));
    }
    let (path, query) = target.split_once('?')?;
    if path.len() > HYPER_MAX_URI {
        return None;
    }
    let mut head = Vec::with_capacity(raw.len() + 32);
    head.extend_from_slice(format!("{method} {path} HTTP/1.{version}\r\n").as_bytes());
    head.extend_from_slice(format!("{QUERY_HEADER}: {query}\r\n").as_bytes());
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case(QUERY_HEADER) {
            continue;
        }
        head.extend_from_slice(h.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(h.value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Some((Some(head), next))
}

impl<T: AsyncRead + Unpin> AsyncRead for LongUriIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                    if this.out.capacity() > RETAIN {
                        this.out = Vec::new();
                    }
                    if this.held.is_empty() && this.held.capacity() > RETAIN {
                        this.held = Vec::new();
                    }
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // A partial head or line at the end goes to hyper as it is, then end of stream.
                if this.held.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.pass_through();
                continue;
            }
            let mut scratch = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
                continue;
            }
            this.held.extend_from_slice(read.filled());
            this.process();
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for LongUriIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stream fed whole and one byte at a time gives the same bytes.
    fn rewrite(input: &[u8]) -> Vec<u8> {
        let whole = rewrite_for_hyper([input]);
        assert_eq!(whole, rewrite_for_hyper(input.chunks(1)));
        whole
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// A connection that once sent a long head does not keep head-sized buffers afterwards.
    #[tokio::test]
    async fn buffers_shrink_after_a_long_head() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let head = format!(
            "POST /api/v0/block/stat?arg={} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(200_000)
        );
        let (mut client, server) = tokio::io::duplex(1 << 20);
        client.write_all(head.as_bytes()).await.unwrap();
        drop(client);
        let mut io = LongUriIo::new(server);
        let mut got = Vec::new();
        io.read_to_end(&mut got).await.unwrap();
        assert!(text(&got).contains(QUERY_HEADER), "the head was rewritten");
        assert!(
            io.held.capacity() <= RETAIN && io.out.capacity() <= RETAIN,
            "held {} and out {} bytes of capacity after the request",
            io.held.capacity(),
            io.out.capacity()
        );
    }

    #[test]
    fn short_requests_pass_unchanged() {
        let input = b"POST /api/v0/id?arg=x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\
POST /api/v0/version HTTP/1.0\n\n";
        assert_eq!(rewrite(input), input);
    }

    #[test]
    fn a_long_target_moves_its_query_to_a_header_and_framing_keeps_up() {
        let q = format!("arg={}", "a".repeat(70_000));
        let mut input = b"POST /api/v0/add HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
            .to_vec();
        input.extend_from_slice(
            format!("POST /api/v0/block/stat?{q} HTTP/1.1\r\nHost: a\r\n{QUERY_HEADER}: spoof\r\nContent-Length: 2\r\n\r\nhi").as_bytes(),
        );
        input.extend_from_slice(b"POST /api/v0/version HTTP/1.1\r\n\r\n");
        let out = text(&rewrite(&input));
        let expected = format!(
            "POST /api/v0/add HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n\
POST /api/v0/block/stat HTTP/1.1\r\n{QUERY_HEADER}: {q}\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi\
POST /api/v0/version HTTP/1.1\r\n\r\n"
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn what_it_cannot_follow_passes_through() {
        let long = "a".repeat(70_000);
        for input in [
            // HTTP/2 prior knowledge, then bytes that look like a long HTTP/1 request.
            format!("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nPOST /?{long} HTTP/1.1\r\n\r\n"),
            // An upgrade: after it the bytes are another protocol's.
            format!("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nPOST /?{long} HTTP/1.1\r\n\r\n"),
            // A bad chunk size.
            format!(
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nPOST /?{long} HTTP/1.1\r\n\r\n"
            ),
            // Conflicting lengths (hyper's error to report).
            format!(
                "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nPOST /?{long} HTTP/1.1\r\n\r\n"
            ),
            // A long path without a query is hyper's 414 to give.
            format!("POST /{long} HTTP/1.1\r\n\r\n"),
            // A cut head.
            format!("POST /?{long} HTTP/1.1\r\nHost"),
        ] {
            assert_eq!(text(&rewrite(input.as_bytes())), input);
        }
    }

    #[test]
    fn queries_are_read_from_the_header_first() {
        let mut headers = HeaderMap::new();
        assert_eq!(query(&headers, Some("arg=1")), Some("arg=1"));
        headers.insert(QUERY_HEADER, "arg=2".parse().unwrap());
        assert_eq!(query(&headers, Some("arg=1")), Some("arg=2"));
    }
}
