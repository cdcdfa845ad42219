//! Fetching under the policy: every address is checked where it is connected to.

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
};

use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};
use url::{Host, Url};

use crate::{FetchError, FetchPolicy, Source};

/// What [`Fetcher::open`] found at a URL.
enum Opened {
    File(PathBuf),
    Http(reqwest::Response),
}

/// Fetches URLs chosen by strangers, under a [`FetchPolicy`].
///
/// A name is resolved once, by the fetcher's own resolver, which refuses it when any address
/// it resolves to is not allowed: what is checked is what is connected to, so a name that
/// answers differently the second time cannot slip through. Literal addresses (in any
/// spelling the URL standard accepts: `2130706433`, `0177.0.0.1`, `[::ffff:127.0.0.1]`) are
/// checked before connecting, and every redirect is checked again, up to a bound. Proxies
/// from the environment are never used: they would connect in the fetcher's place.
#[derive(Clone)]
pub struct Fetcher {
    policy: Arc<FetchPolicy>,
    /// For apps and datasets.
    assets: reqwest::Client,
    /// For results.
    results: reqwest::Client,
    /// For requesters' input files.
    inputs: reqwest::Client,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher applying `policy`.
    pub fn new(policy: FetchPolicy) -> Self {
        let policy = Arc::new(policy);
        let client = |source: Source| {
            reqwest::Client::builder()
                .no_proxy()
                .dns_resolver(Arc::new(PolicyResolver { policy: policy.clone(), source }))
                .redirect(redirects(policy.clone(), source))
                .timeout(policy.timeout())
                .build()
                .expect("a client with a resolver, a redirect policy and a timeout builds")
        };
        Self {
            assets: client(Source::App),
            results: client(Source::Result),
            inputs: client(Source::InputFile),
            policy,
        }
    }

    /// The policy applied.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// An HTTP client that connects only where the policy lets `source` reach (names checked
    /// at resolution, redirects checked), for a service's own protocol over such URLs. A
    /// literal address in a URL given to it is not checked: [`Self::check`] the URL first.
    pub fn client(&self, source: Source) -> &reqwest::Client {
        match source {
            Source::App | Source::Dataset => &self.assets,
            Source::Result => &self.results,
            Source::InputFile => &self.inputs,
        }
    }

