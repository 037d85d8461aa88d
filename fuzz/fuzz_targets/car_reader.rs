//! The CAR reader on arbitrary bytes (CARv1 or CARv2): reading the header and every section
//! returns an error or hash-checked blocks, never panics or allocates past the section limit.
//! Run: `cargo +nightly fuzz run car_reader`.
#![no_main]
use cairn_unixfs::car::CarReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    futures::executor::block_on(async {
        let Ok(mut reader) = CarReader::new(input).await else { return };
        let _ = reader.roots();
        while let Ok(Some(block)) = reader.next_block().await {
            assert!(cairn_blockstore::verify(block.cid(), block.data()).is_ok());
        }
    });
});
