//! `WSGITrustedProxyHeaders` and `WSGITrustedProxies`: which `X-Forwarded-*` style headers an
//! application may believe, and from which clients.
//!
//! A listed header from a trusted client rewrites the CGI variable it stands for
//! (REMOTE_ADDR, HTTP_HOST, SERVER_PORT, HTTPS, SCRIPT_NAME); every other proxy header is
//! removed from the environ, so that a client cannot pose as a proxy. Without
//! `WSGITrustedProxies`, every client is trusted with the listed headers (mod_wsgi's rule).

use std::net::IpAddr;

/// The headers this applies to, as the environ has them, and what each stands for.
pub const PROXY_HEADERS: [(&str, Meaning); 9] = [
    ("HTTP_X_FORWARDED_FOR", Meaning::RemoteAddr),
    ("HTTP_X_CLIENT_IP", Meaning::RemoteAddr),
    ("HTTP_X_REAL_IP", Meaning::RemoteAddr),
    ("HTTP_X_FORWARDED_HOST", Meaning::Host),
    ("HTTP_X_FORWARDED_PORT", Meaning::Port),
    ("HTTP_X_FORWARDED_PROTO", Meaning::Scheme),
    ("HTTP_X_FORWARDED_SCHEME", Meaning::Scheme),
    ("HTTP_X_FORWARDED_SSL", Meaning::Https),
    ("HTTP_X_SCRIPT_NAME", Meaning::ScriptName),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meaning {
    RemoteAddr,
    Host,
    Port,
    Scheme,
    Https,
    ScriptName,
}

/// A header name as written in the directive (`X-Forwarded-For`) in environ form.
pub fn environ_name(header: &str) -> Result<String, String> {
    let name = format!("HTTP_{}", header.to_ascii_uppercase().replace('-', "_"));
    if PROXY_HEADERS.iter().any(|(h, _)| *h == name) {
        Ok(name)
    } else {
        let known: Vec<String> = PROXY_HEADERS.iter().map(|(h, _)| h[5..].replace('_', "-")).collect();
        Err(format!("WSGITrustedProxyHeaders: '{header}' is not a proxy header this module knows ({})", known.join(", ")))
    }
}

/// An address or a CIDR block, as in `WSGITrustedProxies 10.0.0.0/8 ::1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        let bad = || format!("WSGITrustedProxies: '{text}' is not an IP address or network (a.b.c.d, a.b.c.d/n, or IPv6)");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            (IpAddr::V6(a), IpAddr::V4(b)) => (u128::from(a), u128::from(b.to_ipv6_mapped()), 128),
            (IpAddr::V4(a), IpAddr::V6(b)) => match b.to_ipv4_mapped() {
                Some(b) => (u32::from(a) as u128, u32::from(b) as u128, 32),
                None => return false,
            },
        };
        let shift = bits - self.prefix as u32;
        shift >= bits || (a >> shift) == (b >> shift)
    }
}

