//! Country policy: lookups in both record shapes over databases the tests write themselves,
//! allow/deny decisions, exemptions, and saving (validated, on every engine).

use std::net::IpAddr;
use std::path::Path;

use chrono::{TimeZone, Utc};
use pv_core::config::DbKind;
use pv_core::db::users::country_policy;
use pv_core::testkit::{Engine, TestEnv};
use pv_security::access::RuleSet;
use pv_security::country::testkit::{Shape, sample_db};
use pv_security::country::{
    CountryCode, CountryDecision, CountryPolicy, GeoDb, PolicyMode, decide, decide_with_rules,
    load_policy, parse_countries, save_policy,
};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn cc(text: &str) -> CountryCode {
    CountryCode::parse(text).unwrap()
}

fn geo(shape: Shape) -> GeoDb {
    GeoDb::from_bytes(sample_db(shape), Path::new("sample.mmdb")).unwrap()
}

fn policy(mode: PolicyMode, countries: &str) -> CountryPolicy {
    CountryPolicy { mode, countries: parse_countries(countries).unwrap(), mmdb_path: None }
}

#[test]
fn lookups_in_both_record_shapes() {
    for shape in [Shape::GeoIp2, Shape::Flat] {
        let geo = geo(shape);
        let look = |a: &str| geo.lookup(ip(a)).map(|c| c.to_string());
        assert_eq!(look("81.2.69.5").as_deref(), Some("GB"), "{shape:?}");
        assert_eq!(look("81.2.69.255").as_deref(), Some("GB"), "{shape:?}");
        assert_eq!(look("89.160.20.10").as_deref(), Some("SE"), "{shape:?}");
        assert_eq!(look("2001:db8:1::1").as_deref(), Some("DE"), "{shape:?}");
        assert_eq!(look("2001:db8:1:abcd::99").as_deref(), Some("DE"), "{shape:?}");
        assert_eq!(look("::ffff:81.2.69.5").as_deref(), Some("GB"), "{shape:?} v4-mapped");
        assert_eq!(look("81.2.70.1"), None, "{shape:?}");
        assert_eq!(look("2001:db8:2::1"), None, "{shape:?}");
        assert_eq!(look("192.168.1.1"), None, "{shape:?}");
    }
    // GeoIP2 without `country`: the registered country counts.
    assert_eq!(geo(Shape::GeoIp2).lookup(ip("175.16.199.4")), Some(cc("CN")));
    assert_eq!(geo(Shape::GeoIp2).database_type(), "GeoLite2-Country");
}

#[test]
fn the_test_databases_open_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.mmdb");
    std::fs::write(&path, sample_db(Shape::Flat)).unwrap();
    let geo = GeoDb::open(&path).unwrap();
    assert_eq!(geo.lookup(ip("89.160.20.128")), Some(cc("SE")));
    assert!(geo.built_at().is_some());
}

#[test]
fn allow_and_deny_decisions() {
    for shape in [Shape::GeoIp2, Shape::Flat] {
        let geo = geo(shape);
        let g = Some(&geo);

        let deny = policy(PolicyMode::Deny, "GB");
        assert_eq!(decide(&deny, g, ip("81.2.69.5")), CountryDecision::Blocked(cc("GB")));
        assert_eq!(decide(&deny, g, ip("89.160.20.10")), CountryDecision::Allowed);
        assert_eq!(decide(&deny, g, ip("2001:db8:1::5")), CountryDecision::Allowed);

        let allow = policy(PolicyMode::Allow, "SE,DE");
        assert_eq!(decide(&allow, g, ip("81.2.69.5")), CountryDecision::Blocked(cc("GB")));
        assert_eq!(decide(&allow, g, ip("89.160.20.10")), CountryDecision::Allowed);
        assert_eq!(decide(&allow, g, ip("2001:db8:1::5")), CountryDecision::Allowed);

        // Unknown and private addresses are never blocked, even by an allow-list.
        for a in ["198.51.100.1", "10.0.0.1", "192.168.250.3", "127.0.0.1", "::1", "fd12::1"] {
            assert_eq!(decide(&allow, g, ip(a)), CountryDecision::Unknown, "{a}");
        }
        // No database: nothing is known, nothing blocked.
        assert_eq!(decide(&deny, None, ip("81.2.69.5")), CountryDecision::Unknown);
        // Off: everything allowed.
        let off = policy(PolicyMode::Off, "GB");
        assert_eq!(decide(&off, g, ip("81.2.69.5")), CountryDecision::Allowed);
    }
}

#[test]
fn exemptions_win_over_country_blocks() {
    let geo = geo(Shape::GeoIp2);
    let deny = policy(PolicyMode::Deny, "GB");
    let rules = RuleSet::new(vec![], vec!["81.2.69.7/32".parse().unwrap()]);
    assert_eq!(
        decide_with_rules(&rules, &deny, Some(&geo), ip("81.2.69.7")),
        CountryDecision::Allowed
    );
    assert_eq!(
        decide_with_rules(&rules, &deny, Some(&geo), ip("81.2.69.8")),
        CountryDecision::Blocked(cc("GB"))
    );
}

