//! The daemon-mode directives besides `WSGIDaemonProcess` itself: `WSGIImportScript` into a
//! daemon group, `WSGIRestrictProcess`, `WSGISocketRotation` and `WSGIAcceptMutex`, against a
//! real Apache started as root (the daemons run as `www-data`, Apache's children as `nobody`).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const USER: &str = "www-data";

/// Imported (by `WSGIImportScript`) or loaded (by a request), it leaves a marker file named
/// after its role and the pid that ran it, and remembers when and where it ran.
const APP: &str = r#"
import json, os, time
import mod_wsgi

ROLE = os.path.splitext(os.path.basename(__file__))[0]
LOADED_AT = time.time()
LOADED_PID = os.getpid()
open(os.path.join(os.path.dirname(__file__), 'markers', '%s-%d' % (ROLE, LOADED_PID)), 'w').close()

def application(environ, start_response):
    body = json.dumps({'pid': os.getpid(), 'loaded_pid': LOADED_PID, 'loaded_at': LOADED_AT,
                       'now': time.time(), 'group': mod_wsgi.process_group}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
"#;

fn site_dir(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    dir.write("daemon_app.wsgi", APP);
    dir.write("embedded_app.wsgi", APP);
    dir.write("markers/.keep", "");
    dir.write("run/.keep", "");
    dir
}

/// The pids in marker files for `role`.
fn markers(dir: &Path, role: &str) -> Vec<i32> {
    let prefix = format!("{role}-");
    let mut pids: Vec<i32> = std::fs::read_dir(dir.join("markers"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(&prefix)?.parse().ok())
        .collect();
    pids.sort();
    pids
}

fn wait_for_markers(apache: &Apache, role: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = markers(apache.dir.path(), role);
        if !found.is_empty() {
            return found;
        }
        assert!(Instant::now() < deadline, "no '{role}' import ran:\n{}", apache.error_log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn import_script_runs_in_the_daemon_at_start_and_not_in_apache_children() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    for mpm in [Mpm::Event, Mpm::Prefork] {
        let apache = Apache::start_in(
            site_dir(&format!("import-{}", mpm.name())),
            mpm,
            &format!(
                "WSGISocketPrefix {{dir}}/run/wsgi\n\
                 WSGIDaemonProcess site user={USER} processes=1 threads=2\n\
                 WSGIImportScript {{dir}}/daemon_app.wsgi process-group=site application-group=%{{GLOBAL}}\n\
                 WSGIImportScript {{dir}}/embedded_app.wsgi process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}\n\
                 WSGIScriptAlias /daemon {{dir}}/daemon_app.wsgi process-group=site application-group=%{{GLOBAL}}\n\
                 WSGIScriptAlias /embedded {{dir}}/embedded_app.wsgi application-group=%{{GLOBAL}}\n"
            ),
        );
        // Before any request, the daemon imported its script, and only the daemon did.
        let imported = wait_for_markers(&apache, "daemon_app");
        assert_eq!(imported.len(), 1, "one daemon process, one import: {imported:?}");
        let embedded = wait_for_markers(&apache, "embedded_app");
        assert!(!embedded.contains(&imported[0]), "the daemon imported embedded mode's script: {embedded:?}");
        std::thread::sleep(Duration::from_millis(300));
        let id = json(&apache, "/daemon");
        let pid: i32 = id.get("pid").parse().unwrap();
        assert_eq!(id.get("group"), "site");
        assert_eq!(imported, vec![pid], "imported in the daemon that serves");
        assert_eq!(id.get("loaded_pid").parse::<i32>().unwrap(), pid);
        let (loaded_at, now): (f64, f64) = (id.get("loaded_at").parse().unwrap(), id.get("now").parse().unwrap());
        assert!(now - loaded_at > 0.25, "the request loaded the script again instead of using the imported module");
        // Apache's children imported embedded mode's script and never the daemon's.
        let workers: Vec<i32> = apache.children().into_iter().filter(|c| *c != pid).collect();
        assert!(!workers.is_empty());
        assert!(embedded.iter().all(|p| workers.contains(p)), "embedded imports {embedded:?}, workers {workers:?}");
        assert_eq!(markers(apache.dir.path(), "daemon_app"), vec![pid], "an Apache child imported the daemon's script");
        assert_eq!(json(&apache, "/embedded").get("group"), "");
        assert!(apache.error_log().contains("Imported WSGI script"), "{}", apache.error_log());
    }
}

#[test]
fn import_script_in_a_virtual_host_for_its_daemon() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = Apache::start_in(
        site_dir("import-vhost"),
        Mpm::Event,
        &format!(
            "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
             <VirtualHost *>\n  ServerName localhost\n\
               WSGIDaemonProcess vsite user={USER}\n\
               WSGIImportScript {{dir}}/daemon_app.wsgi process-group=vsite application-group=%{{GLOBAL}}\n\
               WSGIScriptAlias / {{dir}}/daemon_app.wsgi process-group=vsite application-group=%{{GLOBAL}}\n\
             </VirtualHost>\n"
        ),
    );
    let imported = wait_for_markers(&apache, "daemon_app");
    let id = json(&apache, "/");
    assert_eq!((imported, id.get("group")), (vec![id.get("pid").parse::<i32>().unwrap()], "vsite".to_string()));
}

/// Two daemon groups, and locations restricted to some of them.
fn restrict_config() -> String {
    format!(
        "WSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess site user={USER}\n\
         WSGIDaemonProcess other user={USER}\n\
         WSGIScriptAlias / {{dir}}/daemon_app.wsgi application-group=%{{GLOBAL}}\n\
         WSGIRestrictProcess site\n\
         <Location /site>\n  WSGIProcessGroup site\n</Location>\n\
         <Location /other>\n  WSGIProcessGroup other\n</Location>\n\
         <Location /both>\n  WSGIRestrictProcess site other\n  WSGIProcessGroup other\n</Location>\n\
         <Location /embedded>\n  WSGIProcessGroup %{{GLOBAL}}\n</Location>\n\
         <Location /embedded-allowed>\n  WSGIRestrictProcess %{{GLOBAL}}\n  WSGIProcessGroup %{{GLOBAL}}\n</Location>\n\
         <Location /missing>\n  WSGIRestrictProcess nope\n  WSGIProcessGroup nope\n</Location>\n"
    )
}

#[test]
fn restrict_process_refuses_other_groups() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = Apache::start_in(site_dir("restrict"), Mpm::Event, &restrict_config());
    // Listed (server level): served by that group.
    assert_eq!(json(&apache, "/site").get("group"), "site");
    // Not listed: mod_wsgi's 500 and line, and the daemon never sees the request.
    let refused = apache.get("/other");
    assert_eq!(refused.status, 500, "{}", refused.text());
    let line = "Daemon process called 'other' cannot be accessed by this WSGI application as not a member of allowed groups.";
    assert!(apache.wait_for_log(line).contains(line), "{}", apache.error_log());
    // A directory's list replaces the server's.
    assert_eq!(json(&apache, "/both").get("group"), "other");
    // Embedded mode is a process group like any other: %{GLOBAL} must be listed.
    assert_eq!(apache.get("/embedded").status, 500);
    let line = "Daemon process called '' cannot be accessed by this WSGI application as not a member of allowed groups.";
    assert!(apache.wait_for_log(line).contains(line), "{}", apache.error_log());
    assert_eq!(json(&apache, "/embedded-allowed").get("group"), "");
    // Allowed but not defined: mod_wsgi's line for a group that does not exist.
    assert_eq!(apache.get("/missing").status, 500);
    let line = "No WSGI daemon process called 'nope' has been configured.";
    assert!(apache.wait_for_log(line).contains(line), "{}", apache.error_log());
}

/// The daemon socket files under `dir`.
fn sockets(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".sock")).collect();
    found.sort();
    found
}

