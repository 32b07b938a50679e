//! `WSGITrustedProxyHeaders` and `WSGITrustedProxies`: which `X-Forwarded-*` style headers an
//! application may believe, and from which clients, as mod_wsgi 6.1 does it.
//!
//! mod_wsgi 6.1 knows fifteen headers in six categories (the client's address, the host, the
//! server name, the port, the mount point, the scheme). A configured header from a trusted
//! peer rewrites the CGI variable it stands for; once any header of a category is configured,
//! every other header of that category is removed from the environ (whether or not the peer
//! is trusted), so that a client cannot pass a spoofed synonym to the application. Headers of
//! categories nobody configured are left alone, visible as `HTTP_*`. Without
//! `WSGITrustedProxies`, every peer is trusted with the configured headers (mod_wsgi's rule).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The six kinds of thing a proxy header can say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Client,
    Host,
    Server,
    Port,
    ScriptName,
    Scheme,
}

const CATEGORIES: [Category; 6] = [Category::Client, Category::Host, Category::Server, Category::Port, Category::ScriptName, Category::Scheme];

/// What a header's value does to the environ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rewrite {
    /// `X-Forwarded-For`: the client is found in the chain (see [`forwarded_for`]).
    ForwardedFor,
    /// The value, as it is, becomes this variable.
    Verbatim(&'static str),
    /// The value becomes SCRIPT_NAME and `mod_wsgi.mount_point`.
    ScriptName,
    /// `https` (any case) sets HTTPS=1, `http` removes HTTPS, anything else nothing.
    SchemeName,
    /// `on`, `true`, `1` (any case) set HTTPS=1; `off`, `false`, `0` remove it.
    SchemeFlag,
}

/// mod_wsgi 6.1's registry (`wsgi_proxy_header_registry` in wsgi_environ.c): each header in
/// environ form, its category and what it does.
const REGISTRY: [(&str, Category, Rewrite); 15] = [
    ("HTTP_X_FORWARDED_FOR", Category::Client, Rewrite::ForwardedFor),
    ("HTTP_X_CLIENT_IP", Category::Client, Rewrite::Verbatim("REMOTE_ADDR")),
    ("HTTP_X_REAL_IP", Category::Client, Rewrite::Verbatim("REMOTE_ADDR")),
    ("HTTP_X_FORWARDED_HOST", Category::Host, Rewrite::Verbatim("HTTP_HOST")),
    ("HTTP_X_HOST", Category::Host, Rewrite::Verbatim("HTTP_HOST")),
    ("HTTP_X_FORWARDED_SERVER", Category::Server, Rewrite::Verbatim("SERVER_NAME")),
    ("HTTP_X_FORWARDED_PORT", Category::Port, Rewrite::Verbatim("SERVER_PORT")),
    ("HTTP_X_SCRIPT_NAME", Category::ScriptName, Rewrite::ScriptName),
    ("HTTP_X_FORWARDED_SCRIPT_NAME", Category::ScriptName, Rewrite::ScriptName),
    ("HTTP_X_FORWARDED_PROTO", Category::Scheme, Rewrite::SchemeName),
    ("HTTP_X_FORWARDED_SCHEME", Category::Scheme, Rewrite::SchemeName),
    ("HTTP_X_SCHEME", Category::Scheme, Rewrite::SchemeName),
    ("HTTP_X_FORWARDED_HTTPS", Category::Scheme, Rewrite::SchemeFlag),
    ("HTTP_X_FORWARDED_SSL", Category::Scheme, Rewrite::SchemeFlag),
    ("HTTP_X_HTTPS", Category::Scheme, Rewrite::SchemeFlag),
];

/// A header name as written in `WSGITrustedProxyHeaders` (`X-Forwarded-For`) in environ form
/// (`HTTP_X_FORWARDED_FOR`): letters and digits upper-cased, `-` as `_`. Any name is accepted
/// (one mod_wsgi does not know has no effect), but only letters, digits and `-`: mod_wsgi
/// makes no environ name of any other (`X_Forwarded_For`, `HTTP_X_FORWARDED_FOR`) and crashes
/// at the first request.
pub fn environ_name(header: &str) -> Result<String, String> {
    if header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Ok(format!("HTTP_{}", header.to_ascii_uppercase().replace('-', "_")));
    }
    let hint = header.strip_prefix("HTTP_").unwrap_or(header).replace('_', "-");
    let hint = if !hint.is_empty() && hint.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        format!(" (as a request header: '{hint}')")
    } else {
        String::new()
    };
    Err(format!(
        "WSGITrustedProxyHeaders: '{header}' is not an HTTP header name{hint}: only letters, digits and '-' may be used \
         (mod_wsgi accepts such a name and then crashes at the first request)"
    ))
}

