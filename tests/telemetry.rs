//! mod_wsgi 6.1's telemetry (issue 14): each process that runs applications sends its
//! datagrams to `WSGITelemetryService`, and the `mod-wsgi-telemetry` ingester from PyPI (its
//! parser is the wire format's specification) shows exactly the requests a known load made,
//! per process, for Apache's children and a daemon group; `WSGISlowRequests` gives a slow
//! request one error-log line (ours), its Python stack (`+SlowRequestStacks`, ours) and
//! mod_wsgi's slow-request datagram, with the User-Agent under `+CaptureUserAgent`, its CPU
//! times and concurrency; the periodic datagrams carry each thread's CPU time and Python's
//! switch interval, and a daemon's STOPPING and STOPPED its shutdown reason.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `mod_wsgi-telemetry serve`, stopped (by its pid) when dropped.
struct Ingester {
    child: Child,
    http_port: u16,
    socket: PathBuf,
    venv: PathBuf,
}

impl Ingester {
    fn start(dir: &Path) -> Ingester {
        let venv = telemetry_tools();
        let socket = dir.join("telemetry.sock");
        let http_port = free_port();
        let child = Command::new(venv.join("bin/python"))
            .args(["-c", "import sys; from mod_wsgi.telemetry.cli import main; sys.argv[0] = 'mod_wsgi-telemetry'; sys.exit(main())"])
            .args(["serve", "--listen", &format!("unix:{}", socket.display()), "--socket-mode", "0666", "--http-host", "127.0.0.1"])
            .args(["--http-port", &http_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mod_wsgi-telemetry serve");
        let ingester = Ingester { child, http_port, socket, venv };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(ingester.socket.exists() && try_http(http_port, "GET", "/api/state", &[], b"").is_ok_and(|r| r.status == 200)) {
            assert!(Instant::now() < deadline, "the ingester did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        ingester
    }

    /// What the ingester's `/api/state` holds, summed by its own Python: one line per fact.
    fn summary(&self) -> String {
        const SUMMARISE: &str = r#"
import json, sys, urllib.request
state = json.load(urllib.request.urlopen('http://127.0.0.1:%s/api/state' % sys.argv[1]))
print('decode_errors=%d' % state['decode_errors'])
total = {}
switch = set()
for p in state['processes']:
    group = p['process_group'] or '-'
    for s in p['samples']:
        if s['kind'] == 'request_metrics':
            f = s['fields']
            for key in ('request_count', 'status_2xx_total', 'status_4xx_total', 'status_5xx_total'):
                total[(group, key)] = total.get((group, key), 0) + f.get(key, 0)
            cpu = f.get('request_threads_cpu_time')
            total[(group, 'no_thread_cpu')] = total.get((group, 'no_thread_cpu'), 0) + (cpu is None or len(cpu) != len(f['request_threads_busy_time']))
            total[(group, 'thread_cpu_ms')] = total.get((group, 'thread_cpu_ms'), 0) + round(1000 * sum(cpu or []))
            switch.add(f.get('switch_interval'))
    print('process pid=%s group=%s mpm=%s python=%s' % (p['pid'], group, p['mpm_name'], p['python_version']))
for (group, key), value in sorted(total.items()):
    print('%s %s=%d' % (group, key, value))
print('switch_intervals=%s' % sorted(switch, key=str))
for e in state['lifecycle_events']:
    print('lifecycle %s pid=%s group=%s reason=%s lifetime=%s' % (e['kind'], e['pid'], e['process_group'] or '-', e['shutdown_reason'] or '-', e.get('lifetime_request_count')))
for s in state['slow_requests']:
    e = s['entry']
    print('slow state=%s method=%s script_name=%s path_info=%s status=%s duration=%.1f agent=%s cpu=%.2f active=%d/%d' % (
        e.get('state'), e.get('method'), e.get('script_name'), e.get('path_info'), e.get('status'), e.get('duration') or 0, e.get('user_agent'),
        e['cpu_user_time'] + e['cpu_system_time'], e['active_at_start'], e['active_at_completion']))
"#;
        let out = Command::new(self.venv.join("bin/python")).args(["-c", SUMMARISE, &self.http_port.to_string()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const APP: &str = r#"
import time

def application(environ, start_response):
    if environ['PATH_INFO'] == '/sleep':
        # Asleep when first seen past the threshold (its stack), then on the CPU until 1 s.
        began = time.monotonic()
        time.sleep(0.7)
        while time.monotonic() - began < 1.0:
            pass
    status = '404 Not Found' if environ['QUERY_STRING'] == 'missing' else '200 OK'
    start_response(status, [('Content-Type', 'text/plain')])
    return [b'hello']
"#;

fn line_with<'a>(summary: &'a str, prefix: &str) -> &'a str {
    summary.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no '{prefix}' in:\n{summary}"))
}

#[test]
fn the_pypi_ingester_counts_every_request_of_children_and_daemons() {
    for mpm in [Mpm::Event, Mpm::Worker, Mpm::Prefork] {
        let dir = TempDir::new("telemetry");
        dir.write("app.wsgi", APP);
        let ingester = Ingester::start(dir.path());
        let config = format!(
            "WSGITelemetryService unix:{} interval=0.5\n\
             WSGISlowRequests 0.4\n\
             WSGITelemetryOptions +CaptureUserAgent +SlowRequestStacks\n\
             WSGIDaemonProcess site threads=4\n\
             WSGIScriptAlias /app {{dir}}/app.wsgi\n\
             WSGIScriptAlias /daemon {{dir}}/app.wsgi process-group=site application-group=%{{GLOBAL}}\n",
            ingester.socket.display()
        );
        let mut apache = Apache::start_in(dir, mpm, &config);
        apache.wait_for_log("Telemetry reporter started; target='unix:");
        let results = hammer(apache.port, 8, 30, |n| match n % 6 {
            0 => Request::get("/daemon/"),
            1 => Request::get("/app/?missing"),
            _ => Request::get("/app/"),
        });
        assert!(results.iter().all(|(_, r)| matches!(r, Ok(r) if r.status == 200 || r.status == 404)), "{mpm:?}\n{}", apache.error_log());
        let slow = http(apache.port, "GET", "/app/sleep", &[("User-Agent", "telemetry-test/1.0")], b"");
        assert_eq!(slow.status, 200);
        // Stopped, every process sends its last window and STOPPED.
        apache.stop_gracefully();
        std::thread::sleep(Duration::from_millis(500));
        let summary = ingester.summary();
        let log = apache.error_log();
        let context = format!("{mpm:?}\n{summary}\n{log}");
        assert_eq!(line_with(&summary, "decode_errors="), "decode_errors=0", "{context}");
        // 240 requests: 40 to the daemon, 40 of the rest 404s, plus the slow one.
        assert_eq!(line_with(&summary, "- request_count="), "- request_count=201", "{context}");
        assert_eq!(line_with(&summary, "- status_2xx_total="), "- status_2xx_total=161", "{context}");
        assert_eq!(line_with(&summary, "- status_4xx_total="), "- status_4xx_total=40", "{context}");
        assert_eq!(line_with(&summary, "site request_count="), "site request_count=40", "{context}");
        assert!(summary.contains(&format!("mpm={}", mpm.name())), "{context}");
        let lifetime: u64 = summary
            .lines()
            .filter(|l| l.starts_with("lifecycle process_stopped"))
            .map(|l| l.rsplit('=').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(lifetime, 241, "STOPPED's lifetime counts: {context}");
        let slow = line_with(&summary, "slow state=1 ");
        assert!(slow.contains("method=GET script_name=/app path_info=/sleep status=200 duration=1.0 agent=telemetry-test/1.0"), "{context}");
        // Fields 250/251: its thread's CPU time (0.3 s of spinning, less on a loaded host);
        // 260/261: alone at start and at completion.
        let cpu: f64 = slow.split(" cpu=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!((0.1..1.0).contains(&cpu), "{context}");
        assert!(slow.ends_with(" active=1/1"), "{context}");
        // Field 112: the threads' CPU time, the slow request's included, in every window.
        assert_eq!(line_with(&summary, "- no_thread_cpu="), "- no_thread_cpu=0", "{context}");
        assert_eq!(line_with(&summary, "site no_thread_cpu="), "site no_thread_cpu=0", "{context}");
        let thread_cpu: f64 = line_with(&summary, "- thread_cpu_ms=").rsplit('=').next().unwrap().parse().unwrap();
        assert!(thread_cpu >= cpu * 1000.0 - 1.0, "{context}");
        // Field 13: Python's default switch interval, none being configured.
        assert_eq!(line_with(&summary, "switch_intervals="), "switch_intervals=[0.005]", "{context}");
        // Field 130: the daemon's reason, on STOPPING and STOPPED; the children give none.
        for line in summary.lines().filter(|l| l.starts_with("lifecycle process_stopp")) {
            let expected = if line.contains(" group=site ") { " reason=shutdown_signal " } else { " reason=- " };
            assert!(line.contains(expected), "{line}: {context}");
        }
        assert_eq!(summary.matches("lifecycle process_stopping").count(), summary.matches("lifecycle process_stopped").count(), "{context}");
        assert_eq!(log.matches("Slow request: GET /app/sleep (application group").count(), 1, "{context}");
        assert!(log.contains("time.sleep(0.7)"), "no Python stack for the slow request: {context}");
        assert!(crash_lines(&log).is_empty(), "{context}");
    }
}

/// A daemon that reaches `maximum-requests` says so in its STOPPING (sent as it decides to
/// stop) and STOPPED, as mod_wsgi 6.1 does (field 130, `maximum_requests`).
#[test]
fn a_daemon_s_shutdown_reason_reaches_the_ingester() {
    let dir = TempDir::new("telemetry-reason");
    dir.write("app.wsgi", APP);
    let ingester = Ingester::start(dir.path());
    let config = format!(
        "WSGITelemetryService unix:{} interval=0.5\n\
         WSGIDaemonProcess site threads=1 maximum-requests=2\n\
         WSGIScriptAlias /daemon {{dir}}/app.wsgi process-group=site application-group=%{{GLOBAL}}\n",
        ingester.socket.display()
    );
    let mut apache = Apache::start_in(dir, Mpm::Event, &config);
    for _ in 0..2 {
        assert_eq!(apache.get("/daemon/").status, 200);
    }
    apache.wait_for_log("Maximum requests reached");
    let deadline = Instant::now() + Duration::from_secs(10);
    let summary = loop {
        let summary = ingester.summary();
        if summary.contains("lifecycle process_stopped") || Instant::now() > deadline {
            break summary;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    apache.stop_gracefully();
    let context = format!("{summary}\n{}", apache.error_log());
    assert!(line_with(&summary, "lifecycle process_stopping").contains(" group=site reason=maximum_requests "), "{context}");
    assert!(line_with(&summary, "lifecycle process_stopped").contains(" group=site reason=maximum_requests lifetime=2"), "{context}");
}

/// Without a receiver (the ingester not started yet, or gone), nothing waits and nothing is
/// logged per datagram; requests are served as usual.
#[test]
fn a_missing_receiver_costs_nothing() {
    let dir = TempDir::new("telemetry-none");
    dir.write("app.wsgi", APP);
    let socket = dir.path().join("nobody.sock");
    let config = format!("WSGITelemetryService unix:{} interval=0.5\nWSGIScriptAlias /app {{dir}}/app.wsgi\n", socket.display());
    let mut apache = Apache::start_in(dir, Mpm::Event, &config);
    let results = hammer(apache.port, 4, 20, |_| Request::get("/app/"));
    assert!(results.iter().all(|(_, r)| matches!(r, Ok(r) if r.status == 200)), "{}", apache.error_log());
    std::thread::sleep(Duration::from_millis(1200));
    apache.stop_gracefully();
    let log = apache.error_log();
    assert!(log.contains("Telemetry reporter started"), "{log}");
    assert!(!log.contains("WSGI0132"), "{log}");
    assert!(crash_lines(&log).is_empty(), "{log}");
}

#[test]
fn telemetry_directives_are_checked_as_mod_wsgi_6_checks_them() {
    for (line, why) in [
        ("WSGITelemetryService udp:127.0.0.1:9", "remote 'udp:host:port' targets are no longer supported"),
        ("WSGITelemetryService unix:/tmp/x.sock interval=0.4", "interval must be at least 0.5 seconds"),
        ("WSGITelemetryService unix:/tmp/x.sock every=1", "second argument must be 'interval=N'"),
        ("WSGITelemetryService unix:relative.sock", "must be an absolute path"),
        ("WSGISlowRequests -1", "threshold must be non-negative"),
        ("WSGITelemetryOptions Bogus", "unknown flag 'Bogus'"),
        ("<VirtualHost *:80>\nWSGISlowRequests 1\n</VirtualHost>", "cannot occur within <VirtualHost> section"),
    ] {
        let (ok, out) = config_test(line);
        assert!(!ok && out.contains(why), "{line}: {out}");
        assert!(out.contains("line"), "{line}: no line number in {out}");
    }
    let (ok, out) = config_test("WSGITelemetryService unix:/tmp/x.sock interval=2\nWSGISlowRequests 0\nWSGITelemetryOptions None\n");
    assert!(ok, "{out}");
    assert!(!out.contains("not implemented"), "{out}");
}

const METRICS_APP: &str = r#"
import json, mod_wsgi

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/start':
        before = mod_wsgi.request_metrics()
        mod_wsgi.start_recording_metrics()
        body = {'before': before}
    elif path == '/metrics':
        rm = mod_wsgi.request_metrics()
        pm = mod_wsgi.process_metrics()
        body = {'rm': rm, 'pm': {k: pm.get(k) for k in ('request_count', 'threads', 'python_concurrency_mode', 'restart_time')}}
    else:
        body = 'hello'
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(body).encode()]
"#;

/// mod_wsgi 6.1's internal metrics API: `None` until `start_recording_metrics()`, then the
/// requests since the last call (drained), mod_wsgi's 66 keys; `process_metrics()` gains 6.1's
/// keys beside ours; with `WSGITelemetryService` on, `request_metrics()` stays `None`.
#[test]
fn the_internal_metrics_api_counts_what_was_sent() {
    const SUMMARY: &str = r#"
import json, sys
first, second = json.loads(sys.argv[1]), json.loads(sys.argv[2])
rm, pm = first['rm'], first['pm']
print('keys=%d count=%d 2xx=%d queue=%s waits_ok=%s buckets=%d' % (len(rm), rm['request_count'], rm['status_2xx'], rm['queue_time'], rm['gil_wait_count'] >= rm['request_count'], len(rm['request_time_buckets'])))
print('lifetime=%d threads=%d ours=%s' % (pm['request_count'], sum(t['request_count'] for t in pm['threads']), pm['python_concurrency_mode'] is not None))
print('drained=%d' % second['rm']['request_count'])
"#;
    let dir = TempDir::new("telemetry-api");
    dir.write("app.wsgi", METRICS_APP);
    let apache = Apache::start_in(dir, Mpm::Event, "WSGIScriptAlias /app {dir}/app.wsgi\n");
    assert_eq!(
        apache.get("/app/metrics").text(),
        r#"{"rm": null, "pm": {"request_count": null, "threads": null, "python_concurrency_mode": "auto", "restart_time": null}}"#
    );
    assert_eq!(apache.get("/app/start").text(), r#"{"before": null}"#);
    let results = hammer(apache.port, 4, 10, |_| Request::get("/app/hello"));
    assert!(results.iter().all(|(_, r)| matches!(r, Ok(r) if r.status == 200)));
    let first = apache.get("/app/metrics").text();
    let second = apache.get("/app/metrics").text();
    let out = Command::new("/usr/bin/python3").args(["-c", SUMMARY, &first, &second]).output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{first}", String::from_utf8_lossy(&out.stderr));
    assert!(summary.contains("keys=66 count=40 2xx=40 queue=None waits_ok=True buckets=65"), "{summary}\n{first}");
    assert!(summary.contains("lifetime=40 threads=40 ours=True"), "{summary}\n{first}");
    assert!(summary.contains("drained=1"), "{summary}\n{second}");

    // With telemetry on, the reporter takes the figures.
    let dir = TempDir::new("telemetry-api-on");
    dir.write("app.wsgi", METRICS_APP);
    let config = format!("WSGITelemetryService unix:{}/t.sock\nWSGIScriptAlias /app {{dir}}/app.wsgi\n", dir.path().display());
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    apache.get("/app/start");
    apache.get("/app/hello");
    assert!(apache.get("/app/metrics").text().starts_with(r#"{"rm": null, "pm": {"request_count": null"#));
}

/// `start_recording_metrics()` called at import by a script loaded as the process starts
/// (`WSGIImportScript`), before the module knows the process's settings, still starts recording.
#[test]
fn recording_started_by_a_preloaded_script() {
    const APP: &str = r#"
import json, mod_wsgi
mod_wsgi.start_recording_metrics()

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    rm = mod_wsgi.request_metrics() if environ['PATH_INFO'] == '/metrics' else None
    return [json.dumps(rm and rm['request_count']).encode()]
"#;
    let dir = TempDir::new("telemetry-preload");
    dir.write("app.wsgi", APP);
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        "WSGIImportScript {dir}/app.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
         WSGIScriptAlias /app {dir}/app.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n",
    );
    apache.wait_for_log("Imported WSGI script");
    for _ in 0..5 {
        assert_eq!(apache.get("/app/").text(), "null");
    }
    assert_eq!(apache.get("/app/metrics").text(), "5", "{}", apache.error_log());
}

/// `wsgi.file_wrapper` output is metered like any body: its bytes are in `request_metrics()`'
/// output counts, in embedded mode (a file bucket) and in daemon mode (DATA frames).
#[test]
fn file_wrapper_output_is_metered() {
    const APP: &str = r#"
import json, os, mod_wsgi

DATA = os.path.join(os.path.dirname(__file__), 'data.bin')

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/start':
        mod_wsgi.start_recording_metrics()
        body = [b'started']
    elif path == '/metrics':
        rm = mod_wsgi.request_metrics()
        body = [json.dumps([rm['request_count'], rm['output_bytes'], rm['output_writes']]).encode()]
    else:
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](open(DATA, 'rb'), 65536)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return body
"#;
    let dir = TempDir::new("telemetry-file");
    dir.write("app.wsgi", APP);
    dir.write("data.bin", &"x".repeat(300_000));
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        "WSGIDaemonProcess site threads=2\n\
         WSGIScriptAlias /embedded {dir}/app.wsgi\n\
         WSGIScriptAlias /daemon {dir}/app.wsgi process-group=site\n",
    );
    for mode in ["embedded", "daemon"] {
        assert_eq!(apache.get(&format!("/{mode}/start")).text(), "started");
        for _ in 0..2 {
            let r = apache.get(&format!("/{mode}/file"));
            assert_eq!((r.status, r.body.len()), (200, 300_000), "{mode}\n{}", apache.error_log());
        }
        // The two file responses, one write each (/start began before recording did, and
        // /metrics has not ended).
        let counts: Vec<u64> = serde_free_list(&apache.get(&format!("/{mode}/metrics")).text());
        assert_eq!(counts, [2, 600_000, 2], "{mode}\n{}", apache.error_log());
    }
}

/// `[1, 2, 3]` as numbers.
fn serde_free_list(text: &str) -> Vec<u64> {
    text.trim_matches(|c| c == '[' || c == ']').split(',').map(|n| n.trim().parse().unwrap_or_else(|_| panic!("{text}"))).collect()
}
