//! Shards of a batch: which shard a run works on (`--shard I/N`, or the scheduler's
//! environment) and how a plan spreads mailboxes over shards (largest first onto the
//! lightest shard; a stable hash of the address when the size is unknown).
//!
//! Shards are numbered from 0, as Slurm array tasks (`--array=0-3`) and Kubernetes Indexed
//! Jobs (`JOB_COMPLETION_INDEX`) number their tasks.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// One shard of a batch: `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ShardSpec {
    /// Which shard, from 0 to `count - 1`.
    pub index: u32,
    /// How many shards the batch has.
    pub count: u32,
}

/// Why a shard could not be worked out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// `--shard` was not `I/N` with `0 <= I < N`.
    #[error("{0:?} is not a shard: give I/N with 0 <= I < N (shards count from 0), e.g. 0/4")]
    Syntax(String),
    /// None of the scheduler's variables was set.
    #[error(
        "--shard-from-env: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set \
         (run it as a Slurm array task or in a Kubernetes Indexed Job, or give --shard I/N)"
    )]
    NoEnvironment,
    /// A scheduler variable did not hold a shard number.
    #[error("--shard-from-env: {var}={value:?} is not a shard number")]
    BadEnvironment {
        /// The variable.
        var: &'static str,
        /// What it held.
        value: String,
    },
    /// The index is not below the count.
    #[error("shard {index} does not exist in a plan of {count} shard(s) (they count from 0)")]
    OutOfRange {
        /// The index asked for.
        index: u32,
        /// The plan's count.
        count: u32,
    },
}

impl ShardSpec {
    /// A shard, checked: `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }

    /// The shard index the scheduler gives this task: `SLURM_ARRAY_TASK_ID` (a Slurm array
    /// task) or `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job), read through `var`. The
    /// count is not taken from `SLURM_ARRAY_TASK_COUNT`: a resubmitted single task sees 1
    /// there, so the count comes from the batch's plan.
    pub fn index_from_env(var: impl Fn(&str) -> Option<String>) -> Result<u32, ShardError> {
        for name in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
            if let Some(value) = var(name) {
                return value
                    .trim()
                    .parse()
                    .map_err(|_| ShardError::BadEnvironment { var: name, value });
            }
        }
        Err(ShardError::NoEnvironment)
    }
}

impl FromStr for ShardSpec {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_owned());
        let (i, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let index: u32 = i.trim().parse().map_err(|_| syntax())?;
        let count: u32 = n.trim().parse().map_err(|_| syntax())?;
        if count == 0 {
            return Err(syntax());
        }
        Self::new(index, count)
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which shard a run asks for: exactly `I/N` (`--shard`), or the index alone with the count
/// from the batch's plan (`--shard-from-env`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardRequest {
    /// `--shard I/N`: `N` must be the plan's count.
    Exactly(ShardSpec),
    /// An index from the scheduler's environment; the count is the plan's.
    IndexOfPlan(u32),
}

impl ShardRequest {
    /// The shard, given the batch's planned count (`None`: the batch has no plan).
    pub fn resolve(self, batch: &str, planned: Option<u32>) -> Result<ShardSpec, String> {
        let Some(count) = planned else {
            return Err(format!(
                "batch {batch:?} has no shard plan; make one with: mailstage-extract batch plan \
                 {batch} --shards N"
            ));
        };
        match self {
            Self::Exactly(spec) if spec.count != count => Err(format!(
                "batch {batch:?} is planned in {count} shard(s), not {}",
                spec.count
            )),
            Self::Exactly(spec) => Ok(spec),
            Self::IndexOfPlan(index) => ShardSpec::new(index, count).map_err(|e| e.to_string()),
        }
    }
}

/// A mailbox to place: its address and the bytes the source reported (`None`: unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToPlace {
    /// The mailbox's address.
    pub email: String,
    /// Its size in bytes, when known.
    pub bytes: Option<u64>,
}

