//! Provider definitions: what a storage provider is, which fields its form has, how they are
//! checked, and the [`Registry`] of every provider known to this server.
//!
//! A provider is a folder with two files:
//! - `definition.json`: a [`ProviderDefinition`] (id, name, category, icon, the backend it runs
//!   on, capabilities, form fields with validation and help, preset defaults and quirks);
//! - `template.html`: the provider's form snippet, shown by the Storage Modules Manager.
//!
//! Built-in providers are embedded in the binary (see `definition/builtin.rs`). Folders dropped
//! into `DATA_DIR/modules/` are read by [`Registry::load`] at start-up: a dropped folder may reuse
//! any built-in backend with its own definition (a new S3-compatible vendor is a folder with
//! `"backend": "s3"` and its endpoint in `defaults`). A folder that cannot be used is skipped with
//! a [`LoadNotice`] saying why, and never stops the server.
//!
//! Both files are read with a size cap of [`MAX_FILE_BYTES`] each. A dropped folder may not
//! replace a built-in provider: its id must be new, and it must equal the folder's name.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub(crate) mod builtin;

/// Largest `definition.json` or `template.html` accepted, in bytes.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// Every backend a definition may name.
pub const BACKENDS: &[&str] = &[
    "s3",
    "gcs",
    "azblob",
    "swift",
    "b2",
    "dropbox",
    "onedrive",
    "gdrive",
    "pcloud",
    "webdav",
    "ftp",
    "ftps_implicit",
    "sftp",
    "scp",
    "smb",
    "mega",
    "box",
    "fs",
];

/// How the UI groups providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Buckets: Amazon S3 and compatibles, GCS, Azure Blob, Swift, B2.
    ObjectStorage,
    /// Personal and business cloud drives: Dropbox, OneDrive, Google Drive, Box, pCloud, MEGA.
    CloudDrive,
    /// Network protocols: WebDAV, FTP(S), SFTP, SCP, SMB.
    Network,
    /// Paths on this machine: local disks, mounted volumes, container volumes.
    Local,
}

impl Category {
    /// The serialized name (`object_storage`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::ObjectStorage => "object_storage",
            Category::CloudDrive => "cloud_drive",
            Category::Network => "network",
            Category::Local => "local",
        }
    }
}

/// What a provider's backend can do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// Large files are sent in parts (multipart upload, blocks, upload sessions).
    pub multipart: bool,
    /// Byte ranges can be read.
    pub range: bool,
    /// Objects can be listed.
    pub list: bool,
    /// Signed read URLs can be made.
    pub presign: bool,
    /// Most parts in one multipart upload.
    pub max_parts: Option<u32>,
    /// Smallest part (all but the last), in bytes.
    pub min_part_size: Option<u64>,
    /// All parts but the last must have the same size.
    pub equal_parts: bool,
}

/// Vendor-specific behaviour applied on top of the backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quirks {
    /// List with ListObjects v1 (IBM COS).
    pub list_objects_v1: bool,
    /// The region is always `auto` (Cloudflare R2).
    pub region_auto: bool,
    /// Most parts in one multipart upload (Scaleway: 1,000); the chunk size grows to fit.
    pub max_parts: Option<u32>,
    /// Every part but the last has the same size (Cloudflare R2).
    pub equal_parts: bool,
    /// Most keys in one batch delete (Cloudflare R2: 700).
    pub delete_batch: Option<u32>,
    /// Do not send response-header overrides on reads (Cloudflare R2).
    pub disable_stat_with_override: bool,
    /// Use virtual-host-style bucket addressing (`https://bucket.host/`) instead of path style.
    pub virtual_host_style: bool,
    /// Do not create parent folders before writing (WebDAV servers that create them on PUT).
    pub disable_create_dir: bool,
}

/// How the UI gets an OAuth refresh token for this provider (authorisation-code flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthSpec {
    /// The vendor's authorisation page.
    pub authorize_url: String,
    /// The vendor's token endpoint.
    pub token_url: String,
    /// Scopes to ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The field holding the OAuth client id.
    pub client_id_field: String,
    /// The field holding the OAuth client secret.
    pub client_secret_field: String,
}

