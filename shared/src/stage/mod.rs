//! The stage: blob store, index, verify, gc and maildir view.
