//! Keeping the client secret out of error messages: a token endpoint, or a proxy in front of
//! it, may echo the request, and the secret then comes back in whatever encoding the echo
//! used. [`Scrubber`] knows the secret's forms: raw, form-encoded as it was sent
//! (`application/x-www-form-urlencoded`: an Entra secret's `~` is `%7E`), percent-encoded
//! (RFC 3986, upper- or lower-case hex) and JSON-escaped (`\/`, `\u…`).

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

/// What stands in for a removed secret.
pub(crate) const REDACTED: &str = "[REDACTED]";

/// RFC 3986's unreserved characters stay; everything else is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Every form of one secret that may come back in an answer (each wiped when dropped).
pub(crate) struct Scrubber {
    forms: Vec<Zeroizing<String>>,
}

impl Scrubber {
    /// The forms of `secret`, longest first (so a form containing another goes whole).
    pub(crate) fn new(secret: &str) -> Self {
        let mut forms: Vec<Zeroizing<String>> = Vec::new();
        if !secret.is_empty() {
            let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            let component = utf8_percent_encode(secret, COMPONENT).to_string();
            let json = serde_json::to_string(secret).unwrap_or_default();
            let json = json
                .strip_prefix('"')
                .and_then(|j| j.strip_suffix('"'))
                .unwrap_or_default()
                .to_owned();
            let candidates = [
                secret.to_owned(),
                lower_hex(&form),
                json.replace('/', "\\/"),
                json_ascii(secret),
                lower_hex(&component),
                form,
                component,
                json,
            ];
            for c in candidates {
                if !c.is_empty() && !forms.iter().any(|f| **f == c) {
                    forms.push(Zeroizing::new(c));
                }
            }
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Self { forms }
    }

    /// `text` with every form of the secret replaced by `[REDACTED]`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Percent-escapes with lower-case hex digits (`%7e`), as some encoders write them.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut chars = encoded.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            out.extend(chars.by_ref().take(2).map(|h| h.to_ascii_lowercase()));
        }
    }
    out
}

/// JSON escaping of every non-ASCII or special character as `\uXXXX` (UTF-16 units), as
/// some serialisers write strings.
fn json_ascii(secret: &str) -> String {
    let mut out = String::with_capacity(secret.len() * 2);
    for c in secret.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_of_the_secret_is_removed() {
        // An Entra ID secret has `~` and `.`; add what JSON and forms escape.
        let secret = "Ab8Q~x.y/z+w \"é\\";
        let s = Scrubber::new(secret);
        let echoes = [
            secret.to_owned(),
            "Ab8Q%7Ex.y%2Fz%2Bw+%22%C3%A9%5C".to_owned(),
            "Ab8Q%7ex.y%2fz%2bw+%22%c3%a9%5c".to_owned(),
            "Ab8Q~x.y%2Fz%2Bw%20%22%C3%A9%5C".to_owned(),
            "Ab8Q~x.y/z+w \\\"é\\\\".to_owned(),
            "Ab8Q~x.y\\/z+w \\\"é\\\\".to_owned(),
            "Ab8Q~x.y/z+w \\\"\\u00e9\\\\".to_owned(),
        ];
        for echo in &echoes {
            let body = format!("{{\"error\":\"bad\",\"echo\":\"client_secret={echo}&scope=x\"}}");
            let shown = s.scrub(&body);
            assert!(
                shown.contains("client_secret=[REDACTED]&scope=x"),
                "{echo}: {shown}"
            );
        }
        assert_eq!(Scrubber::new("").scrub("abc"), "abc");
        assert_eq!(
            Scrubber::new("hunter2").scrub("client_secret=hunter2&x=hunter2"),
            "client_secret=[REDACTED]&x=[REDACTED]"
        );
    }
}
