//! Folder names as the pipelines match them: shell-style patterns (modified UTF-7 lives in
//! the IMAP crate, [`crate::imap::mutf7`]).

mod glob;

pub use glob::glob_match;
