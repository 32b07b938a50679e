//! Access control from Python (issue 13): `AuthBasicProvider wsgi` with a `WSGIAuthUserScript`
//! that checks users in a Django project's database (Django's own
//! `django.contrib.auth.handlers.modwsgi`), `Require wsgi-group` with `groups_for_user`,
//! `WSGIAccessScript` refusing by address, `AuthDigestProvider wsgi` with `get_realm_hash`,
//! a user name returned by `check_password` becoming `REMOTE_USER`, mod_wsgi's
//! return-value rules, and a 500 with the traceback when a script raises. The same requests
//! go to Debian's mod_wsgi 4.9 in the same run, and must get the same answers (except where
//! the README lists a deliberate difference). Scripts named in a customer's `.htaccess` run
//! only under `Options ExecCGI`, in an interpreter of their own.

mod common;
use common::*;
use std::process::Command;

const SETTINGS: &str = r#"
SECRET_KEY = 'auth-test'
INSTALLED_APPS = ['django.contrib.auth', 'django.contrib.contenttypes']
DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': '{dir}/db.sqlite3'}}
PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']
USE_TZ = True
"#;

/// Makes the database: alice (password "secret", group staff), bob ("hunter2", no group),
/// carol (inactive).
const MAKE_USERS: &str = r#"
import os, sys
sys.path.insert(0, sys.argv[1])
os.environ['DJANGO_SETTINGS_MODULE'] = 'authsite.settings'
import django
django.setup()
from django.core.management import call_command
call_command('migrate', verbosity=0)
from django.contrib.auth.models import User, Group
staff = Group.objects.create(name='staff')
User.objects.create_user('alice', password='secret').groups.add(staff)
User.objects.create_user('bob', password='hunter2')
User.objects.create_user('carol', password='secret', is_active=False)
"#;

/// The auth script a Django site uses: Django's own mod_wsgi handlers.
const DJANGO_AUTH: &str = r#"
import os, sys
sys.path.insert(0, '{dir}/site')
os.environ['DJANGO_SETTINGS_MODULE'] = 'authsite.settings'
import django
django.setup()
from django.contrib.auth.handlers.modwsgi import check_password, groups_for_user
"#;

/// Return values beyond True/False/None, and failures.
const RULES: &str = r#"
def check_password(environ, user, password):
    if user == 'raise':
        raise RuntimeError('check_password failed on purpose')
    if user == 'number':
        return 42
    if user == 'renamed':
        return 'canonical-' + password
    if user == 'probe':
        # The user being checked is not yet authenticated: no REMOTE_USER, no credentials.
        return 'seen-%s-%s' % (environ.get('REMOTE_USER'), environ.get('HTTP_AUTHORIZATION'))
    return None

def get_realm_hash(environ, user, realm):
    import hashlib
    if user != 'dora':
        return None
    return hashlib.md5(('%s:%s:%s' % (user, realm, 'digest-pw')).encode()).hexdigest()
"#;

const ACCESS: &str = r#"
def allow_access(environ, host):
    first = environ['REQUEST_URI'].split('/')[1]
    if first == 'refused':
        return host != '127.0.0.1'
    if first == 'neutral':
        return None
    if first == 'broken':
        raise RuntimeError('allow_access failed on purpose')
    if first == 'wrongtype':
        return 'yes'
    return host == '127.0.0.1'
"#;

const WHOAMI: &str = r#"
def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('user=%s auth=%s' % (environ.get('REMOTE_USER'), environ.get('HTTP_AUTHORIZATION'))).encode()]
"#;

