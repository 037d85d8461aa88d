//! Parsing a Kubo RPC request: the command path, repeated `arg` parameters, options by name or
//! alias, and multipart/form-data file parts (read with size limits).

use axum::body::Body;
use bytes::Bytes;
use futures::TryStreamExt;

use base64::Engine as _;

use crate::error::ApiError;

/// The most a request body may carry (several blocks, a config file, a pubsub message).
pub const MAX_BODY: u64 = 32 << 20;
/// The most one multipart part may carry.
pub const MAX_PART: u64 = 8 << 20;

/// One part of a multipart body.
#[derive(Clone, Debug)]
pub struct Part {
    /// The form field name (`file` from Kubo clients).
    pub name: Option<String>,
    /// The file name, if any.
    pub filename: Option<String>,
    /// The part's content type, if any.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Bytes,
}

/// A parsed request to `/api/v0/<command>`.
#[derive(Debug)]
pub struct CommandRequest {
    /// The command path, e.g. `block/put`.
    pub command: String,
    /// Positional arguments (`arg=` parameters, in order).
    pub args: Vec<String>,
    options: Vec<(String, String)>,
    /// The multipart boundary and the body; in a mutex only so the request is `Sync` (handlers
    /// hold `&CommandRequest` across awaits).
    body: Option<(String, std::sync::Mutex<Body>)>,
}

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space, `%XX` a byte.
pub fn url_decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        // Lossy: the bytes after '%' may end inside a multi-byte character
                        // (the rpc_inputs fuzz target found this).
                        let near = String::from_utf8_lossy(&bytes[i..bytes.len().min(i + 3)]);
                        ApiError::bad_request(format!("invalid URL escape {near:?}"))
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("query parameter is not valid UTF-8"))
}

/// Splits a query string into decoded key/value pairs, in order.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((url_decode(k)?, url_decode(v)?))
        })
        .collect()
}

/// Go's `strconv.ParseBool`, which Kubo uses for boolean options (an empty value means true).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl CommandRequest {
    /// A request for `command` with the given query string and body.
    pub fn new(
        command: &str,
        query: Option<&str>,
        content_type: Option<&str>,
        body: Body,
    ) -> Result<Self, ApiError> {
        let mut args = Vec::new();
        let mut options = Vec::new();
        for (k, v) in parse_query(query.unwrap_or(""))? {
            if k == "arg" {
                args.push(v);
            } else {
                options.push((k, v));
            }
        }
        let body = content_type
            .filter(|ct| ct.starts_with("multipart/"))
            .map(|ct| multer::parse_boundary(ct).map(|b| (b, std::sync::Mutex::new(body))))
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("bad multipart content type: {e}")))?;
        Ok(CommandRequest {
            command: command.to_string(),
            args,
            options,
            body,
        })
    }

    /// The single value of an option given by any of its names, if present.
    pub fn opt(&self, names: &[&str]) -> Result<Option<&str>, ApiError> {
        let mut found = self
            .options
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()));
        let first = found.next();
        if found.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "expected key {:?} to have only a single value",
                names[0]
            )));
        }
        Ok(first.map(|(_, v)| v.as_str()))
    }

    /// A boolean option.
    pub fn flag(&self, names: &[&str], default: bool) -> Result<bool, ApiError> {
        match self.opt(names)? {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "could not convert value {v:?} to type bool (for option \"-{}\")",
                    names[0]
                ))
            }),
        }
    }

    /// An integer option.
    pub fn int(&self, names: &[&str], default: i64) -> Result<i64, ApiError> {
        match self.opt(names)? {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "could not convert value {v:?} to type int (for option \"-{}\")",
                    names[0]
                ))
            }),
        }
    }

    /// The `i`-th positional argument, required.
    pub fn arg(&self, i: usize, name: &str) -> Result<&str, ApiError> {
        self.args
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| ApiError::bad_request(format!("argument {name:?} is required")))
    }

    /// Every positional argument; at least one is required.
    pub fn args_required(&self, name: &str) -> Result<&[String], ApiError> {
        if self.args.is_empty() {
            return Err(ApiError::bad_request(format!(
                "argument {name:?} is required"
            )));
        }
        Ok(&self.args)
    }

    /// The multipart body as a stream of parts, for commands that read parts as they arrive
    /// (`add`); `None` if the request has no multipart body.
    pub fn multipart(&mut self, whole: u64, per_part: u64) -> Option<multer::Multipart<'static>> {
        let (boundary, body) = self.body.take()?;
        let body = body
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let constraints = multer::Constraints::new().size_limit(
            multer::SizeLimit::new()
                .whole_stream(whole)
                .per_field(per_part),
        );
        let stream = body.into_data_stream().map_err(std::io::Error::other);
        Some(multer::Multipart::with_constraints(
            stream,
            boundary,
            constraints,
        ))
    }

    /// Reads every multipart part (with [`MAX_BODY`] and [`MAX_PART`] limits).
    pub async fn parts(&mut self) -> Result<Vec<Part>, ApiError> {
        let Some(mut multipart) = self.multipart(MAX_BODY, MAX_PART) else {
            return Ok(Vec::new());
        };
        let mut parts = Vec::new();
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(multipart_error(e)),
            };
            let name = field.name().map(String::from);
            let filename = field.file_name().map(String::from);
            let content_type = field.content_type().map(|m| m.to_string());
            let data = field.bytes().await.map_err(multipart_error)?;
            parts.push(Part {
                name,
                filename,
                content_type,
                data,
            });
        }
        Ok(parts)
    }

    /// The multipart parts; at least one is required (Kubo's `file argument 'name' is required`).
    pub async fn files_required(&mut self, name: &str) -> Result<Vec<Part>, ApiError> {
        let parts = self.parts().await?;
        if parts.is_empty() {
            return Err(ApiError::bad_request(format!(
                "file argument '{name}' is required"
            )));
        }
        Ok(parts)
    }
}