/// The kind of input a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// A secret typed in a masked input.
    Password,
    /// A number (`min`/`max` apply).
    Number,
    /// A check box.
    Bool,
    /// One of `options`.
    Select,
    /// An `http://` or `https://` address.
    Url,
    /// An absolute path on this machine or on the remote server.
    Path,
    /// Several lines (a key file, a service-account JSON).
    Textarea,
}

/// One choice of a select field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectOption {
    /// The stored value.
    pub value: String,
    /// What people see.
    pub label: String,
}

/// One form field of a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The config key (`bucket`, `secret_access_key`).
    pub key: String,
    /// What people see (`Bucket`, `Secret access key`).
    pub label: String,
    /// The kind of input.
    pub kind: FieldKind,
    /// Must be given (or have a default).
    #[serde(default)]
    pub required: bool,
    /// Kept sealed, never shown or logged; the value travels in `secrets`, not `config`.
    #[serde(default)]
    pub secret: bool,
    /// Used when no value is given.
    #[serde(default)]
    pub default: Option<Value>,
    /// Example shown in the empty input.
    #[serde(default)]
    pub placeholder: Option<String>,
    /// A regular expression the whole value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Smallest number allowed.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest number allowed.
    #[serde(default)]
    pub max: Option<f64>,
    /// The choices of a select field.
    #[serde(default)]
    pub options: Vec<SelectOption>,
    /// One or two sentences on what to enter.
    #[serde(default)]
    pub help: String,
    /// Where to find this value, in the vendor's documentation.
    #[serde(default)]
    pub docs_url: Option<String>,
    /// Shown under "Advanced".
    #[serde(default)]
    pub advanced: bool,
}

/// A provider's `definition.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderDefinition {
    /// Unique id, also the folder name: lower-case letters, digits, `-` and `_`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// UI group.
    pub category: Category,
    /// Icon key the UI maps to an inline SVG.
    pub icon: String,
    /// The backend it runs on: one of [`BACKENDS`].
    pub backend: String,
    /// One sentence for people.
    pub description: String,
    /// The vendor's official documentation.
    pub docs_url: String,
    /// What the backend can do.
    pub capabilities: Capabilities,
    /// Form fields, in order.
    pub fields: Vec<Field>,
    /// Preset config under the user's values; `{field}` in a string refers to another field.
    #[serde(default)]
    pub defaults: Map<String, Value>,
    /// Vendor-specific behaviour.
    #[serde(default)]
    pub quirks: Quirks,
    /// OAuth authorisation-code flow, for Dropbox, OneDrive, Google Drive and Box.
    #[serde(default)]
    pub oauth: Option<OAuthSpec>,
}

/// Where a provider came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSource {
    /// Embedded in the binary.
    Builtin,
    /// A folder in `DATA_DIR/modules/`.
    Dropped(PathBuf),
}

impl ProviderSource {
    /// `builtin` or `dropped`, as stored in the records database.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderSource::Builtin => "builtin",
            ProviderSource::Dropped(_) => "dropped",
        }
    }
}

/// A loaded provider.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Its definition.
    pub definition: ProviderDefinition,
    /// Its form snippet.
    pub template_html: String,
    /// Where it came from.
    pub source: ProviderSource,
}

/// Why a dropped folder was skipped, for the log and the UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadNotice {
    /// The folder name.
    pub folder: String,
    /// What is wrong with it, for people.
    pub message: String,
}

/// A field value that does not pass its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's key.
    pub field: String,
    /// The field's label.
    pub label: String,
    /// What is wrong, naming the label.
    pub message: String,
}

/// Every provider known to this server.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: BTreeMap<String, Provider>,
}

