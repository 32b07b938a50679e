//! Python starts in each child and ends with it: stopping Apache runs every interpreter's
//! atexit callbacks and finalises Python promptly, without Apache having to SIGKILL a child.

mod common;
use common::*;

const APP: &str = r#"
import atexit, os, threading

def mark(path):
    with open(path, 'w') as f:
        f.write('atexit ran')

def application(environ, start_response):
    marker = os.path.join(environ['MARKER_DIR'], environ['mod_wsgi.application_group'].replace('/', '_').replace('|', '_') or 'GLOBAL')
    atexit.register(mark, marker + '.%d' % os.getpid())
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'registered']
"#;

#[test]
fn stop_runs_atexit_in_every_interpreter_and_needs_no_sigkill() {
    for mpm in ALL_MPMS {
        let dir = TempDir::new("lifecycle");
        dir.write("app.wsgi", APP);
        std::fs::create_dir_all(dir.path().join("markers")).unwrap();
        let markers = dir.path().join("markers");
        std::fs::set_permissions(&markers, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let mut apache = Apache::start_in(
            dir,
            mpm,
            "SetEnv MARKER_DIR {dir}/markers\n\
             WSGIScriptAlias /global {dir}/app.wsgi application-group=%{GLOBAL}\n\
             WSGIScriptAlias /one {dir}/app.wsgi application-group=one\n\
             WSGIScriptAlias /two {dir}/app.wsgi application-group=two\n",
        );
        for path in ["/global", "/one", "/two"] {
            assert_eq!(apache.get(path).text(), "registered", "{mpm:?}");
        }
        let started = std::time::Instant::now();
        if mpm == Mpm::Prefork {
            // Prefork ends its children inside their SIGTERM handler, where Python is not
            // finalised (README, "Application groups"): its stop that runs atexit is graceful.
            apache.stop_gracefully();
        } else {
            apache.stop();
        }
        let took = started.elapsed();
        let log = apache.error_log();
        assert!(!log.contains("SIGKILL") && !log.contains("still did not exit"), "{mpm:?}: a child had to be killed:\n{log}");
        let mut found: Vec<String> =
            std::fs::read_dir(&markers).unwrap().flatten().map(|e| e.file_name().to_string_lossy().split('.').next().unwrap().to_string()).collect();
        found.sort();
        assert_eq!(found, ["GLOBAL", "one", "two"], "{mpm:?}: atexit callbacks missing (stop took {took:?})\n{log}");
    }
}
