//! The configuration read from variables: defaults, bounds, and errors reported at once.

use super::*;

/// The variables every configuration needs, valid.
const REQUIRED: [(&str, &str); 2] = [
    ("DATABASE_URL", "mysql://root@127.0.0.1/test"),
    ("JWT_SECRET", "a-very-long-secret-that-is-at-least-32-bytes"),
];

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn reports_every_missing_variable_at_once() {
    let err = Config::from_vars(vars(&[("LOGIN_LIMIT_PER_EMAIL", "many")])).unwrap_err();
    let all = err.to_string();
    assert!(all.contains("DATABASE_URL is required"), "{all}");
    assert!(all.contains("JWT_SECRET is required"), "{all}");
    assert!(
        all.contains("LOGIN_LIMIT_PER_EMAIL has an invalid value"),
        "{all}"
    );
}

#[test]
fn rejects_a_short_jwt_secret() {
    let err = Config::from_vars(vars(&[
        ("DATABASE_URL", "mysql://root@127.0.0.1/test"),
        ("JWT_SECRET", "short"),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("at least 32 bytes"));
}

#[test]
fn hoarding_limits_have_defaults_and_bounds() {
    let base = REQUIRED;
    let config = Config::from_vars(vars(&base)).unwrap();
    assert_eq!(config.orders.max_unpaid_orders_per_buyer, 3);
    assert_eq!(config.orders.rebuy_cooldown, Duration::from_secs(300));
    let off = Config::from_vars(vars(&[
        base[0],
        base[1],
        ("REBUY_COOLDOWN_SECONDS", "0"),
        ("MAX_UNPAID_ORDERS_PER_BUYER", "1"),
    ]))
    .unwrap();
    assert_eq!(off.orders.rebuy_cooldown, Duration::ZERO);
    let err = Config::from_vars(vars(&[
        base[0],
        base[1],
        ("MAX_UNPAID_ORDERS_PER_BUYER", "0"),
        ("REBUY_COOLDOWN_SECONDS", "99999999999"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("MAX_UNPAID_ORDERS_PER_BUYER must be 1 to 1000"),
        "{err}"
    );
    assert!(
        err.contains("REBUY_COOLDOWN_SECONDS must be 0 to 31536000"),
        "{err}"
    );
}

#[test]
fn the_sold_out_memo_has_a_default_and_a_bound() {
    let base = REQUIRED;
    let config = Config::from_vars(vars(&base)).unwrap();
    assert_eq!(config.orders.sold_out_memo, Duration::from_millis(100));
    let off = Config::from_vars(vars(&[base[0], base[1], ("SOLD_OUT_MEMO_MS", "0")])).unwrap();
    assert_eq!(off.orders.sold_out_memo, Duration::ZERO);
    let err = Config::from_vars(vars(&[base[0], base[1], ("SOLD_OUT_MEMO_MS", "5001")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("SOLD_OUT_MEMO_MS must be 0 to 5000"), "{err}");
}

#[test]
fn debug_output_never_shows_secrets() {
    let config = Config::from_vars(vars(&[
        ("DATABASE_URL", "mysql://root:hunter2hunter2@db/test"),
        ("JWT_SECRET", "a-very-long-secret-that-is-at-least-32-bytes"),
    ]))
    .unwrap();
    let printed = format!("{config:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(!printed.contains("a-very-long-secret"), "{printed}");
    assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
    assert_eq!(config.auth.signup_limit_per_address, 20);
}

#[test]
fn a_lambda_binary_opens_a_pool_of_one_or_two_connections() {
    let base = REQUIRED;
    let runner = Config::from_vars(vars(&base)).unwrap();
    assert_eq!(runner.database_max_connections, 10);
    let lambda = Config::from_vars_on(Host::Lambda, vars(&base)).unwrap();
    assert_eq!(lambda.database_max_connections, 2);
    let one = Config::from_vars_on(
        Host::Lambda,
        vars(&[base[0], base[1], ("DATABASE_MAX_CONNECTIONS", "1")]),
    )
    .unwrap();
    assert_eq!(one.database_max_connections, 1);
    for refused in ["0", "3", "10"] {
        let err = Config::from_vars_on(
            Host::Lambda,
            vars(&[base[0], base[1], ("DATABASE_MAX_CONNECTIONS", refused)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("DATABASE_MAX_CONNECTIONS must be 1 to 2 in a Lambda function"),
            "{refused}: {err}"
        );
    }
    let runner_zero =
        Config::from_vars(vars(&[base[0], base[1], ("DATABASE_MAX_CONNECTIONS", "0")]));
    assert!(runner_zero.is_err());
    let many = Config::from_vars(vars(&[
        base[0],
        base[1],
        ("DATABASE_MAX_CONNECTIONS", "50"),
    ]))
    .unwrap();
    assert_eq!(many.database_max_connections, 50);
}

#[test]
fn a_database_password_is_taken_verbatim_and_never_printed() {
    let config = Config::from_vars(vars(&[
        ("DATABASE_URL", "mysql://kicksync@proxy.example/kicksync"),
        ("DATABASE_PASSWORD", " p@ss:/word#1 "),
        ("JWT_SECRET", "a-very-long-secret-that-is-at-least-32-bytes"),
    ]))
    .unwrap();
    let password = config.database_password.as_ref().unwrap();
    assert_eq!(password.expose_secret(), " p@ss:/word#1 ");
    assert!(!format!("{config:?}").contains("p@ss"));
}

#[test]
fn portone_defaults_apply_only_to_a_local_api() {
    let base = REQUIRED;
    let local = Config::from_vars(vars(&base)).unwrap();
    assert_eq!(local.portone.store_id, local_portone::STORE_ID);
    assert_eq!(local.portone.api_base, local_portone::API_BASE);

    let mut remote = base.to_vec();
    remote.push(("PORTONE_API_BASE", "https://api.portone.io"));
    let err = Config::from_vars(vars(&remote)).unwrap_err().to_string();
    assert!(err.contains("PORTONE_API_SECRET is required"), "{err}");
    assert!(err.contains("PORTONE_STORE_ID is required"), "{err}");
    assert!(err.contains("PORTONE_WEBHOOK_SECRET is required"), "{err}");

    let mut bad = base.to_vec();
    bad.push(("PORTONE_WEBHOOK_SECRET", "whsec_not base64!"));
    let err = Config::from_vars(vars(&bad)).unwrap_err().to_string();
    assert!(
        err.contains("PORTONE_WEBHOOK_SECRET must be base64"),
        "{err}"
    );
}
