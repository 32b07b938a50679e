//! `mod_wsgi.server_metrics()`: Apache's scoreboard, read by the module (no Python in
//! Apache's parent) and handed to the engine. `WSGIServerMetrics` turns it on in Apache's
//! children, `server-metrics=` in a daemon group's processes; off, it is `None`. The dict has
//! mod_wsgi's keys, in its order, with its types (checked side by side with Debian's 4.9),
//! and daemons see the scoreboard from the first start (they are forked once it exists, as
//! mod_wsgi's are) and after a graceful restart.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Reports, one `key=value` per line: its own pid; the dict's shape (each level's keys with
/// their types, in order; `None` when off); then the pids in the scoreboard, the status flag
/// and access count of each worker slot of each process, and the limits.
const APP: &str = r#"
import os, mod_wsgi

def shape(m):
    if m is None:
        return 'None'
    p = m['processes'][0]
    w = p['workers'][0]
    level = lambda d: ','.join('%s:%s' % (k, type(v).__name__) for k, v in d.items())
    return '%s | %s | %s' % (level(m), level(p), level(w))

def application(environ, start_response):
    m = mod_wsgi.server_metrics()
    lines = ['pid=%d' % os.getpid(), 'shape=%s' % shape(m)]
    if m is not None:
        lines.append('pids=%s' % ','.join(str(p['pid']) for p in m['processes'] if p['pid']))
        lines.append('workers=%s' % ' '.join('%d.%d:%s:%d' % (p['pid'], w['thread_num'], w['status'], w['access_count'])
                                           for p in m['processes'] for w in p['workers'] if p['pid']))
        lines.append('limits=%d,%d,%d,%s' % (m['server_limit'], m['thread_limit'], len(m['processes']),
                                            ','.join(str(len(p['workers'])) for p in m['processes'])))
        lines.append('times=%s' % (m['current_time'] >= m['restart_time'] > 0 and m['running_time'] >= 0))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return ['\n'.join(lines).encode()]
"#;

/// mod_wsgi's keys and types (wsgi_metrics.c `wsgi_server_metrics`), in its order.
const SHAPE: &str = "server_limit:int,thread_limit:int,running_generation:int,restart_time:float,current_time:float,\
                     running_time:int,processes:list | process_num:int,pid:int,generation:int,quiescing:bool,workers:list | \
                     thread_num:int,generation:int,status:str,access_count:int,bytes_served:int,start_time:float,\
                     stop_time:float,last_used:float,client:str,request:str,vhost:str";

/// What [`APP`] reports beyond `key=value` lines' own fields.
impl Report {
    fn pids(&self) -> BTreeSet<i32> {
        self.field("pids").split(',').filter(|p| !p.is_empty()).map(|p| p.parse().unwrap()).collect()
    }

    /// (pid.thread, status flag, access count) of each worker slot of a live process.
    fn workers(&self) -> Vec<(String, String, u64)> {
        self.field("workers")
            .split_whitespace()
            .map(|w| {
                let parts: Vec<&str> = w.split(':').collect();
                (parts[0].to_string(), parts[1].to_string(), parts[2].parse().unwrap())
            })
            .collect()
    }
}

fn server(module: &Path, mpm: Mpm, body: &str) -> Apache {
    let dir = TempDir::new("server-metrics");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    Apache::start_with_module(dir, mpm, module, &format!("WSGIScriptAlias /app {{dir}}/app.wsgi\n{body}"))
}

#[test]
fn off_by_default_and_when_off() {
    for body in ["", "WSGIServerMetrics Off\n"] {
        let apache = server(&module_path(), Mpm::Event, body);
        assert_eq!(Report::get(&apache, "/app").field("shape"), "None", "{body:?}");
    }
}

#[test]
fn on_reports_the_scoreboard_with_this_child_busy() {
    for mpm in ALL_MPMS {
        let apache = server(&module_path(), mpm, "WSGIServerMetrics On\n");
        let first = Report::get(&apache, "/app");
        assert_eq!(first.field("shape"), SHAPE, "{}", mpm.name());
        assert!(first.pids().contains(&first.pid()), "{}: this child {} is among {:?}", mpm.name(), first.pid(), first.pids());
        let children: BTreeSet<i32> = apache.children().into_iter().collect();
        assert!(first.pids().is_subset(&children), "{}: scoreboard pids {:?}, Apache's children {children:?}", mpm.name(), first.pids());
        // The base config: ServerLimit 1, and 8 threads (1 under prefork).
        let threads = if mpm == Mpm::Prefork { 1 } else { 8 };
        assert_eq!(first.field("limits"), format!("1,{threads},1,{threads}"), "{}", mpm.name());
        assert_eq!(first.field("times"), "True");
        // The worker serving this request is writing its response: mod_status's "W".
        let mine = format!("{}.", first.pid());
        assert!(
            first.workers().iter().any(|(slot, status, _)| slot.starts_with(&mine) && status == "W"),
            "{}: no busy worker of {} in {:?}",
            mpm.name(),
            first.pid(),
            first.workers()
        );
        // Apache's access counts only grow.
        let mut before = first.workers();
        for _ in 0..3 {
            let next = Report::get(&apache, "/app").workers();
            for (slot, _, count) in &before {
                if let Some((_, _, now)) = next.iter().find(|(s, _, _)| s == slot) {
                    assert!(now >= count, "{}: {slot} went from {count} to {now}", mpm.name());
                }
            }
            before = next;
        }
    }
}

