//! What the binaries show an admin: aligned tables and `Key : value` lists ([`table`]), and
//! live progress ([`bars`]): indicatif bars on a terminal, plain log lines elsewhere.

pub mod bars;
pub mod table;

/// Writes a value as pretty JSON and a newline.
pub fn print_json(
    out: &mut dyn std::io::Write,
    value: &impl serde::Serialize,
) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}
