//! A bounded pre-scan of JSON text: rejects too deeply nested documents before any parser allocates.

/// Whether `text` nests arrays/objects deeper than `max_depth`. Brackets inside strings do not count.
/// Runs in one pass without allocating; malformed text is left to the parser.
pub fn json_depth_exceeds(text: &[u8], max_depth: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nesting_outside_strings() {
        assert!(!json_depth_exceeds(br#"{"a":{"b":[1]}}"#, 3));
        assert!(json_depth_exceeds(br#"{"a":{"b":[1]}}"#, 2));
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[[[\"[[[["}"#, 1));
        let deep = "[".repeat(10_000);
        assert!(json_depth_exceeds(deep.as_bytes(), 32));
    }
}
