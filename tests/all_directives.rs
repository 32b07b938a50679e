//! Every directive of mod_wsgi 4.9 (Debian's, on Apache 2.4) and 6.1 (PyPI) in one
//! configuration (issue 13): ours accepts all of them (`apache2 -t`); Debian's mod_wsgi 4.9
//! accepts the same lines for the directives it has, and mod_wsgi 6.1.1 built from PyPI the
//! lines for its own, so the test configuration is a real one for each reference, not ours
//! alone. The README's directive table names every one. What each does is tested in the test
//! file of its feature (see the README's test table).

mod common;
use common::*;
use std::path::Path;

/// Every directive mod_wsgi 4.9 on Apache 2.4 and 6.1 register (their `AP_INIT_*` tables;
/// 4.9's `WSGIUserAuthoritative` exists only on Apache 2.2).
const MOD_WSGI_DIRECTIVES: [&str; 53] = [
    "WSGIScriptAlias",
    "WSGIScriptAliasMatch",
    "WSGIPythonOptimize",
    "WSGIPythonHome",
    "WSGIPythonPath",
    "WSGIPythonEggs",
    "WSGIPythonWarnings",
    "WSGIPythonHashSeed",
    "WSGIDontWriteBytecode",
    "WSGILazyInitialization",
    "WSGIRestrictEmbedded",
    "WSGIRestrictStdin",
    "WSGIRestrictStdout",
    "WSGIRestrictSignal",
    "WSGICaseSensitivity",
    "WSGIApplicationGroup",
    "WSGICallableObject",
    "WSGIImportScript",
    "WSGIDispatchScript",
    "WSGIPassApacheRequest",
    "WSGIPassAuthorization",
    "WSGIScriptReloading",
    "WSGIErrorOverride",
    "WSGIChunkedRequest",
    "WSGIMapHEADToGET",
    "WSGIIgnoreActivity",
    "WSGITrustedProxyHeaders",
    "WSGITrustedProxies",
    "WSGIEnableSendfile",
    "WSGIAccessScript",
    "WSGIAuthUserScript",
    "WSGIAuthGroupScript",
    "WSGIGroupAuthoritative",
    "WSGIHandlerScript",
    "WSGIServerMetrics",
    "WSGIDaemonProcess",
    "WSGIProcessGroup",
    "WSGISocketPrefix",
    "WSGISocketRotation",
    "WSGIAcceptMutex",
    "WSGIRestrictProcess",
    "WSGIVerboseDebugging",
    "WSGIDestroyInterpreter",
    "WSGINewRelicConfigFile",
    "WSGINewRelicEnvironment",
    "WSGIPerInterpreterGIL",
    "WSGISwitchInterval",
    "WSGIFreeThreading",
    "WSGIInterpreterOptions",
    "WSGITelemetryService",
    "WSGITelemetryOptions",
    "WSGISlowRequests",
    // Ours (not in mod_wsgi): the GIL scheduler's two.
    "WSGIPythonConcurrency",
];

/// Which references have a line's directive.
#[derive(Clone, Copy, PartialEq)]
enum Has {
    Both,
    Only49,
    Only61,
    OursOnly,
}

