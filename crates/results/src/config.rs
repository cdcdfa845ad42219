//! The result store's configuration, with defaults fit for a devnet.

use std::{path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use alloy::primitives::Address;
use object_store::{
    ObjectStore,
    aws::{AmazonS3Builder, AmazonS3ConfigKey},
    local::LocalFileSystem,
    path::Path as StorePath,
    prefix::PrefixStore,
};
use poco_api::results::UploadLimits;

use crate::{
    books::ChallengeKey,
    error::{Error, Result},
};

/// Everything [`crate::serve`] needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where archives are kept.
    pub storage: StorageConfig,
    /// The chain the deals and tasks are read from.
    pub chain: ChainConfig,
    /// Limits on uploads.
    pub limits: UploadLimits,
    /// How far a request's timestamp may be from the store's clock (either way).
    pub max_request_age: Duration,
    /// How long a download challenge stays valid.
    pub challenge_ttl: Duration,
    /// The key download challenges are minted with (they are stateless: the nonce carries its
    /// expiry and a MAC of the task, so issuing one stores nothing). `None` (the default)
    /// draws a random key at each start: challenges issued before a restart are then refused,
    /// and the client asks for a new one. Several instances behind one address must share one
    /// key, so that a challenge issued by one is accepted by another; each instance then
    /// remembers the nonces used through it, so share the key only between instances that one
    /// client cannot reach in turn (or accept that a nonce may be used once per instance, by
    /// the beneficiary only, within its short life).
    pub challenge_key: Option<ChallengeKey>,
    /// Most used download challenges remembered (each until it expires) to refuse a second use.
    /// Only a request signed by whoever may read the result adds one, so this protects the
    /// store's memory from beneficiaries downloading in a loop, not from strangers; when it is
    /// full, downloads are refused (429) until some expire.
    pub max_used_challenges: usize,
    /// Most signed requests remembered to refuse replays (each for `max_request_age`). Only
    /// authenticated requests are recorded (a chosen uploader's, a beneficiary's or a deal's
    /// scheduler's); when it is full, they are refused (429) until some expire.
    pub max_replay_records: usize,
    /// Most uploads processed at once (each holds its archive in memory), publications of
    /// apps' code included.
    pub max_concurrent_uploads: usize,
    /// The largest app code an owner may publish, in bytes (a worker fetches at most 256 MiB).
    pub max_code_bytes: u64,
    /// Longest time a request may take, body transfer included.
    pub request_timeout: Duration,
    /// Most deals kept in the in-memory deal cache.
    pub deal_cache_size: usize,
    /// The URL requesters download from (what schedulers name the store by), told on
    /// `/health` so that a scheduler can check it names the store rightly; `None` tells none.
    pub public_url: Option<String>,
}

impl Config {
    /// A configuration for the chain at `rpc_url` where the protocol is at `poco`, with the
    /// defaults for everything else (archives in `./results`).
    pub fn new(rpc_url: impl Into<String>, poco: Address) -> Self {
        Self {
            storage: StorageConfig::default(),
            chain: ChainConfig::new(rpc_url, poco),
            limits: UploadLimits::default(),
            max_request_age: Duration::from_secs(300),
            challenge_ttl: Duration::from_secs(120),
            challenge_key: None,
            max_used_challenges: 100_000,
            max_replay_records: 100_000,
            max_concurrent_uploads: 8,
            max_code_bytes: 256 << 20,
            request_timeout: Duration::from_secs(120),
            deal_cache_size: 10_000,
            public_url: None,
        }
    }
}

/// The chain the store checks deals and consensus on.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// JSON-RPC endpoint (`http(s)://` or `ws(s)://`).
    pub rpc_url: String,
    /// The protocol's address.
    pub poco: Address,
    /// The first block to look for `DealCreated` logs in (the protocol's deployment block).
    pub from_block: u64,
    /// Most blocks one `eth_getLogs` request covers when looking a deal up (searching back from
    /// the head); 0 asks for the whole range at once.
    pub max_log_range: u64,
}

