//! The `WSGIDaemonProcess` options that shape a daemon's process, against a real Apache
//! started as root: its user, groups, umask, language and locale; its resource limits,
//! priority, stack and socket options; `header-buffer-size`, `script-user`, `socket-user`,
//! `response-socket-timeout`; what a daemon that cannot start, or cannot accept, does; and
//! the config errors of bad values.

mod common;

use common::daemon::*;
use common::*;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

/// Reports the daemon's start-up environment, and answers with headers as large as asked.
const ENV_APP: &str = r#"
import json, locale, os, resource, sys, threading, time

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/env':
        mask = os.umask(0)
        os.umask(mask)
        body = json.dumps({'umask': mask, 'lang': os.environ.get('LANG'), 'lc_all': os.environ.get('LC_ALL'),
                           'locale': locale.setlocale(locale.LC_ALL), 'gid': os.getgid(),
                           'groups': sorted(os.getgroups()), 'pid': os.getpid(),
                           'switch_interval': '%.4f' % sys.getswitchinterval(),
                           'path0': sys.path[0], 'cwd': os.getcwd()}).encode()
        headers = [('Content-Type', 'application/json')]
    elif path == '/choke':
        # No descriptor can be opened until a thread restores the limit: accept fails with
        # EMFILE meanwhile.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (3, hard))
        def restore():
            time.sleep(float(environ['QUERY_STRING']))
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        threading.Thread(target=restore).start()
        body = b'choked'
        headers = [('Content-Type', 'text/plain')]
    else:
        size = int(environ.get('QUERY_STRING') or '0')
        body = b'big headers'
        headers = [('Content-Type', 'text/plain'), ('X-Big', 'b' * size)]
    start_response('200 OK', headers + [('Content-Length', str(len(body)))])
    return [body]
"#;

/// Two groups beside each other: `set` with every environment option, `plain` without.
fn start_env_site(set_options: &str, plain_options: &str) -> Apache {
    let dir = TempDir::new("daemon-env");
    dir.write("env.wsgi", ENV_APP);
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess set {set_options}\nWSGIDaemonProcess plain {plain_options}\n\
         WSGIScriptAlias /set {{dir}}/env.wsgi process-group=set application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /plain {{dir}}/env.wsgi process-group=plain application-group=%{{GLOBAL}}\n"
    );
    Apache::start_in(dir, Mpm::Event, &config)
}

#[test]
fn umask_lang_locale_and_supplementary_groups_reach_the_application() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_env_site(
        "user=nobody umask=0027 lang=C.UTF-8 locale=C.UTF-8 supplementary-groups=staff,users switch-interval=0.002 home=/tmp",
        "user=nobody locale=xx_XX.no-such-locale",
    );
    let set = json(&apache, "/set/env");
    assert_eq!(set.get("switch_interval"), "0.0020", "switch-interval=0.002");
    assert_eq!(json(&apache, "/plain/env").get("switch_interval"), "0.0050", "Python's own");
    // home= is the working directory and, as mod_wsgi puts it, first on sys.path.
    assert_eq!((set.get("cwd").as_str(), set.get("path0").as_str()), ("/tmp", "/tmp"));
    assert_ne!(json(&apache, "/plain/env").get("path0"), "/tmp");
    assert_eq!(set.get("umask"), (0o027).to_string(), "umask=0027");
    assert_eq!((set.get("lang").as_str(), set.get("lc_all").as_str()), ("C.UTF-8", "C.UTF-8"), "LANG and LC_ALL");
    assert_eq!(set.get("locale"), "C.UTF-8", "setlocale(LC_ALL) before Python started");
    let nobody_gid = gid_of("nogroup");
    assert_eq!(set.get("gid"), nobody_gid.to_string());
    let mut expected = [nobody_gid, gid_of("staff"), gid_of("users")];
    expected.sort();
    let groups = format!("[{}]", expected.iter().map(u32::to_string).collect::<Vec<_>>().join(", "));
    assert_eq!(set.get("groups"), groups, "the group's gid and the supplementary groups, as mod_wsgi's setgroups");

    // Without the options: Apache's umask, and the user's groups.
    let plain = json(&apache, "/plain/env");
    assert_ne!(plain.get("umask"), (0o027).to_string());
    assert_eq!(plain.get("groups"), format!("[{nobody_gid}]"), "initgroups for nobody");
    assert_eq!(plain.get("lc_all"), "xx_XX.no-such-locale", "LC_ALL is set as given, as mod_wsgi does");
    // A locale the system lacks: mod_wsgi's warning, and the daemon serves anyway.
    let needle = "Unsupported locale setting 'xx_XX.no-such-locale' specified for daemon process group 'plain'";
    assert!(apache.wait_for_log(needle).contains(needle), "{}", apache.error_log());
    assert_no_crash(&apache);
}

