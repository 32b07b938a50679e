//! mod_wsgi 6.1's telemetry, as the original mod_wsgi-express (6.1.1) generates it:
//! `--telemetry-service unix:PATH` writes `WSGITelemetryService unix:PATH interval=SECONDS`
//! (`--telemetry-interval`, default 1.0, written as Python writes a float), `--slow-requests`
//! writes `WSGISlowRequests` (only with `--telemetry-service`, as the original), and each
//! `--telemetry-options` writes one `WSGITelemetryOptions` line with the value as given.
//!
//! The original checks the target's `unix:` and the threshold's sign itself and leaves the rest
//! to Apache; here every value is checked as the module's directive will check it, so that
//! `setup-server` never writes a configuration Apache refuses.

use crate::cli::{Raw, UsageError};
use crate::conf_syntax::{check_text, quote, utf8};
use std::path::PathBuf;

/// `sockaddr_un`'s `sun_path`: 108 bytes, the NUL included.
const SUN_PATH: usize = 108;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Telemetry {
    /// The socket of `--telemetry-service unix:PATH` (made absolute by setup); `None`: off.
    pub service: Option<PathBuf>,
    /// `--telemetry-interval`, in seconds: at least 0.5 when there is a service.
    pub interval: f64,
    /// `--slow-requests`, in seconds (only with a service).
    pub slow_requests: Option<f64>,
    /// `--telemetry-options`, each as given, in order.
    pub options: Vec<String>,
}

impl Telemetry {
    /// The telemetry options, checked in the original's order: the numbers as its optparse reads
    /// them, then the target, then the slow-request threshold.
    pub fn parse(raw: &Raw) -> Result<Telemetry, UsageError> {
        let interval = seconds(raw, "telemetry-interval")?.unwrap_or(1.0);
        let slow_requests = seconds(raw, "slow-requests")?;
        // An empty target is no target, as in the original.
        let service = match raw.one("telemetry-service").filter(|t| !t.is_empty()) {
            None => None,
            Some(target) => match target.strip_prefix("unix:") {
                None => {
                    return Err(
                        raw.error("--telemetry-service must be 'unix:/path' (remote 'udp:host:port' targets are no longer supported)".to_string())
                    )
                }
                Some("") => return Err(raw.error("invalid --telemetry-service 'unix:': no socket path after 'unix:'".to_string())),
                Some(path) => Some(PathBuf::from(path)),
            },
        };
        if let Some(threshold) = slow_requests {
            if threshold < 0.0 {
                return Err(raw.error("--slow-requests threshold must be non-negative".to_string()));
            }
            if service.is_none() {
                return Err(raw.error("--slow-requests requires --telemetry-service".to_string()));
            }
            if !threshold.is_finite() {
                return Err(
                    raw.error(format!("invalid --slow-requests '{}': must be a number of seconds", raw.one("slow-requests").unwrap_or_default()))
                );
            }
        }
        if service.is_some() && !(interval >= 0.5 && interval.is_finite()) {
            let text = raw.one("telemetry-interval").unwrap_or_default();
            return Err(raw.error(format!("invalid --telemetry-interval '{text}': WSGITelemetryService interval must be at least 0.5 seconds")));
        }
        let options: Vec<String> = raw.all("telemetry-options").into_iter().map(|v| v[0].clone()).collect();
        // Applied one after another, as Apache will read the lines.
        let mut flags = [false; 2];
        for value in &options {
            let checked = check_text(value)
                .and_then(|()| if value.contains(['\n', '\r']) { Err("a line break".to_string()) } else { Ok(()) })
                .and_then(|()| mod_wsgi::module::args::split_words(value))
                .and_then(|words| mod_wsgi::module::apply_telemetry_options(&words, flags));
            match checked {
                Ok(now) => flags = now,
                Err(why) => return Err(raw.error(format!("invalid --telemetry-options '{}': {why}", value.escape_debug()))),
            }
        }
        Ok(Telemetry { service, interval, slow_requests, options })
    }

    /// The directives, in the original's order. `--telemetry-options` lines are written even
    /// without a service, as the original writes them.
    pub fn directives(&self) -> Result<String, String> {
        let mut text = String::new();
        if let Some(path) = &self.service {
            let target = quote(&format!("unix:{}", utf8(path)?))?;
            text.push_str(&format!("WSGITelemetryService {target} interval={}\n", python_float(self.interval)));
            if let Some(threshold) = self.slow_requests {
                text.push_str(&format!("WSGISlowRequests {}\n", python_float(threshold)));
            }
        }
        for value in &self.options {
            text.push_str(&format!("WSGITelemetryOptions {value}\n"));
        }
        Ok(text)
    }

    /// Checks the socket path once it is absolute: the module refuses one too long for a Unix
    /// socket address.
    pub fn check_path(&self) -> Result<(), String> {
        match &self.service {
            Some(path) if path.as_os_str().len() >= SUN_PATH => Err(format!(
                "--telemetry-service '{}': the path is {} bytes long; a Unix socket path must be shorter than {SUN_PATH}",
                path.display(),
                path.as_os_str().len()
            )),
            _ => Ok(()),
        }
    }
}

/// A number of seconds as the original's optparse (`type='float'`) reads it: Python's
/// `float()`, which takes surrounding white space and `_` between digits.
fn seconds(raw: &Raw, name: &str) -> Result<Option<f64>, UsageError> {
    let Some(text) = raw.one(name) else { return Ok(None) };
    match parse_python_float(&text) {
        Some(v) => Ok(Some(v)),
        None => Err(raw.error(format!("invalid --{name} '{text}': must be a number of seconds"))),
    }
}

/// Python's `float(text)` for ASCII text.
pub fn parse_python_float(text: &str) -> Option<f64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let digit = |i: Option<usize>| i.and_then(|i| bytes.get(i)).is_some_and(u8::is_ascii_digit);
    if bytes.iter().enumerate().any(|(i, b)| *b == b'_' && !(digit(i.checked_sub(1)) && digit(Some(i + 1)))) {
        return None;
    }
    text.replace('_', "").parse::<f64>().ok()
}

/// A float as Python's `str()` writes it (`1.0`, `0.75`, `1e-05`, `1e+16`), which is how the
/// original writes `%(telemetry_interval)s` and `%(slow_requests)s`: Rust's shortest form,
/// with Python's exponent.
pub fn python_float(v: f64) -> String {
    let text = format!("{v:?}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let e: i32 = exponent.parse().unwrap_or(0);
            format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.unsigned_abs())
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_read_and_written_as_python_does() {
        for (text, value) in [("1", 1.0), (" 2.5 ", 2.5), ("1_0.5", 10.5), ("1e1_0", 1e10), (".5", 0.5), ("5.", 5.0), ("-0", -0.0), ("1E3", 1000.0)] {
            assert_eq!(parse_python_float(text), Some(value), "{text:?}");
        }
        assert!(parse_python_float("inf").is_some_and(f64::is_infinite) && parse_python_float("nan").is_some_and(f64::is_nan));
        for bad in ["", "abc", "1_", "_1", "1__0", "1._5", "0x10", "1 2", "1,5"] {
            assert_eq!(parse_python_float(bad), None, "{bad:?}");
        }
        // What Python 3's str() gives for each.
        for (value, python) in [
            (1.0, "1.0"),
            (2.0, "2.0"),
            (0.75, "0.75"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(python_float(value), python);
        }
    }
}