#[test]
fn unknown_codes_are_refused_by_name() {
    for bad in ["XX", "ZZ", "QQ"] {
        let e = CountryCode::parse(bad).unwrap_err();
        assert_eq!(e.kind(), pv_core::ErrorKind::InvalidInput);
        let msg = e.to_string();
        assert!(msg.contains(&format!("'{bad}'")) && msg.contains("ISO 3166-1"), "{msg}");
    }
    let e = parse_countries("DE, FR, XX").unwrap_err().to_string();
    assert!(e.contains("'XX'"), "{e}");
    assert!(CountryCode::parse("DEU").unwrap_err().to_string().contains("two-letter"));
}

async fn save_load_and_validation(engine: Engine) {
    let env = TestEnv::new(engine).await;
    let db = pv_core::db::connect(&env.config, DbKind::Users).await.unwrap();
    pv_core::db::migrate(DbKind::Users, &db).await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mmdb = dir.path().join("country.mmdb");
    std::fs::write(&mmdb, sample_db(Shape::GeoIp2)).unwrap();
    let not_mmdb = dir.path().join("notes.txt");
    std::fs::write(&not_mmdb, "not a database\n".repeat(100)).unwrap();

    assert_eq!(load_policy(&db).await.unwrap(), CountryPolicy::default(), "off before any save");

    // Refused, and nothing written.
    let refused = [
        (
            CountryPolicy { mmdb_path: Some(not_mmdb.clone()), ..policy(PolicyMode::Deny, "GB") },
            "not a MaxMind DB",
        ),
        (
            CountryPolicy {
                mmdb_path: Some(dir.path().join("missing.mmdb")),
                ..policy(PolicyMode::Deny, "GB")
            },
            "cannot read",
        ),
        (
            CountryPolicy {
                mmdb_path: Some("country.mmdb".into()),
                ..policy(PolicyMode::Deny, "GB")
            },
            "absolute",
        ),
        (policy(PolicyMode::Deny, "GB"), "needs the path"),
        (
            CountryPolicy { mmdb_path: Some(mmdb.clone()), ..policy(PolicyMode::Allow, "") },
            "at least one",
        ),
    ];
    for (p, expected) in refused {
        let e = save_policy(&db, &p, Some(1), now).await.unwrap_err();
        assert_eq!(e.kind(), pv_core::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(expected), "{e}");
    }
    assert_eq!(country_policy::Entity::find().count(&db).await.unwrap(), 0);
    assert!(GeoDb::open(&not_mmdb).unwrap_err().to_string().contains("not a MaxMind DB"));

    // Saved, normalised, updated in place.
    let deny =
        CountryPolicy { mmdb_path: Some(mmdb.clone()), ..policy(PolicyMode::Deny, "ru,GB,RU") };
    let row = save_policy(&db, &deny, Some(7), now).await.unwrap();
    assert_eq!(row.updated_by, Some(7));
    let loaded = load_policy(&db).await.unwrap();
    assert_eq!(loaded.mode, PolicyMode::Deny);
    assert_eq!(loaded.countries, vec![cc("GB"), cc("RU")]);
    assert_eq!(loaded.mmdb_path.as_deref(), Some(mmdb.as_path()));

    let allow = CountryPolicy { mmdb_path: Some(mmdb.clone()), ..policy(PolicyMode::Allow, "SE") };
    let again = save_policy(&db, &allow, None, now).await.unwrap();
    assert_eq!(again.id, row.id, "one row, updated");
    assert_eq!(country_policy::Entity::find().count(&db).await.unwrap(), 1);
    assert_eq!(load_policy(&db).await.unwrap().countries, vec![cc("SE")]);

    // Off needs no database.
    save_policy(&db, &policy(PolicyMode::Off, ""), None, now).await.unwrap();
    assert_eq!(load_policy(&db).await.unwrap().mode, PolicyMode::Off);

    // A refused save leaves the stored policy as it was.
    let bad = CountryPolicy { mmdb_path: Some(not_mmdb), ..policy(PolicyMode::Deny, "GB") };
    assert!(save_policy(&db, &bad, None, now).await.is_err());
    assert_eq!(load_policy(&db).await.unwrap().mode, PolicyMode::Off);

    // A stored code this version does not accept is an error naming it, not a weaker policy.
    let mut active: country_policy::ActiveModel =
        country_policy::Entity::find().one(&db).await.unwrap().unwrap().into();
    active.countries = Set(serde_json::json!(["GB", "XX"]));
    active.update(&db).await.unwrap();
    let e = load_policy(&db).await.unwrap_err().to_string();
    assert!(e.contains("XX"), "{e}");

    // The preloaded LAN exemptions are in the rules the middleware combines with the policy.
    let rules = RuleSet::load(&db, now).await.unwrap();
    let geo = GeoDb::open(&mmdb).unwrap();
    let allow = policy(PolicyMode::Allow, "SE");
    assert_eq!(
        decide_with_rules(&rules, &allow, Some(&geo), ip("192.168.1.9")),
        CountryDecision::Allowed
    );
    assert_eq!(
        decide_with_rules(&rules, &allow, Some(&geo), ip("81.2.69.5")),
        CountryDecision::Blocked(cc("GB"))
    );
}

macro_rules! on_every_engine {
    ($($name:ident),+ $(,)?) => {
        mod sqlite { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Sqlite).await })+ }
        mod postgres { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::Postgres).await })+ }
        mod mariadb { $(#[tokio::test] async fn $name() { super::$name(pv_core::testkit::Engine::MySql).await })+ }
    };
}

on_every_engine!(save_load_and_validation);
