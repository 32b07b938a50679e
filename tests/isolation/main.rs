//! Application groups are isolated: scripts in two named groups set module globals,
//! `sys.modules` entries, `sys.path` and `os.environ`, and nothing crosses groups, also into a
//! group created after another group wrote `os.environ`; two scripts in one group share their
//! interpreter; `%{GLOBAL}` always runs in the main interpreter, also on a worker thread that
//! served a named group just before. Two Django projects answer with their own settings from
//! two groups of one Apache child. Every case runs under event, worker and prefork.

#[path = "../common/mod.rs"]
mod common;
mod own_gil;
use common::*;
use std::path::Path;

const CONFIG: &str = "\
WSGIScriptAlias /a {dir}/apps/state.wsgi application-group=site-a
WSGIScriptAlias /b {dir}/apps/state.wsgi application-group=site-b
WSGIScriptAlias /a2 {dir}/apps/state2.wsgi application-group=site-a
WSGIScriptAlias /late {dir}/apps/state.wsgi application-group=late-group
WSGIScriptAlias /global {dir}/apps/state.wsgi application-group=%{GLOBAL}
WSGIScriptAlias /global2 {dir}/apps/state2.wsgi
<Location /global2>
    WSGIApplicationGroup %{GLOBAL}
</Location>
WSGIScriptAlias /django-a {dir}/django/site_a/wsgi.py application-group=django-a
WSGIScriptAlias /django-b {dir}/django/site_b/wsgi.py application-group=django-b
";

fn server(mpm: Mpm) -> Apache {
    server_with(mpm, "")
}

/// The suite's server with `prefix` (say, another Python and own GILs) before its aliases.
fn server_with(mpm: Mpm, prefix: &str) -> Apache {
    let dir = TempDir::new("isolation");
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/isolation");
    copy_tree(&here.join("apps"), &dir, "apps");
    copy_tree(&here.join("django"), &dir, "django");
    Apache::start_in(dir, mpm, &format!("{prefix}{CONFIG}"))
}

