//! Python never enters Apache's parent: the module Apache loads has no libpython, and while
//! children serve Python the parent has no libpython mapped.

mod common;
use common::*;

#[test]
fn module_does_not_link_libpython() {
    let out = std::process::Command::new("ldd").arg(module_path()).output().unwrap();
    let deps = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(deps.contains("libc.so"), "unexpected ldd output: {deps}");
    assert!(!deps.contains("libpython"), "the module links libpython:\n{deps}");
    let engine = module_path().with_file_name(format!("mod_wsgi-engine-py{}.so", env!("MOD_WSGI_DEFAULT_PYTHON_VERSION")));
    let out = std::process::Command::new("ldd").arg(&engine).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("libpython"), "the engine should link libpython");
}

fn maps_libpython(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default().contains("libpython")
}

#[test]
fn parent_has_no_libpython_while_children_serve_python() {
    for mpm in ALL_MPMS {
        let dir = TempDir::new("arch");
        dir.write("app.wsgi", "import sys\ndef application(e, s):\n    s('200 OK', [])\n    return [sys.version.encode()]\n");
        let apache = Apache::start_in(dir, mpm, "WSGIScriptAlias /app {dir}/app.wsgi\n");
        let r = apache.get("/app");
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with(env!("MOD_WSGI_DEFAULT_PYTHON_VERSION")), "{}", r.text());
        let children = apache.children();
        assert!(!children.is_empty());
        assert!(children.iter().any(|&c| maps_libpython(c)), "{mpm:?}: no child has libpython mapped");
        assert!(!maps_libpython(apache.pid()), "{mpm:?}: Apache's parent process has libpython mapped");
    }
}
