//! Splitting a directive's raw arguments the way Apache's `ap_getword_conf` does.
//!
//! `WSGIScriptAlias` takes a variable list of words and `key=value` options, so it is declared
//! `RAW_ARGS` and split here, in plain Rust that unit tests and proptest can reach.

/// Splits `line` into words. A word is either a run of non-space characters or a quoted string
/// (`"..."` or `'...'`) in which a backslash escapes the quote character.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { return Ok(words) };
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&first) {
                    word.push(first);
                    chars.next();
                } else if c == first {
                    closed = true;
                    break;
                } else {
                    word.push(c);
                }
            }
            if !closed {
                return Err(format!("unterminated quoted argument {first}{word}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
}

/// Splits a `key=value` option word; `None` when the word has no `=`.
pub fn split_option(word: &str) -> Option<(&str, &str)> {
    word.split_once('=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_and_quoted_words() {
        assert_eq!(split_words("  /app  /srv/a b.wsgi ").unwrap(), ["/app", "/srv/a", "b.wsgi"]);
        assert_eq!(split_words(r#"/ "/srv/my app.wsgi" 'x y'"#).unwrap(), ["/", "/srv/my app.wsgi", "x y"]);
        assert_eq!(split_words(r#""a\"b""#).unwrap(), [r#"a"b"#]);
        assert!(split_words("\"open").is_err());
        assert!(split_words("").unwrap().is_empty());
    }

    #[test]
    fn options() {
        assert_eq!(split_option("application-group=%{GLOBAL}"), Some(("application-group", "%{GLOBAL}")));
        assert_eq!(split_option("a=b=c"), Some(("a", "b=c")));
        assert_eq!(split_option("/path"), None);
    }

    proptest! {
        /// Words without quotes or spaces survive a join and a split unchanged.
        #[test]
        fn roundtrip(words in proptest::collection::vec("[a-zA-Z0-9/_.=%{}:-]{1,12}", 0..6)) {
            prop_assert_eq!(split_words(&words.join("  ")).unwrap(), words);
        }

        /// Any input gives words or an error, never a panic.
        #[test]
        fn never_panics(line in "\\PC{0,40}") {
            let _ = split_words(&line);
        }
    }
}
