//! Apache's scoreboard in daemons: Apache's children have it mapped shared and writable, as
//! they must; a daemon, which runs an application (a customer's, on a shared host) as another
//! user, has no mapping there at all, unless its group has `server-metrics=On`, and then it is
//! read-only ("r--s"): a write faults. `mod_wsgi.server_metrics()` still reads it through the
//! read-only mapping, and is `None` without it. Daemons forked later (after a restart) are
//! confined the same way. Nor does a daemon keep any other shared memory it could write that
//! Apache's parent set up (modules' caches, slots and mutexes, the children's and the other
//! daemon groups' status boards): Apache's children have such mappings, a daemon only its own
//! group's status board. The maps are read by this test (root) from /proc/PID/maps.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// Reports its pid and the pids of `mod_wsgi.server_metrics()` (`None` without a scoreboard).
/// `?probe=ADDRESS` (hex; the start of the scoreboard's read-only mapping, in the group with
/// `server-metrics=On`): whether the scoreboard's limits are found in its first bytes (the
/// mapping is the scoreboard, and readable), and how a forked copy of this process that
/// writes the first byte (its own value back) ends (forked from the main interpreter: the
/// `on` group runs in `%{GLOBAL}`, as Python cannot fork from a sub-interpreter).
const APP: &str = r#"
import ctypes, os, struct, faulthandler, mod_wsgi

def probe(address, m):
    head = ctypes.string_at(address, 64)
    pair = struct.pack('ii', m['server_limit'], m['thread_limit'])
    found = any(head[i:i + 8] == pair for i in range(0, 57, 4))
    pid = os.fork()
    if pid == 0:
        try:
            faulthandler.disable()
            byte = ctypes.c_char.from_address(address)
            byte.value = byte.value
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        outcome = 'signal %d' % os.WTERMSIG(status)
    else:
        outcome = 'exit %d' % os.WEXITSTATUS(status)
    # The application cannot make it writable again (sealed): mprotect fails with EPERM.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = address & ~4095
    rc = libc.mprotect(page, 4096, 3)
    reprotect = 'ok' if rc == 0 else 'errno %d' % ctypes.get_errno()
    return ['limits_found=%s' % found, 'write=%s' % outcome, 'reprotect=%s' % reprotect]

def application(environ, start_response):
    m = mod_wsgi.server_metrics()
    lines = ['pid=%d' % os.getpid()]
    if m is None:
        lines.append('metrics=None')
    else:
        lines.append('metrics=%s' % ','.join(str(p['pid']) for p in m['processes'] if p['pid']))
    query = environ.get('QUERY_STRING', '')
    if query.startswith('probe=') and m is not None:
        lines.extend(probe(int(query[6:], 16), m))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return ['\n'.join(lines).encode()]
"#;

const CONFIG: &str = "WSGISocketPrefix {dir}/run/wsgi\n\
                      WSGIDaemonProcess on server-metrics=On threads=2\n\
                      WSGIDaemonProcess off threads=2\n\
                      WSGIScriptAlias /embedded {dir}/app.wsgi\n\
                      WSGIScriptAlias /on {dir}/app.wsgi process-group=on application-group=%{GLOBAL}\n\
                      WSGIScriptAlias /off {dir}/app.wsgi process-group=off\n";

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    start: u64,
    end: u64,
    perms: String,
    line: String,
}

fn maps(pid: i32) -> Vec<Mapping> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_else(|e| panic!("/proc/{pid}/maps: {e}"));
    text.lines()
        .map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next().unwrap().split_once('-').unwrap();
            Mapping {
                start: u64::from_str_radix(start, 16).unwrap(),
                end: u64::from_str_radix(end, 16).unwrap(),
                perms: fields.next().unwrap().to_string(),
                line: line.to_string(),
            }
        })
        .collect()
}

fn show(maps: &[Mapping]) -> String {
    maps.iter().map(|m| m.line.as_str()).collect::<Vec<_>>().join("\n")
}

/// What [`check`] found: the processes that answered, and the scoreboard's mapping.
struct Checked {
    on: i32,
    off: i32,
    child: i32,
    board: Mapping,
}

