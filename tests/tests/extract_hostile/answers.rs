//! Answers real servers give that the extractor must take in its stride: unsolicited flag
//! changes amid the answers, bodies that are NIL, empty, repeated, far too long or shaped
//! differently, folders listed twice, refused or deleted mid-pass, a stale UIDNEXT, no
//! UIDVALIDITY, a BYE or `NO [EXPUNGEISSUED]` amid the bodies.

use super::*;

/// One text per staged message of INBOX, in UID order, from the stage's index.
fn inbox_rows(cli: &Cli, column: &str) -> Result<Vec<String>> {
    let conn = rusqlite::Connection::open(cli.stage().join("index.sqlite"))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT m.uid || ' ' || m.state || ' ' || coalesce({column}, '-') FROM messages m \
         JOIN folders f ON f.id = m.folder_id WHERE f.name = 'INBOX' ORDER BY m.uid"
    ))?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A first pass against a server with `hostility` that stages both messages of INBOX under
/// their UIDs, with their sizes (42 and 43 bytes); returns the CLI and the server.
fn stages_both(hostility: Hostility) -> Result<(Cli, HostileServer)> {
    let server = HostileServer::start(two_mails(), hostility)?;
    let cli = staged(&server, 2);
    assert_eq!(inbox_rows(&cli, "m.size")?, ["1 staged 42", "2 staged 43"]);
    Ok((cli, server))
}

/// A first pass against a server with `hostility` that records UID 1 of INBOX failed and
/// stages UID 2, on one connection besides the reachability check, the stage clean; returns
/// UID 1's row (`1 failed <reason>`).
fn first_fails_alone(hostility: Hostility) -> Result<String> {
    let server = HostileServer::start(two_mails(), hostility)?;
    let cli = batch_on(server.port());
    let run = extract(&cli, &["batch", "start", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert!(run.text.contains(&format!("{ALICE}: 1 staged")), "{run}");
    assert!(run.text.contains("1 failed"), "{run}");
    assert_eq!(server.connections(), 2, "{run}");
    let mut rows = inbox_rows(&cli, "m.reason")?;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1], "2 staged -");
    assert!(cli.ok(&["verify"]).contains("result: clean"));
    Ok(rows.swap_remove(0))
}

/// A first pass against a server with `hostility` that must end with the mailbox Failed
/// (exit status 1) after `staged` messages of the other folders were staged, naming
/// `folder` and the server's `words`, on one connection besides the reachability check;
/// the stage verifies clean. Returns the CLI for more checks.
fn folder_fails_after_the_rest(
    hostility: Hostility,
    staged: u32,
    folder: &str,
    words: &str,
) -> Result<Cli> {
    let server = HostileServer::start(two_mails(), hostility)?;
    let cli = batch_on(server.port());
    let run = extract(&cli, &["batch", "start", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.text.contains(&format!("{ALICE}: {staged} staged")),
        "{run}"
    );
    assert!(
        run.text.contains(&format!("\"{folder}\"")) && run.text.contains(words),
        "{run}"
    );
    // A refusal is not retried by reconnecting: the reachability check and one attempt.
    assert_eq!(server.connections(), 2, "{run}");
    assert!(cli.ok(&["verify"]).contains("result: clean"));
    Ok(cli)
}

/// Another session changing flags meanwhile: each FETCH answer (metadata and body) followed
/// by an unsolicited `FETCH (UID u FLAGS …)` for the same message. Such an update neither
/// replaces the listed metadata (size, INTERNALDATE) nor counts as a message sent without
/// its body.
#[test]
fn flag_updates_interleaved_with_fetch_answers_change_nothing_staged() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::FlagUpdates)?;
    let cli = staged(&server, 2);
    let rows = inbox_rows(&cli, "m.internaldate || ' ' || m.size")?;
    assert_eq!(
        rows,
        [
            "1 staged 17-Jul-1996 02:44:25 -0700 42",
            "2 staged 17-Jul-1996 02:44:25 -0700 43"
        ]
    );
    Ok(())
}

