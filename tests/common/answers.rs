//! Reading what the test applications answer: flat JSON ([`Json`], [`json`]), `key=value`
//! reports ([`Report`]), and body hashes ([`sha256_hex`]), through Debian's Python and
//! coreutils so that the tests need no JSON or crypto crate.

use super::*;
use std::io::Write;
use std::process::Command;

/// Just enough JSON reading for the flat objects test apps answer with: Python's own json
/// module (Debian's /usr/bin/python3) flattens it to `key<TAB>value`, strings raw and
/// everything else as JSON text.
pub struct Json(Vec<(String, String)>);

impl Json {
    pub fn parse(text: &str) -> Json {
        let out = Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import json,sys\nfor k,v in json.loads(sys.argv[1]).items(): print(k + '\\t' + (v if isinstance(v, str) else json.dumps(v)))",
                text,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "not JSON: {text}");
        Json(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    pub fn get(&self, key: &str) -> String {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_else(|| panic!("no key {key}"))
    }
}

/// SHA-256 through the system's sha256sum, so the tests need no crypto crate.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum").stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// An answer of `key=value` lines, from a test application that reports what it saw.
pub struct Report(pub String);

impl Report {
    /// GET `path`, which must answer 200.
    pub fn get(apache: &Apache, path: &str) -> Report {
        let r = apache.get(path);
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), apache.error_log());
        Report(r.text())
    }

    pub fn field(&self, key: &str) -> &str {
        let prefix = format!("{key}=");
        self.0.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {key} in {}", self.0))
    }

    pub fn pid(&self) -> i32 {
        self.field("pid").parse().unwrap()
    }
}

/// GET `path`, which must answer 200 with JSON.
pub fn json(apache: &Apache, path: &str) -> Json {
    let response = apache.get(path);
    assert_eq!(response.status, 200, "{path}: {}\n{}", response.text(), apache.error_log());
    Json::parse(&response.text())
}
