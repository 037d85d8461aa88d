//! Parsing a Kubo RPC request: the command path, repeated `arg` parameters, options by name or
//! alias, multipart/form-data file parts (read with size limits), and Kubo's global `offline` and
//! `timeout` options, parsed once here so every command honours them the same way.

use axum::body::Body;
use std::time::Duration;

use bytes::Bytes;
use cairn_node_core::FetchOptions;
use futures::TryStreamExt;

use base64::Engine as _;

use crate::client_gone::ClientGone;
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
    /// Kubo's global `offline` option: read only the local store.
    offline: bool,
    /// When Kubo's global `timeout` option runs out (it wraps the whole request, as Kubo's
    /// request context does).
    deadline: Option<tokio::time::Instant>,
    /// Tripped when the client has gone away (see [`crate::client_gone`]).
    client: ClientGone,
}

/// The longest `timeout` accepted (Go's `time.Duration` tops out near 292 years; this keeps
/// deadline arithmetic from overflowing).
const MAX_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a Go `time.Duration` string as `time.ParseDuration` does (`30s`, `1m30s`, `1.5h`,
/// `300ms`, `2us`, `0`); Kubo's `timeout` option is one. A negative duration is `Ok(None)`: in Go
/// it makes a context that has already expired. The error text is Go's.
pub fn parse_go_duration(text: &str) -> Result<Option<Duration>, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Some(Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {text:?}"))?;
        let number = &rest[..number_end];
        // Go wants a digit on at least one side of the dot.
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            unit => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        total += value * nanos_per_unit;
        rest = &rest[unit_end..];
    }
    if !total.is_finite() || total > MAX_TIMEOUT.as_nanos() as f64 {
        return Err(invalid());
    }
    if negative && total > 0.0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_nanos(total as u64)))
}

