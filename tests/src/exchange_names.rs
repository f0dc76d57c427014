//! Microsoft 365's folder names, as the Exchange emulator keeps them: compared without
//! regard to case. The emulator learns the target's folders from the server's LIST answers
//! (and the CREATEs it passes on); a command naming a case variant of a known folder is
//! sent on with the known spelling, and a CREATE of one is answered as Exchange answers it.

use std::collections::HashMap;
use std::sync::Mutex;

/// Exchange's answer to a CREATE of a folder that exists (whatever the case).
pub const ALREADY_EXISTS: &str = "NO Mailbox already exists.";

/// The folders the emulator knows, by lower-cased name.
#[derive(Debug, Default)]
pub struct KnownFolders {
    names: Mutex<HashMap<String, String>>,
    /// Bytes of the server's last unfinished line.
    partial: Mutex<Vec<u8>>,
}

impl KnownFolders {
    /// Records a folder name (the first spelling seen wins).
    pub fn learn(&self, name: &str) {
        let mut names = self.names.lock().unwrap();
        names
            .entry(name.to_lowercase())
            .or_insert_with(|| name.to_owned());
    }

    /// Reads server output for `* LIST` lines and learns their names.
    pub fn scan_server(&self, bytes: &[u8]) {
        let mut partial = self.partial.lock().unwrap();
        partial.extend_from_slice(bytes);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            if let Some(rest) = text.strip_prefix("* LIST ") {
                self.learn(&last_word(rest));
            }
        }
        // A literal or a body line without end: keep a bounded tail only.
        if partial.len() > 64 << 10 {
            partial.clear();
        }
    }

    /// `name` with each level spelled as the known folder that is the same without regard
    /// to case (parents first); unknown levels as given.
    pub fn canonical(&self, name: &str) -> String {
        let names = self.names.lock().unwrap();
        let levels: Vec<&str> = name.split('/').collect();
        let mut out = name.to_owned();
        for depth in 1..=levels.len() {
            let prefix = levels[..depth].join("/");
            if let Some(known) = names.get(&prefix.to_lowercase()) {
                out = format!("{known}{}", &name[prefix.len()..]);
            }
        }
        out
    }

    /// True when `name` is a known folder spelled otherwise.
    pub fn is_case_variant(&self, name: &str) -> bool {
        let names = self.names.lock().unwrap();
        names
            .get(&name.to_lowercase())
            .is_some_and(|known| known != name)
    }
}

/// The last word of a LIST line: the name, quoted or an atom.
fn last_word(rest: &str) -> String {
    let rest = rest.trim_end();
    match rest.strip_suffix('"') {
        Some(inner) => match inner.rfind(" \"") {
            Some(at) => inner[at + 2..].replace("\\\"", "\"").replace("\\\\", "\\"),
            None => String::new(),
        },
        None => rest.rsplit(' ').next().unwrap_or("").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_learned_from_list_lines_and_compared_without_case() {
        let k = KnownFolders::default();
        k.scan_server(b"* LIST (\\HasNoChildren) \"/\" \"Projects\"\r\n* LIST () \"/\" Pro");
        k.scan_server(b"jects/Q1\r\na1 OK done\r\n");
        assert!(k.is_case_variant("projects"));
        assert!(!k.is_case_variant("Projects"));
        assert!(!k.is_case_variant("Other"));
        assert_eq!(k.canonical("PROJECTS/q1/New"), "Projects/Q1/New");
        assert_eq!(k.canonical("Other/x"), "Other/x");
    }
}
