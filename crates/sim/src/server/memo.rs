//! A bounded, process-wide memo of work done on statement texts. Clients send the same texts
//! again and again (an operator's observation batch every pass, a chat server's INSERT), as
//! SQL Server's plan cache expects, so the simulator keeps what it derived from each.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Entries a memo holds before it starts afresh: texts with literals in them (file names, LSNs)
/// are each seen only a few times, and must not grow a memo without bound.
const CAPACITY: usize = 512;

/// Values derived from statement texts, keyed by the text (and whatever else they depend on).
pub struct Memo<V> {
    entries: LazyLock<Mutex<HashMap<String, V>>>,
}

impl<V: Clone> Memo<V> {
    pub const fn new() -> Self {
        Memo {
            entries: LazyLock::new(Default::default),
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        self.entries
            .lock()
            .expect("memo poisoned")
            .get(key)
            .cloned()
    }

    pub fn insert(&self, key: String, value: V) {
        let mut entries = self.entries.lock().expect("memo poisoned");
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_memo_starts_afresh_instead_of_growing() {
        static MEMO: Memo<usize> = Memo::new();
        for i in 0..CAPACITY {
            MEMO.insert(format!("k{i}"), i);
        }
        assert_eq!(MEMO.get("k0"), Some(0));
        MEMO.insert("one more".into(), 1);
        assert_eq!(MEMO.get("k0"), None);
        assert_eq!(MEMO.get("one more"), Some(1));
    }
}
