//! Kubo's three response shapes: one JSON value; an NDJSON stream (`X-Chunked-Output: 1`); raw
//! bytes (`X-Stream-Output: 1`). Every response declares `Trailer: X-Stream-Error` up front, as
//! Kubo does.
//!
//! An error after output began must never look like a clean end (half a file that the client
//! takes for the whole). Kubo sends the error in the `X-Stream-Error` trailer and ends the chunked
//! body normally, so curl, Python's `urllib`/`requests` and other clients that ignore trailers see
//! success. cairn sends the trailer to every client that can receive it: hyper writes trailers
//! only to a client that sent `TE: trailers` (RFC 9110 §6.5.1), and such a client reads them. To
//! any other client the response is ended abnormally instead: the body fails, hyper closes the
//! connection without the final zero-length chunk, and the client's read fails (curl exits 18,
//! Python raises `IncompleteRead`, Go's client reports `unexpected EOF`).

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use http_body::Frame;
use http_body_util::StreamBody;
use serde_json::Value;

use crate::error::ApiError;

/// What a command answers.
pub enum Output {
    /// One JSON value (`cmds.EmitOnce`).
    Once(Value),
    /// A stream of JSON values, one per line; an `Err` ends it with the `X-Stream-Error` trailer
    /// or, for a client that cannot receive trailers, an aborted response (see the module docs).
    Stream(BoxStream<'static, Result<Value, ApiError>>),
    /// Raw bytes with a content type; an `Err` ends them as [`Output::Stream`]'s do.
    Raw {
        /// The content type.
        content_type: &'static str,
        /// The length announced in `X-Content-Length` (Kubo's `res.SetLength`, set by `cat`),
        /// if known before streaming.
        length: Option<u64>,
        /// The bytes.
        body: BoxStream<'static, Result<Bytes, ApiError>>,
    },
    /// Raw bytes already in hand (one block): sent with a length, no chunking.
    Bytes {
        /// The content type.
        content_type: &'static str,
        /// The bytes.
        data: Bytes,
    },
    /// Nothing, as a chunked response (`shutdown`, `pubsub/pub`).
    Empty,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Once(v) => write!(f, "Once({v})"),
            Output::Stream(_) => write!(f, "Stream"),
            Output::Raw { content_type, .. } | Output::Bytes { content_type, .. } => {
                write!(f, "Raw({content_type})")
            }
            Output::Empty => write!(f, "Empty"),
        }
    }
}

impl Output {
    /// A stream of already computed values.
    pub fn stream_of(values: Vec<Value>) -> Self {
        Output::Stream(futures::stream::iter(values.into_iter().map(Ok)).boxed())
    }
}

const STREAM_ERROR: HeaderName = HeaderName::from_static("x-stream-error");

/// Headers Kubo puts on every command response.
pub(crate) fn preamble(headers: &mut HeaderMap) {
    let expose = HeaderValue::from_static("X-Stream-Output, X-Chunked-Output, X-Content-Length");
    headers.insert("access-control-allow-headers", expose.clone());
    headers.insert("access-control-expose-headers", expose);
    headers.insert(header::TRAILER, HeaderValue::from_static("X-Stream-Error"));
    headers.insert(
        header::SERVER,
        HeaderValue::from_static(concat!("cairn/", env!("CARGO_PKG_VERSION"))),
    );
}

/// The error a streamed body fails with when a client cannot receive the `X-Stream-Error` trailer:
/// hyper then aborts the connection before the final chunk (see the module docs).
#[derive(Debug, thiserror::Error)]
#[error("stream aborted after output began: {0}")]
pub(crate) struct StreamAborted(String);

/// The body of a stream: each item a data frame; an error becomes the `X-Stream-Error` trailer
/// (`trailers`: the client asked for them with `TE: trailers`) or, for any other client, a body
/// error that makes hyper abort the response. Nothing follows the error.
fn frames<T: Send + 'static>(
    stream: BoxStream<'static, Result<T, ApiError>>,
    encode: fn(T) -> Bytes,
    trailers: bool,
) -> Body {
    let frames = stream
        .then(move |item| async move {
            match item {
                Ok(v) => Ok(Frame::data(encode(v))),
                Err(e) => {
                    // Header values cannot hold line breaks.
                    let text = e.to_string().replace(['\r', '\n'], " ");
                    if !trailers {
                        tracing::debug!("aborting a response after output began: {text}");
                        // Pending once before the error: hyper flushes what it has buffered
                        // (the head, the data before the failure) when the body is pending, and
                        // drops the buffer when the body fails. Without this a failure right
                        // after the first bytes could close the connection before the client
                        // saw any response at all.
                        tokio::task::yield_now().await;
                        return Err(StreamAborted(text));
                    }
                    let mut map = HeaderMap::new();
                    map.insert(
                        STREAM_ERROR,
                        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("error")),
                    );
                    Ok(Frame::trailers(map))
                }
            }
        })
        .scan(false, |done, frame| {
            // Nothing may follow the trailers or the error.
            if *done {
                return futures::future::ready(None);
            }
            *done = match &frame {
                Ok(f) => f.is_trailers(),
                Err(_) => true,
            };
            futures::future::ready(Some(frame))
        });
    Body::new(StreamBody::new(frames))
}

fn json_line(v: Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Whether a request's `TE` header accepts trailers (`TE: trailers`, RFC 9110 §10.1.4): only
/// then does hyper send them.
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
}

impl IntoResponse for Output {
    /// The response for a client that did not say it accepts trailers: a stream that fails after
    /// output began is aborted (see [`Output::into_response_for`]).
    fn into_response(self) -> Response {
        self.into_response_for(false)
    }
}

impl Output {
    /// The HTTP response. `trailers`: the client sent `TE: trailers` ([`accepts_trailers`]), so
    /// an error after output began is sent in the `X-Stream-Error` trailer; otherwise such an
    /// error aborts the response (no final chunk), so the client's read fails.
    pub fn into_response_for(self, trailers: bool) -> Response {
        let complete = matches!(self, Output::Bytes { .. });
        let mut response = match self {
            Output::Once(v) => {
                let mut r = (StatusCode::OK, json_line(v)).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }
            Output::Stream(s) => {
                let mut r = Response::new(frames(s, json_line, trailers));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r.headers_mut()
                    .insert("x-chunked-output", HeaderValue::from_static("1"));
                r
            }
            Output::Raw {
                content_type,
                length,
                body,
            } => {
                let mut r = Response::new(frames(body, |b| b, trailers));
                if let Some(n) = length {
                    r.headers_mut()
                        .insert("x-content-length", HeaderValue::from(n));
                }
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                r.headers_mut()
                    .insert("x-stream-output", HeaderValue::from_static("1"));
                r
            }
            Output::Bytes { content_type, data } => {
                let mut r = Response::new(Body::from(data));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                r.headers_mut()
                    .insert("x-stream-output", HeaderValue::from_static("1"));
                r
            }
            Output::Empty => {
                let empty = futures::stream::empty::<Result<Frame<Bytes>, Infallible>>();
                let mut r = Response::new(Body::new(StreamBody::new(empty)));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r.headers_mut()
                    .insert("x-chunked-output", HeaderValue::from_static("1"));
                r
            }
        };
        preamble(response.headers_mut());
        if complete {
            // Nothing can follow a body that is sent whole: no trailer to announce.
            response.headers_mut().remove(header::TRAILER);
        }
        response
    }
}
