//! Files and DAGs through `Node`: `cat` (whole and ranged), `get` (tar), `resolve`, `refs`, and a
//! CAR export from one node imported into another, between real nodes on 127.0.0.1 where the
//! blocks must come over Bitswap.

mod common;

use std::io::Read;

use cairn_node_core::unixfs::refs::RefsOptions;
use cairn_node_core::unixfs::tar::GetOptions;
use cairn_node_core::{ByteStream, FetchOptions, NodeError};
use common::files::{content, import, sha256};
use common::{link, node};
use futures::StreamExt;

async fn collect(mut s: ByteStream) -> Result<Vec<u8>, NodeError> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_get_refs_and_car_between_nodes() -> anyhow::Result<()> {
    let (a, b) = (node(false).await, node(false).await);
    // 3 MiB + 5 bytes: 13 chunks of 256 KiB, the last partial.
    let data = content((3 << 20) + 5, 7);
    let (root, blocks) = import(&a, &data).await;
    let path = format!("/ipfs/{root}");

    // Offline, b has nothing: Kubo's offline error names the root.
    let err = b
        .cat(&path, 0, None, FetchOptions::offline())
        .await
        .err()
        .expect("offline cat of a missing file fails");
    assert!(
        err.to_string()
            .starts_with("block was not found locally (offline)"),
        "{err}"
    );

    link(&a, &b).await;
    // A range across a chunk boundary, fetched over Bitswap without the rest of the file.
    let (size, s) = b
        .cat(&path, (256 << 10) - 3, Some(10), FetchOptions::default())
        .await?;
    assert_eq!(size, data.len() as u64);
    assert_eq!(collect(s).await?, data[(256 << 10) - 3..(256 << 10) + 7]);
    assert!(
        b.local_block(blocks.last().unwrap().cid()).await?.is_some(),
        "the root was fetched"
    );
    let (_, s) = b.cat(&path, 0, None, FetchOptions::default()).await?;
    assert_eq!(sha256(&collect(s).await?), sha256(&data));
    // Now everything is local: an offline read works, and an offset past the end is refused.
    let (_, s) = b
        .cat(
            &root.to_string(),
            data.len() as u64 - 2,
            None,
            FetchOptions::offline(),
        )
        .await?;
    assert_eq!(collect(s).await?, data[data.len() - 2..]);

    // get: a tar with one file named after the CID, holding the bytes.
    let tar = collect(
        b.get(
            &path,
            GetOptions {
                archive: false,
                compression: None,
                mtime: 0,
            },
            FetchOptions::offline(),
        )
        .await?,
    )
    .await?;
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entries = archive.entries()?;
    let mut entry = entries.next().expect("one entry")?;
    assert_eq!(entry.path()?.to_string_lossy(), root.to_string());
    let mut got = Vec::new();
    entry.read_to_end(&mut got)?;
    assert_eq!(sha256(&got), sha256(&data));
    drop(entry);
    assert!(entries.next().is_none(), "only the file");

    // refs: every leaf under the root, once each, in link order.
    let refs: Vec<String> = b
        .refs(
            vec![root],
            RefsOptions::from_flags(None, false, true, true, None)?,
            FetchOptions::offline(),
        )
        .map(|r| r.unwrap())
        .collect()
        .await;
    let leaves: Vec<String> = blocks[..blocks.len() - 1]
        .iter()
        .map(|b| b.cid().to_string())
        .collect();
    assert_eq!(refs, leaves);

    // resolve of a bare CID is itself; a path under a file has no such link.
    assert_eq!(b.resolve(&path, FetchOptions::offline()).await?.cid, root);
    assert!(
        b.resolve(&format!("{path}/nope"), FetchOptions::offline())
            .await
            .is_err()
    );

    // CAR: exported by b, imported by a third node that has never been connected to anyone.
    let car = collect(b.export_car(vec![root], FetchOptions::offline())).await?;
    let c = node(false).await;
    let imported = c.import_car(&car[..]).await?;
    assert_eq!(imported.roots, vec![root]);
    assert_eq!(imported.blocks, blocks.len() as u64);
    let (_, s) = c.cat(&path, 0, None, FetchOptions::offline()).await?;
    assert_eq!(sha256(&collect(s).await?), sha256(&data));
    // A truncated CAR stores what came before the cut and reports the cut.
    let d = node(false).await;
    assert!(d.import_car(&car[..car.len() - 100]).await.is_err());
    Ok(())
}

/// `Provide.Strategy` `mfs`: the reprovider announces the MFS tree's blocks, not other content;
/// `pinned+mfs` adds the pins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mfs_provide_strategy_selects_the_files_tree() -> anyhow::Result<()> {
    use cairn_node_core::unixfs::mfs::WriteOptions;
    for (strategy, pinned_too) in [("mfs", false), ("pinned+mfs", true)] {
        let mut config =
            cairn_node_core::Config::with_identity(cairn_node_core::repo::new_identity().1);
        config.extra.insert(
            "Provide".into(),
            serde_json::json!({ "Strategy": strategy }),
        );
        let n = cairn_node_core::Node::builder()
            .config(config)
            .profile(cairn_node_core::Profile::Test)
            .build()
            .await?;
        // Outside the MFS: an imported, pinned file of 2 blocks and more.
        let (outside, _) = import(&n, &content(600 << 10, 3)).await;
        n.pin(&outside, cairn_blockstore::PinMode::Recursive)
            .await?;
        let mut w = WriteOptions::default();
        w.create = true;
        w.parents = true;
        // 600 KiB in the MFS: 3 leaves under a file node, a directory, the root.
        n.files_write("/d/f", &content(600 << 10, 4), &w, FetchOptions::default())
            .await?;
        let root = n.files_stat("/", FetchOptions::default()).await?.hash;
        let mfs_blocks = n.blockstore()?.reachable_stored(&root)?.len() as u64;
        assert_eq!(mfs_blocks, 1 + 1 + 1 + 3, "root, /d, /d/f and its leaves");
        // `pinned` selects every block of the pinned DAGs (the root and its 3 leaves here).
        let pins = if pinned_too {
            let all = n.blockstore()?.pins(cairn_blockstore::PinFilter::All)?;
            assert_eq!(all.len(), 4);
            4
        } else {
            0
        };
        assert_eq!(n.reprovide().await?, mfs_blocks + pins, "{strategy}");
    }
    Ok(())
}
