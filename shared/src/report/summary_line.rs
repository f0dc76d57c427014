//! The one-line summary of a mailbox's run, as both pipelines build it: a head with the
//! main counts, then `; `-separated parts shown only when they have something to say, and
//! the failure last.

use std::fmt::{Arguments, Write};

/// A summary line under construction.
#[derive(Debug)]
pub struct SummaryLine(String);

impl SummaryLine {
    /// Starts a line with its head (the mailbox and its main counts).
    pub fn new(head: String) -> Self {
        Self(head)
    }

    /// Adds `part` after a `; ` when `shown` (a count above zero, a list not empty).
    pub fn part(&mut self, shown: bool, part: Arguments<'_>) -> &mut Self {
        if shown {
            // Writing into a String cannot fail.
            let _ = write!(self.0, "; {part}");
        }
        self
    }

    /// Ends the line with the failure, when there is one.
    pub fn finish(mut self, error: Option<&str>) -> String {
        if let Some(e) = error {
            self.0.push_str("; FAILED: ");
            self.0.push_str(e);
        }
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::SummaryLine;

    #[test]
    fn parts_are_shown_only_when_they_say_something_and_the_failure_comes_last() {
        let mut line = SummaryLine::new("a@b: 3 staged".into());
        line.part(false, format_args!("{} hidden", 0))
            .part(true, format_args!("{} shown", 2));
        assert_eq!(
            line.finish(Some("cut")),
            "a@b: 3 staged; 2 shown; FAILED: cut"
        );
        assert_eq!(SummaryLine::new("x".into()).finish(None), "x");
    }
}
