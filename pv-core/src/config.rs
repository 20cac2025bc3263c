//! Typed configuration: one TOML file, environment overrides, command-line overrides.
//!
//! Precedence, lowest first: built-in defaults, the TOML file, environment variables named
//! `PV_SECTION__KEY` (for example `PV_DATABASE__USERS_URL`), then the command-line flags the
//! binaries expose (`--data-dir`, `--listen`). Unknown keys are rejected with a message that names
//! the key and, for the file, the line. Every field is documented in `docs/ref/config.md`.
//!
//! With no file at all PentaVision runs: data in `./pentavision-data`, three SQLite databases
//! there, listening on `127.0.0.1:8080`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The name of the config file looked for in the data dir when no path is given.
pub const DEFAULT_CONFIG_FILE_NAME: &str = "pentavision.toml";
/// The environment variable that names the config file.
pub const CONFIG_ENV: &str = "PENTAVISION_CONFIG";
/// The prefix of environment overrides (`PV_SECTION__KEY`).
pub const ENV_PREFIX: &str = "PV_";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite databases, logs and local recordings. Relative paths are
    /// relative to the working directory. Default `./pentavision-data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// The three logical databases.
    #[serde(default)]
    pub database: DatabaseConfig,
    /// Logging.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// GraphQL limits.
    #[serde(default)]
    pub graphql: GraphqlConfig,
    /// Password hashing and other security parameters.
    #[serde(default)]
    pub security: SecurityConfig,
    /// The firewall blocklist daemon (`pentavision-blocklist`).
    #[serde(default)]
    pub blocklist: BlocklistConfig,
    /// Recording defaults, retention and the disk guard.
    #[serde(default)]
    pub recording: RecordingConfig,
    /// The system services the admin Services page may restart.
    #[serde(default)]
    pub services: ServicesConfig,
    /// Live view (WebRTC and its MSE fallback).
    #[serde(default)]
    pub live: LiveConfig,
    /// Uploads of footage to storage modules.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Face recognition.
    #[serde(default)]
    pub faces: FacesConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            logging: LoggingConfig::default(),
            graphql: GraphqlConfig::default(),
            security: SecurityConfig::default(),
            blocklist: BlocklistConfig::default(),
            recording: RecordingConfig::default(),
            services: ServicesConfig::default(),
            live: LiveConfig::default(),
            storage: StorageConfig::default(),
            faces: FacesConfig::default(),
        }
    }
}

/// `192.0.2.1`, `2001:db8::/32`, …
fn is_ip_or_network(text: &str) -> bool {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let Ok(addr) = addr.trim().parse::<std::net::IpAddr>() else { return false };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./pentavision-data")
}