/// Sends a graceful restart and waits until a new daemon serves; returns the sockets then.
fn graceful_restart(apache: &Apache) -> Vec<PathBuf> {
    let before = json(apache, "/daemon").get("pid");
    // SAFETY: signals only the Apache parent this test started.
    unsafe { libc::kill(apache.pid(), libc::SIGUSR1) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let response = apache.get("/daemon");
        if response.status == 200 && Json::parse(&response.text()).get("pid") != before {
            return sockets(&apache.dir.path().join("run"));
        }
        assert!(Instant::now() < deadline, "no new daemon after the restart:\n{}", apache.error_log());
    }
}

#[test]
fn socket_rotation_decides_whether_restarts_keep_the_socket_path() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    for rotation in ["Off", "On"] {
        let apache = Apache::start_in(
            site_dir(&format!("rotation-{rotation}")),
            Mpm::Event,
            &format!(
                "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\nWSGISocketRotation {rotation}\n\
                 WSGIAcceptMutex fcntl\n\
                 WSGIDaemonProcess site user={USER}\n\
                 WSGIScriptAlias /daemon {{dir}}/daemon_app.wsgi process-group=site application-group=%{{GLOBAL}}\n"
            ),
        );
        let before = sockets(&apache.dir.path().join("run"));
        assert_eq!(before.len(), 1, "{before:?}");
        let after = graceful_restart(&apache);
        assert_eq!(after.len(), 1, "{after:?}");
        if rotation == "Off" {
            assert_eq!(before, after, "WSGISocketRotation Off keeps the path");
            let out = std::process::Command::new("id").args(["-u", USER]).output().unwrap();
            let uid = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(before[0].to_string_lossy().ends_with(&format!(".u{uid}.1.sock")), "named by the daemon's uid, not the generation: {before:?}");
        } else {
            assert_ne!(before, after, "WSGISocketRotation On: a new path each generation");
        }
    }
}

