//! What may be fetched: sources, the operator's allowances, and the addresses refused by
//! default.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Duration,
};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Who chose a URL, which decides what it may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// An app's code, at the URL its owner registered.
    App,
    /// A dataset, at the URL its owner registered.
    Dataset,
    /// An input file, at a URL the requester put in its request's parameters.
    InputFile,
    /// A task's result, at the location its scheduler or worker published on-chain.
    Result,
}

impl Source {
    /// Whether the URL was chosen by a provider (an asset's owner, a pool) rather than by the
    /// requester of the task.
    pub const fn is_provided(self) -> bool {
        !matches!(self, Self::InputFile)
    }

    /// The source's name, as errors and logs give it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Dataset => "dataset",
            Self::InputFile => "input file",
            Self::Result => "result",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The fetch policy: what a worker (or a client) opens on behalf of someone else.
///
/// By default only `http` and `https` URLs of public addresses are fetched: loopback,
/// private, link-local (where cloud metadata services answer), unique-local, shared,
/// multicast, unspecified, documentation and reserved addresses are refused, however the
/// address is spelled, and `file://` URLs are refused. An operator widens it explicitly:
/// networks for every source ([`allow`](Self::allow)) or for providers' URLs only
/// ([`allow_provided`](Self::allow_provided)), and directories that `file://` URLs may point
/// into, for providers' URLs ([`provided_dirs`](Self::provided_dirs)) or for requesters'
/// input files ([`input_dirs`](Self::input_dirs)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchPolicy {
    /// Networks reachable by every source, beyond the public internet.
    pub allow: Vec<IpNet>,
    /// Networks reachable by apps, datasets and results only (never by input files).
    pub allow_provided: Vec<IpNet>,
    /// Networks reachable by results only (a client of a local result store).
    pub allow_results: Vec<IpNet>,
    /// Origins (`http://IP:PORT`, the host an IP address) apps may be fetched from although
    /// their address is not public: a result store serving apps' code on the operator's own
    /// network. Only that scheme, address and port: not the rest of the host.
    pub app_origins: Vec<String>,
    /// Directories that `file://` URLs of apps, datasets and results may point into.
    pub provided_dirs: Vec<PathBuf>,
    /// Directories that `file://` URLs of requesters' input files may point into.
    pub input_dirs: Vec<PathBuf>,
    /// Names answered without asking DNS (an operator pinning a name). What they answer is
    /// checked like any resolved address.
    pub hosts: BTreeMap<String, Vec<IpAddr>>,
    /// The most bytes one fetch reads.
    pub max_bytes: u64,
    /// The most redirects one fetch follows.
    pub max_redirects: usize,
    /// How long one fetch may take, in seconds.
    pub timeout_secs: u64,
}

impl Default for FetchPolicy {
    /// Public `http(s)` only, at most 256 MiB, 5 redirects and 120 seconds per fetch.
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            allow_provided: Vec::new(),
            allow_results: Vec::new(),
            app_origins: Vec::new(),
            provided_dirs: Vec::new(),
            input_dirs: Vec::new(),
            hosts: BTreeMap::new(),
            max_bytes: 256 << 20,
            max_redirects: 5,
            timeout_secs: 120,
        }
    }
}

impl FetchPolicy {
    /// How long one fetch may take.
    pub const fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Whether the default refusal of `ip` is lifted for `source`.
    pub fn allows(&self, source: Source, ip: IpAddr) -> bool {
        let provided = if source.is_provided() { self.allow_provided.as_slice() } else { &[] };
        let results = if source == Source::Result { self.allow_results.as_slice() } else { &[] };
        let embedded = embedded_ipv4(ip).map(IpAddr::V4);
        self.allow
            .iter()
            .chain(provided)
            .chain(results)
            .any(|net| net.contains(&ip) || embedded.is_some_and(|v4| net.contains(&v4)))
    }

    /// Whether `url` is on one of the [`app_origins`](Self::app_origins) and `source` is an
    /// app.
    pub fn allows_origin(&self, source: Source, url: &url::Url) -> bool {
        source == Source::App
            && self.app_origins.iter().any(|origin| {
                url::Url::parse(origin).is_ok_and(|allowed| allowed.origin() == url.origin())
            })
    }

