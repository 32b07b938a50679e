//! What a shared host relies on in daemon mode, against a real Apache started as root (its
//! children run as `nobody`, and the daemons really switch to their users):
//!
//! - two sites in two daemon groups, as two unprivileged users, cannot read each other's files
//!   or reach each other's daemon socket, and a process of Apache's own user that can reach a
//!   socket cannot get a request run without the group's secret token;
//! - a daemon keeps none of the descriptors of Apache's parent but its own listener and its
//!   host's error log: no other host's logs, no logger pipe, no pipe of the MPM;
//! - daemon groups on three Pythons in one Apache serve a concurrent load side by side;
//! - 100 MiB bodies stream both ways through a daemon in bounded memory, and chunked request
//!   bodies, HEAD, keep-alive and an application's exception behave as when embedded.
//!
//! tests/daemon.rs covers one daemon group's basics (`bodies_stream_both_ways` checks 10 MiB
//! bodies for content only); this file adds scale, memory bounds and the multi-tenant view.
//! The two users (`mwsgi-a`, `mwsgi-b`) are created if missing, and are all this file leaves
//! outside its temporary directories.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const USER_A: &str = "mwsgi-a";
const USER_B: &str = "mwsgi-b";

/// Python 3 only (the default engine): each site's view of its process and its neighbours.
const APP: &str = r#"
import errno, hashlib, json, os, socket

def _status(key):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])

def application(environ, start_response):
    path = environ['PATH_INFO']
    query = environ.get('QUERY_STRING', '')
    if path == '/id':
        body = json.dumps({'pid': os.getpid(), 'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(),
                           'group': environ['mod_wsgi.process_group']}).encode()
    elif path == '/read':
        try:
            with open(query, 'rb') as f:
                body = b'read:' + f.read()
        except PermissionError:
            body = b'PermissionError'
    elif path == '/connect':
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(query)
            body = b'connected'
        except OSError as e:
            body = errno.errorcode.get(e.errno, str(e.errno)).encode()
        finally:
            s.close()
    elif path == '/mark':
        open(os.path.join(os.path.dirname(__file__), 'marked-%s' % environ['mod_wsgi.process_group']), 'w').close()
        body = b'marked'
    elif path == '/upload':
        digest, length, read = hashlib.sha256(), 0, environ['wsgi.input'].read
        while True:
            chunk = read(65536)
            if not chunk:
                break
            digest.update(chunk)
            length += len(chunk)
        body = json.dumps({'sha256': digest.hexdigest(), 'length': length, 'pid': os.getpid()}).encode()
    elif path == '/download':
        total = int(query)
        start_response('200 OK', [('Content-Type', 'application/octet-stream'), ('Content-Length', str(total))])
        block = bytes(range(256)) * 256
        def blocks():
            sent = 0
            while sent < total:
                piece = block[:min(len(block), total - sent)]
                sent += len(piece)
                yield piece
        return blocks()
    elif path == '/generated':
        # No Content-Length: Apache chunks the response on a keep-alive connection.
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return (('line %d\n' % i).encode() for i in range(int(query)))
    elif path == '/fds':
        lines = []
        for fd in sorted(os.listdir('/proc/self/fd'), key=int):
            try:
                lines.append('%s %s' % (fd, os.readlink('/proc/self/fd/' + fd)))
            except OSError:
                pass
        body = ('pid %d\n' % os.getpid() + '\n'.join(lines)).encode()
    elif path == '/raise':
        raise RuntimeError('boom from daemon %d' % os.getpid())
    else:
        body = b'?'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body))), ('X-Pid', str(os.getpid()))])
    return [body]
"#;

fn uid_of(user: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", user]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn gid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-g", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Creates system user `name` (no home directory, no login shell) unless it exists; another
/// run creating it at the same moment is no failure.
fn ensure_user(name: &str) -> u32 {
    if let Some(uid) = uid_of(name) {
        return uid;
    }
    let out = Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]).output().unwrap();
    uid_of(name).unwrap_or_else(|| panic!("useradd {name} failed: {}", String::from_utf8_lossy(&out.stderr)))
}

fn text(apache: &Apache, path: &str) -> String {
    let response = apache.get(path);
    assert_eq!(response.status, 200, "{path}: {}\n{}", response.text(), apache.error_log());
    response.text()
}

