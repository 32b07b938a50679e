//! What a daemon must not inherit from Apache's parent: shared memory it could write.
//!
//! Apache's parent (root) sets up shared memory for its children before it forks them, and a
//! daemon, forked by the same parent, inherits every mapping of it: mod_ssl's session cache
//! (mod_socache_shmcb: the TLS session secrets of every site), mod_slotmem_shm's slots (the
//! proxy balancers' state), the process-shared mutexes of the MPM (its accept mutex) and of
//! modules (a daemon that took one and kept it would stall every Apache child), mod_status's
//! and other modules' memory. A daemon runs an application, often a customer's under the
//! customer's user, and needs none of it. So right after its fork, once the scoreboard is
//! confined (`scoreboard.rs`), still root, single-threaded and before Python, it unmaps every
//! shared mapping it could write, whatever backs it: anonymous memory, `/dev/zero`, a file
//! under Apache's runtime directory or `/dev/shm`, SysV shared memory (`SYSV...`).
//!
//! "Could write" is the kernel's word for it (`mw`, may-write, in `/proc/self/smaps`): a
//! mapping shown read-only (`r--s`) whose file was opened for writing can be `mprotect`ed
//! writable again, so it goes too. What stays: read-only shared mappings that cannot become
//! writable (glibc's nscd cache), the scoreboard of `server-metrics=On` (sealed read-only by
//! then: `sl`), the daemon's own group's status board (`metrics::board`: written only by the
//! daemons of its group, read by Apache's children as untrusted), and private memory, the
//! daemon's own copy of the parent's.
//! If one cannot be unmapped, the daemon does not run the application (fail safe).

use super::super::log;
use super::super::scoreboard::{mappings, read_proc_self, Mapping};
use super::supervisor::Group;
use crate::abi::level;
use std::ffi::c_void;

/// What is being looked for, in the messages.
const WHAT: &str = "the shared memory inherited from Apache's parent";

/// In a daemon right after its fork (single-threaded, before it drops privileges or loads
/// Python), after the scoreboard's confinement: unmaps every shared writable mapping but
/// `keep` (its group's status board, which only its group writes: `metrics::board`), logs
/// how many (INFO, with their sizes and backing) and each one (DEBUG). An error says which
/// could not be unmapped, and the caller must not go on to run the application.
pub fn unmap_shared_writable(group: &Group, keep: Option<(usize, usize)>) -> Result<(), String> {
    let kept = |m: &Mapping| keep.is_some_and(|(start, end)| m.start >= start && m.end <= end);
    let maps = read_proc_self("smaps", WHAT)?;
    let removed: Vec<Mapping> = shared_writable(&maps).into_iter().filter(|m| !kept(m)).collect();
    for mapping in &removed {
        // SAFETY: the range is exactly one mapping of this process, shared memory that Apache's
        // parent set up for its MPM and modules, whose code never runs in a daemon; this
        // process is single-threaded, and nothing of ours points into it.
        if unsafe { libc::munmap(mapping.start as *mut c_void, mapping.end - mapping.start) } != 0 {
            return Err(format!("cannot unmap {WHAT} at {}: {}", describe(mapping), std::io::Error::last_os_error()));
        }
    }
    // Checked, not assumed: what the kernel now says.
    let now = read_proc_self("smaps", WHAT)?;
    let left: Vec<Mapping> = shared_writable(&now).into_iter().filter(|m| !kept(m)).collect();
    if !left.is_empty() {
        return Err(format!("{WHAT} is still mapped writable after munmap: {}", left.iter().map(describe).collect::<Vec<_>>().join(", ")));
    }
    for mapping in &removed {
        log::server(level::DEBUG, group.server, &format!("Daemon process '{}' unmapped {}.", group.spec.name, describe(mapping)));
    }
    log::server(level::INFO, group.server, &format!("Daemon process '{}' unmapped {}.", group.spec.name, summary(&removed)));
    Ok(())
}

/// The mappings of `smaps` (a `/proc/self/smaps` text, or a `/proc/self/maps` one, which has
/// no flags) that are shared and writable now (`?w?s`) or may be made so (`mw` among their
/// `VmFlags`), unless sealed (`sl`).
fn shared_writable(smaps: &str) -> Vec<Mapping<'_>> {
    let mut found = Vec::new();
    let mut current: Option<(Mapping<'_>, &str)> = None;
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if let Some((_, seen)) = current.as_mut() {
                *seen = flags;
            }
        } else if let Some(mapping) = mappings(line).next() {
            found.extend(current.replace((mapping, "")).filter(|(m, flags)| may_write(m, flags)).map(|(m, _)| m));
        }
    }
    found.extend(current.filter(|(m, flags)| may_write(m, flags)).map(|(m, _)| m));
    found
}

/// Shared, writable or `mw`, and not sealed.
fn may_write(m: &Mapping, flags: &str) -> bool {
    let flags: Vec<&str> = flags.split_whitespace().collect();
    m.perms[3] == b's' && (m.perms[1] == b'w' || flags.contains(&"mw")) && !flags.contains(&"sl")
}

/// One mapping in full, for the DEBUG lines and errors.
fn describe(m: &Mapping) -> String {
    format!("{:#x}-{:#x} {} ({} bytes, {})", m.start, m.end, String::from_utf8_lossy(&m.perms), m.end - m.start, backing(m))
}