/// The fetch options, as of now, for an `offline` flag and a `timeout` deadline (for work that
/// outlives the request's parsing, such as a stream that fetches as it goes).
pub fn fetch_options_for(offline: bool, deadline: Option<tokio::time::Instant>) -> FetchOptions {
    if offline {
        return FetchOptions::offline();
    }
    FetchOptions::with_timeout(
        deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now())),
    )
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
        let mut req = CommandRequest {
            command: command.to_string(),
            args,
            options,
            body,
            offline: false,
            deadline: None,
            client: ClientGone::default(),
        };
        // Kubo's global options, parsed before the command runs; a bad value is a plain-text 400
        // as in go-ipfs-cmds' HTTP handler.
        req.offline = req.flag(&["offline"], false)?;
        req.deadline = match req.opt(&["timeout"])? {
            None => None,
            Some(t) => {
                let timeout = parse_go_duration(t).map_err(ApiError::bad_request)?;
                Some(tokio::time::Instant::now() + timeout.unwrap_or(Duration::ZERO))
            }
        };
        Ok(req)
    }

    /// The request as made by a client whose going away trips `client` (the server sets it from
    /// the connection; a request made otherwise has a client that never goes).
    pub fn with_client(mut self, client: ClientGone) -> Self {
        self.client = client;
        self
    }

    /// Tripped when this request's client has gone away.
    pub fn client(&self) -> &ClientGone {
        &self.client
    }

    /// Kubo's global `offline` option.
    pub fn offline(&self) -> bool {
        self.offline
    }

    /// When Kubo's global `timeout` option expires, if it was given.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// How the node may fetch blocks for this request: offline (local store only) if `offline`
    /// was set, else from the network until the `timeout` deadline.
    pub fn fetch_options(&self) -> FetchOptions {
        fetch_options_for(self.offline, self.deadline)
    }

    /// Every option as given, in order (name, value), for commands that take a family of
    /// options at once (`add`'s import options).
    pub fn options(&self) -> &[(String, String)] {
        &self.options
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

    /// The first positional argument, if any (for commands whose argument is optional).
    pub fn args_first(&self) -> Option<&str> {
        self.args.first().map(String::as_str)
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
        // The body itself failed (the client went away, or stalled past `BodyReadTimeout`):
        // say why, not just that it failed.
        multer::Error::StreamReadFailed(source) => {
            ApiError::client(format!("failed to read the request body: {source}"))
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

/// Decodes a pubsub topic or message argument as Kubo's `urlArgsDecoder` does: any multibase
/// string is decoded, then anything but base64url (`u`) is refused. Errors are Kubo's
/// (HTTP 500, JSON): `URL arg must be multibase encoded: <go-multibase's reason>` for a string
/// that does not decode, with Go's texts for the bases clients send (`encoding/hex: ...` for
/// `f`, `illegal base64 data at input byte N` for `u`), and `URL arg must be base64url encoded`
/// for another base.
pub fn multibase_decode(arg: &str) -> Result<Vec<u8>, ApiError> {
    use cid::multibase::Base;
    let undecodable =
        |reason: String| ApiError::command(format!("URL arg must be multibase encoded: {reason}"));
    let Some(code) = arg.chars().next() else {
        return Err(undecodable(
            "cannot decode multibase for zero length string".into(),
        ));
    };
    let base =
        Base::from_code(code).map_err(|_| undecodable("selected encoding not supported".into()))?;
    let body = &arg[code.len_utf8()..];
    match base {
        Base::Base64Url => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| undecodable(go_base64_error(body, e))),
        Base::Base16Lower | Base::Base16Upper => {
            go_hex_check(body).map_err(undecodable)?;
            Err(ApiError::command("URL arg must be base64url encoded"))
        }
        _ => match cid::multibase::decode(arg) {
            Err(e) => Err(undecodable(e.to_string())),
            Ok(_) => Err(ApiError::command("URL arg must be base64url encoded")),
        },
    }
}

/// Go's `base64.RawURLEncoding` error for `body`: `illegal base64 data at input byte N`.
fn go_base64_error(body: &str, e: base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => i,
        base64::DecodeError::InvalidLength(n) => n,
        base64::DecodeError::InvalidPadding => body.find('=').unwrap_or(body.len()),
    };
    format!("illegal base64 data at input byte {at}")
}

/// Go's `hex.DecodeString` check: the first byte that is not hex (`encoding/hex: invalid byte:
/// U+006F 'o'`), else an odd length.
fn go_hex_check(body: &str) -> Result<(), String> {
    let bytes = body.as_bytes();
    let pairs = bytes.len() / 2 * 2;
    // Go prints the byte as a rune with `%#U`: quoted only when `strconv.IsPrint`.
    let bad = |b: u8| {
        let c = char::from(b);
        let printable = !c.is_control() && (b == b' ' || !c.is_whitespace()) && b != 0xAD;
        if printable {
            format!("encoding/hex: invalid byte: U+{b:04X} '{c}'")
        } else {
            format!("encoding/hex: invalid byte: U+{b:04X}")
        }
    };
    if let Some(&b) = bytes[..pairs].iter().find(|b| !b.is_ascii_hexdigit()) {
        return Err(bad(b));
    }
    if pairs < bytes.len() {
        let last = bytes[pairs];
        return Err(if last.is_ascii_hexdigit() {
            "encoding/hex: odd length hex string".into()
        } else {
            bad(last)
        });
    }
    Ok(())
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
    fn go_durations_parse_like_go() {
        let d = |t: &str| parse_go_duration(t);
        assert_eq!(d("30s"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(d("1m30s"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(d("1.5h"), Ok(Some(Duration::from_secs(5400))));
        assert_eq!(d("300ms"), Ok(Some(Duration::from_millis(300))));
        assert_eq!(d("2us"), Ok(Some(Duration::from_micros(2))));
        assert_eq!(d("2µs"), Ok(Some(Duration::from_micros(2))));
        assert_eq!(d(".5s"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(d("0"), Ok(Some(Duration::ZERO)));
        assert_eq!(d("+1s"), Ok(Some(Duration::from_secs(1))));
        assert_eq!(d("-1s"), Ok(None));
        assert_eq!(d("abc").unwrap_err(), "time: invalid duration \"abc\"");
        assert_eq!(
            d("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
        assert_eq!(
            d("3x").unwrap_err(),
            "time: unknown unit \"x\" in duration \"3x\""
        );
        for bad in ["", "-", ".s", "1..2s", "s", "1e9s", "99999999999999999999h"] {
            assert!(d(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn global_options_are_parsed_once() {
        let r = CommandRequest::new("cat", Some("offline=true&timeout=2s"), None, Body::empty())
            .unwrap();
        assert!(r.offline());
        assert_eq!(r.fetch_options(), FetchOptions::offline());
        let r = CommandRequest::new("cat", Some("timeout=2s"), None, Body::empty()).unwrap();
        let left = r.fetch_options().timeout.unwrap();
        assert!(left <= Duration::from_secs(2) && left > Duration::from_secs(1));
        let bad = CommandRequest::new("cat", Some("timeout=soon"), None, Body::empty());
        assert!(matches!(bad, Err(ApiError::BadRequest(m)) if m.contains("invalid duration")));
        assert!(CommandRequest::new("cat", Some("offline=perhaps"), None, Body::empty()).is_err());
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
