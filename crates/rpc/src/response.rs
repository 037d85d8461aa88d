//! Kubo's three response shapes: one JSON value; an NDJSON stream (`X-Chunked-Output: 1`); raw
//! bytes (`X-Stream-Output: 1`). An error after output began goes into the `X-Stream-Error`
//! trailer, which every response declares up front, as Kubo does.

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
    /// A stream of JSON values, one per line; an `Err` ends it with the `X-Stream-Error` trailer.
    Stream(BoxStream<'static, Result<Value, ApiError>>),
    /// Raw bytes with a content type.
    Raw {
        /// The content type.
        content_type: &'static str,
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

fn frames<T: Send + 'static>(
    stream: BoxStream<'static, Result<T, ApiError>>,
    encode: fn(T) -> Bytes,
) -> Body {
    let frames = stream
        .map(move |item| -> Result<Frame<Bytes>, Infallible> {
            match item {
                Ok(v) => Ok(Frame::data(encode(v))),
                Err(e) => {
                    let mut trailers = HeaderMap::new();
                    let text = e.to_string().replace(['\r', '\n'], " ");
                    trailers.insert(
                        STREAM_ERROR,
                        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("error")),
                    );
                    Ok(Frame::trailers(trailers))
                }
            }
        })
        .scan(false, |done, frame| {
            // Nothing may follow the trailers.
            if *done {
                return futures::future::ready(None);
            }
            if frame.as_ref().is_ok_and(|f| f.is_trailers()) {
                *done = true;
            }
            futures::future::ready(Some(frame))
        });
    Body::new(StreamBody::new(frames))
}

fn json_line(v: Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

impl IntoResponse for Output {
    fn into_response(self) -> Response {
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
                let mut r = Response::new(frames(s, json_line));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r.headers_mut()
                    .insert("x-chunked-output", HeaderValue::from_static("1"));
                r
            }
            Output::Raw { content_type, body } => {
                let mut r = Response::new(frames(body, |b| b));
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
