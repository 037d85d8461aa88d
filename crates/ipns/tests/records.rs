//! Records created here: round trips for every key type, each refusal of the verification, the
//! ordering, names, and the DHT helpers.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_ipns::proto::IpnsEntry;
use cairn_ipns::record::signature_v2_payload;
use cairn_ipns::{
    IpnsError, IpnsRecord, MAX_RECORD_SIZE, Name, compare, peer_from_routing_key,
    public_key_routing_key, routing_key, select, select_best, validate, validate_public_key_record,
    validate_routing_record,
};
use ipld_core::ipld::Ipld;
use libp2p::identity::{Keypair, PeerId};
use prost::Message;

/// 2026-12-01T10:00:00Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_119_200)
}

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

const VALUE: &[u8] = b"/ipfs/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

/// The fixed RSA-2048 test key (PKCS#8 DER, made with `openssl genpkey -algorithm RSA
/// -pkeyopt rsa_keygen_bits:2048`, then `openssl pkcs8 -topk8 -nocrypt`: see tests/data/README.md).
fn rsa_key() -> Keypair {
    let mut der = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/rsa2048.pk8.der"
    ))
    .unwrap();
    Keypair::rsa_from_pkcs8(&mut der).unwrap()
}

fn create(key: &Keypair, sequence: u64, eol: SystemTime, v1: bool) -> IpnsRecord {
    IpnsRecord::create(
        key,
        VALUE,
        sequence,
        eol,
        Duration::from_secs(300),
        v1,
        false,
    )
    .unwrap()
}

fn peer(key: &Keypair) -> PeerId {
    key.public().to_peer_id()
}

/// Re-encodes `record` after `edit` changed its protobuf.
fn edited(record: &IpnsRecord, edit: impl FnOnce(&mut IpnsEntry)) -> Result<IpnsRecord, IpnsError> {
    let mut entry = record.entry().clone();
    edit(&mut entry);
    IpnsRecord::decode(&entry.encode_to_vec())
}

fn round_trip(key: &Keypair, embeds_key: bool) {
    for v1 in [true, false] {
        let eol = now() + hours(48) + Duration::from_nanos(123_456_789);
        let record = create(key, 7, eol, v1);
        let bytes = record.to_bytes();
        let decoded = IpnsRecord::decode(&bytes).unwrap();
        assert_eq!(decoded, record);
        validate(&decoded, &peer(key), now()).unwrap();
        validate_routing_record(&routing_key(&peer(key)), &bytes, now()).unwrap();
        assert_eq!(decoded.value(), VALUE);
        assert_eq!(decoded.sequence(), 7);
        assert_eq!(decoded.validity().unwrap(), eol);
        assert_eq!(decoded.validity_bytes(), b"2026-12-03T10:00:00.123456789Z");
        assert_eq!(decoded.ttl(), Some(Duration::from_secs(300)));
        assert_eq!(decoded.public_key_bytes().is_some(), embeds_key);
        assert_eq!(decoded.signature_v1().is_some(), v1);
        assert_eq!(decoded.entry().value.is_some(), v1);
        assert!(decoded.signature_v2().is_some());
    }
}

#[test]
fn ed25519_round_trip_without_embedded_key() {
    round_trip(&Keypair::generate_ed25519(), false);
}

#[test]
fn secp256k1_round_trip_without_embedded_key() {
    // secp256k1 keys (37 bytes encoded) are inlined in the peer id, as in go-libp2p.
    round_trip(&Keypair::generate_secp256k1(), false);
}

#[test]
fn rsa_round_trip_with_embedded_key() {
    let key = rsa_key();
    assert!(peer(&key).to_base58().starts_with("Qm"));
    round_trip(&key, true);
}

#[test]
fn ecdsa_round_trip_with_embedded_key() {
    round_trip(&Keypair::generate_ecdsa(), true);
}

