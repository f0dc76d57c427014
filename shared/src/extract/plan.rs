//! The caps, decided from metadata before any body is downloaded: messages over the size cap
//! are left behind; of the rest, at most `max_items` per mailbox are staged, the newest by
//! INTERNALDATE across all its folders (Microsoft's "500,000 items, newest first").

/// A message the server listed that has no row yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Which of the pass's folders it is in.
    pub folder: usize,
    /// Its UID there.
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE as seconds since the epoch (`None` sorts as oldest).
    pub date: Option<i64>,
}

/// What becomes of a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Download and stage it.
    Fetch,
    /// Larger than the size cap.
    SkipSize,
    /// Beyond the item cap.
    SkipItemCap,
}

/// Decides every candidate. `already_staged` counts the mailbox's messages staged by earlier
/// passes, which keep their place: new mail beyond the cap is skipped, not swapped in.
/// Ties on date are broken by folder and UID, so a resumed pass decides the same.
pub fn apply_caps(
    candidates: &[Candidate],
    max_size: u64,
    max_items: u64,
    already_staged: u64,
) -> Vec<Verdict> {
    let mut verdicts: Vec<Verdict> = candidates
        .iter()
        .map(|c| {
            if c.size > max_size {
                Verdict::SkipSize
            } else {
                Verdict::Fetch
            }
        })
        .collect();
    let mut fitting: Vec<usize> = (0..candidates.len())
        .filter(|&i| verdicts[i] == Verdict::Fetch)
        .collect();
    let room = max_items.saturating_sub(already_staged) as usize;
    if fitting.len() > room {
        fitting.sort_by_key(|&i| {
            let c = &candidates[i];
            (
                std::cmp::Reverse(c.date.unwrap_or(i64::MIN)),
                c.folder,
                c.uid,
            )
        });
        for &i in &fitting[room..] {
            verdicts[i] = Verdict::SkipItemCap;
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(folder: usize, uid: u32, size: u64, date: i64) -> Candidate {
        Candidate {
            folder,
            uid,
            size,
            date: Some(date),
        }
    }

    #[test]
    fn size_cap_is_inclusive_and_item_cap_keeps_the_newest_across_folders() {
        let cands = [
            c(0, 1, 100, 10),
            c(1, 1, 100, 30),
            c(0, 2, 101, 40),
            c(1, 2, 100, 20),
            c(0, 3, 100, 5),
        ];
        let v = apply_caps(&cands, 100, 2, 0);
        assert_eq!(
            v,
            [
                Verdict::SkipItemCap,
                Verdict::Fetch,
                Verdict::SkipSize,
                Verdict::Fetch,
                Verdict::SkipItemCap
            ]
        );
        let v = apply_caps(&cands, 100, 3, 2);
        assert_eq!(
            v.iter().filter(|&&v| v == Verdict::Fetch).count(),
            1,
            "room for one more"
        );
        assert_eq!(v[1], Verdict::Fetch);
        assert!(
            apply_caps(&cands, 100, 5, 9)
                .iter()
                .all(|&v| v != Verdict::Fetch)
        );
    }

    #[test]
    fn a_resumed_pass_decides_the_same() {
        let cands: Vec<_> = (0..150u32)
            .map(|i| c((i % 3) as usize, i + 1, 10, i64::from(i % 50)))
            .collect();
        let first = apply_caps(&cands, 100, 100, 0);
        // Pretend the first 40 fetches were staged; the rest (and the skips) are candidates again.
        let staged: Vec<usize> = (0..cands.len())
            .filter(|&i| first[i] == Verdict::Fetch)
            .take(40)
            .collect();
        let rest: Vec<(usize, Candidate)> = cands
            .iter()
            .cloned()
            .enumerate()
            .filter(|(i, _)| !staged.contains(i))
            .collect();
        let again = apply_caps(
            &rest.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
            100,
            100,
            40,
        );
        for (k, (i, _)) in rest.iter().enumerate() {
            assert_eq!(again[k], first[*i], "candidate {i}");
        }
    }
}
