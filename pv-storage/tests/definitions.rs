//! The built-in provider folders (`pv-storage/modules/<id>/`): every one is embedded and parses,
//! its fields are documented with links to the vendor's official documentation, its form snippet
//! matches its fields, and the vendor presets (endpoints, regions, quirks) are the documented ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use pv_storage::definition::{Category, FieldKind, Provider, ProviderDefinition, Registry};
use regex::Regex;
use serde_json::{Map, Value, json};

/// Every built-in provider and its group, as the product specification lists them.
const EXPECTED: &[(&str, &str)] = &[
    ("aws-s3", "object_storage"),
    ("gcs", "object_storage"),
    ("azure-blob", "object_storage"),
    ("ibm-cos", "object_storage"),
    ("oracle-object-storage", "object_storage"),
    ("rackspace-cloud-files", "object_storage"),
    ("openstack-swift", "object_storage"),
    ("ovhcloud", "object_storage"),
    ("scaleway", "object_storage"),
    ("linode", "object_storage"),
    ("digitalocean-spaces", "object_storage"),
    ("wasabi", "object_storage"),
    ("backblaze-b2", "object_storage"),
    ("backblaze-b2-s3", "object_storage"),
    ("cloudflare-r2", "object_storage"),
    ("s3-compatible", "object_storage"),
    ("dropbox", "cloud_drive"),
    ("onedrive", "cloud_drive"),
    ("google-drive", "cloud_drive"),
    ("box", "cloud_drive"),
    ("pcloud", "cloud_drive"),
    ("mega", "cloud_drive"),
    ("nextcloud", "cloud_drive"),
    ("webdav", "network"),
    ("ftp", "network"),
    ("ftps", "network"),
    ("sftp", "network"),
    ("scp", "network"),
    ("smb", "network"),
    ("nfs", "network"),
    ("local-path", "local"),
    ("local-drive", "local"),
    ("mounted-volume", "local"),
    ("container-volume", "local"),
];

/// The backend kinds of the storage contract.
const BACKENDS: &[&str] = &[
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

/// Hosts of the vendors' (and standards bodies') official documentation. A "where to find this"
/// link anywhere else fails the test.
const OFFICIAL_DOCS_HOSTS: &[&str] = &[
    "docs.aws.amazon.com",
    "cloud.google.com",
    "learn.microsoft.com",
    "cloud.ibm.com",
    "docs.oracle.com",
    "docs.rackspace.com",
    "docs.openstack.org",
    "help.ovhcloud.com",
    "www.scaleway.com",
    "techdocs.akamai.com",
    "docs.digitalocean.com",
    "docs.wasabi.com",
    "www.backblaze.com",
    "developers.cloudflare.com",
    "min.io",
    "docs.ceph.com",
    "www.dropbox.com",
    "developers.dropbox.com",
    "developers.google.com",
    "developer.box.com",
    "docs.pcloud.com",
    "mega.io",
    "help.mega.io",
    "docs.nextcloud.com",
    "www.rfc-editor.org",
    "man.openbsd.org",
    "www.samba.org",
    "man7.org",
    "refspecs.linuxfoundation.org",
    "docs.docker.com",
];

const ICONS: &[&str] = &[
    "s3",
    "gcs",
    "azure",
    "swift",
    "b2",
    "dropbox",
    "onedrive",
    "gdrive",
    "box",
    "pcloud",
    "mega",
    "webdav",
    "nextcloud",
    "ftp",
    "sftp",
    "smb",
    "nfs",
    "folder",
    "drive",
    "cloud",
    "server",
    "r2",
    "wasabi",
    "do",
    "linode",
    "scaleway",
    "ovh",
    "ibm",
    "oracle",
    "container",
];

fn modules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("modules")
}

/// Every folder of `modules/`, read from disk: id → (definition.json, template.html).
fn folders() -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(modules_dir()).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let id = path.file_name().unwrap().to_string_lossy().into_owned();
        let json = std::fs::read_to_string(path.join("definition.json"))
            .unwrap_or_else(|e| panic!("{id}/definition.json: {e}"));
        let html = std::fs::read_to_string(path.join("template.html"))
            .unwrap_or_else(|e| panic!("{id}/template.html: {e}"));
        out.insert(id, (json, html));
    }
    out
}

