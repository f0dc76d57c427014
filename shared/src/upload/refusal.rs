//! What a target's refusal concerns: one message (too large, malformed: recorded, the rest
//! goes on), the folder it was sent to (no such folder, no permission: the folder's other
//! messages fail with the same words, unsent), or the whole target mailbox (over quota:
//! sending to that mailbox stops at once). Servers say it by a response code (RFC 5530)
//! or, Exchange among them, only in words.

use crate::imap::{ImapError, Status};

/// What a NO (or a BAD that is not a throttle) concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// This message only.
    Message,
    /// Every message sent to this folder.
    Folder,
    /// The whole target mailbox: it is full.
    Mailbox,
    /// Nothing for good: the server is busy or raced with itself; try again.
    Passing,
}

/// Dovecot's answer to an APPEND when two connections create a new mailbox's INBOX at the
/// same moment: passing here, though not in general.
const ALREADY_EXISTS: &str = "ALREADYEXISTS";

/// Words of "the mailbox is full" answers without an `[OVERQUOTA]` code, lower-cased:
/// Exchange ("Mailbox has exceeded maximum mailbox size.", "The mailbox is full",
/// `QuotaExceeded`), GroupWise ("The 1500 MB storage limit has been exceeded"), and the
/// generic quota wordings (Dovecot's default "Quota exceeded (mailbox for user is full)",
/// Gmail's "Account exceeded storage quota"), and a server out of disk (Dovecot's "Not
/// enough disk space"): nothing more can be stored, so sending on would only refuse every
/// message one by one.
const FULL_WORDS: [&str; 13] = [
    "quota exceeded",
    "quotaexceeded",
    "over quota",
    "exceeds quota",
    "exceeded quota",
    "storage quota",
    "mailbox is full",
    "mailbox full",
    "maximum mailbox size",
    "mailbox size limit",
    "storage limit has been exceeded",
    "not enough disk space",
    "no space left on device",
];

/// Response codes that concern the folder (RFC 5530 and RFC 3501's TRYCREATE).
const FOLDER_CODES: [&str; 4] = ["TRYCREATE", "NONEXISTENT", "NOPERM", "READ-ONLY"];

/// Words of folder refusals without a code, lower-cased (Exchange: "Access denied",
/// "The specified folder could not be found in the store", "Folder doesn't exist").
const FOLDER_WORDS: [&str; 5] = [
    "access denied",
    "permission denied",
    "could not be found in the store",
    "folder doesn't exist",
    "mailbox doesn't exist",
];

/// Response codes that say the folder does not exist (RFC 3501's TRYCREATE, RFC 5530).
const MISSING_CODES: [&str; 2] = ["TRYCREATE", "NONEXISTENT"];

/// Words of "no such folder" answers without a code, lower-cased (Exchange's among them).
const MISSING_WORDS: [&str; 3] = [
    "could not be found in the store",
    "folder doesn't exist",
    "mailbox doesn't exist",
];

/// True when a folder refusal says the folder does not exist (it may have been deleted on
/// the target while the run was sending to it: create it again and send once more).
pub(crate) fn folder_missing(e: &ImapError) -> bool {
    let code = e.code_name().unwrap_or_default();
    let text = e
        .status()
        .map(|s| s.text.to_ascii_lowercase())
        .unwrap_or_default();
    scope(e) == Some(Scope::Folder)
        && (MISSING_CODES.contains(&code.as_str())
            || MISSING_WORDS.iter().any(|w| text.contains(w)))
}

/// True when a refusal's words (as [`crate::imap::StatusText`] renders them) carry RFC
/// 5530's `[LIMIT]`: an implementation limit "of some kind", of the message or its folder.
pub(crate) fn names_limit(words: &str) -> bool {
    words.to_ascii_uppercase().contains("[LIMIT]")
}

/// What `e` (a tagged NO or BAD that is not a throttle) concerns; `None` for anything else.
pub(crate) fn scope(e: &ImapError) -> Option<Scope> {
    let status = e.status()?;
    if !matches!(status.status, Status::No | Status::Bad) || e.throttle_backoff().is_some() {
        return None;
    }
    let code = e.code_name().unwrap_or_default();
    let text = status.text.to_ascii_lowercase();
    Some(if e.is_passing_refusal() || code == ALREADY_EXISTS {
        Scope::Passing
    } else if code == "OVERQUOTA" || FULL_WORDS.iter().any(|w| text.contains(w)) {
        Scope::Mailbox
    } else if FOLDER_CODES.contains(&code.as_str()) || FOLDER_WORDS.iter().any(|w| text.contains(w))
    {
        Scope::Folder
    } else {
        Scope::Message
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::{Code, StatusText};

    fn no(code: Option<Code>, text: &str) -> ImapError {
        ImapError::Rejected {
            command: "APPEND".into(),
            status: Box::new(StatusText {
                status: Status::No,
                code,
                text: text.into(),
            }),
        }
    }

    fn other(name: &str) -> Option<Code> {
        Some(Code::Other {
            name: name.into(),
            args: None,
        })
    }

    #[test]
    fn quota_answers_concern_the_mailbox() {
        for (code, text) in [
            (
                other("OVERQUOTA"),
                "Quota exceeded (mailbox for user is full)",
            ),
            (None, "Mailbox has exceeded maximum mailbox size."),
            (None, "APPEND failed: The mailbox is full."),
            (None, "QuotaExceededException"),
            (None, "The 1500 MB storage limit has been exceeded."),
            (None, "Account exceeded storage quota"),
            (None, "Mailbox size limit exceeded"),
            (other("SERVERBUG"), "Not enough disk space"),
        ] {
            assert_eq!(scope(&no(code, text)), Some(Scope::Mailbox), "{text}");
        }
    }

    #[test]
    fn folder_and_message_refusals_are_told_apart() {
        assert_eq!(
            scope(&no(other("TRYCREATE"), "Mailbox doesn't exist: X")),
            Some(Scope::Folder)
        );
        assert_eq!(scope(&no(None, "Access denied")), Some(Scope::Folder));
        assert!(folder_missing(&no(
            other("TRYCREATE"),
            "Mailbox doesn't exist: X"
        )));
        assert!(folder_missing(&no(
            None,
            "The specified folder could not be found in the store"
        )));
        assert!(!folder_missing(&no(None, "Access denied")));
        assert!(!folder_missing(&no(other("NOPERM"), "Permission denied")));
        for text in [
            "Maximum size of appendable message has been exceeded.",
            "Message contains invalid header",
        ] {
            assert_eq!(scope(&no(None, text)), Some(Scope::Message), "{text}");
        }
        assert_eq!(
            scope(&no(other("ALREADYEXISTS"), "Mailbox already exists")),
            Some(Scope::Passing)
        );
        for text in [
            "Server Unavailable. 15",
            "User is authenticated but not connected.",
            "Service temporarily unavailable, try again later",
        ] {
            assert_eq!(scope(&no(None, text)), Some(Scope::Passing), "{text}");
        }
        assert_eq!(
            scope(&no(other("UNAVAILABLE"), "Backend down")),
            Some(Scope::Passing)
        );
        let throttle = no(
            None,
            "Request is throttled. Suggested Backoff Time: 5 milliseconds",
        );
        assert_eq!(scope(&throttle), None);
        for garbled in [
            "Request is throttled. Suggested Backoff Time: NaN milliseconds",
            "Request is throttled.",
        ] {
            assert_eq!(scope(&no(None, garbled)), None, "{garbled}");
        }
        assert_eq!(scope(&no(other("THROTTLED"), "Slow down")), None);
        assert_eq!(scope(&ImapError::Unusable), None);
    }
}
