//! Inside a daemon: which worker thread serves which connection. Apache's children keep
//! their connections to a daemon open between requests (`pool.rs`), so a daemon holds two
//! kinds: new ones on its listening socket, and parked ones, open and idle, that carry the
//! next hello when a child reuses them. One epoll set holds the listener, every parked
//! connection and the stop pipe; idle workers all wait in it and the kernel wakes one per
//! ready connection (`EPOLLONESHOT`), so no worker waits for a turn behind another and a
//! thousand idle connections cost no thread.
//!
//! A connection is parked only after a request ended cleanly on it; a stop shuts down every
//! parked connection at once (the child sees it closed before sending, or before the
//! daemon's READY, and sends the request on a new connection: see `client.rs`), and from
//! then on nothing is accepted or taken.
//!
//! Locks: `parked` is held only for map and epoll updates, never across a blocking call or
//! Python.
//!
//! A connection's epoll key is its own number, never reused (not its descriptor): an event
//! that a worker dequeued just before the connection was shut down and closed cannot find
//! another connection that got the same descriptor since.

use super::super::apache;
use super::super::log;
use std::collections::HashMap;
use std::ffi::c_int;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// epoll keys besides connections' own (which count up from 0).
const STOP: u64 = u64::MAX;
const LISTENER: u64 = u64::MAX - 1;
/// How long a worker rests after `accept` failed for want of descriptors or memory.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A connection from an Apache child.
pub(super) struct Connection {
    /// Shared with the request's `Conn` while a request runs on it; parked only once that
    /// is gone again.
    pub(super) stream: Arc<UnixStream>,
    /// It served a request before: a close before the next hello is the child's normal way
    /// of letting it go, not a refusal to log.
    pub(super) reused: bool,
    /// In the epoll set (disarmed while a worker has it).
    registered: bool,
    /// Its epoll key.
    key: u64,
}

/// Parked connections by key, and whether the process stopped taking requests.
#[derive(Default)]
struct Parked {
    stopping: bool,
    connections: HashMap<u64, Connection>,
    /// The next connection's key.
    next_key: u64,
}

pub(super) struct Dispatch {
    epoll: OwnedFd,
    listener: c_int,
    stop_write: c_int,
    parked: Mutex<Parked>,
    /// Connections a worker has taken and not yet parked or closed (see [`Active`]).
    active: Arc<AtomicUsize>,
    /// `accept` is failing for want of descriptors or memory (logged once per run).
    starved: AtomicBool,
    /// `threads=`: the most connections parked and taken together that the process keeps
    /// (see [`Dispatch::may_keep`]).
    threads: usize,
    /// The I/O timeout set on each new connection (`socket-timeout=`, else `Timeout`).
    socket_timeout: Option<Duration>,
    name: Arc<str>,
    server: *mut apache::server_rec,
}

// SAFETY: the server record is read-only configuration; everything else is Sync.
unsafe impl Send for Dispatch {}
// SAFETY: as above.
unsafe impl Sync for Dispatch {}

