//! `WSGIDaemonProcess ... chroot=`: a daemon that serves from inside its jail, against a real
//! Apache started as root. The jail holds a copy of Debian's Python 3.11 standard library at
//! `/usr/lib/python3.11` and the WSGI script; the engine and libpython are mapped before the
//! `chroot`, so neither is in the jail.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

const USER: &str = "www-data";
const STDLIB: &str = "/usr/lib/python3.11";

/// Directories of the standard library no start-up or test app imports (and the tests).
const SKIPPED: [&str; 10] =
    ["__pycache__", "test", "tests", "dist-packages", "site-packages", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"];

/// Copies `src` to `dst` (following symlinks, so Debian's `sitecustomize.py`, a link to
/// `/etc`, arrives as a file), readable by everyone.
fn copy_stdlib(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if SKIPPED.contains(&name.as_str()) || name.starts_with("config-") {
            continue;
        }
        let Ok(meta) = std::fs::metadata(entry.path()) else { continue };
        if meta.is_dir() {
            copy_stdlib(&entry.path(), &dst.join(&name));
        } else {
            std::fs::copy(entry.path(), dst.join(&name)).unwrap();
        }
    }
}

/// Reports what the daemon sees from inside: a marker outside the jail (by its real path),
/// the jail itself (by its real path), and where and who it is.
fn app(outside_marker: &Path, jail: &Path) -> String {
    format!(
        r#"
import json, os, sys
IMPORTED_AT_START = True

def application(environ, start_response):
    body = json.dumps({{
        'outside_visible': os.path.exists({outside:?}),
        'jail_visible': os.path.exists({jail:?}),
        'cwd': os.getcwd(),
        'uid': os.getuid(),
        'file': __file__,
        'script_filename': environ.get('SCRIPT_FILENAME'),
        'document_root': environ.get('DOCUMENT_ROOT', '(unset)'),
        'prefix': sys.prefix,
        'os_file': os.__file__,
    }}).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]
"#,
        outside = outside_marker.display().to_string(),
        jail = jail.display().to_string(),
    )
}

