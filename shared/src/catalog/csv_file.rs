//! CSV batch files: `EmailAddress,UserName,Password[,UserRoot][,TargetUserName]`, one row
//! per mailbox, as `New-MigrationBatch -CSVData` takes them. `TargetUserName` (ours, not
//! Microsoft's) names the target mailbox when it is not the `EmailAddress`.
//!
//! Header names are matched case-insensitively; a UTF-8 byte-order mark is accepted; fields
//! may be quoted (passwords with commas and quotes work). The whole file is checked before
//! anything starts, and every problem is reported with its row (the line where the record
//! starts, as an editor numbers it: the header is row 1) and column. Passwords are kept in [`SecretString`]s, never printed,
//! never stored.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// One mailbox of a batch file.
#[derive(Debug)]
pub struct BatchRow {
    /// The row number in the file (the header is row 1).
    pub row: usize,
    /// The Microsoft 365 mailbox (`EmailAddress`).
    pub email: String,
    /// The login on the IMAP server (`UserName`), possibly in an admin format.
    pub user_name: String,
    /// The password for that login (`Password`).
    pub password: SecretString,
    /// Where this user's folders start, for Courier-style admin logins (`UserRoot`).
    pub user_root: Option<String>,
    /// The mailbox to upload into when it is not `email` (`TargetUserName`).
    pub target_user: Option<String>,
}

/// One problem in a batch file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowProblem {
    /// The row (the header is row 1).
    pub row: usize,
    /// The column concerned, when there is one.
    pub column: Option<&'static str>,
    /// What is wrong, in words (never containing a password).
    pub message: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "row {}, column {c}: {}", self.row, self.message),
            None => write!(f, "row {}: {}", self.row, self.message),
        }
    }
}

/// Why a batch file was refused.
#[derive(Debug, thiserror::Error)]
pub enum BatchFileError {
    /// The file could not be read.
    #[error("cannot read batch file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file has problems; all of them are listed.
    #[error("batch file {path} has {} problem(s):\n{}", problems.len(), render(problems))]
    Invalid {
        /// The file (or `<input>`).
        path: PathBuf,
        /// Every problem found, in row order.
        problems: Vec<RowProblem>,
    },
}

fn render(problems: &[RowProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

const EMAIL: &str = "EmailAddress";
const USER: &str = "UserName";
const PASSWORD: &str = "Password";
const ROOT: &str = "UserRoot";
const TARGET: &str = "TargetUserName";

/// Reads and checks a batch file.
pub fn read_batch_file(path: &Path) -> Result<Vec<BatchRow>, BatchFileError> {
    let mut bytes = std::fs::read(path).map_err(|source| BatchFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_and_wipe(&mut bytes, path)
}

/// Parses the file's bytes, then wipes them: the buffer held every row's password.
fn parse_and_wipe(bytes: &mut Vec<u8>, origin: &Path) -> Result<Vec<BatchRow>, BatchFileError> {
    let parsed = parse_batch_csv(bytes, origin);
    zeroize::Zeroize::zeroize(bytes);
    parsed
}

/// Checks batch-file bytes; `origin` names them in errors.
pub fn parse_batch_csv(bytes: &[u8], origin: &Path) -> Result<Vec<BatchRow>, BatchFileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let invalid = |problems| BatchFileError::Invalid {
        path: origin.to_path_buf(),
        problems,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter_of(bytes))
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(bytes);
    let columns = match reader.byte_headers() {
        Ok(h) => header_columns(h).map_err(invalid)?,
        Err(e) => {
            return Err(invalid(vec![problem(
                1,
                None,
                format!("unreadable header: {e}"),
            )]));
        }
    };
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    let mut first_row_of: HashMap<String, usize> = HashMap::new();
    let mut target_row_of: HashMap<String, usize> = HashMap::new();
    for record in reader.byte_records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row = e.position().map_or(0, |p| line_at(bytes, p.byte()));
                problems.push(problem(
                    row,
                    None,
                    format!("not valid CSV: {}", csv_error_kind(&e)),
                ));
                continue;
            }
        };
        let row = record.position().map_or(0, |p| line_at(bytes, p.byte()));
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue; // blank lines are allowed
        }
        match parse_row(&record, &columns, row) {
            Ok(r) => {
                let key = r.email.to_ascii_lowercase();
                let target = r.target_user.as_deref().unwrap_or(&r.email);
                let column = if r.target_user.is_some() {
                    TARGET
                } else {
                    EMAIL
                };
                if let Some(first) = seen_before(&mut first_row_of, key, row) {
                    problems.push(problem(
                        row,
                        Some(EMAIL),
                        format!("{} is already listed in row {first}", r.email),
                    ));
                } else if let Some(first) =
                    seen_before(&mut target_row_of, target.to_ascii_lowercase(), row)
                {
                    // Two sources in one target mailbox would each take the other's copies
                    // for their own when resuming after a crash.
                    problems.push(problem(
                        row,
                        Some(column),
                        format!(
                            "{target} is already the target mailbox of row {first}; two \
                             mailboxes of a batch cannot go into one"
                        ),
                    ));
                } else {
                    rows.push(r);
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if rows.is_empty() && problems.is_empty() {
        problems.push(problem(1, None, "the file lists no mailboxes".into()));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(invalid(problems))
    }
}

/// The row that had `key` first, or `None` after recording `row` as that row.
fn seen_before(rows: &mut HashMap<String, usize>, key: String, row: usize) -> Option<usize> {
    match rows.entry(key) {
        std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(row);
            None
        }
    }
}

/// Where each known column is.
struct Columns {
    email: usize,
    user: usize,
    password: usize,
    root: Option<usize>,
    target: Option<usize>,
}

/// The separator of a batch file: `;` when its header line holds more `;` than `,` (what
/// Excel writes in locales whose decimal mark is a comma), else `,`. The header names no
/// value with either, so counting them there is safe.
fn delimiter_of(bytes: &[u8]) -> u8 {
    let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| header.iter().filter(|b| **b == c).count();
    if count(b';') > count(b',') {
        b';'
    } else {
        b','
    }
}

fn header_columns(header: &csv::ByteRecord) -> Result<Columns, Vec<RowProblem>> {
    let names: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
        .collect();
    let find = |name: &str| names.iter().position(|n| *n == name.to_ascii_lowercase());
    let mut problems = Vec::new();
    let mut need = |name: &'static str| {
        find(name).or_else(|| {
            problems.push(problem(1, Some(name), "missing column (the header must name EmailAddress, UserName and Password; UserRoot and TargetUserName are optional)".into()));
            None
        })
    };
    let (email, user, password) = (need(EMAIL), need(USER), need(PASSWORD));
    match (email, user, password) {
        (Some(email), Some(user), Some(password)) => Ok(Columns {
            email,
            user,
            password,
            root: find(ROOT),
            target: find(TARGET),
        }),
        _ => Err(problems),
    }
}