#[test]
fn the_key_is_embedded_on_request() {
    let key = Keypair::generate_ed25519();
    let record = IpnsRecord::create(
        &key,
        VALUE,
        1,
        now() + hours(1),
        Duration::ZERO,
        false,
        true,
    )
    .unwrap();
    assert_eq!(
        record.public_key_bytes(),
        Some(key.public().encode_protobuf().as_slice())
    );
    validate(&record, &peer(&key), now()).unwrap();
}

#[test]
fn v1_only_records_are_refused() {
    let key = Keypair::generate_ed25519();
    let record = create(&key, 1, now() + hours(1), true);
    let v1_only = edited(&record, |e| {
        e.data = None;
        e.signature_v2 = None;
    });
    assert_eq!(v1_only.unwrap_err(), IpnsError::DataMissing);
    // With data but no V2 signature.
    let unsigned = edited(&record, |e| e.signature_v2 = None).unwrap();
    assert_eq!(
        validate(&unsigned, &peer(&key), now()).unwrap_err(),
        IpnsError::MissingSignatureV2
    );
}

#[test]
fn a_bad_v2_signature_is_refused() {
    let key = Keypair::generate_ed25519();
    let record = create(&key, 1, now() + hours(1), false);
    let mut signature = record.signature_v2().unwrap().to_vec();
    signature[0] ^= 1;
    let broken = edited(&record, |e| e.signature_v2 = Some(signature)).unwrap();
    assert_eq!(
        validate(&broken, &peer(&key), now()).unwrap_err(),
        IpnsError::Signature
    );
    // Signed by another key.
    let other = create(&Keypair::generate_ed25519(), 1, now() + hours(1), false);
    let forged = edited(&record, |e| {
        e.signature_v2 = other.entry().signature_v2.clone()
    })
    .unwrap();
    assert_eq!(
        validate(&forged, &peer(&key), now()).unwrap_err(),
        IpnsError::Signature
    );
}

/// A change to a record's protobuf.
type Edit = Box<dyn Fn(&mut IpnsEntry)>;

#[test]
fn v1_fields_differing_from_data_are_refused() {
    let key = Keypair::generate_ed25519();
    let record = create(&key, 5, now() + hours(1), true);
    let cases: [(&str, Edit); 5] = [
        (
            "Value",
            Box::new(|e| e.value = Some(b"/ipfs/bafkqaaa".to_vec())),
        ),
        (
            "Validity",
            Box::new(|e| e.validity = Some(b"2099-01-01T00:00:00Z".to_vec())),
        ),
        ("ValidityType", Box::new(|e| e.validity_type = Some(1))),
        ("Sequence", Box::new(|e| e.sequence = Some(6))),
        ("TTL", Box::new(|e| e.ttl = None)),
    ];
    for (field, edit) in cases {
        let broken = edited(&record, edit).unwrap();
        assert_eq!(
            validate(&broken, &peer(&key), now()).unwrap_err(),
            IpnsError::FieldMismatch { field },
            "{field}"
        );
    }
    // Only a V1 signature (no V1 value) still triggers the check.
    let sig_only = edited(&record, |e| {
        e.value = None;
    })
    .unwrap();
    assert_eq!(
        validate(&sig_only, &peer(&key), now()).unwrap_err(),
        IpnsError::FieldMismatch { field: "Value" }
    );
}

#[test]
fn expired_records_are_refused() {
    let key = Keypair::generate_ed25519();
    let record = create(&key, 1, now() - Duration::from_nanos(1), false);
    let err = validate(&record, &peer(&key), now()).unwrap_err();
    assert_eq!(
        err,
        IpnsError::Expired {
            eol: "2026-12-01T09:59:59.999999999Z".into()
        }
    );
    assert!(err.to_string().starts_with("record has expired"));
    // Valid up to and including its EOL.
    validate(&create(&key, 1, now(), false), &peer(&key), now()).unwrap();
}