#[test]
fn oversized_response_headers_are_a_500_that_names_header_buffer_size() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_env_site("user=nobody header-buffer-size=65536", "user=nobody");
    // 40000 bytes of one header: over the default 32768, under 65536.
    let response = apache.get("/plain/big?40000");
    assert_eq!(response.status, 500, "{}", response.text());
    let needle = "over its header-buffer-size of 32768 bytes";
    let log = apache.wait_for_log(needle);
    let line = log.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no header-buffer-size line:\n{log}"));
    assert!(line.contains("daemon process 'plain'") && line.contains("Raise header-buffer-size="), "{line}");
    let size: usize = line.split("A response header line of ").nth(1).and_then(|s| s.split(' ').next()?.parse().ok()).expect("the size needed");
    assert!((40000..41000).contains(&size), "{line}");
    assert!(line.contains("[client 127.0.0.1:"), "attributed to the request: {line}");
    // Small headers from the same daemon, and big ones from the group with room for them.
    assert_eq!(apache.get("/plain/big?100").status, 200);
    let response = apache.get("/set/big?40000");
    assert_eq!(response.status, 200, "{}", apache.error_log());
    assert_eq!(response.header("X-Big").map(str::len), Some(40000));
    assert_no_crash(&apache);
}

#[test]
fn a_group_whose_daemons_cannot_start_fails_requests_within_its_timeouts() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    // home= that does not exist: the daemon never accepts. A backlog of 0 queues one
    // connection; the second waits connect-timeout for room, the first socket-timeout for an
    // answer. Apache's Timeout (60 s) and the default connect-timeout (15 s) are both longer
    // than the bound below.
    let apache = start_env_site("user=nobody home=/nonexistent/home listen-backlog=0 connect-timeout=1 socket-timeout=2", "user=nobody");
    let started = Instant::now();
    let statuses: Vec<Result<u16, String>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..2).map(|_| scope.spawn(|| get_live(&apache, "/set/env").map(|r| r.status))).collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    assert_eq!(statuses, vec![Ok(503), Ok(503)], "{}", apache.error_log());
    assert!(elapsed < Duration::from_secs(9), "answered after {elapsed:?}: the timeouts were not applied");
    let needle = "Unable to connect to WSGI daemon process 'set' on '";
    let log = apache.wait_for_log(needle);
    let line = log.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no connect line:\n{log}"));
    assert!(line.contains("/run/wsgi.") && line.contains("connect-timeout is 1 s"), "{line}");
    assert!(log.contains("Daemon process 'set' did not take the request within 2 s"), "{log}");
    assert!(log.contains("Daemon process 'set' cannot start: Unable to change working directory"), "{log}");
    // The other group is not affected.
    assert_eq!(apache.get("/plain/env").status, 200);
    assert_no_crash(&apache);
}

#[test]
fn bad_environment_option_values_stop_the_config_test() {
    let cases = [
        ("WSGIDaemonProcess a header-buffer-size=100\n", "Header buffer size must be >= 8192 bytes, or 0 for default."),
        ("WSGIDaemonProcess a umask=0999\n", "Invalid umask for WSGI daemon process."),
        ("WSGIDaemonProcess a listen-backlog=-1\n", "Invalid listen backlog for WSGI daemon process."),
        ("WSGIDaemonProcess a connect-timeout=soon\n", "Invalid connect timeout for WSGI daemon process."),
        ("WSGIDaemonProcess a socket-timeout=-5\n", "Invalid socket timeout for WSGI daemon process."),
        ("WSGIDaemonProcess a supplementary-groups=no-such-group-here\n", "Invalid supplementary group 'no-such-group-here'"),
        ("WSGIDaemonProcess a maximum-requests-jitter=x\n", "Invalid request count jitter for WSGI daemon process."),
    ];
    for (body, expected) in cases {
        let (ok, output) = config_test(body);
        assert!(!ok, "{body} was accepted");
        assert!(output.contains(expected), "{body}: {output}");
    }
    let (ok, output) = config_test("WSGIDaemonProcess a umask=0027 lang=C.UTF-8 locale=C.UTF-8 listen-backlog=10 header-buffer-size=65536 connect-timeout=3 socket-timeout=4 maximum-requests-jitter=2\n");
    assert!(ok, "the options are accepted: {output}");
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = proc_file(pid, "stat");
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_daemon_out_of_descriptors_pauses_its_accept_loop() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_env_site("user=nobody threads=2", "user=nobody");
    let pid: i32 = json(&apache, "/set/env").get("pid").parse().unwrap();
    assert_eq!(apache.get("/set/choke?3").status, 200);
    let before = cpu_ticks(pid);
    // A new connection to each group's socket (Apache's child would send its requests over
    // the connection it kept from the requests above): 'set' cannot accept it for 3 s.
    let raw: Vec<_> = sockets(apache.dir.path()).iter().map(|path| std::os::unix::net::UnixStream::connect(path).unwrap()).collect();
    let log = apache.wait_for_log("Daemon process 'set' accepts connections again.");
    let spent = cpu_ticks(pid) - before;
    drop(raw);
    assert_eq!(json(&apache, "/set/env").get("pid"), pid.to_string(), "the same daemon serves on");
    // A spinning accept loop burns a core for the 3 s (about 300 ticks); the pauses, nothing.
    assert!(spent < 60, "the daemon used {spent} clock ticks while accept failed");
    let needle = "Daemon process 'set' cannot accept connections (Too many open files";
    assert_eq!(log.matches(needle).count(), 1, "logged once for the burst:\n{log}");
    assert!(log.contains("Daemon process 'set' accepts connections again."), "{log}");
    assert_no_crash(&apache);
}

