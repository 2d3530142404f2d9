//! Checks a fetched VMCP body: JSON object (step 6), required fields (step 7) and the signature with
//! the domain's key over the canonical buffer and this request's salt (step 8, §4.1, §4.5).

use serde_json::Value;

use super::canonical::{canonical_buffer, flatten, value_text, FlatMap};
use super::error::{TrustError, TrustErrorKind};
use super::keys::{decode_signature, PublicKey};

/// Parses, checks and verifies a VMCP body; returns the flat parameter map (with `signature`).
/// A body signed for another salt (a replay) fails like any other bad signature.
pub fn validate_vmcp(body: &[u8], salt: &str, key: &PublicKey) -> Result<FlatMap, TrustError> {
    let map = parse_vmcp(body)?;
    check_required_fields(&map)?;
    verify_signature(&map, salt, key)?;
    Ok(map)
}

/// JSON → flat map. The body must be a JSON object.
pub fn parse_vmcp(body: &[u8]) -> Result<FlatMap, TrustError> {
    let parse_error = |detail: String| TrustError::new(TrustErrorKind::Parse, detail);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| parse_error(format!("the VMCP body is not JSON: {e}")))?;
    let Value::Object(doc) = value else {
        return Err(parse_error(
            "the VMCP body is JSON but not an object".into(),
        ));
    };
    Ok(flatten(&doc).map_err(parse_error)?.map)
}

/// `name`, `secret` and `signature` must be present (empty strings pass); `diskURL` needs `diskChecksum`.
pub fn check_required_fields(map: &FlatMap) -> Result<(), TrustError> {
    for (field, kind) in [
        ("name", TrustErrorKind::MissingName),
        ("secret", TrustErrorKind::MissingSecret),
        ("signature", TrustErrorKind::MissingSignature),
    ] {
        if !map.contains_key(field) {
            return Err(TrustError::new(
                kind,
                format!("the VMCP has no string or integer '{field}' member"),
            ));
        }
    }
    if map.contains_key("diskURL") && !map.contains_key("diskChecksum") {
        return Err(TrustError::new(
            TrustErrorKind::DiskUrlWithoutChecksum,
            "'diskURL' is given but 'diskChecksum' (hex SHA-256 of the image) is not",
        ));
    }
    Ok(())
}

/// Verifies `signature` over the canonical buffer of `map` and `salt` with `key`.
pub fn verify_signature(map: &FlatMap, salt: &str, key: &PublicKey) -> Result<(), TrustError> {
    let text = map
        .get("signature")
        .and_then(value_text)
        .unwrap_or_default();
    if text.is_empty() {
        return Err(TrustError::new(
            TrustErrorKind::EmptySignature,
            "the 'signature' member is empty",
        ));
    }
    let signature =
        decode_signature(&text).map_err(|e| TrustError::new(TrustErrorKind::BadSignature, e))?;
    let buffer = canonical_buffer(map, salt);
    if key.verify(&buffer, &signature) {
        Ok(())
    } else {
        Err(TrustError::new(
            TrustErrorKind::BadSignature,
            format!(
                "the signature does not match the VMCP contents and this request's salt for the domain's {:?} key (sha256:{})",
                key.algorithm(),
                key.fingerprint()
            ),
        ))
    }
}