#[test]
fn records_for_another_peer_are_refused() {
    let key = Keypair::generate_ed25519();
    let other = Keypair::generate_ed25519();
    let record = create(&key, 1, now() + hours(1), false);
    // The other name inlines another key, which the signature does not verify against.
    assert_eq!(
        validate(&record, &peer(&other), now()).unwrap_err(),
        IpnsError::Signature
    );
    // An embedded key must hash to the name.
    let rsa = rsa_key();
    let record = create(&rsa, 1, now() + hours(1), false);
    assert_eq!(
        validate(&record, &peer(&other), now()).unwrap_err(),
        IpnsError::PublicKeyMismatch
    );
    // An RSA name without the key in the record cannot be checked.
    let keyless = edited(&record, |e| e.pub_key = None).unwrap();
    assert_eq!(
        validate(&keyless, &peer(&rsa), now()).unwrap_err(),
        IpnsError::PublicKeyNotFound
    );
    // The DHT validator checks the record against the key it is stored under.
    let err = validate_routing_record(&routing_key(&peer(&other)), &record.to_bytes(), now());
    assert_eq!(err.unwrap_err(), IpnsError::PublicKeyMismatch);
}

#[test]
fn oversize_records_are_refused() {
    let key = Keypair::generate_ed25519();
    let big = vec![b'a'; MAX_RECORD_SIZE];
    let err = IpnsRecord::create(
        &key,
        &big,
        1,
        now() + hours(1),
        Duration::ZERO,
        false,
        false,
    )
    .unwrap_err();
    assert!(matches!(err, IpnsError::RecordTooLarge { .. }), "{err}");
    let err = IpnsRecord::decode(&vec![0; MAX_RECORD_SIZE + 1]).unwrap_err();
    assert_eq!(
        err,
        IpnsError::RecordTooLarge {
            size: MAX_RECORD_SIZE + 1
        }
    );
    // Exactly 10 KiB is accepted (boxo refuses `len(data) > MaxRecordSize`). Between 256 and
    // 16383 value bytes, the size grows by one per value byte (CBOR and protobuf headers fixed).
    let sized = |n: usize| {
        IpnsRecord::create(
            &key,
            &vec![b'a'; n],
            1,
            now() + hours(1),
            Duration::ZERO,
            false,
            false,
        )
    };
    let base = sized(1000).unwrap().as_bytes().len();
    let exact = sized(1000 + MAX_RECORD_SIZE - base).unwrap();
    assert_eq!(exact.as_bytes().len(), MAX_RECORD_SIZE);
    validate(&exact, &peer(&key), now()).unwrap();
    assert_eq!(
        sized(1001 + MAX_RECORD_SIZE - base).unwrap_err(),
        IpnsError::RecordTooLarge {
            size: MAX_RECORD_SIZE + 1
        }
    );
}

/// Signs a DAG-CBOR map as `data`, for records no well-behaved publisher makes.
fn signed_with_data(key: &Keypair, map: BTreeMap<String, Ipld>) -> Result<IpnsRecord, IpnsError> {
    let data = serde_ipld_dagcbor::to_vec(&Ipld::Map(map)).unwrap();
    let entry = IpnsEntry {
        signature_v2: Some(key.sign(&signature_v2_payload(&data)).unwrap()),
        data: Some(data),
        ..IpnsEntry::default()
    };
    IpnsRecord::decode(&entry.encode_to_vec())
}

fn fields(validity_type: i128, validity: &str, ttl: i128) -> BTreeMap<String, Ipld> {
    BTreeMap::from([
        ("Value".to_owned(), Ipld::Bytes(VALUE.to_vec())),
        (
            "Validity".to_owned(),
            Ipld::Bytes(validity.as_bytes().to_vec()),
        ),
        ("ValidityType".to_owned(), Ipld::Integer(validity_type)),
        ("Sequence".to_owned(), Ipld::Integer(1)),
        ("TTL".to_owned(), Ipld::Integer(ttl)),
    ])
}