impl Registry {
    /// The built-in providers only.
    pub fn builtin() -> Registry {
        let mut registry = Registry::default();
        for (id, json, html) in builtin::BUILTIN {
            match parse_definition(id, json, html) {
                Ok(definition) => {
                    registry.providers.insert(
                        definition.id.clone(),
                        Provider {
                            definition,
                            template_html: (*html).to_owned(),
                            source: ProviderSource::Builtin,
                        },
                    );
                }
                Err(message) => {
                    tracing::error!(provider = id, "built-in provider skipped: {message}")
                }
            }
        }
        registry
    }

    /// The built-in providers, then every folder of `dropped_dir` (when given and present).
    /// Never fails: each folder that cannot be used gives a notice (also logged as a warning).
    pub fn load(dropped_dir: Option<&Path>) -> (Registry, Vec<LoadNotice>) {
        Registry::builtin().load_dropped(dropped_dir)
    }

    /// Add the folders of `dropped_dir` to this registry.
    fn load_dropped(self, dropped_dir: Option<&Path>) -> (Registry, Vec<LoadNotice>) {
        let mut registry = self;
        let mut notices = Vec::new();
        let Some(dir) = dropped_dir else {
            return (registry, notices);
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (registry, notices),
            Err(e) => {
                let message = format!("the modules folder {} cannot be read: {e}", dir.display());
                tracing::warn!("{message}");
                notices.push(LoadNotice { folder: dir.display().to_string(), message });
                return (registry, notices);
            }
        };
        let mut folders: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_dir())
            .collect();
        folders.sort();
        for path in folders {
            let folder =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if folder.starts_with('.') {
                continue;
            }
            match load_folder(&path, &folder, &registry) {
                Ok(provider) => {
                    tracing::info!(provider = %provider.definition.id, path = %path.display(), "storage provider loaded");
                    registry.providers.insert(provider.definition.id.clone(), provider);
                }
                Err(message) => {
                    tracing::warn!(folder = %folder, "storage provider folder skipped: {message}");
                    notices.push(LoadNotice { folder, message });
                }
            }
        }
        (registry, notices)
    }

    /// The provider with this id.
    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.providers.get(id)
    }

    /// Every provider, grouped by category, then by name.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        let mut all: Vec<&Provider> = self.providers.values().collect();
        all.sort_by(|a, b| {
            (a.definition.category, a.definition.name.to_lowercase(), &a.definition.id).cmp(&(
                b.definition.category,
                b.definition.name.to_lowercase(),
                &b.definition.id,
            ))
        });
        all.into_iter()
    }

    /// How many providers are loaded.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// Whether no provider is loaded.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Add a provider (for embedding and tests); replaces one with the same id.
    pub fn insert(&mut self, provider: Provider) {
        self.providers.insert(provider.definition.id.clone(), provider);
    }
}

/// Read a file of at most [`MAX_FILE_BYTES`].
fn read_capped(path: &Path, name: &str) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{name} is missing"),
        _ => format!("{name} cannot be read: {e}"),
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name} cannot be read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{name} is larger than {} KiB", MAX_FILE_BYTES / 1024));
    }
    String::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8 text"))
}

fn load_folder(path: &Path, folder: &str, registry: &Registry) -> Result<Provider, String> {
    let json = read_capped(&path.join("definition.json"), "definition.json")?;
    let html = read_capped(&path.join("template.html"), "template.html")?;
    let definition = parse_definition(folder, &json, &html)?;
    if let Some(existing) = registry.get(&definition.id) {
        return Err(match existing.source {
            ProviderSource::Builtin => format!(
                "the id \"{}\" belongs to a built-in provider and cannot be replaced; choose a new id (and folder name)",
                definition.id
            ),
            ProviderSource::Dropped(_) => {
                format!("the id \"{}\" is already used by another folder", definition.id)
            }
        });
    }
    Ok(Provider {
        definition,
        template_html: html,
        source: ProviderSource::Dropped(path.to_path_buf()),
    })
}