const LIMITS_APP: &str = r#"
import ctypes, json, os, resource, socket, time

def _stack_size():
    # The worker thread's own stack, as pthread reports it (threading.stack_size() only
    # shows what Python would give the threads it starts).
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    libc.pthread_getattr_np.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    attr = ctypes.create_string_buffer(256)
    if libc.pthread_getattr_np(libc.pthread_self(), attr) != 0:
        return -1
    size = ctypes.c_size_t()
    libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
    libc.pthread_attr_destroy(attr)
    return size.value

def _listener_buffers():
    for fd in os.listdir('/proc/self/fd'):
        try:
            if not os.readlink('/proc/self/fd/' + fd).startswith('socket:'):
                continue
        except OSError:
            continue
        s = socket.fromfd(int(fd), socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                return [s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)]
        finally:
            s.close()
    return None

def application(environ, start_response):
    path = environ['PATH_INFO']
    if path == '/limits':
        body = json.dumps({'pid': os.getpid(), 'cpu': list(resource.getrlimit(resource.RLIMIT_CPU)),
                           'data': list(resource.getrlimit(resource.RLIMIT_DATA)),
                           'as': list(resource.getrlimit(resource.RLIMIT_AS)),
                           'nice': os.getpriority(os.PRIO_PROCESS, 0),
                           'eggs': os.environ.get('PYTHON_EGG_CACHE'), 'stack': _stack_size(),
                           'buffers': _listener_buffers()}).encode()
    elif path == '/big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return (b'z' * (1 << 20) for i in range(64))
    elif path == '/burn':
        end = time.process_time() + float(environ.get('QUERY_STRING') or '3')
        while time.process_time() < end:
            pass
        body = json.dumps({'pid': os.getpid()}).encode()
    else:
        body = b'script ran'
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
"#;

/// Groups `set` (with `set_options`) and `plain` (with `plain_options`) beside each other,
/// serving LIMITS_APP.
fn start_limits_site(set_options: &str, plain_options: &str) -> Apache {
    let dir = TempDir::new("daemon-limits");
    dir.write("limits.wsgi", LIMITS_APP);
    dir.write("run/.keep", "");
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess set {set_options}\nWSGIDaemonProcess plain {plain_options}\n\
         WSGIScriptAlias /set {{dir}}/limits.wsgi process-group=set application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /plain {{dir}}/limits.wsgi process-group=plain application-group=%{{GLOBAL}}\n"
    );
    Apache::start_in(dir, Mpm::Event, &config)
}

