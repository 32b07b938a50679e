//! The Python side of `httpd.conf`: the interpreter's settings, in Apache's children or in the
//! daemon group, and the `WSGIPythonPath` values. How requests reach the application is
//! `application.rs`'s.

use super::application::{application, resource_handler};
use super::Site;
use crate::cli::{App, Flag, List, ServerOptions};
use crate::conf_syntax::{quote, quote_path, utf8};

/// The Python side: the interpreter's settings, the daemon group, and how requests reach the
/// application.
pub(super) fn wsgi_section(site: &Site) -> Result<String, String> {
    let o = site.opts;
    let mut text = String::new();
    if let Some(home) = &o.python_home {
        text.push_str(&format!("WSGIPythonHome {}\n", quote_path(home)?));
    }
    let home = o.working_directory.as_deref().ok_or("the working directory was not resolved")?;
    if !o.runs_python() {
        // No application: Python starts only for the access scripts, if any.
        text.push_str("WSGIRestrictEmbedded On\n");
    } else if o.embedded {
        // As the original: the working directory comes first in the module search path
        // (a daemon group puts its home= there itself).
        let path: Vec<_> = std::iter::once(home.to_path_buf()).chain(o.python_path.iter().cloned()).collect();
        text.push_str(&format!("WSGIPythonPath {}\n", quote(&python_path(&path)?)?));
        if let Some(eggs) = &o.python_eggs {
            text.push_str(&format!("WSGIPythonEggs {}\n", quote_path(eggs)?));
        }
    } else {
        let sockets = o.socket_prefix.as_deref().unwrap_or(site.server_root);
        text.push_str(&crate::daemon::directives(o, home, sockets, site.uid)?);
        text.push('\n');
    }
    text.push_str(&interpreter_settings(o)?);
    if !matches!(o.app, App::Static(_)) {
        text.push_str(&application(site)?);
    }
    text.push_str(&resource_handler(site)?);
    Ok(text)
}

/// Directives of the interpreters, each from one option.
fn interpreter_settings(o: &ServerOptions) -> Result<String, String> {
    let mut text = String::new();
    for spec in o.list(List::PythonWarnings) {
        text.push_str(&format!("WSGIPythonWarnings {}\n", quote(spec)?));
    }
    if let Some(seconds) = &o.switch_interval {
        text.push_str(&format!("WSGISwitchInterval {seconds}\n"));
    }
    let switches = [
        (Flag::ServerMetrics, "WSGIServerMetrics On\nExtendedStatus On"),
        (Flag::VerboseDebugging, "WSGIVerboseDebugging On"),
        (Flag::OrphanInterpreter, "WSGIDestroyInterpreter Off"),
        (Flag::DisableReloading, "WSGIScriptReloading Off"),
    ];
    for (flag, lines) in switches {
        if o.flag(flag) {
            text.push_str(lines);
            text.push('\n');
        }
    }
    text.push_str(&o.telemetry.directives()?);
    Ok(text)
}

/// A `WSGIPythonPath` (or `python-path=`) value: the directories joined with ':'.
pub fn python_path(dirs: &[std::path::PathBuf]) -> Result<String, String> {
    let mut parts = Vec::new();
    for p in dirs {
        let text = utf8(p)?;
        if text.contains(':') {
            return Err(format!("--python-path '{text}' contains ':', which separates WSGIPythonPath entries"));
        }
        parts.push(text);
    }
    Ok(parts.join(":"))
}

#[cfg(test)]
mod tests {
    use crate::template::tests::{assert_lines, conf, lines, opts};
    use std::path::PathBuf;

    #[test]
    fn daemon_mode_takes_the_python_path_and_the_socket_prefix() {
        let mut o = opts(&["start-server", "--python-path", "/a", "--socket-timeout", "9", "/srv/app.wsgi"]);
        o.socket_prefix = Some(PathBuf::from("/run/x"));
        let text = conf(&o, None);
        let l = lines(&text);
        for want in ["\"python-path=/a\" \\", "socket-timeout=9 \\", "Timeout 9", "WSGISocketPrefix \"/run/x/wsgi\""] {
            assert!(l.contains(&want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("WSGIPythonPath"), "{text}");
    }

    /// The telemetry options write the original's directives, in its order, at the top level
    /// of the configuration (the module takes them in the main server only), the interval and
    /// the threshold as Python writes a float.
    #[test]
    fn telemetry_directives() {
        let o = opts(&[
            "start-server",
            "--telemetry-service",
            "unix:/run/t.sock",
            "--telemetry-interval",
            "2",
            "--slow-requests",
            "0.25",
            "--telemetry-options",
            "+CaptureUserAgent",
            "--telemetry-options",
            "None SlowRequestStacks",
            "--https-port",
            "8443",
            "--ssl-certificate",
            "/srv/c",
            "/srv/app.wsgi",
        ]);
        let text = conf(&o, None);
        let want = "WSGITelemetryService \"unix:/run/t.sock\" interval=2.0\nWSGISlowRequests 0.25\nWSGITelemetryOptions +CaptureUserAgent\nWSGITelemetryOptions None SlowRequestStacks\n";
        let at = text.find(want).unwrap_or_else(|| panic!("{want:?} missing from\n{text}"));
        assert!(text[..at].matches("<VirtualHost").count() == text[..at].matches("</VirtualHost>").count(), "inside a virtual host:\n{text}");
        let o = opts(&["start-server", "--telemetry-service", "unix:/t", "--telemetry-interval", "1e16", "--slow-requests", "0", "x.wsgi"]);
        assert_lines(&conf(&o, None), &["WSGITelemetryService \"unix:/t\" interval=1e+16", "WSGISlowRequests 0.0"]);
        // Nothing of it by default, nor the interval alone.
        for words in [&["start-server", "x.wsgi"][..], &["start-server", "--telemetry-interval", "5", "x.wsgi"]] {
            let text = conf(&opts(words), None);
            assert!(!text.contains("WSGITelemetry") && !text.contains("WSGISlowRequests"), "{text}");
        }
    }
}
