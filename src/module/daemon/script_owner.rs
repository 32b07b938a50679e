//! `script-user=` / `script-group=`: an Apache child refuses (403) to hand a request to the
//! group unless the WSGI script file, and the directory it is in, belong to that user (or
//! group) and cannot be changed by others. mod_wsgi's checks (`wsgi_execute_remote`), in its
//! order and with its log lines; by name, as mod_wsgi compares them.

use super::options::{Accounts, ScriptOwner};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What the checks read of a file: owner, group, permission bits.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Stat {
    fn of(path: &Path) -> Option<Stat> {
        std::fs::metadata(path).ok().map(|m| Stat { uid: m.uid(), gid: m.gid(), mode: m.mode() })
    }
}

const GROUP_WRITE: u32 = 0o020;
const WORLD_WRITE: u32 = 0o002;

/// Checks `filename` (the request's `r->filename`) against `rule`; `Err` is the line to log
/// with a 403.
pub fn check(rule: &ScriptOwner, filename: &Path, accounts: &dyn Accounts) -> Result<(), String> {
    // ap_make_dirstr_parent: the directory, with its trailing slash.
    let parent = match filename.to_str().and_then(|f| f.rfind('/')) {
        Some(slash) => filename.to_str().map(|f| f[..=slash].to_string()).unwrap_or_default(),
        None => String::new(),
    };
    let parent_stat = if parent.is_empty() { None } else { Stat::of(Path::new(&parent)) };
    check_stats(rule, Stat::of(filename), &parent, parent_stat, accounts)
}