impl ChainConfig {
    /// The chain at `rpc_url` with the protocol at `poco`, searched from block 0.
    pub fn new(rpc_url: impl Into<String>, poco: Address) -> Self {
        Self { rpc_url: rpc_url.into(), poco, from_block: 0, max_log_range: 50_000 }
    }
}

impl std::fmt::Debug for ChainConfig {
    /// Shows the RPC endpoint's scheme and host only: its path or query may hold an API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoint = match reqwest::Url::parse(&self.rpc_url) {
            Ok(url) => format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("")),
            Err(_) => "<unparsable>".to_owned(),
        };
        f.debug_struct("ChainConfig")
            .field("rpc_url", &endpoint)
            .field("poco", &self.poco)
            .field("from_block", &self.from_block)
            .field("max_log_range", &self.max_log_range)
            .finish()
    }
}

/// Where archives are kept: a local folder, or an S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// A folder on this machine, created if needed.
    Local {
        /// The folder.
        root: PathBuf,
    },
    /// An S3-compatible bucket, `s3://bucket[/prefix]`. Credentials, region and endpoint come
    /// from the usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for a non-AWS store,
    /// `AWS_ALLOW_HTTP=true` for a plain-HTTP one), or from a settings file of `NAME=value`
    /// lines with the same names, which wins over the environment: never from the command
    /// line, where other users of the machine would read them. Uploads use conditional puts
    /// (`If-None-Match: *`), which the store must support.
    S3 {
        /// The bucket URL.
        url: String,
        /// The settings file, if any: not readable by other users.
        settings: Option<PathBuf>,
    },
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self::Local { root: PathBuf::from("results") }
    }
}

impl FromStr for StorageConfig {
    type Err = Error;

    /// `s3://bucket[/prefix]` for S3, `file:///path` or a plain path for a local folder.
    fn from_str(value: &str) -> Result<Self> {
        if value.is_empty() {
            return Err(Error::Config("the storage location is empty".into()));
        }
        if value.starts_with("s3://") || value.starts_with("s3a://") {
            return Ok(Self::S3 { url: value.to_owned(), settings: None });
        }
        if let Some(path) = value.strip_prefix("file://") {
            return Ok(Self::Local { root: PathBuf::from(path) });
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(Error::Config(format!(
                "unsupported storage scheme {scheme:?}: use a path, file:// or s3://"
            )));
        }
        Ok(Self::Local { root: PathBuf::from(value) })
    }
}

impl StorageConfig {
    /// Opens the store.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>> {
        match self {
            Self::Local { root } => {
                poco_chain::files::private_dir(root)
                    .map_err(|source| Error::Io { path: root.clone(), source })?;
                let store = LocalFileSystem::new_with_prefix(root)?;
                Ok(Arc::new(store))
            }
            Self::S3 { url, settings } => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| Error::Config(format!("invalid S3 URL {url:?}: {e}")))?;
                let bucket = parsed.host_str().unwrap_or_default();
                if bucket.is_empty() {
                    return Err(Error::Config(format!("the S3 URL {url:?} names no bucket")));
                }
                let mut builder = AmazonS3Builder::from_env();
                if let Some(path) = settings {
                    for (key, value) in read_s3_settings(path)? {
                        builder = builder.with_config(key, value);
                    }
                }
                let store = builder.with_bucket_name(bucket).build()?;
                let prefix = parsed.path().trim_matches('/');
                if prefix.is_empty() {
                    Ok(Arc::new(store))
                } else {
                    let prefix = StorePath::parse(prefix)
                        .map_err(|e| Error::Config(format!("invalid S3 prefix in {url:?}: {e}")))?;
                    Ok(Arc::new(PrefixStore::new(store, prefix)))
                }
            }
        }
    }
}

