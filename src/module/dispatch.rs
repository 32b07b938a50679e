//! The module's side of `WSGIDispatchScript`: asks the engine to run the script (see the
//! engine's `interp/dispatch.rs`) before the request is served, and collects its answers. The
//! script runs in Apache's child, whatever daemon group the request then goes to: it needs
//! Python there, as in mod_wsgi.

use super::apache;
use super::callbacks::CallbackContext;
use super::config::DispatchScript;
use super::group_name::{GroupSpec, RequestFacts};
use super::hooks::engine;
use super::log;
use super::record::server_config;
use super::request::RequestRec;
use super::trampoline::trampoline;
use crate::abi;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the configuration has a `WSGIDispatchScript`, or an access or auth script
/// (`auth.rs`), anywhere in the server's files: Apache's children then start Python even
/// under `WSGIRestrictEmbedded On` (as mod_wsgi's `wsgi_python_required`), to run them;
/// applications still may not run there.
static CONFIGURED: AtomicBool = AtomicBool::new(false);

/// The directive was read (any context).
pub fn note_configured() {
    CONFIGURED.store(true, Ordering::Relaxed);
}

/// Before the configuration is read (again).
pub fn reset() {
    CONFIGURED.store(false, Ordering::Relaxed);
}

/// Whether Apache's children need Python for dispatch, access or auth scripts.
pub fn configured() -> bool {
    CONFIGURED.load(Ordering::Relaxed)
}

/// What the script's functions answered (`None`: not defined, or returned `None`).
#[derive(Default)]
pub struct Answers {
    pub process_group: Option<Vec<u8>>,
    pub application_group: Option<Vec<u8>>,
    pub callable_object: Option<Vec<u8>>,
}

/// Runs `dispatch` for the request, with `environ` (the request's, without the module's
/// words to the engine); an error status after logging why.
pub fn run(r: &RequestRec, facts: &impl RequestFacts, environ: &[(Vec<u8>, Vec<u8>)], dispatch: &DispatchScript) -> Result<Answers, c_int> {
    let Some(engine) = engine() else {
        log::request(log::ERR, r.as_ptr(), &format!(
            "WSGIDispatchScript '{}' needs Python in Apache's children, which is not running here (WSGIRestrictEmbedded On, or see the child start-up lines).",
            dispatch.script
        ));
        return Err(apache::HTTP_INTERNAL_SERVER_ERROR as c_int);
    };
    // The main interpreter unless the directive names a group, as in mod_wsgi.
    let group = dispatch.group.as_ref().map_or_else(String::new, |spec| GroupSpec::expand(Some(spec), facts));
    let mut environ = environ.to_vec();
    // SAFETY: every request has a live server_rec with our config.
    let server = unsafe { server_config(r.server()) };
    environ.extend(server.interpreter_entries("", &group));
    let pairs: Vec<abi::Pair> = environ.iter().map(|(k, v)| abi::Pair { name: abi::Bytes::new(k), value: abi::Bytes::new(v) }).collect();
    let mut ctx = CallbackContext::new(r, false, false);
    let request = ctx.engine_request(&pairs, dispatch.script.as_bytes(), b"", group.as_bytes(), None, None);
    let mut answers = Answers::default();
    // SAFETY: request and everything it points to (ctx, pairs, the strings) and `answers`
    // outlive the call; `set_answer` is given `answers` as its context.
    let status = unsafe { (engine.dispatch)(&request, (&mut answers as *mut Answers).cast(), set_answer) };
    match status {
        0 => Ok(answers),
        -2 => Err(apache::HTTP_SERVICE_UNAVAILABLE as c_int),
        _ => Err(apache::HTTP_INTERNAL_SERVER_ERROR as c_int),
    }
}

/// `abi::AnswerFn`: keeps a copy of one answer.
unsafe extern "C" fn set_answer(ctx: *mut c_void, which: c_int, value: abi::Bytes) {
    trampoline("dispatch script answer", (), || {
        // SAFETY: ctx is the `Answers` that `run` passed, alive for the engine's call; the
        // value is valid for this call.
        let (answers, value) = unsafe { (&mut *ctx.cast::<Answers>(), value.as_slice().to_vec()) };
        let slot = match which {
            abi::dispatch::PROCESS_GROUP => &mut answers.process_group,
            abi::dispatch::APPLICATION_GROUP => &mut answers.application_group,
            abi::dispatch::CALLABLE_OBJECT => &mut answers.callable_object,
            _ => return,
        };
        *slot = Some(value);
    })
}
