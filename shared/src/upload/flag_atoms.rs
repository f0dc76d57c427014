//! The flags an APPEND may carry: staged flags come from the source's FETCH as the tolerant
//! parser read them, so one may hold bytes no IMAP flag can (`)`, `{`, a space, 8-bit);
//! sent raw, such a flag would break the command. `\Recent` is never sent (RFC 3501: the
//! server sets it).

/// Whether `b` may appear in an atom (RFC 3501 ATOM-CHAR).
fn atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && !b"(){%*\"\\]".contains(&b)
}

/// Whether `flag` is a system flag (`\` and an atom) or a keyword (an atom).
fn is_flag(flag: &str) -> bool {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    !atom.is_empty() && atom.bytes().all(atom_char)
}

/// The staged flags (space-separated) that can go into an APPEND; the others are dropped
/// with a warning naming them (escaped).
pub(crate) fn sendable(staged: &str) -> Vec<String> {
    staged
        .split_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .filter(|f| {
            let ok = is_flag(f);
            if !ok {
                tracing::warn!(flag = %f.escape_debug(), "not a valid IMAP flag: not sent");
            }
            ok
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_that_would_break_the_command_are_dropped() {
        assert_eq!(
            sendable("\\Seen \\Recent $Label1 \\Flagged Junk"),
            ["\\Seen", "$Label1", "\\Flagged", "Junk"]
        );
        for bad in [
            "a)b",
            "x{3}",
            "\\",
            "\\Seen)",
            "q\"",
            "back\\slash",
            "br]",
            "ünï",
            "%",
            "*",
        ] {
            assert!(sendable(bad).is_empty(), "{bad:?}");
        }
        assert_eq!(sendable("\\Answered {5} ok"), ["\\Answered", "ok"]);
    }
}
