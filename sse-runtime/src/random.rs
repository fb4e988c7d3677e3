//! Randomness enough for jitter and epochs, without a random-number crate.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// 64 bits from a counter hashed with this process's random hash keys (SipHash, keyed from the
/// operating system once per process): uniform enough for a jitter, and different in every
/// process and every call, which is what an epoch needs. Not for secrets.
pub(crate) fn u64() -> u64 {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    KEYS.get_or_init(RandomState::new)
        .hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}