/// The shard of a mailbox whose size is unknown: a stable hash of its lower-cased address,
/// so every run and every machine gives the same answer.
pub fn hashed_shard(email: &str, count: u32) -> u32 {
    let digest = Sha256::digest(email.to_lowercase().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

/// Places `new` mailboxes on `loads.len()` shards whose current byte totals are `loads`
/// (the mailboxes already planned, which never move): those of known size largest first,
/// each onto the lightest shard (the lowest index on a tie), those of unknown size by
/// [`hashed_shard`]. Returns each new mailbox's shard, in `new`'s order.
///
/// With every size known and nothing planned before, the heaviest and lightest shards
/// differ by at most the largest mailbox (each placement goes onto a lightest shard).
pub fn place(loads: &mut [u64], new: &[ToPlace]) -> Vec<u32> {
    let count = loads.len() as u32;
    let mut out = vec![0; new.len()];
    let mut order: Vec<usize> = (0..new.len()).collect();
    // Largest first; ties by address so the plan does not depend on the input's order.
    order.sort_by(|&a, &b| {
        new[b]
            .bytes
            .cmp(&new[a].bytes)
            .then_with(|| new[a].email.cmp(&new[b].email))
    });
    for i in order {
        out[i] = match new[i].bytes {
            Some(bytes) => {
                let lightest = (0..loads.len()).min_by_key(|&s| (loads[s], s)).unwrap_or(0);
                loads[lightest] += bytes;
                lightest as u32
            }
            None => hashed_shard(&new[i].email, count),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(email: &str, bytes: u64) -> ToPlace {
        ToPlace {
            email: email.into(),
            bytes: Some(bytes),
        }
    }

    #[test]
    fn specs_parse_and_refuse() {
        assert_eq!("2/4".parse(), Ok(ShardSpec { index: 2, count: 4 }));
        assert_eq!(" 0 / 1 ".parse::<ShardSpec>().unwrap().to_string(), "0/1");
        for bad in ["4/4", "1", "a/4", "1/0", "-1/4", "1/4/5", ""] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn index_from_slurm_then_kubernetes() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            ShardSpec::index_from_env(env(&[("SLURM_ARRAY_TASK_ID", "3")])),
            Ok(3)
        );
        assert_eq!(
            ShardSpec::index_from_env(env(&[("JOB_COMPLETION_INDEX", "1")])),
            Ok(1)
        );
        assert_eq!(
            ShardSpec::index_from_env(env(&[])),
            Err(ShardError::NoEnvironment)
        );
        assert!(matches!(
            ShardSpec::index_from_env(env(&[("SLURM_ARRAY_TASK_ID", "x")])),
            Err(ShardError::BadEnvironment { .. })
        ));
    }

    #[test]
    fn skewed_sizes_balance_within_the_largest_mailbox() {
        // 12 mailboxes, one huge, a few large, many small.
        let sizes = [900, 400, 350, 300, 120, 80, 60, 40, 30, 20, 10, 5];
        let new: Vec<ToPlace> = sizes
            .iter()
            .enumerate()
            .map(|(i, &b)| known(&format!("u{i}@x"), b))
            .collect();
        let mut loads = vec![0; 4];
        let shards = place(&mut loads, &new);
        assert_eq!(loads.iter().sum::<u64>(), sizes.iter().sum::<u64>());
        let spread = loads.iter().max().unwrap() - loads.iter().min().unwrap();
        assert!(spread < 900, "{loads:?}");
        assert!(shards.iter().all(|&s| s < 4));
    }

    #[test]
    fn unknown_sizes_hash_stably_and_existing_loads_count() {
        let a = hashed_shard("Alice@X.edu", 4);
        assert_eq!(a, hashed_shard("alice@x.edu", 4));
        let mut loads = vec![0, 100, 100];
        let shards = place(
            &mut loads,
            &[
                known("b@x", 50),
                ToPlace {
                    email: "alice@x.edu".into(),
                    bytes: None,
                },
            ],
        );
        assert_eq!(shards[0], 0, "onto the lightest shard");
        assert_eq!(shards[1], hashed_shard("alice@x.edu", 3));
    }
}
