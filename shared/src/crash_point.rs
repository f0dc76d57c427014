//! Named abort points for crash tests.
//!
//! Built with the `crash-points` feature (the test crate turns it on), [`hit`] aborts the
//! process when the environment variable `MAILSTAGE_CRASH_AT` names the point, as a kill -9
//! at exactly that instant would. Without the feature it does nothing and costs nothing.

/// The environment variable naming the point to abort at.
pub const ENV: &str = "MAILSTAGE_CRASH_AT";

/// Aborts the process here when `MAILSTAGE_CRASH_AT` names `point` (feature `crash-points`).
#[cfg(feature = "crash-points")]
pub fn hit(point: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == point) {
        eprintln!("crash point {point}: aborting");
        std::process::abort();
    }
}

/// Does nothing: the crate was built without the `crash-points` feature.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn hit(_point: &str) {}