#[test]
fn unknown_validity_types_and_bad_eols_are_refused() {
    let key = Keypair::generate_ed25519();
    let ok = signed_with_data(&key, fields(0, "2099-01-01T00:00:00Z", 1)).unwrap();
    validate(&ok, &peer(&key), now()).unwrap();
    let unknown = signed_with_data(&key, fields(1, "2099-01-01T00:00:00Z", 1)).unwrap();
    assert_eq!(
        validate(&unknown, &peer(&key), now()).unwrap_err(),
        IpnsError::UnrecognizedValidity(1)
    );
    let bad_eol = signed_with_data(&key, fields(0, "tomorrow", 1)).unwrap();
    assert!(matches!(
        validate(&bad_eol, &peer(&key), now()).unwrap_err(),
        IpnsError::InvalidValidity(_)
    ));
    let negative_ttl = signed_with_data(&key, fields(0, "2099-01-01T00:00:00Z", -1)).unwrap();
    assert_eq!(negative_ttl.ttl(), None);
    assert_eq!(
        validate(&negative_ttl, &peer(&key), now()).unwrap_err(),
        IpnsError::NegativeTtl
    );
    // Extension keys are kept in the signed data and otherwise ignored.
    let mut extended = fields(0, "2099-01-01T00:00:00Z", 1);
    extended.insert("_custom".into(), Ipld::String("hello".into()));
    validate(
        &signed_with_data(&key, extended).unwrap(),
        &peer(&key),
        now(),
    )
    .unwrap();
    // A missing mandatory field is refused at decoding.
    let mut missing = fields(0, "2099-01-01T00:00:00Z", 1);
    missing.remove("Value");
    assert!(matches!(
        signed_with_data(&key, missing),
        Err(IpnsError::Malformed(_))
    ));
}

#[test]
fn garbage_is_refused_at_decoding() {
    assert!(matches!(
        IpnsRecord::decode(b"\xff\xff\xff"),
        Err(IpnsError::Malformed(_))
    ));
    assert_eq!(IpnsRecord::decode(b"").unwrap_err(), IpnsError::DataMissing);
    let not_a_map = IpnsEntry {
        data: Some(vec![0x01]),
        ..IpnsEntry::default()
    };
    assert!(matches!(
        IpnsRecord::decode(&not_a_map.encode_to_vec()),
        Err(IpnsError::Malformed(_))
    ));
}

#[test]
fn deeply_nested_data_is_refused_without_overflowing_the_stack() {
    let mut data = vec![0x81; MAX_RECORD_SIZE - 16]; // arrays of one element, nested
    data.push(0x00);
    let entry = IpnsEntry {
        data: Some(data),
        ..IpnsEntry::default()
    };
    assert!(matches!(
        IpnsRecord::decode(&entry.encode_to_vec()),
        Err(IpnsError::Malformed(_))
    ));
}

#[test]
fn higher_sequence_wins_then_later_eol() {
    let key = Keypair::generate_ed25519();
    let old = create(&key, 1, now() + hours(48), true);
    let newer = create(&key, 2, now() + hours(1), true);
    let newer_longer = create(&key, 2, now() + hours(2), true);
    assert_eq!(compare(&newer, &old), Ordering::Greater);
    assert_eq!(compare(&old, &newer), Ordering::Less);
    assert_eq!(compare(&newer_longer, &newer), Ordering::Greater);
    assert_eq!(compare(&newer, &newer), Ordering::Equal);
    let records = [old.clone(), newer_longer.clone(), newer.clone()];
    assert_eq!(select_best(&records), Some(1));
    assert_eq!(select_best(&[]), None);
    let bytes: Vec<Vec<u8>> = records.iter().map(IpnsRecord::to_bytes).collect();
    assert_eq!(select(&bytes).unwrap(), 1);
    assert_eq!(select::<Vec<u8>>(&[]).unwrap_err(), IpnsError::NoRecords);
    assert!(select(&[bytes[0].clone(), b"junk".to_vec()]).is_err());
    // A V2-signed record beats one without, whatever its sequence.
    let unsigned = IpnsRecord::decode(
        &IpnsEntry {
            signature_v2: None,
            ..create(&key, 9, now() + hours(9), false).entry().clone()
        }
        .encode_to_vec(),
    )
    .unwrap();
    assert_eq!(compare(&old, &unsigned), Ordering::Greater);
    // Sequences above i64::MAX are written as Go writes them and still order correctly.
    let huge = create(&key, u64::MAX, now() + hours(1), true);
    validate(&huge, &peer(&key), now()).unwrap();
    assert_eq!(huge.sequence(), u64::MAX);
    assert_eq!(compare(&huge, &newer), Ordering::Greater);
}

