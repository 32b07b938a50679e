//! `SetHandler wsgi-status` (issue 14, ours, like mod_status): every process of this Apache
//! and each group in it, as HTML and as Prometheus text that Prometheus's own parser (PyPI's
//! `prometheus_client`) reads; the counts add up, per group, to what the client sent, across
//! children (worker with several, prefork with many) and for a daemon group's requests too,
//! which its daemons count on their group's own board.

mod common;
use common::*;
use std::process::Command;

const APP: &str = r#"
def application(environ, start_response):
    status = '500 Internal Server Error' if environ['QUERY_STRING'] == 'fail' else '200 OK'
    start_response(status, [('Content-Type', 'text/plain')])
    return [environ['mod_wsgi.application_group'].encode()]
"#;

/// The Prometheus text summed per (process group, group) by `prometheus_client`'s parser:
/// `pg|group requests=N 2xx=N 5xx=N count=N processes=N threads=N objects=N` for requests run,
/// the same prefixed by `proxied ` for those Apache's children passed to daemons, then
/// `daemon GROUP PID` for each daemon process.
fn parse_prometheus(text: &str) -> String {
    const SUM: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
rows = {}
seen = set()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        series = (s.name, tuple(sorted(s.labels.items())))
        if series in seen:
            sys.exit('series written twice: %r' % (series,))
        seen.add(series)
        if 'group' not in s.labels:
            continue
        name = s.name
        key = '%s|%s' % (s.labels['process_group'], s.labels['group'])
        if name.startswith('mod_wsgi_proxied_'):
            key, name = 'proxied ' + key, name.replace('_proxied', '')
        row = rows.setdefault(key, {'requests': 0, '2xx': 0, '5xx': 0, 'count': 0, 'processes': set(), 'threads': 0, 'objects': 0})
        if name == 'mod_wsgi_requests_total':
            row['requests'] += s.value
            if s.labels['status'] in ('2xx', '5xx'):
                row[s.labels['status']] += s.value
            row['processes'].add(s.labels['process'])
        elif name == 'mod_wsgi_request_duration_seconds_count':
            row['count'] += s.value
        elif name == 'mod_wsgi_thread_states':
            row['threads'] += s.value
        elif name == 'mod_wsgi_python_objects':
            row['objects'] += s.value
daemons = set()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        if s.name == 'mod_wsgi_process_start_time_seconds' and s.labels['kind'] == 'daemon':
            daemons.add((s.labels['process_group'], s.labels['process']))
for key in sorted(rows):
    r = rows[key]
    print('%s requests=%d 2xx=%d 5xx=%d count=%d processes=%d threads=%d objects=%d' % (key, r['requests'], r['2xx'], r['5xx'], r['count'], len(r['processes']), r['threads'], r['objects']))
for group, pid in sorted(daemons):
    print('daemon %s %s' % (group, pid))
"#;
    let mut child = Command::new(telemetry_tools().join("bin/python"))
        .args(["-c", SUM])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "prometheus_client could not parse it: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn counts_add_up_per_group_across_processes() {
    let config = "WSGIDaemonProcess site threads=4\n\
                  WSGIScriptAlias /one {dir}/app.wsgi application-group=one\n\
                  WSGIScriptAlias /two {dir}/app.wsgi application-group=two\n\
                  WSGIScriptAlias /daemon {dir}/app.wsgi process-group=site application-group=%{GLOBAL}\n\
                  <Location /wsgi-status>\n  SetHandler wsgi-status\n  Require all granted\n</Location>\n";
    for mpm in [Mpm::Worker, Mpm::Prefork, Mpm::Event] {
        let dir = TempDir::new("status-page");
        dir.write("app.wsgi", APP);
        // Several children (the harness's default is one).
        let processes = match mpm {
            Mpm::Prefork => "StartServers 4\nMinSpareServers 4\nMaxSpareServers 8\nServerLimit 8\nMaxRequestWorkers 8\n",
            _ => "StartServers 2\nServerLimit 2\nMaxRequestWorkers 16\nMinSpareThreads 16\nMaxSpareThreads 16\n",
        };
        let mut apache = Apache::start_in(dir, mpm, &format!("{processes}{config}"));
        let results = hammer(apache.port, 12, 20, |n| match n % 4 {
            0 => Request::get("/one/"),
            1 => Request::get("/two/?fail"),
            2 => Request::get("/daemon/"),
            _ => Request::get("/one/"),
        });
        assert!(results.iter().all(|(_, r)| r.is_ok()), "{mpm:?}\n{}", apache.error_log());
        let text = apache.get("/wsgi-status?format=prometheus");
        assert_eq!(text.status, 200);
        assert!(text.header("Content-Type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")), "{:?}", text.headers);
        let summary = parse_prometheus(&text.text());
        let context = format!("{mpm:?}\n{summary}\n{}", text.text());
        assert!(summary.contains("|one requests=120 2xx=120 5xx=0 count=120"), "{context}");
        assert!(summary.contains("|two requests=60 2xx=0 5xx=60 count=60"), "{context}");
        // Run by the daemons (their rows), and passed on by the children (apart: never
        // counted twice in mod_wsgi_requests_total).
        assert!(summary.contains("\nsite| requests=60 2xx=60 5xx=0 count=60 processes=1 "), "{context}");
        assert!(summary.contains("proxied site| requests=60 2xx=60 5xx=0 count=60"), "{context}");
        let daemon_pid = summary.lines().find_map(|l| l.strip_prefix("daemon site ")).expect("the daemon's row");
        assert!(std::path::Path::new(&format!("/proc/{daemon_pid}")).exists(), "{context}");
        // Every group's interpreter has thread states: up to 4 in the daemon (threads=4).
        for key in ["|one", "|two", "site|"] {
            let line = summary.lines().find(|l| l.starts_with(key)).unwrap();
            let threads: u64 = line.split("threads=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
            assert!(threads >= 1, "{context}");
        }
        if mpm == Mpm::Prefork {
            // Several children served (one connection at a time each): each is its own
            // process on the page.
            let processes: usize = summary.lines().find(|l| l.starts_with("|one")).unwrap().rsplit('=').next().unwrap().parse().unwrap();
            assert!(processes > 1, "{context}");
        }
        let page = apache.get("/wsgi-status");
        assert!(page.header("Content-Type").is_some_and(|t| t.starts_with("text/html")));
        let html = page.text();
        assert!(html.contains("<td class=n>one</td>") && html.contains("<td class=n>site</td>"), "{html}");
        apache.stop_gracefully();
        assert!(crash_lines(&apache.error_log()).is_empty(), "{}", apache.error_log());
    }
}

