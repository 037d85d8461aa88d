//! Request handling: limits, path and format, then the file, directory, raw block, CAR or tar
//! response, with the headers the gateway specs ask for.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION, RETRY_AFTER, VARY,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_node_core::unixfs::UnixfsError;
use cairn_node_core::unixfs::exporter::{NodeKind, node_kind};
use cairn_node_core::{ByteStream, FetchOptions, Node, NodeError};
use cid::Cid;
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::RETRY_AFTER_SECS;
use crate::request::{self, ByteRange, CarParams, Format, Query};
use crate::sniff::{SNIFF_LEN, by_extension, content_type};
use crate::{GatewayConfig, GatewayError, GatewayMetrics};

/// `Cache-Control` of responses for immutable `/ipfs/` content (boxo's value: 29030400 s is
/// about 11 months, immutable).
const IMMUTABLE: &str = "public, max-age=29030400, immutable";

/// The gateway's shared state.
pub(crate) struct Inner {
    pub(crate) node: Node,
    pub(crate) config: GatewayConfig,
    pub(crate) metrics: GatewayMetrics,
    pub(crate) slots: Option<Arc<Semaphore>>,
}

/// What a request keeps until its body ends: a concurrency slot and the in-flight count.
struct Held {
    _slot: Option<OwnedSemaphorePermit>,
    metrics: GatewayMetrics,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.concurrent().dec();
    }
}

/// A failed request: its status and the text sent as `text/plain`.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A node error met while serving `path`, with the status the path gateway spec gives it.
    fn node(path: &str, e: NodeError) -> Self {
        let status = match &e {
            NodeError::Unixfs(UnixfsError::InvalidArgument(_)) => StatusCode::BAD_REQUEST,
            NodeError::Unixfs(UnixfsError::NoSuchLink { .. } | UnixfsError::NotADirectory(_)) => {
                StatusCode::NOT_FOUND
            }
            // Not in the store, and fetching is off (`NoFetch`): the content is not here.
            NodeError::BlockNotFound(_) => StatusCode::NOT_FOUND,
            NodeError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            NodeError::NodeStopped => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::Bitswap(_) | NodeError::Routing(_) | NodeError::NotConnected(_) => {
                StatusCode::BAD_GATEWAY
            }
            NodeError::Unixfs(UnixfsError::InvalidBlock { .. }) => StatusCode::BAD_GATEWAY,
            // An IPNS name with no valid record anywhere: nothing to serve.
            NodeError::Ipns(m) if m.starts_with(cairn_node_core::names::ERR_RESOLVE_FAILED) => {
                StatusCode::NOT_FOUND
            }
            // A malformed name (or a DNSLink name, which cairn does not resolve).
            NodeError::Ipns(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Failure::new(status, format!("failed to resolve {path}: {e}"))
    }
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Self {
        Failure::new(e.status(), e.to_string())
    }
}

/// A response body before the limits are put around it.
enum Payload {
    Empty,
    Full(Bytes),
    /// A stream whose first chunk was already read (so its errors became statuses).
    Stream(Option<Bytes>, ByteStream),
}

/// A response ready to send: status, headers, payload, and the kind for metrics.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    payload: Payload,
    kind: &'static str,
}

impl Reply {
    fn new(status: StatusCode, kind: &'static str) -> Self {
        Reply {
            status,
            headers: HeaderMap::new(),
            payload: Payload::Empty,
            kind,
        }
    }

    fn header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.insert(name, v);
        }
        self
    }
}

fn text(status: StatusCode, message: &str) -> Reply {
    let mut r = Reply::new(status, "error").header(CONTENT_TYPE, "text/plain; charset=utf-8");
    r.payload = Payload::Full(Bytes::from(format!("{message}\n")));
    r
}

