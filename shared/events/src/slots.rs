//! How many event streams may be open: in all, and per key (a user, a
//! client address). A stream lasts, so one caller opening many would take
//! the capacity from everyone else; each caller gets a share, and the total
//! stays bounded.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
};

/// Open streams counted in all and per key. Clones share the counts.
#[derive(Debug)]
pub struct Slots<K: Hash + Eq> {
    total: usize,
    per_key: usize,
    held: Mutex<Held<K>>,
}

#[derive(Debug)]
struct Held<K> {
    total: usize,
    by_key: HashMap<K, usize>,
}

/// Why a stream was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// Every slot is taken (by many callers).
    #[error("too many event streams are open; try again shortly")]
    Total,
    /// This key holds its share.
    #[error("at most {0} event streams may be open at once")]
    Key(usize),
}

impl<K: Hash + Eq + Clone> Slots<K> {
    /// At most `total` streams in all and `per_key` for any one key.
    pub fn new(total: usize, per_key: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_key,
            held: Mutex::new(Held {
                total: 0,
                by_key: HashMap::new(),
            }),
        })
    }

    /// A slot for a stream of `key` (`None`: counted in the total only),
    /// held until the returned guard is dropped.
    pub fn take(self: &Arc<Self>, key: Option<K>) -> Result<Slot<K>, Full> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        // The key's share first: a caller at its share is told so (it can
        // close one of its own), whether or not others have left room.
        if let Some(key) = &key
            && held.by_key.get(key).is_some_and(|&n| n >= self.per_key)
        {
            return Err(Full::Key(self.per_key));
        }
        if held.total >= self.total {
            return Err(Full::Total);
        }
        if let Some(key) = &key {
            *held.by_key.entry(key.clone()).or_insert(0) += 1;
        }
        held.total += 1;
        Ok(Slot {
            slots: self.clone(),
            key,
        })
    }

    /// Streams open in all.
    pub fn open(&self) -> usize {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// A stream's slot: given back when dropped (with the stream).
#[derive(Debug)]
pub struct Slot<K: Hash + Eq + Clone> {
    slots: Arc<Slots<K>>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        held.total = held.total.saturating_sub(1);
        if let Some(key) = &self.key
            && let Some(count) = held.by_key.get_mut(key)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Forgotten once idle: the map holds only open keys.
                held.by_key.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_gets_its_share_and_the_total_stays_bounded() {
        let slots = Slots::new(3, 2);
        let a1 = slots.take(Some("a")).expect("first of a");
        let _a2 = slots.take(Some("a")).expect("second of a");
        assert_eq!(
            slots.take(Some("a")).expect_err("past the share"),
            Full::Key(2)
        );
        let _b = slots.take(Some("b")).expect("b has its own share");
        assert_eq!(slots.take(Some("c")).expect_err("all taken"), Full::Total);
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _a3 = slots
            .take(Some("a"))
            .expect("a slot given back is free again");
    }

    #[test]
    fn keys_are_forgotten_when_their_streams_end() {
        let slots = Slots::new(10, 1);
        drop(slots.take(Some(1)).expect("taken"));
        assert!(
            slots
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .by_key
                .is_empty()
        );
        assert_eq!(slots.open(), 0);
        let _unkeyed = slots.take(None).expect("counted in the total only");
        assert_eq!(slots.open(), 1);
    }
}