/// The configuration, line by line, in the contexts mod_wsgi allows.
fn lines() -> Vec<(&'static str, Has)> {
    use Has::*;
    vec![
        ("WSGIPythonHome /usr", Both),
        ("WSGIPythonPath {dir}/lib", Both),
        ("WSGIPythonOptimize 1", Both),
        ("WSGIDontWriteBytecode On", Both),
        ("WSGIPythonWarnings ignore::DeprecationWarning", Both),
        ("WSGIPythonHashSeed 7", Both),
        ("WSGIPythonEggs {dir}/eggs", Both),
        ("WSGIDestroyInterpreter On", Both),
        ("WSGIRestrictEmbedded Off", Both),
        ("WSGILazyInitialization On", Only49),
        ("WSGIRestrictStdin On", Both),
        ("WSGIRestrictStdout Off", Both),
        ("WSGIRestrictSignal On", Both),
        ("WSGICaseSensitivity On", Both),
        ("WSGIAcceptMutex default", Both),
        ("WSGISocketPrefix {dir}/wsgi", Both),
        ("WSGISocketRotation On", Both),
        ("WSGIServerMetrics Off", Both),
        ("WSGIVerboseDebugging Off", Both),
        ("WSGINewRelicConfigFile {dir}/newrelic.ini", Only49),
        ("WSGINewRelicEnvironment staging", Only49),
        ("WSGIPerInterpreterGIL Off", Only61),
        ("WSGISwitchInterval 0.005", Only61),
        ("WSGIFreeThreading Off", Only61),
        ("<WSGIInterpreterOptions application-group=site>\n  WSGIRestrictStdout Off\n</WSGIInterpreterOptions>", Only61),
        ("WSGITelemetryService unix:{dir}/telemetry.sock interval=5", Only61),
        ("WSGITelemetryOptions CaptureUserAgent", Only61),
        ("WSGISlowRequests 10", Only61),
        ("WSGIPythonConcurrency auto", OursOnly),
        ("WSGIPythonQueueTimeout 30", OursOnly),
        ("WSGIDaemonProcess site processes=1 threads=2 display-name=%{GROUP}", Both),
        ("WSGIImportScript {dir}/app.wsgi process-group=site application-group=%{GLOBAL}", Both),
        ("WSGIScriptAlias /app {dir}/app.wsgi", Both),
        ("WSGIScriptAliasMatch ^/match/([a-z]+) {dir}/app.wsgi", Both),
        ("<Directory {dir}>", Both),
        ("  WSGIApplicationGroup %{GLOBAL}", Both),
        ("  WSGIProcessGroup %{GLOBAL}", Both),
        ("  WSGIRestrictProcess site %{GLOBAL}", Both),
        ("  WSGICallableObject application", Both),
        ("  WSGIPassAuthorization On", Both),
        ("  WSGIChunkedRequest On", Both),
        ("  WSGIMapHEADToGET Auto", Both),
        ("  WSGIErrorOverride Off", Both),
        ("  WSGIScriptReloading On", Both),
        ("  WSGIEnableSendfile Off", Both),
        ("  WSGIPassApacheRequest Off", Both),
        ("  WSGIIgnoreActivity Off", Both),
        ("  WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto", Both),
        ("  WSGITrustedProxies 127.0.0.1", Both),
        ("  WSGIDispatchScript {dir}/dispatch.wsgi", Both),
        ("  WSGIHandlerScript my-handler {dir}/handler.wsgi", Both),
        ("  WSGIAccessScript {dir}/access.wsgi", Both),
        ("  WSGIAuthUserScript {dir}/auth.wsgi application-group=auth", Both),
        ("  WSGIAuthGroupScript {dir}/auth.wsgi", Both),
        ("  WSGIGroupAuthoritative On", Both),
        ("</Directory>", Both),
    ]
}

fn config(wanted: impl Fn(Has) -> bool) -> String {
    lines().into_iter().filter(|(_, has)| wanted(*has)).map(|(line, _)| format!("{line}\n")).collect()
}

fn accepts(module: &Path, name: &str, body: &str) {
    let (ok, out) = config_test_with(module, body);
    assert!(ok, "{name} refuses the configuration:\n{out}\n---\n{body}");
}

#[test]
fn every_mod_wsgi_directive_is_accepted_as_the_references_accept_it() {
    let all = config(|_| true);
    for name in MOD_WSGI_DIRECTIVES {
        assert!(all.contains(&format!("{name} ")) || all.contains(&format!("<{name} ")), "{name} is missing from the test configuration");
    }
    accepts(&module_path(), "mod_wsgi-rs", &all);
    accepts(debian_mod_wsgi(), "Debian's mod_wsgi 4.9", &config(|has| matches!(has, Has::Both | Has::Only49)));
    accepts(&mod_wsgi_6_module(), &format!("mod_wsgi {MOD_WSGI_6}"), &config(|has| matches!(has, Has::Both | Has::Only61)));
    // The lines the references lack are theirs to refuse: a check that the split is right.
    let (ok, _) = config_test_with(debian_mod_wsgi(), "WSGIFreeThreading Off\n");
    assert!(!ok, "Debian's mod_wsgi 4.9 accepts WSGIFreeThreading: update the lines above");
}

#[test]
fn the_readme_documents_every_directive() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme.find("\n## Directives").expect("the README's Directives section");
    let end = start + readme[start + 1..].find("\n## ").expect("the section after Directives");
    let rows: Vec<&str> = readme[start..end].lines().filter(|l| l.starts_with("| `")).collect();
    for name in MOD_WSGI_DIRECTIVES.iter().chain(["WSGIPythonQueueTimeout"].iter()) {
        let row = rows.iter().find(|row| {
            let first = row.split(" | ").next().unwrap_or("");
            first.contains(&format!("`{name}`")) || first.contains(&format!("`<{name}>`"))
        });
        let row = row.unwrap_or_else(|| panic!("the README's directive table has no row for {name}"));
        // Description, syntax, default and context: five cells.
        assert!(row.matches(" | ").count() >= 4, "{name}'s row lacks a column: {row}");
    }
}
