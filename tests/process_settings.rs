//! mod_wsgi's directives for how Python starts and ends in each process, and the ones accepted
//! for compatibility (issue 13): `WSGIPythonHashSeed` and `WSGIPythonEggs` reach Python (in
//! Apache's children and, for the seed, in daemons), `WSGIDestroyInterpreter Off` ends a child
//! without finalising Python (no `atexit` callbacks), `WSGIIgnoreActivity` requests do not keep
//! a daemon alive past its `inactivity-timeout`, and the accepted-only directives start with a
//! warning, their bad values stopping `apache2 -t` with mod_wsgi's messages.

mod common;
use common::*;
use std::time::{Duration, Instant};

const APP: &str = r#"
import atexit, json, os, sys
import mod_wsgi

def _at_exit():
    sys.stderr.write('atexit ran in %d\n' % os.getpid())
    sys.stderr.flush()

def _stopping(event, **kwargs):
    sys.stderr.write('process_stopping heard in %d\n' % os.getpid())
    sys.stderr.flush()

atexit.register(_at_exit)
mod_wsgi.subscribe_shutdown(_stopping)

def application(environ, start_response):
    body = json.dumps({
        'pid': os.getpid(),
        'seed': os.environ.get('PYTHONHASHSEED'),
        'randomized': sys.flags.hash_randomization,
        'eggs': os.environ.get('PYTHON_EGG_CACHE'),
        'ignore': environ.get('mod_wsgi.ignore_activity'),
        'leaked': 'mod_wsgi.x-ignore_activity' in environ,
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
"#;

fn site(tag: &str, config: &str) -> Apache {
    let dir = TempDir::new(tag);
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    Apache::start_in(dir, Mpm::Event, config)
}

#[test]
fn hash_seed_and_eggs_reach_python_and_destroy_interpreter_off_skips_finalisation() {
    let mut apache = site(
        "process-settings",
        "WSGIPythonHashSeed 0\nWSGIPythonEggs /tmp/eggs-cache\nWSGIDestroyInterpreter Off\n\
         WSGIScriptAlias / {dir}/app.wsgi application-group=%{GLOBAL}\n",
    );
    let state = json(&apache, "/");
    // Seed 0 turns hash randomisation off: Python got it as it started; it is not left in the
    // environment that subprocesses inherit (as mod_wsgi).
    assert_eq!((state.get("seed"), state.get("randomized")), ("null".to_string(), "0".to_string()), "{}", apache.error_log());
    assert_eq!(state.get("eggs"), "/tmp/eggs-cache");
    let stopped = std::time::Instant::now();
    apache.stop_gracefully();
    let log = apache.error_log();
    // The shutdown subscribers still hear it; Python is not finalised (no atexit), and the
    // stop did not wait for a hung child to be killed.
    assert!(log.contains("process_stopping heard"), "{log}");
    assert!(log.contains("Python is not finalised: WSGIDestroyInterpreter Off."), "{log}");
    assert!(!log.contains("atexit ran"), "WSGIDestroyInterpreter Off finalised Python anyway:\n{log}");
    assert!(stopped.elapsed() < Duration::from_secs(4), "{:?}\n{log}", stopped.elapsed());
    assert!(crash_lines(&log).is_empty(), "{log}");
}

#[test]
fn by_default_python_is_finalised_and_hashes_are_random() {
    let mut apache = site("process-settings-default", "WSGIScriptAlias / {dir}/app.wsgi application-group=%{GLOBAL}\n");
    let state = json(&apache, "/");
    if std::env::var_os("PYTHONHASHSEED").is_none() {
        assert_eq!((state.get("seed"), state.get("randomized")), ("null".to_string(), "1".to_string()));
    }
    apache.stop_gracefully();
    let log = apache.wait_for_log("atexit ran");
    assert!(log.contains("atexit ran"), "{log}");
}

/// A daemon with `inactivity-timeout=2`: requests to a `WSGIIgnoreActivity On` location do not
/// keep it alive, while ordinary ones do; the daemon gets the hash seed too.
#[test]
fn ignored_activity_does_not_keep_a_daemon_alive() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = site(
        "ignore-activity",
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {dir}/run/wsgi\nWSGIPythonHashSeed 7\n\
         WSGIDaemonProcess site user=nobody inactivity-timeout=2\n\
         WSGIScriptAlias / {dir}/app.wsgi process-group=site application-group=%{GLOBAL}\n\
         <Location /health>\n    WSGIIgnoreActivity On\n</Location>\n",
    );
    let first = json(&apache, "/");
    assert_eq!((first.get("seed"), first.get("randomized")), ("null".to_string(), "1".to_string()));
    let before = first.get("pid");
    // Polling the health URL every half second for 4 s: the daemon still times out.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut restarted = false;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let health = json(&apache, "/health");
        assert_eq!(health.get("leaked"), "false", "the daemon's word reached the application");
        assert_eq!(health.get("ignore"), "1");
        if health.get("pid") != before {
            restarted = true;
            break;
        }
    }
    assert!(restarted, "requests under WSGIIgnoreActivity kept the daemon alive:\n{}", apache.error_log());
    assert!(apache.error_log().contains("Daemon process inactivity timer expired, stopping process 'site'."));
    // Ordinary requests at the same pace keep the new one.
    let kept = json(&apache, "/").get("pid");
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(json(&apache, "/").get("pid"), kept, "busy, so not inactive:\n{}", apache.error_log());
    }
    assert!(crash_lines(&apache.error_log()).is_empty(), "{}", apache.error_log());
}

