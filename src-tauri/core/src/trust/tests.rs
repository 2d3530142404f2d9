//! Unit tests across the trust module: the spec's test vectors (§4.7), tampering of every signed
//! part, stale-salt replay, signer/verifier agreement, and signed-keystore acceptance rules.

use serde_json::{json, Value};

use super::canonical::canonical_buffer;
use super::keys::SigningKey;
use super::signed_keystore::{accept, SeenVersion};
use super::testutil::test_local_key;
use super::tools::{sign_keystore, sign_vmcp};
use super::vmcp::{parse_vmcp, validate_vmcp};
use super::TrustErrorKind;

const SALT1: &str = "TestSalt0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ-xy";
const SIG1: &str = "B5KLGy/eaFz2QBWDNV1pGEA8fTRF1A3zCDULwBhqlfIaSvtrTpNO7b8SZKbUKv5cwqCW9gisobBSoN2unh08jx8RJr1wKSEe9lrkFKF5pXrusTu3ke2od9nM+xI83EtOZ6hL+FePb9t/elMu9/t4EbcpSV9YDLUKKb0axMkQKD2ADSrRaebabqOtR4slYk2WWqE8o2yiYSiiu7aTfLMFlBWaOciWYoqboAb6Bkwbvtkqxsh3xb9iEB8T1TqWU//4GpMjd/+2MadICk1pDDatCg9GqdqQdWL+DMN/1Vuhm+qOgft8Y8h3/Hx11c4DjA4DBmDISxQzRGnG7en4+I3eRw==";
const SALT2: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-a";
const SIG2: &str = "H/AkZg8QocIr3pUu1RKMqYm0I0TGzElk4KGg+o1QdumVF1gprWJKu1GPkMritiYLTArLcXh9+eZjb4PhwMhLVlwtjAJrI4PLa36kKzxTXgA0LpWQt0eq/Pt1QSKcNGBlS9u1c+bp24n6MJBGYt1giopjm8g5hXjIaboTxVGdlklZPsjwW/eXCCtMhg8QLmmmP8MBk/yQDua9ZFoMTsRjnkOymsJE9sSYUnlVrFgSJyhsHyKqb57QHAhI83l4AyUSID9NFTdq2If3NnwRMbLK8zpfZoJWUB4APokf1JGnghGJ2DCqxZPKlTOwVZYgE/JEmKuaBhMZw+gtxtGdYvDKHQ==";

fn vector1() -> Value {
    json!({"name":"MyFirstVM","secret":"pr0t3ct_this",
        "userData":"[amiconfig]\nplugins=cernvm\n[cernvm]\nusers=user:users:user\n",
        "memory":128,"cpus":1,"disk":1024,"flags":49,"signature":SIG1})
}

