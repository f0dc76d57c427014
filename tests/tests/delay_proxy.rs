//! The delay proxy (`Faults::rtt`) in front of a real Dovecot: each command waits a round
//! trip, a pipelined burst waits one, a large body streams at loopback speed plus one round
//! trip (a delay line, not a sleep per write), bytes arrive intact, and the proxy counts the
//! commands and turns it carried.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use mailstage_tests::fault_proxy::{FaultProxy, Faults};
use mailstage_tests::{Dovecot, Probe};

const RTT: Duration = Duration::from_millis(100);

#[test]
fn delays_each_round_trip_keeps_throughput_and_counts_commands() -> Result<()> {
    let d = Dovecot::builder().user("rita", "rita-pw").start()?;
    d.write_sized("rita", &["INBOX"], &[8_000_000, 3_000], 3)?;
    let proxy = FaultProxy::start(d.port(), Faults::rtt(RTT))?;

    // One command, one round trip.
    let started = Instant::now();
    let mut far = Probe::connect(proxy.port())?;
    ensure!(
        started.elapsed() >= RTT / 2,
        "the greeting came in {:?}",
        started.elapsed()
    );
    far.login("rita", "rita-pw")?.ok()?;
    far.examine("INBOX")?.ok()?;
    let started = Instant::now();
    far.command("NOOP")?.ok()?;
    let noop = started.elapsed();
    ensure!(
        noop >= RTT,
        "a NOOP took {noop:?} through a {RTT:?} round trip"
    );

    // A large body: the same bytes as directly, in about one round trip more, not a delay
    // per piece (8 MB in 64 KiB pieces would take 128 × 50 ms = 6.4 s).
    let mut near = d.login("rita")?;
    near.examine("INBOX")?.ok()?;
    let uid = near.uids()?[0];
    let started = Instant::now();
    let direct = near.fetch_body(uid)?;
    let direct_time = started.elapsed();
    let started = Instant::now();
    let delayed = far.fetch_body(uid)?;
    let delayed_time = started.elapsed();
    ensure!(
        direct.len() >= 8_000_000 && direct == delayed,
        "bytes differ"
    );
    ensure!(
        delayed_time < direct_time * 3 + RTT + Duration::from_millis(1500),
        "8 MB took {delayed_time:?} through the proxy, {direct_time:?} directly"
    );
    far.logout()?;

    // Twenty commands in one write: one round trip, twenty commands, one turn.
    let stream = TcpStream::connect(("127.0.0.1", proxy.port()))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    writer.write_all(b"l1 LOGIN rita rita-pw\r\n")?;
    read_until_tagged(&mut reader, "l1")?;
    proxy.commands().reset();
    let burst: String = (1..=20).map(|i| format!("n{i} NOOP\r\n")).collect();
    let started = Instant::now();
    writer.write_all(burst.as_bytes())?;
    read_until_tagged(&mut reader, "n20")?;
    let pipelined = started.elapsed();
    ensure!(
        pipelined >= RTT && pipelined < RTT * 5,
        "twenty pipelined NOOPs took {pipelined:?}"
    );
    let c = proxy.commands();
    assert_eq!((c.commands(), c.named("NOOP"), c.turns()), (20, 20, 1));
    // Two commands, each waiting for the one before: two more turns.
    for (tag, command) in [("x1", "EXAMINE INBOX"), ("x2", "UID FETCH 1:* (FLAGS)")] {
        writer.write_all(format!("{tag} {command}\r\n").as_bytes())?;
        read_until_tagged(&mut reader, tag)?;
    }
    assert_eq!((c.commands(), c.named("UID FETCH"), c.turns()), (22, 1, 3));
    Ok(())
}

fn read_until_tagged(reader: &mut impl BufRead, tag: &str) -> Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        ensure!(reader.read_line(&mut line)? > 0, "closed before {tag}");
        if line.starts_with(&format!("{tag} ")) {
            ensure!(line.starts_with(&format!("{tag} OK")), "{line}");
            return Ok(());
        }
    }
}