/// Parse and check one definition; `folder` is the expected id.
pub(crate) fn parse_definition(
    folder: &str,
    json: &str,
    html: &str,
) -> Result<ProviderDefinition, String> {
    let definition: ProviderDefinition = serde_json::from_str(json)
        .map_err(|e| format!("definition.json is not valid: {}", humanize_json_error(&e)))?;
    check_definition(&definition, folder)?;
    if html.trim().is_empty() {
        return Err("template.html is empty".to_owned());
    }
    Ok(definition)
}

fn check_definition(d: &ProviderDefinition, folder: &str) -> Result<(), String> {
    let id_ok = !d.id.is_empty()
        && d.id.len() <= 64
        && d.id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && d.id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !id_ok {
        return Err(format!(
            "definition.json: the id \"{}\" may only use lower-case letters, digits, '-' and '_' (at most 64)",
            d.id
        ));
    }
    if d.id != folder {
        return Err(format!(
            "definition.json: the id \"{}\" must be the same as the folder name \"{folder}\"",
            d.id
        ));
    }
    if d.name.trim().is_empty() {
        return Err("definition.json: the name is empty".to_owned());
    }
    if !BACKENDS.contains(&d.backend.as_str()) {
        return Err(format!(
            "definition.json: the backend \"{}\" is unknown; use one of {}",
            d.backend,
            BACKENDS.join(", ")
        ));
    }
    let mut keys = HashSet::new();
    for field in &d.fields {
        if field.key.trim().is_empty() {
            return Err(format!("definition.json: the field \"{}\" has no key", field.label));
        }
        if !keys.insert(field.key.as_str()) {
            return Err(format!("definition.json: the field key \"{}\" is used twice", field.key));
        }
        if field.kind == FieldKind::Select && field.options.is_empty() {
            return Err(format!(
                "definition.json: the select field \"{}\" has no options",
                field.key
            ));
        }
        if let Some(pattern) = &field.pattern
            && regex::Regex::new(&anchored(pattern)).is_err()
        {
            return Err(format!(
                "definition.json: the pattern of the field \"{}\" is not a valid regular expression",
                field.key
            ));
        }
    }
    if let Some(oauth) = &d.oauth {
        for key in [&oauth.client_id_field, &oauth.client_secret_field] {
            if !keys.contains(key.as_str()) {
                return Err(format!(
                    "definition.json: the OAuth settings name the field \"{key}\", which does not exist"
                ));
            }
        }
    }
    Ok(())
}

fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// Reword a JSON error for people: `line 3 column 5: missing the "backend" entry`.
pub(crate) fn humanize_json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let message = match full.rfind(" at line ") {
        Some(at) => &full[..at],
        None => full.as_str(),
    };
    let reworded = if let Some(rest) = message.strip_prefix("missing field ") {
        format!("missing the \"{}\" entry", rest.trim_matches('`'))
    } else if let Some(rest) = message.strip_prefix("unknown variant ") {
        match rest.split_once(", expected ") {
            Some((value, expected)) => format!(
                "\"{}\" is not allowed here; use {}",
                value.trim_matches('`'),
                expected.replace('`', "\"").replace("one of ", "one of: ")
            ),
            None => format!("{} is not allowed here", rest.replace('`', "\"")),
        }
    } else if let Some(rest) = message.strip_prefix("invalid type: ") {
        match rest.split_once(", expected ") {
            Some((found, expected)) => format!("found {found} where {expected} was expected"),
            None => format!("a value has the wrong type ({rest})"),
        }
    } else if let Some(rest) = message.strip_prefix("duplicate field ") {
        format!("the \"{}\" entry appears twice", rest.trim_matches('`'))
    } else if message.starts_with("EOF while parsing") {
        "the file ends too early (a bracket or quote is not closed)".to_owned()
    } else {
        message.replace('`', "\"")
    };
    if e.line() > 0 {
        format!("line {} column {}: {reworded}", e.line(), e.column())
    } else {
        reworded
    }
}

