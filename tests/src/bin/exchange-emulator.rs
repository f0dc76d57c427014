//! The Exchange emulator ([`mailstage_tests::exchange_proxy`]) in front of a server on a
//! loopback port, for `scripts/bench.sh upload --budget N`:
//! `exchange-emulator UPSTREAM_PORT [APPENDS_PER_SECOND_PER_MAILBOX]`. Prints `PORT=…`,
//! runs until its standard input closes, then prints a line per target mailbox:
//! `MAILBOX address admitted N throttled M`, and `END`.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use mailstage_tests::exchange_proxy::{ExchangeProxy, ExchangeRules};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: exchange-emulator UPSTREAM_PORT [APPENDS_PER_SECOND_PER_MAILBOX]";
    let upstream: u16 = args.next().context(usage)?.parse().context(usage)?;
    let budget: Option<f64> = args.next().map(|b| b.parse()).transpose().context(usage)?;
    let proxy = ExchangeProxy::start(
        upstream,
        ExchangeRules {
            budget_per_second: budget,
            ..ExchangeRules::default()
        },
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "PORT={}", proxy.port())?;
    out.flush()?;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    let budgets = &proxy.stats().budgets;
    let throttled = budgets.throttled();
    for (mailbox, admitted) in budgets.admitted() {
        let t = throttled.get(&mailbox).copied().unwrap_or(0);
        writeln!(out, "MAILBOX {mailbox} admitted {admitted} throttled {t}")?;
    }
    writeln!(out, "END")?;
    out.flush()?;
    Ok(())
}
