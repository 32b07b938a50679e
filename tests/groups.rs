//! The application-group engine: the `mod_wsgi` module in every interpreter (attributes,
//! events, shutdown subscribers, metrics), `WSGIImportScript`, the interpreter directives,
//! reloading under load, stopping a child with busy CPU-bound requests, graceful restarts.

mod common;
use common::*;
use std::time::{Duration, Instant};

const APP: &str = r#"
import json, os, sys, time
import mod_wsgi

EVENTS = []
def on_event(name, **kwargs):
    EVENTS.append((name, sorted(kwargs)))
mod_wsgi.subscribe_events(on_event)

def on_shutdown(name, **kwargs):
    with open(os.path.join(os.environ.get('MARKERS', '/nonexistent'), 'shutdown-' + (mod_wsgi.application_group.replace('/', '_') or 'GLOBAL')), 'w') as f:
        f.write(name)
mod_wsgi.subscribe_shutdown(on_shutdown)

def application(environ, start_response):
    os.environ['MARKERS'] = environ.get('MARKERS', '')
    path = environ.get('PATH_INFO', '')
    if path == '/module':
        body = json.dumps({
            'version': list(mod_wsgi.version), 'process_group': mod_wsgi.process_group,
            'application_group': mod_wsgi.application_group,
            'maximum_processes': mod_wsgi.maximum_processes, 'threads_per_process': mod_wsgi.threads_per_process,
            'server_metrics': mod_wsgi.server_metrics(), 'metrics': mod_wsgi.process_metrics(),
            'optimize': sys.flags.optimize, 'dont_write_bytecode': sys.dont_write_bytecode,
            'warnoptions': sys.warnoptions, 'path0': sys.path[0],
        })
    elif path == '/events':
        body = json.dumps({'events': EVENTS[-4:]})
    elif path == '/raise':
        raise KeyError('for the event')
    elif path == '/spin':
        end = time.time() + 60
        while time.time() < end:
            pass
        body = 'spun'
    else:
        body = 'hello'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn server(mpm: Mpm, extra: &str) -> Apache {
    let dir = TempDir::new("groups");
    dir.write("app.wsgi", APP);
    dir.write("markers/.keep", "");
    Apache::start_in(
        dir,
        mpm,
        &format!(
            "SetEnv MARKERS {{dir}}/markers\n\
             WSGIScriptAlias /one {{dir}}/app.wsgi application-group=one\n\
             WSGIScriptAlias /two {{dir}}/app.wsgi application-group=two\n\
             WSGIScriptAlias /global {{dir}}/app.wsgi application-group=%{{GLOBAL}}\n{extra}"
        ),
    )
}

#[test]
fn mod_wsgi_module_and_interpreter_directives() {
    let apache = server(
        Mpm::Worker,
        "WSGIPythonOptimize 1\nWSGIDontWriteBytecode On\nWSGIPythonWarnings ignore::DeprecationWarning\nWSGILazyInitialization On\n\
         WSGIPythonPath /opt/mod_wsgi-rs-test-path-a:/opt/mod_wsgi-rs-test-path-b\n",
    );
    let m = Json::parse(&apache.get("/one/module").text());
    assert_eq!(m.get("version"), "[4, 9, 4]");
    assert_eq!(m.get("process_group"), "");
    assert_eq!(m.get("application_group"), "one");
    assert_eq!(m.get("maximum_processes"), "1");
    assert_eq!(m.get("threads_per_process"), "8");
    assert_eq!(m.get("server_metrics"), "null");
    assert_eq!(m.get("optimize"), "1");
    assert_eq!(m.get("dont_write_bytecode"), "true");
    assert_eq!(m.get("warnoptions"), "[\"ignore::DeprecationWarning\"]");
    // WSGIPythonPath directories go to the front of sys.path, as in mod_wsgi.
    assert_eq!(m.get("path0"), "/opt/mod_wsgi-rs-test-path-a");
    assert!(m.get("metrics").contains("\"thread_states\""), "{}", m.get("metrics"));
}

#[test]
fn events_reach_subscribers() {
    let apache = server(Mpm::Event, "");
    apache.get("/one/hello");
    assert_eq!(apache.get("/one/raise").status, 500);
    let events = Json::parse(&apache.get("/one/events").text()).get("events");
    assert!(events.contains("[\"request_started\", [\"application_object\", \"request_environ\"]]"), "{events}");
    assert!(events.contains("[\"request_finished\", [\"application_time\", \"output_length\"]]"), "{events}");
    assert!(events.contains("[\"request_exception\", [\"exception_info\"]]"), "{events}");
    // Another group subscribed separately and saw only its own requests.
    assert_eq!(
        Json::parse(&apache.get("/two/events").text()).get("events"),
        "[[\"request_started\", [\"application_object\", \"request_environ\"]]]"
    );
}

