//! A daemon's start-up: the file descriptors of Apache's parent that it must not keep.
//!
//! A daemon is forked from Apache's root parent, so it starts with every descriptor the
//! parent holds: each virtual host's error and access logs open for writing, both ends of
//! each piped logger's pipe (a reader there takes another site's access-log lines), the MPM's
//! pipe of death (one byte written to it stops a child that serves every site), the other
//! groups' listeners, and whatever the program that started Apache left open. The daemon
//! then runs a customer's code as the customer's user. mod_wsgi 4.9 closes Apache's listeners
//! and, in a virtual host's daemon only, the other hosts' error logs; everything else stays
//! open there. Here a daemon keeps its standard input and output, its group's error log (also
//! as standard error, so that what C code or Python writes there lands in that host's log),
//! and the descriptors it names; every other one is closed before the engine is loaded.

use super::super::apache;
use super::super::log;
use crate::abi::level;
use std::ffi::c_int;

/// Points every server record's error log at the group's server's log, makes that log
/// standard error too, then closes every descriptor from 3 up but `keep` and that log's.
///
/// Every record is repointed, not only left with a closed file: a line logged later against
/// another host (or the main server) must not be written to a descriptor number that a socket
/// or file of this process has reused by then. A host that logs to syslog has no file: then
/// standard error stays as Apache's parent had it (the main server's log, as in mod_wsgi) and
/// the others' files are pointed at it.
///
/// # Safety
/// Called in a freshly forked daemon while it is single-threaded and before Python or any
/// other thread runs: `main` is the configuration's first server record and the chain from it
/// (Apache's records, which nothing else is changing); `own` is the group's server, in that
/// chain; `pool` is a pool that outlives the process (pconf).
pub unsafe fn keep_only(
    main: *mut apache::server_rec,
    own: *mut apache::server_rec,
    pool: *mut apache::apr_pool_t,
    keep: &[c_int],
) -> Result<(), String> {
    // SAFETY: `own` is a live server record (the caller's contract).
    let own_log = unsafe { (*own).error_log };
    let mut kept: Vec<c_int> = keep.to_vec();
    kept.extend([0, 1, 2]);
    // glibc's syslog keeps its socket in a static, opened by Apache (LOG_NDELAY) for a host
    // that logs to syslog. It is kept: closed behind glibc's back, its number could be reused
    // and log lines sent to whatever then holds it, and a new one could not be opened inside
    // `chroot=`. Without one, closelog makes sure glibc holds no number at all.
    let syslog = syslog_sockets();
    if syslog.is_empty() {
        // SAFETY: single-threaded; closelog has no preconditions.
        unsafe { libc::closelog() };
    }
    kept.extend(syslog);
    let target = if own_log.is_null() {
        stderr_file(pool)?
    } else {
        let fd = file_descriptor(own_log)?;
        if fd != 2 {
            // SAFETY: both are descriptors of this process.
            if unsafe { libc::dup2(fd, 2) } < 0 {
                return Err(format!("cannot make the group's error log standard error: {}", std::io::Error::last_os_error()));
            }
        }
        kept.push(fd);
        own_log
    };
    let mut server = main;
    while !server.is_null() {
        // SAFETY: a record of the chain from `main`, changed only here, single-threaded.
        unsafe {
            if !(*server).error_log.is_null() {
                (*server).error_log = target;
            }
            server = (*server).next;
        }
    }
    close_all_but(&kept);
    Ok(())
}

/// This process's descriptors that are sockets connected to `/dev/log`: glibc's syslog
/// connection (from `/proc/self/fd`, read before any `chroot=`).
fn syslog_sockets() -> Vec<c_int> {
    // A socket's peer name is the path its server bound: journald binds
    // /run/systemd/journal/dev-log, to which /dev/log is a link.
    let mut paths: Vec<Vec<u8>> = vec![b"/dev/log".to_vec()];
    if let Ok(target) = std::fs::canonicalize("/dev/log") {
        paths.push(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec());
    }
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let fds: Vec<c_int> = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    fds.into_iter()
        .filter(|&fd| {
            // SAFETY: sockaddr_un is plain old data; getpeername writes at most `len` bytes.
            let mut peer: libc::sockaddr_un = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            // SAFETY: as above; a descriptor that is no socket (or gone) makes it fail.
            let named = unsafe { libc::getpeername(fd, (&mut peer as *mut libc::sockaddr_un).cast(), &mut len) } == 0;
            let path: Vec<u8> = peer.sun_path.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
            named && peer.sun_family == libc::AF_UNIX as libc::sa_family_t && paths.contains(&path)
        })
        .collect()
}