/// `[server]`: the HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes. Default 16 MiB.
    pub body_limit_bytes: u64,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT. Default 10.
    pub shutdown_grace_seconds: u64,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` header names the
    /// real client. Requests from anywhere else are judged by their socket address. Default
    /// none.
    pub trusted_proxies: Vec<String>,
    /// The origin browsers use to reach the server, e.g. `https://nvr.example.com`: passkeys
    /// are bound to its host name and session cookies get `Secure` when it is `https`. Default
    /// `http://localhost:PORT` for the listen port.
    pub public_origin: Option<String>,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <token>`
    /// (Prometheus `authorization: { credentials: … }`). Default none: open, keep it to the
    /// monitoring network.
    pub metrics_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 16 * 1024 * 1024,
            shutdown_grace_seconds: 10,
            trusted_proxies: Vec::new(),
            public_origin: None,
            metrics_token: None,
        }
    }
}

/// `[database]`: the three logical databases. Each URL is `sqlite://PATH`, `postgres://…` or
/// `mysql://…` (MariaDB too). Unset URLs default to SQLite files in the data dir.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Accounts, credentials, sessions, roles, properties, audit, IP rules, blocklist settings.
    /// Default `sqlite://DATA_DIR/users.sqlite`.
    pub users_url: Option<String>,
    /// Face identities, embeddings and privacy policy. Default `sqlite://DATA_DIR/faces.sqlite`.
    pub faces_url: Option<String>,
    /// Cameras, segments, motion events, schedules, storage modules, upload queue.
    /// Default `sqlite://DATA_DIR/records.sqlite`.
    pub records_url: Option<String>,
    /// Connections per database pool. Default 8 (SQLite: at most 4 are used).
    pub max_connections: Option<u32>,
    /// How long to wait for a database connection, in seconds. Default 5.
    pub connect_timeout_seconds: Option<u64>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// How often the log file rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
    /// A new file every hour.
    Hourly,
    /// A new file every day.
    #[default]
    Daily,
    /// One file that grows.
    Never,
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `human` or `json`. Default `human`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `pv_web=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
    /// Write log files under `directory`. Default true.
    pub file_enabled: bool,
    /// Where log files go. Default `DATA_DIR/logs`.
    pub directory: Option<PathBuf>,
    /// `hourly`, `daily` or `never`. Default `daily`.
    pub rotation: LogRotation,
    /// How many rotated files to keep. Default 14.
    pub max_files: usize,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
            file_enabled: true,
            directory: None,
            rotation: LogRotation::Daily,
            max_files: 14,
        }
    }
}

/// `[graphql]`: limits that keep a single query from exhausting the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlConfig {
    /// Deepest allowed selection nesting. Default 12.
    pub max_depth: usize,
    /// Largest allowed query complexity (one point per field). Default 2000.
    pub max_complexity: usize,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        Self { max_depth: 12, max_complexity: 2000 }
    }
}

/// `[security]`: password hashing parameters (Argon2id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Argon2id memory cost in KiB. Default 19456 (19 MiB, the OWASP minimum).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations. Default 2.
    pub argon2_iterations: u32,
    /// Argon2id lanes. Default 1.
    pub argon2_parallelism: u32,
    /// Failed sign-in or PIN attempts allowed before lock-outs start. Default 5.
    pub lockout_free_attempts: u32,
    /// First lock-out, in seconds; each further failure doubles it. Default 30.
    pub lockout_base_seconds: u64,
    /// Longest lock-out, in seconds. Default 3600.
    pub lockout_max_seconds: u64,
    /// Failures older than this many seconds are forgotten. Default 86400.
    pub lockout_window_seconds: u64,
    /// A session unused for this many minutes ends. Default 120.
    pub session_idle_minutes: u32,
    /// A session ends this many hours after sign-in, whatever the activity. Default 24.
    pub session_absolute_hours: u32,
    /// Sign-in, second-factor and passkey requests allowed per client address per minute.
    /// Default 30.
    pub auth_requests_per_minute: u32,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            lockout_free_attempts: 5,
            lockout_base_seconds: 30,
            lockout_max_seconds: 3600,
            lockout_window_seconds: 86_400,
            session_idle_minutes: 120,
            session_absolute_hours: 24,
            auth_requests_per_minute: 30,
        }
    }
}

/// `[blocklist]`: the `pentavision-blocklist` daemon. Settings stored in the users database
/// take precedence at run time; these are the fallback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlocklistConfig {
    /// Address the daemon listens on. Default `127.0.0.1:7080`.
    pub listen: SocketAddr,
    /// Serve the list at all. Default true.
    pub enabled: bool,
    /// Optional bearer token a client must send. Never logged or shown back.
    pub token: Option<String>,
    /// Requests per minute per client address. Default 60.
    pub requests_per_minute: u32,
}

impl Default for BlocklistConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7080)),
            enabled: true,
            token: None,
            requests_per_minute: 60,
        }
    }
}

/// `[recording]`: how cameras are recorded unless a camera says otherwise, how long footage is
/// kept, and the disk guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Start the cameras' recorders with the server. Default true.
    pub enabled: bool,
    /// Segment length in seconds (a camera's `segment_seconds` overrides it). Default 60.
    pub segment_seconds: u32,
    /// Delete segments older than this many days (a camera's `retention_days` overrides it);
    /// 0 keeps them until the disk guard needs the space. Default 30.
    pub retention_days: u32,
    /// Keep at least this many bytes free on the recordings' file system: when free space
    /// falls below it the oldest unprotected segments are deleted. Default 2 GiB.
    pub min_free_bytes: u64,
    /// Seconds between retention and disk-guard passes. Default 60.
    pub retention_interval_seconds: u64,
    /// The ffmpeg program of the fallback recorder. Default `ffmpeg` (from `PATH`).
    pub ffmpeg_program: PathBuf,
    /// Where ONVIF WS-Discovery probes are sent. Default the multicast group
    /// `239.255.255.250:3702`.
    pub discovery_target: SocketAddr,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            segment_seconds: 60,
            retention_days: 30,
            min_free_bytes: 2 * 1024 * 1024 * 1024,
            retention_interval_seconds: 60,
            ffmpeg_program: PathBuf::from("ffmpeg"),
            discovery_target: SocketAddr::from(([239, 255, 255, 250], 3702)),
        }
    }
}

/// `[storage]`: how footage is uploaded to storage modules (the modules themselves are
/// configured in the records database, from the Storage page or the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Seconds between test writes of every enabled module (its health checks). Default 900.
    pub health_check_seconds: u64,
    /// Seconds between test writes of a failing module, so uploads go back to it once it
    /// recovers. Default 30.
    pub probe_seconds: u64,
    /// Failed uploads in a row after which a module counts as failing and uploads go to the
    /// next module of the camera's list. Default 3.
    pub failing_after: u32,
    /// Seconds before the first retry of a failed upload; each retry waits twice as long, up
    /// to `retry_max_seconds`. Default 5.
    pub retry_base_seconds: u64,
    /// Longest wait between retries of an upload, in seconds. Default 300.
    pub retry_max_seconds: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            health_check_seconds: 900,
            probe_seconds: 30,
            failing_after: 3,
            retry_base_seconds: 5,
            retry_max_seconds: 300,
        }
    }
}

/// `[faces]`: face recognition on uploaded images and on live camera frames while motion is
/// going on. The models are ONNX files (`pentavision faces fetch-models` fetches the default
/// ones); a missing or unusable model disables face features with a message, nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FacesConfig {
    /// Face recognition on or off. Default on.
    pub enabled: bool,
    /// Where the model files are. Default `DATA_DIR/models`.
    pub model_dir: Option<PathBuf>,
    /// The face detector: `blazeface_front` (default; faces near the camera),
    /// `blazeface_back` (smaller, farther faces; slower) or `ultraface`.
    pub detector: String,
    /// The detector's model file (a name in `model_dir` or a path). Default: the file the
    /// chosen detector's default model has.
    pub detector_model: Option<PathBuf>,
    /// The embedding model file (a name in `model_dir` or a path). Default `fr_feature.onnx`.
    pub embedder_model: Option<PathBuf>,
    /// Cosine similarity at or above which a face matches an enrolled person (0..1).
    /// Default 0.45, from the measured separation of the default models.
    pub threshold: f32,
    /// Frames per second analysed on a camera while motion is going on. Default 2.
    pub live_fps: u32,
    /// Frames analysed at the same time over all cameras; frames arriving while every worker is
    /// busy are dropped, never queued. Default 1.
    pub workers: usize,
    /// Days face events of unknown people (and their crops) are kept. Default 30.
    pub keep_unknown_days: u32,
}

impl Default for FacesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model_dir: None,
            detector: "blazeface_front".into(),
            detector_model: None,
            embedder_model: None,
            threshold: 0.45,
            live_fps: 2,
            workers: 1,
            keep_unknown_days: 30,
        }
    }
}

impl FacesConfig {
    /// The model directory: `model_dir`, else `DATA_DIR/models`.
    pub fn model_dir(&self, data_dir: &Path) -> PathBuf {
        self.model_dir.clone().unwrap_or_else(|| data_dir.join("models"))
    }
}

/// `[services]`: the systemd units the admin Services page shows and may restart. Nothing
/// else can be restarted from PentaVision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    /// Unit names without `.service`. Default `["pentavision-blocklist"]`.
    pub allowed: Vec<String>,
    /// The service manager's command. Default `systemctl`.
    pub systemctl: PathBuf,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            allowed: vec!["pentavision-blocklist".into()],
            systemctl: PathBuf::from("systemctl"),
        }
    }
}

/// `[live]`: live view in the browser. WebRTC (WHEP) on one UDP port; the MSE fallback
/// rides the HTTP port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// UDP port for WebRTC media on every address the server announces. Default 8555; 0 picks
    /// a free port (tests).
    pub udp_port: u16,
    /// Extra addresses announced to browsers as candidates with `udp_port`, for a server behind
    /// NAT whose port is forwarded (e.g. the public address). Default none.
    pub advertise_addresses: Vec<std::net::IpAddr>,
    /// STUN servers handed to browsers (`stun:host:port`), for viewers behind NAT. Default
    /// none.
    pub stun_servers: Vec<String>,
    /// TURN servers handed to browsers that cannot reach the server directly (strict
    /// firewalls). Their credentials go to signed-in viewers only and are redacted when the
    /// configuration is printed. Default none.
    pub turn_servers: Vec<TurnServer>,
    /// At most this many live viewers at once over the whole server (WebRTC and MSE each).
    /// Default 100.
    pub max_viewers: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            udp_port: 8555,
            advertise_addresses: Vec::new(),
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            max_viewers: 100,
        }
    }
}

/// A TURN server for live viewers (`[[live.turn_servers]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnServer {
    /// `turn:host:port?transport=udp` or `turns:host:port`.
    pub url: String,
    /// User name.
    pub username: String,
    /// Password (secret).
    pub credential: String,
}

/// Which logical database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    /// Accounts and security.
    Users,
    /// Face recognition.
    Faces,
    /// Cameras and recordings.
    Records,
}

