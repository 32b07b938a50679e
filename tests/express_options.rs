//! `mod_wsgi-express` option handling: an option of the original that this one cannot honour
//! is refused by name, one the original ignores is ignored with a warning, bad telemetry
//! values are refused as the original refuses them, and every honoured option at once makes a
//! configuration Apache accepts.

mod common;
use common::express::*;
use common::*;
use std::process::Command;

/// An option of the original that this one cannot honour is refused by name, with the reason,
/// before anything is written: never "unknown", never ignored.
#[test]
fn unsupported_options_are_refused_by_name() {
    let dir = TempDir::new("express-refused");
    for (words, reason) in [
        (&["--debug-mode"][..], "no single-process debug mode"),
        (&["--proxy-mount-point", "/api", "http://127.0.0.1:9/"][..], "mod_proxy"),
        (&["--service-script", "worker", "w.py"][..], "threads=0"),
        (&["--free-threading"][..], "free-threaded"),
        (&["--enable-telemetry"][..], "threads=0"),
        (&["--telemetry-ui-port", "8888"][..], "--enable-telemetry"),
    ] {
        let out = Command::new(EXPRESS)
            .arg("start-server")
            .args(words)
            .args(["app.wsgi", "--server-root", dir.path().join("root").to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("option '{}' of mod_wsgi-express is not supported by mod_wsgi-rs yet: ", words[0]);
        assert!(stderr.contains(&expected) && stderr.contains(reason), "{stderr}");
        assert!(!dir.path().join("root").exists(), "nothing is written for a refused option");
    }
    let out = Command::new(EXPRESS).args(["start-server", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--embedded-mode",
        "--request-timeout SECONDS",
        "--process-group NAME",
        "--working-directory DIRECTORY",
        "--telemetry-service unix:PATH",
        "--telemetry-interval SECONDS",
        "--slow-requests SECONDS",
        "--telemetry-options FLAGS",
    ] {
        assert!(help.contains(option), "{option} missing from\n{help}");
    }
}

/// An option the original ignores without the one it completes is ignored here too, with a
/// warning, not refused; `--rotate-logs` with `--log-to-terminal` needs no rotatelogs.
#[test]
fn options_ignored_by_the_original_are_ignored_with_a_warning() {
    let dir = TempDir::new("express-ignored");
    dir.write("app.wsgi", WHERE_AM_I);
    let out = Command::new(EXPRESS)
        .args(["start-server", "app.wsgi", "--setup-only", "--server-root", "root", "--server-alias", "a.example"])
        .args(["--embedded-mode", "--max-clients", "50", "--rotate-logs", "--log-to-terminal", "--rotatelogs-executable", "/nonexistent"])
        .current_dir(dir.path())
        .env("MOD_WSGI_MODULE", module_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for warning in [
        "mod_wsgi-express: warning: --server-alias is ignored without --server-name\n",
        "mod_wsgi-express: warning: --max-clients is ignored with --embedded-mode",
        "mod_wsgi-express: warning: --rotate-logs is ignored with --log-to-terminal",
    ] {
        assert!(stderr.contains(warning), "{warning:?} missing from\n{stderr}");
    }
    let conf = std::fs::read_to_string(dir.path().join("root/httpd.conf")).unwrap();
    assert!(!conf.contains("rotatelogs") && !conf.contains("a.example") && conf.contains("WSGIScriptReloading Off"), "{conf}");
}

/// Every honoured option at once makes a configuration Apache accepts (`apachectl
/// configtest`), with the directives they stand for.
#[test]
fn all_options_together_make_a_valid_configuration() {
    let dir = TempDir::new("express-all");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("www/index.html", "index\n");
    dir.write(
        "users.py",
        "def check_password(environ, user, password):\n    return password == 'secret'\ndef groups_for_user(environ, user):\n    return ['staff']\n",
    );
    dir.write("rules.conf", "RewriteRule ^old$ new [R]\n");
    dir.write("page.py", "def application(e, s):\n    s('200 OK', [])\n    return [b'page']\n");
    let made = Command::new("/usr/bin/openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", "s.key", "-out", "s.crt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success());
    let (port, https) = two_free_ports();
    let root = dir.path().join("root");
    #[rustfmt::skip]
    let options = [
        "--port", &port.to_string(), "--server-root", root.to_str().unwrap(), "--https-port", &https.to_string(),
        "--ssl-certificate", "s", "--ssl-ca-certificate-file", "s.crt", "--ssl-verify-client", "/private", "--ssl-environment",
        "--https-only", "--hsts-policy", "max-age=60", "--server-name", "www.example.com", "--server-alias", "alias.example.com",
        "--allow-localhost", "--http2", "--document-root", "www", "--directory-index", "index.html", "--directory-listing",
        "--allow-override", "AuthConfig", "--rewrite-rules", "rules.conf", "--error-document", "404", "/missing.html",
        "--error-override", "--add-handler", ".page", "page.py", "--with-cgi", "--reload-on-changes", "--application-group", "site",
        "--chunked-request", "--enable-sendfile", "--map-head-to-get", "Off", "--trust-proxy", "10.0.0.1", "--trust-proxy-header",
        "X-Forwarded-For", "--passenv", "HOME", "--python-warnings", "ignore", "--python-eggs", "eggs", "--switch-interval", "0.01",
        "--server-metrics", "--server-status", "--keep-alive-timeout", "3", "--limit-request-body", "1000", "--header-timeout", "20",
        "--body-timeout", "20", "--ignore-activity", "/health", "--auth-user-script", "users.py", "--auth-type", "Digest",
        "--auth-group-script", "users.py", "--auth-group", "staff", "--host-access-script", "users.py", "--access-log",
        "--access-log-format", "%h \"%r\" %>s", "--error-log-format", "[%l] %M", "--log-directory", "logs", "--error-log-name",
        "errors", "--access-log-name", "hits", "--startup-log", "--rotate-logs", "--max-log-size", "2", "--pid-file", "run.pid",
        "--server-mpm", "worker", "--initial-workers", "0.5", "--minimum-spare-workers", "0.2", "--maximum-spare-workers", "0.8",
        "--response-flush-delay", "0", "--orphan-interpreter", "--verbose-debugging", "--process-name", "site-server",
        "--mime-types", "/etc/mime.types", "--modules-directory", APACHE_MODULES, "--httpd-executable", APACHE,
        "--telemetry-service", "unix:telemetry.sock", "--telemetry-interval", "2", "--slow-requests", "1",
        "--telemetry-options", "+CaptureUserAgent", "--telemetry-options", "-CaptureUserAgent +SlowRequestStacks", "app.wsgi",
    ];
    let out = Command::new(EXPRESS).arg("setup-server").args(options).current_dir(dir.path()).env("MOD_WSGI_MODULE", module_path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let checked = Command::new(root.join("apachectl")).arg("configtest").output().unwrap();
    assert!(checked.status.success(), "{}\n{}", String::from_utf8_lossy(&checked.stderr), std::fs::read_to_string(root.join("httpd.conf")).unwrap());
    let conf = std::fs::read_to_string(root.join("httpd.conf")).unwrap();
    let telemetry = format!("WSGITelemetryService \"unix:{}/telemetry.sock\" interval=2.0\n", dir.path().display());
    for want in [
        "LoadModule mpm_worker_module",
        "SSLVerifyClient require",
        "AuthDigestProvider wsgi",
        "WSGIServerMetrics On",
        "rotatelogs",
        &telemetry,
        "WSGISlowRequests 1.0\n",
        "WSGITelemetryOptions +CaptureUserAgent\n",
        "WSGITelemetryOptions -CaptureUserAgent +SlowRequestStacks\n",
    ] {
        assert!(conf.contains(want), "missing {want:?} in\n{conf}");
    }
    let control = std::fs::read_to_string(root.join("apachectl")).unwrap();
    assert!(control.contains("site-server"), "--process-name is Apache's argv[0]:\n{control}");
}

/// The telemetry options are checked as the original checks them, before anything is
/// written: `--slow-requests` needs `--telemetry-service`, which must be `unix:`; a
/// `--telemetry-options` value is checked as `WSGITelemetryOptions` will check it.
#[test]
fn telemetry_options_are_refused_as_the_original_refuses_them() {
    let dir = TempDir::new("express-telemetry-refused");
    for (words, wanted) in [
        (&["--slow-requests", "2"][..], "--slow-requests requires --telemetry-service"),
        (
            &["--telemetry-service", "udp:127.0.0.1:9000"][..],
            "--telemetry-service must be 'unix:/path' (remote 'udp:host:port' targets are no longer supported)",
        ),
        (&["--telemetry-service", "unix:/t.sock", "--slow-requests", "-1"][..], "--slow-requests threshold must be non-negative"),
        (&["--telemetry-service", "unix:/t.sock", "--telemetry-interval", "0.25"][..], "WSGITelemetryService interval must be at least 0.5 seconds"),
        (&["--telemetry-service", "unix:/t.sock", "--telemetry-options", "+Bogus"][..], "WSGITelemetryOptions: unknown flag 'Bogus'"),
    ] {
        let out = Command::new(EXPRESS)
            .arg("setup-server")
            .args(words)
            .args(["app.wsgi", "--server-root", dir.path().join("root").to_str().unwrap()])
            .current_dir(dir.path())
            .env("MOD_WSGI_MODULE", module_path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{words:?}: {stderr}");
        assert!(stderr.contains(wanted), "{words:?}: {stderr}");
        assert!(!dir.path().join("root").exists(), "nothing is written for a refused value");
    }
}