#[test]
fn resource_limits_priority_eggs_stack_and_socket_buffers_reach_the_daemon() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_limits_site(
        "user=nobody threads=3 python-eggs=/tmp/eggs-here stack-size=1048576 cpu-time-limit=600 shutdown-timeout=3 \
         cpu-priority=5 memory-limit=8589934592 virtual-memory-limit=17179869184 send-buffer-size=65536 receive-buffer-size=32768",
        "user=nobody threads=3",
    );
    let set = json(&apache, "/set/limits");
    let plain = json(&apache, "/plain/limits");
    assert_eq!(set.get("cpu"), "[600, 604]", "RLIMIT_CPU: the hard limit is 1 s + shutdown-timeout above, as mod_wsgi");
    assert_eq!(set.get("data"), "[8589934592, 8589934592]", "memory-limit= is RLIMIT_DATA");
    assert_eq!(set.get("as"), "[17179869184, 17179869184]", "virtual-memory-limit= is RLIMIT_AS");
    assert_eq!(set.get("nice"), "5", "cpu-priority=");
    assert_eq!(set.get("eggs"), "/tmp/eggs-here", "python-eggs= is PYTHON_EGG_CACHE");
    // Linux doubles what SO_SNDBUF/SO_RCVBUF are given, for its bookkeeping.
    assert_eq!(set.get("buffers"), "[131072, 65536]", "send-buffer-size= and receive-buffer-size= on the daemon socket");
    let stack: u64 = set.get("stack").parse().unwrap();
    assert!((1 << 20..=(1 << 20) + (64 << 10)).contains(&stack), "stack-size=1048576: the worker's stack is {stack} bytes");

    assert_eq!(plain.get("cpu"), "[-1, -1]", "no limit without the option");
    assert_eq!(plain.get("as"), "[-1, -1]");
    assert_eq!(plain.get("nice"), "0");
    assert_eq!(plain.get("eggs"), "null");
    assert_ne!(plain.get("buffers"), "[131072, 65536]");
    let stack: u64 = plain.get("stack").parse().unwrap();
    assert!(stack >= 8 << 20, "the default worker stack is 8 MiB: {stack}");
    assert_no_crash(&apache);
}

#[test]
fn cpu_time_limit_recycles_the_daemon_gracefully_after_its_request() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_limits_site("user=nobody threads=2 cpu-time-limit=1", "user=nobody");
    let first: i32 = json(&apache, "/set/limits").get("pid").parse().unwrap();
    // The soft limit (SIGXCPU) comes mid-request: the request finishes, then the process goes.
    let burned: i32 = json(&apache, "/set/burn?2").get("pid").parse().unwrap();
    assert_eq!(burned, first);
    let needle = "Exceeded CPU time limit; waiting for in-flight requests to complete in daemon process 'set'.";
    let log = apache.wait_for_log(needle);
    assert!(log.contains(needle), "{log}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next = first;
    while next == first && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(response) = get_live(&apache, "/set/limits") {
            if response.status == 200 {
                next = Json::parse(&response.text()).get("pid").parse().unwrap();
            }
        }
    }
    assert_ne!(next, first, "a new daemon serves after the limit");
    assert_no_crash(&apache);
}

#[test]
fn socket_user_owns_the_daemon_socket_instead_of_apaches_user() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_limits_site(&format!("user=nobody socket-user={USER}"), "user=nobody");
    let run = apache.dir.path().join("run");
    let owner_of = |id: usize| {
        let entry = std::fs::read_dir(&run)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(&format!(".{id}.sock")))
            .unwrap_or_else(|| panic!("no socket {id} in {}", run.display()));
        entry.metadata().unwrap().uid()
    };
    assert_eq!(owner_of(1), uid_of(USER), "socket-user= of the first group");
    assert_eq!(owner_of(2), uid_of("nobody"), "Apache's User owns the other group's socket");
    // As in mod_wsgi, an Apache child running as another user (here: not an ITK child) cannot
    // connect to it.
    let response = apache.get("/set/limits");
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(apache.wait_for_log("Permission denied").contains("Unable to connect to WSGI daemon process 'set'"), "{}", apache.error_log());
    assert_eq!(apache.get("/plain/limits").status, 200);
    assert_no_crash(&apache);
}

