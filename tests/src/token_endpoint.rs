//! An emulator of Microsoft Entra ID's token endpoint (client credentials only) plus an
//! introspection endpoint for the Dovecot XOAUTH2 check script (DESIGN §5, §6).
//!
//! - `POST /{tenant}/oauth2/v2.0/token`, form `client_id`, `client_secret`, `scope`,
//!   `grant_type=client_credentials`: a random opaque token that expires after the configured
//!   lifetime (`expires_in` says how long), or Entra ID's error JSON (`error`,
//!   `error_description` starting with the AADSTS code, `error_codes`, `timestamp`,
//!   `trace_id`, `correlation_id`, `error_uri`) with 400 or 401, as Entra ID answers.
//! - `POST /introspect`, form `token`, `user`: 200 `{"active":true}` while the token lives,
//!   401 otherwise.
//! - Faults for the next token requests: 500, 429 with `Retry-After`, or no answer at all.
//! - [`Counters`] for assertions.
//! - [`write_check_token_script`]: the Dovecot checkpassword script that asks `/introspect`.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use serde_json::json;

use crate::http1::{Action, Reply, Request, Server};

/// The tenant a default emulator knows.
pub const TENANT: &str = "contoso.onmicrosoft.com";
/// The application (client) id a default emulator knows.
pub const CLIENT_ID: &str = "00000000-0000-0000-0000-00000000c11e";
/// The client secret a default emulator accepts.
pub const CLIENT_SECRET: &str = "emulated~client~secret";
/// The scope a default emulator issues tokens for.
pub const SCOPE: &str = "https://outlook.office365.com/.default";

/// A fault served instead of the next token request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with a non-JSON body, as a failing gateway sends.
    ServerError,
    /// HTTP 429 with `Retry-After: N` seconds.
    Throttle {
        /// Seconds in `Retry-After`.
        retry_after: u64,
    },
    /// No answer: the connection stays open until the emulator stops.
    Hang,
}

/// What the emulator has seen, for assertions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Token requests received, faulted and refused ones included.
    pub token_requests: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Token requests refused with an Entra ID error.
    pub refused: u64,
    /// Token requests answered with a fault.
    pub faults: u64,
    /// Introspection requests.
    pub introspections: u64,
    /// Introspections that found the token not live (401).
    pub introspections_refused: u64,
}

/// Settings of a [`TokenEndpoint`]; from [`TokenEndpoint::builder`].
#[derive(Debug, Clone)]
pub struct TokenEndpointBuilder {
    tenants: Vec<String>,
    client_id: String,
    client_secret: String,
    scope: String,
    lifetime: Duration,
}

impl TokenEndpointBuilder {
    /// Knows only `tenant` (instead of [`TENANT`]); call again for more.
    pub fn tenant(mut self, tenant: &str) -> Self {
        if self.tenants == [TENANT] {
            self.tenants.clear();
        }
        self.tenants.push(tenant.into());
        self
    }

    /// The one registered application and its secret.
    pub fn client(mut self, id: &str, secret: &str) -> Self {
        self.client_id = id.into();
        self.client_secret = secret.into();
        self
    }

    /// The scope tokens are issued for (`https://IMAP_HOST/.default`).
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.into();
        self
    }

    /// How long issued tokens live (whole seconds, at least 1; default 3599).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.max(Duration::from_secs(1));
        self
    }

    /// Starts the emulator on a free loopback port.
    pub fn start(self) -> Result<TokenEndpoint> {
        let state = Arc::new(Mutex::new(State {
            settings: self,
            tokens: HashMap::new(),
            faults: VecDeque::new(),
            counters: Counters::default(),
            users: Vec::new(),
        }));
        let shared = state.clone();
        let server = Server::start(move |request| handle(&shared, &request))?;
        Ok(TokenEndpoint { state, server })
    }
}

/// A running emulator; stops on drop.
#[derive(Debug)]
pub struct TokenEndpoint {
    state: Arc<Mutex<State>>,
    server: Server,
}

#[derive(Debug)]
struct State {
    settings: TokenEndpointBuilder,
    /// Issued tokens and when each expires.
    tokens: HashMap<String, Instant>,
    faults: VecDeque<Fault>,
    counters: Counters,
    /// The `user` of each introspection, in order.
    users: Vec<String>,
}

impl TokenEndpoint {
    /// Knows [`TENANT`], [`CLIENT_ID`] with [`CLIENT_SECRET`], [`SCOPE`]; 3599 s tokens.
    pub fn builder() -> TokenEndpointBuilder {
        TokenEndpointBuilder {
            tenants: vec![TENANT.into()],
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            scope: SCOPE.into(),
            lifetime: Duration::from_secs(3599),
        }
    }

    /// The login base URL to configure clients with, `http://127.0.0.1:PORT`.
    pub fn login_base(&self) -> String {
        self.server.base_url()
    }

