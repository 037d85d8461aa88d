//! The Bitswap message decoder (protobuf, CIDs, CID prefixes, block hashing) and the stream
//! framing, fed arbitrary bytes: never panics, and what decodes re-encodes for every protocol
//! version to something that decodes again. The same bytes also go in as UTF-8 text (lossily
//! converted, so multi-byte characters appear in every input), the form a text-shaped peer bug
//! would take. Run: `cargo +nightly fuzz run bitswap_message`.
#![no_main]
use cairn_bitswap::message::{BitswapMessage, ProtocolVersion, read_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for input in [data, text.as_bytes()] {
        check(input);
    }
});

fn check(input: &[u8]) {
    if let Ok(msg) = BitswapMessage::decode(input) {
        for v in ProtocolVersion::ALL {
            let again = BitswapMessage::decode(&msg.encode(v)).expect("our own encoding decodes");
            if v == ProtocolVersion::V120 {
                assert_eq!(again.wants.len(), msg.wants.len());
                assert_eq!(again.presences, msg.presences);
            }
        }
    }
    // The same bytes as a stream of length-prefixed frames, with a small limit.
    let mut reader = futures::io::Cursor::new(input);
    futures::executor::block_on(async {
        while let Ok(Some(frame)) = read_frame(&mut reader, 4096).await {
            let _ = BitswapMessage::decode(&frame);
        }
    });
}