fn parse_row(
    record: &csv::ByteRecord,
    c: &Columns,
    row: usize,
) -> Result<BatchRow, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let mut text = |index: usize, column: &'static str, trim: bool| -> Option<String> {
        let Some(raw) = record.get(index) else {
            problems.push(problem(
                row,
                Some(column),
                "missing field (the row has too few columns)".into(),
            ));
            return None;
        };
        let Ok(s) = std::str::from_utf8(raw) else {
            problems.push(problem(
                row,
                Some(column),
                "not UTF-8 (save the file as UTF-8)".into(),
            ));
            return None;
        };
        let s = if trim { s.trim() } else { s };
        if s.is_empty() && column != ROOT && column != TARGET {
            problems.push(problem(row, Some(column), "empty".into()));
            return None;
        }
        Some(s.to_owned())
    };
    let email = text(c.email, EMAIL, true);
    let user = text(c.user, USER, true);
    let password = text(c.password, PASSWORD, false);
    let root = c
        .root
        .and_then(|i| text(i, ROOT, true))
        .filter(|r| !r.is_empty());
    let target = c
        .target
        .and_then(|i| text(i, TARGET, true))
        .filter(|t| !t.is_empty());
    if let Some(t) = &target
        && t.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '*')
    {
        problems.push(problem(
            row,
            Some(TARGET),
            format!(
                "{t:?} holds spaces, control characters or `*` (it names the target mailbox; \
                 `*` separates a mailbox from an admin in master-user logins)"
            ),
        ));
    }
    if let Some(e) = &email
        && let Err(why) = check_address(e)
    {
        problems.push(problem(
            row,
            Some(EMAIL),
            format!("{e:?} is not an e-mail address: {why}"),
        ));
    }
    match (email, user, password) {
        (Some(email), Some(user_name), Some(password)) if problems.is_empty() => Ok(BatchRow {
            row,
            email,
            user_name,
            password: SecretString::from(password),
            user_root: root,
            target_user: target,
        }),
        _ => Err(problems),
    }
}

/// A deliberately plain check: one `@`, a local part, a dotted domain, no spaces or controls.
fn check_address(address: &str) -> Result<(), &'static str> {
    let (local, domain) = address.split_once('@').ok_or("no @")?;
    if address.len() > 254 {
        return Err("longer than 254 characters");
    }
    if local.is_empty() || domain.is_empty() {
        return Err("nothing before or after the @");
    }
    if domain.contains('@') {
        return Err("more than one @");
    }
    if address
        .chars()
        .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err("contains spaces or control characters");
    }
    if !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err("the domain is not a dotted name");
    }
    Ok(())
}

/// The line (from 1, as an editor shows it) where the record at `offset` starts. The csv
/// crate's own line count skips blank lines, and with CRLF its offset points at the `\n` of
/// the previous line ending, so line-ending bytes at the offset are stepped over first.
fn line_at(bytes: &[u8], offset: u64) -> usize {
    let mut start = (offset as usize).min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|&&b| b == b'\n').count()
}

fn problem(row: usize, column: Option<&'static str>, message: String) -> RowProblem {
    RowProblem {
        row,
        column,
        message,
    }
}

/// The csv crate's error without the record's contents (which may hold a password).
fn csv_error_kind(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        _ => "malformed quoting".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_buffer_is_wiped_after_parsing_and_rows_never_show_passwords() {
        let mut bytes = b"EmailAddress,UserName,Password\na@x.test,a,pw-in-the-file-1\n".to_vec();
        let capacity = bytes.capacity();
        let rows = parse_and_wipe(&mut bytes, Path::new("users.csv")).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(bytes.is_empty());
        // Zeroize writes zeros over the whole allocation before clearing it.
        // SAFETY: every byte up to the capacity was initialised (by the file, then zeros).
        unsafe { bytes.set_len(capacity) };
        assert!(
            bytes.iter().all(|&b| b == 0),
            "the passwords are still in memory"
        );
        let shown = format!("{:?}", rows[0]);
        assert!(!shown.contains("pw-in-the-file-1"), "{shown}");
        // A file that fails to parse is wiped too.
        let mut bad = b"EmailAddress,UserName\na,b\n".to_vec();
        assert!(parse_and_wipe(&mut bad, Path::new("bad.csv")).is_err());
        assert!(bad.is_empty());
    }
}
