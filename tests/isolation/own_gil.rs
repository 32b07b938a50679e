//! The isolation suite with every named group on its own GIL (issue 11): the same cases, the
//! same assertions, under event and worker, with Python 3.13 and `WSGIPerInterpreterGIL On`.
//! (3.12 cannot run them so: its `_ctypes`, which the state app uses, and `_datetime`, which
//! Django needs, have single-phase init and do not load in an own-GIL interpreter.) Django
//! comes from PyPI (5.x, for 3.13), installed once per run under the target directory.

use super::*;
use std::sync::OnceLock;

const VERSION: &str = "3.13";

/// `WSGIPythonPath` holding Django for 3.13 (installed on first use).
fn django_site() -> &'static str {
    static SITE: OnceLock<String> = OnceLock::new();
    SITE.get_or_init(|| {
        let site = cache_dir(&format!("isolation-django-{VERSION}"));
        if !site.join("django").is_dir() {
            pip_install_for(VERSION, &site, &["django>=5.1,<5.3"]);
        }
        site.display().to_string()
    })
}

fn own_gil_server(mpm: Mpm) -> Option<Apache> {
    let home = python_home(VERSION)?;
    let apache = server_with(mpm, &format!("WSGIPythonHome {home}\nWSGIPythonPath {}\nWSGIPerInterpreterGIL On\n", django_site()));
    Some(apache)
}

/// Every named group the requests created has its own GIL (the log says so per group).
fn assert_own_gils(apache: &Apache, groups: &[&str]) {
    let log = apache.error_log();
    for group in groups {
        assert!(log.contains(&format!("Create interpreter '{group}' with own GIL.")), "group {group} has no own GIL\n{log}");
    }
    assert!(crash_lines(&log).is_empty(), "{:?}\n{log}", crash_lines(&log));
}

#[test]
fn named_groups_are_isolated_on_their_own_gils() {
    for mpm in [Mpm::Event, Mpm::Worker] {
        let Some(apache) = own_gil_server(mpm) else { return };
        named_groups_are_isolated(&apache, mpm);
        global_runs_in_the_main_interpreter(&apache, mpm);
        assert_own_gils(&apache, &["site-a", "site-b", "late-group"]);
    }
}

#[test]
fn two_django_sites_on_their_own_gils() {
    for mpm in [Mpm::Event, Mpm::Worker] {
        let Some(apache) = own_gil_server(mpm) else { return };
        two_django_sites_answer(&apache, mpm);
        assert_own_gils(&apache, &["django-a", "django-b"]);
    }
}
