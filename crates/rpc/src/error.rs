//! RPC errors, in the three shapes Kubo answers with: a command error as JSON
//! (`{"Message","Code","Type":"error"}`, 500, or 400 for client errors), a request that does not
//! parse as plain text (400), and an unknown command (404 `404 page not found`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Kubo's error codes (`cmds.ErrorType`); only `Client` changes the HTTP status (to 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// A failure while running the command.
    Normal = 0,
    /// The client asked for something wrong.
    Client = 1,
    /// A bug.
    Implementation = 2,
    /// Too many requests.
    RateLimited = 3,
    /// Not allowed.
    Forbidden = 4,
}

/// An error answered to an RPC client.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A command failed: JSON body, 500 (400 for [`ErrorCode::Client`]).
    #[error("{message}")]
    Command {
        /// The message.
        message: String,
        /// Kubo's code.
        code: ErrorCode,
    },
    /// The request could not be parsed (bad argument, bad option value): plain text, 400.
    #[error("{0}")]
    BadRequest(String),
    /// No such command: 404 `404 page not found`.
    #[error("404 page not found")]
    NotFound,
}

impl ApiError {
    /// A command error with [`ErrorCode::Normal`] (HTTP 500).
    pub fn command(message: impl std::fmt::Display) -> Self {
        ApiError::Command {
            message: message.to_string(),
            code: ErrorCode::Normal,
        }
    }

    /// The same error with `prefix` before a command error's message, as Go's
    /// `fmt.Errorf("pin: %s", err)` wraps one (other kinds are returned as they are).
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            ApiError::Command { message, code } => ApiError::Command {
                message: format!("{prefix}{message}"),
                code,
            },
            other => other,
        }
    }

    /// A command error with [`ErrorCode::Client`] (HTTP 400).
    pub fn client(message: impl std::fmt::Display) -> Self {
        ApiError::Command {
            message: message.to_string(),
            code: ErrorCode::Client,
        }
    }

    /// A parse error (plain text, HTTP 400).
    pub fn bad_request(message: impl std::fmt::Display) -> Self {
        ApiError::BadRequest(message.to_string())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Command {
                code: ErrorCode::Client,
                ..
            }
            | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Command { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

impl From<cairn_node_core::NodeError> for ApiError {
    fn from(e: cairn_node_core::NodeError) -> Self {
        use cairn_node_core::NodeError as E;
        match e {
            E::InvalidMultiaddr { .. } | E::InvalidPeerId { .. } => ApiError::client(e),
            E::PubsubDisabled => ApiError::command(
                "experimental pubsub feature not enabled, run daemon with --enable-pubsub-experiment to use",
            ),
            E::Blockstore(b) => b.into(),
            other => ApiError::command(other),
        }
    }
}

impl From<cairn_blockstore::BlockstoreError> for ApiError {
    fn from(e: cairn_blockstore::BlockstoreError) -> Self {
        use cairn_blockstore::BlockstoreError as E;
        match e {
            E::InvalidCid { .. }
            | E::UnknownCodec(_)
            | E::HashMismatch { .. }
            | E::UnsupportedHash { .. }
            | E::DigestTooShort { .. } => ApiError::client(e),
            // boxo's `ErrNotPinned`, without the CID: IPFS Cluster compares the whole message.
            E::NotPinned(_) => ApiError::command("not pinned or pinned indirectly"),
            other => ApiError::command(other),
        }
    }
}

pub(crate) fn text_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Command { message, code } => {
                let body =
                    serde_json::json!({"Message": message, "Code": *code as u8, "Type": "error"});
                let mut r = (self.status(), format!("{body}\n")).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }
            ApiError::BadRequest(m) => text_response(StatusCode::BAD_REQUEST, format!("{m}\n")),
            ApiError::NotFound => {
                text_response(StatusCode::NOT_FOUND, "404 page not found\n".into())
            }
        }
    }
}
