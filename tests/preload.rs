//! mod_wsgi's preloading: a `WSGIScriptAlias` (or `WSGIScriptAliasMatch` without `$`
//! substitutions in its target) that names both `process-group=` and `application-group=`
//! literally puts its script on the import list, so each process of that group (Apache's
//! children for `%{GLOBAL}`, else the daemons) loads it when it starts, before any request.
//!
//! No timings: the scripts append `pid token` to a marker file when they are executed; the
//! test waits for the markers before it sends any request, and the request then answers with
//! the token of the module it ran in (the same one: it was not executed again).

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

const APP: &str = r#"
import json, os
ROLE = os.path.splitext(os.path.basename(__file__))[0]
TOKEN = os.urandom(8).hex()
SERVED = 0
with open(os.path.join(os.path.dirname(__file__), 'markers', ROLE), 'a') as marker:
    marker.write('%d %s\n' % (os.getpid(), TOKEN))

def application(environ, start_response):
    global SERVED
    SERVED += 1
    body = json.dumps({'pid': os.getpid(), 'token': TOKEN, 'served': SERVED}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
"#;

/// The `(pid, token)` lines of `role`'s marker file (none if it does not exist).
fn markers(dir: &Path, role: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir.join("markers").join(role)).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once(' ')).map(|(p, t)| (p.to_string(), t.to_string())).collect()
}

fn wait_for_markers(apache: &Apache, role: &str) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = markers(apache.dir.path(), role);
        if !found.is_empty() {
            return found;
        }
        assert!(Instant::now() < deadline, "'{role}' was not preloaded (no request was sent yet):\n{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn script_aliases_naming_both_groups_are_loaded_at_process_start() {
    if !is_root() {
        return eprintln!("skipped: needs root to start daemons");
    }
    for mpm in [Mpm::Event, Mpm::Prefork] {
        let dir = TempDir::new(&format!("preload-{}", mpm.name()));
        for role in ["daemon_app", "embedded_app", "lazy_app", "match_app"] {
            dir.write(&format!("{role}.wsgi"), APP);
        }
        dir.write("markers/.keep", "");
        dir.write("run/.keep", "");
        let apache = Apache::start_in(
            dir,
            mpm,
            "WSGISocketPrefix {dir}/run/wsgi\n\
             WSGIDaemonProcess site processes=1 threads=2\n\
             WSGIScriptAlias /daemon {dir}/daemon_app.wsgi process-group=site application-group=%{GLOBAL}\n\
             WSGIScriptAlias /embedded {dir}/embedded_app.wsgi process-group=%{GLOBAL} application-group=embedded\n\
             WSGIScriptAlias /lazy {dir}/lazy_app.wsgi process-group=site\n\
             WSGIScriptAliasMatch ^/match/(lazy|match)$ {dir}/$1_app.wsgi process-group=site application-group=%{GLOBAL}\n",
        );
        // Before any request: the daemon and Apache's child executed their scripts.
        let daemon = wait_for_markers(&apache, "daemon_app");
        let embedded = wait_for_markers(&apache, "embedded_app");
        assert_eq!(daemon.len(), 1, "one daemon, one load: {daemon:?}");
        assert!(embedded.iter().all(|(pid, _)| *pid != daemon[0].0), "the daemon loaded embedded mode's script: {embedded:?}");

        // The first request runs in the module loaded at start.
        let seen = json(&apache, "/daemon");
        assert_eq!((seen.get("pid"), seen.get("token"), seen.get("served")), (daemon[0].0.clone(), daemon[0].1.clone(), "1".to_string()));
        assert_eq!(markers(apache.dir.path(), "daemon_app"), daemon, "executed again by the request");
        let seen = json(&apache, "/embedded");
        let line = (seen.get("pid"), seen.get("token"));
        assert!(embedded.contains(&line), "the request's module {line:?} is not the one loaded at start {embedded:?}");
        assert_eq!(markers(apache.dir.path(), "embedded_app"), embedded, "executed again by the request");

        // Without application-group= (and for a $ target) nothing was preloaded: the daemon
        // had done all its loading before it served /daemon.
        assert!(markers(apache.dir.path(), "lazy_app").is_empty(), "preloaded without application-group=");
        assert!(markers(apache.dir.path(), "match_app").is_empty(), "preloaded with a $1 target");
        assert_eq!(json(&apache, "/lazy").get("served"), "1");
        assert_eq!(markers(apache.dir.path(), "lazy_app").len(), 1, "the request loaded it");
        assert_eq!(json(&apache, "/match/match").get("served"), "1");
        let log = apache.error_log();
        assert!(log.contains("daemon_app.wsgi' into application group ''."), "{log}");
        assert!(log.contains("embedded_app.wsgi' into application group 'embedded'."), "{log}");
    }
}

#[test]
fn preloading_aliases_need_their_daemon_group_defined_above() {
    let daemon = "WSGIDaemonProcess site\n";
    for (body, reason) in [
        ("WSGIScriptAlias /a /a.wsgi process-group=nope application-group=%{GLOBAL}\n".to_string(), "WSGI process group not yet configured."),
        (format!("WSGIScriptAlias /a /a.wsgi process-group=site application-group=x\n{daemon}"), "WSGI process group not yet configured."),
        ("WSGIScriptAliasMatch ^/a /a.wsgi process-group=nope application-group=x\n".to_string(), "WSGI process group not yet configured."),
        (
            format!("<VirtualHost *>\nServerName other.example\n{daemon}</VirtualHost>\n<VirtualHost *>\nServerName localhost\nWSGIScriptAlias /a /a.wsgi process-group=site application-group=x\n</VirtualHost>\n"),
            "WSGI process group not accessible.",
        ),
    ] {
        let (ok, out) = config_test(&body);
        assert!(!ok && out.contains(reason), "{body:?}: {out}");
        assert!(out.contains("httpd.conf"), "file and line: {out}");
    }
    // Not preloaded, so not checked here (as mod_wsgi): a request finds out.
    for body in [
        "WSGIScriptAlias /a /a.wsgi process-group=nope\n".to_string(),
        "WSGIScriptAlias /a /a.wsgi process-group=%{ENV:G} application-group=x\n".to_string(),
        "WSGIScriptAliasMatch ^/(a) /$1.wsgi process-group=nope application-group=x\n".to_string(),
        format!("{daemon}WSGIScriptAlias /a /a.wsgi process-group=site application-group=%{{GLOBAL}}\n"),
        "WSGIScriptAlias /a /a.wsgi process-group=%{GLOBAL} application-group=x\n".to_string(),
    ] {
        let (ok, out) = config_test(&body);
        assert!(ok, "{body:?}: {out}");
    }
}