/// A message expunged by another session between the listing and the fetch, answered
/// `BODY[] NIL`: that message is recorded failed with the cause, the other staged.
#[test]
fn a_body_answered_nil_fails_that_message_alone() -> Result<()> {
    let first = first_fails_alone(Hostility::NilBody(1))?;
    assert!(
        first.starts_with("1 failed ") && first.contains("no body"),
        "{first}"
    );
    Ok(())
}

/// `* 1 EXPUNGE` between two body answers (the next answer's sequence number shifts): both
/// bodies are staged under their UIDs.
#[test]
fn an_expunge_between_body_answers_stages_both_by_uid() -> Result<()> {
    stages_both(Hostility::ExpungeBetweenBodies)?;
    Ok(())
}

/// LIST naming the same folder twice: it is read once.
#[test]
fn a_folder_listed_twice_is_read_once() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::ListedTwice)?;
    let cli = staged(&server, 2);
    let status = cli.ok(&["batch", "status", "b", "--users"]);
    assert!(status.contains("Synced"), "{status}");
    Ok(())
}
/// A listed folder whose EXAMINE is refused (`NO [NOPERM]`): the other folders are staged,
/// and the mailbox ends Failed naming the folder and the server's words, not Synced.
#[test]
fn a_folder_that_cannot_be_opened_fails_the_mailbox_after_the_others_are_staged() -> Result<()> {
    let cli =
        folder_fails_after_the_rest(Hostility::FolderRefused, 2, "Locked", "Permission denied")?;
    let status = cli.ok(&["batch", "status", "b", "--users"]);
    assert!(status.contains("Failed"), "{status}");
    assert_eq!(inbox_rows(&cli, "m.size")?, ["1 staged 42", "2 staged 43"]);
    Ok(())
}

/// EXAMINE without UIDVALIDITY (and UIDNEXT): the folder is staged, and a second pass finds
/// nothing new.
#[test]
fn a_folder_opened_without_uidvalidity_is_staged_once() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::NoUidValidity)?;
    let cli = staged(&server, 2);
    let run = extract(&cli, &["batch", "sync", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.text.contains(&format!("{ALICE}: 0 staged")), "{run}");
    Ok(())
}

/// EXAMINE without `* n EXISTS`: the messages are counted another way (UID SEARCH ALL)
/// and staged, not the folder read as empty and Synced with nothing staged.
#[test]
fn a_folder_opened_without_exists_is_not_read_as_empty() -> Result<()> {
    stages_both(Hostility::NoExists)?;
    Ok(())
}

/// `UIDVALIDITY 0` (RFC 3501 forbids it) is taken as a missing UIDVALIDITY, with a warning:
/// staged once, a second pass finds nothing new.
#[test]
fn uidvalidity_0_is_taken_as_missing_with_a_warning() -> Result<()> {
    let (cli, _server) = stages_both(Hostility::ZeroUidValidity)?;
    let run = extract(&cli, &["batch", "sync", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.text.contains(&format!("{ALICE}: 0 staged")), "{run}");
    assert!(
        run.text
            .contains("no UIDVALIDITY, or 0 (RFC 3501 forbids it)"),
        "{run}"
    );
    Ok(())
}

/// Body answers in another shape: FLAGS first, `BODY[]<0>` for a plain `BODY[]`, the UID
/// after the literal. Each body is staged under its UID.
#[test]
fn body_answers_with_the_uid_last_and_an_origin_stage_by_uid() -> Result<()> {
    stages_both(Hostility::OddBodyAnswers)?;
    Ok(())
}

/// Each body answer sent twice: each message staged once.
#[test]
fn a_body_answer_sent_twice_stages_the_message_once() -> Result<()> {
    stages_both(Hostility::DuplicateBodies)?;
    Ok(())
}

/// A body answered with a zero-length literal for a message RFC822.SIZE says is not empty:
/// not staged as an empty message but recorded failed with the cause (the next pass tries
/// it again), the other staged.
#[test]
fn an_empty_body_literal_is_not_staged_as_the_message() -> Result<()> {
    let first = first_fails_alone(Hostility::EmptyBody(1))?;
    assert_eq!(
        first,
        "1 failed the server sent an empty body for a message of 42 bytes (RFC822.SIZE)"
    );
    Ok(())
}

/// A folder deleted while the pass runs, between its listing and its bodies (its second
/// EXAMINE answered `NO [NONEXISTENT]`): the folders after it are still read, and the
/// mailbox fails naming it and the server's words, on one connection.
#[test]
fn a_folder_deleted_between_listing_and_bodies_does_not_stop_the_folders_after_it() -> Result<()> {
    folder_fails_after_the_rest(Hostility::DeletedMidPass, 4, "Doomed", "NONEXISTENT")?;
    Ok(())
}

/// EXAMINE announcing a stale `UIDNEXT 1` over a folder of two messages: the folder the
/// stage holds nothing of is listed all the same, and both are staged.
#[test]
fn a_stale_uidnext_does_not_hide_a_new_folder() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::StaleUidNext)?;
    staged(&server, 2);
    Ok(())
}

