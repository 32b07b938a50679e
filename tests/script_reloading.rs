//! Script reloading as mod_wsgi 6 (and 4.9) does it, side by side with mod_wsgi 6.1 from
//! PyPI: `__mtime__` is the file's mtime in microseconds, an `int` set after the script ran;
//! a module whose `__mtime__` is missing or not an integer is reloaded; with the file
//! unchanged, the module's own `reload_required(resource)` is asked (`resource`: the file the
//! request maps to), a true answer reloads, a raising one is logged with its traceback and
//! keeps the module; every load and reload is an INFO line in mod_wsgi 6's words, and a
//! failed reload leaves no module behind (the next request loads the script afresh).

mod common;
use common::*;
use std::time::Duration;

/// Counts its loads (in a list kept in sys.modules, which outlives the script's module), and
/// does what the file `mode` next to it says when asked whether to reload.
const APP: &str = r#"
import os, sys
sys.modules.setdefault('script_loads', []).append(1)
seen = []
MODE = os.path.join(os.path.dirname(__file__), 'mode')

def reload_required(resource):
    seen.append(resource)
    mode = open(MODE).read().strip() if os.path.exists(MODE) else ''
    if mode == 'raise':
        raise ValueError('reload_required failed')
    if mode == 'delete':
        globals().pop('__mtime__', None)
    if mode == 'string':
        globals()['__mtime__'] = 'not a number'
    return mode == 'yes'

def application(environ, start_response):
    mtime = globals().get('__mtime__')
    stat = os.stat(__file__)
    expected = stat.st_mtime_ns // 1000
    body = 'loads=%d mtime=%s asked=%s' % (
        len(sys.modules['script_loads']),
        type(mtime).__name__ + ('(file)' if mtime == expected else '(other)'),
        ','.join(r.replace(os.path.dirname(__file__), '{dir}') for r in seen[-1:]))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn start(module: &std::path::Path, extra: &str) -> Apache {
    let dir = TempDir::new("script-reloading");
    dir.write("app.wsgi", APP);
    Apache::start_with_module(dir, Mpm::Event, module, &format!("{extra}WSGIScriptAlias /app {{dir}}/app.wsgi\n"))
}

/// The answers to a sequence of requests, each made after writing its `mode`.
fn run(apache: &Apache, modes: &[&str]) -> Vec<String> {
    modes
        .iter()
        .map(|mode| {
            apache.dir.write("mode", mode);
            let r = apache.get("/app");
            format!("[{mode}] {} {}", r.status, r.text())
        })
        .collect()
}

