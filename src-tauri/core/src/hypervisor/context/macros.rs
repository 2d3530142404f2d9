//! `userData` macro expansion (shared/spec/protocol.md §2.5.4, vm-lifecycle.md §4.4): `${name}` becomes the
//! start value `name`, `${name:default}` falls back to `default`, unknown names without a default become
//! empty. One left-to-right pass; replacement values are never re-scanned (unlike the original).

use std::collections::HashMap;

/// Expands the `${name}` / `${name:default}` macros of `template` from `values`.
/// An unterminated `${` is kept literally.
pub fn expand_user_data(template: &str, values: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let token = &after[..end];
        let (name, default) = match token.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (token, None),
        };
        match values.get(name) {
            Some(v) => out.push_str(v),
            None => out.push_str(default.unwrap_or("")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_values_and_defaults() {
        let v = vals(&[("user", "alice"), ("n", "3")]);
        assert_eq!(
            expand_user_data("u=${user} n=${n:1} m=${m:7} x=${x}.", &v),
            "u=alice n=3 m=7 x=."
        );
    }

    #[test]
    fn values_are_not_rescanned_and_broken_macros_stay() {
        let v = vals(&[("a", "${b}"), ("b", "no")]);
        assert_eq!(expand_user_data("${a} ${b", &v), "${b} ${b");
        assert_eq!(expand_user_data("$ {a} $${a}", &v), "$ {a} $${b}");
    }

    #[test]
    fn default_may_contain_colons() {
        assert_eq!(
            expand_user_data("${url:http://x:80/}", &vals(&[])),
            "http://x:80/"
        );
    }
}