#[test]
fn script_user_refuses_scripts_owned_by_others_with_mod_wsgi_s_line() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let dir = TempDir::new("daemon-script-user");
    dir.write("run/.keep", "");
    let theirs = dir.write("theirs/app.wsgi", LIMITS_APP);
    let mine = dir.write("mine/app.wsgi", LIMITS_APP);
    let (uid, gid) = (uid_of(USER), gid_of("nogroup"));
    std::os::unix::fs::chown(&mine, Some(uid), Some(gid)).unwrap();
    std::os::unix::fs::chown(mine.parent().unwrap(), Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(mine.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let _ = theirs;
    let config = format!(
        "WSGIRestrictEmbedded On\nWSGISocketPrefix {{dir}}/run/wsgi\n\
         WSGIDaemonProcess owned user=nobody script-user={USER}\n\
         WSGIScriptAlias /mine {{dir}}/mine/app.wsgi process-group=owned application-group=%{{GLOBAL}}\n\
         WSGIScriptAlias /theirs {{dir}}/theirs/app.wsgi process-group=owned application-group=%{{GLOBAL}}\n"
    );
    let apache = Apache::start_in(dir, Mpm::Event, &config);
    let response = apache.get("/theirs/x");
    assert_eq!(response.status, 403, "{}", response.text());
    let needle = "WSGI script file owner 'root' does not match user required for daemon process.";
    assert!(apache.wait_for_log(needle).contains(needle), "{}", apache.error_log());
    let response = apache.get("/mine/x");
    assert_eq!((response.status, response.text().as_str()), (200, "script ran"), "{}", apache.error_log());
    assert_no_crash(&apache);
}

/// Reads a 64 MiB response only after `pause`: what arrives in all.
fn read_big_after(apache: &Apache, path: &str, pause: Duration) -> usize {
    let mut stream = send_head(apache, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    std::thread::sleep(pause);
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut total = 0;
    let mut buffer = vec![0u8; 1 << 16];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

#[test]
fn response_socket_timeout_bounds_writes_to_a_client_that_does_not_read() {
    if !is_root() {
        return eprintln!("skipped: needs root to switch users");
    }
    let apache = start_limits_site("user=nobody response-socket-timeout=1 response-buffer-size=65536", "user=nobody");
    let full = read_big_after(&apache, "/plain/big", Duration::from_secs(4));
    assert!(full > 64 << 20, "without the option the whole response arrives: {full}");
    let cut = read_big_after(&apache, "/set/big", Duration::from_secs(4));
    assert!(cut < 64 << 20, "the Apache child gave up writing after response-socket-timeout: {cut} bytes arrived");
    // The connection's own timeout is back for what follows.
    assert_eq!(json(&apache, "/set/limits").get("eggs"), "null");
    assert_no_crash(&apache);
}

#[test]
fn bad_limit_and_socket_option_values_stop_the_config_test() {
    let cases = [
        ("WSGIDaemonProcess a stack-size=0\n", "Invalid stack size for WSGI daemon process."),
        ("WSGIDaemonProcess a cpu-time-limit=-1\n", "Invalid CPU time limit for WSGI daemon process."),
        ("WSGIDaemonProcess a cpu-priority=high\n", "Invalid CPU priority for WSGI daemon process."),
        ("WSGIDaemonProcess a memory-limit=lots\n", "Invalid memory limit for WSGI daemon process."),
        ("WSGIDaemonProcess a virtual-memory-limit=-5\n", "Invalid virtual memory limit for WSGI daemon process."),
        ("WSGIDaemonProcess a send-buffer-size=100\n", "Send buffer size must be >= 512 bytes, or 0 for system default."),
        ("WSGIDaemonProcess a receive-buffer-size=x\n", "Invalid receive buffer size for WSGI daemon process."),
        ("WSGIDaemonProcess a response-buffer-size=4096\n", "Response buffer size must be >= 65536 bytes, or 0 for default."),
        ("WSGIDaemonProcess a response-socket-timeout=x\n", "Invalid response socket timeout for WSGI daemon process."),
        ("WSGIDaemonProcess a socket-user=no-such-user-here\n", "Invalid socket user for WSGI daemon process."),
        ("WSGIDaemonProcess a script-user=no-such-user-here\n", "Invalid script user for WSGI daemon process."),
        ("WSGIDaemonProcess a script-user=nobody script-group=nogroup\n", "Only one of script-user and script-group allowed."),
        ("WSGIDaemonProcess a chroot=srv\n", "Invalid chroot directory for WSGI daemon process."),
    ];
    for (body, expected) in cases {
        let (ok, output) = config_test(body);
        assert!(!ok, "{body} was accepted");
        assert!(output.contains(expected), "{body}: {output}");
    }
    let (ok, output) = config_test(
        "WSGIDaemonProcess a python-eggs=/tmp/e stack-size=524288 cpu-time-limit=5 cpu-priority=-2 memory-limit=0 \
         virtual-memory-limit=1000000000 socket-user=nobody send-buffer-size=0 receive-buffer-size=4096 response-buffer-size=0 \
         response-socket-timeout=9 script-group=nogroup newrelic-config-file=/etc/newrelic.ini newrelic-environment=prod\n",
    );
    assert!(ok, "the options are accepted: {output}");
    assert!(output.contains("newrelic-config-file and newrelic-environment ignored"), "one warning for the New Relic options: {output}");
}