/// Whether a value counts as "not given".
fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Provider {
    /// The provider id.
    pub fn id(&self) -> &str {
        &self.definition.id
    }

    /// Check `config` (non-secret values) and `secrets` against the fields' rules. Values absent
    /// from both fall back to the field's default and the definition's `defaults`.
    pub fn validate(
        &self,
        config: &Map<String, Value>,
        secrets: &Map<String, Value>,
    ) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for field in &self.definition.fields {
            let given = if field.secret { secrets.get(&field.key) } else { config.get(&field.key) };
            let value = if is_blank(given) {
                field.default.as_ref().or_else(|| self.definition.defaults.get(&field.key))
            } else {
                given
            };
            if let Some(message) = check_field(field, value) {
                errors.push(FieldError {
                    field: field.key.clone(),
                    label: field.label.clone(),
                    message,
                });
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// The problem with one field's value, if any.
fn check_field(field: &Field, value: Option<&Value>) -> Option<String> {
    let label = &field.label;
    if is_blank(value) {
        return field.required.then(|| format!("{label} is required"));
    }
    let value = value?;
    match field.kind {
        FieldKind::Number => {
            let Some(n) = as_number(value) else {
                return Some(format!("{label} must be a number"));
            };
            if let Some(min) = field.min
                && n < min
            {
                return Some(format!("{label} must be at least {min}"));
            }
            if let Some(max) = field.max
                && n > max
            {
                return Some(format!("{label} must be at most {max}"));
            }
        }
        FieldKind::Bool => {
            let ok = matches!(value, Value::Bool(_))
                || matches!(value, Value::String(s) if s == "true" || s == "false");
            if !ok {
                return Some(format!("{label} must be on or off"));
            }
        }
        _ => {
            let Some(text) = as_text(value) else {
                return Some(format!("{label} must be text"));
            };
            let text = text.trim();
            match field.kind {
                FieldKind::Select if !field.options.iter().any(|o| o.value == text) => {
                    let choices: Vec<&str> =
                        field.options.iter().map(|o| o.label.as_str()).collect();
                    return Some(format!("{label} must be one of: {}", choices.join(", ")));
                }
                FieldKind::Url => match reqwest::Url::parse(text) {
                    Ok(url)
                        if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                    }
                    _ => {
                        return Some(format!(
                            "{label} must be a web address starting with http:// or https://, such as https://s3.example.com"
                        ));
                    }
                },
                FieldKind::Path if !text.starts_with('/') => {
                    return Some(format!("{label} must be an absolute path starting with /"));
                }
                _ => {}
            }
            if field.kind != FieldKind::Number {
                let len = text.chars().count() as f64;
                if let Some(min) = field.min
                    && len < min
                {
                    return Some(format!("{label} must have at least {min} characters"));
                }
                if let Some(max) = field.max
                    && len > max
                {
                    return Some(format!("{label} must have at most {max} characters"));
                }
            }
            if let Some(pattern) = &field.pattern {
                let matches = regex::Regex::new(&anchored(pattern))
                    .map(|re| re.is_match(text))
                    .unwrap_or(false);
                if !matches {
                    return Some(match &field.placeholder {
                        Some(example) => {
                            format!("{label} is not in the expected form (for example {example})")
                        }
                        None => format!("{label} is not in the expected form"),
                    });
                }
            }
        }
    }
    None
}

/// The configuration a backend is built from: defaults, then the user's values, with the
/// provider's quirks applied. Its `Debug` output never shows secret values.
#[derive(Clone, Default)]
pub(crate) struct ResolvedConfig {
    /// The provider id.
    pub provider: String,
    /// The backend kind.
    pub backend: String,
    /// Non-secret values.
    pub values: Map<String, Value>,
    /// Secret values.
    pub secrets: Map<String, Value>,
    /// Vendor quirks.
    pub quirks: Quirks,
    /// Capabilities of the provider (for backends that adapt to them).
    #[allow(dead_code)]
    pub capabilities: Capabilities,
}

impl fmt::Debug for ResolvedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret_keys: Vec<&String> = self.secrets.keys().collect();
        f.debug_struct("ResolvedConfig")
            .field("provider", &self.provider)
            .field("backend", &self.backend)
            .field("values", &self.values)
            .field("secrets", &format_args!("{secret_keys:?} (values hidden)"))
            .finish()
    }
}

