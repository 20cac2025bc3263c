//! The built-in providers, embedded in the binary.
//!
//! Each entry is `(id, definition.json, template.html)`, read at compile time from
//! `pv-storage/modules/<id>/`. Add a provider by creating its folder and appending
//! `builtin!("<id>")` to [`BUILTIN`]; `Registry::builtin` parses them in order and the tests check
//! that every entry parses and validates.

/// `(id, definition_json, template_html)` of one folder under `pv-storage/modules/`.
#[allow(unused_macros)]
macro_rules! builtin {
    ($id:literal) => {
        (
            $id,
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/modules/", $id, "/definition.json")),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/modules/", $id, "/template.html")),
        )
    };
}

/// Every built-in provider: `(id, definition_json, template_html)`.
pub(crate) const BUILTIN: &[(&str, &str, &str)] = &[
    // Object storage.
    builtin!("aws-s3"),
    builtin!("gcs"),
    builtin!("azure-blob"),
    builtin!("ibm-cos"),
    builtin!("oracle-object-storage"),
    builtin!("rackspace-cloud-files"),
    builtin!("openstack-swift"),
    builtin!("ovhcloud"),
    builtin!("scaleway"),
    builtin!("linode"),
    builtin!("digitalocean-spaces"),
    builtin!("wasabi"),
    builtin!("backblaze-b2"),
    builtin!("backblaze-b2-s3"),
    builtin!("cloudflare-r2"),
    builtin!("s3-compatible"),
    // Cloud drives.
    builtin!("dropbox"),
    builtin!("onedrive"),
    builtin!("google-drive"),
    builtin!("box"),
    builtin!("pcloud"),
    builtin!("mega"),
    builtin!("nextcloud"),
    // Network protocols.
    builtin!("webdav"),
    builtin!("ftp"),
    builtin!("ftps"),
    builtin!("sftp"),
    builtin!("scp"),
    builtin!("smb"),
    builtin!("nfs"),
    // Local and on-premises.
    builtin!("local-path"),
    builtin!("local-drive"),
    builtin!("mounted-volume"),
    builtin!("container-volume"),
];