/// An entry of `WSGITrustedProxies`: an address, an address with a prefix length or a dotted
/// mask, or an IPv4 network written short (`10.0.0` is `10.0.0.0/24`), as `apr_ipsubnet_create`
/// reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    v6: bool,
    /// The network and its mask: IPv4 in the low 32 bits.
    sub: u128,
    mask: u128,
}

impl Network {
    /// Parses an entry as mod_wsgi 6.1 does (`wsgi_set_trusted_proxies`), with its messages.
    pub fn parse(text: &str) -> Result<Network, String> {
        let unparsable = || format!("Unable to parse trusted proxy IP address/subnet of \"{text}\".");
        let bad_ip = || format!("{} The specified IP address is invalid.", unparsable());
        let bad_mask = || format!("{} The specified network mask is invalid.", unparsable());
        // mod_wsgi's wsgi_looks_like_ip: IPv6 (lower-case hex) if there is a ':', else IPv4.
        let allowed: &[u8] = if text.contains(':') { b"0123456789abcdef:/" } else { b"0123456789./" };
        if text.is_empty() || !text.bytes().all(|b| allowed.contains(&b)) {
            return Err(unparsable());
        }
        let (ip, mask) = match text.split_once('/') {
            Some((ip, mask)) => (ip, Some(mask)),
            None => (text, None),
        };
        // apr_ipsubnet_create's parse_ip: an address; without a mask also a short network.
        let mut network = if let Ok(v6) = ip.parse::<Ipv6Addr>() {
            if v6.to_ipv4_mapped().is_some() {
                return Err(bad_ip());
            }
            Network { v6: true, sub: u128::from(v6), mask: u128::MAX }
        } else if let Some(v4) = apr_inet_pton4(ip) {
            Network { v6: false, sub: u32::from(v4).into(), mask: u32::MAX.into() }
        } else if mask.is_none() {
            short_network(ip).ok_or_else(bad_ip)?
        } else {
            return Err(bad_ip());
        };
        if let Some(mask) = mask {
            let max_bits = if network.v6 { 128 } else { 32 };
            // strtol: the characters allowed here leave only digits to read.
            let bits = (!mask.is_empty() && mask.bytes().all(|b| b.is_ascii_digit())).then(|| mask.parse::<u32>().unwrap_or(u32::MAX));
            network.mask = match bits {
                Some(bits) if bits > 0 && bits <= max_bits => (u128::MAX << (128 - bits)) >> (128 - max_bits),
                _ => match apr_inet_pton4(mask) {
                    Some(dotted) if !network.v6 => u32::from(dotted).into(),
                    _ => return Err(bad_mask()),
                },
            };
        }
        network.sub &= network.mask;
        Ok(network)
    }

    /// Whether `ip` is inside (`apr_ipsubnet_test`): an IPv4-mapped IPv6 address counts as
    /// its IPv4 address, and only for IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => !self.v6 && u128::from(u32::from(v4)) & self.mask == self.sub,
            IpAddr::V6(v6) => self.v6 && u128::from(v6) & self.mask == self.sub,
        }
    }
}

/// APR's own `inet_pton` for IPv4: exactly four decimal parts of at most 255 (leading zeros
/// allowed, and decimal).
fn apr_inet_pton4(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut bytes = [0u8; 4];
    for (byte, part) in bytes.iter_mut().zip(&parts) {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *byte = part.bytes().try_fold(0u32, |n, b| Some(n * 10 + u32::from(b - b'0')).filter(|n| *n <= 255))? as u8;
    }
    Some(Ipv4Addr::from(bytes))
}

/// APR's `parse_network`: `a`, `a.b`, `a.b.c` (a trailing dot allowed) as the network of
/// those leading bytes.
fn short_network(text: &str) -> Option<Network> {
    if text.len() > "255.255.255.255".len() {
        return None;
    }
    let (mut sub, mut mask) = (0u32, 0u32);
    let mut shift: i32 = 24;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || shift < 0 {
            return None;
        }
        let (number, after) = rest.split_at(digits);
        rest = match after.strip_prefix('.') {
            Some(after) => after,
            None if after.is_empty() => after,
            None => return None,
        };
        let octet: u32 = number.parse().ok().filter(|n| *n <= 255)?;
        sub |= octet << shift;
        mask |= 0xff << shift;
        shift -= 8;
    }
    Some(Network { v6: false, sub: sub.into(), mask: mask.into() })
}

