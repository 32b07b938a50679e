//! A thin safe view of Apache's `request_rec`, after ngx-rust's `RequestRec`: handlers take
//! `&RequestRec` and never touch the raw record.

use super::apache::{self, request_rec};
use std::ffi::{c_char, c_int, CStr, CString};

#[repr(transparent)]
pub struct RequestRec(request_rec);

/// Reads a C string field as bytes (Apache does not promise UTF-8); null is empty.
fn c_bytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return b"";
    }
    // SAFETY: as for c_str.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// Reads a C string field; null is `None`.
fn c_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: Apache's string fields are NUL-terminated and live as long as the request pool.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

impl RequestRec {
    /// # Safety
    /// `r` must be a live `request_rec` for the duration of the returned borrow.
    pub unsafe fn from_raw<'a>(r: *mut request_rec) -> &'a mut RequestRec {
        // SAFETY: RequestRec is repr(transparent) over request_rec.
        unsafe { &mut *r.cast::<RequestRec>() }
    }

    pub fn as_ptr(&self) -> *mut request_rec {
        &self.0 as *const request_rec as *mut request_rec
    }

    /// The file the request maps to, as bytes (a decoded URI need not be UTF-8).
    pub fn filename(&self) -> &[u8] {
        c_bytes(self.0.filename)
    }
    pub fn handler(&self) -> Option<&str> {
        c_str(self.0.handler)
    }
    pub fn method(&self) -> &[u8] {
        c_bytes(self.0.method)
    }
    pub fn protocol(&self) -> &[u8] {
        c_bytes(self.0.protocol)
    }
    pub fn args(&self) -> &[u8] {
        c_bytes(self.0.args)
    }
    /// When Apache read the request line, in microseconds since the epoch.
    pub fn request_time(&self) -> i64 {
        self.0.request_time
    }
    /// The address and port the request arrived on.
    pub fn listener(&self) -> (String, u16) {
        // SAFETY: every request has a live connection with a local address.
        unsafe {
            let c = &*self.0.connection;
            let port = if c.local_addr.is_null() { 0 } else { (*c.local_addr).port };
            (c_str(c.local_ip).unwrap_or("").to_string(), port)
        }
    }
    /// Whether output filters beyond the protocol's are present (mod_deflate and the like),
    /// which may need a body even for HEAD (`WSGIMapHEADToGET Auto`).
    pub fn has_content_filters(&self) -> bool {
        self.0.output_filters != self.0.proto_output_filters
    }
    pub fn bucket_alloc(&self) -> *mut apache::apr_bucket_alloc_t {
        // SAFETY: every request has a live connection.
        unsafe { (*self.0.connection).bucket_alloc }
    }
    pub fn output_filters(&self) -> *mut apache::ap_filter_t {
        self.0.output_filters
    }
    pub fn uri_bytes(&self) -> &[u8] {
        c_bytes(self.0.uri)
    }
    /// `AcceptPathInfo Off` where the request maps: extra path after the script is refused.
    pub fn rejects_path_info(&self) -> bool {
        self.0.used_path_info == apache::AP_REQ_REJECT_PATH_INFO as i32
    }

