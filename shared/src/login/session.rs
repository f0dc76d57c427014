//! Logging in with a CSV row's `UserName`: the admin formats of [`super::formats`] turned
//! into LOGIN or SASL according to `--auth` and what the server offers.

use mailstage_imap::{ImapError, Session};
use secrecy::SecretString;
use tokio::io::{AsyncRead, AsyncWrite};

use super::formats::{AuthChoice, LoginMethod, ServerAuth, login_method};

/// Authenticates `session` as the CSV's `UserName` with its secret (password, or bearer
/// token for XOAUTH2) and returns how it was done.
pub async fn log_in<S: AsyncRead + AsyncWrite + Unpin>(
    session: &mut Session<S>,
    user_name: &str,
    secret: &SecretString,
    choice: AuthChoice,
) -> Result<LoginMethod, ImapError> {
    if session.capabilities().is_empty() {
        session.capability().await?;
    }
    let server = ServerAuth {
        plain: session.has_capability("AUTH=PLAIN"),
        login_disabled: session.has_capability("LOGINDISABLED"),
    };
    let method = login_method(user_name, choice, server);
    match &method {
        LoginMethod::Login { username } => session.login(username, secret).await?,
        LoginMethod::Plain { authzid, authcid } => {
            let authzid = (!authzid.is_empty()).then_some(authzid.as_str());
            session.authenticate_plain(authzid, authcid, secret).await?
        }
        LoginMethod::Xoauth2 { user } => session.authenticate_xoauth2(user, secret).await?,
    }
    Ok(method)
}