/// The checks on what `stat` found: `file` is `None` when the script could not be looked at,
/// `dir` when its directory (`parent`) could not.
pub fn check_stats(rule: &ScriptOwner, file: Option<Stat>, parent: &str, dir: Option<Stat>, accounts: &dyn Accounts) -> Result<(), String> {
    match rule {
        ScriptOwner::Group(required) => {
            let file = file.ok_or("Group information not available for WSGI script file.")?;
            let name =
                accounts.group_by_id(file.gid).ok_or_else(|| format!("Unable to determine group of WSGI script file from gid {}.", file.gid))?;
            if &name != required {
                return Err(format!("WSGI script file group '{name}' does not match group required for daemon process."));
            }
            if file.mode & WORLD_WRITE != 0 {
                return Err("WSGI script file is writable to world.".into());
            }
            let dir = dir.ok_or_else(|| format!("Unable to stat parent directory '{parent}' of WSGI script."))?;
            let name = accounts
                .group_by_id(dir.gid)
                .ok_or_else(|| format!("Unable to determine group of parent directory of WSGI script file from gid {}.", dir.gid))?;
            if &name != required {
                return Err(format!(
                    "Parent directory of WSGI script file has group '{name}' which does not match group required for daemon process."
                ));
            }
            if dir.mode & WORLD_WRITE != 0 {
                return Err("Parent directory of WSGI script file is writable to world.".into());
            }
        }
        ScriptOwner::User(required) => {
            let file = file.ok_or("User information not available for WSGI script file.")?;
            let name = accounts
                .user_by_id(file.uid)
                .map(|u| u.name)
                .ok_or_else(|| format!("Unable to determine owner of WSGI script file from uid {}.", file.uid))?;
            if &name != required {
                return Err(format!("WSGI script file owner '{name}' does not match user required for daemon process."));
            }
            if file.mode & GROUP_WRITE != 0 {
                return Err("WSGI script file is writable to group.".into());
            }
            if file.mode & WORLD_WRITE != 0 {
                return Err("WSGI script file is writable to world.".into());
            }
            let dir = dir.ok_or_else(|| format!("Unable to stat parent directory '{parent}' of WSGI script."))?;
            let name = accounts
                .user_by_id(dir.uid)
                .map(|u| u.name)
                .ok_or_else(|| format!("Unable to determine owner of parent directory of WSGI script file from uid {}.", dir.uid))?;
            if &name != required {
                return Err(format!(
                    "Parent directory of WSGI script file has owner '{name}' which does not match user required for daemon process."
                ));
            }
            if dir.mode & WORLD_WRITE != 0 {
                return Err("Parent directory of WSGI script file is writable to world.".into());
            }
            if dir.mode & GROUP_WRITE != 0 {
                return Err("Parent directory of WSGI script file is writable to group.".into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::options::Account;
    use super::*;

    struct Names;
    impl Accounts for Names {
        fn user_by_name(&self, _: &str) -> Option<Account> {
            None
        }
        fn user_by_id(&self, uid: u32) -> Option<Account> {
            let name = match uid {
                1 => "site",
                2 => "other",
                _ => return None,
            };
            Some(Account { name: name.into(), uid, gid: uid, home: "/".into() })
        }
        fn group_by_name(&self, _: &str) -> Option<u32> {
            None
        }
        fn group_by_id(&self, gid: u32) -> Option<String> {
            match gid {
                10 => Some("web".into()),
                11 => Some("staff".into()),
                _ => None,
            }
        }
    }

    fn stat(uid: u32, gid: u32, mode: u32) -> Option<Stat> {
        Some(Stat { uid, gid, mode })
    }

    #[test]
    fn script_user_needs_the_file_and_its_directory_owned_and_not_writable_by_others() {
        let user = ScriptOwner::User("site".into());
        let check = |file, dir| check_stats(&user, file, "/srv/", dir, &Names);
        assert_eq!(check(stat(1, 10, 0o644), stat(1, 10, 0o755)), Ok(()));
        assert_eq!(
            check(stat(2, 10, 0o644), stat(1, 10, 0o755)).unwrap_err(),
            "WSGI script file owner 'other' does not match user required for daemon process."
        );
        assert_eq!(check(stat(9, 10, 0o644), stat(1, 10, 0o755)).unwrap_err(), "Unable to determine owner of WSGI script file from uid 9.");
        assert_eq!(check(stat(1, 10, 0o664), stat(1, 10, 0o755)).unwrap_err(), "WSGI script file is writable to group.");
        assert_eq!(check(stat(1, 10, 0o646), stat(1, 10, 0o755)).unwrap_err(), "WSGI script file is writable to world.");
        assert_eq!(check(stat(1, 10, 0o644), None).unwrap_err(), "Unable to stat parent directory '/srv/' of WSGI script.");
        assert_eq!(
            check(stat(1, 10, 0o644), stat(2, 10, 0o755)).unwrap_err(),
            "Parent directory of WSGI script file has owner 'other' which does not match user required for daemon process."
        );
        assert_eq!(check(stat(1, 10, 0o644), stat(1, 10, 0o757)).unwrap_err(), "Parent directory of WSGI script file is writable to world.");
        assert_eq!(check(stat(1, 10, 0o644), stat(1, 10, 0o775)).unwrap_err(), "Parent directory of WSGI script file is writable to group.");
        assert_eq!(check(None, None).unwrap_err(), "User information not available for WSGI script file.");
    }

    #[test]
    fn script_group_needs_the_group_and_no_world_write() {
        let group = ScriptOwner::Group("web".into());
        let check = |file, dir| check_stats(&group, file, "/srv/", dir, &Names);
        assert_eq!(check(stat(2, 10, 0o664), stat(1, 10, 0o775)), Ok(()), "group-writable is allowed");
        assert_eq!(
            check(stat(1, 11, 0o644), stat(1, 10, 0o755)).unwrap_err(),
            "WSGI script file group 'staff' does not match group required for daemon process."
        );
        assert_eq!(check(stat(1, 12, 0o644), stat(1, 10, 0o755)).unwrap_err(), "Unable to determine group of WSGI script file from gid 12.");
        assert_eq!(check(stat(1, 10, 0o646), stat(1, 10, 0o755)).unwrap_err(), "WSGI script file is writable to world.");
        assert_eq!(
            check(stat(1, 10, 0o644), stat(1, 11, 0o755)).unwrap_err(),
            "Parent directory of WSGI script file has group 'staff' which does not match group required for daemon process."
        );
        assert_eq!(check(stat(1, 10, 0o644), stat(1, 10, 0o777)).unwrap_err(), "Parent directory of WSGI script file is writable to world.");
    }
}