#[test]
fn accepted_directives_and_their_errors() {
    let (ok, out) = config_test(
        "WSGIVerboseDebugging On\nWSGICaseSensitivity Off\nWSGIEnableSendfile On\nWSGIIgnoreActivity Off\n\
         WSGITelemetryService unix:/run/t.sock interval=5\nWSGITelemetryOptions +CaptureUserAgent\nWSGISlowRequests 2.5\n\
         WSGINewRelicConfigFile /etc/newrelic.ini\nWSGINewRelicEnvironment production\nWSGIDestroyInterpreter On\n",
    );
    assert!(ok, "{out}");
    let warning = "WSGINewRelicConfigFile";
    let line = out.lines().find(|l| l.contains(warning) && l.contains("is not implemented by mod_wsgi-rs"));
    assert!(line.is_some(), "no warning for {warning}:\n{out}");
    // Telemetry works (tests/telemetry.rs): no warning.
    assert!(!out.contains("Telemetry") && !out.contains("SlowRequests"), "{out}");
    for (body, message) in [
        ("WSGIPythonHashSeed 4294967296\n", "WSGIPythonHashSeed must be \"random\" or an integer in range [0; 4294967295]"),
        ("WSGIPythonHashSeed lucky\n", "WSGIPythonHashSeed must be \"random\""),
        ("WSGIDestroyInterpreter Maybe\n", "WSGIDestroyInterpreter must be one of: Off | On"),
        ("WSGIVerboseDebugging 1\n", "WSGIVerboseDebugging must be one of: Off | On"),
        ("WSGICaseSensitivity yes\n", "WSGICaseSensitivity must be one of: Off | On"),
        ("WSGIEnableSendfile perhaps\n", "WSGIEnableSendfile must be one of: Off | On"),
        ("WSGITelemetryService tcp:1.2.3.4\n", "WSGITelemetryService target must be 'unix:/path'"),
        ("WSGITelemetryService unix:/t interval=0.1\n", "WSGITelemetryService interval must be at least 0.5 seconds"),
        ("WSGITelemetryOptions +requests\n", "WSGITelemetryOptions: unknown flag 'requests'"),
        ("WSGISlowRequests -1\n", "WSGISlowRequests threshold must be non-negative"),
        ("<VirtualHost *:80>\nWSGIPythonHashSeed 1\n</VirtualHost>\n", "WSGIPythonHashSeed cannot occur within <VirtualHost> section"),
        ("<VirtualHost *:80>\nWSGIDestroyInterpreter Off\n</VirtualHost>\n", "WSGIDestroyInterpreter cannot occur within <VirtualHost> section"),
    ] {
        let (ok, out) = config_test(body);
        assert!(!ok, "accepted: {body}\n{out}");
        assert!(out.contains(message), "{body}: expected {message:?} in\n{out}");
        assert!(out.contains("httpd.conf"), "no file and line: {out}");
    }
}