/// A body sent far longer than its RFC822.SIZE, past the 64 MiB streaming limit: read and
/// dropped, that message recorded failed with the cause, the other staged on the same
/// connection (it failed the whole mailbox before).
#[test]
fn a_body_far_over_its_announced_size_fails_that_message_alone() -> Result<()> {
    let first = first_fails_alone(Hostility::OversizedBody(1))?;
    assert!(
        first.starts_with("1 failed the server sent a body of 68157440 bytes"),
        "{first}"
    );
    Ok(())
}

/// `* BYE` after the first body of each fetch, the link closed: what arrived is kept, the
/// pass reconnects and goes on from there until every message is staged.
#[test]
fn a_bye_in_the_middle_of_the_bodies_reconnects_and_finishes() -> Result<()> {
    let (_, server) = stages_both(Hostility::ByeAfterFirstBody)?;
    // The reachability check, then one attempt per body and the one that finds the end.
    assert!(server.connections() >= 3, "{}", server.connections());
    Ok(())
}

/// A body fetch completed `NO [EXPUNGEISSUED]` after the bodies of the messages still
/// there: those are staged, the expunged one recorded failed with the server's words.
#[test]
fn a_fetch_completed_expungeissued_stages_the_messages_still_there() -> Result<()> {
    let first = first_fails_alone(Hostility::ExpungeIssued(1))?;
    assert!(
        first.starts_with("1 failed") && first.contains("EXPUNGEISSUED"),
        "{first}"
    );
    Ok(())
}

/// A stale `UIDNEXT 1` on later passes too: a message that arrives after the first pass is
/// still found (the server holds more messages than the stage has rows for).
#[test]
fn a_stale_uidnext_does_not_hide_new_mail_from_a_later_pass() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::StaleUidNext)?;
    server.hide_last(true);
    let cli = staged(&server, 1);
    server.hide_last(false);
    let run = extract(&cli, &["batch", "sync", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.text.contains(&format!("{ALICE}: 1 staged")), "{run}");
    assert_eq!(inbox_rows(&cli, "m.size")?, ["1 staged 42", "2 staged 43"]);
    Ok(())
}

/// A failed message read again by the next pass while another session changes the flags
/// of the staged ones: only the failed one is listed again, nothing staged is fetched twice.
#[test]
fn rereading_a_failed_message_amid_flag_changes_fetches_only_it() -> Result<()> {
    let server = HostileServer::start(two_mails(), Hostility::NilBodyAmidUpdates(1))?;
    let cli = batch_on(server.port());
    let run = extract(&cli, &["batch", "start", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert!(run.text.contains(&format!("{ALICE}: 1 staged")), "{run}");
    let run = extract(&cli, &["batch", "sync", "b", "--quiet"]).sane(Duration::from_secs(30));
    assert!(
        run.text.contains(&format!("{ALICE}: 0 staged")) && run.text.contains("1 failed"),
        "{run}"
    );
    assert!(cli.ok(&["verify"]).contains("result: clean"));
    Ok(())
}

/// A folder that opens but whose metadata listing is refused (`NO [SERVERBUG]`): the other
/// folders are staged, then the mailbox fails naming it and the server's words.
#[test]
fn a_folder_whose_listing_is_refused_fails_the_mailbox_after_the_others_are_staged() -> Result<()> {
    folder_fails_after_the_rest(Hostility::ListingRefused, 2, "Damaged", "SERVERBUG")?;
    Ok(())
}
