//! Apache's processes read through `/proc`: an Apache's children, and whether they still hold
//! a connection being closed, so that a stop waits for those (httpd's event MPM can crash a
//! child stopped while it closes one; see
//! [`Apache::wait_for_closing_connections`](super::Apache::wait_for_closing_connections)).

use std::time::{Duration, Instant};

/// The processes whose parent is `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string)))
                .flatten()
                .and_then(|ppid| ppid.parse::<i32>().ok())
                == Some(parent)
        })
        .collect()
}

/// [`Apache::wait_for_closing_connections`](super::Apache::wait_for_closing_connections) for an Apache whose parent is `parent` (one that
/// `mod_wsgi-express` started).
pub fn wait_for_closing_connections_of(parent: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && children_of(parent).into_iter().any(closing_connection) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether process `pid` has a TCP connection being closed open: a socket descriptor that the
/// kernel lists in a closing state, or no longer lists at all (closed by the peer after our
/// shutdown, while the descriptor is still open). Listening sockets and other socket families
/// do not count. A process whose descriptors cannot be read has none.
fn closing_connection(pid: i32) -> bool {
    // TCP states in /proc/net/tcp: FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT,
    // LAST_ACK, CLOSING.
    const CLOSING: [u8; 7] = [0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0B];
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    let sockets: Vec<u64> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect();
    if sockets.is_empty() {
        return false;
    }
    // (inode, state) of each row of a /proc/net table, given the column of its inode; the
    // state is only meaningful for TCP.
    let table = |name: &str, inode_field: usize| -> Vec<(u64, u8)> {
        std::fs::read_to_string(format!("/proc/net/{name}"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                Some((fields.get(inode_field)?.parse().ok()?, u8::from_str_radix(fields.get(3)?, 16).unwrap_or(0)))
            })
            .collect()
    };
    let tcp: Vec<(u64, u8)> = [table("tcp", 9), table("tcp6", 9)].concat();
    let others: Vec<u64> =
        [table("unix", 6), table("udp", 9), table("udp6", 9), table("netlink", 9)].concat().into_iter().map(|(inode, _)| inode).collect();
    sockets.iter().any(|inode| match tcp.iter().find(|(i, _)| i == inode) {
        Some((_, state)) => CLOSING.contains(state),
        None => !others.contains(inode),
    })
}