/// The daemon sockets under `dir`, by group number (1 for the first `WSGIDaemonProcess`): the
/// supervisor names them `<prefix>.<parent pid>.<generation>.<group number>.sock`.
fn sockets_by_group(dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_suffix(".sock")?.rsplit('.').next()?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The inode the kernel lists for the Unix socket bound at `path` (/proc/net/unix).
fn socket_inode(path: &Path) -> u64 {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        // The listening one (flags __SO_ACCEPTCON): a daemon's accepted connections list the
        // same path.
        .find(|f| f.len() > 7 && Path::new(f[7]) == path && f[3] == "00010000")
        .and_then(|f| f[6].parse().ok())
        .unwrap_or_else(|| panic!("{} is not a listening socket", path.display()))
}

/// Whether process `pid` has a descriptor for socket `inode`.
fn holds_socket(pid: i32, inode: u64) -> bool {
    let link = format!("socket:[{inode}]");
    descriptors(pid).iter().any(|(_, target)| *target == link)
}

/// The inodes of the TCP sockets in the LISTEN state (Apache's `Listen` ports among them).
fn tcp_listeners() -> Vec<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|table| std::fs::read_to_string(table).unwrap_or_default().lines().skip(1).map(str::to_string).collect::<Vec<_>>())
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() > 9 && f[3] == "0A").then(|| f[9].parse().ok()).flatten()
        })
        .collect()
}

