//! Replicas (issue 11, ours): one application group served by N interpreters of one process,
//! each with its own GIL (Python 3.12 and 3.13 engines, `scripts/pythons 3.12 3.13`).
//!
//! Each interpreter that imports the app draws a random token, so a response says which
//! replica served it. Parallelism is shown without timings, as in `own_gil.rs`: a request
//! holds its GIL (switch interval 1000 s, spinning in bytecode on a shared `mmap`) until
//! another request writes a byte into the mapping; that second request goes to the same
//! group, so it can only run if another replica, on another GIL, takes it.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The app, after the race helpers (`common::GIL_RACE_PY`).
fn app() -> String {
    format!("{GIL_RACE_PY}{APP}")
}

const APP: &str = r#"
import os
import mod_wsgi

TOKEN = os.urandom(6).hex()

def work():
    total = 0
    for i in range(20000):
        total += i * i % 7
    return total

def application(environ, start_response):
    path = environ['PATH_INFO']
    qs = environ.get('QUERY_STRING', '')
    if path == '/token':
        body = TOKEN
    elif path == '/work':
        body = '%s %d' % (TOKEN, work())
    elif path == '/environ':
        body = 'group=%s replicas-key=%s' % (environ['mod_wsgi.application_group'], 'mod_wsgi.replicas' in environ)
    elif path == '/spin':
        path_, bound = qs.split(',')
        body = '%s %s' % (spin(path_, float(bound)), TOKEN)
    elif path == '/gate':
        gates = mod_wsgi.process_metrics()['own_gil_gates']
        g = gates.get(qs.replace('%23', '#'))
        body = 'none' if g is None else 'concurrency=%d peak_active=%d queued_ever=%s gates=%d' % (
            g['python_concurrency'], g['python_peak_active'], g['python_peak_queued'] > 0, len(gates))
    elif path == '/poke':
        poke(qs)
        body = 'poked %s' % TOKEN
    else:
        body = 'unknown'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn ok(apache: &Apache, path: &str) -> String {
    let r = apache.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}\n{}", r.text(), apache.error_log());
    r.text()
}

/// Spins in `/{prefix}/spin` until `/{prefix}/poke` (the same group) pokes (see
/// `common::gil_race`); returns (what the spin reported, the spinning replica's token, the
/// poking one's).
fn race(apache: &Apache, prefix: &str, bound: u32) -> (String, String, String) {
    let (spun, poked) = gil_race(apache, &format!("/{prefix}/spin"), &format!("/{prefix}/poke"), bound);
    let (seen, spin_token) = spun.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).unwrap();
    (seen, spin_token, poked.trim_start_matches("poked ").to_string())
}

/// The tokens of the replicas that served `clients` x `each` concurrent `/{prefix}/work`
/// requests, every response checked.
fn tokens_under_load(apache: &Apache, prefix: &str, clients: usize, each: usize) -> BTreeSet<String> {
    let want_work: u64 = (0..20000u64).map(|i| i * i % 7).sum();
    let results = hammer(apache.port, clients, each, |n| Request::get(format!("/{prefix}/work?{n}")));
    let mut tokens = BTreeSet::new();
    let mut failures = Vec::new();
    for (request, outcome) in &results {
        match outcome {
            Ok(r) if r.status == 200 => match r.text().split_once(' ') {
                Some((token, work)) if work == want_work.to_string() => {
                    tokens.insert(token.to_string());
                }
                _ => failures.push(format!("{}: {:?}", request.path, r.text())),
            },
            Ok(r) => failures.push(format!("{}: {} {:?}", request.path, r.status, r.text())),
            Err(e) => failures.push(format!("{}: {e}", request.path)),
        }
    }
    assert!(failures.is_empty(), "{} of {} failed: {:?}\n{}", failures.len(), results.len(), &failures[..failures.len().min(10)], apache.error_log());
    tokens
}

