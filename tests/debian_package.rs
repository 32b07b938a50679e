//! The Debian package (issue 12): `scripts/deb` builds it; `apt install ./mod-wsgi-rs_*.deb`
//! on this machine takes the place of Debian's libapache2-mod-wsgi-py3 (Conflicts, Replaces)
//! and enables the module; Debian's own Apache started by `apache2ctl` (with a copy of
//! /etc/apache2 as a second instance, listening on 127.0.0.1 only) serves a site configured as
//! for mod_wsgi through it; `dpkg -r` disables it and keeps its conffiles, a reinstall enables
//! it again, a purge leaves nothing; the README's swap back (`apt install
//! libapache2-mod-wsgi-py3`) brings Debian's module back enabled, and purging our leftover
//! configuration afterwards leaves Debian's module enabled.
//!
//! It installs and removes packages and its maintainer scripts restart the system Apache, so it
//! runs in CI (`CI` set: as root, or it fails) or when `MOD_WSGI_TEST_DEB=1` asks for it, and
//! then refuses while the system's Apache is running. The machine is put back as it was
//! (packages, versions, `wsgi.*` in /etc/apache2/mods-*, the `wsgi` state markers of a2enmod),
//! whatever happened; a run that was killed is recovered by the next run from the record it
//! left in [`STATE`].

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

/// A second Apache instance in Debian's naming (`apache2ctl` and `a2enmod` derive its run,
/// lock and log directories from the suffix).
const CONFDIR: &str = "/etc/apache2-wsgirs-test";
const RUN_DIR: &str = "/var/run/apache2-wsgirs-test";
const LOG_DIR: &str = "/var/log/apache2-wsgirs-test";
const LOCK_DIR: &str = "/var/lock/apache2-wsgirs-test";
/// What survives an interrupted run: the record of the machine before it (`record`, and the
/// saved files under `saved/`), the site (outside /tmp: an Apache under systemd has its own
/// /tmp) and the copy's a2enmod state.
const STATE: &str = "/var/lib/mod_wsgi-rs-test-deb";
const DEBIAN: &str = "libapache2-mod-wsgi-py3";
const OURS: &str = "mod-wsgi-rs";
const MODULE: &str = "/usr/lib/apache2/modules/mod_wsgi.so";

fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(program).args(args).envs(env.iter().copied()).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn check(what: &str, out: &Output) -> String {
    assert!(out.status.success(), "{what} failed:\n{}", text(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// dpkg and apt, never asking: an edited conffile keeps the admin's version.
const NONINTERACTIVE: [(&str, &str); 1] = [("DEBIAN_FRONTEND", "noninteractive")];

fn dpkg(args: &[&str]) -> Output {
    let mut all = vec!["--force-confold", "--force-confdef"];
    all.extend_from_slice(args);
    run("dpkg", &all, &NONINTERACTIVE)
}

fn apt_install(deb: &Path) -> Output {
    let deb = deb.to_str().unwrap();
    let args = [
        "install",
        "-y",
        "-q",
        "-o",
        "DPkg::Lock::Timeout=120",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "Dpkg::Options::=--force-confdef",
        deb,
    ];
    run("apt-get", &args, &NONINTERACTIVE)
}

/// A package's dpkg record: its status word ("installed", "config-files", …) and version, or
/// `None` when dpkg knows nothing of it (or only "not-installed").
fn package(name: &str) -> Option<(String, String)> {
    let out = run("dpkg-query", &["-W", "-f=${Status}\t${Version}", name], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, version) = text.split_once('\t')?;
    let word = status.split_whitespace().nth(2)?.to_string();
    (out.status.success() && word != "not-installed").then(|| (word, version.to_string()))
}

fn installed(name: &str) -> Option<String> {
    package(name).filter(|(word, _)| word == "installed").map(|(_, version)| version)
}

fn owner(path: &str) -> String {
    let out = run("dpkg", &["-S", path], &[]);
    String::from_utf8_lossy(&out.stdout).split(':').next().unwrap_or("").trim().to_string()
}

/// The files the packages and a2enmod change outside their own: `wsgi.*` in
/// /etc/apache2/mods-{available,enabled} and the `wsgi` markers in /var/lib/apache2/module/*.
fn wsgi_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["/etc/apache2/mods-available", "/etc/apache2/mods-enabled"] {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with("wsgi.") {
                files.push(entry.path());
            }
        }
    }
    for entry in std::fs::read_dir("/var/lib/apache2/module").into_iter().flatten().flatten() {
        let marker = entry.path().join("wsgi");
        if marker.symlink_metadata().is_ok() {
            files.push(marker);
        }
    }
    files.sort();
    files
}

/// Each of [`wsgi_files`] as a line: path, type, mode, and the link's target or the content.
fn manifest() -> String {
    let mut lines = String::new();
    for path in wsgi_files() {
        let meta = path.symlink_metadata().unwrap();
        let what = if meta.file_type().is_symlink() {
            format!("-> {}", std::fs::read_link(&path).unwrap().display())
        } else {
            format!(
                "{:o} {:?}",
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()),
                String::from_utf8_lossy(&std::fs::read(&path).unwrap())
            )
        };
        lines.push_str(&format!("{} {what}\n", path.display()));
    }
    lines
}