/// The axum handler for every request.
pub(crate) async fn serve(State(gw): State<Arc<Inner>>, req: Request) -> Response {
    let started = Instant::now();
    let slot = match &gw.slots {
        None => None,
        Some(slots) => match slots.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                let reply = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many requests: Gateway.MaxConcurrentRequests reached, retry later",
                )
                .header(RETRY_AFTER, RETRY_AFTER_SECS.to_string())
                .header(CACHE_CONTROL, "no-store");
                return finish(&gw, reply, None, started);
            }
        },
    };
    gw.metrics.concurrent().inc();
    let held = Held {
        _slot: slot,
        metrics: gw.metrics.clone(),
    };
    let deadline = gw.config.max_request_duration.map(|d| started + d);
    let first_byte = first_byte_deadline(&gw.config, deadline, started);
    let head = respond(&gw, req);
    let reply = match first_byte {
        None => head.await,
        Some(at) => match tokio::time::timeout_at(at, head).await {
            Ok(reply) => reply,
            Err(_) => {
                gw.metrics.timeout(504, false);
                Err(Failure::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "retrieval timed out: no data within Gateway.RetrievalTimeout (or MaxRequestDuration)",
                ))
            }
        },
    };
    let reply = reply.unwrap_or_else(|f| text(f.status, &f.message));
    finish(&gw, reply, Some((held, deadline)), started)
}

/// When the first byte must be ready: the retrieval timeout from now, or the request's
/// deadline if sooner.
fn first_byte_deadline(
    config: &GatewayConfig,
    deadline: Option<Instant>,
    now: Instant,
) -> Option<Instant> {
    earliest(config.retrieval_timeout.map(|t| now + t), deadline)
}

/// The sooner of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Adds the common headers, counts the response, and puts the limits around a streamed body.
fn finish(
    gw: &Inner,
    mut reply: Reply,
    held: Option<(Held, Option<Instant>)>,
    started: Instant,
) -> Response {
    let h = &mut reply.headers;
    // boxo's `AddAccessControlHeaders`: content is public, any page may read it.
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("Content-Type, Range, User-Agent, X-Requested-With"),
    );
    h.insert(
        "access-control-expose-headers",
        HeaderValue::from_static(
            "Content-Length, Content-Range, X-Chunked-Output, X-Stream-Output, X-Ipfs-Path, X-Ipfs-Roots",
        ),
    );
    for (name, value) in &gw.config.http_headers {
        h.append(name.clone(), value.clone());
    }
    gw.metrics.response(reply.status.as_u16());
    gw.metrics
        .first_byte(reply.kind, started.elapsed().as_secs_f64());
    let status = reply.status;
    let body = match reply.payload {
        Payload::Empty => Body::empty(),
        Payload::Full(bytes) => {
            gw.metrics.sent(bytes.len());
            Body::from(bytes)
        }
        Payload::Stream(first, rest) => {
            let (held, deadline) = match held {
                Some((held, deadline)) => (Some(held), deadline),
                None => (None, None),
            };
            Body::from_stream(limited(Limited {
                first,
                rest,
                metrics: gw.metrics.clone(),
                retrieval: gw.config.retrieval_timeout,
                deadline,
                status: status.as_u16(),
                _held: held,
                done: false,
            }))
        }
    };
    let mut response = (status, body).into_response();
    response.headers_mut().extend(reply.headers);
    response
}

/// A streamed body in progress, with what bounds it (see [`limited`]).
struct Limited {
    /// The chunk already read while the status was decided.
    first: Option<Bytes>,
    rest: ByteStream,
    metrics: GatewayMetrics,
    /// `Gateway.RetrievalTimeout`: the longest wait for the next chunk.
    retrieval: Option<Duration>,
    /// `Gateway.MaxRequestDuration` from the request's start.
    deadline: Option<Instant>,
    /// The response's status, for the timeout metric.
    status: u16,
    /// The concurrency slot and in-flight count, held until the body ends.
    _held: Option<Held>,
    done: bool,
}

