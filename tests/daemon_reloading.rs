//! Process reloading in daemon mode (`WSGIScriptReloading`), against a real Apache started as
//! root: a touched script restarts the daemon process without failing a request, and with
//! reloading off nothing happens.

mod common;

use common::daemon::*;
use common::*;
use std::time::Duration;

/// A daemon application whose value comes from a second module, as Django's settings and
/// views do: only a new process sees that module change.
const RELOAD_APP: &str = "import os, time\nimport helper\nVALUE = helper.VALUE\n\
def application(environ, start_response):\n    read = len(environ['wsgi.input'].read())\n    time.sleep(0.01)\n    body = ('%s|%d|%d' % (VALUE, read, os.getpid())).encode()\n    \
start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n    return [body]\n";

/// A site of `reload.wsgi` in daemon group `site` (one process, four threads), with
/// `WSGIScriptReloading` as `reloading` says, and `helper.py` beside it on `python-path`.
fn start_reload_site(reloading: &str) -> Apache {
    let dir = TempDir::new("daemon-reload");
    dir.write("reload.wsgi", RELOAD_APP);
    dir.write("helper.py", "VALUE = 'first'\n");
    dir.write("run/.keep", "");
    Apache::start_in(
        dir,
        Mpm::Event,
        &format!(
            "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\nWSGIScriptReloading {reloading}\n\
             WSGIDaemonProcess site user={USER} threads=4 python-path={{dir}}\n\
             WSGIScriptAlias / {{dir}}/reload.wsgi process-group=site application-group=%{{GLOBAL}}\n"
        ),
    )
}

/// `(value, pid)` from the reload application's answer.
fn value_and_pid(response: &Response) -> (String, i32) {
    let (value, _, pid) = reload_answer(response);
    (value, pid)
}

/// `(value, body bytes read, pid)` from the reload application's answer.
fn reload_answer(response: &Response) -> (String, usize, i32) {
    let text = response.text();
    let parts: Vec<&str> = text.split('|').collect();
    let [value, read, pid] = parts[..] else { panic!("not a reload answer: {text:?}") };
    (value.to_string(), read.parse().unwrap(), pid.parse().unwrap())
}

/// What a deployment does: the other module changes (a different length, so that a
/// bytecode cache written in the same second is not taken for current), then the script is
/// touched.
fn deploy_and_touch(apache: &Apache, value: &str, ahead: u64) {
    apache.dir.replace("helper.py", &format!("VALUE = '{value}'\n"));
    let script = std::fs::File::options().write(true).open(apache.dir.path().join("reload.wsgi")).unwrap();
    script.set_modified(std::time::SystemTime::now() + Duration::from_secs(ahead)).unwrap();
}

#[test]
fn touching_the_script_restarts_the_daemon_process_without_failing_a_request() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_reload_site("On");
    let first = apache.get("/");
    assert_eq!(first.status, 200, "{}", apache.error_log());
    let (value, old_pid) = value_and_pid(&first);
    assert_eq!(value, "first");
    // A light load across the touch: 4 clients, 100 requests each (at least 1 s of them),
    // every other one a POST, whose body the retry must still carry whole.
    let body = |n: usize| vec![b'x'; 1000 + n * 37];
    let results = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            deploy_and_touch(&apache, "second value", 2);
        });
        hammer(apache.port, 4, 100, |n| if n % 2 == 0 { Request::get("/") } else { Request::post("/", body(n)) })
    });
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            Ok(r) if r.status == 200 => None,
            Ok(r) => Some(format!("{} {}", r.status, r.text())),
            Err(e) => Some(e.clone()),
        })
        .collect();
    assert!(failed.is_empty(), "{} failed requests, e.g. {:?}\n{}", failed.len(), &failed[..failed.len().min(5)], apache.error_log());
    for (request, outcome) in &results {
        let read = reload_answer(outcome.as_ref().unwrap()).1;
        assert_eq!(read, request.body.len(), "the body of {} {} bytes reached the application whole", request.method, request.body.len());
    }
    let answers: Vec<(String, i32)> = results.iter().filter_map(|(_, r)| r.as_ref().ok()).map(value_and_pid).collect();
    assert!(answers.iter().any(|(v, _)| v == "second value"), "the load never reached the new process");
    // Every answer is the old process with the old value, or a new one with the new value.
    for (value, pid) in &answers {
        assert_eq!(value == "first", *pid == old_pid, "{value} from {pid} (old process {old_pid})");
    }
    let (value, new_pid) = value_and_pid(&apache.get("/"));
    assert_eq!(value, "second value", "the helper module was loaded afresh");
    assert_ne!(new_pid, old_pid, "a new daemon process serves");
    assert!(is_gone(old_pid) || !proc_file(old_pid, "cmdline").contains("wsgi"), "the old process ended");
    let log = apache.wait_for_log("Forcing restart of daemon process 'site' due to modification of script");
    assert!(log.contains("Forcing restart of daemon process 'site' due to modification of script"), "{log}");
    assert!(log.contains("Reconnecting after WSGI daemon process 'site' restart, attempt #1."), "{log}");
    assert!(!log.contains("restart attempts reached"), "{log}");
    // The request that finds the change is sent again whole, body included.
    deploy_and_touch(&apache, "third", 4);
    let posted = vec![b'y'; 300_000];
    let response = apache.request("POST", "/", &[], &posted);
    assert_eq!(response.status, 200, "{}", apache.error_log());
    let (value, read, third_pid) = reload_answer(&response);
    assert_eq!((value.as_str(), read), ("third", posted.len()));
    assert!(third_pid != new_pid && third_pid != old_pid, "a third process");
    let log = apache.error_log();
    assert_eq!(log.matches("Forcing restart of daemon process 'site'").count(), 2, "once per process:\n{log}");
    assert_no_crash(&apache);
}

#[test]
fn with_script_reloading_off_touching_the_script_changes_nothing() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_reload_site("Off");
    let (value, old_pid) = value_and_pid(&apache.get("/"));
    assert_eq!(value, "first");
    deploy_and_touch(&apache, "second value", 2);
    for _ in 0..5 {
        let response = apache.get("/");
        assert_eq!(response.status, 200, "{}", apache.error_log());
        assert_eq!(value_and_pid(&response), ("first".to_string(), old_pid), "the same process, the module as first loaded");
    }
    let log = apache.error_log();
    assert!(!log.contains("Forcing restart"), "{log}");
    assert_no_crash(&apache);
}
