//! The link between the tray app and its control-panel process: one JSON object per line over the
//! panel process's stdin (tray → panel) and stdout (panel → tray). The panel runs in a process of its own
//! (`cernvm-webapi --panel-window`) so that the web engine it loads leaves with it when the panel closes,
//! and the tray process stays small; the panel only relays its commands, the tray serves them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest line either side accepts (a command's arguments, a reply, an event).
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// From the panel process to the tray.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToTray {
    /// A Tauri command of the panel's page, with its arguments as the page sent them.
    Call { id: u64, cmd: String, args: Value },
    /// The window was closed: the process is ending, a new panel needs a new process.
    Closing,
    /// A [`ToPanel::Show`] came while the window was already closing: the tray must start a new panel.
    Unshown { session: Option<String> },
}

/// From the tray to the panel process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToPanel {
    /// The answer to [`ToTray::Call`] `id`: the command's value, or its error message.
    Reply {
        id: u64,
        result: Result<Value, String>,
    },
    /// A daemon event for the page's live log (`daemon-event`).
    Event(Value),
    /// Raise the window; with a session name, highlight that session.
    Show { session: Option<String> },
}

/// One message as a line (JSON has no raw newlines, so a line is one message).
pub fn encode<T: Serialize>(message: &T) -> String {
    let mut line = serde_json::to_string(message).unwrap_or_else(|_| "null".into());
    line.push('\n');
    line
}

/// Parses one line; a line that is too long or not a message is an error with the reason.
pub fn decode<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T, String> {
    if line.len() > MAX_LINE {
        return Err(format!(
            "a line of {} bytes (at most {MAX_LINE})",
            line.len()
        ));
    }
    serde_json::from_slice(line).map_err(|e| format!("not a message: {e}"))
}

/// Reads one line of at most [`MAX_LINE`] bytes (without its newline); `Ok(None)` at the end.
pub async fn read_line<R>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    let mut limited = tokio::io::AsyncReadExt::take(&mut *reader, MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > MAX_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line longer than {MAX_LINE} bytes"),
        ));
    }
    Ok(Some(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_round_trip_as_single_lines() {
        let call = ToTray::Call {
            id: 7,
            cmd: "session_action".into(),
            args: json!({"name": "a\nb", "action": "pause"}),
        };
        let line = encode(&call);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert_eq!(decode::<ToTray>(line.trim_end().as_bytes()).unwrap(), call);
        for m in [
            ToPanel::Reply {
                id: 1,
                result: Ok(json!([1, 2])),
            },
            ToPanel::Reply {
                id: 2,
                result: Err("no session called \"x\"".into()),
            },
            ToPanel::Event(json!({"seq": 3})),
            ToPanel::Show {
                session: Some("vm".into()),
            },
        ] {
            assert_eq!(
                decode::<ToPanel>(encode(&m).trim_end().as_bytes()).unwrap(),
                m
            );
        }
        assert_eq!(decode::<ToTray>(b"\"closing\"").unwrap(), ToTray::Closing);
        assert!(decode::<ToTray>(b"{\"call\":{}}").is_err());
        assert!(decode::<ToTray>(&vec![b' '; MAX_LINE + 1]).is_err());
    }

    #[tokio::test]
    async fn lines_are_read_one_by_one_and_bounded() {
        let data = b"first\nsecond\nlast-without-newline".to_vec();
        let mut reader = tokio::io::BufReader::new(&data[..]);
        assert_eq!(read_line(&mut reader).await.unwrap().unwrap(), b"first");
        assert_eq!(read_line(&mut reader).await.unwrap().unwrap(), b"second");
        assert_eq!(
            read_line(&mut reader).await.unwrap().unwrap(),
            b"last-without-newline"
        );
        assert_eq!(read_line(&mut reader).await.unwrap(), None);

        let long = vec![b'x'; MAX_LINE + 10];
        let mut reader = tokio::io::BufReader::new(&long[..]);
        assert!(read_line(&mut reader).await.is_err(), "too long");
    }
}