/// A streamed body under `Gateway.RetrievalTimeout` (between two chunks) and the request's
/// deadline. When either passes, or the stream fails, the body ends with an error: hyper then
/// closes the connection without finishing the response, so the client (and any cache) sees
/// a truncated answer, not a complete one.
fn limited(state: Limited) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        if let Some(chunk) = s.first.take() {
            s.metrics.sent(chunk.len());
            return Some((Ok(chunk), s));
        }
        let at = earliest(s.retrieval.map(|t| Instant::now() + t), s.deadline);
        let next = match at {
            None => s.rest.next().await,
            Some(at) => match tokio::time::timeout_at(at, s.rest.next()).await {
                Ok(next) => next,
                Err(_) => {
                    s.metrics.timeout(s.status, true);
                    s.done = true;
                    tracing::debug!("gateway response cut short: retrieval timed out");
                    return Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "retrieval timed out",
                        )),
                        s,
                    ));
                }
            },
        };
        match next {
            None => None,
            Some(Ok(chunk)) => {
                s.metrics.sent(chunk.len());
                Some((Ok(chunk), s))
            }
            Some(Err(e)) => {
                tracing::debug!("gateway response cut short: {e}");
                s.done = true;
                Some((Err(std::io::Error::other(e.to_string())), s))
            }
        }
    })
}

/// Routes one request by method and path.
async fn respond(gw: &Inner, req: Request) -> Result<Reply, Failure> {
    let method = req.method().clone();
    if method == Method::OPTIONS {
        return Ok(Reply::new(StatusCode::OK, "options"));
    }
    if method != Method::GET && method != Method::HEAD {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} not allowed: the gateway is read-only"),
        )
        .header(ALLOW, "GET, HEAD, OPTIONS"));
    }
    let uri = req.uri().clone();
    let path = uri.path();
    if path == "/" {
        return Ok(match &gw.config.root_redirect {
            Some(to) => Reply::new(StatusCode::FOUND, "redirect").header(LOCATION, to),
            None => text(StatusCode::NOT_FOUND, "404 page not found"),
        });
    }
    let raw_path = path;
    // An IPNS path is resolved to the content path its name points at (the DHT, through the
    // node), and served as that path; X-Ipfs-Path keeps the /ipns/ path asked for.
    let resolved;
    let path = match path.strip_prefix("/ipns/") {
        Some(rest) => {
            let name = rest.split('/').next().unwrap_or_default();
            let tail = &rest[name.len()..];
            let target = gw
                .node
                .name_resolve(&format!("/ipns/{name}"), true)
                .await
                .map_err(|e| Failure::node(raw_path, e))?;
            resolved = format!("{}{tail}", target.trim_end_matches('/'));
            resolved.as_str()
        }
        None => path,
    };
    let Some(rest) = path.strip_prefix("/ipfs/") else {
        return Ok(text(StatusCode::NOT_FOUND, "404 page not found"));
    };
    let query = Query::parse(uri.query());
    let format = request::negotiate(&query, req.headers())?;
    if !gw.config.deserialized_responses && !format.is_trustless() {
        return Ok(text(
            StatusCode::NOT_ACCEPTABLE,
            "deserialized responses are disabled on this gateway (Gateway.DeserializedResponses=false): ask for application/vnd.ipld.raw or application/vnd.ipld.car",
        ));
    }
    let mut segments = Vec::new();
    for seg in rest.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_encoding::percent_decode_str(seg)
            .decode_utf8()
            .map_err(|_| Failure::new(StatusCode::BAD_REQUEST, "path is not valid UTF-8"))?;
        if seg.contains('/') {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                format!("invalid path segment {seg:?}"),
            ));
        }
        segments.push(seg.into_owned());
    }
    let Some((first, names)) = segments.split_first() else {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "invalid path \"/ipfs/\"",
        ));
    };
    let content_path = std::iter::once("/ipfs")
        .chain(segments.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("/");
    let root = cairn_node_core::unixfs::exporter::parse_path(first)
        .map_err(|e| Failure::node(&content_path, NodeError::Unixfs(e)))?
        .0;
    // `Cache-Control: only-if-cached`: answer only from what is here (412 otherwise), as the
    // path gateway spec asks.
    let only_if_cached = req
        .headers()
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("only-if-cached"))
        });
    if only_if_cached && !gw.node.has_block(&root).await.unwrap_or(false) {
        return Ok(text(
            StatusCode::PRECONDITION_FAILED,
            &format!("{root} is not in this node's store (Cache-Control: only-if-cached)"),
        ));
    }
    let ctx = Ctx {
        gw,
        head: method == Method::HEAD,
        headers: req.headers().clone(),
        raw_path: raw_path.to_string(),
        query_string: uri.query().map(str::to_string),
        content_path,
        root,
        names: names.to_vec(),
        query,
        opts: if gw.config.no_fetch {
            FetchOptions::offline()
        } else {
            FetchOptions::with_timeout(None)
        },
    };
    match format {
        Format::Raw => ctx.raw().await,
        Format::Car(params) => ctx.car(params).await,
        Format::Tar => ctx.tar().await,
        Format::Unixfs => ctx.unixfs().await,
    }
}