    pub fn path_info_bytes(&self) -> &[u8] {
        c_bytes(self.0.path_info)
    }
    /// The request target as the client sent it (with the query string), like CGI's REQUEST_URI.
    pub fn request_target(&self) -> &[u8] {
        c_bytes(self.0.the_request).split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).nth(1).unwrap_or(b"")
    }
    /// Whether `Options ExecCGI` is on where the request maps (its directory, `.htaccess` included).
    pub fn allows_exec_cgi(&self) -> bool {
        // SAFETY: the request is live; ap_allow_options only reads its per-dir config.
        let options = unsafe { apache::ap_allow_options(self.as_ptr()) };
        options & apache::OPT_EXECCGI as i32 != 0
    }
    /// The request this one is a sub-request of, if it is one.
    pub fn main(&self) -> Option<&RequestRec> {
        if self.0.main.is_null() {
            return None;
        }
        // SAFETY: a sub-request's main request outlives it; a shared view only (the handler
        // may hold another shared view of it), through the transparent wrapper.
        Some(unsafe { &*self.0.main.cast::<RequestRec>() })
    }
    /// Where Apache maps `path` (a decoded URL path) in a sub-request: its filename followed by
    /// its own path info, as `ap_add_cgi_vars` computes CGI's PATH_TRANSLATED.
    pub fn lookup_path(&self, path: &[u8]) -> Option<Vec<u8>> {
        let path = CString::new(path.to_vec()).ok()?;
        // SAFETY: live request and pool; with partial=1 this is ap_escape_uri, which re-escapes
        // the decoded path for the sub-request's URI parser (as ap_add_cgi_vars does).
        let escaped = unsafe { apache::ap_os_escape_path(self.0.pool, path.as_ptr(), 1) };
        // SAFETY: a NUL-terminated pool string and the live parent request.
        let sub = unsafe { apache::ap_sub_req_lookup_uri(escaped, self.as_ptr(), std::ptr::null_mut()) };
        if sub.is_null() {
            return None;
        }
        // SAFETY: a live sub-request; its strings are copied out before it is destroyed, once.
        unsafe {
            let found = (!(*sub).filename.is_null()).then(|| [c_bytes((*sub).filename), c_bytes((*sub).path_info)].concat());
            apache::ap_destroy_sub_req(sub);
            found
        }
    }
    /// The length of `uri` before PATH_INFO, by Apache's own rule (`ap_find_path_info`).
    pub fn script_name_len(&self) -> usize {
        let uri = self.uri_bytes();
        if self.path_info_bytes().is_empty() {
            return uri.len();
        }
        // SAFETY: both are NUL-terminated strings of this live request.
        let n = unsafe { apache::ap_find_path_info(self.0.uri, self.0.path_info) };
        usize::try_from(n).unwrap_or(0).min(uri.len())
    }
    pub fn server(&self) -> *mut apache::server_rec {
        self.0.server
    }
    pub fn per_dir_config(&self) -> *mut apache::ap_conf_vector_t {
        self.0.per_dir_config
    }
    pub fn pool(&self) -> *mut apache::apr_pool_t {
        self.0.pool
    }
    pub fn file_type(&self) -> apache::apr_filetype_e {
        self.0.finfo.filetype
    }
    /// The host name the client asked for (Host header), if any.
    pub fn hostname(&self) -> Option<String> {
        c_str(self.0.hostname).map(str::to_string)
    }
    pub fn server_hostname(&self) -> String {
        // SAFETY: every request has a live server_rec.
        c_str(unsafe { (*self.0.server).server_hostname }).unwrap_or("localhost").to_string()
    }

    /// Copies a string into the request pool, for fields Apache keeps after we return.
    pub fn pool_str(&self, s: &str) -> *const c_char {
        self.pool_bytes(s.as_bytes())
    }

    /// As [`RequestRec::pool_str`], for bytes that need not be UTF-8 (NULs are left out).
    pub fn pool_bytes(&self, s: &[u8]) -> *const c_char {
        let c = CString::new(s.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>()).unwrap_or_default();
        // SAFETY: the pool is live; apr_pstrdup copies the bytes.
        unsafe { apache::apr_pstrdup(self.0.pool, c.as_ptr()) }
    }

    /// Apache's authenticated user (`r->user`, `REMOTE_USER`), copied into the request pool.
    pub fn set_user(&mut self, user: &[u8]) {
        self.0.user = self.pool_bytes(user).cast_mut();
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&[u8]> {
        (!self.0.user.is_null()).then(|| c_bytes(self.0.user))
    }

    /// `http` or `https`, as the modules that own the connection say (mod_ssl), already in
    /// the access and auth phases, before mod_ssl's fixups set `HTTPS`.
    pub fn scheme(&self) -> &[u8] {
        // SAFETY: live request; the hook returns a static string (or null if none answers).
        c_bytes(unsafe { apache::ap_run_http_scheme(self.as_ptr()) })
    }

    /// The client's host name where `HostnameLookups` gives one, else its address.
    pub fn remote_host(&self) -> &[u8] {
        // SAFETY: live request and connection; the result is a pool string or null.
        let name = unsafe {
            apache::ap_get_remote_host(self.0.connection, self.0.per_dir_config.cast(), apache::REMOTE_HOST as c_int, std::ptr::null_mut())
        };
        if name.is_null() {
            c_bytes(self.0.useragent_ip)
        } else {
            c_bytes(name)
        }
    }

    /// Whether Apache will ask for credentials here and not settle for any one requirement
    /// (mod_wsgi logs a refused access only then, as mod_authz_host does).
    pub fn denial_is_final(&self) -> bool {
        // SAFETY: live request.
        unsafe { apache::ap_satisfies(self.as_ptr()) != apache::SATISFY_ANY as c_int || apache::ap_some_authn_required(self.as_ptr()) == 0 }
    }

    /// The client's address as Apache saw it (`useragent_ip`).
    pub fn useragent_ip(&self) -> &[u8] {
        c_bytes(self.0.useragent_ip)
    }

    /// The request's log id (`%L`), when a module or the error log's format made one.
    pub fn log_id(&self) -> &[u8] {
        c_bytes(self.0.log_id)
    }
    /// The request's host name, as bytes without a copy (empty when none).
    pub fn hostname_bytes(&self) -> &[u8] {
        c_bytes(self.0.hostname)
    }

    /// Sets the response's Content-Type (copied into the request's pool).
    pub fn set_content_type(&mut self, content_type: &str) {
        let value = self.pool_str(content_type);
        // SAFETY: live request; the value is a pool string that lives as long as it.
        unsafe { apache::ap_set_content_type(self.as_ptr(), value) };
    }

    /// Writes `data` to the client (a handler's whole, small body). False when the client is
    /// gone.
    pub fn write(&mut self, data: &[u8]) -> bool {
        data.chunks(1 << 30).all(|piece| {
            // SAFETY: live request; the piece fits ap_rwrite's int length, and Apache copies or
            // sends the bytes before returning.
            unsafe { apache::ap_rwrite(piece.as_ptr().cast(), piece.len() as c_int, self.as_ptr()) >= 0 }
        })
    }

    /// The status of the response as set so far.
    pub fn status(&self) -> i32 {
        self.0.status
    }

    pub fn set_filename(&mut self, path: &[u8]) {
        self.0.filename = self.pool_bytes(path) as *mut c_char;
    }
    pub fn set_handler(&mut self, s: &str) {
        self.0.handler = self.pool_str(s);
    }
    pub fn set_status(&mut self, status: i32, line: &str) {
        self.0.status = status;
        self.0.status_line = self.pool_str(line);
    }

    pub fn notes(&self) -> Table {
        Table(self.0.notes)
    }
    pub fn subprocess_env(&self) -> Table {
        Table(self.0.subprocess_env)
    }
    pub fn headers_in(&self) -> Table {
        Table(self.0.headers_in)
    }
    pub fn headers_out(&self) -> Table {
        Table(self.0.headers_out)
    }
    /// Keeps caches (mod_cache) from storing this response.
    pub fn set_no_cache(&mut self) {
        self.0.no_cache = 1;
        if !self.0.main.is_null() {
            // SAFETY: a sub-request's main request outlives it.
            unsafe { (*self.0.main).no_cache = 1 };
        }
    }
    /// Closes the connection after this response instead of keeping it alive.
    pub fn close_connection(&mut self) {
        // SAFETY: every request has a live connection.
        unsafe { (*self.0.connection).keepalive = apache::AP_CONN_CLOSE };
    }
}

