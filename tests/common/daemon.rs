//! Helpers of the daemon-mode tests (`tests/daemon*.rs`): the user daemons run as, processes
//! read through `/proc`, raw HTTP that tells a response cut short from a whole one.

use super::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The daemons' user: an unprivileged account every Debian system has.
pub const USER: &str = "www-data";

/// Lines that mean a process crashed: any of them fails a test.
pub const CRASH_LINES: [&str; 5] = ["Segmentation fault", "Fatal Python error", "exit signal", "AH00052", "panicked"];

pub fn assert_no_crash(apache: &Apache) {
    let log = apache.error_log();
    for marker in CRASH_LINES {
        assert!(!log.contains(marker), "crash line '{marker}' in the error log:\n{log}");
    }
}

pub fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Every file under `dir` whose name ends in `.sock`.
pub fn sockets(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(sockets(&path));
        } else if path.to_string_lossy().ends_with(".sock") {
            found.push(path);
        }
    }
    found
}

pub fn proc_file(pid: i32, name: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/{name}")).unwrap_or_default()).into_owned()
}

pub fn process_uid(pid: i32) -> Option<u32> {
    proc_file(pid, "status").lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next()?.parse().ok())
}

pub fn is_gone(pid: i32) -> bool {
    // A zombie still has a /proc entry, but its state is Z.
    let stat = proc_file(pid, "stat");
    stat.is_empty() || stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

/// The bound on each request that must not be held up: a liveness limit, not a timing.
pub const LIVENESS: Duration = Duration::from_secs(10);

/// Opens a connection and sends `head` (a whole request head), leaving the response unread.
pub fn send_head(apache: &Apache, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", apache.port)).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// Reads until the server closes the connection; an error if that takes over [`LIVENESS`].
pub fn read_to_close(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    stream.set_read_timeout(Some(LIVENESS)).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("{e} after {} bytes", raw.len()))?;
    Ok(raw)
}

/// GET `path`, answered within [`LIVENESS`] or an error.
pub fn get_live(apache: &Apache, path: &str) -> Result<Response, String> {
    let mut stream = send_head(apache, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
    let raw = read_to_close(&mut stream)?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(format!("no response ({} bytes)", raw.len()));
    }
    Ok(parse_response(&raw, false))
}

pub fn gid_of(group: &str) -> u32 {
    let out = Command::new("getent").args(["group", group]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split(':').nth(2).and_then(|g| g.trim().parse().ok()).unwrap_or_else(|| panic!("no group {group}"))
}
