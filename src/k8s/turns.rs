//! Turns at running passes: at most `max-concurrent-pools` pools reconciled at once, handed out
//! first come, first served, except that a pool in the middle of a transition goes before the
//! pools starting one.
//!
//! Why the two queues: a switch pauses between its drain and its first SQL step (the chat
//! servers are given time to leave) and after its last step (the new mirror synchronizes), and
//! each pause gives the turn back. With one queue, a storm of switches put a pool whose chat
//! servers had already left behind every pool that had not yet started: its chat outage lasted
//! as long as the queue, the whole turns of the pools ahead. A pool finishing what it started
//! ends its outage and frees its turn sooner; a pool that has not started yet has not drained
//! its chat servers, so its waiting costs no one a chat outage.
//!
//! Tokio's semaphore is one queue; kube-runtime's own concurrency limit serves held objects in
//! hash order (it left some pools without a pass for minutes while others bootstrapped). Both
//! queues here are first in, first out, so no pool waits forever in its own queue; a pool in
//! the ordinary queue waits while transitions under way keep asking, which is bounded by the
//! transitions' own length.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Which queue a pool waits in (its name is the `queue` label of the turn metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Urgency {
    /// The pool is in the middle of a transition (see
    /// [`crate::engine::requeue::finishing_transition`]).
    FinishingTransition,
    /// Everything else: starting a transition, bootstrapping, a periodic look.
    Ordinary,
}

/// The turns of one operator.
pub struct Turns {
    queue: Mutex<Queue>,
}

struct Queue {
    free: usize,
    finishing: VecDeque<oneshot::Sender<Turn>>,
    ordinary: VecDeque<oneshot::Sender<Turn>>,
}

/// A turn: passes run while it is held; dropping it hands it to the next pool waiting.
pub struct Turn {
    /// `None` once the turn has been taken back from a waiter that had gone (so that dropping
    /// the husk gives nothing back twice).
    turns: Option<Arc<Turns>>,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(turns) = self.turns.take() {
            turns.give_back();
        }
    }
}

impl Turns {
    /// `count` turns (at least one).
    pub fn new(count: usize) -> Arc<Self> {
        Arc::new(Turns {
            queue: Mutex::new(Queue {
                free: count.max(1),
                finishing: VecDeque::new(),
                ordinary: VecDeque::new(),
            }),
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for a turn in the queue `urgency` names. Cancel-safe: a waiter dropped before its
    /// turn came is skipped, and a turn handed to it just as it went is handed on.
    pub async fn take(self: &Arc<Self>, urgency: Urgency) -> Turn {
        let handed = {
            let mut queue = self.queue();
            if queue.free > 0 {
                queue.free -= 1;
                return Turn {
                    turns: Some(self.clone()),
                };
            }
            let (sender, receiver) = oneshot::channel();
            match urgency {
                Urgency::FinishingTransition => queue.finishing.push_back(sender),
                Urgency::Ordinary => queue.ordinary.push_back(sender),
            }
            receiver
        };
        // The sender is dropped only by `give_back` after a failed send, which happens only
        // once this receiver is gone: while this future waits, it gets a turn.
        handed
            .await
            .expect("a waiting pool's sender is kept until its turn is sent")
    }

    /// Pools waiting for a turn, both queues (waiters that went are counted until skipped).
    pub fn waiting(&self) -> usize {
        let queue = self.queue();
        queue.finishing.len() + queue.ordinary.len()
    }

    /// A turn came back: to the first pool finishing a transition, else the first ordinary
    /// pool, else to the free count. The turn is sent with the queue unlocked: a turn that
    /// reaches a waiter just as it goes is dropped wherever the channel lets go of it, and its
    /// drop comes back here.
    fn give_back(self: Arc<Self>) {
        loop {
            let waiter = {
                let mut queue = self.queue();
                match queue
                    .finishing
                    .pop_front()
                    .or_else(|| queue.ordinary.pop_front())
                {
                    Some(waiter) => waiter,
                    None => {
                        queue.free += 1;
                        return;
                    }
                }
            };
            match waiter.send(Turn {
                turns: Some(self.clone()),
            }) {
                Ok(()) => return,
                // The waiter went (its reconcile was cancelled): disarm the turn, which came
                // back unsent, and try the next one.
                Err(mut unsent) => unsent.turns = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    #[tokio::test]
    async fn a_pool_finishing_a_transition_gets_the_next_turn_before_pools_waiting_longer() {
        let turns = Turns::new(1);
        let held = turns.take(Urgency::Ordinary).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for (name, urgency) in [
            ("first ordinary", Urgency::Ordinary),
            ("second ordinary", Urgency::Ordinary),
            ("finishing", Urgency::FinishingTransition),
        ] {
            let (turns, order) = (turns.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _turn = turns.take(urgency).await;
                order.lock().unwrap().push(name);
                settle().await;
            }));
            settle().await;
        }
        assert_eq!(turns.waiting(), 3);
        drop(held);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["finishing", "first ordinary", "second ordinary"]
        );
    }

    #[tokio::test]
    async fn no_more_pools_than_turns_run_at_once() {
        let turns = Turns::new(2);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..6)
            .map(|n| {
                let (turns, running, most) = (turns.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    let urgency = if n % 2 == 0 {
                        Urgency::Ordinary
                    } else {
                        Urgency::FinishingTransition
                    };
                    let _turn = turns.take(urgency).await;
                    let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    settle().await;
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(turns.waiting(), 0);
        // Both turns are free again.
        let _a = turns.take(Urgency::Ordinary).await;
        let _b = turns.take(Urgency::Ordinary).await;
    }

    #[tokio::test]
    async fn a_turn_meant_for_a_pool_that_stopped_waiting_goes_to_the_next() {
        let turns = Turns::new(1);
        let held = turns.take(Urgency::Ordinary).await;
        let gone = {
            let turns = turns.clone();
            tokio::spawn(async move {
                let _turn = turns.take(Urgency::FinishingTransition).await;
            })
        };
        settle().await;
        let next = {
            let turns = turns.clone();
            tokio::spawn(async move {
                let _turn = turns.take(Urgency::Ordinary).await;
            })
        };
        settle().await;
        gone.abort();
        let _ = gone.await;
        drop(held);
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the turn reached the pool still waiting")
            .unwrap();
        // And it came back: one turn is free.
        tokio::time::timeout(Duration::from_secs(5), turns.take(Urgency::Ordinary))
            .await
            .expect("the turn was given back");
    }
}