/// Runs Debian's python3 as `user` (no shell: the system users have none); returns stdout.
fn python_as(user: &str, script: &str, args: &[&str]) -> String {
    let out = Command::new("runuser").args(["-u", user, "--", "/usr/bin/python3", "-c", script]).args(args).output().unwrap();
    assert!(out.status.success(), "python3 as {user} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Prints `connected`, or the errno name of a refused `connect()` to the socket in argv[1].
const CONNECT: &str = r#"
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
    print('connected')
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
"#;

/// Connects to the daemon socket argv[1] and sends a well-formed HELLO frame (wire.rs:
/// kind 1, u32 length; magic, version 3, a 16-byte token, error_override, script, callable,
/// group, environ) for script argv[2] with a made-up token, or (argv[3] == 'garbage') bytes that
/// are no frame at all; prints the hex of everything the daemon sends back before closing.
const FORGE: &str = r#"
import os, socket, struct, sys
def b(v):
    return struct.pack('<I', len(v)) + v
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(20)
if sys.argv[3] == 'garbage':
    s.sendall(b'GET /mark HTTP/1.0\r\n\r\n')
else:
    environ = [(b'REQUEST_METHOD', b'GET'), (b'PATH_INFO', b'/mark'), (b'SCRIPT_NAME', b''), (b'QUERY_STRING', b''),
               (b'SERVER_NAME', b'localhost'), (b'SERVER_PORT', b'80'), (b'SERVER_PROTOCOL', b'HTTP/1.1'),
               (b'wsgi.url_scheme', b'http'), (b'mod_wsgi.process_group', b'a'), (b'mod_wsgi.application_group', b'')]
    payload = (b'MWRS' + struct.pack('<H', 3) + os.urandom(16) + b'\x00' + b(sys.argv[2].encode()) + b(b'application')
               + b(b'') + struct.pack('<I', len(environ)) + b''.join(b(k) + b(v) for k, v in environ))
    s.sendall(struct.pack('<BI', 1, len(payload)) + payload)
got = b''
while True:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        # Refused after the token, before the rest was read: the unread rest makes it a reset.
        break
    if not chunk:
        break
    got += chunk
print('reply:' + got.hex())
"#;

#[test]
fn two_sites_as_two_users_cannot_reach_each_other() {
    if !is_root() {
        return eprintln!("skipped: needs root to create users and switch to them");
    }
    let (uid_a, uid_b) = (ensure_user(USER_A), ensure_user(USER_B));
    let dir = TempDir::new("isolation-users");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    // Each site's private file: its user's, mode 0600.
    let secret_a = dir.write("a/secret", "secret of a");
    let secret_b = dir.write("b/secret", "secret of b");
    for (file, user) in [(&secret_a, USER_A), (&secret_b, USER_B)] {
        std::os::unix::fs::chown(file, uid_of(user), Some(gid_of(user))).unwrap();
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess a user={USER_A} threads=2\nWSGIDaemonProcess b user={USER_B} threads=2\n\
         WSGIScriptAlias /a {{dir}}/app.wsgi process-group=a application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /b {{dir}}/app.wsgi process-group=b application-group=%{{GLOBAL}}\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let (id_a, id_b) = (json(&apache, "/a/id"), json(&apache, "/b/id"));
    assert_eq!((id_a.get("group"), id_a.get("uid").parse().unwrap(), id_a.get("euid").parse().unwrap()), ("a".into(), uid_a, uid_a));
    assert_eq!((id_b.get("group"), id_b.get("uid").parse().unwrap(), id_b.get("euid").parse().unwrap()), ("b".into(), uid_b, uid_b));
    assert_eq!(id_a.get("gid").parse::<u32>().unwrap(), gid_of(USER_A), "the user's primary group");
    assert_eq!(id_b.get("gid").parse::<u32>().unwrap(), gid_of(USER_B), "the user's primary group");
    let (pid_a, pid_b): (i32, i32) = (id_a.get("pid").parse().unwrap(), id_b.get("pid").parse().unwrap());
    assert_ne!(pid_a, pid_b);

    // Files: each site reads its own, and is refused the other's.
    let (a, b) = (secret_a.display(), secret_b.display());
    assert_eq!(text(&apache, &format!("/a/read?{a}")), "read:secret of a");
    assert_eq!(text(&apache, &format!("/b/read?{b}")), "read:secret of b");
    assert_eq!(text(&apache, &format!("/a/read?{b}")), "PermissionError");
    assert_eq!(text(&apache, &format!("/b/read?{a}")), "PermissionError");

    // Sockets: group a is the first definition, b the second.
    let run = apache.dir.path().join("run");
    let sockets = sockets_by_group(&run);
    assert_eq!(sockets.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1, 2], "{sockets:?}");
    let (socket_a, socket_b) = (sockets[0].1.clone(), sockets[1].1.clone());
    let (inode_a, inode_b) = (socket_inode(&socket_a), socket_inode(&socket_b));
    // Each daemon listens on its own socket only: one that held the other's could accept
    // (and read the token of) the other site's requests.
    assert!(holds_socket(pid_a, inode_a) && holds_socket(pid_b, inode_b), "each daemon holds its listener");
    assert!(!holds_socket(pid_a, inode_b), "daemon a holds site b's listening socket");
    assert!(!holds_socket(pid_b, inode_a), "daemon b holds site a's listening socket");
    // Nor does either hold Apache's listening port: its application could accept HTTP
    // connections meant for any site.
    let listeners = tcp_listeners();
    assert!(listeners.iter().any(|inode| holds_socket(apache.pid(), *inode)), "Apache's own listener is seen");
    for pid in [pid_a, pid_b] {
        assert!(!listeners.iter().any(|inode| holds_socket(pid, *inode)), "daemon {pid} holds a listening TCP socket");
    }
    let (sa, sb) = (socket_a.to_str().unwrap(), socket_b.to_str().unwrap());
    // Neither site's user can connect to the other's daemon, whether from its own
    // application (a compromised site) or any process of that user.
    assert_eq!(text(&apache, &format!("/a/connect?{sb}")), "EACCES");
    assert_eq!(text(&apache, &format!("/b/connect?{sa}")), "EACCES");
    assert_eq!(python_as(USER_B, CONNECT, &[sa]), "EACCES");
    assert_eq!(python_as(USER_A, CONNECT, &[sb]), "EACCES");

    // Apache's own user can connect (its children must), but without the group's token the
    // daemon runs nothing: a well-formed hello with a made-up token, and bytes that are no
    // hello at all, are both closed without a single byte back.
    assert_eq!(python_as("nobody", CONNECT, &[sa]), "connected");
    let script = apache.dir.path().join("app.wsgi");
    let forged = python_as("nobody", FORGE, &[sa, script.to_str().unwrap(), "hello"]);
    assert_eq!(forged, "reply:", "the daemon answered a hello with a made-up token");
    let log = apache.wait_for_log("Request origin could not be validated.\n");
    assert!(log.lines().any(|l| l.ends_with("Request origin could not be validated.")), "the token was checked (and the hello parsed):\n{log}");
    let garbage = python_as("nobody", FORGE, &[sa, script.to_str().unwrap(), "garbage"]);
    assert_eq!(garbage, "reply:", "the daemon answered bytes that are no hello");
    assert!(!apache.dir.path().join("marked-a").exists(), "a forged request ran the application");
    // The token's secrecy from other processes of Apache's user rests on its children not
    // being dumpable (the kernel's rule after they switched from root): no ptrace, no
    // /proc/PID/mem for a process of the same user.
    let children: Vec<i32> = apache.children().into_iter().filter(|p| *p != pid_a && *p != pid_b).collect();
    assert!(!children.is_empty());
    for child in children {
        let read_mem =
            "import sys\ntry:\n    open('/proc/%s/mem' % sys.argv[1], 'rb')\n    print('opened')\nexcept OSError as e:\n    print(type(e).__name__)";
        assert_eq!(python_as("nobody", read_mem, &[&child.to_string()]), "PermissionError", "nobody can read Apache child {child}'s memory");
    }

    // Both daemons serve on, as before; a genuine request through Apache does run /mark.
    assert_eq!(json(&apache, "/a/id").get("pid").parse::<i32>().unwrap(), pid_a);
    assert_eq!(json(&apache, "/b/id").get("pid").parse::<i32>().unwrap(), pid_b);
    assert_eq!(text(&apache, "/a/mark"), "marked");
    assert!(apache.dir.path().join("marked-a").exists());
}

/// The descriptors of process `pid`: number and what it points at.
fn descriptors(pid: i32) -> Vec<(String, String)> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read_link(e.path()).ok()?.display().to_string())))
        .collect()
}