/// A multipart failure as the client error Kubo-style clients expect.
pub fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { limit } => {
            ApiError::client(format!("request body is over the {limit}-byte limit"))
        }
        multer::Error::FieldSizeExceeded { limit, .. } => {
            ApiError::client(format!("a multipart part is over the {limit}-byte limit"))
        }
        other => ApiError::client(format!("malformed multipart body: {other}")),
    }
}

/// Kubo's multibase for pubsub: `u` + unpadded base64url.
pub fn multibase_encode(bytes: &[u8]) -> String {
    format!(
        "u{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Decodes a pubsub URL argument, which Kubo accepts only as multibase base64url.
pub fn multibase_decode(arg: &str) -> Result<Vec<u8>, ApiError> {
    let Some(rest) = arg.strip_prefix('u') else {
        return Err(if arg.is_empty() {
            ApiError::bad_request("URL arg must be multibase encoded")
        } else {
            ApiError::bad_request("URL arg must be base64url encoded")
        });
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(rest.trim_end_matches('='))
        .map_err(|_| ApiError::bad_request("URL arg must be base64url encoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_keeps_order_and_decodes() {
        let q = parse_query("arg=%2Fip4%2F1.2.3.4&arg=b+c&q=true&x").unwrap();
        assert_eq!(q[0], ("arg".into(), "/ip4/1.2.3.4".into()));
        assert_eq!(q[1], ("arg".into(), "b c".into()));
        assert_eq!(q[3], ("x".into(), "".into()));
        assert!(parse_query("arg=%zz").is_err());
        assert!(parse_query("arg=%f").is_err());
        assert!(parse_query("arg=%ff%fe").is_err(), "not UTF-8");
        // A '%' followed by a multi-byte character (the fuzzer's find) is an error, not a panic.
        let fuzzed = String::from_utf8_lossy(&[0x7e, 0x86, 0x25, 0xb4]).to_string();
        assert!(parse_query(&fuzzed).is_err());
        assert!(parse_query("arg=%é").is_err());
    }

    #[test]
    fn options_by_name_and_alias() {
        let r = CommandRequest::new(
            "pin/ls",
            Some("t=direct&q=1&n=5&arg=x"),
            None,
            Body::empty(),
        )
        .unwrap();
        assert_eq!(r.opt(&["type", "t"]).unwrap(), Some("direct"));
        assert!(r.flag(&["quiet", "q"], false).unwrap());
        assert_eq!(r.int(&["num", "n"], 20).unwrap(), 5);
        assert_eq!(r.arg(0, "cid").unwrap(), "x");
        assert!(
            r.arg(1, "other")
                .unwrap_err()
                .to_string()
                .contains("\"other\" is required")
        );
        let r = CommandRequest::new("x", Some("q=maybe&n=x&t=1&t=2"), None, Body::empty()).unwrap();
        assert!(r.flag(&["q"], false).is_err());
        assert!(r.int(&["n"], 0).is_err());
        assert!(
            r.opt(&["t"])
                .unwrap_err()
                .to_string()
                .contains("only a single value")
        );
    }
}