#[test]
fn names_parse_in_every_spelling_and_print_as_kubo() {
    // The spec's v2 test vector's name, and the same key in its other spellings.
    let k51 = "k51qzi5uqu5dit2ku9mutlfgwyz8u730on38kd10m97m36bjt66my99hb6103f";
    let name = Name::parse(k51).unwrap();
    assert_eq!(name.to_string(), k51);
    assert_eq!(name.to_path(), format!("/ipns/{k51}"));
    let base58 = name.peer_id().to_base58();
    assert!(base58.starts_with("12D3KooW"));
    let base32 = name.to_cid().to_string();
    assert!(base32.starts_with("bafzaa"), "{base32}");
    for spelling in [
        k51.to_owned(),
        base58.clone(),
        base32.clone(),
        format!("/ipns/{k51}"),
        format!("/ipns/{base58}"),
        format!("/ipns/{base32}"),
    ] {
        assert_eq!(Name::parse(&spelling).unwrap(), name, "{spelling}");
        assert_eq!(spelling.parse::<Name>().unwrap(), name);
    }
    // An RSA name.
    let qm = "QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3";
    let rsa = Name::parse(qm).unwrap();
    assert_eq!(rsa.peer_id().to_base58(), qm);
    assert_eq!(Name::parse(&rsa.to_string()).unwrap(), rsa);
    assert!(rsa.to_string().starts_with('k'));
}

#[test]
fn bad_names_and_domains_are_refused() {
    assert!(matches!(
        Name::parse("/ipns/example.com"),
        Err(IpnsError::DnsLinkUnsupported(_))
    ));
    assert!(matches!(
        Name::parse("en.wikipedia-on-ipfs.org"),
        Err(IpnsError::DnsLinkUnsupported(_))
    ));
    for bad in [
        "",
        "/ipns/",
        "Qm",
        "12D3KooWnotbase58!",
        "hello",
        "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    ] {
        assert!(
            matches!(Name::parse(bad), Err(IpnsError::InvalidName(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn routing_keys() {
    let key = Keypair::generate_ed25519();
    let peer = peer(&key);
    let routing = routing_key(&peer);
    assert_eq!(&routing[..6], b"/ipns/");
    assert_eq!(&routing[6..], peer.to_bytes().as_slice());
    assert_eq!(Name::from_peer_id(peer).routing_key(), routing);
    assert_eq!(peer_from_routing_key(&routing).unwrap(), peer);
    assert!(matches!(
        peer_from_routing_key(b"/pk/abc"),
        Err(IpnsError::InvalidName(_))
    ));
    assert!(matches!(
        peer_from_routing_key(b"/ipns/\x12"),
        Err(IpnsError::InvalidName(_))
    ));
    assert!(matches!(
        validate_routing_record(
            b"/ipns/",
            &create(&key, 1, now() + hours(1), false).to_bytes(),
            now()
        ),
        Err(IpnsError::InvalidName(_))
    ));
}

#[test]
fn public_key_records() {
    let rsa = rsa_key();
    let public = rsa.public().encode_protobuf();
    let key = public_key_routing_key(&peer(&rsa));
    assert_eq!(&key[..4], b"/pk/");
    assert_eq!(
        validate_public_key_record(&key, &public).unwrap(),
        rsa.public()
    );
    let other = Keypair::generate_ed25519().public().encode_protobuf();
    assert!(matches!(
        validate_public_key_record(&key, &other),
        Err(IpnsError::InvalidPublicKeyRecord(_))
    ));
    assert!(validate_public_key_record(&routing_key(&peer(&rsa)), &public).is_err());
    assert!(validate_public_key_record(b"/pk/\x12", &public).is_err());
    assert!(validate_public_key_record(&key, b"junk").is_err());
}
