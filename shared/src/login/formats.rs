//! The CSV's `UserName` formats for admin-credential logins (README, *Checking the source
//! server*), and how each becomes an IMAP authentication.
//!
//! | server | `UserName` | sent as |
//! |---|---|---|
//! | any | `terry.adams` | LOGIN (or SASL PLAIN where LOGIN is disabled) |
//! | Exchange | `domain/admin/user` | LOGIN, the string as is |
//! | Dovecot | `user*admin` | SASL PLAIN with authzid=user, authcid=admin when offered, else LOGIN as is |
//! | Mirapoint | `#user@domain#admin#` | LOGIN, the string as is |
//! | Courier | `admin` with a `UserRoot` | LOGIN; only folders under `UserRoot` are read |

use std::fmt;
use std::str::FromStr;

/// How a `UserName` is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginFormat {
    /// The user's own login.
    Own,
    /// Exchange `Domain/Admin/User`.
    Exchange {
        /// The admin account.
        admin: String,
        /// The mailbox's user.
        user: String,
    },
    /// Dovecot master user `User*Admin`.
    DovecotMaster {
        /// The mailbox's user (authorization identity).
        user: String,
        /// The master user (authentication identity).
        admin: String,
    },
    /// Mirapoint `#user@domain#Admin#`.
    Mirapoint {
        /// The mailbox's user.
        user: String,
        /// The admin account.
        admin: String,
    },
}

impl LoginFormat {
    /// Recognises the format of a `UserName`.
    pub fn of(user_name: &str) -> Self {
        if let Some(inner) = user_name
            .strip_prefix('#')
            .and_then(|s| s.strip_suffix('#'))
            && let Some((user, admin)) = inner.split_once('#')
            && !user.is_empty()
            && !admin.is_empty()
            && !admin.contains('#')
        {
            return LoginFormat::Mirapoint {
                user: user.into(),
                admin: admin.into(),
            };
        }
        if let Some((user, admin)) = user_name.rsplit_once('*')
            && !user.is_empty()
            && !admin.is_empty()
        {
            return LoginFormat::DovecotMaster {
                user: user.into(),
                admin: admin.into(),
            };
        }
        let parts: Vec<&str> = user_name.split('/').collect();
        if let [domain, admin, user] = parts[..]
            && ![domain, admin, user].iter().any(|p| p.is_empty())
        {
            return LoginFormat::Exchange {
                admin: admin.into(),
                user: user.into(),
            };
        }
        LoginFormat::Own
    }

    /// The admin account, for the admin formats.
    pub fn admin(&self) -> Option<&str> {
        match self {
            LoginFormat::Own => None,
            LoginFormat::Exchange { admin, .. }
            | LoginFormat::DovecotMaster { admin, .. }
            | LoginFormat::Mirapoint { admin, .. } => Some(admin),
        }
    }
}

/// The `--auth` choice: how to authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthChoice {
    /// SASL PLAIN for `user*admin` when the server offers it (and where LOGIN is disabled),
    /// LOGIN otherwise.
    #[default]
    Auto,
    /// Always LOGIN.
    Login,
    /// Always SASL PLAIN.
    Plain,
    /// SASL XOAUTH2 with a bearer token instead of a password.
    Xoauth2,
}

impl AuthChoice {
    /// Every choice.
    pub const ALL: [AuthChoice; 4] = [
        AuthChoice::Auto,
        AuthChoice::Login,
        AuthChoice::Plain,
        AuthChoice::Xoauth2,
    ];

    /// The lowercase name used on the command line, in the index and in targets' settings.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthChoice::Auto => "auto",
            AuthChoice::Login => "login",
            AuthChoice::Plain => "plain",
            AuthChoice::Xoauth2 => "xoauth2",
        }
    }
}

// Stored and shown by its word, as targets' JSON has always held it.
mailstage_imap::serde_as_word!(AuthChoice);

impl fmt::Display for AuthChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(AuthChoice::Auto),
            "login" => Ok(AuthChoice::Login),
            "plain" => Ok(AuthChoice::Plain),
            "xoauth2" => Ok(AuthChoice::Xoauth2),
            other => Err(format!(
                "unknown --auth {other:?}: use auto, login, plain or xoauth2"
            )),
        }
    }
}

/// The authentication to perform (identities only; the secret travels separately).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    /// `LOGIN username password`.
    Login {
        /// The name sent.
        username: String,
    },
    /// `AUTHENTICATE PLAIN` with `authzid \0 authcid \0 password`.
    Plain {
        /// Whom to act as (empty: the authenticated user).
        authzid: String,
        /// Who authenticates.
        authcid: String,
    },
    /// `AUTHENTICATE XOAUTH2` as `user` with a bearer token.
    Xoauth2 {
        /// The mailbox to act as.
        user: String,
    },
}

