//! Real frameworks, unchanged, through a real Apache: Flask (Debian's python3-flask) and
//! Django (python3-django) — routing, JSON, form POST, cookies, redirects, 404, and a
//! 100 MiB upload and a 100 MiB download, both hash-checked.

#[path = "../common/mod.rs"]
mod common;
use common::*;
use std::path::Path;

const MIB: usize = 1 << 20;

fn server(mpm: Mpm) -> Apache {
    let dir = TempDir::new("frameworks");
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/frameworks");
    dir.write("flask_app.wsgi", &std::fs::read_to_string(here.join("flask_app.wsgi")).unwrap());
    copy_tree(&here.join("django_site"), &dir, "django_site");
    Apache::start_in(
        dir,
        mpm,
        "LimitRequestBody 0\n\
         WSGIScriptAlias /flask {dir}/flask_app.wsgi application-group=flask\n\
         WSGIScriptAlias /django {dir}/django_site/wsgi.py application-group=django\n",
    )
}

fn download_digest(expected_mib: usize) -> String {
    let block: Vec<u8> = (0..=255u8).cycle().take(MIB).collect();
    let mut all = Vec::with_capacity(expected_mib * MIB);
    for _ in 0..expected_mib {
        all.extend_from_slice(&block);
    }
    sha256_hex(&all)
}

fn exercise(apache: &Apache, base: &str) {
    let index = apache.get(&format!("{base}/"));
    assert_eq!((index.status, index.text()), (200, format!("{} index", &base[1..])));

    let r = apache.request("POST", &format!("{base}/json"), &[("Content-Type", "application/json")], br#"{"numbers": [1, 2, 3]}"#);
    assert_eq!(r.status, 200);
    assert!(r.header("Content-Type").unwrap().starts_with("application/json"));
    let j = Json::parse(&r.text());
    assert_eq!(j.get("doubled"), "[2, 4, 6]");

    let r = apache.request("POST", &format!("{base}/form"), &[("Content-Type", "application/x-www-form-urlencoded")], b"name=Ada+Lovelace&age=36");
    assert_eq!(r.text(), "hello Ada Lovelace, you are 36");

    let r = apache.get(&format!("{base}/cookie/set"));
    let cookie = r.header("Set-Cookie").expect("Set-Cookie");
    assert!(cookie.starts_with("flavour=oatmeal"), "{cookie}");
    let r = apache.request("GET", &format!("{base}/cookie/get"), &[("Cookie", "flavour=oatmeal")], b"");
    assert_eq!(r.text(), "cookie is oatmeal");

    let r = apache.get(&format!("{base}/redirect"));
    assert_eq!(r.status, 302);
    assert!(r.header("Location").unwrap().ends_with(&format!("{base}/")), "{:?}", r.header("Location"));

    assert_eq!(apache.get(&format!("{base}/no/such/page")).status, 404);

    let upload: Vec<u8> = (0..100 * MIB as u32).map(|i| (i.wrapping_mul(2654435761) >> 15) as u8).collect();
    let r = apache.request("POST", &format!("{base}/upload"), &[("Content-Type", "application/octet-stream")], &upload);
    assert_eq!(r.text(), format!("{} {}", upload.len(), sha256_hex(&upload)), "{base}: 100 MiB upload");
    drop(upload);

    let r = apache.get(&format!("{base}/download/100"));
    assert_eq!(r.body.len(), 100 * MIB, "{base}: 100 MiB download");
    assert_eq!(sha256_hex(&r.body), download_digest(100), "{base}: download hash");
}

#[test]
fn flask_and_django_apps_run_unchanged() {
    let apache = server(Mpm::Event);
    exercise(&apache, "/flask");
    exercise(&apache, "/django");
    let log = apache.error_log();
    assert!(!log.contains("Traceback"), "{log}");
}

#[test]
fn flask_and_django_core_under_prefork_and_worker() {
    for mpm in [Mpm::Prefork, Mpm::Worker] {
        let apache = server(mpm);
        for base in ["/flask", "/django"] {
            assert_eq!(apache.get(&format!("{base}/")).status, 200, "{mpm:?}");
            let r = apache.request("POST", &format!("{base}/form"), &[("Content-Type", "application/x-www-form-urlencoded")], b"name=x&age=1");
            assert_eq!(r.text(), "hello x, you are 1", "{mpm:?}");
        }
    }
}
