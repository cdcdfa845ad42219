//! Who a client is: its address grouped by network, possibly read from a trusted proxy's
//! header; and a log gate per client.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::http::HeaderMap;

/// The client an address belongs to: an IPv4 address itself, an IPv6 address its /64 (the
/// smallest network a host is given: every address of it is the same client), an
/// IPv4-mapped IPv6 address its IPv4 address.
pub fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

/// The address of the client of a request that came from `peer`.
///
/// When `peer` is one of the `trusted` proxies, the client is read from its `Forwarded`
/// (RFC 7239, `for=`) or else `X-Forwarded-For` header: the rightmost address that is not a
/// trusted proxy itself (the addresses on its left were written by the client and prove
/// nothing). A header from any other peer is ignored: anyone can write one. A missing or
/// malformed header leaves the peer's own address.
pub fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let chain = match forwarded_chain(headers) {
        Some(chain) => chain,
        None => match x_forwarded_chain(headers) {
            Some(chain) => chain,
            None => return peer,
        },
    };
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if trusted.contains(ip) => {}
            Some(ip) => return *ip,
            // An entry that is not an address (obfuscated, `unknown`, garbage): nothing to
            // the left of it can be trusted, and the proxy itself is the best answer.
            None => return peer,
        }
    }
    peer
}

/// The `for=` addresses of every `Forwarded` header, in order; `None` without one.
fn forwarded_chain(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut chain = Vec::new();
    let mut seen = false;
    for value in headers.get_all("forwarded") {
        seen = true;
        let Ok(text) = value.to_str() else {
            chain.push(None);
            continue;
        };
        for element in text.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then(|| value.trim())
            });
            chain.push(node.and_then(parse_node));
        }
    }
    seen.then_some(chain)
}

/// The addresses of every `X-Forwarded-For` header, in order; `None` without one.
fn x_forwarded_chain(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut chain = Vec::new();
    let mut seen = false;
    for value in headers.get_all("x-forwarded-for") {
        seen = true;
        match value.to_str() {
            Ok(text) => chain.extend(text.split(',').map(|hop| parse_node(hop.trim()))),
            Err(_) => chain.push(None),
        }
    }
    seen.then_some(chain)
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `"[2001:db8::1]:80"`, `2001:db8::1`.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Clients remembered by a [`LogGate`] before the oldest are forgotten: bounds its memory
/// when many clients trip a limit at once.
const MAX_GATED_CLIENTS: usize = 10_000;

/// Lets a log line about a client through at most once per period, so that a client tripping
/// a limit thousands of times writes one line a minute, not thousands.
#[derive(Debug)]
pub struct LogGate {
    period: Duration,
    last: Mutex<HashMap<IpAddr, Instant>>,
}

impl Default for LogGate {
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

impl LogGate {
    /// A gate opening once per `period` for each client.
    pub fn new(period: Duration) -> Self {
        Self { period, last: Mutex::new(HashMap::new()) }
    }

    /// Whether to log about `client` now (and, if so, not again for a period).
    pub fn allow(&self, client: IpAddr) -> bool {
        self.allow_at(client, Instant::now())
    }

    fn allow_at(&self, client: IpAddr, now: Instant) -> bool {
        let mut last = self.last.lock().expect("not poisoned");
        if last.len() >= MAX_GATED_CLIENTS {
            let period = self.period;
            last.retain(|_, at| now.saturating_duration_since(*at) < period);
        }
        match last.get(&client) {
            Some(at) if now.saturating_duration_since(*at) < self.period => false,
            _ => {
                last.insert(client, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_are_one_client() {
        let a = client_of(ip("2001:db8:1:2:aaaa::1"));
        let b = client_of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(a, b);
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_ne!(a, client_of(ip("2001:db8:1:3::1")), "the next /64 is another client");
    }

    #[test]
    fn ipv4_addresses_are_clients_of_their_own() {
        assert_eq!(client_of(ip("10.0.0.1")), ip("10.0.0.1"));
        assert_ne!(client_of(ip("10.0.0.1")), client_of(ip("10.0.0.2")));
        assert_eq!(client_of(ip("::ffff:10.0.0.1")), ip("10.0.0.1"), "IPv4-mapped");
    }

    #[test]
    fn an_untrusted_peers_header_is_ignored() {
        let peer = ip("203.0.113.9");
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(forwarded_client(peer, &spoofed, &[]), peer);
        assert_eq!(forwarded_client(peer, &spoofed, &[ip("192.0.2.1")]), peer);
        let spoofed = headers(&[("forwarded", "for=198.51.100.1")]);
        assert_eq!(forwarded_client(peer, &spoofed, &[ip("192.0.2.1")]), peer);
    }

    #[test]
    fn a_trusted_proxys_header_names_the_client() {
        let proxy = ip("192.0.2.1");
        let trusted = [proxy, ip("192.0.2.2")];
        let xff = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(forwarded_client(proxy, &xff, &trusted), ip("198.51.100.7"));
        // The client wrote the leftmost entry itself: the rightmost untrusted one counts.
        let xff = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 192.0.2.2")]);
        assert_eq!(forwarded_client(proxy, &xff, &trusted), ip("198.51.100.7"));
        let fwd = headers(&[("forwarded", r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https"#)]);
        assert_eq!(forwarded_client(proxy, &fwd, &trusted), ip("2001:db8::7"));
        let fwd = headers(&[("forwarded", "for=198.51.100.8:1234;by=192.0.2.1")]);
        assert_eq!(forwarded_client(proxy, &fwd, &trusted), ip("198.51.100.8"));
        // Forwarded wins over X-Forwarded-For.
        let both = headers(&[("forwarded", "for=198.51.100.8"), ("x-forwarded-for", "9.9.9.9")]);
        assert_eq!(forwarded_client(proxy, &both, &trusted), ip("198.51.100.8"));
    }

    #[test]
    fn a_malformed_or_missing_header_leaves_the_peer() {
        let proxy = ip("192.0.2.1");
        let trusted = [proxy];
        for bad in ["not an address", "", "unknown", "198.51.100.7, garbage", "1.2.3.4:99999"] {
            let xff = headers(&[("x-forwarded-for", bad)]);
            assert_eq!(forwarded_client(proxy, &xff, &trusted), proxy, "{bad:?}");
        }
        let fwd = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(forwarded_client(proxy, &fwd, &trusted), proxy);
        let fwd = headers(&[("forwarded", "proto=https")]);
        assert_eq!(forwarded_client(proxy, &fwd, &trusted), proxy);
        assert_eq!(forwarded_client(proxy, &HeaderMap::new(), &trusted), proxy);
        // Only trusted proxies in the chain: the last one is the answer.
        let xff = headers(&[("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(forwarded_client(proxy, &xff, &trusted), proxy);
    }

    #[test]
    fn the_log_gate_opens_once_per_period_per_client() {
        let gate = LogGate::new(Duration::from_secs(60));
        let start = Instant::now();
        assert!(gate.allow_at(ip("10.0.0.1"), start));
        assert!(!gate.allow_at(ip("10.0.0.1"), start + Duration::from_secs(59)));
        assert!(gate.allow_at(ip("10.0.0.2"), start), "clients are independent");
        assert!(gate.allow_at(ip("10.0.0.1"), start + Duration::from_secs(61)));
    }
}
