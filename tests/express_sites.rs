//! What a `mod_wsgi-express` server serves: `--document-root` beside the application, the
//! application types (`module`, `static` with and without `--add-handler`, `paste` and the
//! PasteDeploy check that runs nothing of the project's), HTTPS with `--https-port`,
//! `--host-access-script`, and `.ht*` files denied.

mod common;
use common::express::*;
use common::*;
use std::process::{Command, Stdio};

/// `--document-root`: its files are served by Apache, and every other URL under the mount
/// point goes to the application, with SCRIPT_NAME and PATH_INFO as if it were mounted there
/// alone (the original's rewrite fallback to its handler).
#[test]
fn document_root_serves_files_next_to_the_application() {
    let dir = TempDir::new("express-docroot");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("www/hello.txt", "static hello\n");
    dir.write("www/app/logo.txt", "a file under the mount point\n");
    let express = Express::start_in(dir, &["app.wsgi", "--document-root", "www", "--mount-point", "/app"]);
    let log = express.error_log();
    let r = express.get("/hello.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "static hello\n"), "{log}");
    assert_eq!(r.header("Content-Type"), Some("text/plain"), "served by Apache with its MIME type");
    let r = express.get("/app/logo.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "a file under the mount point\n"), "{}", express.error_log());
    let r = express.get("/app/users/7?x=1");
    assert_eq!(r.status, 200, "{}", express.error_log());
    assert!(r.text().starts_with("/app|/users/7|http|"), "{}\n{}", r.text(), express.error_log());
    // The mount point is a directory of the document root: Apache adds its slash first, as
    // for the original.
    let r = express.get("/app");
    assert_eq!((r.status, r.header("Location")), (301, Some(format!("http://localhost:{}/app/", express.port).as_str())));
    let r = express.get("/app/");
    assert!(r.status == 200 && r.text().starts_with("/app|/|http|"), "{} {}\n{}", r.status, r.text(), express.error_log());
    // Outside the mount point, what is not a file is Apache's 404.
    assert_eq!(express.get("/elsewhere").status, 404, "{}", express.error_log());
}

/// `--application-type module`: a dotted name imported from the working directory, its
/// `--callable-object` served at the mount point.
#[test]
fn application_type_module_imports_a_dotted_name() {
    let dir = TempDir::new("express-module");
    dir.write("shop/__init__.py", "");
    dir.write(
        "shop/wsgi.py",
        "def app(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [('module %s %s|%s' % (__name__, e['SCRIPT_NAME'], e['PATH_INFO'])).encode()]\n",
    );
    let express = Express::start_in(dir, &["--application-type", "module", "--callable-object", "app", "--mount-point", "/shop", "shop.wsgi"]);
    let r = express.get("/shop/cart");
    assert_eq!((r.status, r.text().as_str()), (200, "module shop.wsgi /shop|/cart"), "{}", express.error_log());
    let handler = std::fs::read_to_string(express.root.join("handler.wsgi")).unwrap();
    assert!(handler.contains("ENTRY_POINT = u'shop.wsgi'"), "{handler}");
}

/// `--application-type static`: only the directory's files (its index for `/`), no Python
/// process at all.
#[test]
fn application_type_static_serves_only_files() {
    let dir = TempDir::new("express-static");
    dir.write("site/index.html", "<p>index</p>\n");
    dir.write("site/docs/a.txt", "doc a\n");
    let express = Express::start_in(dir, &["--application-type", "static", "site", "--directory-listing"]);
    let r = express.get("/");
    assert_eq!((r.status, r.text().as_str()), (200, "<p>index</p>\n"), "{}", express.error_log());
    let r = express.get("/docs/a.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "doc a\n"), "{}", express.error_log());
    let r = express.get("/docs/");
    assert!(r.status == 200 && r.text().contains("a.txt"), "a listing: {} {}\n{}", r.status, r.text(), express.error_log());
    assert_eq!(express.get("/nothing").status, 404);
    let children = express.children();
    assert!(!children.iter().any(|(_, c)| c.starts_with("(wsgi:")), "no daemon for a static site: {children:?}");
}

/// `--application-type static` with `--add-handler`: files ending in the extension are run by
/// the handler script (in a daemon process, as the original), never served as source.
#[test]
fn a_static_sites_add_handler_runs_the_script() {
    let dir = TempDir::new("express-static-handler");
    dir.write("site/index.html", "<p>index</p>\n");
    dir.write("site/hello.page", "the page's own text\n");
    let source = "import os\ndef handle_request(e, s):\n    s('200 OK', [('Content-Type', 'text/plain')])\n    return [('handled %s %d' % (os.path.basename(e['SCRIPT_FILENAME']), os.getpid())).encode()]\n";
    dir.write("page.py", source);
    let express = Express::start_in(dir, &["--application-type", "static", "--add-handler", ".page", "page.py", "site"]);
    let r = express.get("/hello.page");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), express.error_log());
    assert!(r.text().starts_with("handled hello.page "), "the script's source or the file was served: {}\n{}", r.text(), express.error_log());
    let pid: i32 = r.text().rsplit(' ').next().unwrap().parse().unwrap();
    let daemon = express.children().into_iter().find(|(p, _)| *p == pid).map(|(_, c)| c).unwrap_or_default();
    assert!(daemon.starts_with("(wsgi:"), "served by {pid} {daemon:?}, not a daemon: {:?}", express.children());
    let r = express.get("/");
    assert_eq!((r.status, r.text().as_str()), (200, "<p>index</p>\n"), "{}", express.error_log());
}

/// `--https-port` with a self-signed certificate: HTTPS is served by the same application,
/// by one daemon process (the virtual host for HTTPS must not start the group again), and
/// `--https-only` redirects HTTP there with the `--hsts-policy` header on HTTPS.
#[test]
fn https_port_serves_the_application_over_tls() {
    let dir = TempDir::new("express-https");
    dir.write("app.wsgi", WHERE_AM_I);
    let made = Command::new("/usr/bin/openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-keyout", "site.key", "-out", "site.crt"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let (port, https) = two_free_ports();
    let https_text = https.to_string();
    let args = ["app.wsgi", "--https-port", &https_text, "--ssl-certificate", "site", "--https-only", "--hsts-policy", "max-age=600"];
    let express = Express::start_on(dir, port, &args);
    let (status, headers, body) = curl(&["-k", "-i", &format!("https://127.0.0.1:{https}/secure/path")]);
    assert_eq!(status, 200, "{headers}{body}\n{}", express.error_log());
    assert!(body.starts_with("|/secure/path|https|"), "{body}\n{}", express.error_log());
    assert!(headers.to_ascii_lowercase().contains("strict-transport-security: max-age=600"), "{headers}");
    let r = express.get("/plain?q=1");
    assert_eq!(r.status, 302, "{}", express.error_log());
    assert_eq!(r.header("Location"), Some(format!("https://localhost:{https}/plain?q=1").as_str()));
    let daemons = express.children().into_iter().filter(|(_, c)| c.starts_with("(wsgi:")).count();
    assert_eq!(daemons, 1, "one daemon process: {:?}\n{}", express.children(), express.error_log());
}

/// `--host-access-script`: the script's `allow_access` refuses a client with 403, for the
/// application and the document root's files alike.
#[test]
fn host_access_script_refuses_clients() {
    let dir = TempDir::new("express-access");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("www/file.txt", "a file\n");
    dir.write("access.py", "def allow_access(environ, host):\n    return environ.get('HTTP_X_LET_ME_IN') == 'yes'\n");
    let express = Express::start_in(dir, &["app.wsgi", "--host-access-script", "access.py", "--document-root", "www"]);
    for path in ["/", "/file.txt"] {
        assert_eq!(express.get(path).status, 403, "{path}\n{}", express.error_log());
        let r = http(express.port, "GET", path, &[("X-Let-Me-In", "yes")], b"");
        assert_eq!(r.status, 200, "{path}\n{}", express.error_log());
    }
    assert!(express.error_log().contains("denied"), "{}", express.error_log());
}

/// The document root's `.ht*` files are never served, an authenticated user's request
/// included (the site's authentication must not replace that denial), and Apache names no
/// version, as the original's `ServerTokens ProductOnly` and `ServerSignature Off`.
#[test]
fn ht_files_are_denied_and_apache_names_no_version() {
    let dir = TempDir::new("express-ht");
    dir.write("app.wsgi", WHERE_AM_I);
    dir.write("www/.htpasswd", "u:secret\n");
    dir.write("www/hello.txt", "hello\n");
    dir.write("users.py", "def check_password(environ, user, password):\n    return password == 'secret'\n");
    let express = Express::start_in(dir, &["app.wsgi", "--document-root", "www", "--auth-user-script", "users.py"]);
    let user = [("Authorization", "Basic dTpzZWNyZXQ=")];
    let r = http(express.port, "GET", "/hello.txt", &user, b"");
    assert_eq!((r.status, r.text().as_str()), (200, "hello\n"), "{}", express.error_log());
    assert_eq!(r.header("Server"), Some("Apache"));
    assert_eq!(express.get("/hello.txt").status, 401);
    let r = http(express.port, "GET", "/.htpasswd", &user, b"");
    assert_eq!(r.status, 403, "{}\n{}", r.text(), express.error_log());
    assert!(!r.text().contains("secret") && !r.text().contains("Server at"), "{}", r.text());
    assert_eq!(express.get("/.htpasswd").status, 403, "denied before any authentication");
}

/// `--application-type paste` loads the file with PasteDeploy (here a stand-in on
/// `--python-path`); without PasteDeploy it is refused before Apache starts.
#[test]
fn application_type_paste_needs_paste_deploy() {
    let dir = TempDir::new("express-paste");
    dir.write("site.ini", "[app:main]\nuse = egg:demo\n");
    dir.write("fake/paste/__init__.py", "");
    dir.write(
        "fake/paste/deploy.py",
        "def loadapp(uri):\n    path = uri.split(':', 1)[1]\n    def app(e, s):\n        s('200 OK', [('Content-Type', 'text/plain')])\n        return [('paste ' + path.rsplit('/', 1)[-1]).encode()]\n    return app\n",
    );
    let installed = Command::new("/usr/bin/python3").args(["-c", "import paste.deploy"]).stderr(Stdio::null()).status().unwrap().success();
    if !installed {
        let out = Command::new(EXPRESS)
            .args(["start-server", "--application-type", "paste", "site.ini", "--server-root", "root", "--setup-only"])
            .current_dir(dir.path())
            .env("MOD_WSGI_MODULE", module_path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("--application-type paste needs PasteDeploy"), "{stderr}");
    }
    let express = Express::start_in(dir, &["--application-type", "paste", "--python-path", "fake", "site.ini"]);
    let r = express.get("/");
    assert_eq!((r.status, r.text().as_str()), (200, "paste site.ini"), "{}", express.error_log());
}

/// Looking for PasteDeploy runs nothing of the project's: express may be run as root, and an
/// import from the working directory (or a `sitecustomize` there) would run its code as root.
#[test]
fn looking_for_paste_deploy_imports_nothing_from_the_project() {
    let dir = TempDir::new("express-paste-safe");
    dir.write("site.ini", "[app:main]\nuse = egg:demo\n");
    let marker = dir.path().join("imported");
    let plant = format!("open({:?}, 'a').write(__name__ + '\\n')\n", marker.to_str().unwrap());
    dir.write("paste/__init__.py", &plant);
    dir.write("paste/deploy.py", &plant);
    dir.write("sitecustomize.py", &plant);
    dir.write("lib/usercustomize.py", &plant);
    let out = Command::new(EXPRESS)
        .args(["start-server", "--application-type", "paste", "site.ini", "--server-root", "root", "--setup-only", "--python-path", "lib"])
        .current_dir(dir.path())
        .env("MOD_WSGI_MODULE", module_path())
        .env("PYTHONPATH", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "PasteDeploy in the working directory is found: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!marker.exists(), "express ran the project's code: {}", std::fs::read_to_string(&marker).unwrap_or_default());
}
