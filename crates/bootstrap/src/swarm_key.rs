//! Kubo's `swarm.key`: the pre-shared key of a private network.
//!
//! ```text
//! /key/swarm/psk/1.0.0/
//! /base16/
//! <64 hex digits>
//! ```
//! go-libp2p also accepts `/base64/` and `/bin/` encodings; so does this parser (libp2p-pnet's own
//! parser takes only `/base16/`).

use libp2p::pnet::PreSharedKey;

use crate::error::BootstrapError;

const HEADER: &str = "/key/swarm/psk/1.0.0/";

/// Parses a swarm key file's bytes, with an error that says what is wrong.
pub fn parse_swarm_key(bytes: &[u8]) -> Result<PreSharedKey, BootstrapError> {
    let bad = |m: String| BootstrapError::InvalidSwarmKey(m);
    let (header, rest) = split_line(bytes).ok_or_else(|| bad("the file is empty".into()))?;
    if header != HEADER.as_bytes() {
        return Err(bad(format!(
            "the first line must be {HEADER:?}, found {:?}",
            String::from_utf8_lossy(&header[..header.len().min(64)])
        )));
    }
    let (encoding, body) =
        split_line(rest).ok_or_else(|| bad("the encoding line (/base16/) is missing".into()))?;
    let key: Vec<u8> = match encoding {
        b"/base16/" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| bad("the key is not text".into()))?
                .trim();
            // Check characters, never byte offsets: a multi-byte character must be named in
            // the error, not split by a slice (which panics).
            if let Some((at, c)) = text
                .chars()
                .enumerate()
                .find(|(_, c)| !c.is_ascii_hexdigit())
            {
                return Err(bad(format!(
                    "the key has {c:?} (U+{:04X}) at character {}, which is not a hex digit",
                    u32::from(c),
                    at + 1
                )));
            }
            // Only ASCII hex digits are left, so bytes and characters agree from here.
            if text.len() != 64 {
                return Err(bad(format!(
                    "a base16 key has 64 hex digits, found {}",
                    text.len()
                )));
            }
            decode_hex(text.as_bytes())
        }
        b"/base64/" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| bad("the key is not text".into()))?
                .trim();
            decode_base64(text).ok_or_else(|| bad("the key is not valid base64".into()))?
        }
        b"/bin/" => body.to_vec(),
        other => {
            return Err(bad(format!(
                "unknown encoding {:?} (expected /base16/, /base64/ or /bin/)",
                String::from_utf8_lossy(&other[..other.len().min(64)])
            )));
        }
    };
    let key: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| bad(format!("the key must be 32 bytes, found {}", key.len())))?;
    Ok(PreSharedKey::new(key))
}

/// Formats a key as Kubo's `ipfs-swarm-key-gen` writes it.
pub fn format_swarm_key(key: &[u8; 32]) -> String {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    format!("{HEADER}\n/base16/\n{hex}\n")
}

/// Splits off the first line (without `\n` or `\r\n`).
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    if bytes.is_empty() {
        return None;
    }
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let line = bytes[..end].strip_suffix(b"\r").unwrap_or(&bytes[..end]);
    Some((line, bytes.get(end + 1..).unwrap_or_default()))
}

/// Decodes ASCII hex digit pairs (the caller has checked every byte is one).
fn decode_hex(digits: &[u8]) -> Vec<u8> {
    // `to_digit` is at most 15 here, so the narrowing cannot lose bits.
    let value = |d: u8| char::from(d).to_digit(16).unwrap_or(0) as u8;
    digits
        .chunks_exact(2)
        .map(|pair| value(pair[0]) << 4 | value(pair[1]))
        .collect()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubo_format_round_trips_and_fingerprints() {
        let key = [0xab; 32];
        let psk = parse_swarm_key(format_swarm_key(&key).as_bytes()).unwrap();
        assert_eq!(psk, PreSharedKey::new(key));
        assert_eq!(psk.fingerprint().to_string().len(), 32);
        // Windows line ends and no final newline are fine.
        let crlf = format_swarm_key(&key).replace('\n', "\r\n");
        assert_eq!(parse_swarm_key(crlf.trim_end().as_bytes()).unwrap(), psk);
    }

    #[test]
    fn base64_and_bin_encodings() {
        let key = [7u8; 32];
        let b64 = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        assert_eq!(
            parse_swarm_key(format!("{HEADER}\n/base64/\n{b64}\n").as_bytes()).unwrap(),
            PreSharedKey::new(key)
        );
        let mut bin = format!("{HEADER}\n/bin/\n").into_bytes();
        bin.extend_from_slice(&key);
        assert_eq!(parse_swarm_key(&bin).unwrap(), PreSharedKey::new(key));
    }

    /// The reported panic: a 64-byte key line of `a`, `â` (two bytes) and 61 hex digits.
    #[test]
    fn a_multi_byte_character_is_named_not_sliced() {
        let line = format!("a\u{e2}{}", "0".repeat(61));
        assert_eq!(line.len(), 64);
        let err = parse_swarm_key(format!("{HEADER}\n/base16/\n{line}\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid swarm key: the key has '\u{e2}' (U+00E2) at character 2, which is not a hex digit"
        );
        // Any position and width: never a panic, always the character's name.
        for c in ['\u{e2}', '\u{20ac}', '\u{1f600}', '\u{fffd}'] {
            for at in 0..64 {
                let mut digits: Vec<char> = "f".repeat(64).chars().collect();
                digits[at] = c;
                let text: String = digits.into_iter().collect();
                let err = parse_swarm_key(format!("{HEADER}\n/base16/\n{text}").as_bytes())
                    .unwrap_err()
                    .to_string();
                assert!(err.contains(&format!("at character {}", at + 1)), "{err}");
            }
        }
        // Upper-case hex is still a key.
        let upper = format!("{HEADER}\n/base16/\n{}\n", "AB".repeat(32));
        assert_eq!(
            parse_swarm_key(upper.as_bytes()).unwrap(),
            PreSharedKey::new([0xab; 32])
        );
    }

    #[test]
    fn malformed_keys_say_why() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"/key/swarm/psk/2.0.0/\n/base16/\n00", "first line"),
            (b"/key/swarm/psk/1.0.0/\n", "encoding line"),
            (b"/key/swarm/psk/1.0.0/\n/base32/\nxx", "unknown encoding"),
            (b"/key/swarm/psk/1.0.0/\n/base16/\nabcd", "64 hex digits, found 4"),
            (b"/key/swarm/psk/1.0.0/\n/base16/\nzz00000000000000000000000000000000000000000000000000000000000000", "'z' (U+007A) at character 1"),
            (b"/key/swarm/psk/1.0.0/\n/base64/\n!!!!", "base64"),
            (b"/key/swarm/psk/1.0.0/\n/bin/\nshort", "32 bytes, found 5"),
        ];
        for (input, why) in cases {
            let err = parse_swarm_key(input).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid swarm key: ") && err.contains(why),
                "{err}"
            );
        }
    }
}
