//! Turning strings that come from servers or CSVs into single, safe path components
//! (invariant 3: nothing from a server chooses a path).

use sha2::{Digest, Sha256};

/// Longest component we produce, in bytes (file systems allow 255).
const MAX_COMPONENT: usize = 200;

/// Encodes any string as one file-name component that cannot escape its directory.
///
/// `%` escapes every byte outside a conservative set, so the mapping is injective: `/`, `\`,
/// `.` (no `.`/`..`, no hidden files, and `.` stays free as a hierarchy separator), control
/// characters, `%` itself and `:` (maildir's info separator). Printable non-ASCII stays
/// readable. The empty string becomes `%`. Names longer than 200 bytes keep their first part
/// and end in `~` plus 16 hex digits of their SHA-256, still unique in practice.
pub fn safe_component(raw: &str) -> String {
    encode(raw, false)
}

/// Like [`safe_component`] but keeps `.` inside the name (e-mail addresses stay readable);
/// a leading `.` is still escaped, so the result is never `.`, `..` or hidden.
pub fn safe_file_name(raw: &str) -> String {
    encode(raw, true)
}

fn encode(raw: &str, inner_dots: bool) -> String {
    if raw.is_empty() {
        return "%".to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        let keep = ch.is_alphanumeric() && !ch.is_control()
            || matches!(
                ch,
                ' ' | '-' | '_' | '+' | '=' | ',' | '@' | '&' | '#' | '!' | '(' | ')'
            );
        let keep = keep || (inner_dots && ch == '.' && !out.is_empty());
        if keep && !(ch == ' ' && out.is_empty()) {
            out.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    capped(out, raw)
}

/// `name` when it fits in one component (200 bytes), else its first part ending in `~` plus
/// 16 hex digits of the SHA-256 of `whole` (what `name` was made from): still unique in
/// practice, and never over the file system's 255 bytes.
pub(crate) fn capped(name: String, whole: &str) -> String {
    if name.len() <= MAX_COMPONENT {
        return name;
    }
    let mut cut = MAX_COMPONENT - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = hex::encode(&Sha256::digest(whole.as_bytes())[..8]);
    format!("{}~{digest}", &name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_names_stay_one_component() {
        assert_eq!(safe_component("../../etc"), "%2E%2E%2F%2E%2E%2Fetc");
        assert_eq!(safe_component(".."), "%2E%2E");
        assert_eq!(safe_component(""), "%");
        assert_eq!(safe_component("a\\b"), "a%5Cb");
        assert_eq!(safe_component("Entwürfe"), "Entwürfe");
        assert_eq!(safe_component("x:2,S"), "x%3A2,S");
        assert_eq!(safe_component("50%"), "50%25");
        assert_eq!(safe_file_name("alice@example.com"), "alice@example.com");
        assert_eq!(safe_file_name(".."), "%2E.");
        assert_eq!(safe_file_name("../x"), "%2E.%2Fx");
    }

    #[test]
    fn long_names_are_cut_with_a_hash() {
        let a = safe_component(&"ä".repeat(300));
        let b = safe_component(&format!("{}x", "ä".repeat(299)));
        assert!(a.len() <= MAX_COMPONENT && b.len() <= MAX_COMPONENT);
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn never_a_path(raw in any::<String>()) {
            let c = safe_component(&raw);
            prop_assert!(!c.is_empty() && c.len() <= MAX_COMPONENT);
            prop_assert!(!c.contains('/') && !c.contains('\0') && !c.contains('.'));
            prop_assert!(!c.chars().any(char::is_control));
        }

        #[test]
        fn distinct_names_stay_distinct(a in ".{0,40}", b in ".{0,40}") {
            prop_assume!(a != b);
            prop_assert_ne!(safe_component(&a), safe_component(&b));
            prop_assert_ne!(safe_file_name(&a), safe_file_name(&b));
        }

        #[test]
        fn file_names_never_escape(raw in any::<String>()) {
            let c = safe_file_name(&raw);
            prop_assert!(!c.contains('/') && !c.starts_with('.') && !c.chars().any(char::is_control));
        }
    }
}
