//! The core end-to-end suite against every other Python an engine was built for: one module
//! build, one engine per Python, the site's `WSGIPythonHome` picking it.
//!
//! `scripts/pythons` copies pyenv's interpreters to world-readable prefixes under
//! /opt/mod_wsgi-rs/python (Apache's children cannot read root's home) and builds their
//! engines; `scripts/test` runs it and names the versions in `MOD_WSGI_TEST_PYTHONS`, and then
//! every one of them must be here. Run by hand, the test covers whichever are installed.
//! Debian's Python (the default engine, no `WSGIPythonHome`) is tested the same way.
//!
//! Each engine also serves a concurrent load on the event and the worker MPM: one request at
//! a time never shows whether threads really take turns on the GIL (2.7 and 3.6 crashed within
//! a second of concurrent requests when start-up created no GIL).

mod common;
use common::*;
use std::path::PathBuf;

const PYTHONS: &str = "/opt/mod_wsgi-rs/python";

const APP: &str = r#"
import hashlib, os, sys
VALUE = None

def application(environ, start_response):
    global VALUE
    path = environ.get('PATH_INFO', '')
    if path == '/version':
        body = ('%d.%d' % sys.version_info[:2]).encode()
    elif path == '/environ':
        body = ('%s|%s|%s' % (environ['SCRIPT_NAME'], environ['PATH_INFO'], environ['QUERY_STRING'])).encode()
    elif path == '/echo':
        body = hashlib.sha256(environ['wsgi.input'].read()).hexdigest().encode()
    elif path == '/mirror':
        chunks = []
        while True:
            chunk = environ['wsgi.input'].read(8192)
            if not chunk:
                break
            chunks.append(chunk)
        body = b''.join(chunks)
    elif path == '/work':
        n = int(environ['QUERY_STRING'])
        words = ['w%d' % i for i in range(n)]
        body = ('%d:%d' % (sum(i * i for i in range(n)), len(''.join(words)))).encode()
    elif path == '/gen':
        n = int(environ['QUERY_STRING'])
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (('%d,' % i).encode() for i in range(n))
    elif path == '/set':
        VALUE = environ['QUERY_STRING']
        os.environ['DJANGO_SETTINGS_MODULE'] = VALUE
        body = b'set'
    elif path == '/get':
        body = ('%s|%s' % (VALUE, os.environ.get('DJANGO_SETTINGS_MODULE'))).encode()
    elif path == '/native':
        # PEP 3333: native strings are str, i.e. bytes on Python 2 and text on Python 3.
        body = ','.join(sorted(set(type(environ[k]).__name__ for k in ('REQUEST_METHOD', 'PATH_INFO', 'wsgi.url_scheme', 'mod_wsgi.application_group')))).encode()
    elif path == '/unicode_header':
        start_response('200 OK', [(u'X-Text', u'value')])
        return [b'unicode header accepted']
    elif path == '/raise':
        raise ValueError('raised on purpose')
    else:
        body = b'hello'
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
"#;

/// (version, home) of every Python with both a copy under /opt and an engine.
fn installed() -> Vec<(String, PathBuf)> {
    let engines = module_path().parent().unwrap().to_path_buf();
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(PYTHONS)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(v, _)| engines.join(format!("mod_wsgi-engine-py{v}.so")).is_file())
        .collect();
    found.sort();
    found
}

/// (version, `WSGIPythonHome`) of every engine under test: Debian's default one (no home)
/// first, then [`installed`]'s, every one of `MOD_WSGI_TEST_PYTHONS` among them.
fn engines() -> Vec<(String, Option<PathBuf>)> {
    let pythons = installed();
    if let Ok(expected) = std::env::var("MOD_WSGI_TEST_PYTHONS") {
        let have: Vec<&str> = pythons.iter().map(|(v, _)| v.as_str()).collect();
        for v in expected.split_whitespace() {
            assert!(have.contains(&v), "Python {v} was built by scripts/pythons but is not installed: {have:?}");
        }
    }
    let out = std::process::Command::new("/usr/bin/python3").args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).output().unwrap();
    let default = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let engines: Vec<(String, Option<PathBuf>)> =
        std::iter::once((default, None)).chain(pythons.into_iter().map(|(v, home)| (v, Some(home)))).collect();
    eprintln!("testing Pythons: {:?}", engines.iter().map(|(v, _)| v).collect::<Vec<_>>());
    engines
}

