//! The GIL race of `own_gil.rs` and `replicas.rs`: Python that can only finish when two GILs
//! run at once ([`GIL_RACE_PY`]), and the requests that run it ([`gil_race`]).

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// Python for the GIL races of `own_gil.rs` and `replicas.rs`, to put before an app's own code:
/// `spin(path, bound)` turns this GIL's switch interval up to 1000 s and spins in bytecode
/// (reading a shared `mmap`, which never releases the GIL) until `poke(path)`, in another
/// request, writes byte 0, or `bound` seconds pass; it returns `seen` or `timeout`. On one GIL
/// the poke cannot run until the spin gives up, so `seen` proves two GILs ran at once.
pub const GIL_RACE_PY: &str = r#"
import mmap as _race_mmap, sys as _race_sys, time as _race_time

def spin(path, bound):
    with open(path, 'r+b') as f:
        m = _race_mmap.mmap(f.fileno(), 2)
    old = _race_sys.getswitchinterval()
    _race_sys.setswitchinterval(1000.0)
    try:
        m[1] = 1
        deadline = _race_time.monotonic() + bound
        while m[0] == 0:
            if _race_time.monotonic() > deadline:
                return 'timeout'
        return 'seen'
    finally:
        _race_sys.setswitchinterval(old)
        m.close()

def poke(path):
    with open(path, 'r+b') as f:
        m = _race_mmap.mmap(f.fileno(), 2)
    m[0] = 1
    m.close()
"#;

/// Runs a [`GIL_RACE_PY`] race: `GET {spin_path}?FILE,BOUND` (which must call `spin`), and
/// once it spins (byte 1 of the shared file set), `GET {poke_path}?FILE` (which must call
/// `poke`). Returns the texts of both responses (spin, poke), each asserted a 200.
pub fn gil_race(apache: &Apache, spin_path: &str, poke_path: &str, bound: u32) -> (String, String) {
    let tag: String = format!("{spin_path}-{poke_path}").chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let file = apache.dir.write(&format!("race-{tag}"), "\0\0");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let file = file.display().to_string();
    std::thread::scope(|scope| {
        let spinning = scope.spawn(|| apache.get(&format!("{spin_path}?{file},{bound}")));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::fs::read(&file).unwrap()[1] == 0 {
            assert!(Instant::now() < deadline, "the spin at {spin_path} never began\n{}", apache.error_log());
            std::thread::sleep(Duration::from_millis(5));
        }
        let poked = apache.get(&format!("{poke_path}?{file}"));
        assert_eq!(poked.status, 200, "{poke_path}: {}\n{}", poked.text(), apache.error_log());
        let spun = spinning.join().unwrap();
        assert_eq!(spun.status, 200, "{spin_path}: {}\n{}", spun.text(), apache.error_log());
        (spun.text(), poked.text())
    })
}
