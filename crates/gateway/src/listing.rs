//! The HTML listing of a directory without `index.html`: names (linked), sizes and CIDs, with
//! a link to the parent. Streamed row by row, so a HAMT directory of a million entries is
//! never held in memory; sizes are the links' `Tsize` (no entry block is read).

use bytes::Bytes;
use cairn_node_core::unixfs::exporter::DirEntry;
use cairn_node_core::{ByteStream, NodeError};
use cid::Cid;
use futures::StreamExt;
use futures::stream::BoxStream;

/// Characters escaped in a link target (RFC 3986 path segment).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A size in SI units, as boxo's listing prints it (`1.2 kB`).
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%}td,th{padding:.3em .6em;text-align:left;\
border-bottom:1px solid #ddd}td.size{text-align:right;white-space:nowrap}\
code{font-size:.85em;color:#555}";

/// The listing page of directory `cid` served at `path` (which ends with `/`), streamed.
pub(crate) fn page(
    path: &str,
    cid: Cid,
    has_parent: bool,
    entries: BoxStream<'static, Result<DirEntry, NodeError>>,
) -> ByteStream {
    let title = escape(&percent_encoding::percent_decode_str(path).decode_utf8_lossy());
    let mut head = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body>\n<h1>Index of {title}</h1>\n\
         <p><code>{cid}</code></p>\n<table>\n<tr><th>Name</th><th>Size</th><th>CID</th></tr>\n"
    );
    if has_parent {
        head.push_str("<tr><td><a href=\"..\">..</a></td><td></td><td></td></tr>\n");
    }
    let rows = entries.map(|entry| {
        entry.map(|e| {
            let href = percent_encoding::utf8_percent_encode(&e.name, SEGMENT).to_string();
            Bytes::from(format!(
                "<tr><td><a href=\"{href}\">{}</a></td><td class=\"size\">{}</td>\
                 <td><a href=\"/ipfs/{cid}?filename={href}\"><code>{cid}</code></a></td></tr>\n",
                escape(&e.name),
                human(e.tsize),
                cid = e.cid,
            ))
        })
    });
    futures::stream::once(async move { Ok(Bytes::from(head)) })
        .chain(rows)
        .chain(futures::stream::once(async {
            Ok(Bytes::from_static(b"</table>\n</body></html>\n"))
        }))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sizes() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(human(999), "999 B");
        assert_eq!(human(1_234), "1.2 kB");
        assert_eq!(human(10_485_760), "10.5 MB");
    }
}