impl fmt::Display for LoginMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginMethod::Login { username } => write!(f, "LOGIN as {username}"),
            LoginMethod::Plain { authzid, authcid } if authzid.is_empty() => {
                write!(f, "SASL PLAIN as {authcid}")
            }
            LoginMethod::Plain { authzid, authcid } => {
                write!(f, "SASL PLAIN as {authcid} for {authzid}")
            }
            LoginMethod::Xoauth2 { user } => write!(f, "XOAUTH2 for {user}"),
        }
    }
}

/// What the server offers, as far as choosing a login goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerAuth {
    /// `AUTH=PLAIN` is advertised.
    pub plain: bool,
    /// `LOGINDISABLED` is advertised.
    pub login_disabled: bool,
}

/// Chooses how to log in with a CSV `UserName`.
pub fn login_method(user_name: &str, choice: AuthChoice, server: ServerAuth) -> LoginMethod {
    let format = LoginFormat::of(user_name);
    let as_plain = || match &format {
        LoginFormat::DovecotMaster { user, admin } => LoginMethod::Plain {
            authzid: user.clone(),
            authcid: admin.clone(),
        },
        _ => LoginMethod::Plain {
            authzid: String::new(),
            authcid: user_name.to_owned(),
        },
    };
    match choice {
        AuthChoice::Login => LoginMethod::Login {
            username: user_name.to_owned(),
        },
        AuthChoice::Plain => as_plain(),
        AuthChoice::Xoauth2 => LoginMethod::Xoauth2 {
            user: user_name.to_owned(),
        },
        AuthChoice::Auto => {
            let master = matches!(format, LoginFormat::DovecotMaster { .. });
            if server.plain && (master || server.login_disabled) {
                as_plain()
            } else {
                LoginMethod::Login {
                    username: user_name.to_owned(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_four_formats() {
        assert_eq!(LoginFormat::of("terry.adams"), LoginFormat::Own);
        assert_eq!(
            LoginFormat::of("contoso-students/mailadmin/terry.adams"),
            LoginFormat::Exchange {
                admin: "mailadmin".into(),
                user: "terry.adams".into()
            }
        );
        assert_eq!(
            LoginFormat::of("terry.adams*mailadmin"),
            LoginFormat::DovecotMaster {
                user: "terry.adams".into(),
                admin: "mailadmin".into()
            }
        );
        assert_eq!(
            LoginFormat::of("#terry.adams@contoso-students.edu#mailadmin#"),
            LoginFormat::Mirapoint {
                user: "terry.adams@contoso-students.edu".into(),
                admin: "mailadmin".into()
            }
        );
        for own in ["a/b", "/x/y", "*admin", "user*", "#a#", "a@b.c"] {
            assert_eq!(LoginFormat::of(own), LoginFormat::Own, "{own}");
        }
    }

    #[test]
    fn master_users_go_by_plain_authzid_when_offered() {
        let plain = ServerAuth {
            plain: true,
            login_disabled: false,
        };
        assert_eq!(
            login_method("bob*mailadmin", AuthChoice::Auto, plain),
            LoginMethod::Plain {
                authzid: "bob".into(),
                authcid: "mailadmin".into()
            }
        );
        assert_eq!(
            login_method("bob*mailadmin", AuthChoice::Auto, ServerAuth::default()),
            LoginMethod::Login {
                username: "bob*mailadmin".into()
            }
        );
        assert_eq!(
            login_method("bob*mailadmin", AuthChoice::Login, plain),
            LoginMethod::Login {
                username: "bob*mailadmin".into()
            }
        );
        assert_eq!(
            login_method("bob", AuthChoice::Auto, plain),
            LoginMethod::Login {
                username: "bob".into()
            }
        );
        let no_login = ServerAuth {
            plain: true,
            login_disabled: true,
        };
        assert_eq!(
            login_method("bob", AuthChoice::Auto, no_login).to_string(),
            "SASL PLAIN as bob"
        );
        assert_eq!("XOAUTH2".parse::<AuthChoice>(), Ok(AuthChoice::Xoauth2));
        assert!("cram".parse::<AuthChoice>().is_err());
    }

    #[test]
    fn auth_names_parse_back() {
        for c in AuthChoice::ALL {
            assert_eq!(c.as_str().parse::<AuthChoice>(), Ok(c));
        }
    }
}
