//! The account Apache's children and the daemons run as when express is started as root, and
//! whether that account can reach a directory: checked before Apache starts, because a
//! daemon that cannot enter its working directory, or a child that cannot reach the daemon
//! socket, fails only later, in the error log, with every request answered 503.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A user id and every group the account is in (`--group` first).
#[derive(Clone, Debug)]
pub struct Account {
    pub uid: u32,
    pub groups: Vec<u32>,
}

/// Looks up `User`/`Group` as Apache will: a name, or `#id`.
pub fn resolve(user: &str, group: &str) -> Result<Account, String> {
    let (uid, name) = match user.strip_prefix('#') {
        Some(id) => {
            let uid = id.parse().map_err(|_| format!("--user '{user}' is not a user"))?;
            (uid, None)
        }
        None => {
            let c_user = CString::new(user).map_err(|_| format!("--user '{user}' is not a user"))?;
            // SAFETY: getpwnam is given a NUL-terminated name; express is single-threaded, so
            // its static result is read before anything else can overwrite it.
            let entry = unsafe { libc::getpwnam(c_user.as_ptr()) };
            if entry.is_null() {
                return Err(format!("--user '{user}': no such user"));
            }
            // SAFETY: a non-null result points to a valid passwd entry.
            (unsafe { (*entry).pw_uid }, Some(c_user))
        }
    };
    let gid = match group.strip_prefix('#') {
        Some(id) => id.parse().map_err(|_| format!("--group '{group}' is not a group"))?,
        None => {
            let c_group = CString::new(group).map_err(|_| format!("--group '{group}' is not a group"))?;
            // SAFETY: as for getpwnam above.
            let entry = unsafe { libc::getgrnam(c_group.as_ptr()) };
            if entry.is_null() {
                return Err(format!("--group '{group}': no such group"));
            }
            // SAFETY: a non-null result points to a valid group entry.
            unsafe { (*entry).gr_gid }
        }
    };
    // As Apache's mod_unixd: `Group`, plus the user's groups from /etc/group (initgroups).
    let mut groups = vec![gid];
    if let Some(name) = name {
        let mut list = vec![0 as libc::gid_t; 256];
        let mut count = list.len() as libc::c_int;
        // SAFETY: the list has room for `count` entries, and getgrouplist writes at most that.
        if unsafe { libc::getgrouplist(name.as_ptr(), gid, list.as_mut_ptr(), &mut count) } >= 0 {
            groups.extend(&list[..count.max(0) as usize]);
        }
    }
    Ok(Account { uid, groups })
}

/// Whether `account` may search (`x`) every directory from `/` down to `dir`.
pub fn check_reachable(dir: &Path, account: &Account, user: &str, option: &str) -> Result<(), String> {
    for step in dir.ancestors() {
        let meta = std::fs::metadata(step).map_err(|e| format!("{}: {e}", step.display()))?;
        if !may_search(meta.uid(), meta.gid(), meta.mode(), account) {
            return Err(format!(
                "{} cannot be reached by user '{user}', whom the server runs as ({} is mode {:o}): pass {option} that this user can reach",
                dir.display(),
                step.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

fn may_search(owner: u32, group: u32, mode: u32, account: &Account) -> bool {
    if account.uid == 0 {
        return true;
    }
    if owner == account.uid {
        return mode & 0o100 != 0;
    }
    if account.groups.contains(&group) {
        return mode & 0o010 != 0;
    }
    mode & 0o001 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_permission_follows_the_owner_group_other_rule() {
        let nobody = Account { uid: 65534, groups: vec![65534, 7] };
        assert!(may_search(0, 0, 0o755, &nobody));
        assert!(!may_search(0, 0, 0o750, &nobody));
        assert!(may_search(0, 7, 0o750, &nobody));
        // The owner class decides alone, as in the kernel: no fall-through to "other".
        assert!(!may_search(65534, 0, 0o075, &nobody));
        assert!(may_search(1, 1, 0o700, &Account { uid: 0, groups: vec![] }));
    }

    #[test]
    fn resolves_root_and_refuses_unknown_names() {
        let root = resolve("root", "#0").unwrap();
        assert_eq!((root.uid, root.groups[0]), (0, 0));
        assert!(resolve("no-such-user-here", "#0").unwrap_err().contains("no such user"));
        assert!(resolve("#12", "no-such-group-here").unwrap_err().contains("no such group"));
        assert!(check_reachable(Path::new("/"), &root, "root", "--x").is_ok());
    }
}