#[test]
fn daemons_keep_only_their_own_descriptors_of_the_parent() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch daemons to their users");
    }
    ensure_user(USER_A);
    ensure_user(USER_B);
    let dir = TempDir::new("isolation-descriptors");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    // A socket directory everyone may write (no sticky bit): started anyway, with a warning.
    std::fs::set_permissions(dir.path().join("run"), std::fs::Permissions::from_mode(0o777)).unwrap();
    // Two hosts, each with its own error and access logs; b's access log is a piped logger,
    // whose pipe a daemon of a could otherwise read b's log lines from.
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         <VirtualHost *>\n  ServerName a.test\n  ErrorLog {{dir}}/error-a.log\n  CustomLog {{dir}}/access-a.log \"%h %r %>s\"\n\
           WSGIDaemonProcess a user={USER_A} threads=2\n\
           WSGIScriptAlias / {{dir}}/app.wsgi process-group=a application-group=%{{GLOBAL}}\n</VirtualHost>\n\
         <VirtualHost *>\n  ServerName b.test\n  ErrorLog {{dir}}/error-b.log\n  CustomLog \"|$/bin/cat >> {{dir}}/access-b.log\" \"%h %r %>s\"\n\
           WSGIDaemonProcess b user={USER_B} threads=2\n\
           WSGIScriptAlias / {{dir}}/app.wsgi process-group=b application-group=%{{GLOBAL}}\n</VirtualHost>\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let d = apache.dir.path().display().to_string();
    let parent: Vec<String> = descriptors(apache.pid()).into_iter().map(|(_, target)| target).collect();
    for target in [format!("{d}/error-b.log"), format!("{d}/access-a.log")] {
        assert!(parent.contains(&target), "Apache's parent holds {target}: {parent:?}");
    }
    assert!(parent.iter().any(|t| t.starts_with("pipe:")), "Apache's parent holds pipes (the piped logger's, the MPM's): {parent:?}");
    let sockets = sockets_by_group(&apache.dir.path().join("run"));
    assert_eq!(sockets.len(), 2, "{sockets:?}");
    for host in ["a.test", "b.test"] {
        let name = &host[..1];
        let response = apache.request("GET", "/fds", &[("Host", host)], b"");
        assert_eq!(response.status, 200, "{}\n{}", response.text(), apache.error_log());
        let text = response.text();
        let pid: i32 = text.lines().next().and_then(|l| l.strip_prefix("pid ")).and_then(|p| p.parse().ok()).unwrap();
        // Read as root from outside too (the application's own listing runs after Python
        // started, so it also proves nothing was reopened).
        let held = descriptors(pid);
        let target_of = |fd: &str| held.iter().find(|(n, _)| n == fd).map(|(_, t)| t.clone());
        let own_log = format!("{d}/error-{name}.log");
        assert_eq!(target_of("2").as_deref(), Some(own_log.as_str()), "daemon {name}'s standard error is its host's error log: {held:?}");
        // Its own listener, and not the other group's (which one is whose: the numbering of
        // groups defined in virtual hosts is the supervisor's affair).
        let listeners: Vec<String> = sockets.iter().map(|(_, path)| format!("socket:[{}]", socket_inode(path))).collect();
        let own: Vec<&String> = listeners.iter().filter(|l| held.iter().any(|(_, t)| t == *l)).collect();
        assert_eq!(own.len(), 1, "daemon {name} holds one group listener: {held:?}, listeners {listeners:?}");
        let allowed = [own_log.as_str(), own[0].as_str(), "/dev/null"];
        let shared: Vec<&(String, String)> = held.iter().filter(|(_, t)| parent.contains(t) && !allowed.contains(&t.as_str())).collect();
        assert!(shared.is_empty(), "daemon {name} holds descriptors of Apache's parent: {shared:?}\nall: {held:?}\nparent: {parent:?}");
        for (_, target) in &held {
            assert!(
                !target.starts_with(&d) || target == &own_log || target.starts_with(&format!("{d}/run/")) || target.ends_with("app.wsgi"),
                "daemon {name} holds {target}"
            );
        }
    }
    let log_of = |name: &str| std::fs::read_to_string(apache.dir.path().join(name)).unwrap_or_default();
    let logs = [log_of("error.log"), log_of("error-a.log"), log_of("error-b.log")].join("");
    assert!(logs.contains("is writable by every user without the sticky bit"), "the open socket directory was warned about:\n{logs}");
    // Each daemon logs to its host's error log (the start line), and the requests still reach
    // the access logs through Apache's children.
    let log_a = log_of("error-a.log");
    assert!(log_a.contains("Daemon process 'a' (0) is serving requests"), "{log_a}");
    assert!(!log_a.contains("Daemon process 'b'"), "{log_a}");
    let access_a = log_of("access-a.log");
    assert!(access_a.contains("GET /fds HTTP/1.1 200"), "{access_a}");
}