/// Applies the rules to an environ (name → value pairs), given the client's address.
pub fn apply(environ: &mut Vec<(Vec<u8>, Vec<u8>)>, client: Option<IpAddr>, trusted_headers: &[String], proxies: &[Network]) {
    let trusted_client = proxies.is_empty() || client.is_some_and(|ip| proxies.iter().any(|n| n.contains(ip)));
    let get = |env: &Vec<(Vec<u8>, Vec<u8>)>, key: &str| env.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let mut updates: Vec<(&str, Option<String>)> = Vec::new();
    if trusted_client {
        for (header, meaning) in PROXY_HEADERS {
            if !trusted_headers.iter().any(|t| t == header) {
                continue;
            }
            let Some(value) = get(environ, header) else { continue };
            match meaning {
                Meaning::RemoteAddr => {
                    let hops: Vec<&str> = value.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
                    // With a proxy list, the client is the last hop that is not one of them;
                    // without one, the first hop.
                    let chosen = if proxies.is_empty() {
                        hops.first().copied()
                    } else {
                        hops.iter().rev().find(|h| h.parse::<IpAddr>().map_or(true, |ip| !proxies.iter().any(|n| n.contains(ip)))).copied()
                    };
                    if let Some(hop) = chosen.filter(|h| h.parse::<IpAddr>().is_ok()) {
                        updates.push(("REMOTE_ADDR", Some(hop.to_string())));
                    }
                }
                Meaning::Host => updates.push(("HTTP_HOST", Some(value.clone()))),
                Meaning::Port if value.trim().parse::<u16>().is_ok() => updates.push(("SERVER_PORT", Some(value.trim().to_string()))),
                Meaning::Scheme => match value.trim().to_ascii_lowercase().as_str() {
                    "https" => updates.push(("HTTPS", Some("1".into()))),
                    "http" => updates.push(("HTTPS", None)),
                    _ => {}
                },
                Meaning::Https => match value.trim().to_ascii_lowercase().as_str() {
                    "on" | "1" | "true" => updates.push(("HTTPS", Some("1".into()))),
                    "off" | "0" | "false" => updates.push(("HTTPS", None)),
                    _ => {}
                },
                Meaning::ScriptName if value.starts_with('/') => updates.push(("SCRIPT_NAME", Some(value.trim_end_matches('/').to_string()))),
                _ => {}
            }
        }
    }
    // No proxy header reaches the application unless it was trusted and believed.
    environ.retain(|(k, _)| {
        let name = String::from_utf8_lossy(k);
        !PROXY_HEADERS.iter().any(|(h, _)| *h == name) || (trusted_client && trusted_headers.iter().any(|t| *t == name))
    });
    for (key, value) in updates {
        environ.retain(|(k, _)| k != key.as_bytes());
        if let Some(value) = value {
            environ.push((key.as_bytes().to_vec(), value.into_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
    }
    fn get(e: &[(Vec<u8>, Vec<u8>)], k: &str) -> Option<String> {
        e.iter().find(|(n, _)| n == k.as_bytes()).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn networks() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(Network::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_headers_rewrite_and_others_are_dropped() {
        let trusted = vec!["HTTP_X_FORWARDED_FOR".to_string(), "HTTP_X_FORWARDED_PROTO".to_string()];
        let mut e = env(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", "203.0.113.9, 10.0.0.2"), ("HTTP_X_FORWARDED_PROTO", "https"), ("HTTP_X_FORWARDED_HOST", "evil.example")]);
        apply(&mut e, "127.0.0.1".parse().ok(), &trusted, &[Network::parse("127.0.0.1").unwrap(), Network::parse("10.0.0.0/8").unwrap()]);
        assert_eq!(get(&e, "REMOTE_ADDR").as_deref(), Some("203.0.113.9"));
        assert_eq!(get(&e, "HTTPS").as_deref(), Some("1"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_HOST"), None, "an untrusted header must not reach the app");
    }

    #[test]
    fn untrusted_clients_are_not_believed() {
        let trusted = vec!["HTTP_X_FORWARDED_FOR".to_string()];
        let mut e = env(&[("REMOTE_ADDR", "198.51.100.7"), ("HTTP_X_FORWARDED_FOR", "1.2.3.4")]);
        apply(&mut e, "198.51.100.7".parse().ok(), &trusted, &[Network::parse("10.0.0.0/8").unwrap()]);
        assert_eq!(get(&e, "REMOTE_ADDR").as_deref(), Some("198.51.100.7"));
        assert_eq!(get(&e, "HTTP_X_FORWARDED_FOR"), None);
    }

    proptest! {
        /// Whatever the headers say, no proxy header survives unless trusted, and REMOTE_ADDR
        /// is always an IP address.
        #[test]
        fn never_lets_garbage_through(xff in "\\PC{0,40}", host in "\\PC{0,20}", client in any::<[u8; 4]>()) {
            let trusted = vec!["HTTP_X_FORWARDED_FOR".to_string()];
            let mut e = env(&[("REMOTE_ADDR", "127.0.0.1"), ("HTTP_X_FORWARDED_FOR", &xff), ("HTTP_X_FORWARDED_HOST", &host)]);
            apply(&mut e, Some(IpAddr::from(client)), &trusted, &[Network::parse("10.0.0.0/8").unwrap()]);
            prop_assert!(get(&e, "HTTP_X_FORWARDED_HOST").is_none());
            prop_assert!(get(&e, "REMOTE_ADDR").unwrap().parse::<IpAddr>().is_ok());
        }
    }
}
