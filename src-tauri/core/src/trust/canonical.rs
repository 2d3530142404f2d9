//! The VMCP document as the daemon sees it (JSON object → flat map of strings and 32-bit ints,
//! shared/spec/protocol.md §2.1, §4.4) and the exact byte buffer its signature covers (§4.5).

use serde_json::{Map, Value};

/// A flattened VMCP: only string and 32-bit integer values, at the top level.
pub type FlatMap = Map<String, Value>;

/// The result of flattening: the map, plus the members the daemon drops (key, reason).
#[derive(Debug, Default)]
pub struct Flattened {
    pub map: FlatMap,
    pub dropped: Vec<(String, &'static str)>,
}

/// Converts a JSON object the way the original daemon did: strings and ints in the signed 32-bit
/// range are kept; booleans, `null`, arrays, doubles and larger ints are dropped; nested objects are
/// flattened into the top level. Unlike the original (where one value silently overwrote the other),
/// a key that appears twice after flattening is an error, so signer and verifier cannot disagree.
pub fn flatten(doc: &Map<String, Value>) -> Result<Flattened, String> {
    let mut out = Flattened::default();
    flatten_into(doc, &mut out)?;
    Ok(out)
}

fn flatten_into(doc: &Map<String, Value>, out: &mut Flattened) -> Result<(), String> {
    for (key, value) in doc {
        let kept = match value {
            Value::String(_) => value.clone(),
            Value::Number(n) => match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
                Some(i) => Value::from(i),
                // serde_json reads "-0" as a double, so it is dropped here (jsoncpp kept it as 0);
                // the signer drops or refuses it the same way, so they never disagree.
                None => {
                    let reason = if n.is_f64() {
                        "a number with a fraction or exponent"
                    } else {
                        "an integer outside the signed 32-bit range"
                    };
                    out.dropped.push((key.clone(), reason));
                    continue;
                }
            },
            Value::Object(inner) => {
                out.dropped
                    .push((key.clone(), "a nested object (flattened)"));
                flatten_into(inner, out)?;
                continue;
            }
            Value::Bool(_) => {
                out.dropped.push((key.clone(), "a boolean"));
                continue;
            }
            Value::Null => {
                out.dropped.push((key.clone(), "null"));
                continue;
            }
            Value::Array(_) => {
                out.dropped.push((key.clone(), "an array"));
                continue;
            }
        };
        if out.map.contains_key(key) {
            return Err(format!(
                "key {key:?} appears more than once after flattening nested objects"
            ));
        }
        out.map.insert(key.clone(), kept);
    }
    Ok(())
}

/// The text a kept value stands for (decimal for ints).
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_i64().map(|i| i.to_string()),
        _ => None,
    }
}

/// Builds the signed buffer: every key except `signature` (any case) in ascending byte order of
/// its spelling, as `lowercase(key)=enc(value)\n`, then the salt with no newline.
pub fn canonical_buffer(map: &FlatMap, salt: &str) -> Vec<u8> {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut buf = Vec::new();
    for key in keys {
        if key.eq_ignore_ascii_case("signature") {
            continue;
        }
        let Some(text) = value_text(&map[key.as_str()]) else {
            continue;
        };
        buf.extend_from_slice(key.to_ascii_lowercase().as_bytes());
        buf.push(b'=');
        percent_encode_into(text.as_bytes(), &mut buf);
        buf.push(b'\n');
    }
    buf.extend_from_slice(salt.as_bytes());
    buf
}

/// RFC 3986 percent-encoding of everything but `A–Z a–z 0–9 - _ . ~`, with upper-case hex.
fn percent_encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(json: &str) -> FlatMap {
        let Value::Object(doc) = serde_json::from_str(json).unwrap() else {
            panic!("not an object")
        };
        flatten(&doc).unwrap().map
    }

    #[test]
    fn keeps_strings_and_i32_drops_the_rest() {
        let m = flat(
            r#"{"s":"x","i":-5,"big":2147483648,"neg":-2147483648,"f":1.0,"e":1e2,"b":true,"n":null,"a":[1],"z":-0}"#,
        );
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, ["i", "neg", "s"]);
        assert_eq!(m["neg"], Value::from(-2147483648i32));
        assert_eq!(value_text(&m["i"]).unwrap(), "-5");
    }

    #[test]
    fn nested_objects_flatten_and_collisions_are_refused() {
        let m = flat(r#"{"a":{"b":"1","c":{"d":2}},"e":"3"}"#);
        assert_eq!(m.len(), 3);
        assert_eq!(m["d"], Value::from(2));
        let Value::Object(doc) = serde_json::from_str(r#"{"name":"x","o":{"name":"y"}}"#).unwrap()
        else {
            unreachable!()
        };
        assert!(flatten(&doc).unwrap_err().contains("\"name\""));
    }

    #[test]
    fn byte_order_lowercase_and_encoding() {
        let m = flat(
            r#"{"diska":"1","disk_x":"2","diskURL":"a b+c/é","diskChecksum":"~-_.","Signature":"x","signature":"y"}"#,
        );
        let buf = String::from_utf8(canonical_buffer(&m, "SALT")).unwrap();
        assert_eq!(
            buf,
            "diskchecksum=~-_.\ndiskurl=a%20b%2Bc%2F%C3%A9\ndisk_x=2\ndiska=1\nSALT"
        );
    }
}