/// Writes frames of the daemon protocol (wire.rs: kind u8, u32 length, payload) straight to
/// its connection from Apache's child, as a site's code can: a START whose status or headers
/// `start_response` would refuse (query `te`: an unframed body that smuggles a second
/// response; `1xx`: an interim status as the final one), a DATA, an END.
const FORGED_FRAMES: &str = r#"
import os, socket, struct

def frame(kind, payload):
    return struct.pack('<BI', kind, len(payload)) + payload

def b(v):
    return struct.pack('<I', len(v)) + v

def connection():
    for fd in os.listdir('/proc/self/fd'):
        try:
            if not os.readlink('/proc/self/fd/' + fd).startswith('socket:'):
                continue
            s = socket.fromfd(int(fd), socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError:
            continue
        try:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0 and s.getsockname().endswith('.sock'):
                # Not an earlier request's connection that its child has closed (end of
                # stream): this request's child is waiting, with nothing to read.
                try:
                    if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b'':
                        s.close()
                        continue
                except BlockingIOError:
                    pass
                return s
        except OSError:
            pass
        s.close()

def application(environ, start_response):
    case = environ['QUERY_STRING']
    if case == 'te':
        status, headers = b'200 OK', [(b'Transfer-Encoding', b'chunked')]
        body = b'5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nINJ'
    elif case == '1xx':
        status, headers, body = b'100 Continue', [(b'Content-Length', b'5')], b'body\n'
    else:
        status, headers, body = b'200 OK', [(b'Content-Length', b'3')], b'yes'
    start = b(status) + struct.pack('<I', len(headers)) + b''.join(b(k) + b(v) for k, v in headers)
    s = connection()
    s.sendall(frame(18, start) + frame(19, body) + frame(22, struct.pack('<iB', 0, 0)))
    s.close()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'']
"#;

/// A site's code cannot make Apache's child send a response that `start_response` refuses by
/// writing the protocol's frames itself: the child checks the status and headers again.
#[test]
fn forged_response_frames_from_a_daemon_are_checked_in_apache() {
    let dir = TempDir::new("isolation-forged-frames");
    dir.write("forge.wsgi", FORGED_FRAMES);
    let config = "WSGIRestrictEmbedded On\nWSGISocketPrefix {dir}/wsgi\n\
                  WSGIDaemonProcess forge threads=1\n\
                  WSGIScriptAlias /forge {dir}/forge.wsgi process-group=forge application-group=%{GLOBAL}\n";
    let apache = Apache::start_in(dir, Mpm::Event, config);
    // The probe: a well-formed forged START goes through, so the frames reach the child.
    let fine = apache.get("/forge?ok");
    assert_eq!((fine.status, fine.text().as_str()), (200, "yes"), "{}", apache.error_log());
    for (case, reason) in [("te", "hop-by-hop header b'Transfer-Encoding'"), ("1xx", "1xx is an interim response")] {
        let response = apache.get(&format!("/forge?{case}"));
        assert_eq!(response.status, 500, "{case}: {:?}\n{}", response.text(), apache.error_log());
        assert!(!response.text().contains("INJ") && !response.text().contains("body\n"), "{case}: {}", response.text());
        let log = apache.wait_for_log(reason);
        assert!(log.contains("Invalid response status or headers from daemon process 'forge'"), "{log}");
    }
}

/// What `python-home` names, and the engine it needs, or `None` when `scripts/pythons` did not
/// build it (then the test is skipped, unless `MOD_WSGI_TEST_PYTHONS` says it was built).
fn other_python(version: &str) -> Option<String> {
    let home = format!("/opt/mod_wsgi-rs/python/{version}");
    let engine = repo().join(format!("target/modules/mod_wsgi-engine-py{version}.so"));
    if Path::new(&home).is_dir() && engine.is_file() {
        return Some(home);
    }
    let expected = std::env::var("MOD_WSGI_TEST_PYTHONS").unwrap_or_default();
    assert!(
        !expected.split_whitespace().any(|v| v == version),
        "MOD_WSGI_TEST_PYTHONS names {version}, but {home} or {} is missing",
        engine.display()
    );
    None
}

/// Runs on Python 2.7 as well as 3.
const VERSION_APP: &str = r#"
import hashlib, os, sys

