//! Records made by other implementations, with the outcome the spec expects for each.
//!
//! The files in `tests/data/` are copied byte for byte from ipfs/gateway-conformance
//! (commit 22c76440f8b5929bd14ff08bf79cb2f83669b629, see `tests/data/README.md`):
//!
//! - `fixtures/ipns_records/*.ipns-record`: the IPNS spec's test vectors ("Appendix: Notes for
//!   Implementers / Test Vectors" of <https://specs.ipfs.tech/ipns/ipns-record/>, the files the
//!   spec links on dweb.link), made with boxo's `ipns.NewRecord` and then altered by its
//!   `generator/main.go`; ed25519 keys, EOL 2123-08-14, TTL 30 minutes, sequence 0.
//! - `fixtures/subdomain_gateway/*.ipns-record`: records made with Kubo (`ipfs name publish`),
//!   one ed25519 (`12D3KooW...`) and one RSA-2048 with the key embedded (`QmVujd...`), EOL
//!   2123-04-12.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_ipns::proto::IpnsEntry;
use cairn_ipns::record::signature_v1_payload;
use cairn_ipns::{IpnsError, IpnsRecord, Name, validate, validate_routing_record};
use libp2p::identity::Keypair;
use prost::Message;

/// A fixed "now" (2026-12-01T00:00:00Z) so the tests do not depend on the clock.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_083_200)
}

fn vector(file: &str) -> (Name, Vec<u8>) {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = file.split(['_', '.']).next().unwrap();
    (Name::parse(name).unwrap(), bytes)
}

/// Decodes and validates a vector: what a resolver does with it.
fn check(file: &str) -> Result<IpnsRecord, IpnsError> {
    let (name, bytes) = vector(file);
    let record = IpnsRecord::decode(&bytes)?;
    validate(&record, &name.peer_id(), now())?;
    // The DHT validator agrees, and the record keeps its bytes.
    let again = validate_routing_record(&name.routing_key(), &bytes, now())?;
    assert_eq!(again.to_bytes(), bytes);
    Ok(record)
}

const V1_ONLY: &str =
    "k51qzi5uqu5dm4tm0wt8srkg9h9suud4wuiwjimndrkydqm81cqtlb5ak6p7ku_v1.ipns-record";
const V1_V2: &str =
    "k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w_v1-v2.ipns-record";
const BROKEN_V1_VALUE: &str = "k51qzi5uqu5dlmit2tuwdvnx4sbnyqgmvbxftl0eo3f33wwtb9gr7yozae9kpw_v1-v2-broken-v1-value.ipns-record";
const BROKEN_SIG_V2: &str = "k51qzi5uqu5diamp7qnnvs1p1gzmku3eijkeijs3418j23j077zrkok63xdm8c_v1-v2-broken-signature-v2.ipns-record";
const BROKEN_SIG_V1: &str = "k51qzi5uqu5dilgf7gorsh9vcqqq4myo6jd4zmqkuy9pxyxi5fua3uf7axph4y_v1-v2-broken-signature-v1.ipns-record";
const V2_ONLY: &str =
    "k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f_v2.ipns-record";
const KUBO_ED25519: &str = "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d.ipns-record";
const KUBO_RSA: &str = "QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3.ipns-record";

#[test]
fn spec_vector_1_v1_only_is_invalid() {
    assert_eq!(check(V1_ONLY).unwrap_err(), IpnsError::DataMissing);
}

#[test]
fn spec_vector_2_v1_v2_is_valid() {
    let record = check(V1_V2).unwrap();
    assert_eq!(record.value(), b"/ipfs/bafkqaddwgevxmmraojswg33smq");
    assert_eq!(
        record.value_path().unwrap(),
        "/ipfs/bafkqaddwgevxmmraojswg33smq"
    );
    assert_eq!(record.sequence(), 0);
    assert_eq!(record.ttl(), Some(Duration::from_secs(30 * 60)));
    assert_eq!(record.validity_bytes(), b"2123-08-14T12:17:03.694052Z");
    assert!(record.signature_v1().is_some() && record.public_key_bytes().is_none());
}

#[test]
fn spec_vector_3_v1_value_differing_from_v2_is_invalid() {
    assert_eq!(
        check(BROKEN_V1_VALUE).unwrap_err(),
        IpnsError::FieldMismatch { field: "Value" }
    );
}

