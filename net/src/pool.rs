//! Concurrency for blocking requests: a scoped map over at most N threads, one-at-a-time work
//! per key, and the counting gate that bounds how many requests are in flight at once.
//!
//! The stack is blocking, so overlap comes from threads. Each caller's fan-out is bounded by its
//! own `limit`, and [`RequestGate`] (held by every clone of one `HttpClient`) bounds the total:
//! nested fan-outs (five platforms, each fetching its pages) never put more than the configured
//! number of requests on the wire.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Runs `work` on every item on at most `limit` threads; the results are in the items' order.
/// With one item or `limit` 1 it runs on the calling thread.
pub fn parallel_map<T: Sync, R: Send>(
    limit: usize,
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let never = AtomicBool::new(false);
    run(limit, items, &never, |item| (work(item), false))
        .into_iter()
        .flatten()
        .collect()
}

/// [`parallel_map`] for work that can fail: after a failure no item not yet started is
/// started, and the error returned is the first in the items' order. Items are started in
/// order, so every item before a failed one has run: the same error comes back whichever
/// thread failed first.
pub fn try_parallel_map<T: Sync, R: Send, E: Send>(
    limit: usize,
    items: &[T],
    work: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let stop = AtomicBool::new(false);
    let mut out = Vec::with_capacity(items.len());
    for r in run(limit, items, &stop, |item| {
        let r = work(item);
        let failed = r.is_err();
        (r, failed)
    }) {
        match r {
            Some(r) => out.push(r?),
            // Skipped after a failure, which comes earlier in the order.
            None => break,
        }
    }
    Ok(out)
}

/// The pool: each item's outcome in order, `None` for an item skipped once `stop` was set.
fn run<T: Sync, R: Send>(
    limit: usize,
    items: &[T],
    stop: &AtomicBool,
    work: impl Fn(&T) -> (R, bool) + Sync,
) -> Vec<Option<R>> {
    let threads = limit.clamp(1, items.len().clamp(1, MAX_WORKERS));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = Vec::with_capacity(items.len());
    slots.resize_with(items.len(), || None);
    let slots = Mutex::new(slots);
    let worker = || loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some(item) = items.get(i) else { break };
        let (r, failed) = work(item);
        if failed {
            stop.store(true, Ordering::SeqCst);
        }
        lock(&slots)[i] = Some(r);
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            // The main thread's stack size: a resolution that ran on the main thread before
            // runs on one of these now. A thread that can't be started is one helper fewer;
            // the calling thread works through whatever is left.
            let spawned = std::thread::Builder::new()
                .stack_size(WORKER_STACK)
                .spawn_scoped(s, worker);
            if spawned.is_err() {
                break;
            }
        }
        worker();
    });
    // A panicking worker re-panics out of `scope` above; an empty slot was skipped.
    slots.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Stack of each worker thread, as a main thread gets on Linux.
const WORKER_STACK: usize = 8 << 20;

/// Threads one fan-out starts at most: fan-outs nest (platforms, then each one's pages or
/// downloads) and the client's gate bounds the requests anyway.
const MAX_WORKERS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a single insert/remove/assign: a panic can't leave a
    // half-made update behind.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// At most one thread at a time does the work for a key; the others wait and then do theirs,
/// which finds the first one's result in the caller's memo instead of fetching it again.
#[derive(Debug)]
pub struct SingleFlight<K> {
    busy: Mutex<HashSet<K>>,
    done: Condvar,
}