fn vector2() -> Value {
    json!({"name":"cvm-test_vm2","secret":"s3cr3t","cpus":2,"memory":512,"disk":0,"flags":9,
        "cernvmVersion":"latest","cernvmFlavor":"prod","executionCap":50,
        "diskURL":"http://127.0.0.1:8000/img/disk.vdi.gz",
        "diskChecksum":"0000000000000000000000000000000000000000000000000000000000000000",
        "userData":"[cernvm]\nusers=user:users:${password:changeme}\n","canOverride":"password",
        "apiPort":80,"signature":SIG2})
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

#[test]
fn canonical_buffers_match_the_spec() {
    let m1 = parse_vmcp(&bytes(&vector1())).unwrap();
    assert_eq!(
        String::from_utf8(canonical_buffer(&m1, SALT1)).unwrap(),
        "cpus=1\ndisk=1024\nflags=49\nmemory=128\nname=MyFirstVM\nsecret=pr0t3ct_this\nuserdata=%5Bamiconfig%5D%0Aplugins%3Dcernvm%0A%5Bcernvm%5D%0Ausers%3Duser%3Ausers%3Auser%0A\n".to_string() + SALT1
    );
    let m2 = parse_vmcp(&bytes(&vector2())).unwrap();
    let expected2 = "apiport=80\ncanoverride=password\ncernvmflavor=prod\ncernvmversion=latest\ncpus=2\ndisk=0\ndiskchecksum=0000000000000000000000000000000000000000000000000000000000000000\ndiskurl=http%3A%2F%2F127.0.0.1%3A8000%2Fimg%2Fdisk.vdi.gz\nexecutioncap=50\nflags=9\nmemory=512\nname=cvm-test_vm2\nsecret=s3cr3t\nuserdata=%5Bcernvm%5D%0Ausers%3Duser%3Ausers%3A%24%7Bpassword%3Achangeme%7D%0A\n";
    assert_eq!(
        String::from_utf8(canonical_buffer(&m2, SALT2)).unwrap(),
        expected2.to_string() + SALT2
    );
}

#[test]
fn both_spec_vectors_verify_with_the_test_local_key() {
    let key = test_local_key();
    let m = validate_vmcp(&bytes(&vector1()), SALT1, &key).unwrap();
    assert_eq!(m["name"], "MyFirstVM");
    assert_eq!(m["memory"], 128);
    validate_vmcp(&bytes(&vector2()), SALT2, &key).unwrap();
}

#[test]
fn tampering_with_any_field_fails() {
    let key = test_local_key();
    for (vector, salt) in [(vector1(), SALT1), (vector2(), SALT2)] {
        let keys: Vec<String> = vector.as_object().unwrap().keys().cloned().collect();
        for k in keys.iter().filter(|k| *k != "signature") {
            let mut doc = vector.clone();
            let changed = match &doc[k] {
                Value::String(s) => Value::String(format!("{s}x")),
                Value::Number(n) => Value::from(n.as_i64().unwrap() + 1),
                _ => unreachable!(),
            };
            doc[k] = changed;
            let err = validate_vmcp(&bytes(&doc), salt, &key).unwrap_err();
            assert_eq!(err.kind(), TrustErrorKind::BadSignature, "{k}: {err}");
            assert_eq!(err.code(), -12);
            // Removing a field (other than the required ones) or adding one also breaks it.
            let mut doc = vector.clone();
            doc.as_object_mut().unwrap().remove(k);
            assert!(
                validate_vmcp(&bytes(&doc), salt, &key).is_err(),
                "removed {k}"
            );
        }
        let mut doc = vector.clone();
        doc["extra"] = json!("1");
        assert!(validate_vmcp(&bytes(&doc), salt, &key).is_err());
        // An int turned into the same text as a string is the same buffer: still valid (as original).
        let mut doc = vector.clone();
        doc["cpus"] = json!(doc["cpus"].to_string());
        validate_vmcp(&bytes(&doc), salt, &key).unwrap();
    }
}

#[test]
fn renaming_a_key_by_case_fails() {
    let key = test_local_key();
    // A key's spelling decides its place in the buffer: "cpus" → "CPUS" sorts before "apiPort".
    let mut doc = vector2();
    let obj = doc.as_object_mut().unwrap();
    let cpus = obj.remove("cpus").unwrap();
    obj.insert("CPUS".into(), cpus);
    let err = validate_vmcp(&bytes(&doc), SALT2, &key).unwrap_err();
    assert_eq!(err.kind(), TrustErrorKind::BadSignature);
    // A value's case matters too.
    let mut doc = vector1();
    doc["name"] = json!("myfirstvm");
    assert!(validate_vmcp(&bytes(&doc), SALT1, &key).is_err());
}

#[test]
fn stale_salt_replay_and_other_keys_fail() {
    let key = test_local_key();
    let err = validate_vmcp(&bytes(&vector1()), SALT2, &key).unwrap_err();
    assert_eq!(
        err.code(),
        -12,
        "a VMCP signed for another salt is a replay"
    );
    let mut salt = SALT1.to_string();
    salt.replace_range(0..1, "t");
    assert!(validate_vmcp(&bytes(&vector1()), &salt, &key).is_err());
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let other = SigningKey::from_der("PRIVATE KEY", pkcs8.as_ref()).unwrap();
    let other_public = other.public_key().unwrap();
    assert!(validate_vmcp(&bytes(&vector1()), SALT1, &other_public).is_err());
}

#[test]
fn tampered_signature_and_required_fields() {
    let key = test_local_key();
    let mut doc = vector1();
    doc["signature"] = json!(SIG1.replacen('B', "C", 1));
    assert_eq!(
        validate_vmcp(&bytes(&doc), SALT1, &key).unwrap_err().code(),
        -12
    );
    doc["signature"] = json!("not*base64");
    assert_eq!(
        validate_vmcp(&bytes(&doc), SALT1, &key).unwrap_err().code(),
        -12
    );
    doc["signature"] = json!("");
    let err = validate_vmcp(&bytes(&doc), SALT1, &key).unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (TrustErrorKind::EmptySignature, -99)
    );
    for (field, kind) in [
        ("name", TrustErrorKind::MissingName),
        ("secret", TrustErrorKind::MissingSecret),
        ("signature", TrustErrorKind::MissingSignature),
    ] {
        let mut doc = vector1();
        doc.as_object_mut().unwrap().remove(field);
        let err = validate_vmcp(&bytes(&doc), SALT1, &key).unwrap_err();
        assert_eq!((err.kind(), err.code()), (kind, -99));
        assert!(err.message().contains(field));
    }
    let mut doc = vector2();
    doc.as_object_mut().unwrap().remove("diskChecksum");
    let err = validate_vmcp(&bytes(&doc), SALT2, &key).unwrap_err();
    assert_eq!(err.kind(), TrustErrorKind::DiskUrlWithoutChecksum);
    assert_eq!(validate_vmcp(b"[1]", SALT1, &key).unwrap_err().code(), -5);
    assert_eq!(
        validate_vmcp(b"<html>", SALT1, &key).unwrap_err().code(),
        -5
    );
}