/// A server running [`APP`] with `home`'s engine, as groups `a` (under /a) and `b` (under /b).
fn start(version: &str, home: &Option<PathBuf>, mpm: Mpm) -> Apache {
    let dir = TempDir::new(&format!("py{version}"));
    dir.write("app.wsgi", APP);
    let home = home.as_ref().map(|h| format!("WSGIPythonHome {}\n", h.display())).unwrap_or_default();
    Apache::start_in(
        dir,
        mpm,
        &format!("{home}WSGIScriptAlias /a {{dir}}/app.wsgi application-group=a\nWSGIScriptAlias /b {{dir}}/app.wsgi application-group=b\n"),
    )
}

#[test]
fn core_suite_on_every_built_python() {
    for (version, home) in &engines() {
        let apache = start(version, home, Mpm::Event);
        let get = |path: &str| {
            let r = apache.get(path);
            assert_eq!(r.status, 200, "Python {version} {path}: {}", r.text());
            r.text()
        };
        assert_eq!(get("/a/version"), *version);
        assert_eq!(get("/a/environ?x=1"), "/a|/environ|x=1");
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let r = apache.request("POST", "/a/echo", &[], &body);
        assert_eq!(r.text(), sha256_hex(&body), "Python {version}: wsgi.input");
        // Groups: globals and os.environ stay in their interpreter.
        get("/a/set?site_a.settings");
        assert_eq!(get("/b/get"), "None|None", "Python {version}: group b saw group a's state");
        assert_eq!(get("/a/get"), "site_a.settings|site_a.settings");
        // Native strings, and (Python 2) unicode headers refused as mod_wsgi refuses them.
        assert_eq!(get("/a/native"), "str", "Python {version}");
        let r = apache.get("/a/unicode_header");
        if version.starts_with("2.") {
            assert_eq!(r.status, 500, "Python 2 must refuse unicode header names and values");
        } else {
            assert_eq!((r.status, r.text().as_str()), (200, "unicode header accepted"));
        }
        // Errors: a 500 with the traceback, and the child keeps serving.
        assert_eq!(apache.get("/a/raise").status, 500);
        let log = apache.wait_for_log("ValueError: raised on purpose");
        assert!(log.contains("Traceback (most recent call last):"), "Python {version}:\n{log}");
        assert_eq!(get("/a/version"), *version);
        // Reloading: a changed script is executed again.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        apache.dir.write("app.wsgi", &APP.replace("b'hello'", "b'hello again'"));
        assert_eq!(get("/a/"), "hello again", "Python {version}: reloading");
    }
}

/// Load clients: twice the harness's `ThreadsPerChild`, so requests also queue for workers.
const CLIENTS: usize = 16;
const REQUESTS_PER_CLIENT: usize = 24;

/// Request `n` of the load, with the body it must answer: pure-Python work, a POST body
/// echoed through `wsgi.input`, and a generator body, each in both groups.
fn load_request(n: usize) -> (Request, Vec<u8>) {
    let group = if n % 2 == 0 { "a" } else { "b" };
    match (n / 2) % 3 {
        0 => {
            let k = 2000 + n % 7 * 150;
            let squares: u64 = (0..k as u64).map(|i| i * i).sum();
            let letters: usize = (0..k).map(|i| format!("w{i}").len()).sum();
            (Request::get(format!("/{group}/work?{k}")), format!("{squares}:{letters}").into_bytes())
        }
        1 => {
            let body: Vec<u8> = (0..1000 + n * 997 % 60_000).map(|i| ((i * 31 + n) % 251) as u8).collect();
            (Request::post(format!("/{group}/mirror"), body.clone()), body)
        }
        _ => {
            let k = 40 + n % 13;
            (Request::get(format!("/{group}/gen?{k}")), (0..k).map(|i| format!("{i},")).collect::<String>().into_bytes())
        }
    }
}

#[test]
fn concurrent_load_on_every_built_python() {
    for (version, home) in &engines() {
        for mpm in [Mpm::Event, Mpm::Worker] {
            let apache = start(version, home, mpm);
            let results = hammer(apache.port, CLIENTS, REQUESTS_PER_CLIENT, |n| load_request(n).0);
            let failures: Vec<String> = results
                .iter()
                .enumerate()
                .filter_map(|(n, (request, outcome))| {
                    let expected = load_request(n).1;
                    match outcome {
                        Ok(r) if r.status == 200 && r.body == expected => None,
                        Ok(r) => Some(format!("{} {}: {} {:.200}", request.method, request.path, r.status, r.text())),
                        Err(e) => Some(format!("{} {}: {e}", request.method, request.path)),
                    }
                })
                .collect();
            assert!(
                failures.is_empty(),
                "Python {version}, {} MPM: {} of {} requests failed, e.g.:\n{}",
                mpm.name(),
                failures.len(),
                results.len(),
                failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
            );
        }
    }
}