/// An address as mod_wsgi 6.1 reads one from `X-Forwarded-For` or REMOTE_ADDR
/// (`apr_sockaddr_info_get`, that is `getaddrinfo`), without ever asking DNS: IPv4 in all the
/// forms of `inet_aton` (`127.1`, `0x7f.0.0.1`, `010.0.0.1` is octal), IPv6 with an optional
/// numeric scope (`fe80::1%2`), and the name `localhost` as 127.0.0.1. mod_wsgi resolves any
/// other name too; here it is not an address.
pub fn parse_address(text: &[u8]) -> Option<IpAddr> {
    if text.eq_ignore_ascii_case(b"localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let text = std::str::from_utf8(text).ok()?;
    if let Some(v4) = inet_aton(text) {
        return Some(IpAddr::V4(v4));
    }
    let (address, scope) = match text.split_once('%') {
        Some((address, scope)) => (address, Some(scope)),
        None => (text, None),
    };
    if scope.is_some_and(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.parse::<u32>().is_err()) {
        return None;
    }
    address.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// glibc's `inet_aton` (as `getaddrinfo` uses it: the whole text): one to four parts, each
/// decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes.
fn inet_aton(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut value = 0u32;
    for (i, part) in parts.iter().enumerate() {
        if !part.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let number = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            match hex.trim_start_matches('0') {
                "" => 0,
                digits => u64::from_str_radix(digits, 16).ok()?,
            }
        } else if part.len() > 1 && part.starts_with('0') {
            if !part.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return None;
            }
            match part.trim_start_matches('0') {
                "" => 0,
                digits => u64::from_str_radix(digits, 8).ok()?,
            }
        } else {
            if !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u64>().ok()?
        };
        let last = i + 1 == parts.len();
        let limit: u64 = if last { 0xffff_ffff >> (8 * i) } else { 0xff };
        if number > limit {
            return None;
        }
        if last {
            value |= number as u32;
        } else {
            value |= (number as u32) << (24 - 8 * i);
        }
    }
    Some(Ipv4Addr::from(value))
}

/// The configuration that applies to one request.
pub struct Trust<'a> {
    /// `WSGITrustedProxyHeaders`, in environ form, in configured order.
    pub headers: &'a [String],
    /// `WSGITrustedProxies`, if given (an empty list trusts no peer).
    pub proxies: Option<&'a [Network]>,
}

type Environ = Vec<(Vec<u8>, Vec<u8>)>;

fn get<'e>(environ: &'e Environ, key: &str) -> Option<&'e [u8]> {
    environ.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v.as_slice())
}

fn set(environ: &mut Environ, key: &str, value: Vec<u8>) {
    unset(environ, key);
    environ.push((key.as_bytes().to_vec(), value));
}

fn unset(environ: &mut Environ, key: &str) {
    environ.retain(|(k, _)| k != key.as_bytes());
}