fn serves_replicas(version: &str) {
    let Some(home) = python_home(version) else { return };
    for mpm in [Mpm::Event, Mpm::Worker] {
        let dir = TempDir::new("replicas");
        dir.write("app.wsgi", &app());
        // r: 2 replicas from its container, preloaded; l: 3 from WSGIApplicationGroup in a
        // <Location>; a: replicas= on the alias; one: a plain own-GIL group.
        let config = format!(
            "WSGIPythonHome {home}\n\
             WSGIPerInterpreterGIL On\n\
             <WSGIInterpreterOptions application-group=r replicas=2>\n</WSGIInterpreterOptions>\n\
             WSGIImportScript {{dir}}/app.wsgi process-group=%{{GLOBAL}} application-group=r\n\
             WSGIScriptAlias /r {{dir}}/app.wsgi application-group=r\n\
             WSGIScriptAlias /a {{dir}}/app.wsgi application-group=a replicas=2\n\
             WSGIScriptAlias /one {{dir}}/app.wsgi application-group=one\n\
             WSGIScriptAlias /l {{dir}}/app.wsgi\n\
             <Location /l>\n    WSGIApplicationGroup l replicas=3\n</Location>\n"
        );
        let mut apache = Apache::start_in(dir, mpm, &config);
        // Both replicas of r import the script when the child starts.
        let deadline = Instant::now() + Duration::from_secs(60);
        while apache.error_log().matches("Imported WSGI script").count() < 2 {
            assert!(Instant::now() < deadline, "{mpm:?}: r's replicas were not preloaded\n{}", apache.error_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = apache.error_log();
        for line in ["Create interpreter 'r' with own GIL.", "Create interpreter 'r' (replica 2) with own GIL."] {
            assert!(log.contains(line), "{mpm:?}: no line {line:?}\n{log}");
        }
        // Every replica is the group to the application; the module's word to the engine is
        // not in the environ.
        assert_eq!(ok(&apache, "/r/environ"), "group=r replicas-key=False");
        assert_eq!(ok(&apache, "/l/environ"), "group=l replicas-key=False");

        // A request that holds one replica's GIL does not stop the next request to the same
        // group: it goes to the other replica, which runs meanwhile.
        for prefix in ["r", "a", "l"] {
            let (seen, spinner, poker) = race(&apache, prefix, 60);
            assert_eq!(seen, "seen", "{mpm:?}: /{prefix}: two requests to one group did not run in parallel\n{}", apache.error_log());
            assert_ne!(spinner, poker, "{mpm:?}: /{prefix}: both requests in one replica");
        }
        // One own-GIL group without replicas cannot (the proof that the race can tell).
        let (seen, spinner, poker) = race(&apache, "one", 3);
        assert_eq!((seen.as_str(), spinner == poker), ("timeout", true), "{mpm:?}: /one\n{}", apache.error_log());

        // Under load from every thread, every response is right and comes from the group's
        // replicas: exactly two for r, at most three for l, one for `one`.
        assert_eq!(tokens_under_load(&apache, "r", 16, 15).len(), 2, "{mpm:?}");
        let l = tokens_under_load(&apache, "l", 16, 15);
        assert!((2..=3).contains(&l.len()), "{mpm:?}: l served by {l:?}");
        assert_eq!(tokens_under_load(&apache, "one", 8, 5).len(), 1, "{mpm:?}");

        apache.stop_gracefully();
        let log = apache.error_log();
        assert!(crash_lines(&log).is_empty(), "{mpm:?}: {:?}\n{log}", crash_lines(&log));
    }
}

#[test]
fn replicas_on_python_3_12() {
    serves_replicas("3.12");
}

#[test]
fn replicas_on_python_3_13() {
    serves_replicas("3.13");
}

/// In a daemon group: the child passes the alias's replicas= to the daemon.
#[test]
fn replicas_in_a_daemon_group() {
    let Some(home) = python_home("3.12") else { return };
    let dir = TempDir::new("replicas-daemon");
    dir.write("app.wsgi", &app());
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess site python-home={home} threads=4\n\
         WSGIPerInterpreterGIL On\n\
         WSGIScriptAlias /d {{dir}}/app.wsgi process-group=site application-group=d replicas=2\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let (seen, spinner, poker) = race(&apache, "d", 60);
    assert_eq!(seen, "seen", "{}", apache.error_log());
    assert_ne!(spinner, poker);
    assert_eq!(tokens_under_load(&apache, "d", 8, 10).len(), 2);
}

/// On the shared GIL (Python 3.11 here) replicas would only queue for one lock: one
/// interpreter serves the group, and the log says why.
#[test]
fn replicas_on_the_shared_gil_are_one_interpreter() {
    let dir = TempDir::new("replicas-shared");
    dir.write("app.wsgi", &app());
    let apache = Apache::start_in(dir, Mpm::Event, "WSGIScriptAlias /s {dir}/app.wsgi application-group=s replicas=2\n");
    assert_eq!(tokens_under_load(&apache, "s", 8, 5).len(), 1);
    let log = apache.error_log();
    assert!(log.contains("replicas=2 for application group 's' has no effect: its interpreter shares the main GIL"), "{log}");
}

#[test]
fn bad_replicas_stop_the_configuration() {
    for (body, message) in [
        ("WSGIScriptAlias /a {dir}/app.wsgi replicas=0\n", "replicas=0: expected a number of interpreters from 1 to 32"),
        ("WSGIScriptAlias /a {dir}/app.wsgi replicas=x\n", "replicas=x: expected a number"),
        ("WSGIApplicationGroup a replicas=33\n", "replicas=33: expected a number of interpreters from 1 to 32"),
        ("WSGIApplicationGroup a b\n", "unexpected 'b' after the group name; the only option is replicas=N"),
        ("<WSGIInterpreterOptions application-group=a replicas=2 replicas=3>\n</WSGIInterpreterOptions>\n", "replicas given more than once"),
        ("<WSGIInterpreterOptions application-group=a replicas=-1>\n</WSGIInterpreterOptions>\n", "replicas=-1"),
    ] {
        let (ok, out) = config_test(body);
        assert!(!ok, "accepted: {body}\n{out}");
        assert!(out.contains(message), "{body}: expected {message:?} in\n{out}");
        assert!(out.contains("httpd.conf"), "no file and line: {out}");
    }
    let (ok, out) =
        config_test("WSGIApplicationGroup a replicas=4\n<WSGIInterpreterOptions application-group=a replicas=2>\n</WSGIInterpreterOptions>\n");
    assert!(ok, "{out}");
}

/// WSGIPythonConcurrency gates each GIL: every own-GIL interpreter (each replica too) has its
/// own gate with the configured number of slots, so one slot per GIL still runs two replicas
/// (two GILs) at once, and a busy own-GIL group queues at its own gate.
#[test]
fn one_gate_per_own_gil() {
    let Some(home) = python_home("3.12") else { return };
    let dir = TempDir::new("replicas-gates");
    dir.write("app.wsgi", &app());
    let config = format!(
        "WSGIPythonHome {home}
         WSGIPerInterpreterGIL On
         WSGIPythonConcurrency 1
         WSGIScriptAlias /r {{dir}}/app.wsgi application-group=r replicas=2
         WSGIScriptAlias /one {{dir}}/app.wsgi application-group=one
"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let (seen, spinner, poker) = race(&apache, "r", 60);
    assert_eq!(seen, "seen", "one slot per GIL: the other replica's gate was free\n{}", apache.error_log());
    assert_ne!(spinner, poker);
    assert_eq!(tokens_under_load(&apache, "one", 8, 10).len(), 1);
    let gate = ok(&apache, "/one/gate?one%231");
    assert!(gate.starts_with("concurrency=1 peak_active=1 queued_ever=True gates=3"), "{gate}\n{}", apache.error_log());
}
