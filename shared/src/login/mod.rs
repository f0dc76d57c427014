//! Logging in as a batch's users: the CSV's `UserName` admin formats (`domain/admin/user`,
//! `user*admin`, `#user@domain#admin#`, Courier's admin with `UserRoot`), how each becomes
//! an IMAP authentication on a [`mailstage_imap::Session`], and the per-row login check of
//! `test-server --csv`.

mod check;
mod formats;
mod session;

pub use check::{LoginCheck, check_login, check_logins, login_failure};
pub use formats::{AuthChoice, LoginFormat, LoginMethod, ServerAuth, login_method};
pub use session::log_in;