impl DbKind {
    /// All three, in a fixed order.
    pub const ALL: [DbKind; 3] = [DbKind::Users, DbKind::Faces, DbKind::Records];

    /// `users`, `faces` or `records`.
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Users => "users",
            DbKind::Faces => "faces",
            DbKind::Records => "records",
        }
    }
}

impl std::fmt::Display for DbKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Overrides that come from the command line; they win over file and environment.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Load the configuration the way the binaries do: the file named by `path` (or by
    /// `PENTAVISION_CONFIG`, or `DATA_DIR/pentavision.toml` when that exists), then the
    /// process environment, then `cli` overrides.
    pub fn load(path: Option<&Path>, cli: Option<&CliOverrides>) -> Result<Self> {
        let default_cli = CliOverrides::default();
        let cli = cli.unwrap_or(&default_cli);
        let env_path = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
        let path = path.map(Path::to_path_buf).or(env_path).or_else(|| {
            let dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
            let candidate = dir.join(DEFAULT_CONFIG_FILE_NAME);
            candidate.is_file().then_some(candidate)
        });
        let file = match &path {
            Some(p) => {
                // A regular file of at most 1 MiB: `--config /dev/zero` is refused, not read.
                let bytes = crate::files::read_regular_file(p, 1 << 20, "the config file")
                    .map_err(|e| Error::Config(e.to_string()))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    Error::Config(format!("config file {}: not UTF-8 text", p.display()))
                })?;
                warn_if_readable_by_others(p);
                Some((p.as_path(), text))
            }
            None => None,
        };
        Self::from_sources(file.as_ref().map(|(p, t)| (*p, t.as_str())), std::env::vars(), cli)
    }

    /// Build a configuration from explicit sources (the file's path and text, environment
    /// pairs, command-line overrides). [`Config::load`] calls this; tests call it directly.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
        cli: &CliOverrides,
    ) -> Result<Self> {
        let mut config: Config = match file {
            Some((path, text)) => toml::from_str(text)
                .map_err(|e| Error::Config(describe_toml_error(path, text, &e)))?,
            None => Config::default(),
        };

        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
            .collect();
        overrides.sort();
        if !overrides.is_empty() {
            let mut table = toml::Table::try_from(&config)
                .map_err(|e| Error::Config(format!("configuration: {e}")))?;
            for (key, value) in overrides {
                apply_env_override(&mut table, &key, &value)?;
                // Validate after each override so the error names the variable at fault.
                config = toml::Value::Table(table.clone()).try_into().map_err(
                    |e: toml::de::Error| {
                        Error::Config(format!("environment variable {key}: {}", e.message().trim()))
                    },
                )?;
            }
        }

        if let Some(dir) = &cli.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(listen) = cli.listen {
            config.server.listen = listen;
        }
        config.validate()?;
        Ok(config)
    }

    /// Check values that parse but make no sense.
    pub fn validate(&self) -> Result<()> {
        for kind in DbKind::ALL {
            if let Some(url) = self.database.url_setting(kind) {
                check_database_url(kind, url)?;
            }
        }
        if self.database.max_connections == Some(0) {
            return Err(Error::Config("database.max_connections must be at least 1".into()));
        }
        if self.server.body_limit_bytes < 1024 {
            return Err(Error::Config("server.body_limit_bytes must be at least 1024".into()));
        }
        for proxy in &self.server.trusted_proxies {
            if !is_ip_or_network(proxy) {
                return Err(Error::Config(format!(
                    "server.trusted_proxies: {proxy:?} is not an IP address or CIDR network"
                )));
            }
        }
        if let Some(origin) = &self.server.public_origin
            && !(origin.starts_with("http://") || origin.starts_with("https://"))
        {
            return Err(Error::Config(format!(
                "server.public_origin: {origin:?} must start with http:// or https://"
            )));
        }
        let faces = &self.faces;
        if !["blazeface_front", "blazeface_back", "ultraface"].contains(&faces.detector.as_str()) {
            return Err(Error::Config(format!(
                "faces.detector: {:?} is not a known detector (blazeface_front, blazeface_back or ultraface)",
                faces.detector
            )));
        }
        if !(faces.threshold.is_finite() && (0.0..=1.0).contains(&faces.threshold)) {
            return Err(Error::Config("faces.threshold must be between 0 and 1".into()));
        }
        if !(1..=15).contains(&faces.live_fps) {
            return Err(Error::Config("faces.live_fps must be between 1 and 15".into()));
        }
        if !(1..=64).contains(&faces.workers) {
            return Err(Error::Config("faces.workers must be between 1 and 64".into()));
        }
        if self.graphql.max_depth == 0 || self.graphql.max_complexity == 0 {
            return Err(Error::Config(
                "graphql.max_depth and graphql.max_complexity must be at least 1".into(),
            ));
        }
        if self.security.argon2_memory_kib < 8 * self.security.argon2_parallelism.max(1) {
            return Err(Error::Config(
                "security.argon2_memory_kib must be at least 8 × argon2_parallelism".into(),
            ));
        }
        let sec = &self.security;
        if sec.session_idle_minutes == 0
            || sec.session_absolute_hours == 0
            || sec.auth_requests_per_minute == 0
        {
            return Err(Error::Config(
                "security.session_idle_minutes, session_absolute_hours and \
                 auth_requests_per_minute must be at least 1"
                    .into(),
            ));
        }
        if sec.lockout_base_seconds == 0 || sec.lockout_max_seconds < sec.lockout_base_seconds {
            return Err(Error::Config(
                "security.lockout_base_seconds must be at least 1 and at most lockout_max_seconds"
                    .into(),
            ));
        }
        if !(1..=3600).contains(&self.recording.segment_seconds) {
            return Err(Error::Config(
                "recording.segment_seconds must be between 1 and 3600".into(),
            ));
        }
        if let Some(bad) = self.services.allowed.iter().find(|u| {
            u.is_empty()
                || u.starts_with('-')
                || !u.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        }) {
            return Err(Error::Config(format!(
                "services.allowed: `{bad}` is not a systemd unit name (letters, digits, - _ . @)"
            )));
        }
        if self.recording.retention_interval_seconds == 0 {
            return Err(Error::Config(
                "recording.retention_interval_seconds must be at least 1".into(),
            ));
        }
        if self.blocklist.requests_per_minute == 0 {
            return Err(Error::Config("blocklist.requests_per_minute must be at least 1".into()));
        }
        Ok(())
    }

    /// The effective connection URL of one database (the configured one, or the SQLite default
    /// in the data dir). `mariadb://` is accepted and rewritten to `mysql://`.
    pub fn database_url(&self, kind: DbKind) -> String {
        match self.database.url_setting(kind) {
            Some(url) => match url.strip_prefix("mariadb://") {
                Some(rest) => format!("mysql://{rest}"),
                None => url.to_string(),
            },
            None => format!("sqlite://{}?mode=rwc", self.sqlite_path(kind).display()),
        }
    }

    /// Where the default SQLite file of a database lives.
    pub fn sqlite_path(&self, kind: DbKind) -> PathBuf {
        self.data_dir.join(format!("{}.sqlite", kind.name()))
    }

    /// The directory log files go to.
    pub fn log_dir(&self) -> PathBuf {
        self.logging.directory.clone().unwrap_or_else(|| self.data_dir.join("logs"))
    }

    /// The configuration as TOML with every secret (database passwords, tokens) replaced by
    /// `"********"`; safe to print or log.
    pub fn redacted_toml(&self) -> String {
        let mut copy = self.clone();
        for url in [
            &mut copy.database.users_url,
            &mut copy.database.faces_url,
            &mut copy.database.records_url,
        ]
        .into_iter()
        .flatten()
        {
            *url = redact_url(url);
        }
        if copy.blocklist.token.is_some() {
            copy.blocklist.token = Some("********".into());
        }
        if copy.server.metrics_token.is_some() {
            copy.server.metrics_token = Some("********".into());
        }
        for turn in &mut copy.live.turn_servers {
            turn.credential = "********".into();
        }
        toml::to_string_pretty(&copy).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

impl DatabaseConfig {
    /// The URL set for `kind`, if any.
    pub fn url_setting(&self, kind: DbKind) -> Option<&str> {
        match kind {
            DbKind::Users => self.users_url.as_deref(),
            DbKind::Faces => self.faces_url.as_deref(),
            DbKind::Records => self.records_url.as_deref(),
        }
    }
}

/// Replace the password in a URL (`scheme://user:password@host/…`) with `********`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:********{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                ),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

fn check_database_url(kind: DbKind, url: &str) -> Result<()> {
    const SCHEMES: [&str; 5] =
        ["sqlite:", "postgres://", "postgresql://", "mysql://", "mariadb://"];
    if SCHEMES.iter().any(|s| url.starts_with(s)) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "database.{}_url: unsupported URL '{}': use sqlite://PATH, postgres://… or mysql://…",
            kind.name(),
            redact_url(url)
        )))
    }
}

