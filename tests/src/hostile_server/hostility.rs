//! The ways the scripted server misbehaves, one step each.

/// How the server misbehaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hostility {
    /// Not at all (the baseline every scenario spoils).
    None,
    /// A BODYSTRUCTURE nested this deep: in an unsolicited FETCH before the bodies, and
    /// beside the UID and body of each body FETCH response.
    DeepFetch(usize),
    /// After LIST's entry, this many random bytes, then silence (the link stays open).
    GarbageAfterList(usize),
    /// LIST answered with a line that never ends.
    EndlessLine,
    /// Each body comes with this many more `BODY[]` literals in the same FETCH response.
    ManyLiterals(usize),
    /// EXAMINE answered with untagged EXISTS without end.
    ExistsFlood,
    /// The metadata `UID FETCH` answered with FETCH responses for ever new UIDs, without end.
    FetchFlood,
    /// This banner instead of a greeting, then nothing.
    Banner(Vec<u8>),
    /// Accepts connections and says nothing (as a TLS port does to a client without TLS).
    Silent,
    /// INBOX deleted and recreated right after the first EXAMINE the server answers (on any
    /// connection): every later EXAMINE shows UIDVALIDITY 8 instead of 7, the same mail.
    RecreatedAfterFirstExamine,
    /// A body `UID FETCH` whose set holds this UID is answered `NO [SERVERBUG]` with no
    /// data at all, as servers do with a damaged message (Exchange, Zimbra): the other
    /// messages are sent only when asked for without it.
    UnreadableBody(u32),
    /// Every FETCH response (metadata and body) followed by an unsolicited `* n FETCH (UID u
    /// FLAGS (…))` for the same message, as a server does when another session changes its
    /// flags meanwhile (RFC 3501 7.4.2; with UID, as RFC 7162 3.2.4 asks).
    FlagUpdates,
    /// The body of this UID answered `* n FETCH (UID u BODY[] NIL)`: expunged by another
    /// session between the listing and the fetch (Dovecot, Cyrus).
    NilBody(u32),
    /// `* 1 EXPUNGE` after the first body response: the following responses' sequence
    /// numbers shift down by one.
    ExpungeBetweenBodies,
    /// LIST names `INBOX` twice.
    ListedTwice,
    /// LIST also names a folder `Locked` whose EXAMINE is refused `NO [NOPERM]` (an ACL that
    /// allows listing and not reading, a damaged folder).
    FolderRefused,
    /// EXAMINE without UIDVALIDITY and UIDNEXT (RFC 3501 6.3.1: then UIDs need not persist).
    NoUidValidity,
    /// Body answers with FLAGS first, the body as `BODY[]<0>` and the UID after it.
    OddBodyAnswers,
    /// The body of this UID answered with a zero-length literal `BODY[] {0}`.
    EmptyBody(u32),
    /// Every body answer sent twice in a row.
    DuplicateBodies,
    /// LIST names `INBOX`, `Doomed` and `Later`; `Doomed` opens once, then it is deleted:
    /// every later EXAMINE of it is answered `NO [NONEXISTENT]` (a user deleting a folder
    /// while the pass runs, between its listing and its bodies).
    DeletedMidPass,
    /// EXAMINE announces `UIDNEXT 1` whatever the folder holds (a stale UIDNEXT).
    StaleUidNext,
    /// The body of this UID sent as a literal of [`OVERSIZED`] bytes (its RFC822.SIZE far
    /// understated), past the extractor's 64 MiB streaming limit.
    OversizedBody(u32),
    /// A body `UID FETCH` answered with its first body only, then `* BYE` and the link
    /// closed (a server shutting down or recycling its process mid-fetch).
    ByeAfterFirstBody,
    /// This UID was expunged by another session: a body `UID FETCH` holding it sends the
    /// other bodies, then completes `NO [EXPUNGEISSUED]` (Dovecot, RFC 5530).
    ExpungeIssued(u32),
    /// [`Hostility::NilBody`] for this UID, and each metadata answer followed by unsolicited
    /// `FETCH (UID u FLAGS …)` for every other message (another session changing flags).
    NilBodyAmidUpdates(u32),
    /// LIST also names a folder `Damaged` that opens, but whose metadata `UID FETCH` is
    /// answered `NO [SERVERBUG]`.
    ListingRefused,
    /// A body `UID FETCH` answered with keepalives without end, every 100 ms and never the
    /// tagged answer: `* OK still here`, `* n EXISTS`, `* OK [ALERT]`, flag-only FETCH
    /// responses (a server that keeps the link alive and never finishes).
    KeepaliveFlood,
    /// [`Hostility::KeepaliveFlood`] whose flag-only FETCH names the UID asked for
    /// (`* 1 FETCH (UID 1 FLAGS (\Seen))`): that message is recorded failed on every
    /// attempt, which must not count as progress each time.
    FlagsOnlyFlood,
    /// A body `UID FETCH` answered with the first body's literal trickling in a byte every
    /// 250 ms.
    ByteTrickle,
    /// EXAMINE without `* n EXISTS`.
    NoExists,
    /// EXAMINE with `UIDVALIDITY 0` (RFC 3501 2.3.1.1: it must be nonzero).
    ZeroUidValidity,
}

/// The literal length of [`Hostility::OversizedBody`].
pub const OVERSIZED: usize = 65 << 20;
