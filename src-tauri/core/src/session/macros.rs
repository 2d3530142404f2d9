//! `userData` macro substitution (vm-lifecycle.md §4.4): `${name}` becomes the start value `name`,
//! `${name:default}` falls back to `default`; unknown names without default become empty. One
//! left-to-right pass; substituted values are never rescanned.

use std::collections::BTreeMap;

/// Expands the macros of `template` from `values`.
pub fn expand_user_data(template: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let body = &after[..end];
        let (name, default) = match body.split_once(':') {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
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

    #[test]
    fn substitutes_values_and_defaults() {
        let values: BTreeMap<String, String> = [("who", "world"), ("evil", "${who}")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(expand_user_data("hello ${who}!", &values), "hello world!");
        assert_eq!(
            expand_user_data("${missing:dflt}|${missing}|", &values),
            "dflt||"
        );
        assert_eq!(expand_user_data("${who:x}", &values), "world");
        assert_eq!(expand_user_data("a=${evil}", &values), "a=${who}");
        assert_eq!(expand_user_data("open ${who", &values), "open ${who");
        assert_eq!(
            expand_user_data("url=${u:http://a:1/}", &values),
            "url=http://a:1/"
        );
        assert_eq!(expand_user_data("", &values), "");
    }
}
