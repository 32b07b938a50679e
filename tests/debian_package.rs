//! The Debian package (issue 12): `scripts/deb` builds it with dpkg-deb; installed with dpkg
//! on this machine it takes the place of Debian's libapache2-mod-wsgi-py3 (Conflicts,
//! Replaces), `a2enmod wsgi` enables it, Debian's own Apache started by `apache2ctl` (with a
//! copy of /etc/apache2 as a second instance, so that it listens on 127.0.0.1 only) serves a
//! site configured as for mod_wsgi through it, and purging it leaves none of its files.
//! Debian's mod_wsgi is put back afterwards, whatever happened (the other tests compare with
//! it). Needs root: it installs packages.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A second Apache instance in Debian's naming (`apache2ctl` and `a2enmod` derive its run,
/// lock and log directories from the suffix).
const CONFDIR: &str = "/etc/apache2-wsgirs-test";
const RUN_DIR: &str = "/var/run/apache2-wsgirs-test";
const LOG_DIR: &str = "/var/log/apache2-wsgirs-test";

fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(program).args(args).envs(env.iter().copied()).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn check(what: &str, out: &Output) -> String {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

fn package_status(name: &str) -> String {
    let out = run("dpkg-query", &["-W", "-f=${Status}", name], &[]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Puts the machine back as it was: our instance stopped, our package purged, Debian's
/// mod_wsgi installed from the saved package (its conffiles too), the second instance gone.
struct Restore {
    debian_deb: PathBuf,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(format!("{RUN_DIR}/apache2.pid")).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            // SAFETY: signals the Apache this test started, by the pid in its pidfile.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = run("dpkg", &["--purge", "mod-wsgi-rs"], &[]);
        let out = run("dpkg", &["-i", "--force-confmiss", self.debian_deb.to_str().unwrap()], &[]);
        if !out.status.success() {
            eprintln!("could not put Debian's mod_wsgi back: {}", String::from_utf8_lossy(&out.stderr));
        }
        for dir in [CONFDIR, RUN_DIR, LOG_DIR, "/var/lock/apache2-wsgirs-test"] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

const APP: &str = r#"
def application(environ, start_response):
    with open('/proc/self/maps') as maps:
        engine = 'mod_wsgi-engine-py' in maps.read()
    body = 'engine=%s group=%r' % (engine, environ['mod_wsgi.application_group'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

#[test]
fn the_deb_replaces_debians_mod_wsgi_and_serves_its_configuration() {
    if !is_root() {
        eprintln!("SKIPPED: installing packages needs root");
        return;
    }
    // Debian's package, saved first, so that it can always be put back.
    let cache = cache_dir("debian-packages");
    std::fs::create_dir_all(&cache).unwrap();
    let saved = || {
        std::fs::read_dir(&cache).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libapache2-mod-wsgi-py3_") && n.ends_with(".deb"))
        })
    };
    if saved().is_none() {
        let download = || Command::new("apt-get").args(["download", "-q", "libapache2-mod-wsgi-py3"]).current_dir(&cache).output().unwrap();
        if !download().status.success() {
            // A machine whose package lists were never fetched.
            let _ = run("apt-get", &["update", "-qq"], &[]);
            let out = download();
            assert!(out.status.success(), "apt-get download libapache2-mod-wsgi-py3 failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let debian_deb = saved().expect("the downloaded package");
    let _restore = Restore { debian_deb };

    let built = check("scripts/deb", &run(repo().join("scripts/deb").to_str().unwrap(), &[], &[]));
    let deb = repo().join(built.lines().last().unwrap().trim());
    assert!(deb.is_file(), "scripts/deb printed {built}");

    // Installing it takes Debian's package out (Conflicts + Replaces) and enables the module.
    check("dpkg -i", &run("dpkg", &["-i", deb.to_str().unwrap()], &[]));
    assert!(package_status("mod-wsgi-rs").contains("install ok installed"));
    assert!(!package_status("libapache2-mod-wsgi-py3").contains("installed"), "{}", package_status("libapache2-mod-wsgi-py3"));
    let owner = check("dpkg -S", &run("dpkg", &["-S", "/usr/lib/apache2/modules/mod_wsgi.so"], &[]));
    assert!(owner.starts_with("mod-wsgi-rs:"), "/usr/lib/apache2/modules/mod_wsgi.so belongs to {owner}");
    assert!(Path::new("/usr/lib/apache2/modules/mod_wsgi-engine-py3.11.so").is_file() || std::fs::read_dir("/usr/lib/apache2/modules").unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("mod_wsgi-engine-py")));
    assert!(Path::new("/etc/apache2/mods-enabled/wsgi.load").exists(), "postinst did not enable the module");

    // A second instance of Debian's Apache: its tree copied, on 127.0.0.1 only, a site
    // configured as it would be for mod_wsgi.
    let _ = std::fs::remove_dir_all(CONFDIR);
    check("cp", &run("cp", &["-a", "/etc/apache2", CONFDIR], &[]));
    std::fs::create_dir_all(LOG_DIR).unwrap();
    let port = free_port();
    std::fs::write(format!("{CONFDIR}/ports.conf"), format!("Listen 127.0.0.1:{port}\n")).unwrap();
    for entry in std::fs::read_dir(format!("{CONFDIR}/sites-enabled")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let site = TempDir::new("deb-site");
    let script = site.write("app.wsgi", APP);
    std::fs::write(
        format!("{CONFDIR}/sites-enabled/site.conf"),
        format!(
            "<VirtualHost 127.0.0.1:{port}>\n  ServerName localhost\n  WSGIScriptAlias / {script}\n  WSGIApplicationGroup site\n  <Directory {dir}>\n    Require all granted\n  </Directory>\n</VirtualHost>\n",
            script = script.display(),
            dir = site.path().display()
        ),
    )
    .unwrap();
    let env = [("APACHE_CONFDIR", CONFDIR)];
    // a2enmod on the copy: off, then on again, as an admin would.
    check("a2dismod", &run("a2dismod", &["-q", "wsgi"], &env));
    assert!(!Path::new(&format!("{CONFDIR}/mods-enabled/wsgi.load")).exists());
    check("a2enmod", &run("a2enmod", &["-q", "wsgi"], &env));
    assert!(Path::new(&format!("{CONFDIR}/mods-enabled/wsgi.load")).exists());
    check("apache2ctl configtest", &run("apache2ctl", &["configtest"], &env));
    check("apache2ctl start", &run("apache2ctl", &["start"], &env));
    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        match try_http(port, "GET", "/", &[], b"") {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("Debian's Apache did not answer: {e}\n{}", std::fs::read_to_string(format!("{LOG_DIR}/error.log")).unwrap_or_default()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let log = std::fs::read_to_string(format!("{LOG_DIR}/error.log")).unwrap_or_default();
    assert_eq!((response.status, response.text()), (200, "engine=True group='site'".to_string()), "{log}");
    check("apache2ctl stop", &run("apache2ctl", &["stop"], &env));
    let log = std::fs::read_to_string(format!("{LOG_DIR}/error.log")).unwrap_or_default();
    assert!(crash_lines(&log).is_empty(), "{log}");

    // Purged, it leaves none of its files and the module disabled.
    let listed = check("dpkg -L", &run("dpkg", &["-L", "mod-wsgi-rs"], &[]));
    let files: Vec<&str> = listed.lines().filter(|l| l.ends_with(".so") || l.contains("mods-available/wsgi")).collect();
    assert!(files.len() >= 4, "{listed}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Path::new(&format!("{RUN_DIR}/apache2.pid")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    check("dpkg --purge", &run("dpkg", &["--purge", "mod-wsgi-rs"], &[]));
    for file in files {
        assert!(!Path::new(file).exists(), "{file} is left after purge");
    }
    assert!(!Path::new("/etc/apache2/mods-enabled/wsgi.load").exists(), "the module is still enabled after purge");
}
