//! Parsers of a single directive value, with mod_wsgi's messages: `On`/`Off`, a callable
//! object's name, `replicas=`, `WSGIPythonConcurrency`, `WSGIPythonQueueTimeout`,
//! `WSGIMapHEADToGET` and `WSGIAcceptMutex`. Pure functions, shared by several handlers and
//! unit-tested here without Apache.

use super::*;

pub(super) fn check_identifier(name: &str) -> Result<(), String> {
    if let Some(variable) = name.strip_prefix("%{ENV:").and_then(|r| r.strip_suffix('}')) {
        if !variable.is_empty() {
            return Ok(());
        }
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid callable object name '{name}': must be a Python identifier or %{{ENV:variable}}"))
    }
}

/// `On`/`Off`, case-insensitive, with mod_wsgi's wording.
pub fn parse_on_off(name: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{name} must be one of: Off | On")),
    }
}

/// `replicas=N` (ours): how many interpreters, each with its own GIL, serve one application
/// group in a process; 1 to [`abi::replicas::MAX`].
pub fn parse_replicas(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if (1..=crate::abi::replicas::MAX).contains(&n) => Ok(n),
        _ => Err(format!("replicas={value}: expected a number of interpreters from 1 to {}", crate::abi::replicas::MAX)),
    }
}

/// `off` (0), `auto` (-1) or a positive number.
pub fn parse_concurrency(value: &str) -> Result<i32, String> {
    match value.to_ascii_lowercase().as_str() {
        "off" => Ok(0),
        "auto" => Ok(-1),
        n => match n.parse::<i32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("WSGIPythonConcurrency must be off, auto or a number of threads (1 or more), got '{value}'")),
        },
    }
}

/// Seconds, fractions allowed, more than zero.
pub fn parse_timeout(value: &str) -> Result<u64, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s < 1e9 => Ok((s * 1000.0).ceil() as u64),
        _ => Err(format!("WSGIPythonQueueTimeout must be a number of seconds greater than 0, got '{value}'")),
    }
}

/// `Off`, `On` or `Auto`, with mod_wsgi's wording.
pub fn parse_map_head(value: &str) -> Result<MapHead, String> {
    match value.to_ascii_lowercase().as_str() {
        "off" => Ok(MapHead::Off),
        "on" => Ok(MapHead::On),
        "auto" => Ok(MapHead::Auto),
        _ => Err("WSGIMapHEADToGET must be one of: Off | On | Auto".into()),
    }
}

/// The mechanisms mod_wsgi accepts on Linux (APR has them all there).
const ACCEPT_MUTEXES: [&str; 6] = ["default", "flock", "fcntl", "sysvsem", "posixsem", "pthread"];

/// `WSGIAcceptMutex`: checked as mod_wsgi checks it (same values and message), then not used:
/// mod_wsgi serialises `accept` between a group's processes with a lock of this kind; the
/// daemons here poll a non-blocking socket, where the kernel hands each connection to one
/// process, and need no lock. mod_wsgi logs nothing for it either.
pub fn parse_accept_mutex(value: &str) -> Result<(), String> {
    if ACCEPT_MUTEXES.iter().any(|m| m.eq_ignore_ascii_case(value)) {
        return Ok(());
    }
    Err(format!(
        "Accept mutex lock mechanism '{value}' is invalid. Valid accept mutex mechanisms for this platform are: {}.",
        ACCEPT_MUTEXES.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_and_timeout() {
        assert_eq!(parse_concurrency("auto"), Ok(-1));
        assert_eq!(parse_concurrency("Off"), Ok(0));
        assert_eq!(parse_concurrency("4"), Ok(4));
        assert!(parse_concurrency("0").is_err());
        assert!(parse_concurrency("many").is_err());
        assert_eq!(parse_timeout("2.5"), Ok(2500));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
    }

    #[test]
    fn accept_mutex() {
        assert!(parse_accept_mutex("fcntl").is_ok());
        assert!(parse_accept_mutex("Default").is_ok());
        assert_eq!(
            parse_accept_mutex("spin").unwrap_err(),
            "Accept mutex lock mechanism 'spin' is invalid. Valid accept mutex mechanisms for this platform are: default, flock, fcntl, sysvsem, posixsem, pthread."
        );
    }

    #[test]
    fn on_off() {
        assert_eq!(parse_on_off("X", "ON"), Ok(true));
        assert_eq!(parse_on_off("X", "off"), Ok(false));
        assert!(parse_on_off("X", "yes").is_err());
    }
}