/// The INFO line's account: how many mappings, and each one's size and backing.
fn summary(removed: &[Mapping]) -> String {
    if removed.is_empty() {
        return "no shared writable mapping (none was inherited from Apache's parent)".to_string();
    }
    let each: Vec<String> = removed.iter().map(|m| format!("{} {}", size(m.end - m.start), backing(m))).collect();
    let plural = if removed.len() == 1 { "" } else { "s" };
    format!("{} shared writable mapping{plural} inherited from Apache's parent: {}", removed.len(), each.join(", "))
}

fn backing<'a>(m: &Mapping<'a>) -> &'a str {
    if m.name.is_empty() {
        "anonymous"
    } else {
        m.name
    }
}

/// A mapping's size (whole pages) in KiB, or in MiB from 1 MiB on.
fn size(bytes: usize) -> String {
    const MIB: usize = 1 << 20;
    if bytes < MIB {
        format!("{} KiB", bytes.div_ceil(1024))
    } else if bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::{shared_writable, size, summary};

    /// What a daemon of an Apache with mod_proxy_balancer and mod_socache_shmcb inherits,
    /// plus SysV memory, glibc's nscd cache and a read-only (sealed) scoreboard.
    const MAPS: &str = "\
555c3e01a000-555c3e053000 r--p 00000000 fe:00 9125889                    /usr/sbin/apache2
555c3e0ca000-555c3e0ce000 rw-p 000af000 fe:00 9125889                    /usr/sbin/apache2
555c5ee1d000-555c5ee3e000 rw-p 00000000 00:00 0                          [heap]
7eff98a7d000-7eff98afe000 rw-s 00000000 00:01 1561                       /dev/zero (deleted)
7eff98b17000-7eff98b18000 r--s 00000000 00:01 1560                       /dev/zero (deleted)
7eff98b92000-7eff98b93000 rw-s 00000000 00:1b 7                          /dev/shm/ShM.e13f6a9fH709f5c33
7eff98c00000-7eff98d80000 rw-s 00000000 00:01 32770                      SYSV00000000 (deleted)
7eff98e00000-7eff98e10000 rwxs 00000000 00:00 0 
7eff99000000-7eff99020000 r--s 00000000 fe:00 131075                     /var/cache/nscd/passwd
7eff99040000-7eff99041000 rw-p 00000000 00:00 0 
7eff9904c000-7eff9904d000 rw-s 00000000 00:01 1558                       /dev/zero (deleted)
7ffd1c1f0000-7ffd1c211000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn what_may_be_made_writable_goes_and_what_is_sealed_stays() {
        let smaps = "\
7eff98a7d000-7eff98afe000 rw-s 00000000 00:01 1561                       /dev/zero (deleted)
Size:                516 kB
VmFlags: rd wr sh mr mw me ms sd
7eff98b17000-7eff98b18000 r--s 00000000 00:01 1560                       /dev/zero (deleted)
Size:                  4 kB
VmFlags: rd sh mr mw me ms sd
7eff98b20000-7eff98b21000 r--s 00000000 00:01 1570                       /dev/zero (deleted)
Size:                  4 kB
VmFlags: rd sh mr mw me ms sd sl
7eff99000000-7eff99020000 r--s 00000000 fe:00 131075                     /var/cache/nscd/passwd
Size:                128 kB
VmFlags: rd sh mr me ms sd
7eff99040000-7eff99041000 rw-p 00000000 00:00 0 
VmFlags: rd wr mr mw me ac sd
";
        let found: Vec<usize> = shared_writable(smaps).iter().map(|m| m.start).collect();
        assert_eq!(found, [0x7eff98a7d000, 0x7eff98b17000], "writable, or read-only but may-write; not sealed, nscd or private");
    }

    #[test]
    fn every_shared_writable_mapping_and_nothing_else() {
        let found: Vec<(usize, &str)> = shared_writable(MAPS).iter().map(|m| (m.start, m.name)).collect();
        assert_eq!(
            found,
            [
                (0x7eff98a7d000, "/dev/zero (deleted)"),
                (0x7eff98b92000, "/dev/shm/ShM.e13f6a9fH709f5c33"),
                (0x7eff98c00000, "SYSV00000000 (deleted)"),
                (0x7eff98e00000, ""),
                (0x7eff9904c000, "/dev/zero (deleted)"),
            ]
        );
        assert!(shared_writable("").is_empty());
    }

    #[test]
    fn the_info_line_counts_them_with_sizes_and_backing() {
        assert_eq!(
            summary(&shared_writable(MAPS)),
            "5 shared writable mappings inherited from Apache's parent: 516 KiB /dev/zero (deleted), \
             4 KiB /dev/shm/ShM.e13f6a9fH709f5c33, 1.5 MiB SYSV00000000 (deleted), 64 KiB anonymous, 4 KiB /dev/zero (deleted)"
        );
        assert_eq!(
            summary(&shared_writable(MAPS)[1..2]),
            "1 shared writable mapping inherited from Apache's parent: 4 KiB /dev/shm/ShM.e13f6a9fH709f5c33"
        );
        assert!(summary(&[]).starts_with("no shared writable mapping"));
        assert_eq!((size(4096), size(1 << 20), size(3 << 20)), ("4 KiB".into(), "1 MiB".into(), "3 MiB".into()));
    }
}