fn definitions() -> Vec<ProviderDefinition> {
    folders()
        .iter()
        .map(|(id, (json, _))| {
            serde_json::from_str::<ProviderDefinition>(json)
                .unwrap_or_else(|e| panic!("{id}/definition.json does not parse: {e}"))
        })
        .collect()
}

fn category_name(c: Category) -> &'static str {
    match c {
        Category::ObjectStorage => "object_storage",
        Category::CloudDrive => "cloud_drive",
        Category::Network => "network",
        Category::Local => "local",
    }
}

#[test]
fn every_folder_is_embedded_parses_and_is_in_its_group() {
    let registry = Registry::builtin();
    let on_disk: BTreeSet<String> = folders().into_keys().collect();
    let expected: BTreeSet<String> = EXPECTED.iter().map(|(id, _)| (*id).to_owned()).collect();
    assert_eq!(on_disk, expected, "the folders of modules/ are not the expected providers");
    // Registry::builtin only logs a definition it cannot parse: a missing id here is one that
    // failed to parse or is not listed in definition/builtin.rs.
    let loaded: BTreeSet<String> = registry.providers().map(|p| p.definition.id.clone()).collect();
    assert_eq!(loaded, expected, "Registry::builtin() does not hold every folder");

    for (id, category) in EXPECTED {
        let provider = registry.get(id).unwrap();
        assert_eq!(category_name(provider.definition.category), *category, "{id}");
        assert!(BACKENDS.contains(&provider.definition.backend.as_str()), "{id}: backend");
        assert!(ICONS.contains(&provider.definition.icon.as_str()), "{id}: icon");
        assert!(!provider.definition.description.trim().is_empty(), "{id}: description");
        assert!(!provider.definition.fields.is_empty(), "{id}: no fields");
    }

    // Grouped order: categories never interleave.
    let order: Vec<Category> = registry.providers().map(|p| p.definition.category).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
}