    /// The introspection URL for [`crate::DovecotBuilder::xoauth2_introspection`].
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.server.base_url())
    }

    /// Serves `fault` to each of the next `count` token requests (after those queued).
    pub fn fail_next(&self, count: usize, fault: Fault) {
        self.lock().faults.extend(std::iter::repeat_n(fault, count));
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.lock().counters
    }

    /// The `user` field of every introspection so far, in order.
    pub fn introspected_users(&self) -> Vec<String> {
        self.lock().users.clone()
    }

    /// Whether `token` was issued here and has not expired.
    pub fn is_live(&self, token: &str) -> bool {
        self.lock().is_live(token)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    fn is_live(&self, token: &str) -> bool {
        self.tokens
            .get(token)
            .is_some_and(|expires| Instant::now() < *expires)
    }
}

fn handle(state: &Mutex<State>, request: &Request) -> Action {
    let mut state = lock(state);
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let reply = match (request.method.as_str(), segments.as_slice()) {
        ("POST", ["introspect"]) => introspect(&mut state, request),
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => {
            state.counters.token_requests += 1;
            if let Some(fault) = state.faults.pop_front() {
                state.counters.faults += 1;
                return fault_action(fault);
            }
            let reply = issue(&mut state, tenant, request);
            if reply.status != 200 {
                state.counters.refused += 1;
            }
            reply
        }
        (_, ["introspect"] | [_, "oauth2", "v2.0", "token"]) => {
            Reply::text(405, "method not allowed").with_header("Allow", "POST")
        }
        _ => Reply::text(404, "not found"),
    };
    Action::Reply(reply)
}

fn fault_action(fault: Fault) -> Action {
    match fault {
        Fault::ServerError => Action::Reply(Reply::text(
            500,
            "<html><body>500 Internal Server Error</body></html>",
        )),
        Fault::Throttle { retry_after } => Action::Reply(
            Reply::text(429, "Too Many Requests")
                .with_header("Retry-After", &retry_after.to_string()),
        ),
        Fault::Hang => Action::Hang,
    }
}

fn introspect(state: &mut State, request: &Request) -> Reply {
    let form = request.form();
    state.counters.introspections += 1;
    state
        .users
        .push(form.get("user").cloned().unwrap_or_default());
    let live = form.get("token").is_some_and(|t| state.is_live(t));
    if live {
        Reply::json(200, &json!({ "active": true }))
    } else {
        state.counters.introspections_refused += 1;
        Reply::json(401, &json!({ "active": false }))
    }
}

/// Checks the request as Entra ID does, in the same order, and issues a token.
fn issue(state: &mut State, tenant: &str, request: &Request) -> Reply {
    let s = &state.settings;
    if !s.tenants.iter().any(|t| t.eq_ignore_ascii_case(tenant)) {
        return aad(
            400,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant \
                 ID and are signing into the correct cloud. Check with your subscription \
                 administrator, this may happen if there are no active subscriptions for the \
                 tenant."
            ),
        );
    }
    let form = request.form();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let missing = |name: &str| {
        aad(
            400,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    let Some(grant) = field("grant_type") else {
        return missing("grant_type");
    };
    if grant != "client_credentials" {
        return aad(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    let Some(client_id) = field("client_id") else {
        return missing("client_id");
    };
    if client_id != s.client_id {
        return aad(
            400,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You \
                 may have sent your authentication request to the wrong tenant."
            ),
        );
    }
    let Some(secret) = field("client_secret") else {
        return aad(
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the \
             'client_credentials' grant type.",
        );
    };
    if secret != s.client_secret {
        return aad(
            401,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request \
                 is the client secret value, not the client secret ID, for a secret added to \
                 app '{client_id}'."
            ),
        );
    }
    let Some(scope) = field("scope") else {
        return missing("scope");
    };
    if !scope.ends_with("/.default") {
        return aad(
            400,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows \
                 must have a scope value with /.default suffixed to the resource identifier \
                 (application ID URI)."
            ),
        );
    }
    if scope != s.scope {
        let resource = scope.trim_end_matches("/.default");
        return aad(
            400,
            "invalid_scope",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named \
                 {tenant}. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You \
                 might have sent your authentication request to the wrong tenant."
            ),
        );
    }
    let lifetime = s.lifetime.as_secs();
    let token = format!("EwB{}", random_hex(48));
    state
        .tokens
        .insert(token.clone(), Instant::now() + s.lifetime);
    state.counters.tokens_issued += 1;
    Reply::json(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
    )
}

/// The checkpassword script of [`crate::DovecotBuilder::xoauth2_introspection`], in its DIR.
pub const CHECK_TOKEN_SCRIPT: &str = "check-token.sh";