fn trim(bytes: &[u8]) -> &[u8] {
    // apr_isspace: the C locale's white space.
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !space(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Applies the configured headers to an environ (CGI variables by name, REMOTE_ADDR the
/// peer's address), as mod_wsgi 6.1's `wsgi_process_proxy_headers`. Returns whether a scheme
/// header was applied (then the connection's own HTTPS does not count).
pub fn apply(environ: &mut Environ, trust: &Trust) -> bool {
    let trusted_peer = match trust.proxies {
        None => true,
        Some(proxies) => get(environ, "REMOTE_ADDR").and_then(parse_address).is_some_and(|ip| proxies.iter().any(|n| n.contains(ip))),
    };
    let mut matched = [false; CATEGORIES.len()];
    let mut kept: [Option<&str>; CATEGORIES.len()] = [None; CATEGORIES.len()];
    let slot = |category: Category| CATEGORIES.iter().position(|c| *c == category).unwrap_or(0);
    for name in trust.headers {
        let Some(&(header, category, rewrite)) = REGISTRY.iter().find(|(h, _, _)| *h == name.as_str()) else { continue };
        matched[slot(category)] = true;
        if !trusted_peer {
            continue;
        }
        let Some(value) = get(environ, header).map(<[u8]>::to_vec) else { continue };
        match rewrite {
            Rewrite::ForwardedFor => forwarded_for(environ, &value, trust.proxies),
            Rewrite::Verbatim(key) => set(environ, key, value),
            Rewrite::ScriptName => {
                set(environ, "mod_wsgi.mount_point", value.clone());
                set(environ, "SCRIPT_NAME", value);
            }
            Rewrite::SchemeName if value.eq_ignore_ascii_case(b"https") => set(environ, "HTTPS", b"1".to_vec()),
            Rewrite::SchemeName if value.eq_ignore_ascii_case(b"http") => unset(environ, "HTTPS"),
            Rewrite::SchemeFlag if [&b"on"[..], b"true", b"1"].iter().any(|v| value.eq_ignore_ascii_case(v)) => set(environ, "HTTPS", b"1".to_vec()),
            Rewrite::SchemeFlag if [&b"off"[..], b"false", b"0"].iter().any(|v| value.eq_ignore_ascii_case(v)) => unset(environ, "HTTPS"),
            Rewrite::SchemeName | Rewrite::SchemeFlag => {}
        }
        kept[slot(category)] = Some(header);
    }
    // Every other header of a configured category goes, trusted peer or not.
    for (i, category) in CATEGORIES.iter().enumerate() {
        if matched[i] {
            for (header, _, _) in REGISTRY.iter().filter(|(h, c, _)| c == category && kept[i] != Some(*h)) {
                unset(environ, header);
            }
        }
    }
    kept[slot(Category::Scheme)].is_some()
}

/// `X-Forwarded-For` (Apache has joined repeated headers with ", "). Without
/// `WSGITrustedProxies` the client is the first element, believed as it is. With it, the chain
/// is walked from the right past the trusted proxies: the client is the element before the
/// leftmost trusted one of that run (or that one, if it is first), and the header keeps only
/// the chain from the client on; if the last element is not a trusted proxy, it is the client.
fn forwarded_for(environ: &mut Environ, value: &[u8], proxies: Option<&[Network]>) {
    let mut elements = value.split(|b| *b == b',').map(trim).filter(|e| !e.is_empty());
    let Some(proxies) = proxies else {
        if let Some(first) = elements.next() {
            set(environ, "REMOTE_ADDR", first.to_vec());
        }
        return;
    };
    let elements: Vec<&[u8]> = elements.collect();
    let Some(last) = elements.last() else { return };
    let mut first = None;
    for (i, element) in elements.iter().enumerate().rev() {
        match parse_address(element) {
            Some(ip) if proxies.iter().any(|n| n.contains(ip)) => first = Some(i),
            _ => break,
        }
    }
    let (client, chain) = match first {
        Some(first) => {
            let client = first.saturating_sub(1);
            (elements[client].to_vec(), elements[client..].join(&b", "[..]))
        }
        None => (last.to_vec(), last.to_vec()),
    };
    set(environ, "REMOTE_ADDR", client);
    set(environ, "HTTP_X_FORWARDED_FOR", chain);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(pairs: &[(&str, &str)]) -> Environ {
        pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }
    fn value(e: &Environ, k: &str) -> Option<String> {
        get(e, k).map(|v| String::from_utf8_lossy(v).into_owned())
    }
    fn headers(names: &str) -> Vec<String> {
        names.split_whitespace().map(|n| environ_name(n).unwrap()).collect()
    }
    fn networks(list: &str) -> Vec<Network> {
        list.split_whitespace().map(|n| Network::parse(n).unwrap()).collect()
    }
    /// Applies `names` (and `proxies`, if any) to an environ of REMOTE_ADDR=`peer` and these
    /// request headers; returns the environ and whether a scheme header was applied.
    fn run(names: &str, proxies: Option<&str>, peer: &str, request: &[(&str, &str)]) -> (Environ, bool) {
        let mut e =
            env(&[("REMOTE_ADDR", peer), ("HTTP_HOST", "localhost"), ("SERVER_NAME", "localhost"), ("SERVER_PORT", "80"), ("SCRIPT_NAME", "/app")]);
        e.extend(env(request));
        let names = headers(names);
        let proxies = proxies.map(networks);
        let applied = apply(&mut e, &Trust { headers: &names, proxies: proxies.as_deref() });
        (e, applied)
    }
    fn xff(proxies: Option<&str>, chain: &str) -> (Option<String>, Option<String>) {
        let (e, _) = run("X-Forwarded-For", proxies, "127.0.0.1", &[("HTTP_X_FORWARDED_FOR", chain)]);
        (value(&e, "REMOTE_ADDR"), value(&e, "HTTP_X_FORWARDED_FOR"))
    }
    fn pair(a: &str, b: &str) -> (Option<String>, Option<String>) {
        (Some(a.to_string()), Some(b.to_string()))
    }

    #[test]
    fn header_names() {
        assert_eq!(environ_name("X-Forwarded-For").unwrap(), "HTTP_X_FORWARDED_FOR");
        assert_eq!(environ_name("x-real-ip").unwrap(), "HTTP_X_REAL_IP");
        assert_eq!(environ_name("X-Bogus").unwrap(), "HTTP_X_BOGUS");
        for bad in ["X_Forwarded_For", "HTTP_X_FORWARDED_FOR", "X-Forwarded-For:", "X Host", "X-Ünïcode"] {
            let e = environ_name(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("crashes"), "{e}");
        }
        assert!(environ_name("HTTP_X_FORWARDED_FOR").unwrap_err().contains("'X-FORWARDED-FOR'"));
    }

    #[test]
    fn networks_as_apr_reads_them() {
        let inside = |net: &str, ip: &str| Network::parse(net).unwrap().contains(ip.parse().unwrap());
        assert!(inside("10.0.0.0/8", "10.1.2.3") && !inside("10.0.0.0/8", "11.0.0.1"));
        assert!(inside("10.0.0", "10.0.0.77") && !inside("10.0.0", "10.0.1.1"));
        assert!(inside("10.", "10.9.9.9") && inside("10.0.0.0/255.0.0.0", "10.200.0.1"));
        assert!(inside("10.0.0.0/255.0.255.0", "10.9.0.9") && !inside("10.0.0.0/255.0.255.0", "10.0.9.0"));
        assert!(inside("010.0.0.1/32", "10.0.0.1"), "APR's inet_pton reads leading zeros as decimal");
        assert!(inside("1.2.3.4/0.0.0.0", "8.8.8.8"));
        assert!(inside("::1", "::1") && !inside("::1", "127.0.0.1") && inside("fe80::/10", "fe80::1"));
        assert!(inside("10.0.0.0/8", "::ffff:10.0.0.5"), "IPv4-mapped addresses are IPv4");
        assert!(!inside("::/1", "::ffff:10.0.0.5") && !inside("::/1", "10.0.0.5"));
        let plain = |t: &str| format!("Unable to parse trusted proxy IP address/subnet of \"{t}\".");
        let ip = |t: &str| format!("{} The specified IP address is invalid.", plain(t));
        let mask = |t: &str| format!("{} The specified network mask is invalid.", plain(t));
        let cases = [
            ("localhost", plain("localhost")),
            ("FE80::1", plain("FE80::1")),
            ("::1/255.0.0.0", plain("::1/255.0.0.0")),
            ("10.0.0.0/+8", plain("10.0.0.0/+8")),
            ("", plain("")),
            ("10.0.0.0/33", mask("10.0.0.0/33")),
            ("0.0.0.0/0", mask("0.0.0.0/0")),
            ("10.0.0.0/", mask("10.0.0.0/")),
            ("10.0.0.0/8/8", mask("10.0.0.0/8/8")),
            ("10.0.0.0/255.0.0", mask("10.0.0.0/255.0.0")),
            ("::1/0", mask("::1/0")),
            ("::1/129", mask("::1/129")),
            ("10.0.0.0.0", ip("10.0.0.0.0")),
            ("1.2.3.256", ip("1.2.3.256")),
            ("10.0.0/8", ip("10.0.0/8")),
            ("::ffff:0:0/96", ip("::ffff:0:0/96")),
            ("1::2::3", ip("1::2::3")),
            ("256.1", ip("256.1")),
            ("1..2", ip("1..2")),
            (".1", ip(".1")),
            ("300", ip("300")),
        ];
        for (text, message) in cases {
            assert_eq!(Network::parse(text), Err(message), "{text}");
        }
        for good in ["10.0.0.0/08", "1.2.3", "1.2.3.4.", "::", "::/1", "abc::/16", "10.0.0.0/32", "10.0.0.0/255.255.255.255"] {
            assert!(Network::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn addresses_as_getaddrinfo_reads_them() {
        let v4 = |t: &str| parse_address(t.as_bytes()).map(|ip| ip.to_string());
        for (text, ip) in
            [("127.1", "127.0.0.1"), ("10.2", "10.0.0.2"), ("167772162", "10.0.0.2"), ("0x0a.0.0.2", "10.0.0.2"), ("0X0A000002", "10.0.0.2")]
        {
            assert_eq!(v4(text).as_deref(), Some(ip), "{text}");
        }
        assert_eq!(v4("010.0.0.2").as_deref(), Some("8.0.0.2"), "octal");
        assert_eq!(v4("10.0.0.02").as_deref(), Some("10.0.0.2"));
        assert_eq!(v4("localhost").as_deref(), Some("127.0.0.1"));
        assert_eq!(v4("::FFFF:10.0.0.2").as_deref(), Some("::ffff:10.0.0.2"));
        assert_eq!(v4("fe80::1%1").as_deref(), Some("fe80::1"));
        for bad in [
            "10.0.0.09",
            "10.0.0.2.",
            "10.0.0.2 x",
            "[::1]",
            "10.0.0.2%1",
            "203.0.113.9:1234",
            "unknown",
            "1.2.3.4.5",
            "256.0.0.1",
            "1.2.65536",
            "0x",
            "4294967296",
            "",
            "ip6-localhost",
        ] {
            assert_eq!(v4(bad), None, "{bad}");
        }
    }

    /// The X-Forwarded-For rows of the researcher's table (mod_wsgi 6.1.1, observed).
    #[test]
    fn forwarded_for_without_proxies_is_the_first_element() {
        let first = |chain: &str| xff(None, chain);
        assert_eq!(first("203.0.113.9, 10.0.0.2"), pair("203.0.113.9", "203.0.113.9, 10.0.0.2"));
        assert_eq!(first(", 203.0.113.9"), pair("203.0.113.9", ", 203.0.113.9"));
        assert_eq!(first("garbage, 10.0.0.2"), pair("garbage", "garbage, 10.0.0.2"));
        assert_eq!(first("203.0.113.9,,10.0.0.2"), pair("203.0.113.9", "203.0.113.9,,10.0.0.2"));
        assert_eq!(first(""), pair("127.0.0.1", ""));
        assert_eq!(first(","), pair("127.0.0.1", ","));
    }

    #[test]
    fn forwarded_for_with_proxies_walks_from_the_right() {
        let walk = |chain: &str| xff(Some("127.0.0.1 10.0.0.0/8"), chain);
        assert_eq!(walk("203.0.113.9"), pair("203.0.113.9", "203.0.113.9"));
        assert_eq!(walk("203.0.113.9, 10.0.0.2"), pair("203.0.113.9", "203.0.113.9, 10.0.0.2"));
        assert_eq!(walk("198.51.100.1, 203.0.113.9, 10.0.0.2"), pair("203.0.113.9", "203.0.113.9, 10.0.0.2"));
        assert_eq!(walk("10.0.0.3, 10.0.0.2"), pair("10.0.0.3", "10.0.0.3, 10.0.0.2"));
        assert_eq!(walk("203.0.113.9, , 10.0.0.2"), pair("203.0.113.9", "203.0.113.9, 10.0.0.2"));
        assert_eq!(walk("203.0.113.9,10.0.0.2"), pair("203.0.113.9", "203.0.113.9, 10.0.0.2"));
        assert_eq!(walk("unknown, 10.0.0.2"), pair("unknown", "unknown, 10.0.0.2"));
        assert_eq!(walk("203.0.113.9, unknown"), pair("unknown", "unknown"));
        assert_eq!(walk("203.0.113.9, 10.0.0.2, 127.0.0.1"), pair("203.0.113.9", "203.0.113.9, 10.0.0.2, 127.0.0.1"));
        assert_eq!(walk(""), pair("127.0.0.1", ""));
        assert_eq!(walk(","), pair("127.0.0.1", ","));
        assert_eq!(walk(",10.0.0.2"), pair("10.0.0.2", "10.0.0.2"));
        assert_eq!(walk("1.2.3.4 , 5.6.7.8"), pair("5.6.7.8", "5.6.7.8"));
        assert_eq!(walk("203.0.113.9, ::ffff:10.0.0.5"), pair("203.0.113.9", "203.0.113.9, ::ffff:10.0.0.5"));
        assert_eq!(walk("203.0.113.9:1234, 10.0.0.2"), pair("203.0.113.9:1234", "203.0.113.9:1234, 10.0.0.2"));
        assert_eq!(walk("1.2.3.4, localhost, 10.0.0.2"), pair("1.2.3.4", "1.2.3.4, localhost, 10.0.0.2"));
        assert_eq!(walk("1.2.3.4, 127.1"), pair("1.2.3.4", "1.2.3.4, 127.1"));
        assert_eq!(walk("1.2.3.4, 010.0.0.2"), pair("010.0.0.2", "010.0.0.2"));
    }

    const ALL: &str = "X-Forwarded-For X-Client-IP X-Real-IP X-Forwarded-Host X-Host X-Forwarded-Server X-Forwarded-Port \
                       X-Script-Name X-Forwarded-Script-Name X-Forwarded-Proto X-Forwarded-Scheme X-Scheme X-Forwarded-HTTPS \
                       X-Forwarded-SSL X-HTTPS";
    /// One of each of the fifteen headers, as the researcher sent them.
    const EVERY: [(&str, &str); 15] = [
        ("HTTP_X_FORWARDED_FOR", "203.0.113.9"),
        ("HTTP_X_CLIENT_IP", "198.51.100.1"),
        ("HTTP_X_REAL_IP", "198.51.100.2"),
        ("HTTP_X_FORWARDED_HOST", "fwd.example:8443"),
        ("HTTP_X_HOST", "xhost.example"),
        ("HTTP_X_FORWARDED_SERVER", "fwdserver.example"),
        ("HTTP_X_FORWARDED_PORT", "8443"),
        ("HTTP_X_SCRIPT_NAME", "/mount"),
        ("HTTP_X_FORWARDED_SCRIPT_NAME", "/fmount"),
        ("HTTP_X_FORWARDED_PROTO", "https"),
        ("HTTP_X_FORWARDED_SCHEME", "http"),
        ("HTTP_X_SCHEME", "http"),
        ("HTTP_X_FORWARDED_HTTPS", "off"),
        ("HTTP_X_FORWARDED_SSL", "off"),
        ("HTTP_X_HTTPS", "0"),
    ];
    fn proxy_headers(e: &Environ) -> Vec<String> {
        let mut names: Vec<String> =
            e.iter().filter(|(k, _)| k.starts_with(b"HTTP_X_")).map(|(k, _)| String::from_utf8_lossy(&k[7..]).into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn the_last_applied_header_of_a_category_wins_and_the_others_go() {
        let (e, applied) = run(ALL, None, "127.0.0.1", &EVERY);
        assert!(applied);
        let got: Vec<Option<String>> = ["REMOTE_ADDR", "SERVER_NAME", "HTTP_HOST", "SERVER_PORT", "SCRIPT_NAME", "mod_wsgi.mount_point", "HTTPS"]
            .iter()
            .map(|k| value(&e, k))
            .collect();
        let want = [Some("198.51.100.2"), Some("fwdserver.example"), Some("xhost.example"), Some("8443"), Some("/fmount"), Some("/fmount"), None];
        assert_eq!(got, want.map(|v| v.map(str::to_string)));
        assert_eq!(proxy_headers(&e), ["FORWARDED_PORT", "FORWARDED_SCRIPT_NAME", "FORWARDED_SERVER", "HOST", "HTTPS", "REAL_IP"]);
        // In configured order: X-Real-IP after X-Forwarded-For wins, and the other way round.
        let order = [("HTTP_X_FORWARDED_FOR", "203.0.113.9"), ("HTTP_X_REAL_IP", "198.51.100.2")];
        let (e, _) = run("X-Forwarded-For X-Real-IP", None, "127.0.0.1", &order);
        assert_eq!((value(&e, "REMOTE_ADDR").unwrap(), proxy_headers(&e)), ("198.51.100.2".into(), vec!["REAL_IP".to_string()]));
        let (e, _) = run("X-Real-IP X-Forwarded-For", None, "127.0.0.1", &order);
        assert_eq!((value(&e, "REMOTE_ADDR").unwrap(), proxy_headers(&e)), ("203.0.113.9".into(), vec!["FORWARDED_FOR".to_string()]));
        let (e, applied) =
            run("X-Forwarded-Proto X-Forwarded-SSL", None, "127.0.0.1", &[("HTTP_X_FORWARDED_PROTO", "https"), ("HTTP_X_FORWARDED_SSL", "off")]);
        assert_eq!((value(&e, "HTTPS"), proxy_headers(&e), applied), (None, vec!["FORWARDED_SSL".to_string()], true));
    }

    #[test]
    fn an_untrusted_peer_changes_nothing_but_loses_the_configured_categories() {
        let (e, applied) = run(ALL, Some("127.0.0.1 10.0.0.0/8"), "127.0.0.2", &EVERY);
        assert!(!applied);
        assert_eq!((value(&e, "REMOTE_ADDR").unwrap(), value(&e, "HTTP_HOST").unwrap()), ("127.0.0.2".into(), "localhost".into()));
        assert!(proxy_headers(&e).is_empty());
        let (e, _) = run(
            "X-Forwarded-For",
            Some("127.0.0.1"),
            "127.0.0.2",
            &[("HTTP_X_FORWARDED_FOR", "1.2.3.4"), ("HTTP_X_FORWARDED_HOST", "evil.example"), ("HTTP_X_REAL_IP", "1.2.3.4")],
        );
        assert_eq!(proxy_headers(&e), ["FORWARDED_HOST"], "unconfigured categories stay");
        let (e, _) = run("X-Forwarded-Port", Some("10.0.0.0/8"), "127.0.0.1", &[("HTTP_X_FORWARDED_PORT", "8443")]);
        assert_eq!((value(&e, "SERVER_PORT").unwrap(), proxy_headers(&e)), ("80".into(), vec![]));
        // An empty WSGITrustedProxies trusts nobody.
        let (e, _) = run("X-Real-IP", Some(""), "127.0.0.1", &[("HTTP_X_REAL_IP", "1.2.3.4")]);
        assert_eq!((value(&e, "REMOTE_ADDR").unwrap(), proxy_headers(&e)), ("127.0.0.1".into(), vec![]));
    }

    #[test]
    fn values_are_taken_as_they_are() {
        let one = |name: &str, header: &str, v: &str, key: &str| {
            let (e, _) = run(name, None, "127.0.0.1", &[(header, v)]);
            value(&e, key)
        };
        assert_eq!(one("X-Real-IP", "HTTP_X_REAL_IP", "", "REMOTE_ADDR").as_deref(), Some(""));
        assert_eq!(one("X-Real-IP", "HTTP_X_REAL_IP", "not-an-ip", "REMOTE_ADDR").as_deref(), Some("not-an-ip"));
        assert_eq!(one("X-Forwarded-Port", "HTTP_X_FORWARDED_PORT", "abc", "SERVER_PORT").as_deref(), Some("abc"));
        assert_eq!(one("X-Forwarded-Host", "HTTP_X_FORWARDED_HOST", "", "HTTP_HOST").as_deref(), Some(""));
        for script in ["mount/", "/mount/", ""] {
            assert_eq!(one("X-Script-Name", "HTTP_X_SCRIPT_NAME", script, "SCRIPT_NAME").as_deref(), Some(script));
            assert_eq!(one("X-Script-Name", "HTTP_X_SCRIPT_NAME", script, "mod_wsgi.mount_point").as_deref(), Some(script));
        }
        assert_eq!(one("X-Script-Name", "HTTP_X_OTHER", "x", "mod_wsgi.mount_point"), None);
        for (name, header, v, https) in [
            ("X-Forwarded-Proto", "HTTP_X_FORWARDED_PROTO", "HTTPS", Some("1")),
            ("X-Forwarded-Proto", "HTTP_X_FORWARDED_PROTO", "ftp", Some("on")),
            ("X-Forwarded-Proto", "HTTP_X_FORWARDED_PROTO", "Http", None),
            ("X-Scheme", "HTTP_X_SCHEME", "https", Some("1")),
            ("X-Forwarded-SSL", "HTTP_X_FORWARDED_SSL", "true", Some("1")),
            ("X-Forwarded-SSL", "HTTP_X_FORWARDED_SSL", "yes", Some("on")),
            ("X-HTTPS", "HTTP_X_HTTPS", "0", None),
            ("X-Forwarded-HTTPS", "HTTP_X_FORWARDED_HTTPS", "ON", Some("1")),
        ] {
            let (e, applied) = run(name, None, "127.0.0.1", &[(header, v), ("HTTPS", "on")]);
            assert_eq!((value(&e, "HTTPS").as_deref(), applied), (https, true), "{name}: {v}");
        }
    }

    #[test]
    fn unknown_names_do_nothing() {
        let (e, applied) = run("X-Bogus", Some("127.0.0.1"), "127.0.0.1", &EVERY);
        assert!(!applied);
        assert_eq!(proxy_headers(&e).len(), 15);
        assert_eq!(value(&e, "REMOTE_ADDR").as_deref(), Some("127.0.0.1"));
    }

    fn chain() -> impl Strategy<Value = String> {
        let element = prop_oneof![
            Just("10.0.0.2".to_string()),
            Just("127.0.0.1".to_string()),
            Just("203.0.113.9".to_string()),
            Just("::ffff:10.1.1.1".to_string()),
            Just("unknown".to_string()),
            Just("".to_string()),
            Just(" ".to_string()),
            "[0-9a-z.:]{0,8}",
        ];
        prop::collection::vec(element, 0..6).prop_map(|v| v.join(","))
    }

    proptest! {
        /// The reference algorithm, written out as the specification gives it.
        #[test]
        fn forwarded_for_matches_the_specification(chain in chain()) {
            let proxies = networks("127.0.0.1 10.0.0.0/8");
            let list: Vec<String> = chain.split(',').map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect();
            let expected = if list.is_empty() {
                pair("127.0.0.1", &chain)
            } else {
                let mut first: Option<usize> = None;
                for i in (0..list.len()).rev() {
                    match parse_address(list[i].as_bytes()) {
                        Some(ip) if proxies.iter().any(|n| n.contains(ip)) => first = Some(i),
                        _ => break,
                    }
                }
                match first {
                    Some(f) => { let c = f.saturating_sub(1); pair(&list[c], &list[c..].join(", ")) }
                    None => pair(&list[list.len() - 1], &list[list.len() - 1]),
                }
            };
            prop_assert_eq!(xff(Some("127.0.0.1 10.0.0.0/8"), &chain), expected);
            let first = list.first().cloned().unwrap_or_else(|| "127.0.0.1".to_string());
            prop_assert_eq!(xff(None, &chain), pair(&first, &chain));
        }

        /// Whatever the headers and their order, an untrusted peer changes no variable and
        /// leaves no header of a configured category; a trusted one keeps at most one per
        /// category.
        #[test]
        fn categories_keep_at_most_one_header(order in Just(ALL.split_whitespace().collect::<Vec<_>>()).prop_shuffle(), count in 0usize..16, trusted in any::<bool>()) {
            let names = order[..count].join(" ");
            let peer = if trusted { "127.0.0.1" } else { "192.0.2.1" };
            let (e, applied) = run(&names, Some("127.0.0.0/8"), peer, &EVERY);
            for category in CATEGORIES {
                let configured = order[..count].iter().any(|n| REGISTRY.iter().any(|(h, c, _)| *c == category && *h == environ_name(n).unwrap()));
                let left = REGISTRY.iter().filter(|(h, c, _)| *c == category && get(&e, h).is_some()).count();
                let all = REGISTRY.iter().filter(|(_, c, _)| *c == category).count();
                let expected = match (configured, trusted) { (false, _) => all, (true, false) => 0, (true, true) => 1 };
                prop_assert_eq!(left, expected, "{:?} with {}", category, names);
            }
            if !trusted {
                prop_assert!(!applied);
                prop_assert_eq!(value(&e, "REMOTE_ADDR"), Some(peer.to_string()));
            }
        }

        /// Any text in a trusted-proxies entry parses or gives mod_wsgi's message, never a panic.
        #[test]
        fn networks_never_panic(text in "[0-9a-f.:/]{0,24}") {
            if let Err(message) = Network::parse(&text) {
                prop_assert!(message.starts_with("Unable to parse trusted proxy IP address/subnet of"));
            }
        }

        #[test]
        fn addresses_never_panic(text in "\\PC{0,24}") {
            let _ = parse_address(text.as_bytes());
        }
    }
}