#[test]
fn spec_vector_4_broken_signature_v2_is_invalid() {
    assert_eq!(check(BROKEN_SIG_V2).unwrap_err(), IpnsError::Signature);
}

#[test]
fn spec_vector_5_broken_signature_v1_is_valid() {
    let record = check(BROKEN_SIG_V1).unwrap();
    assert_eq!(
        record.value(),
        b"/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmi"
    );
}

#[test]
fn spec_vector_6_v2_only_is_valid() {
    let record = check(V2_ONLY).unwrap();
    assert_eq!(record.value(), b"/ipfs/bafkqadtwgiww63tmpeqhezldn5zgi");
    assert!(record.signature_v1().is_none() && record.entry().value.is_none());
}

#[test]
fn kubo_ed25519_record_is_valid() {
    let record = check(KUBO_ED25519).unwrap();
    assert_eq!(
        record.value(),
        b"/ipfs/bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
    );
    assert!(record.public_key_bytes().is_none());
}

#[test]
fn kubo_rsa_record_with_embedded_key_is_valid() {
    let record = check(KUBO_RSA).unwrap();
    assert!(record.public_key_bytes().is_some());
    assert_eq!(record.signature_v2().unwrap().len(), 256);
    // Under another name the embedded key does not match.
    let (other, _) = vector(KUBO_ED25519);
    assert_eq!(
        validate(&record, &other.peer_id(), now()).unwrap_err(),
        IpnsError::PublicKeyMismatch
    );
}

#[test]
fn vectors_expire_at_their_eol() {
    let (name, bytes) = vector(V1_V2);
    let record = IpnsRecord::decode(&bytes).unwrap();
    let eol = record.validity().unwrap();
    validate(&record, &name.peer_id(), eol).unwrap();
    let err = validate(&record, &name.peer_id(), eol + Duration::from_nanos(1)).unwrap_err();
    assert!(matches!(err, IpnsError::Expired { .. }), "{err}");
}

/// The legacy V1 signature of boxo's records verifies over our V1 payload (`value ++ validity ++
/// "EOL"`), so records created here are readable by pre-0.9 go-ipfs.
#[test]
fn signature_v1_payload_matches_boxo() {
    // (Not the broken-value vector: its V1 value was changed after signing.)
    for file in [V1_V2, BROKEN_SIG_V2, KUBO_ED25519, KUBO_RSA] {
        let (name, bytes) = vector(file);
        let record = IpnsRecord::decode(&bytes).unwrap();
        let key = record.public_key(&name.peer_id()).unwrap();
        let payload = signature_v1_payload(record.entry());
        assert!(
            key.verify(&payload, record.signature_v1().unwrap()),
            "{file}"
        );
    }
}

/// Every vector re-encodes to its exact bytes through our protobuf structs (field order,
/// presence of `validityType = 0`).
#[test]
fn protobuf_layout_matches_go() {
    for file in [
        V1_ONLY,
        V1_V2,
        BROKEN_V1_VALUE,
        BROKEN_SIG_V2,
        BROKEN_SIG_V1,
        V2_ONLY,
        KUBO_ED25519,
        KUBO_RSA,
    ] {
        let (_, bytes) = vector(file);
        let entry = IpnsEntry::decode(bytes.as_slice()).unwrap();
        assert_eq!(entry.encode_to_vec(), bytes, "{file}");
    }
}

/// A record created here from a vector's values is the vector, byte for byte, once the
/// signatures (random keys on their side) are swapped in: same DAG-CBOR `data`, same validity
/// string, same protobuf fields in the same order.
#[test]
fn created_records_are_laid_out_as_boxo_and_kubo_lay_them_out() {
    let key = Keypair::generate_ed25519();
    for (file, v1) in [(V1_V2, true), (V2_ONLY, false), (KUBO_ED25519, true)] {
        let (_, bytes) = vector(file);
        let theirs = IpnsRecord::decode(&bytes).unwrap();
        let ours = IpnsRecord::create(
            &key,
            theirs.value(),
            theirs.sequence(),
            theirs.validity().unwrap(),
            theirs.ttl().unwrap(),
            v1,
            false,
        )
        .unwrap();
        assert_eq!(ours.data(), theirs.data(), "{file}: data");
        let mut entry = ours.entry().clone();
        entry.signature_v1 = theirs.entry().signature_v1.clone();
        entry.signature_v2 = theirs.entry().signature_v2.clone();
        assert_eq!(entry.encode_to_vec(), bytes, "{file}: protobuf");
    }
}