#[test]
fn ids_and_field_keys_are_unique() {
    let mut ids = BTreeSet::new();
    for (folder, (json, _)) in folders() {
        let d: ProviderDefinition = serde_json::from_str(&json).unwrap();
        assert_eq!(d.id, folder, "the id must be the folder name");
        assert!(ids.insert(d.id.clone()), "id {} used twice", d.id);
        let mut keys = BTreeSet::new();
        for f in &d.fields {
            assert!(keys.insert(f.key.clone()), "{}: field {} twice", d.id, f.key);
        }
    }
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

#[test]
fn every_field_has_help_and_an_official_https_docs_link() {
    for d in definitions() {
        let host = host_of(&d.docs_url).unwrap_or_else(|| panic!("{}: docs_url not https", d.id));
        assert!(OFFICIAL_DOCS_HOSTS.contains(&host), "{}: docs_url on {host}", d.id);
        for f in &d.fields {
            let what = format!("{}.{}", d.id, f.key);
            assert!(f.help.trim().len() >= 20, "{what}: help text too short");
            assert!(!f.label.trim().is_empty(), "{what}: no label");
            let url = f.docs_url.as_deref().unwrap_or_else(|| panic!("{what}: no docs_url"));
            let host =
                host_of(url).unwrap_or_else(|| panic!("{what}: docs_url {url} is not https"));
            assert!(
                OFFICIAL_DOCS_HOSTS.contains(&host),
                "{what}: docs_url {url} is not on a vendor's official documentation site"
            );
        }
    }
}

#[test]
fn secrets_are_masked_inputs_and_other_fields_are_not() {
    let secret_words = Regex::new(r"^(password|secret_access_key|client_secret|api_key|application_key|refresh_token|access_token|token|key|private_key|credential|account_key|sas_token)$").unwrap();
    for d in definitions() {
        for f in &d.fields {
            let what = format!("{}.{}", d.id, f.key);
            if f.secret {
                assert!(
                    matches!(f.kind, FieldKind::Password | FieldKind::Textarea),
                    "{what}: a secret must be a password or textarea field"
                );
                assert!(f.default.is_none(), "{what}: a secret cannot have a default");
            } else {
                assert_ne!(f.kind, FieldKind::Password, "{what}: password kind but not secret");
            }
            if secret_words.is_match(&f.key) {
                assert!(f.secret, "{what}: looks like a secret but is not marked secret");
            }
        }
    }
}

#[test]
fn patterns_compile_and_examples_pass_validation() {
    let registry = Registry::builtin();
    for d in definitions() {
        let provider: &Provider = registry.get(&d.id).unwrap();
        let mut config = Map::new();
        let mut secrets = Map::new();
        for f in &d.fields {
            let what = format!("{}.{}", d.id, f.key);
            if let Some(pattern) = &f.pattern {
                let re = Regex::new(&format!("^(?:{pattern})$"))
                    .unwrap_or_else(|e| panic!("{what}: pattern does not compile: {e}"));
                if let Some(example) = f.placeholder.as_deref().filter(|p| !p.contains('…')) {
                    assert!(
                        re.is_match(example),
                        "{what}: placeholder {example:?} fails the pattern"
                    );
                }
                if let Some(Value::String(default)) = &f.default {
                    assert!(re.is_match(default), "{what}: default {default:?} fails the pattern");
                }
            }
            if f.kind == FieldKind::Select {
                let values: Vec<&str> = f.options.iter().map(|o| o.value.as_str()).collect();
                if let Some(default) = &f.default {
                    assert!(
                        values.contains(&default.as_str().unwrap()),
                        "{what}: default not an option"
                    );
                }
            }
            if !f.required {
                continue;
            }
            // Fill each required field with the example people see.
            let value = if f.secret {
                json!("an-example-secret")
            } else if let Some(default) = &f.default {
                default.clone()
            } else if let Some(example) = &f.placeholder {
                json!(example)
            } else if f.kind == FieldKind::Select {
                json!(f.options[0].value)
            } else {
                panic!("{what}: a required field needs a placeholder or a default as an example");
            };
            if f.secret {
                secrets.insert(f.key.clone(), value);
            } else {
                config.insert(f.key.clone(), value);
            }
        }
        if let Err(errors) = provider.validate(&config, &secrets) {
            panic!("{}: the shown examples do not validate: {errors:?}", d.id);
        }
        // And an empty form names every required field.
        let required = d.fields.iter().filter(|f| f.required && f.default.is_none()).count();
        if required > 0 {
            let errors = provider.validate(&Map::new(), &Map::new()).unwrap_err();
            assert_eq!(errors.len(), required, "{}: {errors:?}", d.id);
        }
    }
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn templates_name_every_field_and_nothing_else() {
    let input_re = Regex::new(r"<(input|select|textarea)\b([^>]*)>").unwrap();
    let attr_re = Regex::new(r#"([a-z\-]+)(?:="([^"]*)")?"#).unwrap();
    let data_field_re = Regex::new(r#"data-field="([^"]*)""#).unwrap();
    let name_re = Regex::new(r#"name="([^"]*)""#).unwrap();
    let link_re = Regex::new(r"<a\b([^>]*)>").unwrap();
    let on_handler = Regex::new(r"(?i)\son[a-z]+\s*=").unwrap();
    for (id, (json, html)) in folders() {
        let d: ProviderDefinition = serde_json::from_str(&json).unwrap();
        // CSP: no inline scripts, styles or handlers.
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "{id}: inline script");
        assert!(!lower.contains("<style") && !lower.contains("style="), "{id}: inline style");
        assert!(!on_handler.is_match(&html), "{id}: inline event handler");
        assert!(lower.trim_start().starts_with("<fieldset"), "{id}: not a fieldset");

        let keys: BTreeSet<&str> = d.fields.iter().map(|f| f.key.as_str()).collect();
        let mentioned: BTreeSet<&str> =
            data_field_re.captures_iter(&html).map(|c| c.get(1).unwrap().as_str()).collect();
        assert_eq!(mentioned, keys, "{id}: data-field attributes differ from the fields");
        for name in name_re.captures_iter(&html).map(|c| c.get(1).unwrap().as_str()) {
            let key = name
                .strip_prefix("config.")
                .or_else(|| name.strip_prefix("secrets."))
                .unwrap_or_else(|| panic!("{id}: name {name:?} is not config.* or secrets.*"));
            assert!(keys.contains(key), "{id}: template names unknown field {key:?}");
        }

        let mut inputs = BTreeMap::new();
        for cap in input_re.captures_iter(&html) {
            let tag = cap.get(1).unwrap().as_str().to_owned();
            let attrs: BTreeMap<String, String> = attr_re
                .captures_iter(cap.get(2).unwrap().as_str())
                .map(|a| {
                    let v = a.get(2).map(|v| html_unescape(v.as_str())).unwrap_or_default();
                    (a.get(1).unwrap().as_str().to_owned(), v)
                })
                .collect();
            let key = attrs.get("data-field").cloned().unwrap_or_default();
            assert!(
                inputs.insert(key.clone(), (tag, attrs)).is_none(),
                "{id}: {key} has two inputs"
            );
        }
        for f in &d.fields {
            let what = format!("{id}.{}", f.key);
            let (tag, attrs) = inputs.get(&f.key).unwrap_or_else(|| panic!("{what}: no input"));
            let prefix = if f.secret { "secrets." } else { "config." };
            assert_eq!(
                attrs.get("name").map(String::as_str),
                Some(format!("{prefix}{}", f.key).as_str()),
                "{what}"
            );
            assert_eq!(attrs.contains_key("required"), f.required, "{what}: required attribute");
            assert_eq!(attrs.get("pattern"), f.pattern.as_ref(), "{what}: pattern attribute");
            let input_id = attrs.get("id").unwrap_or_else(|| panic!("{what}: no id"));
            assert!(html.contains(&format!("<label for=\"{input_id}\"")), "{what}: no label");
            let help_id =
                attrs.get("aria-describedby").unwrap_or_else(|| panic!("{what}: no help"));
            assert!(
                html.contains(&format!("class=\"field-help\" id=\"{help_id}\"")),
                "{what}: no help text"
            );
            match f.kind {
                FieldKind::Select => {
                    assert_eq!(tag, "select", "{what}");
                    for o in &f.options {
                        assert!(
                            html.contains(&format!("<option value=\"{}\"", o.value)),
                            "{what}: option {}",
                            o.value
                        );
                    }
                }
                FieldKind::Textarea => assert_eq!(tag, "textarea", "{what}"),
                FieldKind::Password => {
                    assert_eq!(attrs.get("type").map(String::as_str), Some("password"), "{what}");
                }
                FieldKind::Bool => {
                    assert_eq!(attrs.get("type").map(String::as_str), Some("checkbox"), "{what}")
                }
                FieldKind::Number => {
                    assert_eq!(attrs.get("type").map(String::as_str), Some("number"), "{what}")
                }
                FieldKind::Url => {
                    assert_eq!(attrs.get("type").map(String::as_str), Some("url"), "{what}")
                }
                FieldKind::Text | FieldKind::Path => {
                    assert_eq!(attrs.get("type").map(String::as_str), Some("text"), "{what}");
                }
            }
            if f.secret {
                assert_eq!(attrs.get("autocomplete").map(String::as_str), Some("off"), "{what}");
                assert!(!attrs.contains_key("value"), "{what}: a secret input carries a value");
            }
            // Every field's help ends with its "where to find this" link.
            let docs = f.docs_url.as_deref().unwrap();
            assert!(
                html.contains(&format!("href=\"{}\"", docs.replace('&', "&amp;"))),
                "{what}: docs link"
            );
        }
        // Advanced fields are marked for the UI to fold away.
        let advanced = d.fields.iter().filter(|f| f.advanced).count();
        assert_eq!(html.matches("class=\"field field-advanced\"").count(), advanced, "{id}");
        for link in link_re.captures_iter(&html) {
            let attrs = link.get(1).unwrap().as_str();
            assert!(
                attrs.contains("rel=\"noopener\"") && attrs.contains("target=\"_blank\""),
                "{id}: link {attrs}"
            );
        }
    }
}

fn def(registry: &Registry, id: &str) -> ProviderDefinition {
    registry.get(id).unwrap().definition.clone()
}

fn default_str(d: &ProviderDefinition, key: &str) -> String {
    d.defaults.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

#[test]
fn vendor_presets_are_the_documented_endpoints_and_quirks() {
    let r = Registry::builtin();
    let endpoints = [
        ("wasabi", "https://s3.{region}.wasabisys.com"),
        ("backblaze-b2-s3", "https://s3.{region}.backblazeb2.com"),
        ("digitalocean-spaces", "https://{region}.digitaloceanspaces.com"),
        ("linode", "https://{region}.linodeobjects.com"),
        ("scaleway", "https://s3.{region}.scw.cloud"),
        ("ovhcloud", "https://s3.{region}.io.cloud.ovh.net"),
        ("ibm-cos", "https://s3.{region}.cloud-object-storage.appdomain.cloud"),
        (
            "oracle-object-storage",
            "https://{namespace}.compat.objectstorage.{region}.oraclecloud.com",
        ),
        ("cloudflare-r2", "https://{account_id}.r2.cloudflarestorage.com"),
        ("nextcloud", "{server}/remote.php/dav/files/{username}/"),
    ];
    let placeholder = Regex::new(r"\{([a-z_]+)\}").unwrap();
    for (id, endpoint) in endpoints {
        let d = def(&r, id);
        assert_eq!(default_str(&d, "endpoint"), endpoint, "{id}");
        // Every placeholder of the preset is a field of the provider.
        for cap in placeholder.captures_iter(endpoint) {
            let key = cap.get(1).unwrap().as_str();
            assert!(d.fields.iter().any(|f| f.key == key), "{id}: {{{key}}} is not a field");
        }
    }
    assert_eq!(def(&r, "scaleway").quirks.max_parts, Some(1000));
    assert_eq!(def(&r, "scaleway").capabilities.max_parts, Some(1000));
    assert!(def(&r, "ibm-cos").quirks.list_objects_v1);
    let r2 = def(&r, "cloudflare-r2");
    assert_eq!(default_str(&r2, "region"), "auto");
    assert!(r2.quirks.region_auto && r2.quirks.equal_parts && r2.capabilities.equal_parts);
    assert_eq!(r2.quirks.delete_batch, Some(700));
    assert!(!r2.fields.iter().any(|f| f.key == "region"), "R2's region is always auto");
    assert_eq!(
        default_str(&def(&r, "rackspace-cloud-files"), "identity_url"),
        "https://identity.api.rackspacecloud.com/v2.0/"
    );
    assert!(
        def(&r, "oracle-object-storage").fields.iter().any(|f| f.key == "namespace" && f.required)
    );
    // Region lists where the vendor has a short one.
    for id in [
        "wasabi",
        "scaleway",
        "digitalocean-spaces",
        "ibm-cos",
        "ovhcloud",
        "rackspace-cloud-files",
    ] {
        let d = def(&r, id);
        let region = d.fields.iter().find(|f| f.key == "region").unwrap();
        assert_eq!(region.kind, FieldKind::Select, "{id}");
    }
    // FTP: explicit TLS on the ftp provider, implicit TLS is its own provider and backend.
    let ftp = def(&r, "ftp");
    assert_eq!(ftp.backend, "ftp");
    let enc = ftp.fields.iter().find(|f| f.key == "encryption").unwrap();
    let values: Vec<&str> = enc.options.iter().map(|o| o.value.as_str()).collect();
    assert_eq!(values, ["explicit", "none"]);
    assert_eq!(def(&r, "ftps").backend, "ftps_implicit");
    // NFS is a mounted path whose help says how to mount it.
    let nfs = def(&r, "nfs");
    assert_eq!(nfs.backend, "fs");
    assert!(nfs.fields[0].help.contains("mount -t nfs4 nas:/export /mnt/nas"));
    for id in ["local-path", "local-drive", "mounted-volume", "container-volume"] {
        assert_eq!(def(&r, id).backend, "fs", "{id}");
    }
}

#[test]
fn oauth_providers_carry_their_flow_and_token_fields() {
    let r = Registry::builtin();
    for (id, authorize_host) in [
        ("dropbox", "www.dropbox.com"),
        ("onedrive", "login.microsoftonline.com"),
        ("google-drive", "accounts.google.com"),
        ("box", "account.box.com"),
    ] {
        let d = def(&r, id);
        let oauth = d.oauth.as_ref().unwrap_or_else(|| panic!("{id}: no oauth"));
        assert_eq!(host_of(&oauth.authorize_url), Some(authorize_host), "{id}");
        assert!(host_of(&oauth.token_url).is_some(), "{id}: token_url not https");
        assert!(!oauth.scopes.is_empty(), "{id}: no scopes");
        assert_eq!(oauth.client_id_field, "client_id");
        assert_eq!(oauth.client_secret_field, "client_secret");
        let field = |key: &str| {
            d.fields.iter().find(|f| f.key == key).unwrap_or_else(|| panic!("{id}: no {key}"))
        };
        assert!(!field("client_id").secret);
        assert!(field("client_secret").secret);
        assert!(field("refresh_token").secret);
        assert!(field("refresh_token").help.contains("Connect"));
        assert!(!field("root").secret);
    }
    for d in definitions() {
        if !["dropbox", "onedrive", "google-drive", "box"].contains(&d.id.as_str()) {
            assert!(d.oauth.is_none(), "{}: unexpected oauth", d.id);
        }
    }
}
