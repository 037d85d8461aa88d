//! `refs` (Kubo's RefWriter rules: unique, max-depth, format, edges) and the dag codecs
//! (`dag get`/`dag put` forms of dag-pb, dag-cbor, dag-json and raw).

mod common;

use cairn_unixfs::codec::{self, decode, encode, transcode};
use cairn_unixfs::refs::{RefsOptions, refs};
use cairn_unixfs::{Cid, UnixfsError};
use common::*;
use futures::{StreamExt, TryStreamExt};

async fn lines(store: &MemStore, roots: Vec<Cid>, opts: RefsOptions) -> Vec<String> {
    refs(store, roots, opts).try_collect().await.unwrap()
}

fn opts(
    format: Option<&str>,
    edges: bool,
    unique: bool,
    recursive: bool,
    depth: Option<i64>,
) -> RefsOptions {
    RefsOptions::from_flags(format, edges, unique, recursive, depth).unwrap()
}

/// root[ a: A[x, y], b: B[ c: A ] ]
fn shared_dag(store: &MemStore) -> (Cid, Cid, Cid, Cid, Cid) {
    let x = put_raw(store, b"xxxx");
    let y = put_raw(store, b"yy");
    let a = put_pb(
        store,
        unixfs_data(2, None, Some(6), &[4, 2]),
        vec![("", x, 4), ("", y, 2)],
    );
    let b = put_pb(store, unixfs_data(1, None, None, &[]), vec![("c", a, 10)]);
    let root = put_pb(
        store,
        unixfs_data(1, None, None, &[]),
        vec![("a", a, 10), ("b", b, 20)],
    );
    (root, a, b, x, y)
}

#[tokio::test]
async fn refs_follows_kubos_rules() {
    let store = MemStore::default();
    let (root, a, b, x, y) = shared_dag(&store);
    let s = |c: &[Cid]| c.iter().map(Cid::to_string).collect::<Vec<_>>();

    assert_eq!(
        lines(&store, vec![root], opts(None, false, false, false, None)).await,
        s(&[a, b])
    );
    assert_eq!(
        lines(&store, vec![root], opts(None, false, false, true, None)).await,
        s(&[a, x, y, b, a, x, y])
    );
    assert_eq!(
        lines(&store, vec![root], opts(None, false, true, true, None)).await,
        s(&[a, x, y, b])
    );
    assert_eq!(
        lines(&store, vec![root], opts(None, false, false, true, Some(2))).await,
        s(&[a, x, y, b, a])
    );
    assert_eq!(
        lines(&store, vec![root], opts(None, false, false, true, Some(0))).await,
        s(&[])
    );
    assert_eq!(
        lines(&store, vec![root], opts(None, true, false, false, None)).await,
        vec![format!("{root} -> {a}"), format!("{root} -> {b}")]
    );
    assert_eq!(
        lines(
            &store,
            vec![root, b],
            opts(Some("<linkname>: <src>/<dst>"), false, false, false, None)
        )
        .await,
        vec![
            format!("a: {root}/{a}"),
            format!("b: {root}/{b}"),
            format!("c: {b}/{a}")
        ]
    );
    let err = RefsOptions::from_flags(Some("<src>"), true, false, false, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "using format argument with edges is not allowed"
    );
}

#[tokio::test]
async fn unique_refs_under_a_depth_limit_explore_a_cid_again_when_met_higher() {
    // root[ a: B[ c: A[x, y] ], b: A ] (dag-pb sorts links by name): A is first met at depth 2 (its children cut off by
    // max-depth 2), then at depth 1, where Kubo explores it again without printing it twice.
    let store = MemStore::default();
    let (_, a, b, x, y) = shared_dag(&store);
    let root = put_pb(
        &store,
        unixfs_data(1, None, None, &[]),
        vec![("a", b, 20), ("b", a, 10)],
    );
    let got = lines(&store, vec![root], opts(None, false, true, true, Some(2))).await;
    let want: Vec<String> = [b, a, x, y].iter().map(Cid::to_string).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn refs_end_with_the_error() {
    let store = MemStore::default();
    let (root, a, b, x, _) = shared_dag(&store);
    store.remove(&x);
    let got: Vec<_> = refs(&store, vec![root], opts(None, false, false, true, None))
        .collect()
        .await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].as_ref().unwrap(), &a.to_string());
    assert!(matches!(got[1], Err(UnixfsError::BlockNotFound(c)) if c == x));
    let _ = b;
}