    /// Why `ip` may not be reached from `source`, or `None` when it may.
    pub fn refusal(&self, source: Source, ip: IpAddr) -> Option<&'static str> {
        let reason = non_public(ip)?;
        (!self.allows(source, ip)).then_some(reason)
    }

    /// The directories `file://` URLs of `source` may point into.
    pub fn dirs(&self, source: Source) -> &[PathBuf] {
        if source.is_provided() { &self.provided_dirs } else { &self.input_dirs }
    }

    /// This policy with `other`'s allowances added (networks, directories, pinned names); the
    /// bounds stay this policy's.
    pub fn widened_by(mut self, other: &Self) -> Self {
        self.allow.extend(other.allow.iter().copied());
        self.allow_provided.extend(other.allow_provided.iter().copied());
        self.allow_results.extend(other.allow_results.iter().copied());
        self.app_origins.extend(other.app_origins.iter().cloned());
        self.provided_dirs.extend(other.provided_dirs.iter().cloned());
        self.input_dirs.extend(other.input_dirs.iter().cloned());
        self.hosts.extend(other.hosts.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// What this policy adds to the default, one line each, for the log at start-up (empty
    /// when it is the default).
    pub fn widenings(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for net in &self.allow {
            lines.push(format!("every source may reach {net}"));
        }
        for net in &self.allow_provided {
            lines.push(format!("apps, datasets and results may reach {net}"));
        }
        for net in &self.allow_results {
            lines.push(format!("results may reach {net}"));
        }
        for origin in &self.app_origins {
            lines.push(format!("apps may be fetched from {origin}"));
        }
        for dir in &self.provided_dirs {
            lines.push(format!(
                "apps, datasets and results may be file:// URLs in {}",
                dir.display()
            ));
        }
        for dir in &self.input_dirs {
            lines.push(format!("input files may be file:// URLs in {}", dir.display()));
        }
        for (name, ips) in &self.hosts {
            lines.push(format!("{name} is answered as {ips:?} without DNS"));
        }
        lines
    }
}

/// Why `ip` is not a public address, or `None` when it is one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an unspecified address",
        (127, _, _) => "a loopback address",
        (10, _, _) | (192, 168, _) => "a private network address",
        (172, b, _) if (16..32).contains(&b) => "a private network address",
        (100, b, _) if (64..128).contains(&b) => "a shared (carrier-grade NAT) address",
        (169, 254, _) => "a link-local address (cloud metadata services answer there)",
        (192, 0, 0) => "an IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, b, _) if b == 18 || b == 19 => "a benchmarking address",
        (a, _, _) if (224..240).contains(&a) => "a multicast address",
        (a, _, _) if a >= 240 => "a reserved address",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_ipv4(IpAddr::V6(ip)) {
        return non_public_v4(v4);
    }
    let segments = ip.segments();
    Some(match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => "an unspecified address",
        [0, 0, 0, 0, 0, 0, 0, 1] => "a loopback address",
        // Other IPv4-compatible addresses (deprecated), and the discard prefix.
        [0, 0, 0, 0, 0, 0, _, _] | [0x100, 0, 0, 0, ..] => "a reserved address",
        [0x2001, 0xdb8, ..] => "a documentation address",
        [0x2001, b, ..] if b < 0x200 => "an IETF special-purpose address (tunnels included)",
        [0x64, 0xff9b, 1, ..] => "a local translation address",
        [a, ..] if a & 0xfe00 == 0xfc00 => "a unique-local (private) address",
        [a, ..] if a & 0xffc0 == 0xfe80 => "a link-local address",
        [a, ..] if a & 0xffc0 == 0xfec0 => "a site-local (private) address",
        [a, ..] if a & 0xff00 == 0xff00 => "a multicast address",
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address carries and reaches: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:ab:cd::`).
pub fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    let last = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(last),
        [0, 0, 0, 0, 0, 0, a, _] if a != 0 => Some(last),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_non_public_range_is_refused_and_public_addresses_are_not() {
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
            "64:ff9b:1::1",
        ] {
            assert!(non_public(ip(refused)).is_some(), "{refused} must be refused");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(non_public(ip(public)), None, "{public} is public");
        }
    }

    #[test]
    fn allowances_lift_the_refusal_per_source() {
        let policy = FetchPolicy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            allow_provided: vec!["127.0.0.1/32".parse().unwrap()],
            ..FetchPolicy::default()
        };
        assert_eq!(policy.refusal(Source::InputFile, ip("10.2.3.4")), None);
        assert_eq!(policy.refusal(Source::App, ip("10.2.3.4")), None);
        assert_eq!(policy.refusal(Source::App, ip("127.0.0.1")), None);
        assert_eq!(policy.refusal(Source::Result, ip("::ffff:127.0.0.1")), None);
        assert_eq!(policy.refusal(Source::InputFile, ip("127.0.0.1")), Some("a loopback address"));
        assert_eq!(policy.refusal(Source::App, ip("127.0.0.2")), Some("a loopback address"));
        assert!(FetchPolicy::default().widenings().is_empty());
        assert_eq!(policy.widenings().len(), 2);
    }
}