def application(environ, start_response):
    data = environ['wsgi.input'].read()
    body = ('%d.%d %d %s %s' % (sys.version_info[0], sys.version_info[1], os.getpid(), environ['mod_wsgi.process_group'],
                                hashlib.sha256(data).hexdigest())).encode('ascii')
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

#[test]
fn daemon_groups_on_three_pythons_serve_a_load_side_by_side() {
    if !is_root() {
        return eprintln!("skipped: needs root (Apache's User, daemon users)");
    }
    let (Some(home27), Some(home313)) = (other_python("2.7"), other_python("3.13")) else {
        return eprintln!("skipped: run scripts/pythons 2.7 3.13 first");
    };
    let dir = TempDir::new("isolation-pythons");
    dir.write("version.wsgi", VERSION_APP);
    dir.write("run/.keep", "");
    let groups = [("py27", "2.7"), ("py313", "3.13"), ("py311", "3.11")];
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess py27 threads=4 python-home={home27}\n\
         WSGIDaemonProcess py313 threads=4 python-home={home313}\n\
         WSGIDaemonProcess py311 processes=2 threads=4\n\
         WSGIScriptAlias /py27 {{dir}}/version.wsgi process-group=py27 application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /py313 {{dir}}/version.wsgi process-group=py313 application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /py311 {{dir}}/version.wsgi process-group=py311 application-group=%{{GLOBAL}}\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let mut daemons = Vec::new();
    for (group, version) in groups {
        let reply = text(&apache, &format!("/{group}/"));
        let fields: Vec<&str> = reply.split(' ').collect();
        assert_eq!((fields[0], fields[2]), (version, group), "{reply}");
        let pid: i32 = fields[1].parse().unwrap();
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let lib = format!("libpython{version}");
        assert!(maps.contains(&lib), "daemon {group} ({pid}) maps no {lib}");
        for (_, other) in groups.iter().filter(|(_, v)| *v != version) {
            assert!(!maps.contains(&format!("libpython{other}")), "daemon {group} ({pid}) also maps libpython{other}");
        }
        daemons.push(pid);
    }

    // All three at once: GETs and POSTs with bodies, each answered by its own Python.
    let request = |n: usize| {
        let (group, _) = groups[n % 3];
        if n % 2 == 0 {
            Request::get(format!("/{group}/?{n}"))
        } else {
            Request::post(format!("/{group}/"), format!("body {n} ").repeat(n % 500 + 1).into_bytes())
        }
    };
    let outcomes = hammer(apache.port, 6, 40, request);
    let mut failed = Vec::new();
    for (n, (sent, outcome)) in outcomes.iter().enumerate() {
        let (group, version) = groups[n % 3];
        let expected = format!("{version} ");
        let suffix = format!(" {group} {}", sha256_hex(&sent.body));
        match outcome {
            Ok(r) if r.status == 200 && r.text().starts_with(&expected) && r.text().ends_with(&suffix) => {}
            Ok(r) => failed.push(format!("{} {}: {} {:?}", sent.method, sent.path, r.status, r.text())),
            Err(e) => failed.push(format!("{} {}: {e}", sent.method, sent.path)),
        }
    }
    assert!(failed.is_empty(), "{} of {} requests failed: {failed:?}\n{}", failed.len(), outcomes.len(), apache.error_log());
    assert_eq!(outcomes.len(), 240);
    let log = apache.error_log();
    assert!(crash_lines(&log).is_empty(), "crash lines:\n{}", crash_lines(&log).join("\n"));
    assert!(!log.contains("has died"), "a daemon died under the load:\n{log}");
    for pid in &daemons[..2] {
        assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok(), "daemon {pid} is gone");
    }
}

/// A growing SHA-256 (sha256sum fed through a pipe), so that 100 MiB never sits in memory.
struct Sha256 {
    child: std::process::Child,
}

impl Sha256 {
    fn new() -> Sha256 {
        Sha256 { child: Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap() }
    }
    fn update(&mut self, data: &[u8]) {
        self.child.stdin.as_mut().unwrap().write_all(data).unwrap();
    }
    fn hex(mut self) -> String {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
    }
}

const MIB: usize = 1 << 20;
/// The bodies' size, and the most any process may grow while one passes.
const BIG: usize = 100 * MIB;
const GROWTH_LIMIT_KIB: u64 = 60 << 10;

/// The upload's bytes, in pieces of varying length (so that no boundary lines up with the
/// 64 KiB reads on either side): piece `k` is `len` bytes of a pattern that depends on `k`.
fn upload_pieces() -> impl Iterator<Item = Vec<u8>> {
    let mut sent = 0;
    (0usize..).map_while(move |k| {
        let len = (65536 - 4093 * (k % 13) + 17 * (k % 7)).min(BIG - sent);
        sent += len;
        (len > 0).then(|| (0..len).map(|i| ((i * 7 + k * 31) % 251) as u8).collect())
    })
}