/// Base64 for Basic credentials.
fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            out.push(if i <= chunk.len() { TABLE[(n >> (18 - 6 * i)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// A server directory with the Django project, its database and the scripts.
fn site(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    let d = dir.path().display().to_string();
    dir.write("site/authsite/__init__.py", "");
    dir.write("site/authsite/settings.py", &SETTINGS.replace("{dir}", &d));
    let maker = dir.write("make_users.py", MAKE_USERS);
    let out = Command::new("/usr/bin/python3").arg(&maker).arg(dir.path().join("site")).output().unwrap();
    assert!(out.status.success(), "making the Django database failed:\n{}", String::from_utf8_lossy(&out.stderr));
    // Apache's user reads it (no writes: a read leaves no journal behind).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path().join("db.sqlite3"), std::fs::Permissions::from_mode(0o666)).unwrap();
    dir.write("django_auth.wsgi", &DJANGO_AUTH.replace("{dir}", &d));
    dir.write("rules.wsgi", RULES);
    dir.write("access.wsgi", ACCESS);
    dir.write("whoami.wsgi", WHOAMI);
    for area in ["private", "staff", "refused", "allowed", "neutral", "broken", "wrongtype", "digest"] {
        dir.write(&format!("static/{area}/index.txt"), &format!("the {area} page\n"));
    }
    dir
}

const AUTH_MODULES: &str = "\
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule auth_digest_module /usr/lib/apache2/modules/mod_auth_digest.so
";

/// The protected areas: the same directives for both modules.
fn config() -> String {
    let mut conf = String::from(AUTH_MODULES);
    // What other handlers and the logs see of the request's variables: never the credentials,
    // even where WSGIPassAuthorization is On.
    conf.push_str("CustomLog {dir}/access.log \"%U %{HTTP_AUTHORIZATION}e\"\n");
    conf.push_str("Alias /private {dir}/static/private\nAlias /staff {dir}/static/staff\nAlias /digest {dir}/static/digest\n");
    for area in ["refused", "allowed", "neutral", "broken", "wrongtype"] {
        conf.push_str(&format!(
            "Alias /{area} {{dir}}/static/{area}\n<Directory {{dir}}/static/{area}>\n  WSGIAccessScript {{dir}}/access.wsgi\n</Directory>\n"
        ));
    }
    conf.push_str(
        "<Directory {dir}/static/private>
  AuthType Basic
  AuthName site
  AuthBasicProvider wsgi
  WSGIAuthUserScript {dir}/django_auth.wsgi application-group=django
  WSGIPassAuthorization On
  Require valid-user
</Directory>
<Directory {dir}/static/staff>
  AuthType Basic
  AuthName site
  AuthBasicProvider wsgi
  WSGIAuthUserScript {dir}/django_auth.wsgi application-group=django
  WSGIAuthGroupScript {dir}/django_auth.wsgi application-group=django
  Require wsgi-group staff admins
</Directory>
<Directory {dir}/static/digest>
  AuthType Digest
  AuthName realm1
  AuthDigestProvider wsgi
  WSGIAuthUserScript {dir}/rules.wsgi
  Require valid-user
</Directory>
WSGIScriptAlias /whoami {dir}/whoami.wsgi
<Location /whoami>
  AuthType Basic
  AuthName site
  AuthBasicProvider wsgi
  WSGIAuthUserScript {dir}/rules.wsgi
  Require valid-user
</Location>
",
    );
    conf
}

/// What is asked of both modules: a path, and the user and password sent (if any).
type Case = (&'static str, Option<(&'static str, &'static str)>);

fn ask(apache: &Apache, (path, credentials): Case) -> String {
    let auth = credentials.map(|(user, password)| basic(user, password));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = apache.request("GET", path, &headers, b"");
    let body = if r.status == 200 { r.text() } else { String::new() };
    format!("{path} {}: {} {}", credentials.map_or("-", |(user, _)| user), r.status, body.trim())
}

/// Digest needs a client that answers the challenge: curl.
fn digest(apache: &Apache, user: &str, password: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--digest", "-u", &format!("{user}:{password}")])
        .arg(format!("http://127.0.0.1:{}/digest/index.txt", apache.port))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn django_users_groups_and_addresses_guard_static_files_as_in_debians_mod_wsgi() {
    let ours = Apache::start_in(site("auth-ours"), Mpm::Event, &config());
    let theirs = Apache::start_with_module(site("auth-debian"), Mpm::Event, debian_mod_wsgi(), &config());
    let cases: [(Case, &str); 17] = [
        (("/private/index.txt", None), "401 "),
        (("/private/index.txt", Some(("alice", "secret"))), "200 the private page"),
        (("/private/index.txt", Some(("alice", "wrong"))), "401 "),
        (("/private/index.txt", Some(("bob", "hunter2"))), "200 the private page"),
        (("/private/index.txt", Some(("carol", "secret"))), "401 "),
        (("/private/index.txt", Some(("nobody", "x"))), "401 "),
        (("/staff/index.txt", Some(("alice", "secret"))), "200 the staff page"),
        (("/staff/index.txt", Some(("bob", "hunter2"))), "401 "),
        (("/staff/index.txt", None), "401 "),
        (("/refused/index.txt", None), "403 "),
        (("/allowed/index.txt", None), "200 the allowed page"),
        (("/neutral/index.txt", None), "200 the neutral page"),
        (("/whoami", Some(("renamed", "joe"))), "200 user=canonical-joe auth=None"),
        (("/whoami", Some(("raise", "x"))), "500 "),
        (("/whoami", Some(("number", "x"))), "500 "),
        (("/whoami", Some(("stranger", "x"))), "401 "),
        (("/whoami", Some(("probe", "x"))), "200 user=seen-None-None auth=None"),
    ];
    for (case, answer) in cases {
        let want = format!("{} {}: {answer}", case.0, case.1.map_or("-", |(user, _)| user));
        assert_eq!(ask(&ours, case), want, "ours\n{}", ours.error_log());
        assert_eq!(ask(&theirs, case), want, "Debian's mod_wsgi\n{}", theirs.error_log());
    }
    for (user, password, want) in [("dora", "digest-pw", "200"), ("dora", "wrong", "401"), ("eve", "digest-pw", "401")] {
        assert_eq!(digest(&ours, user, password), want, "ours, digest {user}\n{}", ours.error_log());
        assert_eq!(digest(&theirs, user, password), want, "Debian's, digest {user}\n{}", theirs.error_log());
    }
    // A failing access script: ours answers 500 with the traceback (README: deliberate
    // difference; mod_wsgi answers 403); a wrong type is refused by both.
    assert_eq!(ours.get("/broken/index.txt").status, 500);
    assert_eq!(theirs.get("/broken/index.txt").status, 403);
    assert_eq!(ours.get("/wrongtype/index.txt").status, 500);
    assert_eq!(theirs.get("/wrongtype/index.txt").status, 403);
    let log = ours.error_log();
    for needle in [
        "RuntimeError: check_password failed on purpose",
        "RuntimeError: allow_access failed on purpose",
        "Basic auth provider must return True, False, None or user name as string",
        "Result returned from 'allow_access'",
        "must be a boolean or None",
        "Client denied by server configuration",
    ] {
        assert!(log.contains(needle), "missing {needle:?}:\n{log}");
    }
    for apache in [&ours, &theirs] {
        let log = std::fs::read_to_string(apache.dir.path().join("access.log")).unwrap_or_default();
        assert!(log.lines().count() >= 17 && log.lines().all(|l| l.ends_with(" -")), "credentials in the request's variables:\n{log}");
    }
    // It still serves afterwards, and nothing crashed.
    assert_eq!(ask(&ours, ("/private/index.txt", Some(("alice", "secret")))), "/private/index.txt alice: 200 the private page");
    assert!(crash_lines(&log).is_empty(), "{log}");
}

/// Threaded MPMs: many threads authenticate at once against the Django database (one
/// interpreter, its GIL, our thread states), and every answer is right.
#[test]
fn concurrent_logins_on_event_and_worker() {
    for mpm in [Mpm::Event, Mpm::Worker] {
        let apache = Apache::start_in(site(&format!("auth-load-{}", mpm.name())), mpm, &config());
        let failures: Vec<String> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|client| {
                    let apache = &apache;
                    scope.spawn(move || {
                        let mut failures = Vec::new();
                        for i in 0..25 {
                            let (path, user, password, want) = match (client + i) % 4 {
                                0 => ("/private/index.txt", "alice", "secret", 200),
                                1 => ("/private/index.txt", "alice", "nope", 401),
                                2 => ("/staff/index.txt", "bob", "hunter2", 401),
                                _ => ("/staff/index.txt", "alice", "secret", 200),
                            };
                            let auth = basic(user, password);
                            match try_http(apache.port, "GET", path, &[("Authorization", auth.as_str())], b"") {
                                Ok(r) if r.status == want => {}
                                Ok(r) => failures.push(format!("{path} {user}: {} (wanted {want})", r.status)),
                                Err(e) => failures.push(format!("{path} {user}: {e}")),
                            }
                        }
                        failures
                    })
                })
                .collect();
            threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
        });
        let log = apache.error_log();
        assert!(failures.is_empty(), "{}: {failures:?}\n{log}", mpm.name());
        assert!(crash_lines(&log).is_empty(), "{}: {log}", mpm.name());
    }
}

const NAMES_GROUP: &str = r#"
def check_password(environ, user, password):
    return environ['mod_wsgi.application_group'] + '!' + str(environ.get('HTTP_AUTHORIZATION'))
"#;

/// A customer's `.htaccess` may name an auth script (AllowOverride AuthConfig, as in
/// mod_wsgi), but it runs only where the administrator allows scripts (Options ExecCGI) and in
/// an interpreter of its own; `application-group=` there is refused.
#[test]
fn htaccess_auth_scripts_need_execcgi_and_get_their_own_interpreter() {
    let dir = TempDir::new("auth-htaccess");
    let htaccess = "AuthType Basic\nAuthName customer\nAuthBasicProvider wsgi\nWSGIAuthUserScript {dir}/{area}/names.py\nRequire valid-user\n";
    let d = dir.path().display().to_string();
    for area in ["noexec", "exec", "grouped"] {
        dir.write(&format!("{area}/names.py"), NAMES_GROUP);
        dir.write(&format!("{area}/whoami.wsgi"), WHOAMI);
        let mut text = htaccess.replace("{dir}", &d).replace("{area}", area);
        if area == "grouped" {
            text = text.replace("names.py", "names.py application-group=%{GLOBAL}");
        }
        dir.write(&format!("{area}/.htaccess"), &text);
    }
    let mut conf = String::from(AUTH_MODULES);
    for (area, options) in [("noexec", "None"), ("exec", "ExecCGI"), ("grouped", "ExecCGI")] {
        conf.push_str(&format!(
            "Alias /{area} {{dir}}/{area}\n<Directory {{dir}}/{area}>\n  AllowOverride AuthConfig\n  Options {options}\n  <Files whoami.wsgi>\n    SetHandler wsgi-script\n  </Files>\n</Directory>\n"
        ));
    }
    let apache = Apache::start_in(dir, Mpm::Event, &conf);
    let auth = basic("joe", "pw");
    let get = |path: &str| apache.request("GET", path, &[("Authorization", auth.as_str())], b"");
    let r = get("/exec/whoami.wsgi");
    let log = apache.error_log();
    assert_eq!(r.status, 200, "{log}");
    // Its own interpreter, named after the script; never the credentials in its environ.
    let want = format!("user=localhost:{}|.htaccess:{d}/exec/names.py!None auth=None", apache.port);
    assert_eq!(r.text(), want, "{log}");
    assert_eq!(get("/noexec/whoami.wsgi").status, 500);
    assert_eq!(get("/grouped/whoami.wsgi").status, 500);
    let log = apache.error_log();
    assert!(log.contains("Options ExecCGI is off in this directory"), "{log}");
    assert!(log.contains("application-group= is not allowed in .htaccess"), "{log}");
    assert!(crash_lines(&log).is_empty(), "{log}");
}

/// Contexts and syntax, with mod_wsgi's messages: never at the server level (OR_AUTHCFG).
#[test]
fn bad_definitions_stop_the_configuration() {
    let cases = [
        ("WSGIAuthUserScript /x.wsgi\n", "not allowed here"),
        ("<Directory />\nWSGIAccessScript\n</Directory>\n", "Location of access script not supplied."),
        ("<Directory />\nWSGIAuthGroupScript /x application-group=\n</Directory>\n", "Invalid name for WSGI application group."),
        ("<Directory />\nWSGIAuthUserScript /x daemon=1\n</Directory>\n", "Invalid option to WSGI auth user script definition."),
        ("<Directory />\nWSGIGroupAuthoritative maybe\n</Directory>\n", "WSGIGroupAuthoritative must be one of: Off | On"),
    ];
    for (body, message) in cases {
        let (ok, out) = config_test(body);
        assert!(!ok && out.contains(message), "{body}: {out}");
    }
    let (ok, out) = config_test("<Location /x>\nWSGIGroupAuthoritative Off\nWSGIAccessScript /a.wsgi application-group=%{SERVER}\n</Location>\n");
    assert!(ok, "{out}");
}

/// The usual shared-host shape: applications in a daemon under WSGIRestrictEmbedded On; the
/// auth script runs in Apache's child all the same (Python starts there for it, as in
/// mod_wsgi), and the application in the daemon sees the user it named.
#[test]
fn auth_scripts_run_in_apaches_children_when_applications_run_in_daemons() {
    if !is_root() {
        eprintln!("skipped: daemon processes need root");
        return;
    }
    let dir = site("auth-daemon");
    dir.write("run/.keep", "");
    let conf = format!(
        "{AUTH_MODULES}WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\nWSGIDaemonProcess site user=nobody threads=2\n\
         WSGIScriptAlias /whoami {{dir}}/whoami.wsgi process-group=site\n\
         <Location /whoami>\n  AuthType Basic\n  AuthName site\n  AuthBasicProvider wsgi\n  WSGIAuthUserScript {{dir}}/rules.wsgi\n  Require valid-user\n</Location>\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &conf);
    assert_eq!(ask(&apache, ("/whoami", Some(("renamed", "joe")))), "/whoami renamed: 200 user=canonical-joe auth=None", "{}", apache.error_log());
    assert_eq!(ask(&apache, ("/whoami", Some(("stranger", "x")))), "/whoami stranger: 401 ");
    assert!(crash_lines(&apache.error_log()).is_empty(), "{}", apache.error_log());
}
