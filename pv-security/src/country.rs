//! Country policy: refuse or admit clients by the country of their address, looked up in a
//! MaxMind-format database (`.mmdb`) the administrator points to.
//!
//! - [`CountryCode`]: a validated, assigned ISO 3166-1 alpha-2 code (the list is embedded).
//! - [`CountryPolicy`]: the mode (`off`, `allow` only the listed countries, `deny` the listed
//!   countries), the countries and the database path; one row in the users database
//!   (`country_policies`), read by [`load_policy`] and written by [`save_policy`].
//! - [`GeoDb`]: an opened database; [`GeoDb::lookup`] understands both record shapes in use:
//!   GeoIP2/GeoLite2 (`country.iso_code`, else `registered_country.iso_code`) and the flat
//!   ip-location-db shape (`country_code`).
//! - [`decide`]: the pure decision for one address; [`decide_with_rules`] puts the exemption
//!   list first.
//!
//! Never country-blocked: exempt addresses (the exemption list wins over country blocks),
//! private, loopback and link-local addresses, and addresses the database does not know.
//!
//! Dependency: `maxminddb` (the reader maintained with MaxMind's own format tests; ISC).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use maxminddb::PathElement;
use pv_core::db::users::country_policy;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set};

use crate::access::{Decision, RuleSet};
use crate::{Error, Result};

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

/// The officially assigned ISO 3166-1 alpha-2 codes (249, sorted), plus `XK` (Kosovo): a
/// user-assigned code that MaxMind and DB-IP databases return, so it must be listable.
const ASSIGNED: [&str; 250] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// An assigned ISO 3166-1 alpha-2 country code, upper case (`DE`, `GB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parse a code: exactly two ASCII letters (either case) naming an assigned country.
    pub fn parse(text: &str) -> Result<Self> {
        let &[a, b] = text.as_bytes() else {
            return Err(Error::InvalidInput(format!(
                "{} is not a country code: use the two-letter ISO 3166-1 alpha-2 code, e.g. DE",
                pv_core::input::quote(text)
            )));
        };
        if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() {
            return Err(Error::InvalidInput(format!(
                "{} is not a country code: use the two-letter ISO 3166-1 alpha-2 code, e.g. DE",
                pv_core::input::quote(text)
            )));
        }
        let code = CountryCode([a.to_ascii_uppercase(), b.to_ascii_uppercase()]);
        if ASSIGNED.binary_search(&code.as_str()).is_err() {
            return Err(Error::InvalidInput(format!(
                "'{}' is not an assigned ISO 3166-1 alpha-2 country code",
                code.as_str()
            )));
        }
        Ok(code)
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl serde::Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Parse a comma-separated list such as `DE,fr, BE` into sorted, de-duplicated codes. Every
/// entry must be valid; an empty text gives an empty list.
pub fn parse_countries(text: &str) -> Result<Vec<CountryCode>> {
    let mut codes = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(CountryCode::parse)
        .collect::<Result<Vec<_>>>()?;
    codes.sort();
    codes.dedup();
    Ok(codes)
}

/// What the policy does with the listed countries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyMode {
    /// No country filtering.
    #[default]
    Off,
    /// Only the listed countries may connect.
    Allow,
    /// The listed countries are refused.
    Deny,
}

impl PolicyMode {
    /// The stored value (`off`, `allow`, `deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Off => "off",
            PolicyMode::Allow => "allow",
            PolicyMode::Deny => "deny",
        }
    }
}

impl fmt::Display for PolicyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PolicyMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(PolicyMode::Off),
            "allow" => Ok(PolicyMode::Allow),
            "deny" => Ok(PolicyMode::Deny),
            other => Err(Error::InvalidInput(format!(
                "{} is not a country policy mode: use off, allow or deny",
                pv_core::input::quote(other)
            ))),
        }
    }
}

/// The country policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CountryPolicy {
    /// Off, allow-list or deny-list.
    pub mode: PolicyMode,
    /// The listed countries (sorted, no duplicates once saved).
    pub countries: Vec<CountryCode>,
    /// The MaxMind-format database (absolute path); required unless the mode is off.
    pub mmdb_path: Option<PathBuf>,
}

impl CountryPolicy {
    /// The policy stored in `row`. A stored value this version cannot read is an error naming
    /// it (never silently a weaker policy).
    pub fn from_row(row: &country_policy::Model) -> Result<Self> {
        let mode = row.mode.parse()?;
        let countries: Vec<CountryCode> = serde_json::from_value(row.countries.clone())
            .map_err(|e| Error::InvalidInput(format!("stored country list: {e}")))?;
        Ok(Self { mode, countries, mmdb_path: row.mmdb_path.as_ref().map(PathBuf::from) })
    }
}