/// An APR file for standard error, in `pool`.
fn stderr_file(pool: *mut apache::apr_pool_t) -> Result<*mut apache::apr_file_t, String> {
    let mut file: *mut apache::apr_file_t = std::ptr::null_mut();
    let mut fd: c_int = 2;
    let flags = (apache::APR_FOPEN_WRITE | apache::APR_FOPEN_APPEND) as i32;
    // SAFETY: `file` and `fd` are valid out/in pointers; `pool` is a live pool (caller's contract).
    let status = unsafe { apache::apr_os_file_put(&mut file, &mut fd, flags, pool) };
    if status != 0 || file.is_null() {
        return Err(format!("cannot wrap standard error for the error log (APR status {status})"));
    }
    Ok(file)
}

/// The descriptor of an APR file.
fn file_descriptor(file: *mut apache::apr_file_t) -> Result<c_int, String> {
    let mut fd: c_int = -1;
    // SAFETY: `file` is a live APR file (a server's error log); `fd` is a valid out pointer.
    let status = unsafe { apache::apr_os_file_get(&mut fd, file) };
    if status != 0 || fd < 0 {
        return Err(format!("cannot read the group's error log's descriptor (APR status {status})"));
    }
    Ok(fd)
}

/// Closes every descriptor from 0 up that is not in `keep`: with `close_range` over the gaps
/// between the kept ones (Linux 5.9), else one by one up to the process's limit.
pub fn close_all_but(keep: &[c_int]) {
    let mut kept: Vec<u32> = keep.iter().filter(|&&fd| fd >= 0).map(|&fd| fd as u32).collect();
    kept.sort_unstable();
    kept.dedup();
    let mut gaps = Vec::new();
    let mut first = 0u32;
    for &fd in &kept {
        if fd > first {
            gaps.push((first, fd - 1));
        }
        first = fd + 1;
    }
    gaps.push((first, u32::MAX));
    for (from, to) in gaps {
        // SAFETY: close_range closes descriptors of this process only; the kept ones are
        // outside every range.
        // Any failure (ENOSYS before Linux 5.9, EPERM from a seccomp filter older than the
        // call) falls back to closing one by one, as CPython and systemd do.
        if unsafe { libc::syscall(libc::SYS_close_range, from, to, 0) } != 0 {
            close_one_by_one(from, to);
        }
    }
}

/// Without `close_range`: each descriptor of the range below the process's limit.
fn close_one_by_one(from: u32, to: u32) {
    // SAFETY: sysconf has no preconditions.
    let limit = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    let limit = if limit > 0 { limit.min(1 << 20) as u32 } else { 1 << 16 };
    for fd in from..=to.min(limit.saturating_sub(1)) {
        // SAFETY: closing a descriptor of this process that is not kept (EBADF for a free one).
        unsafe { libc::close(fd as c_int) };
    }
}

/// Logs, in the daemon, what was kept (LogLevel wsgi:debug).
pub fn log_kept(server: *mut apache::server_rec, name: &str) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
    let mut open: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            Some(format!("{}={}", e.file_name().to_string_lossy(), target.display()))
        })
        .collect();
    open.sort();
    log::server(level::DEBUG, server, &format!("Daemon process '{name}' keeps the descriptors {}.", open.join(", ")));
}

#[cfg(test)]
mod tests {
    use super::close_all_but;
    use std::os::fd::AsRawFd;

    /// In a forked child (the test process has other threads with their own descriptors):
    /// what is kept stays open, what is not is closed.
    #[test]
    fn closes_all_but_the_kept() {
        let a = std::fs::File::open("/dev/null").unwrap();
        let b = std::fs::File::open("/dev/null").unwrap();
        let c = std::fs::File::open("/dev/null").unwrap();
        let (a, b, c) = (a.as_raw_fd(), b.as_raw_fd(), c.as_raw_fd());
        // SAFETY: the child calls close_all_but, whose two small Vecs are safe to allocate
        // after fork with glibc (its fork resets malloc's locks in the child), then fcntl and
        // _exit; it never returns into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            close_all_but(&[0, 1, 2, b]);
            // SAFETY: fcntl on descriptor numbers; _exit ends the child.
            unsafe {
                let open = |fd| libc::fcntl(fd, libc::F_GETFD) >= 0;
                let code = if open(b) && !open(a) && !open(c) && open(2) { 0 } else { 1 };
                libc::_exit(code);
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status}");
    }
}