#[test]
fn dag_pb_in_dag_json_has_kubos_shape() {
    let store = MemStore::default();
    let leaf = put_raw(&store, b"hi");
    let node = ipld_dagpb::PbNode {
        links: vec![ipld_dagpb::PbLink {
            cid: leaf,
            name: Some("f".into()),
            size: Some(2),
        }],
        data: Some(bytes::Bytes::from_static(&[8, 1])),
    }
    .into_bytes();
    let json = String::from_utf8(transcode(0x70, &node, 0x0129).unwrap()).unwrap();
    assert_eq!(
        json,
        format!(
            r#"{{"Data":{{"/":{{"bytes":"CAE"}}}},"Links":[{{"Hash":{{"/":"{leaf}"}},"Name":"f","Tsize":2}}]}}"#
        )
    );
    // And back: dag-json in the dag-pb shape encodes to the same dag-pb bytes.
    assert_eq!(transcode(0x0129, json.as_bytes(), 0x70).unwrap(), node);
    // An empty UnixFS directory, as `dag get` shows it.
    let empty = ipld_dagpb::PbNode {
        links: vec![],
        data: Some(bytes::Bytes::from_static(&[8, 1])),
    }
    .into_bytes();
    assert_eq!(
        transcode(0x70, &empty, 0x0129).unwrap(),
        br#"{"Data":{"/":{"bytes":"CAE"}},"Links":[]}"#
    );
}

#[test]
fn dag_json_and_dag_cbor_round_trip() {
    let link = "bafkreidon73zkcrwdb5iafqtijxildoonbwnpv7dyd6ef3qdgads2jc4su";
    let input = format!(
        r#"{{"z":1,"a":[1,-2,2.5,"s",null,true],"b":{{"/":{{"bytes":"AQID"}}}},"l":{{"/":"{link}"}}}}"#
    );
    let cbor = transcode(0x0129, input.as_bytes(), 0x71).unwrap();
    let back = String::from_utf8(transcode(0x71, &cbor, 0x0129).unwrap()).unwrap();
    // Keys sorted, no whitespace.
    assert_eq!(
        back,
        format!(
            r#"{{"a":[1,-2,2.5,"s",null,true],"b":{{"/":{{"bytes":"AQID"}}}},"l":{{"/":"{link}"}},"z":1}}"#
        )
    );
    // Padded base64 is accepted on input.
    let padded = decode(0x0129, br#"{"/":{"bytes":"AQ=="}}"#).unwrap();
    assert_eq!(padded, ipld_core::ipld::Ipld::Bytes(vec![1]));
    // Raw is bytes.
    assert_eq!(
        transcode(0x55, b"\x01\x02\x03", 0x0129).unwrap(),
        br#"{"/":{"bytes":"AQID"}}"#
    );
    assert!(encode(0x55, &decode(0x0129, b"{}").unwrap()).is_err());
    // Misused "/" keys and bad links are refused.
    for bad in [
        &br#"{"/":"notacid"}"#[..],
        br#"{"/":"x","y":1}"#,
        br#"{"/":{"bytes":"!!"}}"#,
        br#"{"/":3}"#,
    ] {
        assert!(
            decode(0x0129, bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(decode(0x71, b"\xff\xff").is_err());
    assert!(decode(0x70, b"\xff\xff").is_err());
    assert!(codec::codec_from_name("dag-nonsense").is_err());
}

#[test]
fn dag_put_stores_dag_cbor_with_a_cidv1() {
    let block = codec::dag_put(br#"{"hello":"world"}"#, 0x0129, 0x71).unwrap();
    assert_eq!(block.cid().codec(), 0x71);
    assert_eq!(block.cid().version(), cid::Version::V1);
    assert_eq!(
        decode(0x71, block.data()).unwrap(),
        decode(0x0129, br#"{"hello":"world"}"#).unwrap()
    );
    // Kubo's `echo '{"hello":"world"}' | ipfs dag put`.
    assert_eq!(
        block.cid().to_string(),
        "bafyreidykglsfhoixmivffc5uwhcgshx4j465xwqntbmu43nb2dzqwfvae"
    );
}
