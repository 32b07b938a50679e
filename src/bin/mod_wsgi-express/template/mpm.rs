//! The sizing of Apache's children in embedded mode, where they run the application (in daemon
//! mode, `daemon.rs` sizes them).

use crate::cli::{Mpm, ServerOptions};

/// Embedded mode: Apache's children run the application, so they are sized exactly by
/// `--processes` and `--threads`, and `--maximum-requests` recycles them.
pub(super) fn mpm_section(o: &ServerOptions) -> String {
    let (p, t) = (o.processes, o.threads);
    let recycle = o.number("maximum-requests");
    match o.mpm {
        Mpm::Event | Mpm::Worker => {
            let total = p * t; // cli/checks.rs checked that this does not overflow
            format!(
                "ServerLimit {p}\nStartServers {p}\nThreadLimit {t}\nThreadsPerChild {t}\n\
                 MaxRequestWorkers {total}\nMinSpareThreads 1\nMaxSpareThreads {total}\nMaxConnectionsPerChild {recycle}"
            )
        }
        Mpm::Prefork => format!(
            "StartServers {p}\nMinSpareServers {p}\nMaxSpareServers {p}\nServerLimit {p}\n\
             MaxRequestWorkers {p}\nMaxConnectionsPerChild {recycle}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::template::tests::{conf, lines, opts};

    #[test]
    fn prefork() {
        let text = conf(&opts(&["start-server", "--mpm", "prefork", "--processes", "2", "--embedded-mode", "/srv/app.wsgi"]), None);
        let l = lines(&text);
        for want in [
            "LoadModule mpm_prefork_module \"/usr/lib/apache2/modules/mod_mpm_prefork.so\"",
            "StartServers 2",
            "MinSpareServers 2",
            "MaxSpareServers 2",
            "ServerLimit 2",
            "MaxRequestWorkers 2",
        ] {
            assert!(l.contains(&want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("ThreadsPerChild") && !text.contains("mpm_event"));
    }
}