#[test]
fn thread_states_are_bounded_by_threads_times_groups() {
    let apache = server(Mpm::Event, "");
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for i in 0..10 {
                    assert_eq!(apache.get(["/one/x", "/two/x", "/global/x"][i % 3]).status, 200);
                }
            });
        }
    });
    let metrics = Json::parse(&Json::parse(&apache.get("/one/module").text()).get("metrics"));
    let states = Json::parse(&metrics.get("thread_states"));
    for group in ["one", "two", ""] {
        let n: usize = states.get(group).parse().unwrap();
        // 8 worker threads at most, plus the child's main thread that started Python.
        assert!((1..=9).contains(&n), "group {group:?} has {n} thread states");
    }
    assert_eq!(metrics.get("interpreters"), "3");
}

#[test]
fn import_script_preloads_at_child_start() {
    let dir = TempDir::new("import");
    dir.write("markers/.keep", "");
    dir.write("preload.wsgi", "import os, time\nLOADED = time.time()\nopen(os.path.join(os.path.dirname(__file__), 'markers', 'imported-%d' % os.getpid()), 'w').close()\ndef application(e, s):\n    s('200 OK', [])\n    return [b'%f' % LOADED]\n");
    let apache = Apache::start_in(
        dir,
        Mpm::Prefork,
        "WSGIImportScript {dir}/preload.wsgi process-group=%{GLOBAL} application-group=preloaded\n\
         WSGIScriptAlias /p {dir}/preload.wsgi application-group=preloaded\n",
    );
    // The script ran at child start, before any request.
    let markers = apache.dir.path().join("markers");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_dir(&markers).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("imported-")) {
        assert!(Instant::now() < deadline, "WSGIImportScript did not run:\n{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let loaded: f64 = apache.get("/p").text().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(now - loaded > 0.25, "the request loaded the script again instead of using the preloaded module");
    assert!(apache.error_log().contains("Imported WSGI script"));
}

#[test]
fn restrict_embedded_refuses_requests() {
    let apache = server(Mpm::Event, "WSGIRestrictEmbedded On\n");
    assert_eq!(apache.get("/one/x").status, 500);
    apache.wait_for_log("Embedded mode of mod_wsgi disabled by runtime configuration");
    assert!(apache.children().iter().all(|&c| !std::fs::read_to_string(format!("/proc/{c}/maps")).unwrap_or_default().contains("libpython")));
}

#[test]
fn bad_group_directives_stop_config_test() {
    for (directive, reason) in [
        ("WSGIImportScript /a.wsgi application-group=x\n", "requires both"),
        ("WSGIImportScript /a.wsgi process-group=%{GLOBAL} application-group=%{SERVER}\n", "needs a request"),
        ("WSGIPythonOptimize 3\n", "must be 0, 1 or 2"),
        ("WSGIPythonWarnings bogus\n", "not a Python warning option"),
        ("WSGIRestrictEmbedded maybe\n", "must be one of: Off | On"),
    ] {
        let (ok, out) = config_test(directive);
        assert!(!ok && out.contains(reason), "{directive:?}: {out}");
    }
}

#[test]
fn stopping_with_busy_cpu_bound_groups_needs_no_sigkill() {
    for mpm in ALL_MPMS {
        let mut apache = server(mpm, "");
        // Load each group, then keep one request spinning in each (prefork: one at a time).
        for g in ["/one", "/two"] {
            assert_eq!(apache.get(&format!("{g}/hello")).text(), "hello");
        }
        let port = apache.port;
        let spinners: Vec<_> = (if mpm == Mpm::Prefork { vec!["/one"] } else { vec!["/one", "/two"] })
            .into_iter()
            .map(|g| std::thread::spawn(move || try_http(port, "GET", &format!("{g}/spin"), &[], b"").map(|r| r.status)))
            .collect();
        std::thread::sleep(Duration::from_millis(800));
        let started = Instant::now();
        apache.stop();
        let took = started.elapsed();
        let log = apache.error_log();
        assert!(!log.contains("SIGKILL") && !log.contains("still did not exit"), "{mpm:?}: Apache had to kill the child ({took:?}):\n{log}");
        assert!(took < Duration::from_secs(5), "{mpm:?}: stopping took {took:?}");
        if mpm != Mpm::Prefork {
            // The interpreters ended properly: their shutdown subscribers ran.
            let markers = apache.dir.path().join("markers");
            for g in ["one", "two"] {
                assert!(markers.join(format!("shutdown-{g}")).is_file(), "{mpm:?}: no shutdown event in group {g}\n{log}");
            }
        }
        for s in spinners {
            // The spinning request ended with the child: a 500 (SystemExit) or a closed connection.
            assert_ne!(s.join().unwrap(), Ok(200), "{mpm:?}");
        }
    }
}

#[test]
fn reloading_under_concurrent_load_never_fails() {
    let dir = TempDir::new("reload-load");
    let version = |n: u32| format!("import time\ntime.sleep(0.05)\ndef application(e, s):\n    s('200 OK', [])\n    return [b'v{n}']\n");
    dir.write("app.wsgi", &version(1));
    let apache = Apache::start_in(dir, Mpm::Event, "WSGIScriptAlias /app {dir}/app.wsgi\n");
    assert_eq!(apache.get("/app").text(), "v1");
    let end = Instant::now() + Duration::from_secs(4);
    let bodies: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen = Vec::new();
                    while Instant::now() < end {
                        let r = apache.get("/app");
                        assert_eq!(r.status, 200, "{}", r.text());
                        seen.push(r.text());
                    }
                    seen
                })
            })
            .collect();
        for n in 2..5 {
            std::thread::sleep(Duration::from_millis(1050));
            apache.dir.replace("app.wsgi", &version(n));
        }
        clients.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    assert!(bodies.iter().all(|b| ["v1", "v2", "v3", "v4"].contains(&b.as_str())), "unexpected bodies");
    assert!(bodies.iter().any(|b| b == "v4"), "the last version was never served");
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}

