//! Text that leaves the process (messages stored for users, audit details, log lines) must not
//! carry credentials, and a URL's query string is where they live: a presigned URL's signature,
//! a token a provider put in a link. Every URL keeps its scheme, host and path; its query is
//! replaced by `?…`.

/// `text` with the query string of every `http(s)://` URL in it removed.
pub fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_url(rest) {
        out.push_str(&rest[..at]);
        let url = &rest[at..];
        let end =
            url.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`')).unwrap_or(url.len());
        let (link, after) = url.split_at(end);
        match link.split_once('?') {
            Some((before, _)) => {
                out.push_str(before);
                out.push_str("?…");
            }
            None => out.push_str(link),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn find_url(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    [lower.find("https://"), lower.find("http://")].into_iter().flatten().min()
}

/// The same for every string inside a JSON value (audit details).
pub fn json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) if s.contains("://") => *s = urls(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(json),
        serde_json::Value::Object(map) => map.values_mut().for_each(json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_go_and_the_rest_stays() {
        assert_eq!(
            urls("Failed to download https://s3.example/b/k.png?X-Amz-Signature=abc&X-Amz-Credential=id (403)"),
            "Failed to download https://s3.example/b/k.png?… (403)"
        );
        assert_eq!(
            urls("see HTTP://a.example/x?t=1, and http://b.example/y"),
            "see HTTP://a.example/x?… and http://b.example/y"
        );
        assert_eq!(urls("no links here"), "no links here");
        assert_eq!(urls("\"https://a.example/?q\""), "\"https://a.example/?…\"");
        let mut detail = serde_json::json!({ "why": ["https://a.example/p?sig=1"], "n": 3 });
        json(&mut detail);
        assert_eq!(detail, serde_json::json!({ "why": ["https://a.example/p?…"], "n": 3 }));
    }

    proptest::proptest! {
        #[test]
        // The text around the URL has no `?` of its own, which could spell the query again
        // outside any URL (where it rightly stays).
        fn no_query_survives(prefix in "[^?\\p{C}]{0,20}", host in "[a-z]{1,10}", query in "[a-zA-Z0-9=&%]{1,30}", suffix in "( [^?\\p{C}]{0,20})?") {
            let text = format!("{prefix}https://{host}.example/p?{query}{suffix}");
            let clean = urls(&text);
            proptest::prop_assert!(!clean.contains(&format!("?{query}")), "{clean}");
        }
    }
}