/// The script's text; `@URL@` is the introspection URL.
const CHECK_TOKEN_TEMPLATE: &str = r#"#!/bin/sh
# XOAUTH2/OAUTHBEARER check for a mailstage test Dovecot: asks the token emulator whether the
# token is live. Dovecot's checkpassword protocol: fd 3 holds "user NUL token NUL".
PATH=/usr/bin:/bin
input=$(tr '\0' '\n' <&3)
user=$(printf '%s\n' "$input" | sed -n 1p)
token=$(printf '%s\n' "$input" | sed -n 2p)
[ -n "$user" ] && [ -n "$token" ] || exit 1
if printf '%s' "$token" | /usr/bin/curl -fsS -o /dev/null --noproxy '*' --max-time 5 \
    --data-urlencode 'token@-' --data-urlencode "user=$user" '@URL@'; then
    export USER="$user"
    exec "$@"
fi
exit 1
"#;

/// Writes `DIR/check-token.sh` (mode 755, like the passwd-files owned by whoever runs the
/// tests: the auth process only reads and runs it). Dovecot's checkpassword protocol: fd 3
/// holds `user NUL token NUL`; on success the script runs its arguments with `USER` set, on
/// failure it exits 1 (AUTHENTICATIONFAILED).
pub fn write_check_token_script(root: &Path, url: &str) -> Result<()> {
    ensure!(
        !url.contains(['\'', '\n']),
        "introspection URL {url:?} cannot be quoted for sh"
    );
    let script = CHECK_TOKEN_TEMPLATE.replace("@URL@", url);
    let path = root.join(CHECK_TOKEN_SCRIPT);
    fs::write(&path, script)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Entra ID's error answer.
fn aad(status: u16, error: &str, code: u64, text: &str) -> Reply {
    let trace_id = uuid();
    let correlation_id = uuid();
    let timestamp = timestamp();
    Reply::json(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {text}\r\nTrace ID: {trace_id}\r\nCorrelation ID: \
                 {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// `n` random bytes as hex.
fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // SAFETY: getrandom(2) writes at most `n` bytes into the buffer it is given.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), n, 0) };
    assert_eq!(got, n as isize, "getrandom");
    hex::encode(bytes)
}

/// A random UUID-shaped id.
fn uuid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Now as Entra ID writes it: `2026-11-24 15:56:33Z`.
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = mailstage::imap::datetime::civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// Sends raw request bytes; returns the status and the body.
    fn raw(endpoint: &TokenEndpoint, request: &str) -> (u16, String) {
        let port = endpoint.server.port();
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    fn post(endpoint: &TokenEndpoint, path: &str, form: &str) -> (u16, String) {
        raw(
            endpoint,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: \
                 application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
                form.len()
            ),
        )
    }

    #[test]
    fn form_fields_are_percent_and_plus_decoded() {
        let endpoint = TokenEndpoint::builder()
            .client("app", "a b+c/é")
            .start()
            .unwrap();
        let path = format!("/{TENANT}/oauth2/v2.0/token");
        let form = "grant_type=client_credentials&client_id=app&client_secret=a+b%2Bc%2F%C3%A9\
                    &scope=https%3A%2F%2Foutlook.office365.com%2F.default";
        let (status, body) = post(&endpoint, &path, form);
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let token = json["access_token"].as_str().unwrap();
        assert_eq!(json["expires_in"], 3599);
        assert!(endpoint.is_live(token));
        let (status, _) = post(&endpoint, "/introspect", &format!("token={token}&user=u"));
        assert_eq!(status, 200);
        let (status, _) = post(&endpoint, "/introspect", "user=u");
        assert_eq!(status, 401);
        assert_eq!(endpoint.introspected_users(), ["u", "u"]);
    }

    #[test]
    fn refusals_look_like_entra_ids() {
        let endpoint = TokenEndpoint::builder().start().unwrap();
        let path = format!("/{TENANT}/oauth2/v2.0/token");
        let (status, body) = post(&endpoint, &path, "client_id=x");
        assert_eq!(status, 400);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], "invalid_request");
        assert_eq!(json["error_codes"], serde_json::json!([900144]));
        let description = json["error_description"].as_str().unwrap();
        assert!(description.starts_with("AADSTS900144: "), "{description}");
        assert!(description.contains("'grant_type'"), "{description}");
        for key in ["timestamp", "trace_id", "correlation_id"] {
            assert!(json[key].is_string(), "{key}");
        }
        let (status, _) = raw(&endpoint, &format!("GET {path} HTTP/1.1\r\n\r\n"));
        assert_eq!(status, 405);
        let (status, _) = raw(
            &endpoint,
            "POST /other HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(status, 404);
        let (status, _) = raw(&endpoint, "garbage\r\n\r\n");
        assert_eq!(status, 400);
        let counters = endpoint.counters();
        assert_eq!((counters.token_requests, counters.refused), (1, 1));
    }
}
