//! How values are written into Apache's configuration: paths as UTF-8 text, and words quoted
//! for Apache's parser. Every value express writes into `httpd.conf` goes through here, so that
//! what Apache cannot read back as it was given is refused in one place, with one message.

use std::path::Path;

/// A path as text: Apache's configuration (and Python source) is text, and a path that is not
/// UTF-8 cannot be written into it unchanged, so it is refused rather than altered.
pub fn utf8(path: &Path) -> Result<&str, String> {
    path.to_str().ok_or_else(|| format!("path '{}' is not valid UTF-8", path.display()))
}

/// Refuses what Apache would change in any configuration line, quoted or not: `${NAME}` is
/// replaced by the variable's value on every line (Apache has no escape for it), and a NUL
/// ends the line.
pub fn check_text(text: &str) -> Result<(), String> {
    if text.contains("${") {
        return Err(format!(
            "'{}' cannot be written into an Apache configuration: Apache replaces '${{...}}' with a variable's value on every line, and has no escape for it",
            text.escape_debug()
        ));
    }
    if text.contains('\0') {
        return Err(format!("'{}' cannot be written into an Apache configuration (NUL)", text.escape_debug()));
    }
    Ok(())
}

/// Quotes a word for Apache's config parser. Quotes, backslashes and line breaks cannot be
/// expressed safely in a quoted word, so they are refused instead of escaped.
pub fn quote(text: &str) -> Result<String, String> {
    check_text(text)?;
    if text.contains(['"', '\\', '\n', '\r']) {
        return Err(format!("'{}' cannot be written into an Apache configuration (quote, backslash or line break)", text.escape_debug()));
    }
    Ok(format!("\"{text}\""))
}

/// Quotes a format (`LogFormat`, `ErrorLogFormat`), whose quotes and backslashes are part of
/// the value: escaped as Apache's parser reads them back (`\"` and `\\`). Line breaks are
/// refused.
pub fn quote_escaped(text: &str) -> Result<String, String> {
    check_text(text)?;
    if text.contains(['\n', '\r']) {
        return Err(format!("'{}' cannot be written into an Apache configuration (line break)", text.escape_debug()));
    }
    Ok(format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// [`quote`] of a path.
pub fn quote_path(path: &Path) -> Result<String, String> {
    quote(utf8(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn words_are_quoted_or_refused() {
        assert_eq!(quote("a b").unwrap(), "\"a b\"");
        assert_eq!(quote("%{GLOBAL}").unwrap(), "\"%{GLOBAL}\"");
        for bad in ["a\"b", "a\\b", "a\nb", "a\rb", "a\0b"] {
            assert!(quote(bad).unwrap_err().contains("cannot be written"), "{bad:?}");
        }
        assert_eq!(quote_escaped("%h \"%r\" \\n").unwrap(), "\"%h \\\"%r\\\" \\\\n\"");
        assert!(quote_escaped("a\nb").is_err());
    }

    #[test]
    fn apache_variables_are_refused_everywhere() {
        // Apache would put the value of the variable HOME there, quoted or not.
        for text in ["${HOME}", "/srv/${APACHE_RUN_DIR}/x", "a${"] {
            assert!(quote(text).unwrap_err().contains("'${...}'"), "{text}");
            assert!(quote_escaped(text).unwrap_err().contains("'${...}'"), "{text}");
            assert!(check_text(text).is_err(), "{text}");
            assert!(quote_path(Path::new(text)).is_err(), "{text}");
        }
        // A lone dollar or brace is nothing to Apache.
        for text in ["$HOME", "{x}", "$ {x}", "%{ENV:X}"] {
            assert!(quote(text).is_ok() && check_text(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn paths_must_be_utf8() {
        assert_eq!(utf8(Path::new("/srv/é")).unwrap(), "/srv/é");
        let bad = Path::new(OsStr::from_bytes(b"/srv/\xff"));
        assert!(utf8(bad).unwrap_err().contains("not valid UTF-8"));
        assert!(quote_path(bad).is_err());
    }
}