fn status_kib(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix(key)?.trim_start_matches(':').split_whitespace().next()?.parse().ok()).unwrap()
}

/// The resident memory of the processes a body passes through, from a reset peak.
struct Peaks(Vec<(i32, u64)>);

impl Peaks {
    /// Resets the peak resident size (VmHWM; `clear_refs` 5, Linux 4.0) of each of `pids`
    /// and notes its current size.
    fn reset(pids: &[i32]) -> Peaks {
        Peaks(
            pids.iter()
                .map(|pid| {
                    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
                    (*pid, status_kib(*pid, "VmRSS"))
                })
                .collect(),
        )
    }

    /// Fails if a process's peak since [`Peaks::reset`] is [`GROWTH_LIMIT_KIB`] over its size then.
    fn assert_bounded(&self, what: &str) {
        for (pid, before) in &self.0 {
            let peak = status_kib(*pid, "VmHWM");
            let grown = peak.saturating_sub(*before);
            assert!(grown < GROWTH_LIMIT_KIB, "{what}: process {pid} grew by {grown} KiB (from {before} KiB to a peak of {peak} KiB)");
            eprintln!("{what}: process {pid} grew by {grown} KiB at most");
        }
    }
}

/// A response read off a kept-alive connection: exactly one, by its framing.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One client connection, for several requests.
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    fn open(apache: &Apache) -> Connection {
        let stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Connection { reader: BufReader::new(stream) }
    }

    fn send(&mut self, data: &[u8]) {
        self.reader.get_mut().write_all(data).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end().to_string()
    }

    /// Status and headers; the body is left to the caller.
    fn head(&mut self) -> (u16, Vec<(String, String)>) {
        let status_line = self.line();
        let status = status_line.split_whitespace().nth(1).unwrap_or_else(|| panic!("status line {status_line:?}")).parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                return (status, headers);
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }

    /// The next response, its body read by Content-Length or chunks (none for HEAD).
    fn reply(&mut self, head_only: bool) -> Reply {
        let (status, headers) = self.head();
        let mut reply = Reply { status, headers, body: Vec::new() };
        if head_only {
            return reply;
        }
        if reply.header("Transfer-Encoding").is_some_and(|v| v.contains("chunked")) {
            loop {
                let size = usize::from_str_radix(self.line().split(';').next().unwrap().trim(), 16).unwrap();
                if size == 0 {
                    assert_eq!(self.line(), "", "no trailers");
                    return reply;
                }
                let start = reply.body.len();
                reply.body.resize(start + size, 0);
                self.reader.read_exact(&mut reply.body[start..]).unwrap();
                assert_eq!(self.line(), "");
            }
        }
        let length: usize = reply.header("Content-Length").map(|v| v.parse().unwrap()).unwrap_or(0);
        reply.body.resize(length, 0);
        self.reader.read_exact(&mut reply.body).unwrap();
        reply
    }
}

#[test]
fn big_bodies_stream_through_a_daemon_in_bounded_memory() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let dir = TempDir::new("isolation-streams");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    let config = "WSGIRestrictEmbedded On\nWSGIChunkedRequest On\nWSGISocketPrefix {dir}/run/wsgi\n\
                  WSGIDaemonProcess big user=www-data threads=2\n\
                  WSGIScriptAlias / {dir}/app.wsgi process-group=big application-group=%{GLOBAL}\n";
    // One Apache child (the event MPM's config in the harness), so it is the one that forwards.
    let apache = Apache::start_in(dir, Mpm::Event, config);
    let daemon: i32 = json(&apache, "/id").get("pid").parse().unwrap();
    let mut pids = vec![daemon];
    pids.extend(apache.children().into_iter().filter(|p| *p != daemon));
    assert_eq!(pids.len(), 2, "one daemon and one Apache child: {pids:?}");

    // 100 MiB up, with a Content-Length, then chunked: the application hashes what it reads.
    for chunked in [false, true] {
        let what = if chunked { "chunked upload" } else { "upload" };
        let peaks = Peaks::reset(&pids);
        let mut connection = Connection::open(&apache);
        let framing = if chunked { "Transfer-Encoding: chunked".to_string() } else { format!("Content-Length: {BIG}") };
        connection.send(format!("POST /upload HTTP/1.1\r\nHost: localhost\r\n{framing}\r\n\r\n").as_bytes());
        let mut expected = Sha256::new();
        for piece in upload_pieces() {
            expected.update(&piece);
            if chunked {
                connection.send(format!("{:x}\r\n", piece.len()).as_bytes());
                connection.send(&piece);
                connection.send(b"\r\n");
            } else {
                connection.send(&piece);
            }
        }
        if chunked {
            connection.send(b"0\r\n\r\n");
        }
        let reply = connection.reply(false);
        assert_eq!(reply.status, 200, "{what}: {}\n{}", String::from_utf8_lossy(&reply.body), apache.error_log());
        let answer = Json::parse(&String::from_utf8_lossy(&reply.body));
        assert_eq!((answer.get("length").parse::<usize>().unwrap(), answer.get("sha256")), (BIG, expected.hex()), "{what}");
        assert_eq!(answer.get("pid").parse::<i32>().unwrap(), daemon);
        peaks.assert_bounded(what);
    }

    // 100 MiB down, hashed here as it arrives.
    let peaks = Peaks::reset(&pids);
    let mut connection = Connection::open(&apache);
    connection.send(format!("GET /download?{BIG} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes());
    let (status, headers) = connection.head();
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("Content-Length") && *v == BIG.to_string()), "{headers:?}");
    let (mut received, mut got) = (0, Sha256::new());
    let mut buffer = vec![0u8; MIB];
    loop {
        let n = connection.reader.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        got.update(&buffer[..n]);
        received += n;
    }
    let mut expected = Sha256::new();
    let block: Vec<u8> = (0..=255u8).collect::<Vec<u8>>().repeat(256);
    for _ in 0..BIG / block.len() {
        expected.update(&block);
    }
    assert_eq!(received, BIG);
    assert_eq!(got.hex(), expected.hex(), "download");
    peaks.assert_bounded("download");
    assert_eq!(json(&apache, "/id").get("pid").parse::<i32>().unwrap(), daemon, "the same daemon served it all");
}

