//! Incoming action frames (`{"type":"action","name":..,"id":..,"data":{..}}`, §2.1) and the error for
//! every way a frame can be wrong, with the original's error texts where it had one.

use serde_json::{Map, Value};

use super::depth::json_depth_exceeds;
use super::params::Params;
use super::ErrorCode;

/// Bounds checked before a frame is parsed.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// Maximum size of one message in bytes.
    pub max_bytes: usize,
    /// Maximum nesting of arrays/objects.
    pub max_depth: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            max_depth: 32,
        }
    }
}

/// A parsed action frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub name: String,
    pub id: String,
    pub params: Params,
}

/// Why a frame was refused. Each becomes an error frame (§2.2.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("Request too large.")]
    TooLarge { size: usize, limit: usize },
    #[error("Request nested too deeply.")]
    TooDeep { limit: usize },
    #[error("Unable to parse to JSON the incoming request.")]
    InvalidJson { detail: String },
    #[error("The incoming request is not a JSON object.")]
    NotAnObject,
    #[error("Missing 'type' parameter in the incoming request.")]
    MissingType,
    #[error("Missing 'name' parameter in the incoming request.")]
    MissingName,
    #[error("Missing 'id' parameter in the incoming request.")]
    MissingId,
    #[error("The '{field}' parameter of the incoming request must be a string.")]
    NotAString {
        field: &'static str,
        id: Option<String>,
    },
    #[error("Unknown request type.")]
    UnknownType { id: Option<String> },
    #[error("The 'data' parameter of the incoming request must be an object.")]
    DataNotAnObject { id: String },
}

impl FrameError {
    /// The request id, when the frame got far enough to have one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::NotAString { id, .. } | Self::UnknownType { id } => id.as_deref(),
            Self::DataNotAnObject { id } => Some(id),
            _ => None,
        }
    }

    /// The error code of the structured error frame.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::UsageError
    }

    /// A longer explanation for the structured error frame.
    pub fn detail(&self) -> String {
        match self {
            Self::TooLarge { size, limit } => {
                format!("the message has {size} bytes; the limit is {limit}")
            }
            Self::TooDeep { limit } => format!("JSON may nest at most {limit} levels"),
            Self::InvalidJson { detail } => detail.clone(),
            Self::NotAnObject => "a request is a JSON object with type, name, id and data".into(),
            Self::MissingType | Self::MissingName | Self::MissingId => {
                "a request needs the string fields type, name and id".into()
            }
            Self::NotAString { field, .. } => format!("'{field}' must be a JSON string"),
            Self::UnknownType { .. } => "the only request type is \"action\"".into(),
            Self::DataNotAnObject { .. } => "'data' must be a JSON object (or absent)".into(),
        }
    }
}

/// Parses one text message into an action, checking size and depth before allocating.
pub fn parse_action(text: &str, limits: &FrameLimits) -> Result<Action, FrameError> {
    if text.len() > limits.max_bytes {
        return Err(FrameError::TooLarge {
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    if json_depth_exceeds(text.as_bytes(), limits.max_depth) {
        return Err(FrameError::TooDeep {
            limit: limits.max_depth,
        });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| FrameError::InvalidJson {
        detail: e.to_string(),
    })?;
    let Value::Object(mut object) = value else {
        return Err(FrameError::NotAnObject);
    };
    for (field, missing) in [
        ("type", FrameError::MissingType),
        ("name", FrameError::MissingName),
        ("id", FrameError::MissingId),
    ] {
        if !object.contains_key(field) {
            return Err(missing);
        }
    }
    let id = match object.remove("id") {
        Some(Value::String(id)) => id,
        _ => {
            return Err(FrameError::NotAString {
                field: "id",
                id: None,
            })
        }
    };
    let kind = take_string(&mut object, "type", &id)?;
    if kind != "action" {
        return Err(FrameError::UnknownType { id: Some(id) });
    }
    let name = take_string(&mut object, "name", &id)?;
    let data = match object.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => return Err(FrameError::DataNotAnObject { id }),
    };
    Ok(Action {
        name,
        id,
        params: Params::new(data),
    })
}

fn take_string(
    object: &mut Map<String, Value>,
    field: &'static str,
    id: &str,
) -> Result<String, FrameError> {
    match object.remove(field) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(FrameError::NotAString {
            field,
            id: Some(id.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Action, FrameError> {
        parse_action(text, &FrameLimits::default())
    }

    #[test]
    fn parses_the_js_frames() {
        let a = parse(r#"{"type":"action","name":"handshake","id":"a-1","data":{"version":"2.0.12","auth":""}}"#).unwrap();
        assert_eq!(a.name, "handshake");
        assert_eq!(a.id, "a-1");
        assert_eq!(a.params.get("version"), Some("2.0.12"));
        let a = parse(r#"{"type":"action","name":"sync","id":"a-2"}"#).unwrap();
        assert!(a.params.flat().is_empty());
    }

    #[test]
    fn original_error_texts_and_ids() {
        assert_eq!(
            parse("{").unwrap_err().to_string(),
            "Unable to parse to JSON the incoming request."
        );
        assert_eq!(
            parse(r#"{"name":"x","id":"1"}"#).unwrap_err(),
            FrameError::MissingType
        );
        assert_eq!(
            parse(r#"{"type":"action","id":"1"}"#).unwrap_err(),
            FrameError::MissingName
        );
        assert_eq!(
            parse(r#"{"type":"action","name":"x"}"#).unwrap_err(),
            FrameError::MissingId
        );
        let e = parse(r#"{"type":"result","name":"x","id":"a-3"}"#).unwrap_err();
        assert_eq!(e.to_string(), "Unknown request type.");
        let e = parse(r#"{"type":"action","name":7,"id":"a-4"}"#).unwrap_err();
        assert_eq!(e.id(), Some("a-4"));
        let e = parse(r#"{"type":"action","name":"x","id":5}"#).unwrap_err();
        assert_eq!(e.id(), None);
        let e = parse(r#"{"type":"action","name":"x","id":"a-5","data":[1]}"#).unwrap_err();
        assert_eq!(e, FrameError::DataNotAnObject { id: "a-5".into() });
        assert_eq!(parse("[1]").unwrap_err(), FrameError::NotAnObject);
    }

    #[test]
    fn limits_apply_before_parsing() {
        let limits = FrameLimits {
            max_bytes: 10,
            max_depth: 2,
        };
        assert!(matches!(
            parse_action(&"x".repeat(11), &limits),
            Err(FrameError::TooLarge { .. })
        ));
        let limits = FrameLimits {
            max_bytes: 1000,
            max_depth: 2,
        };
        assert!(matches!(
            parse_action(r#"{"a":{"b":{}}}"#, &limits),
            Err(FrameError::TooDeep { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_json_like_text(text in "[\\[\\]{}\":,a-z0-9 .-]{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn well_formed_actions_round_trip(
            name in "[a-zA-Z]{1,20}",
            id in "\\PC{0,20}",
            key in "[a-z]{1,8}",
            value in any::<i32>(),
        ) {
            let frame = serde_json::json!({"type":"action","name":name,"id":id,"data":{key.clone(): value}});
            let action = parse(&frame.to_string()).unwrap();
            prop_assert_eq!(action.name, name);
            prop_assert_eq!(action.id, id);
            let text = value.to_string();
            prop_assert_eq!(action.params.get(&key), Some(text.as_str()));
        }
    }
}