/// One request under way.
struct Ctx<'a> {
    gw: &'a Inner,
    head: bool,
    headers: HeaderMap,
    /// The request path as sent (for `X-Ipfs-Path` and redirects).
    raw_path: String,
    query_string: Option<String>,
    /// `/ipfs/<cid>/<decoded segments>`: what the node resolves.
    content_path: String,
    root: Cid,
    names: Vec<String>,
    query: Query,
    opts: FetchOptions,
}

impl Ctx<'_> {
    fn node(&self) -> &Node {
        &self.gw.node
    }

    fn fail(&self, e: NodeError) -> Failure {
        Failure::node(&self.content_path, e)
    }

    /// Resolves the path one segment at a time: the CID of each segment (the spec's
    /// `X-Ipfs-Roots`), the last being the terminal one.
    async fn resolve(&self) -> Result<Vec<Cid>, Failure> {
        let mut roots = vec![self.root];
        let mut at = self.root;
        for (i, name) in self.names.iter().enumerate() {
            let step = self
                .node()
                .resolve(&format!("/ipfs/{at}/{name}"), self.opts)
                .await
                .map_err(|e| self.fail(e))?;
            if !step.remainder.is_empty() {
                // A path into a dag-cbor block's data: resolve the rest in one go.
                let rest = self.names[i..].join("/");
                let end = self
                    .node()
                    .resolve(&format!("/ipfs/{at}/{rest}"), self.opts)
                    .await
                    .map_err(|e| self.fail(e))?;
                if !end.remainder.is_empty() {
                    return Err(Failure::new(
                        StatusCode::NOT_FOUND,
                        format!(
                            "failed to resolve {}: the path ends inside block {} ({}); the gateway serves whole blocks only",
                            self.content_path,
                            end.cid,
                            end.rem_path()
                        ),
                    ));
                }
                roots.push(end.cid);
                return Ok(roots);
            }
            at = step.cid;
            roots.push(at);
        }
        Ok(roots)
    }

    /// The headers every content response carries.
    fn content_headers(&self, reply: Reply, roots: &[Cid]) -> Reply {
        let roots = roots
            .iter()
            .map(Cid::to_string)
            .collect::<Vec<_>>()
            .join(",");
        reply
            .header(HeaderName::from_static("x-ipfs-path"), &self.raw_path)
            .header(HeaderName::from_static("x-ipfs-roots"), roots)
            .header(VARY, "Accept")
    }

    fn not_modified(&self, etag: &str) -> bool {
        self.headers
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                let t = t.trim();
                t == "*" || t == etag || t.strip_prefix("W/") == Some(etag)
            })
    }

    fn reply_304(&self, etag: &str, roots: &[Cid]) -> Reply {
        self.content_headers(Reply::new(StatusCode::NOT_MODIFIED, "not-modified"), roots)
            .header(ETAG, etag)
            .header(CACHE_CONTROL, IMMUTABLE)
    }

    /// `Content-Disposition` for `?filename=` / `?download=true`, or `default` (with
    /// `attachment`) for verifiable responses.
    fn disposition(&self, default: Option<String>) -> Option<String> {
        let (kind, name) = match (&self.query.filename, default) {
            (Some(name), _) => (
                if self.query.download {
                    "attachment"
                } else {
                    "inline"
                },
                name.clone(),
            ),
            (None, Some(name)) => ("attachment", name),
            (None, None) if self.query.download => ("attachment", String::new()),
            (None, None) => return None,
        };
        if name.is_empty() {
            return Some(kind.to_string());
        }
        let ascii: String = name
            .chars()
            .map(|c| {
                if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let encoded =
            percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
        Some(format!(
            "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
        ))
    }

    /// A block's bytes: read in place when it is stored (a lookup of microseconds, as the RPC's
    /// `block/get` does; the node's `get_block_with` reads on the blocking pool, and that hop
    /// held `?format=raw` of a 1 KiB block at 49% of a bare axum handler's rate against 64%
    /// without it, `benches/gateway.rs`), else through the node, which fetches it unless
    /// `NoFetch` and reports a store error as its own.
    async fn block(&self, cid: &Cid) -> Result<Bytes, Failure> {
        let block = match self.node().blockstore().and_then(|s| Ok(s.get(cid)?)) {
            Ok(Some(block)) => block,
            _ => self
                .node()
                .get_block_with(cid, self.opts)
                .await
                .map_err(|e| self.fail(e))?,
        };
        Ok(block.into_parts().1)
    }

    /// Reads the first chunk of a stream: its error becomes the response's status.
    async fn first(&self, mut stream: ByteStream) -> Result<Payload, Failure> {
        match stream.next().await {
            None => Ok(Payload::Stream(None, stream)),
            Some(Ok(chunk)) => Ok(Payload::Stream(Some(chunk), stream)),
            Some(Err(e)) => Err(self.fail(e)),
        }
    }

    /// `format=raw`: the terminal block's bytes.
    async fn raw(&self) -> Result<Reply, Failure> {
        let roots = self.resolve().await?;
        let cid = *roots.last().expect("never empty");
        let etag = format!("\"{cid}.raw\"");
        if self.not_modified(&etag) {
            return Ok(self.reply_304(&etag, &roots));
        }
        let data = self.block(&cid).await?;
        let mut reply = self
            .content_headers(Reply::new(StatusCode::OK, "raw"), &roots)
            .header(CONTENT_TYPE, request::RAW_TYPE)
            .header(ETAG, &etag)
            .header(CACHE_CONTROL, IMMUTABLE)
            .header(CONTENT_LENGTH, data.len().to_string())
            .header(HeaderName::from_static("x-content-type-options"), "nosniff");
        if let Some(d) = self.disposition(Some(format!("{cid}.bin"))) {
            reply = reply.header(CONTENT_DISPOSITION, d);
        }
        if !self.head {
            reply.payload = Payload::Full(data);
        }
        Ok(reply)
    }

    /// `format=car`: the path's blocks and the terminal element's, as `params` scope them.
    async fn car(&self, params: CarParams) -> Result<Reply, Failure> {
        let mut etag = format!("W/\"{}.car.{}", self.root, params.scope.as_str());
        if !self.names.is_empty() {
            etag.push('.');
            etag.push_str(&short_hash(&self.content_path));
        }
        if let Some(b) = params.bytes {
            etag.push_str(&format!(
                ".{}-{}",
                b.from,
                b.to.map_or("*".to_string(), |t| t.to_string())
            ));
        }
        etag.push('"');
        if self.not_modified(&etag) {
            return Ok(self.reply_304(&etag, &[self.root]));
        }
        // The path is resolved before the CAR starts, so a path that does not exist is a 404
        // rather than a 200 cut short (its blocks are then local for the CAR's own walk).
        let roots = self.resolve().await?;
        let mut reply = self
            .content_headers(Reply::new(StatusCode::OK, "car"), &roots)
            .header(
                CONTENT_TYPE,
                "application/vnd.ipld.car; version=1; order=dfs; dups=n",
            )
            .header(ETAG, &etag)
            .header(CACHE_CONTROL, IMMUTABLE)
            .header(HeaderName::from_static("x-content-type-options"), "nosniff");
        if let Some(d) = self.disposition(Some(format!("{}.car", self.root))) {
            reply = reply.header(CONTENT_DISPOSITION, d);
        }
        if self.head {
            // The root must be there (or fetchable) for a 200, as for GET.
            self.node()
                .get_block_with(&self.root, self.opts)
                .await
                .map_err(|e| self.fail(e))?;
            return Ok(reply);
        }
        let stream = self
            .node()
            .export_car_path(&self.content_path, params.scope, params.bytes, self.opts)
            .map_err(|e| self.fail(e))?;
        reply.payload = self.first(stream).await?;
        Ok(reply)
    }

    /// `format=tar`: the file or directory as a tar archive.
    async fn tar(&self) -> Result<Reply, Failure> {
        let roots = self.resolve().await?;
        let cid = *roots.last().expect("never empty");
        let etag = format!("W/\"{cid}.x-tar\"");
        if self.not_modified(&etag) {
            return Ok(self.reply_304(&etag, &roots));
        }
        let name = self
            .names
            .last()
            .cloned()
            .unwrap_or_else(|| cid.to_string());
        let mut reply = self
            .content_headers(Reply::new(StatusCode::OK, "tar"), &roots)
            .header(CONTENT_TYPE, request::TAR_TYPE)
            .header(ETAG, &etag)
            .header(CACHE_CONTROL, IMMUTABLE)
            .header(HeaderName::from_static("x-content-type-options"), "nosniff");
        if let Some(d) = self.disposition(Some(format!("{name}.tar"))) {
            reply = reply.header(CONTENT_DISPOSITION, d);
        }
        let opts = cairn_node_core::unixfs::tar::GetOptions {
            archive: true,
            compression: None,
            // A fixed time keeps the archive (and so its ETag) the same for the same CID.
            mtime: 0,
        };
        let stream = self
            .node()
            .get(&format!("/ipfs/{cid}"), opts, self.opts)
            .await
            .map_err(|e| self.fail(e))?;
        if !self.head {
            reply.payload = self.first(stream).await?;
        }
        Ok(reply)
    }

    /// The deserialized view: a file, a directory's `index.html` or listing, or a block.
    async fn unixfs(&self) -> Result<Reply, Failure> {
        let roots = self.resolve().await?;
        let cid = *roots.last().expect("never empty");
        let data = self.block(&cid).await?;
        match node_kind(&cid, &data) {
            NodeKind::File { size } => {
                let name = self
                    .query
                    .filename
                    .clone()
                    .or_else(|| self.names.last().cloned());
                self.file(cid, size, name.as_deref().unwrap_or(""), &roots)
                    .await
            }
            NodeKind::Directory | NodeKind::HamtShard => self.directory(cid, &roots).await,
            NodeKind::Symlink { target } => {
                let mut reply = self
                    .content_headers(Reply::new(StatusCode::OK, "symlink"), &roots)
                    .header(CONTENT_TYPE, "text/plain; charset=utf-8")
                    .header(ETAG, format!("\"{cid}\""))
                    .header(CACHE_CONTROL, IMMUTABLE);
                if !self.head {
                    reply.payload = Payload::Full(Bytes::from(target));
                }
                Ok(reply)
            }
            _ => {
                // Not UnixFS (dag-cbor, dag-json, plain dag-pb): the block as its codec's type.
                let kind = match cid.codec() {
                    0x71 => "application/vnd.ipld.dag-cbor",
                    0x0129 => "application/vnd.ipld.dag-json",
                    0x70 => "application/vnd.ipld.dag-pb",
                    _ => request::RAW_TYPE,
                };
                let mut reply = self
                    .content_headers(Reply::new(StatusCode::OK, "block"), &roots)
                    .header(CONTENT_TYPE, kind)
                    .header(ETAG, format!("\"{cid}\""))
                    .header(CACHE_CONTROL, IMMUTABLE)
                    .header(CONTENT_LENGTH, data.len().to_string());
                if !self.head {
                    reply.payload = Payload::Full(data);
                }
                Ok(reply)
            }
        }
    }

    /// A UnixFS file, whole or a `Range` of it.
    async fn file(&self, cid: Cid, size: u64, name: &str, roots: &[Cid]) -> Result<Reply, Failure> {
        let etag = format!("\"{cid}\"");
        if self.not_modified(&etag) {
            return Ok(self.reply_304(&etag, roots));
        }
        let path = format!("/ipfs/{cid}");
        // The type from the name, else from the first bytes (read only when needed).
        let kind = match by_extension(name) {
            Some(kind) => kind,
            None => {
                let (_, head) = self
                    .node()
                    .cat(&path, 0, Some(SNIFF_LEN as u64), self.opts)
                    .await
                    .map_err(|e| self.fail(e))?;
                let head: Vec<Bytes> = head
                    .collect::<Vec<_>>()
                    .await
                    .into_iter()
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.fail(e))?;
                content_type(name, &head.concat())
            }
        };
        let range = request::byte_range(&self.headers, size);
        if let (ByteRange::Part { .. }, Some(max)) =
            (range, self.gw.config.max_range_request_file_size)
            && size > max
        {
            return Ok(text(
                StatusCode::NOT_IMPLEMENTED,
                &format!(
                    "range requests are not served for files over {max} bytes (Gateway.MaxRangeRequestFileSize)"
                ),
            ));
        }
        let mut reply = self
            .content_headers(Reply::new(StatusCode::OK, "file"), roots)
            .header(CONTENT_TYPE, kind)
            .header(ETAG, &etag)
            .header(CACHE_CONTROL, IMMUTABLE)
            .header(ACCEPT_RANGES, "bytes");
        if let Some(d) = self.disposition(None) {
            reply = reply.header(CONTENT_DISPOSITION, d);
        }
        let (start, end) = match range {
            ByteRange::Whole => (0, size),
            ByteRange::Part { start, end } => {
                reply.status = StatusCode::PARTIAL_CONTENT;
                reply = reply.header(
                    CONTENT_RANGE,
                    format!("bytes {start}-{}/{size}", end.saturating_sub(1)),
                );
                (start, end)
            }
            ByteRange::Unsatisfiable => {
                return Ok(text(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &format!("range not satisfiable for a file of {size} bytes"),
                )
                .header(CONTENT_RANGE, format!("bytes */{size}")));
            }
        };
        reply = reply.header(CONTENT_LENGTH, (end - start).to_string());
        if self.head || end == start {
            return Ok(reply);
        }
        let (_, stream) = self
            .node()
            .cat(&path, start, Some(end - start), self.opts)
            .await
            .map_err(|e| self.fail(e))?;
        reply.payload = self.first(stream).await?;
        Ok(reply)
    }

    /// A directory: redirect to the `/`-ended URL, then its `index.html`, else a listing.
    async fn directory(&self, cid: Cid, roots: &[Cid]) -> Result<Reply, Failure> {
        if !self.raw_path.ends_with('/') {
            let mut to = format!("{}/", self.raw_path);
            if let Some(q) = &self.query_string {
                to.push('?');
                to.push_str(q);
            }
            return Ok(self
                .content_headers(Reply::new(StatusCode::MOVED_PERMANENTLY, "redirect"), roots)
                .header(LOCATION, to));
        }
        match self
            .node()
            .resolve(&format!("/ipfs/{cid}/index.html"), self.opts)
            .await
        {
            Ok(index) if index.remainder.is_empty() => {
                let block = self
                    .node()
                    .get_block_with(&index.cid, self.opts)
                    .await
                    .map_err(|e| self.fail(e))?;
                if let NodeKind::File { size } = node_kind(&index.cid, block.data()) {
                    return self.file(index.cid, size, "index.html", roots).await;
                }
            }
            Ok(_) | Err(NodeError::Unixfs(UnixfsError::NoSuchLink { .. })) => {}
            Err(e) => return Err(self.fail(e)),
        }
        let etag = format!("W/\"DirIndex-cairn1_CID-{cid}\"");
        if self.not_modified(&etag) {
            return Ok(self.reply_304(&etag, roots));
        }
        let mut reply = self
            .content_headers(Reply::new(StatusCode::OK, "directory"), roots)
            .header(CONTENT_TYPE, "text/html; charset=utf-8")
            .header(ETAG, &etag)
            .header(CACHE_CONTROL, IMMUTABLE);
        if self.head {
            return Ok(reply);
        }
        let (_, entries) = self
            .node()
            .ls(&format!("/ipfs/{cid}"), false, self.opts)
            .await
            .map_err(|e| self.fail(e))?;
        let page = crate::listing::page(&self.raw_path, cid, !self.names.is_empty(), entries);
        reply.payload = self.first(page).await?;
        Ok(reply)
    }
}

/// A short stable digest of a text, for ETags that must differ by path (FNV-1a, 64 bits).
fn short_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