impl<K> Default for SingleFlight<K> {
    fn default() -> Self {
        SingleFlight {
            busy: Mutex::new(HashSet::new()),
            done: Condvar::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> SingleFlight<K> {
    /// An empty set of keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` once no other thread runs work for `key`.
    pub fn run<R>(&self, key: &K, work: impl FnOnce() -> R) -> R {
        let mut busy = lock(&self.busy);
        while busy.contains(key) {
            busy = self.done.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        busy.insert(key.clone());
        drop(busy);
        let _release = Release { flight: self, key };
        work()
    }
}

/// Frees the key when the work ends, also by a panic, so waiters never hang.
struct Release<'a, K: Eq + Hash> {
    flight: &'a SingleFlight<K>,
    key: &'a K,
}

impl<K: Eq + Hash> Drop for Release<'_, K> {
    fn drop(&mut self) {
        lock(&self.flight.busy).remove(self.key);
        self.flight.done.notify_all();
    }
}

/// Values computed once per key and shared by every thread: a thread asking while another
/// computes the same key waits for it. Failures are not remembered (the next ask tries again).
#[derive(Debug)]
pub struct Memo<K, V> {
    done: Mutex<HashMap<K, V>>,
    flight: SingleFlight<K>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            done: Mutex::new(HashMap::new()),
            flight: SingleFlight::default(),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    /// The value for `key`, if computed.
    pub fn get(&self, key: &K) -> Option<V> {
        lock(&self.done).get(key).cloned()
    }

    /// The value for `key`, computed by `make` on first use.
    pub fn get_or_try<E>(&self, key: &K, make: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        self.flight.run(key, || {
            if let Some(v) = self.get(key) {
                return Ok(v);
            }
            let v = make()?;
            lock(&self.done).insert(key.clone(), v.clone());
            Ok(v)
        })
    }
}

/// A counting gate: at most `limit` holders at once.
#[derive(Debug)]
pub(crate) struct RequestGate {
    limit: usize,
    held: Mutex<usize>,
    freed: Condvar,
}

impl RequestGate {
    pub(crate) fn new(limit: usize) -> Self {
        RequestGate {
            limit: limit.max(1),
            held: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free place; the place is given back when the permit drops.
    pub(crate) fn enter(&self) -> Permit<'_> {
        let mut held = lock(&self.held);
        while *held >= self.limit {
            held = self.freed.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        *held += 1;
        Permit { gate: self }
    }
}

/// One place in a [`RequestGate`].
pub(crate) struct Permit<'a> {
    gate: &'a RequestGate,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *lock(&self.gate.held) -= 1;
        self.gate.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn parallel_map_keeps_order_and_bounds_threads() {
        let items: Vec<u32> = (0..50).collect();
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let out = parallel_map(4, &items, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        let peak = peak.load(Ordering::SeqCst);
        assert!((2..=4).contains(&peak), "peak {peak}");
        assert_eq!(parallel_map(8, &[] as &[u32], |i| *i), Vec::<u32>::new());
        assert_eq!(parallel_map(0, &[7u32], |i| *i), vec![7]);
    }

    #[test]
    fn try_parallel_map_stops_and_returns_the_first_error_in_order() {
        let items: Vec<u32> = (0..200).collect();
        let ran = AtomicUsize::new(0);
        for limit in [1, 2, 8] {
            ran.store(0, Ordering::SeqCst);
            let r: Result<Vec<u32>, String> = try_parallel_map(limit, &items, |i| {
                ran.fetch_add(1, Ordering::SeqCst);
                if *i == 40 || *i == 41 {
                    return Err(format!("item {i}"));
                }
                std::thread::sleep(Duration::from_millis(1));
                Ok(*i)
            });
            assert_eq!(r.unwrap_err(), "item 40", "limit {limit}");
            let ran = ran.load(Ordering::SeqCst);
            assert!((41..=41 + limit).contains(&ran), "limit {limit}: {ran} ran");
        }
        let all: Result<Vec<u32>, String> = try_parallel_map(4, &items, |i| Ok(i + 1));
        assert_eq!(
            all.unwrap(),
            items.iter().map(|i| i + 1).collect::<Vec<_>>()
        );
    }

    #[test]
    fn single_flight_runs_one_key_at_a_time() {
        let flight = SingleFlight::new();
        let memo: Mutex<Option<u32>> = Mutex::new(None);
        let fetches = AtomicUsize::new(0);
        let out = parallel_map(8, &[(); 8], |_| {
            flight.run(&"page", || {
                if let Some(v) = *lock(&memo) {
                    return v;
                }
                fetches.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                *lock(&memo) = Some(42);
                42
            })
        });
        assert_eq!(out, vec![42; 8]);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn single_flight_frees_a_key_after_a_panic() {
        let flight = Arc::new(SingleFlight::new());
        let f = flight.clone();
        let r = std::thread::spawn(move || f.run(&1, || panic!("boom"))).join();
        assert!(r.is_err());
        assert_eq!(flight.run(&1, || 5), 5);
    }

    #[test]
    fn memo_computes_once_and_forgets_failures() {
        let memo: Memo<&str, u32> = Memo::default();
        let made = AtomicUsize::new(0);
        let out = parallel_map(8, &[(); 8], |_| {
            memo.get_or_try(&"k", || -> Result<u32, ()> {
                made.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                Ok(7)
            })
        });
        assert_eq!(out, vec![Ok(7); 8]);
        assert_eq!(made.load(Ordering::SeqCst), 1);
        assert_eq!(memo.get_or_try(&"bad", || Err::<u32, _>("no")), Err("no"));
        assert_eq!(memo.get(&"bad"), None);
        assert_eq!(memo.get_or_try(&"bad", || Ok::<_, &str>(1)), Ok(1));
    }

    #[test]
    fn gate_bounds_holders() {
        let gate = RequestGate::new(3);
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        parallel_map(10, &[(); 30], |_| {
            let _p = gate.enter();
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
        });
        let peak = peak.load(Ordering::SeqCst);
        assert!((2..=3).contains(&peak), "peak {peak}");
    }
}