/// Checks the three kinds of process of `apache` (`when`: for the messages).
fn check(apache: &Apache, when: &str) -> Checked {
    let on = Report::get(apache, "/on");
    let off = Report::get(apache, "/off");
    let embedded = Report::get(apache, "/embedded");
    let (on_pid, off_pid, child) = (on.pid(), off.pid(), embedded.pid());
    let log = || apache.error_log();

    // The On daemon reads Apache's scoreboard, which lists this Apache child; Off reads none.
    let listed: Vec<i32> = on.field("metrics").split(',').filter(|p| !p.is_empty()).map(|p| p.parse().unwrap()).collect();
    assert!(listed.contains(&child), "{when}: the On daemon's server_metrics() lists Apache's child {child}: {listed:?}\n{}", log());
    assert_eq!(off.field("metrics"), "None", "{when}: the Off daemon has no scoreboard\n{}", log());
    assert_eq!(embedded.field("metrics"), "None", "{when}: WSGIServerMetrics is off in Apache's children");

    // The scoreboard: the On daemon's read-only shared mapping that Apache's child has, at the
    // same addresses, shared and writable.
    let (child_maps, on_maps, off_maps) = (maps(child), maps(on_pid), maps(off_pid));
    let candidates: Vec<&Mapping> = on_maps
        .iter()
        .filter(|m| m.perms == "r--s" && child_maps.iter().any(|c| c.start == m.start && c.end == m.end && c.perms == "rw-s"))
        .collect();
    assert_eq!(
        candidates.len(),
        1,
        "{when}: one read-only shared mapping of the On daemon (pid {on_pid}) is a writable one of Apache's child (pid {child}):\n\
         daemon:\n{}\nchild:\n{}\n{}",
        show(&on_maps),
        show(&child_maps),
        log()
    );
    let board = candidates[0].clone();

    // It is the scoreboard (its limits are in its first bytes), readable, and a write faults.
    let probe = Report::get(apache, &format!("/on?probe={:x}", board.start));
    assert_eq!(probe.pid(), on_pid, "{when}: the same On daemon answers");
    assert_eq!(probe.field("limits_found"), "True", "{when}: the mapping {} holds the scoreboard's limits", board.line);
    assert_eq!(probe.field("write"), format!("signal {}", libc::SIGSEGV), "{when}: writing to the read-only scoreboard faults");
    assert_eq!(
        probe.field("reprotect"),
        format!("errno {}", libc::EPERM),
        "{when}: the application cannot make the scoreboard writable again (sealed)"
    );

    // The Off daemon has no shared mapping there (the range, once unmapped, may be reused for
    // the daemon's own private memory, such as Python's).
    let overlapping: Vec<Mapping> =
        off_maps.iter().filter(|m| m.start < board.end && m.end > board.start && m.perms.ends_with('s')).cloned().collect();
    assert!(
        overlapping.is_empty(),
        "{when}: the Off daemon (pid {off_pid}) has no shared mapping at the scoreboard's {:x}-{:x}:\n{}\n{}",
        board.start,
        board.end,
        show(&overlapping),
        log()
    );
    Checked { on: on_pid, off: off_pid, child, board }
}

/// `config` after [`CONFIG`].
fn start(mpm: Mpm, config: &str) -> Apache {
    let dir = TempDir::new("scoreboard-protection");
    dir.write("app.wsgi", APP);
    dir.write("run/.keep", "");
    Apache::start_in(dir, mpm, &format!("{CONFIG}{config}"))
}

#[test]
fn daemons_have_no_scoreboard_or_a_read_only_one() {
    if !is_root() {
        return eprintln!("skipped: needs root to read other users' /proc/PID/maps and switch users");
    }
    for mpm in ALL_MPMS {
        let apache = start(mpm, "");
        check(&apache, mpm.name());
        assert!(!apache.error_log().contains("cannot start"), "{}: no daemon failed to start\n{}", mpm.name(), apache.error_log());
    }
}