fn uid_of(user: &str) -> String {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Fails loudly (never skips) when this machine cannot `chroot` even as root (a container
/// without `CAP_SYS_CHROOT`): chroot(1) says "cannot change root directory" then, and only
/// fails to find the command inside when the chroot itself worked.
fn assert_chroot_possible(jail: &Path) {
    let out = Command::new("chroot").arg(jail).arg("/no-such-command").output().expect("chroot(1) runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("cannot change root directory"),
        "CHROOT IS NOT POSSIBLE ON THIS MACHINE (as root): {text}\nThe chroot= test cannot run here; this is an environment problem, not a skip."
    );
}

#[test]
fn chroot_daemon_serves_from_inside_its_jail() {
    if !is_root() {
        return eprintln!("skipped: needs root to start Apache as root (chroot)");
    }
    let dir = TempDir::new("chroot");
    let jail = dir.path().join("jail");
    copy_stdlib(Path::new(STDLIB), &jail.join(STDLIB.trim_start_matches('/')));
    assert_chroot_possible(&jail);
    let outside = dir.write("outside-marker", "outside the jail");
    // Apache's children see the script at its real path (inside the jail's directory); the
    // daemon, inside the jail, at /app/app.wsgi.
    dir.write("jail/app/app.wsgi", &app(&outside, &jail));
    dir.write("jail/www/.keep", "");
    dir.write("run/.keep", "");
    let apache = Apache::start_in(
        dir,
        Mpm::Event,
        &format!(
            "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\nDocumentRoot {{dir}}/jail/www\n\
             WSGIDaemonProcess jailed user={USER} home=/app chroot={{dir}}/jail/ threads=2\n\
             WSGIDaemonProcess plain chroot={{dir}}/jail threads=2\n\
             WSGIScriptAlias /jailed {{dir}}/jail/app/app.wsgi process-group=jailed application-group=%{{GLOBAL}}\n\
             WSGIScriptAlias /plain {{dir}}/jail/app/app.wsgi process-group=plain\n\
             WSGIScriptAlias /outside {{dir}}/outside-marker process-group=plain\n"
        ),
    );
    let log = apache.error_log();
    assert!(
        !log.contains("Unable to change root directory"),
        "CHROOT FAILED IN THE DAEMON (not a skip: chroot= cannot work on this machine):\n{log}"
    );

    let response = apache.get("/jailed");
    assert_eq!(response.status, 200, "{}\n{}", response.text(), apache.error_log());
    let seen = Json::parse(&response.text());
    assert_eq!(seen.get("outside_visible"), "false", "a file outside the jail is visible: {}", response.text());
    assert_eq!(seen.get("jail_visible"), "false", "the jail's own path is visible inside it: {}", response.text());
    assert_eq!(seen.get("cwd"), "/app", "home= is a directory inside the jail");
    assert_eq!(seen.get("uid"), uid_of(USER), "dropped to its user after the chroot");
    assert_eq!(seen.get("file"), "/app/app.wsgi", "the script is loaded by its path inside the jail");
    assert_eq!(seen.get("script_filename"), "/app/app.wsgi", "SCRIPT_FILENAME as the jail sees it (mod_wsgi)");
    assert_eq!(seen.get("document_root"), "/www", "DOCUMENT_ROOT as the jail sees it (mod_wsgi)");
    assert_eq!(
        (seen.get("prefix"), seen.get("os_file")),
        ("/usr".to_string(), "/usr/lib/python3.11/os.py".to_string()),
        "the jail's standard library"
    );
    // Preloaded (both groups named on the alias), by its path inside the jail.
    let line = "Imported WSGI script '/app/app.wsgi' into application group ''.";
    assert!(apache.error_log().contains(line), "{line}\n{}", apache.error_log());
    let line = format!("Daemon process 'jailed' (0) is serving requests as uid {} in chroot '{}'.", uid_of(USER), jail.display());
    assert!(apache.error_log().contains(&line), "{line}\n{}", apache.error_log());

    // Apache's user (no home=): the working directory is the jail's root.
    let response = apache.get("/plain");
    assert_eq!(response.status, 200, "{}\n{}", response.text(), apache.error_log());
    let seen = Json::parse(&response.text());
    assert_eq!((seen.get("cwd"), seen.get("uid"), seen.get("outside_visible")), ("/".to_string(), uid_of("nobody"), "false".to_string()));

    // A script outside the chroot directory: mod_wsgi's refusal, a 500.
    assert_eq!(apache.get("/outside").status, 500);
    let line = "is not located within chroot directory";
    assert!(apache.wait_for_log(line).contains(line), "{}", apache.error_log());
}

#[test]
fn chroot_must_be_an_existing_absolute_directory() {
    for (body, reason) in [
        (
            "WSGIDaemonProcess site chroot=/nonexistent\n",
            "WSGIDaemonProcess site: chroot directory '/nonexistent' does not exist or is not a directory",
        ),
        ("WSGIDaemonProcess site chroot=relative/jail\n", "Invalid chroot directory for WSGI daemon process."),
        ("WSGIDaemonProcess site chroot=/etc/passwd\n", "does not exist or is not a directory"),
        // python-home= is looked for inside the jail.
        ("WSGIDaemonProcess site chroot=/tmp python-home=/usr\n", "python-home '/usr' inside chroot '/tmp'"),
    ] {
        let (ok, out) = config_test(body);
        assert!(!ok && out.contains(reason), "{body:?}: {out}");
        assert!(out.contains("httpd.conf"), "file and line: {out}");
    }
    let (ok, out) = config_test("WSGIDaemonProcess site chroot=/\n");
    if is_root() {
        assert!(ok, "{out}");
    } else {
        assert!(!ok && out.contains("Cannot chroot WSGI daemon process when not root."), "{out}");
    }
}