fn state(apache: &Apache, path: &str) -> Json {
    let r = apache.get(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    Json::parse(&r.text())
}

#[test]
fn named_groups_do_not_share_globals_modules_paths_or_environ() {
    for mpm in ALL_MPMS {
        named_groups_are_isolated(&server(mpm), mpm);
    }
}

fn named_groups_are_isolated(apache: &Apache, mpm: Mpm) {
    state(apache, "/a?set=alpha");
    state(apache, "/b?set=beta");
    let (a, b) = (state(apache, "/a"), state(apache, "/b"));
    for (s, v) in [(&a, "alpha"), (&b, "beta")] {
        assert_eq!(s.get("global"), v, "{mpm:?}");
        assert_eq!(s.get("marker"), v, "{mpm:?}");
        assert_eq!(s.get("environ"), v, "{mpm:?}");
        assert_eq!(s.get("paths"), format!("[\"/isolation/{v}\"]"), "{mpm:?}");
    }
    assert_ne!(a.get("interpreter"), b.get("interpreter"));
    assert_ne!(a.get("interpreter"), "0");

    // A group created after both wrote os.environ starts from the child's own environment.
    let late = state(apache, "/late");
    assert_eq!(late.get("environ"), "null", "{mpm:?}: os.environ leaked into a new group");
    assert_eq!(late.get("marker"), "null");
    assert_eq!(late.get("paths"), "[]");

    // Two scripts in one group share the interpreter, not each other's module globals.
    let a2 = state(apache, "/a2");
    assert_eq!(a2.get("marker"), "alpha", "{mpm:?}");
    assert_eq!(a2.get("global"), "null");

    // %{GLOBAL} is the main interpreter, from the option and from the directive alike.
    let g = state(apache, "/global?set=gamma");
    assert_eq!(g.get("interpreter"), "0");
    assert_eq!(state(apache, "/global2").get("marker"), "gamma");
    assert_eq!(state(apache, "/a").get("marker"), "alpha");
}

#[test]
fn global_requests_run_in_the_main_interpreter_on_every_thread() {
    for mpm in ALL_MPMS {
        global_runs_in_the_main_interpreter(&server(mpm), mpm);
    }
}

fn global_runs_in_the_main_interpreter(apache: &Apache, mpm: Mpm) {
    {
        // Many concurrent requests, alternating named groups and %{GLOBAL}, so that worker
        // threads that served a named group first go on to serve %{GLOBAL}.
        std::thread::scope(|scope| {
            for t in 0..6 {
                scope.spawn(move || {
                    for i in 0..12 {
                        let named = if (t + i) % 2 == 0 { "/a" } else { "/b" };
                        let s = state(apache, named);
                        assert_ne!(s.get("interpreter"), "0");
                        let g = state(apache, "/global");
                        assert_eq!(g.get("interpreter"), "0", "{mpm:?}: %{{GLOBAL}} ran in a sub-interpreter");
                        assert_eq!(g.get("gilstate_is_current"), "true", "{mpm:?}: PyGILState would pick another interpreter's state");
                        assert_eq!(g.get("group"), "");
                    }
                });
            }
        });
    }
}

#[test]
fn two_django_sites_in_one_child_answer_with_their_own_settings() {
    for mpm in ALL_MPMS {
        two_django_sites_answer(&server(mpm), mpm);
    }
}

fn two_django_sites_answer(apache: &Apache, mpm: Mpm) {
    {
        // Site a is imported first and sets DJANGO_SETTINGS_MODULE in the process environment.
        let a = apache.get("/django-a/");
        assert_eq!((a.status, a.text().as_str()), (200, "Site A|project.settings_a"), "{mpm:?}");
        let b = apache.get("/django-b/");
        assert_eq!((b.status, b.text().as_str()), (200, "Site B|project.settings_b"), "{mpm:?}");
        std::thread::scope(|scope| {
            for t in 0..4 {
                scope.spawn(move || {
                    for i in 0..10 {
                        let (path, expected) =
                            if (t + i) % 2 == 0 { ("/django-a/", "Site A|project.settings_a") } else { ("/django-b/", "Site B|project.settings_b") };
                        let r = apache.get(path);
                        assert_eq!((r.status, r.text().as_str()), (200, expected), "{mpm:?}");
                    }
                });
            }
        });
        assert_eq!(apache.children().len(), 1, "the sites must share one child for this test to mean anything");
    }
}

/// One minimal Django project per site, generated: package `siteNN`, the classic wsgi.py
/// (setdefault of DJANGO_SETTINGS_MODULE), plus a sys.path entry, an os.environ edit and an
/// atexit registration of its own.
fn write_django_site(dir: &TempDir, n: usize) {
    let site = format!("site{n:02}");
    dir.write(&format!("sites/{site}/{site}/__init__.py"), "");
    dir.write(
        &format!("sites/{site}/{site}/settings.py"),
        &format!(
            "SECRET_KEY = 'k{n}'\nDEBUG = False\nALLOWED_HOSTS = ['*']\nROOT_URLCONF = '{site}.urls'\nINSTALLED_APPS = []\nMIDDLEWARE = []\nDATABASES = {{}}\nSITE_NAME = '{site}'\n"
        ),
    );
    dir.write(
        &format!("sites/{site}/{site}/urls.py"),
        "import os, sys\nfrom django.conf import settings\nfrom django.http import HttpResponse\nfrom django.urls import path\n\n\
         def index(request):\n    others = sorted(m for m in sys.modules if m.startswith('site') and m[4:].isdigit() and m != settings.SITE_NAME)\n    \
         paths = [p for p in sys.path if '/sites/site' in p]\n    \
         return HttpResponse('%s|%s|%s|%s|%d' % (settings.SITE_NAME, os.environ.get('DJANGO_SETTINGS_MODULE'), os.environ.get('SITE_MARK'), ','.join(others) or '-', len(paths)), content_type='text/plain')\n\n\
         urlpatterns = [path('', index)]\n",
    );
    dir.write(
        &format!("sites/{site}/wsgi.py"),
        &format!(
            "import atexit, os, sys\nimport mod_wsgi\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n\
             os.environ.setdefault('DJANGO_SETTINGS_MODULE', '{site}.settings')\nos.environ['SITE_MARK'] = '{site}'\n\
             def _mark(path=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'atexit-{site}')):\n    \
             with open(path, 'w') as f:\n        f.write(mod_wsgi.application_group)\n\
             atexit.register(_mark)\n\
             from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n"
        ),
    );
}

#[test]
fn twenty_django_sites_in_one_child_each_keep_their_own_state() {
    const SITES: usize = 20;
    for mpm in ALL_MPMS {
        let dir = TempDir::new("twenty");
        let mut config = String::new();
        for n in 1..=SITES {
            write_django_site(&dir, n);
            config.push_str(&format!("WSGIScriptAlias /site{n:02} {{dir}}/sites/site{n:02}/wsgi.py application-group=site{n:02}\n"));
        }
        let mut apache = Apache::start_in(dir, mpm, &config);
        let expected = |n: usize| format!("site{n:02}|site{n:02}.settings|site{n:02}|-|1");
        // First requests in order: each new group is created after the others edited os.environ.
        for n in 1..=SITES {
            let r = apache.get(&format!("/site{n:02}/"));
            assert_eq!((r.status, r.text()), (200, expected(n)), "{mpm:?}");
        }
        // Then all of them at once, from several client threads.
        std::thread::scope(|scope| {
            for t in 0..5 {
                let apache = &apache;
                scope.spawn(move || {
                    for i in 0..SITES {
                        let n = (i + t * 7) % SITES + 1;
                        let r = apache.get(&format!("/site{n:02}/"));
                        assert_eq!((r.status, r.text()), (200, expected(n)), "{mpm:?}");
                    }
                });
            }
        });
        assert_eq!(apache.children().len(), 1, "{mpm:?}: the sites must share one child");
        if mpm == Mpm::Prefork {
            // Prefork ends its children inside their SIGTERM handler, where Python is not
            // finalised (README, "Application groups"): its stop that runs atexit is graceful.
            apache.stop_gracefully();
        } else {
            apache.stop();
        }
        for n in 1..=SITES {
            let marker = apache.dir.path().join(format!("sites/atexit-site{n:02}"));
            let group =
                std::fs::read_to_string(&marker).unwrap_or_else(|_| panic!("{mpm:?}: site{n:02}'s atexit did not run\n{}", apache.error_log()));
            assert_eq!(group, format!("site{n:02}"), "{mpm:?}: an atexit callback ran in another group");
        }
    }
}
