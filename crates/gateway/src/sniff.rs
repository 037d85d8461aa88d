//! Content types of served files: from the file name's extension first, then from the first
//! bytes, as boxo's gateway does (`mime.TypeByExtension`, then content sniffing).

/// How many leading bytes [`content_type`] looks at (the WHATWG sniffing window, as Go's
/// `http.DetectContentType` uses).
pub const SNIFF_LEN: usize = 512;

/// The `Content-Type` for a file called `name` (may be empty) starting with `head`: the
/// extension's type (text types with `charset=utf-8`), else a type recognised from magic
/// numbers, else HTML or plain text when the bytes look like it, else
/// `application/octet-stream`.
pub fn content_type(name: &str, head: &[u8]) -> String {
    if let Some(by_name) = by_extension(name) {
        return by_name;
    }
    if let Some(kind) = infer::get(head) {
        return with_charset(kind.mime_type());
    }
    if looks_like_html(head) {
        return "text/html; charset=utf-8".into();
    }
    if looks_like_text(head) {
        return "text/plain; charset=utf-8".into();
    }
    "application/octet-stream".into()
}

/// The `Content-Type` for a file name's extension, if the extension is a known one.
pub fn by_extension(name: &str) -> Option<String> {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .and_then(|ext| mime_guess::from_ext(ext).first())
        .map(|mime| with_charset(mime.essence_str()))
}

fn with_charset(essence: &str) -> String {
    if essence.starts_with("text/") || essence == "application/javascript" {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

/// The WHATWG HTML signatures (after leading whitespace), as Go's sniffer checks them.
fn looks_like_html(head: &[u8]) -> bool {
    let start = head
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' '))
        .unwrap_or(head.len());
    let rest = &head[start..];
    const TAGS: [&[u8]; 17] = [
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    TAGS.iter().any(|tag| {
        rest.len() > tag.len()
            && rest[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(rest[tag.len()], b' ' | b'>')
    })
}

/// No binary control bytes in the window (WHATWG's "binary data byte" set), as Go decides
/// between `text/plain` and `application/octet-stream`.
fn looks_like_text(head: &[u8]) -> bool {
    !head
        .iter()
        .any(|b| matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f))
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn by_name_then_bytes() {
        assert_eq!(content_type("a.html", b""), "text/html; charset=utf-8");
        assert_eq!(content_type("x.png", b""), "image/png");
        assert_eq!(content_type("x.json", b"{}"), "application/json");
        assert_eq!(
            content_type("", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            "image/png"
        );
        assert_eq!(
            content_type("", b"  <!doctype html><p>hi"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type("", b"hello\n"), "text/plain; charset=utf-8");
        assert_eq!(
            content_type("noext", b"\0\x01\x02"),
            "application/octet-stream"
        );
    }
}
