//! A distant server on loopback, for `scripts/bench.sh extract --rtt 40ms`.
//!
//! `delay-proxy TARGET_PORT RTT [LISTEN_PORT]` listens on a loopback port (LISTEN_PORT, or a
//! free one when it is 0 or absent) and forwards each connection
//! to `127.0.0.1:TARGET_PORT`, delivering each direction's bytes RTT/2 after it read them (a
//! delay line: order and throughput kept). RTT is `40ms`, `0.04s` or milliseconds (`40`).
//! Prints `PORT=N`, then runs until its standard input closes; then prints what it carried
//! (`CONNECTIONS`, `COMMANDS`, `TURNS`, `COMMANDS_BY_NAME`) as `KEY=value` lines.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use mailstage_tests::fault_proxy::{FaultProxy, Faults};

/// `40ms`, `0.04s`, `40` (milliseconds) → a duration.
fn parse_rtt(s: &str) -> Result<Duration> {
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(p) => s.split_at(p),
        None => (s, "ms"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("RTT {s:?}: not a number"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "us" => n / 1e6,
        _ => bail!("RTT {s:?}: the unit must be ms, s or us"),
    };
    if !(0.0..=60.0).contains(&secs) {
        bail!("RTT {s:?}: between 0 and 60 s");
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (target, rtt, listen) = match args.as_slice() {
        [target, rtt] => (target, rtt, "0"),
        [target, rtt, listen] => (target, rtt, listen.as_str()),
        _ => {
            bail!("usage: delay-proxy TARGET_PORT RTT [LISTEN_PORT] (e.g. delay-proxy 10143 40ms)")
        }
    };
    let target: u16 = target.parse().context("TARGET_PORT")?;
    let listen: u16 = listen.parse().context("LISTEN_PORT")?;
    let rtt = parse_rtt(rtt)?;
    let proxy = FaultProxy::start_on(listen, target, Faults::rtt(rtt))
        .with_context(|| format!("starting the proxy on port {listen}"))?;
    println!("PORT={}", proxy.port());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let c = proxy.commands();
    println!("CONNECTIONS={}", proxy.connections());
    println!("COMMANDS={}", c.commands());
    println!("TURNS={}", c.turns());
    let by_name: Vec<String> = c
        .by_name()
        .iter()
        .map(|(k, v)| format!("{}:{v}", k.replace(' ', "_")))
        .collect();
    println!("COMMANDS_BY_NAME={}", by_name.join(","));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_rtt;
    use std::time::Duration;

    #[test]
    fn rtts() {
        assert_eq!(parse_rtt("40ms").unwrap(), Duration::from_millis(40));
        assert_eq!(parse_rtt("0.04s").unwrap(), Duration::from_millis(40));
        assert_eq!(parse_rtt("40").unwrap(), Duration::from_millis(40));
        assert!(parse_rtt("40h").is_err());
        assert!(parse_rtt("fast").is_err());
    }
}