#[test]
fn the_directive_is_for_the_main_server_only_and_checked() {
    let (ok, out) = config_test("WSGIServerMetrics maybe\n");
    assert!(!ok && out.contains("WSGIServerMetrics must be one of: Off | On"), "{out}");
    let (ok, out) = config_test("<VirtualHost 127.0.0.1:80>\n  WSGIServerMetrics On\n</VirtualHost>\n");
    assert!(!ok && out.contains("cannot occur within <VirtualHost> section"), "{out}");
    let (ok, out) = config_test("<Directory /tmp>\n  WSGIServerMetrics On\n</Directory>\n");
    assert!(!ok && out.contains("WSGIServerMetrics not allowed in <Directory> context"), "{out}");
    let (ok, out) = config_test("WSGIDaemonProcess m server-metrics=maybe\n");
    assert!(!ok && out.contains("Invalid server metrics flag for WSGI daemon process."), "{out}");
    let (ok, out) = config_test("WSGIServerMetrics On\nWSGIDaemonProcess m server-metrics=On\n");
    assert!(ok, "{out}");
}

const DAEMONS: &str = "WSGISocketPrefix {dir}/run/wsgi\n\
                       WSGIDaemonProcess on server-metrics=On threads=2\n\
                       WSGIDaemonProcess off threads=2\n\
                       WSGIScriptAlias /on {dir}/app.wsgi process-group=on\n\
                       WSGIScriptAlias /off {dir}/app.wsgi process-group=off\n";

/// A daemon of group `on` reports Apache's children (not itself), one of them busy relaying
/// this request; group `off` gets `None`.
fn check_daemons(apache: &Apache, when: &str) -> i32 {
    let on = Report::get(apache, "/on");
    assert_eq!(on.field("shape"), SHAPE, "{when}");
    let children: BTreeSet<i32> = apache.children().into_iter().collect();
    assert!(!on.pids().is_empty() && on.pids().is_subset(&children), "{when}: scoreboard pids {:?}, Apache's children {children:?}", on.pids());
    assert!(!on.pids().contains(&on.pid()), "{when}: the daemon {} is not one of Apache's workers", on.pid());
    assert!(on.workers().iter().any(|(_, status, _)| status == "W"), "{when}: the child relaying the request is busy: {:?}", on.workers());
    assert_eq!(Report::get(apache, "/off").field("shape"), "None", "{when}");
    on.pid()
}

#[test]
fn daemons_report_with_server_metrics_on_from_the_first_start_and_after_restarts() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    // WSGIServerMetrics (embedded) does not turn it on in daemons, nor the reverse.
    let apache = server(&module_path(), Mpm::Event, DAEMONS);
    assert_eq!(Report::get(&apache, "/app").field("shape"), "None", "embedded stays off");
    let first = check_daemons(&apache, "first start");
    for (signal, name) in [(libc::SIGUSR1, "graceful restart"), (libc::SIGHUP, "restart")] {
        let before = Report::get(&apache, "/on").pid();
        // SAFETY: signals only the Apache parent this test started.
        unsafe { libc::kill(apache.pid(), signal) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut after = before;
        while after == before && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            after = common::try_http(apache.port, "GET", "/on", &[], b"")
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| Report(r.text()).pid())
                .unwrap_or(before);
        }
        assert_ne!(after, before, "a new daemon serves after the {name}\n{}", apache.error_log());
        assert_ne!(check_daemons(&apache, name), first);
    }
}

#[test]
fn same_keys_and_types_as_debian_mod_wsgi() {
    if !Path::new(DEBIAN_MOD_WSGI).exists() {
        return eprintln!("skipped: {DEBIAN_MOD_WSGI} is not installed");
    }
    let body = if is_root() { format!("WSGIServerMetrics On\n{DAEMONS}") } else { "WSGIServerMetrics On\n".to_string() };
    let ours = server(&module_path(), Mpm::Event, &body);
    let theirs = server(debian_mod_wsgi(), Mpm::Event, &body);
    let paths: &[&str] = if is_root() { &["/app", "/on", "/off"] } else { &["/app"] };
    for path in paths {
        let (a, b) = (Report::get(&ours, path), Report::get(&theirs, path));
        assert_eq!(a.field("shape"), b.field("shape"), "{path}: ours, then Debian's mod_wsgi 4.9");
        if a.field("shape") != "None" {
            assert_eq!(a.field("limits"), b.field("limits"), "{path}");
            let busy = |r: &Report| r.workers().iter().filter(|(_, s, _)| s == "W").count();
            assert_eq!(busy(&a), busy(&b), "{path}: busy workers, ours {:?}, theirs {:?}", a.workers(), b.workers());
        }
    }
    assert_eq!(Report::get(&ours, "/app").field("shape"), SHAPE);
}