/// One connection a worker has (new or reused), counted until it is parked or closed.
pub(super) struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Dispatch {
    /// The epoll set over `listener` (non-blocking) and the stop pipe's read end.
    pub(super) fn new(
        listener: c_int,
        stop: (c_int, c_int),
        threads: usize,
        socket_timeout: Option<Duration>,
        name: Arc<str>,
        server: *mut apache::server_rec,
    ) -> std::io::Result<Dispatch> {
        // SAFETY: creates a new descriptor, owned below.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(epoll) };
        // Level-triggered, not one-shot: once written, every waiting worker sees it.
        ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, stop.0, libc::EPOLLIN as u32, STOP)?;
        ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, listener, (libc::EPOLLIN | libc::EPOLLONESHOT) as u32, LISTENER)?;
        Ok(Dispatch {
            epoll,
            listener,
            stop_write: stop.1,
            parked: Mutex::new(Parked::default()),
            active: Arc::new(AtomicUsize::new(0)),
            starved: AtomicBool::new(false),
            threads,
            socket_timeout,
            name,
            server,
        })
    }

    /// Connections taken and not yet given back.
    pub(super) fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Once this returns, every connection taken before the stop is counted in
    /// [`Dispatch::active`]: a worker counts its connection under the lock a stop takes.
    pub(super) fn barrier(&self) {
        drop(self.parked.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The next connection with a request for this worker (a new one, or a parked one that
    /// became readable), or `None` once the process is stopping.
    pub(super) fn next(&self) -> Option<(Connection, Active)> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        loop {
            // SAFETY: waits for one event into a local.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, -1) };
            if n < 0 {
                let error = std::io::Error::last_os_error();
                if error.raw_os_error() != Some(libc::EINTR) {
                    // Not expected with a valid set; a pause rather than a spin meanwhile.
                    log::server(log::ERR, self.server, &format!("Daemon process '{}' cannot wait for requests ({error}).", self.name));
                    std::thread::sleep(ACCEPT_RETRY);
                }
                continue;
            }
            if n == 0 {
                continue;
            }
            match event.u64 {
                STOP => return None,
                LISTENER => match self.accept() {
                    Accepted::Connection(taken) => return Some(taken),
                    Accepted::Stopping => return None,
                    Accepted::Nothing => continue,
                },
                key => {
                    let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
                    // Absent: shut down (a stop, or a surplus) since the event fired.
                    let Some(mut connection) = parked.connections.remove(&key) else { continue };
                    connection.reused = true;
                    return Some((connection, self.enter()));
                }
            }
        }
    }

    fn enter(&self) -> Active {
        self.active.fetch_add(1, Ordering::SeqCst);
        Active(self.active.clone())
    }

    /// Accepts one connection (the listener is re-armed for the next worker at once).
    fn accept(&self) -> Accepted {
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        if parked.stopping {
            return Accepted::Stopping;
        }
        // SAFETY: accepts from our non-blocking listener; the new socket is blocking.
        let fd = unsafe { libc::accept4(self.listener, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
        if fd < 0 {
            let error = std::io::Error::last_os_error();
            drop(parked);
            if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)) {
                // The connection stays queued and epoll says so again at once: without a
                // pause this would spin.
                if !self.starved.swap(true, Ordering::Relaxed) {
                    log::server(
                        log::ERR,
                        self.server,
                        &format!(
                            "Daemon process '{}' cannot accept connections ({error}); retrying every {} ms.",
                            self.name,
                            ACCEPT_RETRY.as_millis()
                        ),
                    );
                }
                std::thread::sleep(ACCEPT_RETRY);
            }
            // EAGAIN (another daemon of the group took it), EINTR, ECONNABORTED: wait again.
            self.arm_listener();
            return Accepted::Nothing;
        }
        let active = self.enter();
        let key = parked.next_key;
        parked.next_key += 1;
        // A thread for each connection kept and each taken: the new one takes the place of
        // a kept one if need be, whose child then connects anew, to any process with a
        // thread free, rather than queue its next request behind this process's busy ones.
        let surplus = (parked.connections.len() + self.active()).saturating_sub(self.threads);
        let shed: Vec<u64> = parked.connections.keys().copied().take(surplus).collect();
        let shed: Vec<Connection> = shed.iter().filter_map(|key| parked.connections.remove(key)).collect();
        drop(parked);
        for connection in &shed {
            let _ = connection.stream.shutdown(std::net::Shutdown::Both);
        }
        drop(shed);
        self.arm_listener();
        if self.starved.swap(false, Ordering::Relaxed) {
            log::server(crate::abi::level::NOTICE, self.server, &format!("Daemon process '{}' accepts connections again.", self.name));
        }
        // SAFETY: a freshly accepted socket that nothing else owns.
        let stream = unsafe { UnixStream::from_raw_fd(fd) };
        // Set once: a reused connection keeps them (the hello is read with poll, see
        // process.rs, so that nothing changes them per request).
        let _ = stream.set_read_timeout(self.socket_timeout);
        let _ = stream.set_write_timeout(self.socket_timeout);
        Accepted::Connection((Connection { stream: Arc::new(stream), reused: false, registered: false, key }, active))
    }

    fn arm_listener(&self) {
        // A failure here would leave the listener disarmed for good: log it (it does not
        // happen with a valid epoll set and listener).
        if let Err(e) = ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_MOD, self.listener, (libc::EPOLLIN | libc::EPOLLONESHOT) as u32, LISTENER) {
            log::server(log::ERR, self.server, &format!("Daemon process '{}' cannot wait for connections ({e}).", self.name));
        }
    }

    /// Whether the connection of a request about to end (still counted active) may be parked
    /// for its child's next request: not when stopping, nor when the process would then keep
    /// more connections than it has threads. The bound keeps a group's processes evenly
    /// loaded: a child's connections beyond it are closed, and its next request connects
    /// anew, to whichever process has a thread free to accept it, where kept connections
    /// alone would pin each child's load to the processes it first reached.
    pub(super) fn may_keep(&self) -> bool {
        let parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        !parked.stopping && parked.connections.len() + self.active() <= self.threads
    }

    /// Gives back a connection whose request ended cleanly: it waits for the child's next
    /// hello in the epoll set, or is closed if the process is stopping.
    pub(super) fn park(&self, mut connection: Connection) {
        if Arc::strong_count(&connection.stream) != 1 {
            // Something (a monitor's abort) still holds it: not safe to hand to a new request.
            return;
        }
        let fd = connection.stream.as_raw_fd();
        let key = connection.key;
        let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
        if parked.stopping {
            return;
        }
        let op = if connection.registered { libc::EPOLL_CTL_MOD } else { libc::EPOLL_CTL_ADD };
        connection.registered = true;
        // In the map before it is armed: the worker its event wakes must find it.
        parked.connections.insert(key, connection);
        let events = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32;
        if ctl(self.epoll.as_raw_fd(), op, fd, events, key).is_err() {
            // Closed rather than left where no event will ever find it.
            parked.connections.remove(&key);
        }
    }

    /// Stops taking requests: nothing more is accepted, every parked connection is shut down
    /// (its child sends its next request elsewhere) and every waiting worker wakes to end.
    /// Idempotent.
    pub(super) fn stop(&self) {
        let connections = {
            let mut parked = self.parked.lock().unwrap_or_else(|e| e.into_inner());
            parked.stopping = true;
            std::mem::take(&mut parked.connections)
        };
        for connection in connections.values() {
            let _ = connection.stream.shutdown(std::net::Shutdown::Both);
        }
        drop(connections);
        // SAFETY: writes one byte to our own non-blocking pipe.
        unsafe { libc::write(self.stop_write, b"x".as_ptr().cast(), 1) };
    }
}

enum Accepted {
    Connection((Connection, Active)),
    Stopping,
    Nothing,
}

fn ctl(epoll: c_int, op: c_int, fd: c_int, events: u32, key: u64) -> std::io::Result<()> {
    let mut event = libc::epoll_event { events, u64: key };
    // SAFETY: a valid epoll set and descriptor, and an initialised event.
    if unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