/// The Apache of the second instance, if its pidfile names a live apache2.
fn instance_pid() -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(format!("{RUN_DIR}/apache2.pid")).ok()?.trim().parse().ok()?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    (exe == Path::new("/usr/sbin/apache2")).then_some(pid)
}

fn wait_gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie parent is gone for our purpose (its reaper is init, not us).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Stops the second instance by its pidfile's PID (checked to be apache2): SIGTERM, then
/// SIGKILL to its process group (`-k start` makes the parent a group leader). An error if it
/// outlives both.
fn stop_instance() -> Result<(), String> {
    let Some(pid) = instance_pid() else { return Ok(()) };
    // SAFETY: signals the apache2 process named by the second instance's pidfile.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    if wait_gone(pid, Duration::from_secs(20)) {
        return Ok(());
    }
    // SAFETY: as above; the group is that Apache's parent and children.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    if wait_gone(pid, Duration::from_secs(5)) {
        Ok(())
    } else {
        Err(format!("the test's Apache (pid {pid}) survived SIGKILL"))
    }
}

/// The machine before the test, as written to `{STATE}/record`: Debian's package (status word
/// and version, and the .deb of that version), and the saved [`wsgi_files`].
struct Record {
    debian: Option<(String, String)>,
    debian_deb: PathBuf,
    manifest: String,
}

impl Record {
    fn path() -> PathBuf {
        Path::new(STATE).join("record")
    }

    fn load() -> Option<Record> {
        let text = std::fs::read_to_string(Self::path()).ok()?;
        let (head, manifest) = text.split_once("\n--\n")?;
        let mut lines = head.lines();
        let debian = lines.next()?.split_once(' ').map(|(w, v)| (w.to_string(), v.to_string())).filter(|(w, _)| w != "-");
        let debian_deb = PathBuf::from(lines.next()?);
        Some(Record { debian, debian_deb, manifest: manifest.to_string() })
    }

    /// Saves the files and writes the record (aside, then renamed: a record is whole or absent).
    fn save(&self) {
        let saved = Path::new(STATE).join("saved");
        let _ = std::fs::remove_dir_all(&saved);
        std::fs::create_dir_all(&saved).unwrap();
        for file in wsgi_files() {
            let copy = format!("{}{}", saved.display(), file.display());
            std::fs::create_dir_all(Path::new(&copy).parent().unwrap()).unwrap();
            check("cp", &run("cp", &["-a", "--no-dereference", file.to_str().unwrap(), &copy], &[]));
        }
        let (word, version) = self.debian.clone().unwrap_or(("-".into(), "-".into()));
        let aside = Self::path().with_extension("new");
        std::fs::write(&aside, format!("{word} {version}\n{}\n--\n{}", self.debian_deb.display(), self.manifest)).unwrap();
        std::fs::rename(&aside, Self::path()).unwrap();
    }

