use super::*;
use crate::oauth2::error::TransportKind;
use crate::oauth2::scrub::Scrubber;

const URL: &str = "https://login.example/t/oauth2/v2.0/token";

fn parse(status: u16, body: &str) -> Result<AccessToken, TokenError> {
    parse_answer(URL, StatusCode::from_u16(status).unwrap(), None, body)
}

#[test]
fn a_token_answer_gives_the_token_and_its_lifetime() {
    let t = parse(
        200,
        r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0"}"#,
    )
    .unwrap();
    assert_eq!(t.secret().expose_secret(), "eyJ0");
    assert_eq!(t.token_type(), "Bearer");
    assert_eq!(t.lifetime(), Duration::from_secs(3599));
    let t = parse(
        200,
        r#"{"token_type":"Bearer","expires_in":"42","access_token":"x"}"#,
    );
    assert_eq!(t.unwrap().lifetime(), Duration::from_secs(42));
}

#[test]
fn unusable_success_answers_are_malformed_not_panics() {
    for body in [
        "",
        "<html>hello</html>",
        "[]",
        "{}",
        r#"{"access_token":"","expires_in":10}"#,
        r#"{"access_token":"x"}"#,
        r#"{"access_token":"x","expires_in":0}"#,
        r#"{"access_token":"x","expires_in":-5}"#,
        r#"{"access_token":"x","expires_in":"soon"}"#,
        r#"{"access_token":"x","expires_in":10,"token_type":"pop"}"#,
        r#"{"access_token":7,"expires_in":10}"#,
        "\u{0}\u{1}{",
    ] {
        let err = parse(200, body).unwrap_err();
        assert!(
            matches!(err, TokenError::Malformed { .. }),
            "{body:?}: {err}"
        );
        assert!(!err.is_transient());
        assert!(err.to_string().starts_with(URL), "{err}");
    }
}

#[test]
fn an_aad_error_is_surfaced_verbatim_with_its_hint() {
    let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'x'.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2026-01-01 00:00:00Z","error_codes":[7000215],"timestamp":"2026-01-01 00:00:00Z","trace_id":"1","correlation_id":"2","error_uri":"https://login.example/error?code=7000215"}"#;
    let err = parse(401, body).unwrap_err();
    let aad = err.aad().expect("an AAD error");
    assert_eq!(aad.error, "invalid_client");
    assert_eq!(aad.codes, [7000215]);
    assert_eq!(aad.trace_id.as_deref(), Some("1"));
    assert_eq!(aad.correlation_id.as_deref(), Some("2"));
    let shown = err.to_string();
    assert!(shown.contains(URL), "{shown}");
    assert!(shown.contains("HTTP 401"), "{shown}");
    assert!(
        shown.contains("AADSTS7000215: Invalid client secret provided."),
        "{shown}"
    );
    assert!(
        shown.contains("hint: the client secret is wrong"),
        "{shown}"
    );
    assert!(!err.is_transient());
}

#[test]
fn non_json_errors_keep_status_and_a_one_line_excerpt() {
    let err = parse(502, "<html>\nBad gateway\n</html>").unwrap_err();
    assert!(matches!(err, TokenError::Http { status: 502, .. }), "{err}");
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .contains("HTTP 502: <html> Bad gateway </html>"),
        "{err}"
    );
    let long = "x".repeat(5000);
    let shown = parse(500, &long).unwrap_err().to_string();
    assert!(shown.len() < 500 && shown.ends_with('…'), "{shown}");
    let err = parse_answer(
        URL,
        StatusCode::TOO_MANY_REQUESTS,
        Some(Duration::from_secs(2)),
        "",
    );
    let err = err.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    // JSON without an `error` string is not an AAD error.
    let err = parse(400, r#"{"message":"nope"}"#).unwrap_err();
    assert!(matches!(err, TokenError::Http { status: 400, .. }), "{err}");
}

#[test]
fn an_echoed_secret_is_scrubbed_before_and_after_parsing() {
    let scrubber = Scrubber::new("hunter2~x");
    let read = |status: u16, body: &str| {
        read_answer(
            &scrubber,
            URL,
            StatusCode::from_u16(status).unwrap(),
            None,
            body.as_bytes(),
        )
        .unwrap_err()
        .to_string()
    };
    // Form-encoded, as the request carried it, in a proxy's page.
    let shown = read(
        502,
        "bad gateway: client_secret=hunter2%7Ex&grant_type=client_credentials",
    );
    assert!(shown.contains("client_secret=[REDACTED]&"), "{shown}");
    // JSON-escaped in a way only parsing reveals.
    let shown = read(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS7000215: got hunter2~x"}"#,
    );
    assert!(
        !shown.contains("hunter2") && shown.contains("got [REDACTED]"),
        "{shown}"
    );
}

#[test]
fn token_and_client_debug_hide_the_secrets() {
    let t = AccessToken::new(
        SecretString::from("tok-123"),
        "Bearer",
        Duration::from_secs(5),
    );
    let shown = format!("{t:?}");
    assert!(
        !shown.contains("tok-123") && shown.contains("REDACTED"),
        "{shown}"
    );
    let config = OAuthConfig::new("t", "app", SecretString::from("pw-456"), "imap.example")
        .with_login_base("http://127.0.0.1:9");
    let client = TokenClient::new(&config).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains("pw-456"), "{shown}");
    assert!(
        shown.contains("http://127.0.0.1:9/t/oauth2/v2.0/token"),
        "{shown}"
    );
}

#[tokio::test]
async fn an_unreachable_login_host_is_a_transient_transport_error_naming_the_url() {
    // Bind and drop: a loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = OAuthConfig::new("t", "app", SecretString::from("pw-789"), "imap.example")
        .with_login_base(&format!("http://127.0.0.1:{port}"));
    let err = TokenClient::new(&config)
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(
        matches!(
            err,
            TokenError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{shown}"
    );
    assert!(
        shown.starts_with(&format!(
            "http://127.0.0.1:{port}/t/oauth2/v2.0/token: cannot connect"
        )),
        "{shown}"
    );
    assert!(err.is_transient());
    assert!(!shown.contains("pw-789") && !format!("{err:?}").contains("pw-789"));
}
