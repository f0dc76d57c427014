//! Sequence sets (`1:5,7,9:12`) built from UID lists or ranges, always in compact form.

use std::fmt;
use std::ops::RangeInclusive;

/// A compact, sorted set of message numbers or UIDs, optionally ending in `n:*`.
///
/// Zero is not a valid message number or UID (`nz-number`) and is ignored on input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SequenceSet {
    /// Sorted, disjoint, non-adjacent closed ranges.
    ranges: Vec<(u32, u32)>,
    /// `Some(n)`: the set also holds `n:*` (everything from `n` to the largest in the mailbox).
    open_from: Option<u32>,
}

impl SequenceSet {
    /// Builds a set from individual numbers in any order, with duplicates.
    pub fn from_uids<I: IntoIterator<Item = u32>>(uids: I) -> Self {
        Self::from_ranges(uids.into_iter().map(|u| u..=u))
    }

    /// Builds a set from ranges in any order, overlapping or not; empty ranges are skipped.
    pub fn from_ranges<I: IntoIterator<Item = RangeInclusive<u32>>>(ranges: I) -> Self {
        let mut raw: Vec<(u32, u32)> = ranges
            .into_iter()
            .filter_map(|r| {
                let (s, e) = (*r.start().max(&1), *r.end());
                (s <= e).then_some((s, e))
            })
            .collect();
        raw.sort_unstable();
        let mut ranges: Vec<(u32, u32)> = Vec::with_capacity(raw.len());
        for (s, e) in raw {
            match ranges.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => ranges.push((s, e)),
            }
        }
        Self {
            ranges,
            open_from: None,
        }
    }

    /// The set `start:*`: every number from `start` (at least 1) up to the largest one.
    pub fn from_start(start: u32) -> Self {
        Self {
            ranges: Vec::new(),
            open_from: Some(start.max(1)),
        }
    }

    /// True when the set holds `n` (an open `m:*` holds every number from `m`).
    pub fn contains(&self, n: u32) -> bool {
        let closed = match self.ranges.binary_search_by(|&(s, _)| s.cmp(&n)) {
            Ok(_) => true,
            Err(0) => false,
            Err(i) => n <= self.ranges[i - 1].1,
        };
        closed || self.open_from.is_some_and(|from| n >= from)
    }

    /// True when the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.open_from.is_none()
    }

    /// How many numbers the closed part of the set holds (an open `n:*` counts as one).
    pub fn count(&self) -> u64 {
        let closed: u64 = self.ranges.iter().map(|&(s, e)| u64::from(e - s) + 1).sum();
        closed + u64::from(self.open_from.is_some())
    }

    /// The closed ranges of the set, in ascending order.
    pub fn ranges(&self) -> impl Iterator<Item = RangeInclusive<u32>> + '_ {
        self.ranges.iter().map(|&(s, e)| s..=e)
    }

    /// Splits the closed part into sets of at most `max` numbers each (an open tail is
    /// its own last chunk). Keeps commands short: Exchange refuses lines over ~10,000 bytes.
    pub fn chunks(&self, max: u32) -> Vec<SequenceSet> {
        let max = max.max(1);
        let mut out = Vec::new();
        let mut cur: Vec<(u32, u32)> = Vec::new();
        let mut room = max;
        for &(mut s, e) in &self.ranges {
            loop {
                let take_end = if u64::from(e - s) < u64::from(room) {
                    e
                } else {
                    s + (room - 1)
                };
                cur.push((s, take_end));
                room -= take_end - s + 1;
                if room == 0 {
                    out.push(Self::closed(std::mem::take(&mut cur)));
                    room = max;
                }
                if take_end == e {
                    break;
                }
                s = take_end + 1;
            }
        }
        if !cur.is_empty() {
            out.push(Self::closed(cur));
        }
        if let Some(start) = self.open_from {
            out.push(Self::from_start(start));
        }
        out
    }

    fn closed(ranges: Vec<(u32, u32)>) -> Self {
        Self {
            ranges,
            open_from: None,
        }
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for &(s, e) in &self.ranges {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if s == e {
                write!(f, "{s}")?;
            } else {
                write!(f, "{s}:{e}")?;
            }
        }
        if let Some(start) = self.open_from {
            if !first {
                f.write_str(",")?;
            }
            write!(f, "{start}:*")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_without_expanding() {
        let s = SequenceSet::from_ranges([5..=9, 1..=1, 20..=4_000_000_000]);
        for (n, inside) in [
            (0, false),
            (1, true),
            (2, false),
            (5, true),
            (9, true),
            (10, false),
        ] {
            assert_eq!(s.contains(n), inside, "{n}");
        }
        assert!(s.contains(3_999_999_999) && !s.contains(u32::MAX));
        assert!(SequenceSet::from_start(7).contains(u32::MAX));
        assert!(!SequenceSet::from_start(7).contains(6));
    }
    use proptest::prelude::*;

    #[test]
    fn compacts_lists() {
        let set = SequenceSet::from_uids([12, 1, 2, 3, 4, 5, 7, 9, 10, 11, 3, 0]);
        assert_eq!(set.to_string(), "1:5,7,9:12");
        assert_eq!(set.count(), 10);
        #[allow(clippy::reversed_empty_ranges)]
        let set = SequenceSet::from_ranges([5..=9, 1..=3, 4..=4, 20..=19]);
        assert_eq!(set.to_string(), "1:9");
        assert_eq!(SequenceSet::from_start(7).to_string(), "7:*");
        assert!(SequenceSet::from_uids([]).is_empty());
        assert_eq!(
            SequenceSet::from_uids([u32::MAX, u32::MAX - 1]).to_string(),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn chunks_split_ranges() {
        let set = SequenceSet::from_uids([1, 2, 3, 4, 5, 7, 9, 10, 11, 12]);
        let chunks: Vec<String> = set.chunks(4).iter().map(|c| c.to_string()).collect();
        assert_eq!(chunks, ["1:4", "5,7,9:10", "11:12"]);
    }

    proptest! {
        #[test]
        fn chunks_preserve_members(uids in proptest::collection::vec(1u32..200, 0..60), max in 1u32..20) {
            let set = SequenceSet::from_uids(uids.iter().copied());
            let mut expected: Vec<u32> = uids.clone();
            expected.sort_unstable();
            expected.dedup();
            let mut got = Vec::new();
            for chunk in set.chunks(max) {
                prop_assert!(chunk.count() <= u64::from(max));
                got.extend(chunk.ranges().flatten());
            }
            prop_assert_eq!(got, expected);
        }
    }
}