    /// Puts the machine back; returns what could not be put back.
    fn restore(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(e) = stop_instance() {
            errors.push(e);
        }
        if package(OURS).is_some() {
            let out = dpkg(&["--purge", OURS]);
            if !out.status.success() {
                errors.push(format!("dpkg --purge {OURS}: {}", text(&out)));
            }
        }
        let deb = self.debian_deb.to_str().unwrap();
        let mut step = |what: &str, out: Output| {
            if !out.status.success() {
                errors.push(format!("{what}: {}", text(&out)));
            }
        };
        match &self.debian {
            Some((word, version)) if word == "installed" => {
                if installed(DEBIAN).as_deref() != Some(version) {
                    step("reinstalling Debian's mod_wsgi", dpkg(&["-i", "--force-confmiss", deb]));
                }
            }
            Some((word, _)) if word == "config-files" => {
                if package(DEBIAN).is_none() {
                    step("reinstalling Debian's mod_wsgi", dpkg(&["-i", "--force-confmiss", deb]));
                }
                if installed(DEBIAN).is_some() {
                    step("removing Debian's mod_wsgi", dpkg(&["-r", DEBIAN]));
                }
            }
            _ => {
                if package(DEBIAN).is_some() {
                    step("purging Debian's mod_wsgi", dpkg(&["--purge", DEBIAN]));
                }
            }
        }
        // The files as they were, byte for byte (the maintainer scripts rewrote the links and
        // markers; dpkg may have replaced an edited conffile).
        for file in wsgi_files() {
            if let Err(e) = std::fs::remove_file(&file) {
                errors.push(format!("removing {}: {e}", file.display()));
            }
        }
        let saved = Path::new(STATE).join("saved");
        for line in self.manifest.lines() {
            let path = line.split(' ').next().unwrap();
            let copy = format!("{}{path}", saved.display());
            if let Some(parent) = Path::new(path).parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let out = run("cp", &["-a", "--no-dereference", &copy, path], &[]);
            if !out.status.success() {
                errors.push(format!("restoring {path}: {}", text(&out)));
            }
        }
        let now = manifest();
        if now != self.manifest {
            errors.push(format!("wsgi files differ from before the test:\nbefore:\n{}\nnow:\n{now}", self.manifest));
        }
        if package(DEBIAN) != self.debian {
            errors.push(format!("{DEBIAN} is {:?}, was {:?}", package(DEBIAN), self.debian));
        }
        if package(OURS).is_some() {
            errors.push(format!("{OURS} is still {:?}", package(OURS)));
        }
        if installed(DEBIAN).is_some() && owner(MODULE) != DEBIAN {
            errors.push(format!("{MODULE} belongs to {:?}", owner(MODULE)));
        }
        for dir in [CONFDIR, RUN_DIR, LOG_DIR, LOCK_DIR] {
            let _ = std::fs::remove_dir_all(dir);
        }
        if errors.is_empty() {
            // Only a complete restore forgets the record: otherwise the next run retries.
            let _ = std::fs::remove_dir_all(STATE);
        }
        errors
    }
}

/// Restores the machine on every path out of the test; a failed restore fails the test.
struct Restore(Record);