#[test]
fn daemons_forked_after_a_graceful_restart_are_confined_too() {
    if !is_root() {
        return eprintln!("skipped: needs root to read other users' /proc/PID/maps and switch users");
    }
    let apache = start(Mpm::Event, SHARED_MEMORY_MODULES);
    let Checked { on, off, .. } = check(&apache, "first start");
    no_shared_writable_memory(&apache, "first start", on, off);
    // SAFETY: signals only the Apache parent this test started.
    unsafe { libc::kill(apache.pid(), libc::SIGUSR1) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = |path: &str| try_http(apache.port, "GET", path, &[], b"").ok().filter(|r| r.status == 200).map(|r| Report(r.text()).pid());
    while Instant::now() < deadline && (answer("/on").is_none_or(|p| p == on) || answer("/off").is_none_or(|p| p == off)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let Checked { on: on_after, off: off_after, .. } = check(&apache, "after a graceful restart");
    no_shared_writable_memory(&apache, "after a graceful restart", on_after, off_after);
    assert!(on_after != on && off_after != off, "new daemons serve after the graceful restart\n{}", apache.error_log());
}

/// Modules that create shared memory in Apache's parent: mod_proxy_balancer's worker slots
/// (mod_slotmem_shm) and its mutex, and mod_authn_socache's cache (mod_socache_shmcb, the
/// provider of mod_ssl's session cache) and its mutex. The balancer's one member has nothing
/// listening (the discard port).
const SHARED_MEMORY_MODULES: &str = "\
    LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so\n\
    LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so\n\
    LoadModule proxy_balancer_module /usr/lib/apache2/modules/mod_proxy_balancer.so\n\
    LoadModule slotmem_shm_module /usr/lib/apache2/modules/mod_slotmem_shm.so\n\
    LoadModule lbmethod_byrequests_module /usr/lib/apache2/modules/mod_lbmethod_byrequests.so\n\
    LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so\n\
    LoadModule authn_socache_module /usr/lib/apache2/modules/mod_authn_socache.so\n\
    LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so\n\
    AuthnCacheSOCache shmcb\n\
    AuthnCacheEnable\n\
    <Proxy balancer://b>\n  BalancerMember http://127.0.0.1:9\n</Proxy>\n\
    ProxyPass /balanced balancer://b/\n";

/// `rw-s`, or any other shared mapping that can be written.
fn shared_writable(m: &&Mapping) -> bool {
    m.perms.as_bytes()[1] == b'w' && m.perms.ends_with('s')
}

/// Each daemon (`on`, `off`: their pids) has one shared writable mapping only, its own group's
/// status board (the first slot of which is its own: its pid is there), not the other's, and
/// each logged what it unmapped.
fn no_shared_writable_memory(apache: &Apache, when: &str, on: i32, off: i32) {
    let mut boards = Vec::new();
    for (group, pid) in [("on", on), ("off", off)] {
        let daemon_maps = maps(pid);
        let left: Vec<Mapping> = daemon_maps.iter().filter(shared_writable).cloned().collect();
        let context = format!(
            "{when}: the daemon of group '{group}' (pid {pid}):\n{}\nall of its mappings:\n{}\n{}",
            show(&left),
            show(&daemon_maps),
            apache.error_log()
        );
        assert_eq!(left.len(), 1, "one shared writable mapping, its group's status board: {context}");
        assert_eq!(first_i32(pid, left[0].start), pid, "the mapping is a status board with its slot: {context}");
        boards.push(left[0].start);
        let line = format!("mod_wsgi (pid={pid}): Daemon process '{group}' unmapped ");
        let log = apache.wait_for_log(&line);
        assert!(log.contains(&line), "{when}: the daemon of group '{group}' says what it unmapped ({line}...)\n{log}");
    }
    assert_ne!(boards[0], boards[1], "{when}: each daemon group has a board of its own");
}

/// The i32 at `address` in process `pid` (read as root through /proc/PID/mem): a status board's
/// first field is its first slot's pid.
fn first_i32(pid: i32, address: u64) -> i32 {
    use std::io::{Read, Seek};
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    mem.seek(std::io::SeekFrom::Start(address)).unwrap();
    let mut bytes = [0u8; 4];
    mem.read_exact(&mut bytes).unwrap();
    i32::from_ne_bytes(bytes)
}

/// Apache's children have shared writable memory besides the scoreboard (the modules'); the
/// daemons, whether they read the scoreboard or not, have none but their group's status
/// board, serve, and say what they unmapped; the balancer still works in Apache's children.
#[test]
fn daemons_inherit_no_shared_writable_memory() {
    if !is_root() {
        return eprintln!("skipped: needs root to read other users' /proc/PID/maps and switch users");
    }
    for mpm in ALL_MPMS {
        let apache = start(mpm, SHARED_MEMORY_MODULES);
        let when = mpm.name();
        let Checked { on, off, child, board } = check(&apache, when);
        let child_maps = maps(child);
        let others: Vec<&Mapping> = child_maps.iter().filter(shared_writable).filter(|m| m.start != board.start).collect();
        assert!(
            !others.is_empty(),
            "{when}: Apache's child (pid {child}) has shared writable memory besides the scoreboard ({}), else this test proves nothing:\n{}",
            board.line,
            show(&child_maps)
        );
        no_shared_writable_memory(&apache, when, on, off);
        let r = apache.get("/balanced/");
        assert!(
            r.status == 503 || r.status == 502,
            "{when}: the balancer answers for its unreachable member: {} {}\n{}",
            r.status,
            r.text(),
            apache.error_log()
        );
        let again = Report::get(&apache, "/embedded");
        assert_eq!(again.pid(), child, "{when}: the same Apache child serves after the proxy request\n{}", apache.error_log());
        assert!(!apache.error_log().contains("cannot start"), "{when}: no daemon failed to start\n{}", apache.error_log());
    }
}
