//! Matching a request URL against a `WSGIScriptAlias` prefix, the way mod_alias does.

/// The number of bytes of `uri` that `prefix` matches, or `None`.
///
/// Runs of slashes compare equal to one slash, and the match must end on a segment boundary:
/// `/app` matches `/app` and `/app/x` but not `/apple`. The URI is bytes: Apache has decoded
/// it, and `%E9` (latin-1) is as valid a request as `%C3%A9` (UTF-8).
pub fn prefix_match(uri: &[u8], prefix: &str) -> Option<usize> {
    let (u, p) = (uri, prefix.as_bytes());
    let (mut i, mut j) = (0, 0);
    while j < p.len() {
        if p[j] == b'/' {
            if i >= u.len() || u[i] != b'/' {
                return None;
            }
            while j < p.len() && p[j] == b'/' {
                j += 1;
            }
            while i < u.len() && u[i] == b'/' {
                i += 1;
            }
        } else {
            if i >= u.len() || u[i] != p[j] {
                return None;
            }
            i += 1;
            j += 1;
        }
    }
    // A prefix that ends in '/' has consumed the boundary itself; otherwise one must follow.
    if p.last() != Some(&b'/') && i < u.len() && u[i] != b'/' {
        return None;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::prefix_match;
    use proptest::prelude::*;

    #[test]
    fn segment_boundaries() {
        assert_eq!(prefix_match(b"/app", "/app"), Some(4));
        assert_eq!(prefix_match(b"/app/x/y", "/app"), Some(4));
        assert_eq!(prefix_match(b"/apple", "/app"), None);
        assert_eq!(prefix_match(b"/anything", "/"), Some(1));
        assert_eq!(prefix_match(b"/", "/"), Some(1));
        assert_eq!(prefix_match(b"//app//x", "/app/"), Some(7));
        assert_eq!(prefix_match(b"/other", "/app"), None);
        assert_eq!(prefix_match(b"/app/caf\xe9", "/app"), Some(4));
    }

    proptest! {
        #[test]
        fn match_is_a_prefix_of_the_uri(uri in "/[a-z/]{0,12}", prefix in "/[a-z/]{0,6}") {
            if let Some(n) = prefix_match(uri.as_bytes(), &prefix) {
                prop_assert!(n <= uri.len());
            }
        }
    }
}
