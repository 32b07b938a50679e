//! The locale the server runs with when `--locale` is not given, decided as the original
//! does: this process's own locale, except that `C` and `POSIX` (plain ASCII, which makes
//! Python reject non-ASCII file names and output) are replaced by `en_US.UTF-8` or `C.UTF-8`,
//! whichever the system has.

/// This process's locale from the environment, in the order Python's `getdefaultlocale`
/// reads it, then upgraded from `C`/`POSIX` when a UTF-8 locale is installed.
pub fn default_locale() -> String {
    let from_env = ["LC_ALL", "LC_CTYPE", "LANG", "LANGUAGE"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|value| value.split(':').next().unwrap_or_default().to_string())
        .find(|value| !value.is_empty())
        .unwrap_or_else(|| "C".to_string());
    upgrade(&from_env, installed)
}

/// `locale`, or the first UTF-8 replacement `available` accepts when it is `C` or `POSIX`.
fn upgrade(locale: &str, available: impl Fn(&str) -> bool) -> String {
    let plain = locale.eq_ignore_ascii_case("C") || locale.eq_ignore_ascii_case("POSIX");
    if plain {
        if let Some(better) = ["en_US.UTF-8", "C.UTF-8"].into_iter().find(|l| available(l)) {
            return better.to_string();
        }
    }
    locale.to_string()
}

/// Whether the C library can load `name`; `newlocale` rather than `setlocale`, so that this
/// process's own locale is left alone.
fn installed(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else { return false };
    // SAFETY: name is NUL-terminated; a base of 0 asks for a new locale object, which is
    // freed at once when one was made.
    unsafe {
        let locale = libc::newlocale(libc::LC_ALL_MASK, name.as_ptr(), std::ptr::null_mut());
        if locale.is_null() {
            return false;
        }
        libc::freelocale(locale);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_locales_are_upgraded_when_possible() {
        assert_eq!(upgrade("C", |l| l == "C.UTF-8"), "C.UTF-8");
        assert_eq!(upgrade("POSIX", |_| true), "en_US.UTF-8");
        assert_eq!(upgrade("C", |_| false), "C");
        assert_eq!(upgrade("de_DE.UTF-8", |_| true), "de_DE.UTF-8");
        assert!(installed("C") && !installed("xx_NOPE.nothing"));
    }
}