/// The settings of an S3 settings file: `NAME=value` lines with the environment's names
/// (`AWS_ACCESS_KEY_ID`...), `#` comments and blank lines ignored. The file must be closed to
/// other users: it holds a secret key. Values are never put in an error.
fn read_s3_settings(path: &std::path::Path) -> Result<Vec<(AmazonS3ConfigKey, String)>> {
    use std::os::unix::fs::MetadataExt as _;
    let refuse =
        |reason: String| Error::Config(format!("S3 settings {}: {reason}", path.display()));
    let metadata = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    if metadata.mode() & 0o077 != 0 {
        return Err(refuse(format!(
            "mode {:o} lets other users read the secret key: chmod 600 it",
            metadata.mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    let mut settings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = index + 1;
        let Some((name, value)) = line.split_once('=') else {
            return Err(refuse(format!("line {at}: expected NAME=value")));
        };
        let name = name.trim();
        let key = name
            .starts_with("AWS_")
            .then(|| name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>().ok())
            .flatten()
            .ok_or_else(|| refuse(format!("line {at}: unknown setting {name:?}")))?;
        settings.push((key, value.trim().to_owned()));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_locations_parse() {
        assert_eq!(
            "s3://bucket/some/prefix".parse::<StorageConfig>().unwrap(),
            StorageConfig::S3 { url: "s3://bucket/some/prefix".into(), settings: None }
        );
        assert_eq!(
            "file:///var/results".parse::<StorageConfig>().unwrap(),
            StorageConfig::Local { root: "/var/results".into() }
        );
        assert_eq!(
            "data/results".parse::<StorageConfig>().unwrap(),
            StorageConfig::Local { root: "data/results".into() }
        );
        assert!("gs://bucket".parse::<StorageConfig>().is_err());
        assert!("".parse::<StorageConfig>().is_err());
    }

    #[test]
    fn s3_is_selectable_without_a_network() {
        // Building the client needs no request; a region and credentials from the config
        // would normally come from the environment.
        let store =
            StorageConfig::S3 { url: "s3://results-bucket".into(), settings: None }.open().unwrap();
        assert!(store.to_string().contains("results-bucket"), "{store}");
        let store = StorageConfig::S3 { url: "s3://results-bucket/poco/".into(), settings: None }
            .open()
            .unwrap();
        assert!(store.to_string().contains("poco"), "{store}");
        let bad = StorageConfig::S3 { url: "s3:///nothing".into(), settings: None };
        assert!(bad.open().is_err());
    }

    /// A settings file open to others, of another shape, or naming an unknown setting is
    /// refused, without its values in the message.
    #[test]
    fn s3_settings_files_are_checked() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s3.env");
        let open = |text: &str, mode: u32| {
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            StorageConfig::S3 { url: "s3://bucket".into(), settings: Some(path.clone()) }.open()
        };
        let good = "# a store on this network\nAWS_ACCESS_KEY_ID=key\nAWS_SECRET_ACCESS_KEY=hush\n\
                    AWS_REGION=us-east-1\nAWS_ENDPOINT=http://127.0.0.1:9000\nAWS_ALLOW_HTTP=true\n";
        assert!(open(good, 0o600).is_ok());
        let refused = open(good, 0o644).map(|_| ()).unwrap_err().to_string();
        assert!(refused.contains("chmod 600") && !refused.contains("hush"), "{refused}");
        let refused = open("AWS_SECRET_ACCESS_KEY hush\n", 0o600).map(|_| ()).unwrap_err();
        assert!(refused.to_string().contains("line 1: expected NAME=value"), "{refused}");
        assert!(!refused.to_string().contains("hush"), "{refused}");
        let refused = open("AWS_NOT_A_SETTING=1\n", 0o600).map(|_| ()).unwrap_err();
        assert!(refused.to_string().contains("unknown setting"), "{refused}");
        let refused = open("PATH=/bin\n", 0o600).map(|_| ()).unwrap_err();
        assert!(refused.to_string().contains("unknown setting"), "{refused}");
    }

    #[test]
    fn debug_hides_the_rpc_path() {
        let config = ChainConfig::new("https://rpc.example/v3/secret-key", Address::ZERO);
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret-key"), "{shown}");
        assert!(shown.contains("rpc.example"), "{shown}");
    }

    #[test]
    fn local_storage_creates_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        StorageConfig::Local { root: root.clone() }.open().unwrap();
        assert!(root.is_dir());
    }
}
