//! `test-server --csv`: logging in with each row of a batch file, timed, with a diagnosis
//! an admin can act on when a login fails (the admin formats know whose password was wrong),
//! then listing its folders as a pass would: a login that sees none fails as `no_folders`.

use std::sync::Arc;
use std::time::Instant;

use mailstage_imap::diagnose::{Failure, FailureKind, classified, connect_failure, ms_since};
use mailstage_imap::transport::{ConnectOptions, connect};
use mailstage_imap::{ImapError, SessionConfig};
use serde::Serialize;

use super::formats::{AuthChoice, LoginFormat};
use super::session::log_in;
use crate::catalog::BatchRow;

/// The result of logging in with one CSV row.
#[derive(Clone, Debug, Serialize)]
pub struct LoginCheck {
    /// The CSV row.
    pub row: usize,
    /// Its EmailAddress.
    pub email: String,
    /// Its UserName.
    pub user_name: String,
    /// How the login was made (when it got that far).
    pub method: Option<String>,
    /// Whether it succeeded.
    pub ok: bool,
    /// Connect plus login time.
    pub ms: f64,
    /// Capabilities after login.
    pub capabilities: Vec<String>,
    /// Why it failed.
    pub failure: Option<Failure>,
}

/// Logs in with every row, `parallel` at a time; results in row order.
pub async fn check_logins(
    opts: &ConnectOptions,
    rows: Vec<BatchRow>,
    choice: AuthChoice,
    parallel: usize,
) -> Vec<LoginCheck> {
    let rows = Arc::new(rows);
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..rows.len() {
        let (rows, limit, opts) = (rows.clone(), limit.clone(), opts.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            check_login(&opts, &rows[i], choice).await
        });
    }
    let mut checks = Vec::with_capacity(rows.len());
    while let Some(done) = tasks.join_next().await {
        if let Ok(check) = done {
            checks.push(check);
        }
    }
    checks.sort_by_key(|c| c.row);
    checks
}

/// Connects and logs in with one row.
pub async fn check_login(opts: &ConnectOptions, row: &BatchRow, choice: AuthChoice) -> LoginCheck {
    let t = Instant::now();
    let mut check = LoginCheck {
        row: row.row,
        email: row.email.clone(),
        user_name: row.user_name.clone(),
        method: None,
        ok: false,
        ms: 0.0,
        capabilities: Vec::new(),
        failure: None,
    };
    match connect(opts, SessionConfig::default()).await {
        Err(e) => check.failure = Some(connect_failure(&e, opts)),
        Ok(mut session) => {
            match log_in(&mut session, &row.user_name, &row.password, choice).await {
                Ok(method) => {
                    check.method = Some(method.to_string());
                    check.capabilities = session.capabilities().to_vec();
                    // Logged in: does it see anything a pass would read?
                    match crate::extract::listing::nothing_to_migrate(&mut session, row).await {
                        Ok(None) => check.ok = true,
                        Ok(Some(hint)) => {
                            check.failure = Some(Failure {
                                kind: FailureKind::NoFolders,
                                message: format!(
                                    "{}: nothing to migrate: the login works but sees no folder to read",
                                    row.email
                                ),
                                hint,
                            });
                        }
                        Err(e) => {
                            check.failure = Some(Failure {
                                kind: FailureKind::Protocol,
                                message: format!("{}: listing its folders: {e}", row.email),
                                hint:
                                    "the login works; check the server's logs for why LIST failed"
                                        .into(),
                            });
                        }
                    }
                    let _ = session.logout().await;
                }
                Err(e) => check.failure = Some(login_failure(&e, &row.user_name)),
            }
        }
    }
    check.ms = ms_since(t);
    check
}

/// Diagnoses a failed login for a CSV `UserName`.
pub fn login_failure(e: &ImapError, user_name: &str) -> Failure {
    if e.is_passing_refusal() {
        return Failure {
            kind: FailureKind::Unavailable,
            message: format!("{user_name}: {e}"),
            hint: "the server refused for now, not for good: try again later (a run retries \
                   it by itself)"
                .into(),
        };
    }
    let rejected = matches!(e, ImapError::AuthFailed { .. } | ImapError::Rejected { .. });
    if !rejected {
        if let ImapError::Unsupported(what) = e {
            return Failure {
                kind: FailureKind::Unsupported,
                message: format!("server does not support {what}"),
                hint: "choose another method with --auth (login, plain)".into(),
            };
        }
        return classified(e, user_name);
    }
    let format = LoginFormat::of(user_name);
    let (kind, hint) = match (e.code_name().as_deref(), format.admin()) {
        (Some("AUTHORIZATIONFAILED"), Some(admin)) => (
            FailureKind::NotAuthorized,
            format!(
                "{admin} logged in but may not open this mailbox: check the user exists and {admin} has rights to it"
            ),
        ),
        (_, Some(admin)) => (
            FailureKind::AdminRefused,
            format!(
                "check {admin}'s password and that {admin} is set up as an admin (master) user on the server"
            ),
        ),
        _ => (
            FailureKind::BadCredentials,
            "check the UserName and Password columns for this row".into(),
        ),
    };
    Failure {
        kind,
        message: format!("{user_name}: {e}"),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailstage_imap::{Code, Status, StatusText};

    fn auth_failed(code: Option<&str>, text: &str) -> ImapError {
        ImapError::AuthFailed {
            mechanism: "PLAIN".into(),
            status: Box::new(StatusText {
                status: Status::No,
                code: code.map(|name| Code::Other {
                    name: name.into(),
                    args: None,
                }),
                text: text.into(),
            }),
            detail: None,
        }
    }

    #[test]
    fn a_refusal_for_now_is_not_taken_for_a_wrong_password() {
        let later = login_failure(
            &auth_failed(Some("UNAVAILABLE"), "Temporary authentication failure."),
            "alice",
        );
        assert_eq!(later.kind, FailureKind::Unavailable, "{later:?}");
        assert!(later.message.starts_with("alice: "), "{later:?}");
        let wrong = login_failure(
            &auth_failed(Some("AUTHENTICATIONFAILED"), "Authentication failed."),
            "alice",
        );
        assert_eq!(wrong.kind, FailureKind::BadCredentials, "{wrong:?}");
        let admin = login_failure(&auth_failed(None, "LOGIN failed."), "alice*admin");
        assert_eq!(admin.kind, FailureKind::AdminRefused, "{admin:?}");
    }
}