impl ResolvedConfig {
    /// A non-secret value as trimmed text, `None` when blank.
    pub fn get(&self, key: &str) -> Option<String> {
        text_of(self.values.get(key))
    }

    /// A secret value as text (not trimmed: whitespace may matter in a key file), `None` when blank.
    pub fn secret(&self, key: &str) -> Option<String> {
        match self.secrets.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            other => text_of(other),
        }
    }

    /// A value from either map (non-secret first).
    pub fn any(&self, key: &str) -> Option<String> {
        self.get(key).or_else(|| self.secret(key))
    }

    /// A boolean value (`true`/`false`, or the strings).
    pub fn flag(&self, key: &str) -> Option<bool> {
        match self.values.get(key) {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => match s.trim() {
                "true" | "1" | "yes" | "on" => Some(true),
                "false" | "0" | "no" | "off" => Some(false),
                _ => None,
            },
            Some(Value::Number(n)) => n.as_u64().map(|n| n != 0),
            _ => None,
        }
    }

    /// For tests: a config of `backend` with these values and secrets.
    #[cfg(test)]
    #[allow(dead_code)]
    pub fn for_tests(backend: &str, values: Value, secrets: Value) -> Self {
        ResolvedConfig {
            provider: backend.to_owned(),
            backend: backend.to_owned(),
            values: values.as_object().cloned().unwrap_or_default(),
            secrets: secrets.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        }
    }
}

