//! App-only OAuth2 for Microsoft 365: client-credentials tokens from Microsoft Entra ID
//! (Azure AD) for `AUTHENTICATE XOAUTH2` to Exchange Online's IMAP.
//!
//! - [`OAuthConfig`]: login base URL (global, national cloud or emulator), tenant, client id,
//!   client secret (a [`secrecy::SecretString`], read at run time, never printed), scope.
//! - [`TokenClient`]: one `POST {login}/{tenant}/oauth2/v2.0/token` and the reading of its
//!   answer, over reqwest with rustls and the ring provider.
//! - [`TokenSource`]: the cache every connection shares: one token in memory, refreshed
//!   [`refresh_margin`] before it expires or after a server refused it
//!   ([`TokenSource::invalidate`]), one request at a time, transient failures retried.
//! - [`TokenError`]: Entra ID's error verbatim with a hint for the usual mistakes, transport
//!   errors naming the URL, and [`TokenError::is_transient`].
//!
//! ```no_run
//! # async fn demo(session: &mut mailstage::imap::Session<mailstage::imap::transport::Transport>)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use mailstage::oauth2::{OAuthConfig, TokenSource, DEFAULT_IMAP_HOST};
//! let secret = std::env::var("CLIENT_SECRET")?.into();
//! let tokens = TokenSource::new(&OAuthConfig::new("contoso.onmicrosoft.com", "app-id", secret, DEFAULT_IMAP_HOST))?;
//! let token = tokens.token().await?;
//! if let Err(e) = session.authenticate_xoauth2("alice@contoso.com", token.secret()).await {
//!     tokens.invalidate(&token).await; // the next token() fetches a new one
//!     return Err(e.into());
//! }
//! # Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod scrub;
mod source;

pub use client::{AccessToken, TokenClient};
pub(crate) use config::is_loopback_host;
pub use config::{DEFAULT_IMAP_HOST, DEFAULT_LOGIN_BASE, OAuthConfig, TokenRetry, scope_for};
pub use error::{AadError, TokenError, TransportKind};
pub use source::{FetchFuture, FetchToken, TokenSource, refresh_margin};
