//! Folder names: modified UTF-7 (RFC 3501 §5.1.3), special-use and mapping.

pub mod mutf7;