#[test]
fn graceful_restarts_under_load_lose_no_request() {
    let mut apache = server(Mpm::Event, "");
    apache.get("/one/hello");
    let parent = apache.pid();
    let before = rss_kib(parent);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (ok, failed) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|i| {
                let (apache, stop) = (&apache, &stop);
                scope.spawn(move || {
                    let (mut ok, mut failed) = (0, Vec::new());
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let path = ["/one/hello", "/two/hello", "/global/hello"][i % 3];
                        match try_http(apache.port, "GET", path, &[], b"") {
                            Ok(r) if r.status == 200 && r.text() == "hello" => ok += 1,
                            Ok(r) => failed.push(format!("{} {}", r.status, r.text())),
                            Err(e) => failed.push(e),
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(400));
            // SAFETY: SIGUSR1 (graceful restart) to the Apache parent this test started.
            unsafe { libc::kill(parent, libc::SIGUSR1) };
        }
        std::thread::sleep(Duration::from_millis(800));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        clients.into_iter().map(|c| c.join().unwrap()).fold((0, Vec::new()), |(o, mut f), (o2, f2)| {
            f.extend(f2);
            (o + o2, f)
        })
    });
    assert!(failed.is_empty(), "{} requests failed during graceful restarts: {:?}", failed.len(), &failed[..failed.len().min(5)]);
    assert!(ok > 50, "only {ok} requests went through");
    let after = rss_kib(parent);
    assert!(after < before + 2048, "Apache's parent grew from {before} KiB to {after} KiB over 10 graceful restarts");
    // Children of earlier generations ran their shutdown subscribers as they exited.
    apache.stop();
    assert!(apache.dir.path().join("markers/shutdown-one").is_file(), "{}", apache.error_log());
}

#[test]
fn graceful_stop_under_load_finishes_requests_and_runs_atexit() {
    let dir = TempDir::new("graceful-stop");
    dir.write("markers/.keep", "");
    dir.write(
        "app.wsgi",
        "import atexit, os, time\n\
         atexit.register(lambda: open(os.path.join(os.path.dirname(__file__), 'markers', 'atexit-%d' % os.getpid()), 'w').close())\n\
         def application(e, s):\n    time.sleep(0.3)\n    s('200 OK', [])\n    return [b'finished']\n",
    );
    let mut apache = Apache::start_in(dir, Mpm::Worker, "WSGIScriptAlias /app {dir}/app.wsgi\n");
    assert_eq!(apache.get("/app").text(), "finished");
    let port = apache.port;
    let in_flight: Vec<_> = (0..4).map(|_| std::thread::spawn(move || try_http(port, "GET", "/app", &[], b""))).collect();
    std::thread::sleep(Duration::from_millis(100));
    // SIGWINCH: graceful stop; requests under way are finished first.
    // SAFETY: signals the Apache parent this test started.
    unsafe { libc::kill(apache.pid(), libc::SIGWINCH) };
    for t in in_flight {
        let r = t.join().unwrap().expect("a request in flight failed during a graceful stop");
        assert_eq!((r.status, r.text()), (200, "finished".to_string()));
    }
    apache.stop();
    let markers: Vec<_> = std::fs::read_dir(apache.dir.path().join("markers"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("atexit-"))
        .collect();
    assert!(!markers.is_empty(), "atexit did not run on graceful stop:\n{}", apache.error_log());
}