fn text_of(value: Option<&Value>) -> Option<String> {
    let text = as_text(value?)?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Merge field defaults, the definition's `defaults` and the user's values; substitute `{field}`
/// placeholders in default strings; apply quirks.
pub(crate) fn resolve(
    provider: &Provider,
    config: &Map<String, Value>,
    secrets: &Map<String, Value>,
) -> crate::Result<ResolvedConfig> {
    let d = &provider.definition;
    let secret_keys: HashSet<&str> =
        d.fields.iter().filter(|f| f.secret).map(|f| f.key.as_str()).collect();
    let mut values = Map::new();
    let mut from_default = HashSet::new();
    for field in d.fields.iter().filter(|f| !f.secret) {
        if let Some(default) = &field.default {
            values.insert(field.key.clone(), default.clone());
            from_default.insert(field.key.clone());
        }
    }
    for (key, value) in &d.defaults {
        if !secret_keys.contains(key.as_str()) {
            values.insert(key.clone(), value.clone());
            from_default.insert(key.clone());
        }
    }
    for (key, value) in config {
        if secret_keys.contains(key.as_str()) || is_blank(Some(value)) {
            continue;
        }
        values.insert(key.clone(), value.clone());
        from_default.remove(key);
    }
    if d.quirks.region_auto {
        values.insert("region".to_owned(), Value::String("auto".to_owned()));
    }
    // Substitute {name} in strings that came from defaults, using the merged values.
    let snapshot = values.clone();
    for key in &from_default {
        if let Some(Value::String(s)) = values.get_mut(key)
            && s.contains('{')
        {
            *s = substitute(s, &snapshot, d, key)?;
        }
    }
    let mut secret_values = Map::new();
    for field in d.fields.iter().filter(|f| f.secret) {
        if let Some(value) = secrets.get(&field.key).filter(|v| !is_blank(Some(v))) {
            secret_values.insert(field.key.clone(), value.clone());
        } else if let Some(default) = &field.default {
            secret_values.insert(field.key.clone(), default.clone());
        }
    }
    // Secrets the definition does not list are passed through (custom backends may use them).
    for (key, value) in secrets {
        if !secret_values.contains_key(key) && !is_blank(Some(value)) {
            secret_values.insert(key.clone(), value.clone());
        }
    }
    Ok(ResolvedConfig {
        provider: d.id.clone(),
        backend: d.backend.clone(),
        values,
        secrets: secret_values,
        quirks: d.quirks.clone(),
        capabilities: d.capabilities.clone(),
    })
}

fn substitute(
    text: &str,
    values: &Map<String, Value>,
    d: &ProviderDefinition,
    key: &str,
) -> crate::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let label_of = |k: &str| {
            d.fields
                .iter()
                .find(|f| f.key == k)
                .map(|f| f.label.clone())
                .unwrap_or_else(|| k.to_owned())
        };
        match text_of(values.get(name)) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(crate::Error::InvalidConfig(vec![FieldError {
                    field: name.to_owned(),
                    label: label_of(name),
                    message: format!("{} is needed to build {}", label_of(name), label_of(key)),
                }]));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    pub(crate) fn sample_json(id: &str) -> String {
        json!({
            "id": id, "name": "Sample S3", "category": "object_storage", "icon": "s3", "backend": "s3",
            "description": "A sample.", "docs_url": "https://example.com/docs",
            "capabilities": {"multipart": true, "range": true, "list": true, "presign": true},
            "fields": [
                {"key": "bucket", "label": "Bucket", "kind": "text", "required": true, "pattern": "[a-z0-9.-]{3,63}", "placeholder": "cams"},
                {"key": "region", "label": "Region", "kind": "text", "default": "us-east-1"},
                {"key": "endpoint", "label": "Endpoint", "kind": "url"},
                {"key": "root", "label": "Root", "kind": "path"},
                {"key": "class", "label": "Storage class", "kind": "select", "options": [{"value": "STANDARD", "label": "Standard"}]},
                {"key": "parts", "label": "Parts", "kind": "number", "min": 1, "max": 10},
                {"key": "access_key_id", "label": "Access key ID", "kind": "text", "required": true, "secret": true},
                {"key": "secret_access_key", "label": "Secret access key", "kind": "password", "required": true, "secret": true}
            ],
            "defaults": {"endpoint": "https://s3.{region}.example.com"}
        })
        .to_string()
    }

    fn sample() -> Provider {
        let json = sample_json("sample");
        Provider {
            definition: parse_definition("sample", &json, "<div></div>").unwrap(),
            template_html: "<div></div>".into(),
            source: ProviderSource::Builtin,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn builtins_all_parse() {
        let registry = Registry::builtin();
        assert_eq!(
            registry.len(),
            builtin::BUILTIN.len(),
            "every built-in parses (see the error log)"
        );
        for (id, json, html) in builtin::BUILTIN {
            parse_definition(id, json, html).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }

    #[test]
    fn validate_names_labels() {
        let p = sample();
        let errors = p.validate(&obj(json!({"bucket": "X!", "endpoint": "ftp://x", "root": "rel", "class": "COLD", "parts": 11})), &obj(json!({"access_key_id": "a"}))).unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Bucket is not in the expected form (for example cams)",
                "Endpoint must be a web address starting with http:// or https://, such as https://s3.example.com",
                "Root must be an absolute path starting with /",
                "Storage class must be one of: Standard",
                "Parts must be at most 10",
                "Secret access key is required",
            ]
        );
        assert_eq!(errors[0].field, "bucket");
        assert!(
            p.validate(
                &obj(json!({"bucket": "cams", "parts": "3"})),
                &obj(json!({"access_key_id": "a", "secret_access_key": "b"}))
            )
            .is_ok()
        );
        let missing = p.validate(&Map::new(), &Map::new()).unwrap_err();
        assert_eq!(missing[0].message, "Bucket is required");
    }

    #[test]
    fn resolve_substitutes_defaults_and_hides_secrets() {
        let p = sample();
        let r = resolve(
            &p,
            &obj(json!({"bucket": "cams", "region": "eu-west-3"})),
            &obj(json!({"secret_access_key": "TOPSECRET"})),
        )
        .unwrap();
        assert_eq!(r.get("endpoint").as_deref(), Some("https://s3.eu-west-3.example.com"));
        assert_eq!(r.get("region").as_deref(), Some("eu-west-3"));
        assert_eq!(r.secret("secret_access_key").as_deref(), Some("TOPSECRET"));
        assert!(!format!("{r:?}").contains("TOPSECRET"));
        // A user endpoint wins over the preset.
        let r =
            resolve(&p, &obj(json!({"endpoint": "http://127.0.0.1:9000"})), &Map::new()).unwrap();
        assert_eq!(r.get("endpoint").as_deref(), Some("http://127.0.0.1:9000"));
        // Region auto quirk.
        let mut p2 = sample();
        p2.definition.quirks.region_auto = true;
        let r = resolve(&p2, &obj(json!({"region": "us-east-1"})), &Map::new()).unwrap();
        assert_eq!(r.get("region").as_deref(), Some("auto"));
    }

    #[test]
    fn json_errors_are_reworded() {
        let bad = r#"{
  "id": "x",
  "name": "X"
}"#;
        let err = parse_definition("x", bad, "<p></p>").unwrap_err();
        assert!(
            err.starts_with("definition.json is not valid: line 4 column 1: missing the \""),
            "{err}"
        );
        let bad = sample_json("x").replace("\"object_storage\"", "\"bucketz\"");
        let err = parse_definition("x", &bad, "<p></p>").unwrap_err();
        assert!(
            err.contains("\"bucketz\" is not allowed here; use one of: \"object_storage\""),
            "{err}"
        );
        let err = parse_definition("x", "{\"id\": ", "<p></p>").unwrap_err();
        assert!(err.contains("the file ends too early"), "{err}");
    }

    #[test]
    fn load_skips_bad_folders_with_notices() {
        let dir = tempfile::tempdir().unwrap();
        let write = |folder: &str, json: &str, html: Option<&str>| {
            let d = dir.path().join(folder);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("definition.json"), json).unwrap();
            if let Some(html) = html {
                std::fs::write(d.join("template.html"), html).unwrap();
            }
        };
        write("good-vendor", &sample_json("good-vendor"), Some("<div>form</div>"));
        write("broken", "{\n  \"id\": \"broken\",\n  \"name\": 5\n}", Some("<p></p>"));
        write("nohtml", &sample_json("nohtml"), None);
        write(
            "wrongbackend",
            &sample_json("wrongbackend").replace("\"backend\":\"s3\"", "\"backend\":\"tape\""),
            Some("<p></p>"),
        );
        write("mismatch", &sample_json("other"), Some("<p></p>"));
        write("big", &" ".repeat(300 * 1024), Some("<p></p>"));
        let (registry, notices) = Registry::load(Some(dir.path()));
        assert!(registry.get("good-vendor").is_some());
        assert!(matches!(registry.get("good-vendor").unwrap().source, ProviderSource::Dropped(_)));
        let by_folder: BTreeMap<&str, &str> =
            notices.iter().map(|n| (n.folder.as_str(), n.message.as_str())).collect();
        assert_eq!(by_folder.len(), 5, "{by_folder:?}");
        assert_eq!(
            by_folder["broken"],
            "definition.json is not valid: line 3 column 11: found integer `5` where a string was expected"
        );
        assert_eq!(by_folder["nohtml"], "template.html is missing");
        assert!(by_folder["wrongbackend"].contains("the backend \"tape\" is unknown"));
        assert!(by_folder["mismatch"].contains("must be the same as the folder name"));
        assert_eq!(by_folder["big"], "definition.json is larger than 256 KiB");
        // A missing folder is no error.
        let (_, notices) = Registry::load(Some(&dir.path().join("absent")));
        assert!(notices.is_empty());
    }

    #[test]
    fn dropped_folder_cannot_replace_builtin() {
        let id = "sample";
        let mut base = Registry::default();
        base.insert(sample());
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join(id);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("definition.json"), sample_json(id)).unwrap();
        std::fs::write(d.join("template.html"), "<p></p>").unwrap();
        let (registry, notices) = base.load_dropped(Some(dir.path()));
        assert_eq!(registry.get(id).unwrap().source, ProviderSource::Builtin);
        assert!(notices[0].message.contains("belongs to a built-in provider"), "{notices:?}");
    }
}
