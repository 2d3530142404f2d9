//! Parameter typing of the original (shared/spec/protocol.md §2.1): `data` objects (and VMCP documents)
//! become a flat string→string map with jsoncpp 0.5 semantics, and numbers are read back with C++
//! "stream" semantics.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The parameters of one action: the raw `data` object and its flattened string view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    raw: Map<String, Value>,
    flat: BTreeMap<String, String>,
}

impl Params {
    pub fn new(raw: Map<String, Value>) -> Self {
        let flat = flatten_params(&raw);
        Self { raw, flat }
    }

    /// The `data` object as received.
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// The flattened map (§2.1): strings and 32-bit ints only, nested objects merged into the top level.
    pub fn flat(&self) -> &BTreeMap<String, String> {
        &self.flat
    }

    /// A parameter as the original reads it: present in the flattened map.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.flat.get(key).map(String::as_str)
    }

    /// A parameter read as an int with stream semantics (`None` when absent).
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key).map(stream_int)
    }

    /// Whether the raw `data` has this key at the top level, whatever its type.
    pub fn has_raw(&self, key: &str) -> bool {
        self.raw.contains_key(key)
    }
}

/// Flattens a JSON object as jsoncpp 0.5 did: strings kept, integers that fit a signed 32-bit int kept as
/// decimal text, nested objects merged into the top level (a nested key overwrites an equal top-level
/// key), everything else (bools, null, doubles, arrays, large ints) dropped.
pub fn flatten_params(object: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    flatten_into(object, &mut out);
    out
}

fn flatten_into(object: &Map<String, Value>, out: &mut BTreeMap<String, String>) {
    for (key, value) in object {
        if let Some(text) = scalar_text(value) {
            out.insert(key.clone(), text);
        }
    }
    for value in object.values() {
        if let Value::Object(nested) = value {
            flatten_into(nested, out);
        }
    }
}

/// The string form of a value the original keeps, or `None` if it drops it.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n
            .as_i64()
            .filter(|i| i32::try_from(*i).is_ok())
            .map(|i| i.to_string()),
        _ => None,
    }
}

/// Parses an int with C++ stream semantics: leading whitespace skipped, an optional sign, then digits up
/// to the first non-digit; text without digits gives 0. Saturates instead of overflowing.
pub fn stream_int(text: &str) -> i64 {
    let s = text.trim_start();
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut value: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        value = value.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if negative {
        -value
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flat(v: Value) -> BTreeMap<String, String> {
        flatten_params(v.as_object().unwrap())
    }

    #[test]
    fn keeps_strings_and_32_bit_ints_only() {
        let m = flat(json!({
            "s": "x", "i": 42, "neg": -7, "max": 2147483647, "big": 2147483648u64,
            "d": 1.5, "d0": 1.0, "b": true, "n": null, "a": [1, 2]
        }));
        assert_eq!(m.get("s").unwrap(), "x");
        assert_eq!(m.get("i").unwrap(), "42");
        assert_eq!(m.get("neg").unwrap(), "-7");
        assert_eq!(m.get("max").unwrap(), "2147483647");
        for dropped in ["big", "d", "d0", "b", "n", "a"] {
            assert!(!m.contains_key(dropped), "{dropped} must be dropped");
        }
    }

    #[test]
    fn nested_objects_flatten_and_override() {
        let m =
            flat(json!({"session_id": 5, "cpus": "1", "parameters": {"cpus": 2, "x": {"y": "z"}}}));
        assert_eq!(m.get("cpus").unwrap(), "2");
        assert_eq!(m.get("y").unwrap(), "z");
        assert_eq!(m.get("session_id").unwrap(), "5");
        assert!(!m.contains_key("parameters"));
    }

    #[test]
    fn stream_int_semantics() {
        assert_eq!(stream_int("42"), 42);
        assert_eq!(stream_int("  42abc"), 42);
        assert_eq!(stream_int("-3"), -3);
        assert_eq!(stream_int("abc"), 0);
        assert_eq!(stream_int(""), 0);
        assert_eq!(stream_int("99999999999999999999999"), i64::MAX);
    }
}