/// An `apr_table_t` of the request (the table copies what is stored into its own pool).
pub struct Table(*mut apache::apr_table_t);

impl Table {
    /// A value as bytes without a copy; it lives in the request's pool, hence `'a` (the
    /// request's).
    pub fn get_bytes<'a>(&self, key: &CStr) -> Option<&'a [u8]> {
        // SAFETY: live table; apr_table_get returns null or a NUL-terminated pool string.
        let v = unsafe { apache::apr_table_get(self.0, key.as_ptr()) };
        // SAFETY: as above; the pool outlives the request's handler.
        (!v.is_null()).then(|| unsafe { CStr::from_ptr(v) }.to_bytes())
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let key = CString::new(key).ok()?;
        // SAFETY: live table; apr_table_get returns null or a pool string.
        let v = unsafe { apache::apr_table_get(self.0, key.as_ptr()) };
        if v.is_null() {
            None
        } else {
            // SAFETY: non-null table values are NUL-terminated.
            Some(unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned())
        }
    }

    pub fn set(&self, key: &str, value: &[u8]) {
        self.store(key, value, false)
    }

    pub fn add(&self, key: &str, value: &[u8]) {
        self.store(key, value, true)
    }

    pub fn unset(&self, key: &str) {
        let Ok(key) = CString::new(key) else { return };
        // SAFETY: live table; apr_table_unset only removes entries.
        unsafe { apache::apr_table_unset(self.0, key.as_ptr()) }
    }

    fn store(&self, key: &str, value: &[u8], add: bool) {
        // NULs were refused by the callers; strip defensively so nothing is silently cut.
        let k = CString::new(key.replace('\0', "")).unwrap_or_default();
        let v = CString::new(value.iter().copied().filter(|&b| b != 0).collect::<Vec<u8>>()).unwrap_or_default();
        // SAFETY: live table; apr_table_set/add copy key and value into the table's pool.
        unsafe {
            if add {
                apache::apr_table_add(self.0, k.as_ptr(), v.as_ptr())
            } else {
                apache::apr_table_set(self.0, k.as_ptr(), v.as_ptr())
            }
        }
    }

    /// Every entry, as raw bytes (Apache does not promise UTF-8).
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        // SAFETY: apr_table_elts returns the table's live array header.
        let arr = unsafe { &*apache::apr_table_elts(self.0) };
        let elts = arr.elts.cast::<apache::apr_table_entry_t>();
        (0..arr.nelts as usize)
            .filter_map(|i| {
                // SAFETY: elts holds nelts entries.
                let e = unsafe { &*elts.add(i) };
                if e.key.is_null() {
                    return None;
                }
                let (k, v) = (c_bytes(e.key).to_vec(), c_bytes(e.val).to_vec());
                Some((k, v))
            })
            .collect()
    }
}