#[test]
fn bad_daemon_directives_stop_config_test() {
    let daemon = "WSGIDaemonProcess site\n";
    for (body, reason) in [
        (
            "WSGIImportScript /a.wsgi process-group=nope application-group=%{GLOBAL}\n".to_string(),
            "WSGI process group not yet configured.",
        ),
        // The group must be defined before the line that names it, as in mod_wsgi.
        (format!("WSGIImportScript /a.wsgi process-group=site application-group=%{{GLOBAL}}\n{daemon}"), "WSGI process group not yet configured."),
        (
            format!("<VirtualHost *>\nServerName other.example\n{daemon}</VirtualHost>\n<VirtualHost *>\nServerName localhost\nWSGIImportScript /a.wsgi process-group=site application-group=x\n</VirtualHost>\n"),
            "WSGI process group not accessible.",
        ),
        ("WSGIImportScript /a.wsgi process-group=%{SERVER} application-group=x\n".into(), "needs a request"),
        ("WSGISocketRotation sometimes\n".into(), "WSGISocketRotation must be one of: Off | On"),
        ("<VirtualHost *>\nWSGISocketRotation Off\n</VirtualHost>\n".into(), "cannot occur within <VirtualHost> section"),
        (
            "WSGIAcceptMutex spin\n".into(),
            "Accept mutex lock mechanism 'spin' is invalid. Valid accept mutex mechanisms for this platform are: default, flock, fcntl, sysvsem, posixsem, pthread.",
        ),
        ("<VirtualHost *>\nWSGIAcceptMutex flock\n</VirtualHost>\n".into(), "cannot occur within <VirtualHost> section"),
        ("<Location /x>\nWSGIAcceptMutex flock\n</Location>\n".into(), "not allowed in <Location> context"),
        ("<Location /x>\nWSGISocketRotation Off\n</Location>\n".into(), "not allowed in <Location> context"),
    ] {
        let (ok, out) = config_test(&body);
        assert!(!ok && out.contains(reason), "{body:?}: {out}");
        assert!(out.contains("httpd.conf"), "file and line: {out}");
    }
    // What mod_wsgi accepts.
    for body in [
        format!("{daemon}WSGIImportScript /a.wsgi process-group=site application-group=%{{GLOBAL}}\n"),
        format!("<VirtualHost *>\nServerName localhost\n{daemon}WSGIImportScript /a.wsgi process-group=site application-group=x\n</VirtualHost>\n"),
        "WSGIAcceptMutex default\nWSGISocketRotation Off\n".into(),
        "WSGIRestrictProcess site %{GLOBAL}\n<Directory /tmp>\nWSGIRestrictProcess site\n</Directory>\n<Location /x>\nWSGIRestrictProcess\n</Location>\n".into(),
    ] {
        let (ok, out) = config_test(&body);
        assert!(ok, "{body:?}: {out}");
    }
}