#[test]
fn head_keep_alive_and_an_exception_through_a_daemon() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let config = "WSGIRestrictEmbedded On\nWSGISocketPrefix {dir}/run/wsgi\nKeepAlive On\n\
                  WSGIDaemonProcess web user=www-data threads=2 response-flush-delay=0\n\
                  WSGIScriptAlias / {dir}/app.wsgi process-group=web application-group=%{GLOBAL}\n";
    // response-flush-delay=0: each block the generator yields is flushed as it comes, so the
    // response is chunked (with the default delay, blocks that follow each other within it
    // are passed on together, and a short generated response may get a Content-Length).
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    for mpm in ALL_MPMS {
        let m = mpm.name();
        let dir = TempDir::new("isolation-http");
        dir.write("app.wsgi", APP);
        dir.write("run/.keep", "");
        let apache = Apache::start_in(dir, mpm, config);

        // One connection: a GET, a HEAD of the same, a chunked (generated) response, and a
        // last GET; a body sent for the HEAD, or a chunk too many, would show up where the next
        // status line should be.
        let mut connection = Connection::open(&apache);
        connection.send(get("/id").as_bytes());
        let first = connection.reply(false);
        assert_eq!(first.status, 200, "{m}");
        let daemon = first.header("X-Pid").unwrap().to_string();
        let id_length = first.body.len().to_string();
        assert_eq!(first.header("Content-Length"), Some(id_length.as_str()), "{m}");

        connection.send(b"HEAD /id HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let head = connection.reply(true);
        assert_eq!(head.status, 200, "{m}");
        assert_eq!(head.header("Content-Length"), Some(id_length.as_str()), "{m}: HEAD has GET's headers");
        assert_eq!(head.header("X-Pid"), Some(daemon.as_str()), "{m}");

        connection.send(get("/generated?500").as_bytes());
        let generated = connection.reply(false);
        assert_eq!(generated.status, 200, "{m}");
        assert_eq!(generated.header("Transfer-Encoding"), Some("chunked"), "{m}: {:?}", generated.headers);
        let expected: String = (0..500).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8_lossy(&generated.body), expected, "{m}");

        connection.send(get("/id").as_bytes());
        let last = connection.reply(false);
        assert_eq!(last.status, 200, "{m}: the fourth request on one connection");
        assert_eq!(last.body, first.body, "{m}");
        // Prefork's single child would otherwise wait for this connection's next request.
        drop(connection);

        // An exception: a 500, the traceback in the error log, and the daemon serves on.
        let response = apache.get("/raise");
        assert_eq!(response.status, 500, "{m}");
        let needle = format!("RuntimeError: boom from daemon {daemon}");
        let log = apache.wait_for_log(&needle);
        assert!(log.contains(&needle), "{m}: the exception in the log:\n{log}");
        assert!(log.contains("Traceback (most recent call last)"), "{m}: a traceback in the log:\n{log}");
        let response = apache.get("/id");
        assert_eq!(response.status, 200, "{m}");
        assert_eq!(response.header("X-Pid"), Some(daemon.as_str()), "{m}: the same daemon serves the next request");
    }
}