fn describe_toml_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            format!("config file {}: line {line}, column {column}: {message}", path.display())
        }
        None => format!("config file {}: {message}", path.display()),
    }
}

fn apply_env_override(table: &mut toml::Table, key: &str, value: &str) -> Result<()> {
    let path: Vec<String> =
        key[ENV_PREFIX.len()..].split("__").map(|s| s.to_ascii_lowercase()).collect();
    if path.iter().any(String::is_empty) {
        return Err(Error::Config(format!("environment variable {key}: empty key segment")));
    }
    let (last, sections) = path.split_last().expect("split of a non-empty string");
    let mut current = table;
    for section in sections {
        let entry = current
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(Error::Config(format!(
                    "environment variable {key}: '{section}' is a value, not a section"
                )));
            }
        };
    }
    current.insert(last.clone(), env_value(value));
    Ok(())
}

fn env_value(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        toml::Value::Integer(i)
    } else if let Ok(b) = raw.parse::<bool>() {
        toml::Value::Boolean(b)
    } else if let Ok(f) = raw.parse::<f64>()
        && raw.contains('.')
        && !raw.contains(':')
    {
        toml::Value::Float(f)
    } else {
        toml::Value::String(raw.to_string())
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "config file is readable by other users; it may hold secrets: chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Write `text` to `path` readable and writable by the owner only (0600), creating parent
/// directories. Used for config files and other files that hold secrets.
pub fn write_private_file(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(path, e))?;
    }
    file.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        Config::from_sources(
            Some((Path::new("/etc/pv.toml"), text)),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &CliOverrides::default(),
        )
    }

    #[test]
    fn no_file_gives_embedded_defaults() {
        let c = Config::from_sources(None, Vec::new(), &CliOverrides::default()).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./pentavision-data"));
        assert_eq!(
            c.database_url(DbKind::Faces),
            "sqlite://./pentavision-data/faces.sqlite?mode=rwc"
        );
        assert_eq!(c.blocklist.listen.port(), 7080);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = load("[server]\nlisten = \"127.0.0.1:9000\"\ncolour = \"blue\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("colour"), "{err}");
        assert!(err.contains("/etc/pv.toml"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }

    #[test]
    fn malformed_toml_is_one_line_with_position() {
        let err = load("[server\nlisten = 1\n", &[]).unwrap_err().to_string();
        assert!(err.starts_with("config file /etc/pv.toml: line 1"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn wrong_type_is_reported() {
        let err = load("[server]\nlisten = 42\n", &[]).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        let c = load(
            "[database]\nusers_url = \"sqlite:///tmp/a.sqlite\"\n",
            &[
                ("PV_DATABASE__USERS_URL", "postgres://pv:secret@db/pv_users"),
                ("PV_GRAPHQL__MAX_DEPTH", "5"),
                ("PV_LOGGING__FILE_ENABLED", "false"),
                ("UNRELATED", "x"),
                ("PV_NO_DOUBLE_UNDERSCORE", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(c.database_url(DbKind::Users), "postgres://pv:secret@db/pv_users");
        assert_eq!(c.graphql.max_depth, 5);
        assert!(!c.logging.file_enabled);

        let cli = CliOverrides {
            data_dir: Some("/srv/pv".into()),
            listen: Some("127.0.0.1:9999".parse().unwrap()),
        };
        let c = Config::from_sources(
            None,
            vec![("PV_SERVER__LISTEN".into(), "127.0.0.1:1234".into())],
            &cli,
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9999);
        assert_eq!(c.sqlite_path(DbKind::Records), PathBuf::from("/srv/pv/records.sqlite"));
    }

    #[test]
    fn unknown_env_key_names_the_variable() {
        let err = load("", &[("PV_SERVER__COLOUR", "blue")]).unwrap_err().to_string();
        assert!(err.contains("PV_SERVER__COLOUR"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_database_url_is_rejected_without_leaking_password() {
        let err = load("[database]\nfaces_url = \"oracle://u:hunter2@h/x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.faces_url"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn mariadb_scheme_is_accepted() {
        let c = load("[database]\nrecords_url = \"mariadb://root@127.0.0.1/pv\"\n", &[]).unwrap();
        assert_eq!(c.database_url(DbKind::Records), "mysql://root@127.0.0.1/pv");
    }

    #[test]
    fn redaction_hides_passwords_and_tokens() {
        let c = load(
            "[server]\nmetrics_token = \"met-456\"\n\
             [database]\nusers_url = \"postgres://pv:s3cret@h:5432/u\"\n[blocklist]\ntoken = \"tok-123\"\n\
             [[live.turn_servers]]\nurl = \"turn:t.example:3478\"\nusername = \"pv\"\ncredential = \"turn-pw\"\n",
            &[],
        )
        .unwrap();
        let shown = c.redacted_toml();
        assert!(!shown.contains("s3cret") && !shown.contains("tok-123"), "{shown}");
        assert!(!shown.contains("met-456") && shown.contains("metrics_token"), "{shown}");
        assert!(!shown.contains("turn-pw") && shown.contains("turn:t.example:3478"), "{shown}");
        assert!(shown.contains("postgres://pv:********@h:5432/u"), "{shown}");
        assert_eq!(redact_url("sqlite:///x.db"), "sqlite:///x.db");
        assert_eq!(redact_url("mysql://root@h/db"), "mysql://root@h/db");
    }

    #[test]
    fn private_files_are_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/pentavision.toml");
        write_private_file(&p, "data_dir = \"/x\"\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "data_dir = \"/x\"\n");
    }

    #[test]
    fn semantic_checks() {
        assert!(load("[database]\nmax_connections = 0\n", &[]).is_err());
        assert!(load("[graphql]\nmax_depth = 0\n", &[]).is_err());
    }
}
