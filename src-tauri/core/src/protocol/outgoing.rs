//! Daemon → client frames (§2.2): `result`, `event` and `error`, serialised in the original's shape:
//! object keys sorted, positional `data` arrays, a trailing newline on results and events.

use std::fmt::Write as _;

use serde_json::Value;

use super::ErrorCode;

/// One frame to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// `{"data":{..},"id":..,"type":"result"}` (only the handshake uses it).
    Result { id: String, data: Value },
    /// `{"data":[..],"id":..,"name":..,"type":"event"}`.
    Event {
        name: &'static str,
        id: String,
        data: Vec<Value>,
    },
    /// `{"code":..,"detail":..,"error":..,"id":..,"type":"error"}`: the original's `{type, id?, error}`
    /// plus a code and a detail (structured error). `id` is omitted when unknown.
    Error {
        id: Option<String>,
        code: ErrorCode,
        error: String,
        detail: String,
    },
}

impl Outgoing {
    /// An event with positional arguments.
    pub fn event(name: &'static str, id: impl Into<String>, data: Vec<Value>) -> Self {
        Self::Event {
            name,
            id: id.into(),
            data,
        }
    }

    /// An error frame.
    pub fn error(
        id: Option<&str>,
        code: ErrorCode,
        error: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::Error {
            id: id.map(str::to_string),
            code,
            error: error.into(),
            detail: detail.into(),
        }
    }

    /// The frame as text, keys in sorted order at every level.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(128);
        match self {
            Self::Result { id, data } => {
                out.push_str("{\"data\":");
                write_sorted(&mut out, data);
                out.push_str(",\"id\":");
                write_str(&mut out, id);
                out.push_str(",\"type\":\"result\"}\n");
            }
            Self::Event { name, id, data } => {
                out.push_str("{\"data\":[");
                for (i, arg) in data.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_sorted(&mut out, arg);
                }
                out.push_str("],\"id\":");
                write_str(&mut out, id);
                out.push_str(",\"name\":");
                write_str(&mut out, name);
                out.push_str(",\"type\":\"event\"}\n");
            }
            Self::Error {
                id,
                code,
                error,
                detail,
            } => {
                let _ = write!(out, "{{\"code\":{},\"detail\":", code.code());
                write_str(&mut out, detail);
                out.push_str(",\"error\":");
                write_str(&mut out, error);
                if let Some(id) = id {
                    out.push_str(",\"id\":");
                    write_str(&mut out, id);
                }
                out.push_str(",\"type\":\"error\"}");
            }
        }
        out
    }
}

fn write_str(out: &mut String, s: &str) {
    // Serialising a &str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// Writes `value` as JSON with object keys sorted, whatever map order serde_json was built with.
fn write_sorted(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write_sorted(out, &map[key]);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn handshake_result_matches_the_transcript() {
        let f = Outgoing::Result {
            id: "a-1".into(),
            data: json!({"version": "2.0.12"}),
        };
        assert_eq!(
            f.to_text(),
            "{\"data\":{\"version\":\"2.0.12\"},\"id\":\"a-1\",\"type\":\"result\"}\n"
        );
    }

    #[test]
    fn events_match_the_transcript() {
        let f = Outgoing::event("privileged", "", vec![json!(0)]);
        assert_eq!(
            f.to_text(),
            "{\"data\":[0],\"id\":\"\",\"name\":\"privileged\",\"type\":\"event\"}\n"
        );
        let f = Outgoing::event(
            "progress",
            "a-2",
            vec![json!("Preparing for session request"), json!(0.0)],
        );
        assert_eq!(
            f.to_text(),
            "{\"data\":[\"Preparing for session request\",0.0],\"id\":\"a-2\",\"name\":\"progress\",\"type\":\"event\"}\n"
        );
        let f = Outgoing::event(
            "succeed",
            "a-2",
            vec![json!("Session open successfully"), json!(1804289383)],
        );
        assert!(f
            .to_text()
            .starts_with("{\"data\":[\"Session open successfully\",1804289383],"));
    }

    #[test]
    fn nested_objects_are_sorted_and_errors_escaped() {
        let f = Outgoing::event(
            "stateVariables",
            "7",
            vec![json!({"z": 1, "a": {"d": 2, "c": 3}}), Value::Null],
        );
        assert!(f
            .to_text()
            .starts_with("{\"data\":[{\"a\":{\"c\":3,\"d\":2},\"z\":1},null],\"id\":\"7\""));
        let f = Outgoing::error(Some("a\"9"), ErrorCode::UsageError, "bad \"x\"", "d");
        let text = f.to_text();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["id"], "a\"9");
        assert_eq!(v["error"], "bad \"x\"");
        assert_eq!(v["code"], -99);
        assert!(!text.ends_with('\n'));
        let f = Outgoing::error(None, ErrorCode::UsageError, "x", "");
        assert!(!f.to_text().contains("\"id\""));
    }
}
