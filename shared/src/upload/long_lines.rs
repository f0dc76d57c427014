//! Finding lines Exchange Online refuses: the longest line of each staged blob, read through
//! read-only memory maps, many blobs at once with rayon.

use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

/// The longest line, in octets without its line ending, that Exchange Online accepts in an
/// APPENDed message (Exchange Online refuses lines longer than about 10,000 characters; the
/// README's *Dry run* says where the figure comes from).
/// Octets are counted, so a line of 8-bit text is judged a little more strictly.
pub const EXCHANGE_MAX_LINE: usize = 10_000;

/// The length of the longest line of `bytes`, in octets. Lines end at LF; a CR just before
/// the LF is part of the line ending, not of the line. The last line counts even without a
/// line ending.
pub fn longest_line(bytes: &[u8]) -> usize {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).len())
        .max()
        .unwrap_or(0)
}

/// The longest line of a file, read through a read-only memory map (0 for an empty file).
///
/// The file must not shrink while it is read: staged blobs are immutable, and the caller
/// holds the stage's write lock, which keeps every other mailstage process (and `gc`) away.
pub(crate) fn longest_line_in_file(path: &Path) -> std::io::Result<usize> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(0);
    }
    // SAFETY: blobs are immutable once renamed into place and the stage lock keeps writers
    // and gc away while the map is alive (see above).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(longest_line(&map))
}

/// The longest line of each file, in the order given, scanned in parallel.
pub(crate) fn longest_lines(paths: &[PathBuf]) -> Vec<std::io::Result<usize>> {
    paths.par_iter().map(|p| longest_line_in_file(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> Vec<u8> {
        vec![b'x'; n]
    }

    fn joined(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn line_endings_are_not_counted() {
        let at = line(EXCHANGE_MAX_LINE);
        let over = line(EXCHANGE_MAX_LINE + 1);
        let crlf = joined(&[b"Subject: x\r\n\r\n", &at, b"\r\nend\r\n"]);
        assert_eq!(longest_line(&crlf), EXCHANGE_MAX_LINE);
        let lf = joined(&[b"Subject: x\n\n", &at, b"\nend\n"]);
        assert_eq!(longest_line(&lf), EXCHANGE_MAX_LINE);
        let crlf_over = joined(&[b"a\r\n", &over, b"\r\n"]);
        assert_eq!(longest_line(&crlf_over), EXCHANGE_MAX_LINE + 1);
        let lf_over = joined(&[b"a\n", &over, b"\n"]);
        assert_eq!(longest_line(&lf_over), EXCHANGE_MAX_LINE + 1);
    }

    #[test]
    fn last_line_without_newline_lone_cr_and_empty() {
        let tail = joined(&[b"a\r\nb\r\n", &line(EXCHANGE_MAX_LINE + 1)]);
        assert_eq!(longest_line(&tail), EXCHANGE_MAX_LINE + 1);
        // A CR that does not end a line is an ordinary octet.
        assert_eq!(longest_line(b"ab\rcd\r\n"), 5);
        assert_eq!(longest_line(b"abc\r"), 3);
        assert_eq!(longest_line(b""), 0);
        assert_eq!(longest_line(b"\r\n\r\n"), 0);
    }

    #[test]
    fn files_through_maps_in_parallel() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let paths = vec![
            write(
                "at",
                &joined(&[b"h\r\n\r\n", &line(EXCHANGE_MAX_LINE), b"\r\n"]),
            ),
            write(
                "over",
                &joined(&[b"h\n\n", &line(EXCHANGE_MAX_LINE + 1), b"\n"]),
            ),
            write("empty", b""),
            write("tail", &joined(&[b"h\r\n", &line(EXCHANGE_MAX_LINE + 1)])),
            dir.path().join("missing"),
        ];
        let got = longest_lines(&paths);
        let lengths: Vec<Option<usize>> = got.iter().map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(
            lengths,
            [
                Some(EXCHANGE_MAX_LINE),
                Some(EXCHANGE_MAX_LINE + 1),
                Some(0),
                Some(EXCHANGE_MAX_LINE + 1),
                None
            ]
        );
    }
}
