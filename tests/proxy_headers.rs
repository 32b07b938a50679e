//! `WSGITrustedProxyHeaders` and `WSGITrustedProxies` side by side with mod_wsgi 6.1 (built
//! from PyPI, see `mod_wsgi_6_module`): the same configuration and requests through both, each
//! answer (the CGI variables a proxy header may change, and every `HTTP_X_*` header left) the
//! same. The few cases where we differ on purpose (README, "Differences from mod_wsgi 6.1")
//! are checked on their own.

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::path::Path;

const APP: &str = r#"
import json

def application(environ, start_response):
    keys = ['REMOTE_ADDR', 'SERVER_NAME', 'HTTP_HOST', 'SERVER_PORT', 'wsgi.url_scheme', 'SCRIPT_NAME', 'PATH_INFO',
            'mod_wsgi.mount_point', 'mod_wsgi.script_name', 'mod_wsgi.path_info']
    seen = {k: environ.get(k) for k in keys}
    seen['X'] = {k: v for k, v in sorted(environ.items()) if k.startswith('HTTP_X_')}
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(seen).encode()]
"#;

/// All fifteen headers mod_wsgi 6.1 knows.
const ALL: &str = "X-Forwarded-For X-Client-IP X-Real-IP X-Forwarded-Host X-Host X-Forwarded-Server X-Forwarded-Port \
                   X-Script-Name X-Forwarded-Script-Name X-Forwarded-Proto X-Forwarded-Scheme X-Scheme X-Forwarded-HTTPS \
                   X-Forwarded-SSL X-HTTPS";
const TRUSTED: &str = "127.0.0.1 10.0.0.0/8";

/// The locations: name, `WSGITrustedProxyHeaders` (`Some("")`: the directive with no names),
/// `WSGITrustedProxies`.
const LOCATIONS: &[(&str, Option<&str>, Option<&str>)] = &[
    // The server-level list (X-Forwarded-Server, below) is replaced by a location's, even an empty one.
    ("server", None, None),
    ("none", Some(""), None),
    ("nobody", Some("X-Real-IP"), Some("")),
    ("ff", Some("X-Forwarded-For"), None),
    ("fft", Some("X-Forwarded-For"), Some(TRUSTED)),
    ("all", Some(ALL), None),
    ("allt", Some(ALL), Some(TRUSTED)),
    ("host", Some("X-Forwarded-Host"), None),
    ("xhost", Some("X-Host"), None),
    ("port", Some("X-Forwarded-Port"), None),
    ("portt", Some("X-Forwarded-Port"), Some("10.0.0.0/8")),
    ("script", Some("X-Script-Name"), None),
    ("fscript", Some("X-Forwarded-Script-Name"), None),
    ("proto", Some("X-Forwarded-Proto"), None),
    ("ssl", Some("X-Forwarded-SSL"), None),
    ("realip", Some("X-Real-IP"), None),
    ("ord1", Some("X-Forwarded-For X-Real-IP"), None),
    ("ord2", Some("X-Real-IP X-Forwarded-For"), None),
    ("ord3", Some("X-Forwarded-Proto X-Forwarded-SSL"), None),
    ("bogus", Some("X-Bogus"), None),
    // Two lines add up; a short network and a dotted mask are networks too.
    ("lines", Some("X-Forwarded-For\nWSGITrustedProxyHeaders X-Forwarded-Host"), Some("127.0.0\nWSGITrustedProxies 10.0.0.0/255.0.0.0")),
];

fn config() -> String {
    let mut body = String::from("WSGITrustedProxyHeaders X-Forwarded-Server\n");
    for (name, headers, proxies) in LOCATIONS {
        body.push_str(&format!("WSGIScriptAlias /{name} {{dir}}/app.wsgi\n<Location /{name}>\n"));
        if let Some(headers) = headers {
            body.push_str(&format!("  WSGITrustedProxyHeaders {headers}\n"));
        }
        if let Some(proxies) = proxies {
            body.push_str(&format!("  WSGITrustedProxies {proxies}\n"));
        }
        body.push_str("</Location>\n");
    }
    body
}