/// The policy in force: the newest `country_policies` row, or off when there is none.
pub async fn load_policy(db: &DatabaseConnection) -> Result<CountryPolicy> {
    let row =
        country_policy::Entity::find().order_by_desc(country_policy::Column::Id).one(db).await?;
    match row {
        Some(row) => CountryPolicy::from_row(&row),
        None => Ok(CountryPolicy::default()),
    }
}

/// Validate and store `policy` (the newest row is updated, or the first one inserted).
/// Unless the mode is off, the database path must be absolute and open as a MaxMind DB; an
/// allow-list must name at least one country. Nothing is written when validation fails.
/// Returns the stored row.
pub async fn save_policy(
    db: &DatabaseConnection,
    policy: &CountryPolicy,
    by_user: Option<i64>,
    now: DateTime<Utc>,
) -> Result<country_policy::Model> {
    let mut countries = policy.countries.clone();
    countries.sort();
    countries.dedup();
    if policy.mode == PolicyMode::Allow && countries.is_empty() {
        return Err(Error::InvalidInput(
            "an allow-list needs at least one country (or every client would be refused)".into(),
        ));
    }
    let mmdb_path = match &policy.mmdb_path {
        Some(path) => Some(
            path.to_str()
                .ok_or_else(|| {
                    Error::InvalidInput(format!("{} is not a UTF-8 path", path.display()))
                })?
                .to_string(),
        ),
        None => None,
    };
    if policy.mode != PolicyMode::Off {
        let Some(path) = &policy.mmdb_path else {
            return Err(Error::InvalidInput(format!(
                "mode {} needs the path of a MaxMind-format country database (.mmdb)",
                policy.mode
            )));
        };
        if !path.is_absolute() {
            return Err(Error::InvalidInput(format!(
                "the country database path {} must be absolute",
                path.display()
            )));
        }
        let owned = path.clone();
        let bytes = tokio::task::spawn_blocking(move || read_database(&owned))
            .await
            .map_err(|e| Error::InvalidInput(format!("cannot read the country database: {e}")))??;
        GeoDb::from_bytes(bytes, path)?;
    }
    let countries_json = serde_json::to_value(&countries)
        .map_err(|e| Error::InvalidInput(format!("country list: {e}")))?;
    let existing =
        country_policy::Entity::find().order_by_desc(country_policy::Column::Id).one(db).await?;
    let saved = match existing {
        Some(row) => {
            let mut active: country_policy::ActiveModel = row.into();
            active.mode = Set(policy.mode.as_str().into());
            active.countries = Set(countries_json);
            active.mmdb_path = Set(mmdb_path);
            active.updated_at = Set(now);
            active.updated_by = Set(by_user);
            active.update(db).await?
        }
        None => {
            country_policy::ActiveModel {
                mode: Set(policy.mode.as_str().into()),
                countries: Set(countries_json),
                mmdb_path: Set(mmdb_path),
                updated_at: Set(now),
                updated_by: Set(by_user),
                ..Default::default()
            }
            .insert(db)
            .await?
        }
    };
    tracing::info!(mode = %saved.mode, countries = %saved.countries, "country policy saved");
    Ok(saved)
}

/// The largest country database read: 256 MiB. The full GeoLite2-City database is about
/// 70 MiB and country databases a few MiB, so a larger file is not a country database.
pub const MAX_MMDB_BYTES: u64 = 256 * 1024 * 1024;

/// Read the country database at `path`: only a regular file (not `/dev/zero`, a FIFO or a
/// directory — checked on the opened handle, which is opened without blocking) of at most
/// [`MAX_MMDB_BYTES`]. Blocking: call it from a blocking task in async code.
pub fn read_database(path: &Path) -> Result<Vec<u8>> {
    pv_core::files::read_regular_file(path, MAX_MMDB_BYTES, "the country database")
        .map_err(|e| Error::InvalidInput(e.to_string()))
}

/// An opened MaxMind-format database (held in memory).
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb").field("database_type", &self.database_type()).finish()
    }
}