/// The verbs of the (Re)Loading lines, in order.
fn load_lines(apache: &Apache, script: &str) -> Vec<String> {
    apache
        .error_log()
        .lines()
        .filter_map(|line| {
            ["Loading", "Reloading"]
                .into_iter()
                .find(|verb| line.contains(&format!("{verb} WSGI script '{script}' into main interpreter in embedded mode.")))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn reload_required_and_mtime_behave_as_in_mod_wsgi_6() {
    let modes = ["", "", "yes", "no", "raise", "no", "delete", "no", "string", "no"];
    let module_6 = mod_wsgi_6_module();
    let extra = "WSGIApplicationGroup %{GLOBAL}\n";
    let (ours, theirs) = std::thread::scope(|s| {
        let theirs = s.spawn(|| start(&module_6, extra));
        (start(&module_path(), extra), theirs.join().unwrap())
    });
    let (ours_answers, theirs_answers) = (run(&ours, &modes), run(&theirs, &modes));
    assert_eq!(ours_answers, theirs_answers, "mod_wsgi-rs (left) and mod_wsgi {MOD_WSGI_6} (right) differ");
    // What the sequence means, so that a change in both references is noticed too.
    assert_eq!(
        ours_answers,
        [
            "[] 200 loads=1 mtime=int(file) asked=",
            // Asked about the file the request maps to.
            "[] 200 loads=1 mtime=int(file) asked={dir}/app.wsgi",
            // True: reloaded (the new module has not been asked yet).
            "[yes] 200 loads=2 mtime=int(file) asked=",
            "[no] 200 loads=2 mtime=int(file) asked={dir}/app.wsgi",
            // Raised: logged, the module kept.
            "[raise] 200 loads=2 mtime=int(file) asked={dir}/app.wsgi",
            "[no] 200 loads=2 mtime=int(file) asked={dir}/app.wsgi",
            // __mtime__ deleted (by the callback, after the check): the next request reloads.
            "[delete] 200 loads=2 mtime=NoneType(other) asked={dir}/app.wsgi",
            "[no] 200 loads=3 mtime=int(file) asked=",
            // Not an integer: reloads too.
            "[string] 200 loads=3 mtime=str(other) asked={dir}/app.wsgi",
            "[no] 200 loads=4 mtime=int(file) asked=",
        ]
        .map(str::to_string)
    );
    for apache in [&ours, &theirs] {
        let script = apache.dir.path().join("app.wsgi").display().to_string();
        assert_eq!(load_lines(apache, &script), ["Loading", "Reloading", "Reloading", "Reloading"], "{}", apache.error_log());
        let log = apache.error_log();
        let headline = format!("WSGI0174: ValueError exception raised processing WSGI script '{script}' for main interpreter in embedded mode.");
        assert!(log.lines().any(|l| l.contains("WSGI0174:") && l.contains(&headline[10..])), "{log}");
        assert!(log.contains("ValueError: reload_required failed"), "{log}");
        assert!(crash_lines(&log).is_empty(), "{log}");
    }
    // Ours logs the whole traceback (mod_wsgi 4.9 does; 6.1 only its last line).
    let log = ours.error_log();
    assert!(log.contains("Traceback (most recent call last):") && log.contains("in reload_required"), "{log}");
}

/// A changed file is reloaded with the Reloading line; a reload that raises leaves nothing
/// behind, so the next load (once the file is fixed) is a Loading, as in mod_wsgi 6;
/// WSGIImportScript's load (no request) is logged too; and with WSGIScriptReloading Off
/// nothing is asked or reloaded.
#[test]
fn changed_and_broken_scripts_log_their_loads_as_mod_wsgi_6() {
    let module_6 = mod_wsgi_6_module();
    let extra = "WSGIApplicationGroup %{GLOBAL}\n";
    let (ours, theirs) = std::thread::scope(|s| {
        let theirs = s.spawn(|| start(&module_6, extra));
        (start(&module_path(), extra), theirs.join().unwrap())
    });
    let step = |apache: &Apache, content: Option<&str>| {
        if let Some(content) = content {
            // mtimes can have one-second granularity.
            std::thread::sleep(Duration::from_millis(1100));
            apache.dir.replace("app.wsgi", content);
        }
        apache.get("/app").status
    };
    let broken = format!("{APP}\nraise RuntimeError('broken on purpose')\n");
    let fixed = format!("{APP}\n# fixed\n");
    for apache in [&ours, &theirs] {
        assert_eq!(step(apache, None), 200);
        assert_eq!(step(apache, Some(&format!("{APP}\n# changed\n"))), 200);
        assert_eq!(step(apache, Some(&broken)), 500);
        assert_eq!(step(apache, Some(&fixed)), 200);
        let script = apache.dir.path().join("app.wsgi").display().to_string();
        assert_eq!(load_lines(apache, &script), ["Loading", "Reloading", "Reloading", "Loading"], "{}", apache.error_log());
        let log = apache.error_log();
        assert!(log.contains("RuntimeError: broken on purpose"), "{log}");
        assert!(crash_lines(&log).is_empty(), "{log}");
    }

    // WSGIImportScript: loaded at start, no request.
    let dir = TempDir::new("script-reloading-import");
    let script = dir.write("app.wsgi", APP).display().to_string();
    let apache = Apache::start_in(
        dir,
        Mpm::Worker,
        "WSGIImportScript {dir}/app.wsgi process-group=%{GLOBAL} application-group=%{GLOBAL}\n\
         WSGIScriptAlias /app {dir}/app.wsgi application-group=%{GLOBAL}\n",
    );
    let log = apache.wait_for_log("Imported WSGI script");
    let line = log
        .lines()
        .find(|l| l.contains(&format!("Loading WSGI script '{script}' into main interpreter in embedded mode.")))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(!line.contains("[client "), "{line}");
    // Loaded already: the first request asks the module, and finds it current.
    assert_eq!(apache.get("/app").text(), "loads=1 mtime=int(file) asked={dir}/app.wsgi");
    assert_eq!(load_lines(&apache, &script), ["Loading"]);

    // WSGIScriptReloading Off: the module is used as it is, reload_required is never asked.
    let apache = start(&module_path(), "WSGIApplicationGroup %{GLOBAL}\nWSGIScriptReloading Off\n");
    assert_eq!(
        run(&apache, &["yes", "delete", "yes"]),
        ["[yes] 200 loads=1 mtime=int(file) asked=", "[delete] 200 loads=1 mtime=int(file) asked=", "[yes] 200 loads=1 mtime=int(file) asked=",]
    );
}