/// One of each header, with values that each change something.
const EVERY: &[(&str, &str)] = &[
    ("X-Forwarded-For", "203.0.113.9"),
    ("X-Client-IP", "198.51.100.1"),
    ("X-Real-IP", "198.51.100.2"),
    ("X-Forwarded-Host", "fwd.example:8443"),
    ("X-Host", "xhost.example"),
    ("X-Forwarded-Server", "fwdserver.example"),
    ("X-Forwarded-Port", "8443"),
    ("X-Script-Name", "/mount"),
    ("X-Forwarded-Script-Name", "/fmount"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Scheme", "http"),
    ("X-Scheme", "http"),
    ("X-Forwarded-HTTPS", "off"),
    ("X-Forwarded-SSL", "off"),
    ("X-HTTPS", "0"),
];

/// A request: location, request headers, the address it comes from.
type Row = (&'static str, Vec<(&'static str, String)>, &'static str);

fn rows() -> Vec<Row> {
    let every = || EVERY.iter().map(|(k, v)| (*k, v.to_string())).collect::<Vec<_>>();
    let one = |k: &'static str, v: &str| vec![(k, v.to_string())];
    let mut rows: Vec<Row> = Vec::new();
    for location in
        ["server", "none", "nobody", "bogus", "all", "allt", "host", "xhost", "port", "portt", "script", "fscript", "proto", "ssl", "realip", "lines"]
    {
        rows.push((location, every(), "127.0.0.1"));
    }
    rows.push(("allt", every(), "127.0.0.2"));
    rows.push(("lines", every(), "127.0.0.2"));
    let both = vec![("X-Forwarded-For", "203.0.113.9".to_string()), ("X-Real-IP", "198.51.100.2".to_string())];
    rows.push(("ord1", both.clone(), "127.0.0.1"));
    rows.push(("ord2", both, "127.0.0.1"));
    rows.push(("ord3", vec![("X-Forwarded-Proto", "https".into()), ("X-Forwarded-SSL", "off".into())], "127.0.0.1"));
    rows.push(("ord3", one("X-Forwarded-Proto", "https"), "127.0.0.1"));
    for (location, header, value) in [
        ("proto", "X-Forwarded-Proto", "HTTPS"),
        ("proto", "X-Forwarded-Proto", "ftp"),
        ("ssl", "X-Forwarded-SSL", "true"),
        ("ssl", "X-Forwarded-SSL", "yes"),
        ("port", "X-Forwarded-Port", "abc"),
        ("port", "X-Forwarded-Port", " 443"),
        ("host", "X-Forwarded-Host", ""),
        ("realip", "X-Real-IP", ""),
        ("realip", "X-Real-IP", "not-an-ip"),
        ("script", "X-Script-Name", "mount/"),
        ("script", "X-Script-Name", "/mount/"),
        ("script", "X-Script-Name", ""),
    ] {
        rows.push((location, one(header, value), "127.0.0.1"));
    }
    for chain in ["203.0.113.9, 10.0.0.2", ", 203.0.113.9", "garbage, 10.0.0.2", "", " , ", "203.0.113.9,,10.0.0.2", "1.1.1.1, 2.2.2.2"] {
        rows.push(("ff", one("X-Forwarded-For", chain), "127.0.0.1"));
    }
    rows.push(("ff", vec![("X-Forwarded-For", "1.1.1.1".into()), ("X-Forwarded-For", "2.2.2.2".into())], "127.0.0.1"));
    for chain in [
        "203.0.113.9",
        "203.0.113.9, 10.0.0.2",
        "198.51.100.1, 203.0.113.9, 10.0.0.2",
        "10.0.0.3, 10.0.0.2",
        "203.0.113.9, , 10.0.0.2",
        "203.0.113.9,10.0.0.2",
        "unknown, 10.0.0.2",
        "203.0.113.9, unknown",
        "203.0.113.9, 10.0.0.2, 127.0.0.1",
        "",
        " , ",
        ",10.0.0.2",
        "1.2.3.4 , 5.6.7.8",
        "203.0.113.9, ::ffff:10.0.0.5",
        "localhost, 10.0.0.2",
        "203.0.113.9:1234, 10.0.0.2",
        // Addresses as getaddrinfo reads them (inet_aton's forms), without DNS.
        "1.2.3.4, 127.1",
        "1.2.3.4, 010.0.0.2",
        "1.2.3.4, 0x0a.0.0.2",
        "1.2.3.4, 10.2",
        "1.2.3.4, 167772162",
        "1.2.3.4, 10.0.0.09",
        "1.2.3.4, ::FFFF:10.0.0.2",
        "1.2.3.4, [::1]",
        "1.2.3.4, fe80::1%1, 10.0.0.2",
        "1.2.3.4,\t10.0.0.2",
    ] {
        rows.push(("fft", one("X-Forwarded-For", chain), "127.0.0.1"));
    }
    let spoof = vec![("X-Forwarded-For", "203.0.113.9".to_string()), ("X-Forwarded-Host", "evil.example".into()), ("X-Real-IP", "1.2.3.4".into())];
    rows.push(("fft", spoof, "127.0.0.2"));
    rows.push(("fft", vec![("X-Real-IP", "1.2.3.4".into()), ("X-Forwarded-Host", "h.example".into())], "127.0.0.1"));
    rows.push(("lines", vec![("X-Forwarded-For", "203.0.113.9, 10.9.9.9".into()), ("X-Forwarded-Host", "h.example".into())], "127.0.0.1"));
    rows
}

/// GET `/location/p` with `headers` (and `Host: localhost`), from `source` (an address of the
/// loopback network), on a connection of its own.
fn get_from(apache: &Apache, location: &str, headers: &[(&str, String)], source: &str) -> Response {
    // SAFETY: socket has no preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0, "socket");
    // SAFETY: a socket of our own, owned by the stream from here on.
    let mut stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    let address = |ip: &str, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(ip.parse::<std::net::Ipv4Addr>().unwrap()).to_be() },
        sin_zero: [0; 8],
    };
    let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let (local, remote) = (address(source, 0), address("127.0.0.1", apache.port));
    // SAFETY: valid socket and addresses of the size given.
    unsafe {
        assert_eq!(libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), size), 0, "bind {source}");
        assert_eq!(libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), size), 0, "connect");
    }
    let lines: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(stream, "GET /{location}/p HTTP/1.1\r\nHost: localhost\r\n{lines}Connection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw, false)
}