impl GeoDb {
    /// Read (with [`read_database`]: a regular file of at most [`MAX_MMDB_BYTES`]) and open
    /// the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::from_bytes(read_database(path)?, path)
    }

    /// Open a database already read into memory from `origin` (named in errors).
    pub fn from_bytes(bytes: Vec<u8>, origin: &Path) -> Result<Self> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| {
            Error::InvalidInput(format!(
                "{} is not a MaxMind DB (.mmdb) file: {e}",
                origin.display()
            ))
        })?;
        Ok(Self { reader })
    }

    /// The database's own type name (`GeoLite2-Country`, `dbip-country`, …).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// When the database was built.
    pub fn built_at(&self) -> Option<DateTime<Utc>> {
        i64::try_from(self.reader.metadata().build_epoch)
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
    }

    /// The country of `ip`: `country.iso_code`, else `registered_country.iso_code` (GeoIP2),
    /// else `country_code` (flat). None when the address is not in the database, the record
    /// has no valid code, or the record cannot be decoded. IPv4-mapped IPv6 addresses are
    /// looked up as IPv4.
    pub fn lookup(&self, ip: IpAddr) -> Option<CountryCode> {
        let found = match self.reader.lookup(ip.to_canonical()) {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(%ip, error = %e, "country lookup failed");
                return None;
            }
        };
        if !found.has_data() {
            return None;
        }
        const PATHS: [&[PathElement<'static>]; 3] = [
            &[PathElement::Key("country"), PathElement::Key("iso_code")],
            &[PathElement::Key("registered_country"), PathElement::Key("iso_code")],
            &[PathElement::Key("country_code")],
        ];
        PATHS.iter().find_map(|path| {
            let text: String = found.decode_path(path).ok().flatten()?;
            CountryCode::parse(&text).ok()
        })
    }
}

/// What the country policy says about one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountryDecision {
    /// The policy admits the client (or is off, or the client is exempt).
    Allowed,
    /// The policy refuses the client's country.
    Blocked(CountryCode),
    /// No country: a private/loopback/link-local address, one the database does not know, or
    /// no database. Never blocked.
    Unknown,
}

/// Whether `ip` is local (never country-blocked): private, loopback, link-local,
/// shared/CGNAT, unspecified or broadcast IPv4; loopback, unspecified, unique-local or
/// link-local IPv6.
fn is_local(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (b & 0xC0) == 64)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
        }
    }
}

/// Decide about `ip` under `policy`, looking its country up in `geo` (None: no database
/// available, so no country is known).
pub fn decide(policy: &CountryPolicy, geo: Option<&GeoDb>, ip: IpAddr) -> CountryDecision {
    if policy.mode == PolicyMode::Off {
        return CountryDecision::Allowed;
    }
    if is_local(ip) {
        return CountryDecision::Unknown;
    }
    let Some(code) = geo.and_then(|geo| geo.lookup(ip)) else {
        return CountryDecision::Unknown;
    };
    let listed = policy.countries.contains(&code);
    match (policy.mode, listed) {
        (PolicyMode::Allow, true) | (PolicyMode::Deny, false) | (PolicyMode::Off, _) => {
            CountryDecision::Allowed
        }
        (PolicyMode::Allow, false) | (PolicyMode::Deny, true) => CountryDecision::Blocked(code),
    }
}

/// [`decide`], with the exemption list first: an exempt client is always
/// [`CountryDecision::Allowed`]. (IP blocks are the caller's, decided before this.)
pub fn decide_with_rules(
    rules: &RuleSet,
    policy: &CountryPolicy,
    geo: Option<&GeoDb>,
    ip: IpAddr,
) -> CountryDecision {
    if rules.decide(ip) == Decision::Exempt {
        return CountryDecision::Allowed;
    }
    decide(policy, geo, ip)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn assigned_list_is_sorted_and_complete() {
        assert!(ASSIGNED.windows(2).all(|w| w[0] < w[1]));
        assert!(ASSIGNED.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())));
        assert_eq!(ASSIGNED.len(), 249 + 1, "249 assigned codes plus XK");
    }

    #[test]
    fn codes_parse_and_refuse() {
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        assert_eq!(CountryCode::parse("GB").unwrap().to_string(), "GB");
        for bad in ["XX", "ZZ", "QQ", "UK", "EU"] {
            let e = CountryCode::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("not an assigned"), "{e}");
        }
        for bad in ["", "D", "DEU", "D1", "Ä", "é"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
        let list = parse_countries("fr, DE,FR,,be").unwrap();
        assert_eq!(list.iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["BE", "DE", "FR"]);
        assert!(parse_countries("DE,XX").unwrap_err().to_string().contains("'XX'"));
    }

    #[test]
    fn local_addresses() {
        for ip in
            ["10.1.2.3", "192.168.250.1", "127.0.0.1", "100.64.0.1", "::1", "fd00::1", "fe80::1"]
        {
            assert!(is_local(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["81.2.69.5", "100.128.0.1", "2001:db8:1::1"] {
            assert!(!is_local(ip.parse().unwrap()), "{ip}");
        }
    }
}