    /// The content at `url`, chosen by `source`, read whole (up to the policy's bound).
    pub async fn fetch(&self, source: Source, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut response = match self.open(source, url).await? {
            Opened::File(path) => return self.read_file(source, url, &path).await,
            Opened::Http(response) => response,
        };
        let max = self.policy.max_bytes;
        let mut bytes = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|error| network_error(source, url, &error))?
        {
            if bytes.len() as u64 + chunk.len() as u64 > max {
                return Err(FetchError::TooLarge {
                    kind: source,
                    url: url.to_owned(),
                    max_bytes: max,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Checks that `url` is allowed and answers with content within the policy's bound,
    /// without reading that content: a file that exists, or a server whose answer to a `GET`
    /// is a success and announces no larger length.
    pub async fn probe(&self, source: Source, url: &str) -> Result<(), FetchError> {
        if let Opened::File(path) = self.open(source, url).await? {
            let length = tokio::fs::metadata(&path).await.map_or(0, |meta| meta.len());
            if length > self.policy.max_bytes {
                return Err(FetchError::TooLarge {
                    kind: source,
                    url: url.to_owned(),
                    max_bytes: self.policy.max_bytes,
                });
            }
        }
        Ok(())
    }

    /// The allowed file `url` names, or the answer of its server once it is known to be a
    /// success of an acceptable length.
    async fn open(&self, source: Source, url: &str) -> Result<Opened, FetchError> {
        let parsed = parse(source, url)?;
        if parsed.scheme() == "file" {
            return self.allowed_file(source, url, &parsed).await.map(Opened::File);
        }
        self.check_literal(source, url, &parsed)?;
        let response = self
            .client(source)
            .get(parsed)
            .send()
            .await
            .map_err(|error| network_error(source, url, &error))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                kind: source,
                url: url.to_owned(),
                status: status.as_u16(),
            });
        }
        let max = self.policy.max_bytes;
        if response.content_length().is_some_and(|length| length > max) {
            return Err(FetchError::TooLarge { kind: source, url: url.to_owned(), max_bytes: max });
        }
        Ok(Opened::Http(response))
    }

    /// Checks `url` without fetching it: its syntax and scheme, a `file://` path, a literal
    /// address, and what a name resolves to now. A URL that passes may still fail to fetch.
    pub async fn check(&self, source: Source, url: &str) -> Result<(), FetchError> {
        let parsed = parse(source, url)?;
        if parsed.scheme() == "file" {
            return self.allowed_file(source, url, &parsed).await.map(|_| ());
        }
        self.check_literal(source, url, &parsed)?;
        if let Some(Host::Domain(name)) = parsed.host() {
            let resolver = PolicyResolver { policy: self.policy.clone(), source };
            resolver.addresses(name).await.map_err(|error| match error {
                ResolveError::Refused(refusal) => {
                    FetchError::Refused { kind: source, url: url.to_owned(), reason: refusal.0 }
                }
                ResolveError::Lookup(message) => {
                    FetchError::Unreachable { kind: source, url: url.to_owned(), message }
                }
            })?;
        }
        Ok(())
    }

    /// Refuses a literal address the policy does not allow.
    fn check_literal(&self, source: Source, url: &str, parsed: &Url) -> Result<(), FetchError> {
        if let Some(reason) = literal_refusal(&self.policy, source, parsed) {
            return Err(FetchError::Refused { kind: source, url: url.to_owned(), reason });
        }
        Ok(())
    }

    /// The file a `file://` URL names, once it is shown to lie in an allowed directory after
    /// every `..` and symbolic link is resolved.
    async fn allowed_file(
        &self,
        source: Source,
        url: &str,
        parsed: &Url,
    ) -> Result<PathBuf, FetchError> {
        let refused =
            |reason: String| FetchError::Refused { kind: source, url: url.to_owned(), reason };
        let dirs = self.policy.dirs(source);
        if dirs.is_empty() {
            return Err(refused(format!(
                "file:// URLs of {}s are not allowed on this machine",
                source.name()
            )));
        }
        let path = parsed.to_file_path().map_err(|()| FetchError::Unsupported {
            kind: source,
            url: url.to_owned(),
            reason: "a file:// URL needs an absolute path and no host".into(),
        })?;
        let real = tokio::fs::canonicalize(&path).await.map_err(|e| FetchError::NoSuchFile {
            kind: source,
            url: url.to_owned(),
            message: e.to_string(),
        })?;
        for dir in dirs {
            if let Ok(dir) = tokio::fs::canonicalize(dir).await
                && real.starts_with(&dir)
            {
                return Ok(real);
            }
        }
        Err(refused("the file is outside the directories allowed for it".into()))
    }

    async fn read_file(
        &self,
        source: Source,
        url: &str,
        path: &Path,
    ) -> Result<Vec<u8>, FetchError> {
        let no_file = |e: std::io::Error| FetchError::NoSuchFile {
            kind: source,
            url: url.to_owned(),
            message: e.to_string(),
        };
        let metadata = tokio::fs::metadata(path).await.map_err(no_file)?;
        if !metadata.is_file() {
            return Err(FetchError::NoSuchFile {
                kind: source,
                url: url.to_owned(),
                message: "not a regular file".into(),
            });
        }
        let max = self.policy.max_bytes;
        if metadata.len() > max {
            return Err(FetchError::TooLarge { kind: source, url: url.to_owned(), max_bytes: max });
        }
        tokio::fs::read(path).await.map_err(no_file)
    }
}

/// Parses a URL and refuses the schemes never fetched.
fn parse(source: Source, url: &str) -> Result<Url, FetchError> {
    let parsed = Url::parse(url).map_err(|e| FetchError::Unsupported {
        kind: source,
        url: url.to_owned(),
        reason: format!("not a URL ({e})"),
    })?;
    match parsed.scheme() {
        "http" | "https" | "file" => Ok(parsed),
        other => Err(FetchError::Unsupported {
            kind: source,
            url: url.to_owned(),
            reason: format!("the {other}: scheme is not fetched (http, https and file only)"),
        }),
    }
}

/// Why the literal address of `url`, if it has one, may not be reached.
fn literal_refusal(policy: &FetchPolicy, source: Source, url: &Url) -> Option<String> {
    if policy.allows_origin(source, url) {
        return None;
    }
    let ip = match url.host()? {
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
        Host::Domain(_) => return None,
    };
    policy.refusal(source, ip).map(|reason| format!("{ip} is {reason}"))
}

/// The redirect policy: at most `max_redirects`, to `http(s)` only, each target checked.
fn redirects(policy: Arc<FetchPolicy>, source: Source) -> redirect::Policy {
    redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > policy.max_redirects {
            let refusal = Refusal(format!("more than {} redirects", policy.max_redirects));
            return attempt.error(refusal);
        }
        let scheme = attempt.url().scheme().to_owned();
        if scheme != "http" && scheme != "https" {
            return attempt.error(Refusal(format!("a redirect to a {scheme}: URL")));
        }
        if let Some(reason) = literal_refusal(&policy, source, attempt.url()) {
            return attempt.error(Refusal(format!("a redirect to {reason}")));
        }
        attempt.follow()
    })
}

/// A refusal by the policy, carried through the HTTP client's errors.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// Maps a client error: a refusal found among its causes, or a network failure.
fn network_error(source: Source, url: &str, error: &reqwest::Error) -> FetchError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return FetchError::Refused {
                kind: source,
                url: url.to_owned(),
                reason: refusal.0.clone(),
            };
        }
        cause = current.source();
    }
    let message = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        error.to_string()
    };
    FetchError::Unreachable { kind: source, url: url.to_owned(), message }
}

/// Why a name could not be resolved to allowed addresses.
enum ResolveError {
    Refused(Refusal),
    Lookup(String),
}

/// The resolver of a fetcher's clients: the policy's pinned names first, then the system's,
/// and every address answered checked against the policy.
struct PolicyResolver {
    policy: Arc<FetchPolicy>,
    source: Source,
}

impl PolicyResolver {
    async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let ips: Vec<IpAddr> = match self.policy.hosts.get(name) {
            Some(pinned) => pinned.clone(),
            None => tokio::net::lookup_host((name, 0))
                .await
                .map_err(|e| ResolveError::Lookup(format!("{name} does not resolve: {e}")))?
                .map(|address| address.ip())
                .collect(),
        };
        if ips.is_empty() {
            return Err(ResolveError::Lookup(format!("{name} resolves to no address")));
        }
        for ip in &ips {
            if let Some(reason) = self.policy.refusal(self.source, *ip) {
                return Err(ResolveError::Refused(Refusal(format!("{name} resolves to {reason}"))));
            }
        }
        Ok(ips)
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = Self { policy: self.policy.clone(), source: self.source };
        Box::pin(async move {
            let ips = resolver.addresses(name.as_str()).await.map_err(
                |error| -> Box<dyn std::error::Error + Send + Sync> {
                    match error {
                        ResolveError::Refused(refusal) => Box::new(refusal),
                        ResolveError::Lookup(message) => message.into(),
                    }
                },
            )?;
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