fn answer(apache: &Apache, (location, headers, source): &Row) -> String {
    let r = get_from(apache, location, headers, source);
    assert_eq!(r.status, 200, "/{location} {headers:?} from {source}: {}\n{}", r.text(), apache.error_log());
    r.text()
}

fn describe((location, headers, source): &Row) -> String {
    format!("/{location} from {source} with {headers:?}")
}

fn server(module: &Path) -> Apache {
    let dir = TempDir::new("proxy-headers");
    dir.write("app.wsgi", APP);
    Apache::start_with_module(dir, Mpm::Event, module, &config())
}

/// Every request answered alike. (Where we differ on purpose, no request here: mod_wsgi
/// resolves host names in X-Forwarded-For through DNS and we know only `localhost`, see the
/// unit tests in src/module/proxy.rs; it crashes on names such as `X_Forwarded_For`, which we
/// refuse, see below.)
#[test]
fn same_answers_as_mod_wsgi_6() {
    let (ours, theirs) = std::thread::scope(|s| {
        let theirs = s.spawn(|| server(&mod_wsgi_6_module()));
        (server(&module_path()), theirs.join().unwrap())
    });
    let rows = rows();
    let answers = |apache: &Apache| rows.iter().map(|row| answer(apache, row)).collect::<Vec<_>>();
    let (a, b) = std::thread::scope(|s| {
        let theirs = s.spawn(|| answers(&theirs));
        (answers(&ours), theirs.join().unwrap())
    });
    let differences: Vec<String> = rows
        .iter()
        .zip(a.iter().zip(&b))
        .filter(|(_, (a, b))| a != b)
        .map(|(row, (a, b))| format!("{}\n  mod_wsgi-rs: {a}\n  mod_wsgi:    {b}", describe(row)))
        .collect();
    assert!(
        differences.is_empty(),
        "{} of {} requests differ from mod_wsgi {MOD_WSGI_6}:\n{}",
        differences.len(),
        rows.len(),
        differences.join("\n")
    );

    // A few answers spelled out, so that a change in both would be seen too.
    let find = |location: &str, source: &str, first: Option<(&str, &str)>| {
        let i = rows
            .iter()
            .position(|(l, h, s)| {
                *l == location && *s == source && first.map_or(true, |(k, v)| h.first().is_some_and(|(hk, hv)| *hk == k && hv == v))
            })
            .unwrap();
        Json::parse(&a[i])
    };
    let all = find("all", "127.0.0.1", None);
    let got: Vec<String> =
        ["REMOTE_ADDR", "SERVER_NAME", "HTTP_HOST", "SERVER_PORT", "SCRIPT_NAME", "mod_wsgi.mount_point", "mod_wsgi.script_name", "wsgi.url_scheme"]
            .iter()
            .map(|k| all.get(k))
            .collect();
    assert_eq!(got, ["198.51.100.2", "fwdserver.example", "xhost.example", "8443", "/fmount", "/fmount", "/all", "http"]);
    let server = find("server", "127.0.0.1", None);
    assert_eq!((server.get("SERVER_NAME"), server.get("mod_wsgi.mount_point")), ("fwdserver.example".to_string(), "null".to_string()));
    assert_eq!(find("none", "127.0.0.1", None).get("SERVER_NAME"), "localhost");
    let walked = find("fft", "127.0.0.1", Some(("X-Forwarded-For", "198.51.100.1, 203.0.113.9, 10.0.0.2")));
    assert_eq!(
        (walked.get("REMOTE_ADDR"), walked.get("X")),
        ("203.0.113.9".to_string(), r#"{"HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.0.0.2"}"#.to_string())
    );
    let spoofed = find("fft", "127.0.0.2", None);
    assert_eq!((spoofed.get("REMOTE_ADDR"), spoofed.get("X")), ("127.0.0.2".to_string(), r#"{"HTTP_X_FORWARDED_HOST": "evil.example"}"#.to_string()));
    assert_eq!(find("proto", "127.0.0.1", Some(("X-Forwarded-Proto", "HTTPS"))).get("wsgi.url_scheme"), "https");
}

/// What `apache2 -t` says of a configuration, for ours and for mod_wsgi 6.1.
fn both_config_tests(body: &str) -> [(bool, String); 2] {
    [config_test(body), config_test_with(&mod_wsgi_6_module(), body)]
}

#[test]
fn configuration_as_mod_wsgi_6() {
    // Every name is accepted, one mod_wsgi does not know too.
    let names = format!("WSGITrustedProxyHeaders {ALL}\nWSGITrustedProxyHeaders X-Bogus\nWSGITrustedProxyHeaders\n");
    for (ok, out) in both_config_tests(&names) {
        assert!(ok, "{out}");
    }
    // Its messages for what is not an address or network.
    for entry in ["localhost", "10.0.0.0/33", "0.0.0.0/0", "10.0.0.0.0", "FE80::1", "::ffff:0:0/96", "10.0.0/8"] {
        let [(ok, ours), (ok6, theirs)] = both_config_tests(&format!("WSGITrustedProxies 127.0.0.1 {entry}\n"));
        assert!(!ok && !ok6, "{entry}: {ours}\n{theirs}");
        assert_eq!(ours, theirs, "{entry}");
        assert!(ours.contains(&format!("Unable to parse trusted proxy IP address/subnet of \"{entry}\".")), "{ours}");
    }
    for entry in ["10.0.0", "10.", "10.0.0.0/255.0.255.0", "::1/128", "abc::/16", "010.0.0.1/32", "1.2.3.4/0.0.0.0"] {
        for (ok, out) in both_config_tests(&format!("WSGITrustedProxies {entry}\n")) {
            assert!(ok, "{entry}: {out}");
        }
    }
    // A name that is no header name: mod_wsgi accepts it and then crashes at the first
    // request (a NULL environ name); we refuse it (README: "Differences from mod_wsgi 6.1").
    for name in ["X_Forwarded_For", "HTTP_X_FORWARDED_FOR", "\"X-Forwarded-For X-Real-IP\""] {
        let [(ok, ours), (ok6, theirs)] = both_config_tests(&format!("WSGITrustedProxyHeaders X-Real-IP {name}\n"));
        assert!(ok6, "mod_wsgi 6.1 accepts {name}: {theirs}");
        assert!(!ok && ours.contains("is not an HTTP header name"), "{name}: {ours}");
    }
    let (_, out) = config_test("WSGITrustedProxyHeaders HTTP_X_FORWARDED_FOR\n");
    assert!(out.contains("(as a request header: 'X-FORWARDED-FOR')"), "{out}");
}

/// GET `url` with `headers` through curl (TLS, certificate not checked): the body.
fn curl_get(url: &str, headers: &[(&str, &str)]) -> String {
    let mut command = std::process::Command::new("/usr/bin/curl");
    command.args(["-s", "-k", "--max-time", "30", "--fail-with-body", url]);
    for (k, v) in headers {
        command.args(["-H", &format!("{k}: {v}")]);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// On a TLS connection the scheme is https unless a trusted scheme header says otherwise
/// (mod_wsgi 6.1: HTTPS=1 only when no scheme header was applied).
#[test]
fn scheme_over_https_as_mod_wsgi_6() {
    let ssl = format!("LoadModule ssl_module {APACHE_MODULES}/mod_ssl.so\nSSLEngine on\nSSLCertificateFile {{dir}}/site.crt\nSSLCertificateKeyFile {{dir}}/site.key\n");
    let start = |module: &Path| {
        let dir = TempDir::new("proxy-headers-tls");
        dir.write("app.wsgi", APP);
        let made = std::process::Command::new("/usr/bin/openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "site.key",
                "-out",
                "site.crt",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        Apache::start_with_module(dir, Mpm::Event, module, &format!("{ssl}{}", config()))
    };
    let (ours, theirs) = std::thread::scope(|s| {
        let theirs = s.spawn(|| start(&mod_wsgi_6_module()));
        (start(&module_path()), theirs.join().unwrap())
    });
    // Location, headers, the scheme the application sees.
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let requests: &[(&str, Headers, &str)] = &[
        ("none", &[("X-Forwarded-Proto", "http")], "https"),
        ("proto", &[], "https"),
        ("proto", &[("X-Forwarded-Proto", "http")], "http"),
        ("proto", &[("X-Forwarded-Proto", "https")], "https"),
        // Applied, but says nothing: mod_ssl's HTTPS=on stands.
        ("proto", &[("X-Forwarded-Proto", "ftp")], "https"),
        ("ssl", &[("X-Forwarded-SSL", "off")], "http"),
        ("ssl", &[("X-Forwarded-SSL", "maybe")], "https"),
        ("ord3", &[("X-Forwarded-Proto", "https"), ("X-Forwarded-SSL", "off")], "http"),
    ];
    for (location, headers, expected) in requests {
        let answer = |apache: &Apache| {
            let body = curl_get(&format!("https://127.0.0.1:{}/{location}/p", apache.port), headers);
            Json::parse(&body.replace(&apache.port.to_string(), "PORT"))
        };
        let (a, b) = (answer(&ours), answer(&theirs));
        assert_eq!((a.get("wsgi.url_scheme"), b.get("wsgi.url_scheme")), (expected.to_string(), expected.to_string()), "/{location} {headers:?}");
        assert_eq!(a.get("X"), b.get("X"), "/{location} {headers:?}");
    }
}
