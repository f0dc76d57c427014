//! A folder whose name the server sends in raw UTF-8 (not modified UTF-7, as servers in the
//! field do): read by its wire bytes, shown as UTF-8, warned about, counted in the pass's
//! outcome and in `batch status`, and the batch says so.
//!
//! Dovecot always sends modified UTF-7, so a small proxy in front of it plays such a server:
//! it sends the folder's name as raw UTF-8 and turns the raw name the client selects it by
//! back into Dovecot's form.

mod cli_support;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use anyhow::Result;
use cli_support::{Cli, text};
use mailstage_tests::Dovecot;
use mailstage_tests::fixtures::simple;
use mailstage_tests::stage_check::check_completed;

const RAW: &[u8] = "Entwürfe".as_bytes();
const MUTF7: &[u8] = b"Entw&APw-rfe";

/// `haystack` with every `from` replaced by `to`.
fn replaced(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The literal length a command line announces at its end (`{N}` or `{N+}`), if any.
fn announced(line: &[u8]) -> Option<(usize, usize)> {
    let body = line.strip_suffix(b"\r\n")?.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&body[open + 1..]);
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((open, n))
}

/// Client → server: a literal holding the raw name goes on as Dovecot's name (LITERAL+).
fn up(client: TcpStream, mut server: TcpStream) -> io::Result<()> {
    let mut to_client = client.try_clone()?;
    let mut from = BufReader::new(client);
    let mut line = Vec::new();
    loop {
        line.clear();
        if from.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let Some((open, n)) = announced(&line) else {
            server.write_all(&line)?;
            continue;
        };
        if !line.ends_with(b"+}\r\n") {
            to_client.write_all(b"+ go on\r\n")?;
        }
        let mut literal = vec![0; n];
        from.read_exact(&mut literal)?;
        if literal == RAW {
            literal = MUTF7.to_vec();
        }
        server.write_all(&line[..open])?;
        server.write_all(format!("{{{}+}}\r\n", literal.len()).as_bytes())?;
        server.write_all(&literal)?;
    }
}

/// Server → client: the name as raw UTF-8, quoted.
fn down(server: TcpStream, mut client: TcpStream) -> io::Result<()> {
    let mut from = BufReader::new(server);
    let mut line = Vec::new();
    let quoted = [&b"\""[..], RAW, b"\""].concat();
    loop {
        line.clear();
        if from.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        client.write_all(&replaced(&line, MUTF7, &quoted))?;
    }
}

/// Starts the proxy in front of `upstream`; returns its port.
fn raw_utf8_server(upstream: u16) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                continue;
            };
            std::thread::spawn(move || up(client, server));
            std::thread::spawn(move || down(s2, c2));
        }
    });
    Ok(port)
}

#[test]
fn a_raw_utf8_folder_name_is_staged_by_its_bytes_warned_about_and_counted() -> Result<()> {
    let d = Dovecot::builder().user("frank", "frank-pw").start()?;
    d.write_message_at("frank", "INBOX", &[], 1_690_000_000, &simple(1))?;
    // Made on disk, as another tool would: Dovecot lists the name with the bytes it finds.
    d.create_folder("frank", "Entwürfe")?;
    d.write_message_at("frank", "Entwürfe", &[], 1_690_000_001, &simple(2))?;
    let port = raw_utf8_server(d.port())?;

    let cli = Cli::new();
    cli.endpoint_on("src", port);
    cli.batch("b1", "src", &["frank@contoso.edu,frank,frank-pw"]);
    let out = cli.run(&["batch", "start", "b1"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("folder name is not modified UTF-7") && shown.contains("Entwürfe"),
        "{shown}"
    );
    assert!(
        shown.contains("1 folder name(s) not modified UTF-7"),
        "{shown}"
    );

    let rows = check_completed(&cli.stage())?;
    let folders: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(folders, ["Entwürfe", "INBOX"], "{rows:?}");
    assert!(rows.iter().all(|r| r.7 == "staged"), "{rows:?}");

    let status = cli.json(&["batch", "status", "b1"]);
    assert_eq!(status["totals"]["folders_not_mutf7"], 1, "{status}");
    assert_eq!(status["batch"]["state"], "SyncedWithErrors", "{status}");
    let listed = cli.ok(&["batch", "status", "b1"]);
    assert!(
        listed.contains("1 named outside modified UTF-7"),
        "{listed}"
    );

    // The next pass finds the folder again by its bytes: nothing new, still counted.
    let again = cli.run(&["batch", "sync", "b1"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert_eq!(check_completed(&cli.stage())?.len(), 2);
    Ok(())
}