impl Drop for Restore {
    fn drop(&mut self) {
        let errors = self.0.restore();
        if !errors.is_empty() {
            let message = format!("the machine could not be put back as it was (the record stays in {STATE}):\n{}", errors.join("\n"));
            if std::thread::panicking() {
                eprintln!("{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

/// Whether to run, and refusals: CI must run it (as root); elsewhere it needs
/// `MOD_WSGI_TEST_DEB=1`, root, and the system's Apache stopped.
fn may_run() -> bool {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let opted_in = std::env::var("MOD_WSGI_TEST_DEB").is_ok_and(|v| v == "1");
    if !ci && !opted_in {
        eprintln!(
            "SKIPPED: the Debian package test swaps this machine's mod_wsgi package and restarts its Apache; MOD_WSGI_TEST_DEB=1 runs it (as root)"
        );
        return false;
    }
    assert!(is_root(), "the Debian package test installs packages: run it as root (it runs whenever CI or MOD_WSGI_TEST_DEB=1 is set)");
    if !ci {
        let systemd_active =
            Path::new("/run/systemd/system").exists() && run("systemctl", &["is-active", "--quiet", "apache2"], &[]).status.success();
        let pidfile_live = std::fs::read_to_string("/var/run/apache2/apache2.pid")
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .is_some_and(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == Path::new("/usr/sbin/apache2")));
        assert!(
            !systemd_active && !pidfile_live,
            "the system's Apache is running: the packages' maintainer scripts would restart it with mod_wsgi-rs in it; stop it first (systemctl stop apache2)"
        );
    }
    true
}

/// The .deb of Debian's mod_wsgi at `version` (the candidate when `None`), downloaded once
/// into the test cache under a name that carries the version.
fn debian_deb(version: Option<&str>) -> PathBuf {
    let version = match version {
        Some(v) => v.to_string(),
        None => {
            let policy = check("apt-cache policy", &run("apt-cache", &["policy", DEBIAN], &[]));
            let candidate = policy.lines().find_map(|l| l.trim().strip_prefix("Candidate: ")).map(str::to_string);
            candidate.filter(|c| c != "(none)").unwrap_or_else(|| panic!("no candidate version of {DEBIAN}:\n{policy}"))
        }
    };
    let dir = cache_dir("debian-packages").join(version.replace(':', "%3a"));
    let find = || std::fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "deb"));
    if let Some(deb) = find() {
        return deb;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!("{DEBIAN}={version}");
    let download = || Command::new("apt-get").args(["download", "-q", &spec]).current_dir(&dir).output().unwrap();
    let mut out = download();
    if !out.status.success() {
        // A machine whose package lists were never fetched.
        let _ = run("apt-get", &["update", "-qq"], &[]);
        out = download();
    }
    assert!(out.status.success(), "apt-get download {spec} failed: {}", text(&out));
    find().expect("the downloaded package")
}

/// Finishes an interrupted run (its record is left in [`STATE`]); refuses to run over a
/// mod-wsgi-rs package that no run of this test installed, except in CI, where it is taken
/// as the leftover of an older run and swapped back for Debian's.
fn recover() {
    if let Some(record) = Record::load() {
        eprintln!("recovering from an interrupted run ({STATE}/record)");
        let errors = record.restore();
        assert!(errors.is_empty(), "could not recover from an interrupted run:\n{}", errors.join("\n"));
    }
    let _ = stop_instance();
    if let Some(state) = package(OURS) {
        assert!(
            std::env::var_os("CI").is_some(),
            "{OURS} is {state:?} on this machine and no run of this test recorded installing it: \
             `apt install {DEBIAN}` (then `dpkg --purge {OURS}`) before running the test"
        );
        eprintln!("{OURS} is {state:?}: putting Debian's mod_wsgi back");
        check("dpkg --purge", &dpkg(&["--purge", OURS]));
        let out = run(
            "apt-get",
            &["install", "-y", "-q", "-o", "DPkg::Lock::Timeout=120", "-o", "Dpkg::Options::=--force-confmiss", DEBIAN],
            &NONINTERACTIVE,
        );
        check("apt-get install libapache2-mod-wsgi-py3", &out);
    }
    for dir in [CONFDIR, RUN_DIR, LOG_DIR, LOCK_DIR, STATE] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The app reports the engine file its process mapped and its group.
const APP: &str = r#"
def application(environ, start_response):
    with open('/proc/self/maps') as maps:
        engines = sorted(set(line.split()[-1] for line in maps if 'mod_wsgi-engine-py' in line))
    body = 'engine=%s group=%r' % (','.join(engines), environ['mod_wsgi.application_group'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
"#;

fn enabled_by_maint() -> bool {
    Path::new("/var/lib/apache2/module/enabled_by_maint/wsgi").exists()
}

/// `mods-enabled/NAME` links to `../mods-available/NAME`.
fn enabled(name: &str) -> bool {
    std::fs::read_link(format!("/etc/apache2/mods-enabled/{name}")).is_ok_and(|t| t == Path::new(&format!("../mods-available/{name}")))
}

#[test]
fn the_deb_replaces_debians_mod_wsgi_and_serves_its_configuration() {
    if !may_run() {
        return;
    }
    recover();
    let debian_before = package(DEBIAN);
    assert!(
        debian_before.as_ref().map_or(true, |(word, _)| word == "installed" || word == "config-files"),
        "{DEBIAN} is {debian_before:?}: fix its state first (apt-get install -f)"
    );
    let record =
        Record { debian_deb: debian_deb(debian_before.as_ref().map(|(_, v)| v.as_str())), debian: debian_before.clone(), manifest: manifest() };
    std::fs::create_dir_all(STATE).unwrap();
    record.save();
    let _restore = Restore(record);
    let debian_deb = Record::load().unwrap().debian_deb;

    let out = run(repo().join("scripts/deb").to_str().unwrap(), &[], &[]);
    let built = check("scripts/deb", &out);
    let deb = repo().join(built.lines().last().unwrap_or("").trim());
    assert!(deb.is_file(), "scripts/deb printed {built}");

    // The package's metadata.
    let py = check("python3", &run("/usr/bin/python3", &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"], &[])).trim().to_string();
    let (major, minor) = py.split_once('.').unwrap();
    let next = format!("{major}.{}", minor.parse::<u32>().unwrap() + 1);
    let field = |name: &str| check("dpkg-deb -f", &run("dpkg-deb", &["-f", deb.to_str().unwrap(), name], &[])).trim().to_string();
    let api = check("dpkg-query", &run("dpkg-query", &["-W", "-f=${Provides}", "apache2-bin"], &[]));
    let api = api.split(',').map(str::trim).find(|p| p.starts_with("apache2-api-")).expect("apache2-bin provides its module API").to_string();
    let depends = field("Depends");
    for want in
        [api, format!("python3 (>= {py})"), format!("python3 (<< {next})"), format!("libpython{py} (>= "), "libc6 (>= ".into(), "libgcc-s1".into()]
    {
        assert!(depends.contains(&want), "Depends lacks {want}: {depends}");
    }
    for name in ["Conflicts", "Replaces", "Provides"] {
        assert!(field(name).split(',').any(|p| p.trim() == DEBIAN), "{name}: {}", field(name));
    }
    assert!(field("Provides").split(',').any(|p| p.trim() == "httpd-wsgi3"), "Provides: {}", field("Provides"));
    let contents = check("dpkg-deb -c", &run("dpkg-deb", &["-c", deb.to_str().unwrap()], &[]));
    for line in contents.lines().filter(|l| l.starts_with('d')) {
        assert!(line.starts_with("drwxr-xr-x root/root"), "{line}");
    }
    let md5sums = check("dpkg-deb -I md5sums", &run("dpkg-deb", &["-I", deb.to_str().unwrap(), "md5sums"], &[]));
    for file in ["usr/lib/apache2/modules/mod_wsgi.so", "usr/share/doc/mod-wsgi-rs/copyright", "usr/share/doc/mod-wsgi-rs/changelog.Debian.gz"] {
        assert!(md5sums.contains(file) && contents.contains(&format!("./{file}")), "{file} is not in the package (md5sums:\n{md5sums})");
    }

    // `apt install ./deb`: Debian's package goes (Conflicts + Replaces), ours is enabled.
    let start = SystemTime::now() - Duration::from_secs(1);
    check("apt-get install ./deb", &apt_install(&deb));
    assert_eq!(package(OURS).map(|(w, _)| w).as_deref(), Some("installed"));
    let debian_now = package(DEBIAN).map(|(w, _)| w);
    assert!(debian_now.is_none() || debian_now.as_deref() == Some("config-files"), "{DEBIAN} is {debian_now:?}");
    assert_eq!(owner(MODULE), OURS);
    let conffiles = check("dpkg-query", &run("dpkg-query", &["-W", "-f=${Conffiles}", OURS], &[]));
    for file in ["/etc/apache2/mods-available/wsgi.load", "/etc/apache2/mods-available/wsgi.conf"] {
        assert!(conffiles.lines().any(|l| l.split_whitespace().next() == Some(file)), "{file} is not a conffile: {conffiles}");
    }
    let engine = format!("/usr/lib/apache2/modules/mod_wsgi-engine-py{py}.so");
    let listed = check("dpkg -L", &run("dpkg", &["-L", OURS], &[]));
    assert!(listed.lines().any(|l| l == engine) && Path::new(&engine).is_file(), "{engine} is not installed by {OURS}:\n{listed}");
    assert!(enabled("wsgi.load") && enabled("wsgi.conf") && enabled_by_maint(), "postinst did not enable the module");
    let link = std::fs::symlink_metadata("/etc/apache2/mods-enabled/wsgi.load").unwrap().modified().unwrap();
    assert!(link >= start, "mods-enabled/wsgi.load is older than the install: nothing enabled the module");

    serve_from_a_second_instance(&py, &engine);

    // Removed, it is disabled and keeps its conffiles; reinstalled, it is enabled again.
    check("dpkg -r", &dpkg(&["-r", OURS]));
    assert_eq!(package(OURS).map(|(w, _)| w).as_deref(), Some("config-files"));
    assert!(!Path::new(MODULE).exists() && !Path::new(&engine).exists(), "the module is left after dpkg -r");
    assert!(!Path::new("/etc/apache2/mods-enabled/wsgi.load").exists(), "the module is still enabled after dpkg -r");
    assert!(Path::new("/var/lib/apache2/module/disabled_by_maint/wsgi").exists(), "prerm did not leave disabled_by_maint");
    for file in ["wsgi.load", "wsgi.conf"] {
        assert!(Path::new(&format!("/etc/apache2/mods-available/{file}")).is_file(), "{file} went with dpkg -r");
    }
    check("apt-get install ./deb (again)", &apt_install(&deb));
    assert!(enabled("wsgi.load") && enabled("wsgi.conf") && enabled_by_maint(), "the reinstall did not enable the module");

    // Purged, it leaves none of its files, links or markers, and no dpkg record.
    let listed = check("dpkg -L", &run("dpkg", &["-L", OURS], &[]));
    let files: Vec<&str> = listed.lines().filter(|l| Path::new(l).is_file()).collect();
    assert!(files.len() >= 5, "{listed}");
    check("dpkg --purge", &dpkg(&["--purge", OURS]));
    for file in &files {
        assert!(!Path::new(file).exists(), "{file} is left after purge");
    }
    assert!(wsgi_files().iter().all(|f| f.starts_with("/etc/apache2/mods-available")), "left after purge: {:?}", wsgi_files());
    assert_eq!(package(OURS), None);

    // The README's swap back: ours installed, then Debian's (the version this machine had, or
    // the candidate): ours is left in "rc", Debian's module is enabled, and purging our
    // leftover leaves it enabled.
    check("apt-get install ./deb (before the swap back)", &apt_install(&deb));
    check("apt-get install libapache2-mod-wsgi-py3", &apt_install(&debian_deb));
    assert!(installed(DEBIAN).is_some(), "{DEBIAN} is {:?}", package(DEBIAN));
    assert_eq!(package(OURS).map(|(w, _)| w).as_deref(), Some("config-files"));
    assert_eq!(owner(MODULE), DEBIAN);
    let load = std::fs::read_to_string("/etc/apache2/mods-available/wsgi.load").unwrap_or_default();
    assert!(load.contains("LoadModule wsgi_module") && !load.contains("mod_wsgi-rs"), "wsgi.load is not Debian's:\n{load}");
    assert!(Path::new("/etc/apache2/mods-available/wsgi.conf").is_file(), "Debian's wsgi.conf is missing");
    assert!(enabled("wsgi.load") && enabled("wsgi.conf"), "Debian's module is not enabled after the swap back");
    check("dpkg --purge (our leftover)", &dpkg(&["--purge", OURS]));
    assert!(enabled("wsgi.load") && enabled("wsgi.conf"), "purging mod-wsgi-rs's leftover disabled Debian's module");
    assert!(Path::new("/etc/apache2/mods-available/wsgi.load").is_file(), "purging mod-wsgi-rs's leftover removed Debian's wsgi.load");
}

/// Debian's Apache with a copy of /etc/apache2 (on 127.0.0.1 only), a site configured as for
/// mod_wsgi, a2dismod/a2enmod on the copy (its own state directory), `apache2ctl` start and
/// stop; the request runs in `py`'s packaged engine, and the log has no crash once the
/// instance has exited.
fn serve_from_a_second_instance(py: &str, engine: &str) {
    let _ = std::fs::remove_dir_all(CONFDIR);
    check("cp", &run("cp", &["-a", "/etc/apache2", CONFDIR], &[]));
    std::fs::create_dir_all(LOG_DIR).unwrap();
    let port = free_port();
    std::fs::write(format!("{CONFDIR}/ports.conf"), format!("Listen 127.0.0.1:{port}\n")).unwrap();
    for entry in std::fs::read_dir(format!("{CONFDIR}/sites-enabled")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    // Outside /tmp: an Apache started through systemd has a private /tmp.
    let site = Path::new(STATE).join("site");
    std::fs::create_dir_all(&site).unwrap();
    let script = site.join("app.wsgi");
    std::fs::write(&script, APP).unwrap();
    check("chmod", &run("chmod", &["-R", "a+rX", STATE], &[]));
    std::fs::write(
        format!("{CONFDIR}/sites-enabled/site.conf"),
        format!(
            "<VirtualHost 127.0.0.1:{port}>\n  ServerName localhost\n  WSGIScriptAlias / {script}\n  WSGIApplicationGroup site\n  <Directory {dir}>\n    Require all granted\n  </Directory>\n</VirtualHost>\n",
            script = script.display(),
            dir = site.display()
        ),
    )
    .unwrap();
    let state = format!("{STATE}/apache2-state");
    // APACHE_STATE_DIRECTORY: a2enmod's markers for the copy, not the system's; and
    // APACHE_STARTED_BY_SYSTEMD: apache2ctl starts apache2 itself rather than an apache2@ unit.
    let env = [("APACHE_CONFDIR", CONFDIR), ("APACHE_STATE_DIRECTORY", state.as_str()), ("APACHE_STARTED_BY_SYSTEMD", "true")];
    let markers = manifest();
    check("a2dismod", &run("a2dismod", &["-q", "wsgi"], &env));
    assert!(!Path::new(&format!("{CONFDIR}/mods-enabled/wsgi.load")).exists());
    check("a2enmod", &run("a2enmod", &["-q", "wsgi"], &env));
    assert!(Path::new(&format!("{CONFDIR}/mods-enabled/wsgi.load")).exists());
    assert_eq!(manifest(), markers, "a2enmod on the copy changed the system's wsgi state");
    check("apache2ctl configtest", &run("apache2ctl", &["configtest"], &env));
    check("apache2ctl start", &run("apache2ctl", &["start"], &env));
    let error_log = || std::fs::read_to_string(format!("{LOG_DIR}/error.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    let response = loop {
        match try_http(port, "GET", "/", &[], b"") {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => panic!("Debian's Apache did not answer: {e}\n{}", error_log()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!((response.status, response.text()), (200, format!("engine={engine} group='site'")), "Python {py}\n{}", error_log());
    let pid = instance_pid().unwrap_or_else(|| panic!("no apache2 in {RUN_DIR}/apache2.pid"));
    check("apache2ctl stop", &run("apache2ctl", &["stop"], &env));
    // `-k stop` only signals: the children (and Python's finalisation in them) end later.
    assert!(wait_gone(pid, Duration::from_secs(30)), "the test's Apache (pid {pid}) did not stop\n{}", error_log());
    let log = error_log();
    assert!(crash_lines(&log).is_empty(), "{log}");
}
