//! Logging in with a CSV row's `UserName`: the admin formats of [`crate::batch`] turned into
//! LOGIN or SASL according to `--auth` and what the server offers.

use secrecy::SecretString;
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::ImapError;
use super::session::Session;
use crate::batch::{AuthChoice, LoginMethod, ServerAuth, login_method};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Authenticates as the CSV's `UserName` with its secret (password, or bearer token for
    /// XOAUTH2) and returns how it was done.
    pub async fn log_in(
        &mut self,
        user_name: &str,
        secret: &SecretString,
        choice: AuthChoice,
    ) -> Result<LoginMethod, ImapError> {
        if self.capabilities().is_empty() {
            self.capability().await?;
        }
        let server = ServerAuth {
            plain: self.has_capability("AUTH=PLAIN"),
            login_disabled: self.has_capability("LOGINDISABLED"),
        };
        let method = login_method(user_name, choice, server);
        match &method {
            LoginMethod::Login { username } => self.login(username, secret).await?,
            LoginMethod::Plain { authzid, authcid } => {
                let authzid = (!authzid.is_empty()).then_some(authzid.as_str());
                self.authenticate_plain(authzid, authcid, secret).await?
            }
            LoginMethod::Xoauth2 { user } => self.authenticate_xoauth2(user, secret).await?,
        }
        Ok(method)
    }
}
