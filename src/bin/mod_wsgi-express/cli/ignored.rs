//! Options given that mean nothing with the others given: accepted and ignored, with a warning
//! each, as the original ignores them ([`ignore_incomplete`]).

use super::raw::Raw;
use super::server_options::{App, Flag, List, ServerOptions, SpareWorkers};

/// Options that mean something only with another, or that another overrides: the original
/// accepts them and ignores them then, and so does this one, with a warning each (those whose
/// silent omission would leave something open are refused instead, where they are parsed).
/// `--embedded-mode` also turns script reloading off, as in the original.
pub(super) fn ignore_incomplete(raw: &Raw, o: &mut ServerOptions) {
    let mut warnings = Vec::new();
    let without = [
        ("rotatelogs-executable", "rotate-logs"),
        ("max-log-size", "rotate-logs"),
        ("access-log-format", "access-log"),
        ("access-log-name", "access-log"),
        ("startup-log-name", "startup-log"),
        ("auth-type", "auth-user-script"),
        ("auth-group", "auth-group-script"),
        ("server-alias", "server-name"),
        ("allow-localhost", "server-name"),
        ("https-only", "https-port"),
        ("ssl-environment", "https-port"),
        ("hsts-policy", "https-only"),
    ];
    for (name, needed) in without {
        if raw.flag(name) && !raw.flag(needed) {
            warnings.push(format!("--{name} is ignored without --{needed}"));
        }
    }
    // An empty --telemetry-service is none, as in the original.
    if raw.flag("telemetry-interval") && o.telemetry.service.is_none() {
        warnings.push("--telemetry-interval is ignored without --telemetry-service".to_string());
    }
    if !o.server_name_given {
        o.lists.retain(|(l, _)| *l != List::ServerAlias);
        o.flags.retain(|f| *f != Flag::AllowLocalhost);
    }
    if o.logs.rotate && crate::logs::to_terminal(o) {
        warnings.push("--rotate-logs is ignored with --log-to-terminal (without --log-directory, the logs go to the terminal)".to_string());
        o.logs.rotate = false;
    }
    if o.embedded {
        for name in ["max-clients", "initial-workers", "minimum-spare-workers", "maximum-spare-workers"] {
            if raw.flag(name) {
                warnings.push(format!("--{name} is ignored with --embedded-mode (Apache's children are sized by --processes and --threads)"));
            }
        }
        o.max_clients = None;
        o.spare_workers = SpareWorkers::default();
    }
    if o.flag(Flag::ReloadOnChanges) {
        let overridden = if o.flag(Flag::DisableReloading) {
            Some("--disable-reloading")
        } else if o.embedded {
            Some("--embedded-mode")
        } else if matches!(o.app, App::Static(_)) {
            Some("--application-type static")
        } else {
            None
        };
        if let Some(other) = overridden {
            warnings.push(format!("--reload-on-changes is ignored with {other} (it restarts daemon processes running an application)"));
            o.flags.retain(|f| *f != Flag::ReloadOnChanges);
        }
    }
    if o.embedded && !o.flag(Flag::DisableReloading) {
        o.flags.push(Flag::DisableReloading);
    }
    o.warnings = warnings;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::{server, usage_error};

    #[test]
    fn options_that_need_another_are_ignored_alone_with_a_warning_as_the_original() {
        for (words, warning) in [
            (&["--server-alias", "a.example"][..], "--server-alias is ignored without --server-name"),
            (&["--allow-localhost"][..], "--allow-localhost is ignored without --server-name"),
            (&["--auth-type", "Digest"][..], "--auth-type is ignored without --auth-user-script"),
            (&["--auth-type", "NTLM"][..], "--auth-type is ignored without --auth-user-script"),
            (&["--auth-group", "staff"][..], "--auth-group is ignored without --auth-group-script"),
            (&["--access-log-format", "combined"][..], "--access-log-format is ignored without --access-log"),
            (&["--access-log-name", "hits"][..], "--access-log-name is ignored without --access-log"),
            (&["--startup-log-name", "boot"][..], "--startup-log-name is ignored without --startup-log"),
            (&["--max-log-size", "9"][..], "--max-log-size is ignored without --rotate-logs"),
            (&["--rotatelogs-executable", "/bin/rl"][..], "--rotatelogs-executable is ignored without --rotate-logs"),
            (&["--rotate-logs", "--log-to-terminal"][..], "--rotate-logs is ignored with --log-to-terminal"),
            (&["--https-only"][..], "--https-only is ignored without --https-port"),
            (&["--ssl-environment"][..], "--ssl-environment is ignored without --https-port"),
            (&["--https-port", "1", "--ssl-certificate", "c", "--hsts-policy", "max-age=1"][..], "--hsts-policy is ignored without --https-only"),
            (&["--max-clients", "5", "--embedded-mode"][..], "--max-clients is ignored with --embedded-mode"),
            (&["--initial-workers", "0.5", "--embedded-mode"][..], "--initial-workers is ignored with --embedded-mode"),
            (&["--reload-on-changes", "--disable-reloading"][..], "--reload-on-changes is ignored with --disable-reloading"),
            (&["--reload-on-changes", "--embedded-mode"][..], "--reload-on-changes is ignored with --embedded-mode"),
        ] {
            let o = server(&[&["start-server"][..], words, &["x"]].concat());
            assert!(o.warnings.len() == 1 && o.warnings[0].starts_with(warning), "{words:?}: {:?}", o.warnings);
        }
        assert!(server(&["start-server", "x"]).warnings.is_empty());
        // What is ignored is not used.
        let o = server(&[
            "start-server",
            "--server-alias",
            "a",
            "--allow-localhost",
            "--reload-on-changes",
            "--embedded-mode",
            "--max-clients",
            "9",
            "x",
        ]);
        assert!(o.list(List::ServerAlias).is_empty() && !o.flag(Flag::AllowLocalhost) && !o.flag(Flag::ReloadOnChanges) && o.max_clients.is_none());
        let o = server(&["start-server", "--application-type", "static", "--reload-on-changes"]);
        assert!(!o.flag(Flag::ReloadOnChanges) && o.warnings[0].contains("--application-type static"), "{:?}", o.warnings);
        let o = server(&["start-server", "--rotate-logs", "--log-to-terminal", "x"]);
        assert!(!o.logs.rotate, "no rotatelogs is needed for the terminal");
        assert!(server(&["start-server", "--rotate-logs", "--log-to-terminal", "--log-directory", "/l", "x"]).logs.rotate);
        // Refused still: what would leave something open if it were ignored.
        assert!(usage_error(&["start-server", "--auth-group-script", "g.py", "x"]).contains("--auth-group-script needs --auth-user-script"));
    }

    #[test]
    fn embedded_mode_turns_script_reloading_off_as_the_original() {
        assert!(server(&["start-server", "--embedded-mode", "x"]).flag(Flag::DisableReloading));
        assert!(!server(&["start-server", "x"]).flag(Flag::DisableReloading));
    }
}
