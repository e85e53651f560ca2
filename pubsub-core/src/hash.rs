//! A fast hasher for the maps touched for every message (the embedded queue's messages by
//! sequence number, the daemon's messages in flight by receipt handle): the standard SipHash
//! was 2,500 instructions a message there. Their keys come from the queue, not from senders,
//! so SipHash's resistance to chosen collisions buys nothing. The function is FxHash's
//! (rustc's): a rotate, a xor and a multiply per eight bytes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// FxHash: fast, not keyed (see the module docs for where it is used).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        // The length goes in with the last bytes, so that zeros at the end count.
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(word) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_differ_hash_apart_and_maps_work() {
        let hash = |key: &str| {
            let mut hasher = FxHasher::default();
            std::hash::Hash::hash(key, &mut hasher);
            hasher.finish()
        };
        assert_ne!(hash("0000000000000001abc"), hash("0000000000000002abc"));
        assert_ne!(hash("a"), hash("a\0"));
        let mut map: FastMap<u64, u64> = FastMap::default();
        for n in 0..10_000 {
            map.insert(n, n * 2);
        }
        assert!((0..10_000).all(|n| map[&n] == n * 2));
    }
}