fn ed25519_key() -> SigningKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    SigningKey::from_der("PRIVATE KEY", pkcs8.as_ref()).unwrap()
}

#[test]
fn signer_and_verifier_agree_and_unsupported_values_are_refused_or_dropped() {
    let key = ed25519_key();
    let public = key.public_key().unwrap();
    let doc = br#"{"name":"vm","secret":"s","ram":128,"headful":true,"ratio":0.5,"tags":["a"],"n":null,"o":{"x":"1"},"big":4294967296}"#;
    let err = sign_vmcp(doc, SALT1, &key, false).unwrap_err();
    assert_eq!(err.code(), -99);
    for k in ["headful", "ratio", "tags", "n", "o", "big"] {
        assert!(err.detail().contains(k), "{k}: {err}");
    }
    let signed = sign_vmcp(doc, SALT1, &key, true).unwrap();
    assert_eq!(signed.dropped.len(), 6);
    let map = validate_vmcp(signed.json.as_bytes(), SALT1, &public).unwrap();
    assert_eq!(map.len(), 4, "{map:?}");
    assert!(validate_vmcp(signed.json.as_bytes(), SALT2, &public).is_err());
    assert!(sign_vmcp(doc, "short-salt", &key, true).is_err());
    assert!(sign_vmcp(
        br#"{"Signature":"x","name":"a","secret":"b"}"#,
        SALT1,
        &key,
        false
    )
    .is_err());
    assert!(sign_vmcp(r#"{"nämé":"x"}"#.as_bytes(), SALT1, &key, false).is_err());
}

const NOW: i64 = 1_900_000_000;

fn signed_keystore(key: &SigningKey, version: u64, expires: &str) -> (String, String) {
    let entry = format!(
        "a.org={}\n",
        ed25519_key().public_key().unwrap().to_base64()
    );
    sign_keystore(&entry, key, version, expires).unwrap()
}

#[test]
fn signed_keystore_acceptance_rules() {
    let root = ed25519_key();
    let roots = [root.public_key().unwrap()];
    let (text, sig) = signed_keystore(&root, 5, "2031-01-01T00:00:00Z");
    let ok = accept(text.as_bytes(), &sig, &roots, None, NOW).unwrap();
    assert_eq!(ok.version, 5);
    assert!(ok.text.entries.contains_key("a.org"));

    // A changed byte, a signature by another key, or no root at all: refused.
    let tampered = text.replace("a.org", "b.org");
    assert!(accept(tampered.as_bytes(), &sig, &roots, None, NOW)
        .unwrap_err()
        .contains("signature"));
    let (_, other_sig) = signed_keystore(&ed25519_key(), 5, "2031-01-01T00:00:00Z");
    assert!(accept(text.as_bytes(), &other_sig, &roots, None, NOW).is_err());
    assert!(accept(text.as_bytes(), &sig, &[], None, NOW).is_err());

    // Expiry.
    let (old_text, old_sig) = signed_keystore(&root, 6, "2030-01-01T00:00:00Z");
    assert!(accept(old_text.as_bytes(), &old_sig, &roots, None, NOW)
        .unwrap_err()
        .contains("expired"));

    // Rollback: an older version after a newer one, or the same version with other contents.
    let seen = SeenVersion {
        version: 7,
        sha256: "x".into(),
    };
    assert!(accept(text.as_bytes(), &sig, &roots, Some(&seen), NOW)
        .unwrap_err()
        .contains("rollback"));
    let same = SeenVersion {
        version: 5,
        sha256: ok.sha256.clone(),
    };
    assert!(accept(text.as_bytes(), &sig, &roots, Some(&same), NOW).is_ok());
    let (text5b, sig5b) = signed_keystore(&root, 5, "2031-01-01T00:00:00Z");
    assert!(accept(text5b.as_bytes(), &sig5b, &roots, Some(&same), NOW).is_err());
}