/// Off unless configured, like mod_status; names are escaped on the page.
#[test]
fn only_where_configured_and_escaped() {
    let dir = TempDir::new("status-none");
    dir.write("app.wsgi", APP);
    let apache = Apache::start_in(dir, Mpm::Event, "WSGIScriptAlias /app {dir}/app.wsgi application-group=<b>&\"x\"\n<Location />\n  Require all granted\n</Location>\n<Location /s>\n  SetHandler wsgi-status\n</Location>\n");
    assert_eq!(apache.get("/app/").status, 200);
    assert_eq!(apache.get("/wsgi-status").status, 404);
    let html = apache.get("/s").text();
    assert!(html.contains("&lt;b&gt;&amp;&quot;x&quot;") && !html.contains("<b>&"), "{html}");
    let prom = apache.get("/s?format=prometheus").text();
    assert!(prom.contains("group=\"<b>&\\\"x\\\"\""), "{prom}");
    parse_prometheus(&prom);
    assert_eq!(apache.request("POST", "/s", &[], b"").status, 405);
}

/// Ours in the internal metrics API: `mod_wsgi.process_metrics()['application_groups']` has
/// this process's groups as the status page shows them, in an Apache child and in a daemon,
/// with no `start_recording_metrics()` needed.
#[test]
fn process_metrics_has_the_groups() {
    const APP: &str = r#"
import json, mod_wsgi

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/json')])
    groups = mod_wsgi.process_metrics()['application_groups']
    g = groups[environ['mod_wsgi.application_group']]
    return [json.dumps([g['request_count'], g['status_2xx'], g['active_requests'], g['thread_states'], g['python_objects'], len(g['request_time_buckets']), sorted(groups)]).encode()]
"#;
    let dir = TempDir::new("status-groups");
    dir.write("app.wsgi", APP);
    // A group whose import leaves 200000 more objects for its collector to track.
    dir.write("big.wsgi", &format!("KEPT = [[] for _ in range(200000)]\n{APP}"));
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        "WSGIDaemonProcess site threads=2\n\
         WSGIScriptAlias /one {dir}/app.wsgi application-group=one\n\
         WSGIScriptAlias /daemon {dir}/app.wsgi process-group=site application-group=d\n\
         WSGIScriptAlias /big {dir}/big.wsgi application-group=big\n",
    );
    for (path, group) in [("/one/", "one"), ("/daemon/", "d")] {
        for _ in 0..3 {
            assert_eq!(apache.get(path).status, 200, "{}", apache.error_log());
        }
        let text = apache.get(path).text();
        // 3 ended before this one, which is running; the interpreter has a thread state; the
        // collector tracks objects (Python 3.11); 11 buckets; only this process's run groups.
        let expected_groups = format!("[\"{group}\"]");
        assert!(text.starts_with("[3, 3, 1, ") && text.ends_with(&format!(", 11, {expected_groups}]")), "{path}: {text}\n{}", apache.error_log());
        let fields: Vec<&str> = text.trim_matches(|c| c == '[' || c == ']').split(", ").collect();
        assert!(fields[3].parse::<u64>().unwrap() >= 1, "{path}: thread states: {text}");
        assert!(fields[4].parse::<u64>().unwrap() > 1000, "{path}: objects: {text}");
    }
    // Each group's count is its own interpreter's: the big one's is larger by its 200000
    // lists (its first request counts at once, as it ends: the second one reports it).
    let objects = |path: &str| -> u64 {
        apache.get(path);
        let text = apache.get(path).text();
        text.trim_matches(|c| c == '[' || c == ']').split(", ").nth(4).unwrap().parse().unwrap_or_else(|_| panic!("{path}: {text}"))
    };
    let (one, big) = (objects("/one/"), objects("/big/"));
    assert!(big >= one + 190_000, "one {one}, big {big}");
}
