//! One persistent thread pool for the kernels: `threads - 1` workers plus the calling thread.
//! A worker that finishes its share spins on a generation counter, so back-to-back products
//! (a decode step is ~200 of them) hand out work in well under a microsecond; after
//! [`SPIN`] without work it parks on a condition variable and costs nothing. One barrier per
//! operation: the caller waits for the workers' shares, and that wait is counted, as is the
//! time workers spin between shares waiting for the caller's next operation.
//!
//! rayon was measured first: splitting SmolLM2's 192 x 576 K/V product over 2 threads took
//! 24.3 µs against 10.3 µs on one thread, the cost of waking rayon's sleeping workers.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
pub const SPIN: Duration = Duration::from_micros(500);

/// Spinning past this yields the core at every turn, so a thread waiting on a machine with
/// more threads than cores lets the thread it waits for run.
const PURE_SPIN: Duration = Duration::from_micros(20);

type Task = dyn Fn(usize) + Sync;

struct Shared {
    /// Bumped once per operation; workers run the task when it changes.
    generation: AtomicUsize,
    /// The operation's task. Written by the caller only while no worker runs one (before
    /// bumping `generation`, after `pending` fell to 0), read by workers in between.
    task: UnsafeCell<Option<&'static Task>>,
    /// Workers that have not finished the current operation.
    pending: AtomicUsize,
    panicked: AtomicBool,
    stop: AtomicBool,
    /// Nanoseconds the workers spent spinning for the next operation (not parked).
    idle_nanos: AtomicU64,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `task` is only written while no worker reads it (see its comment); every other
// field is atomic or a lock.
unsafe impl Sync for Shared {}

/// Operations run, and time threads spent waiting for one another.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolStats {
    /// Operations run.
    pub operations: u64,
    /// The calling thread at the barriers, waiting for the workers' shares.
    pub wait: Duration,
    /// The workers, summed, between shares: spinning while the caller did work of its own
    /// (or waited at a barrier for another worker) before handing out the next operation.
    /// Time parked, when no operation came for [`SPIN`], is not counted.
    pub worker_idle: Duration,
    /// Threads in all, the caller included.
    pub threads: usize,
}

impl PoolStats {
    /// Waiting of all threads averaged over them: for a stretch of `T` wall time in which
    /// the pool ran its operations, `per_thread_wait / T` is the share of the threads' time
    /// lost to synchronisation and serial work (0 on one thread).
    pub fn per_thread_wait(&self) -> Duration {
        (self.wait + self.worker_idle) / self.threads.max(1) as u32
    }
}

/// The pool: `threads - 1` workers and the calling thread.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    operations: u64,
    wait: Duration,
}

impl Pool {
    /// A pool of `threads` threads in all (the caller counts as one; 0 is taken as 1).
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            task: UnsafeCell::new(None),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            idle_nanos: AtomicU64::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = (1..threads.max(1))
            .map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("llm-bench-kernels-{index}"))
                    .spawn(move || work(&shared, index))
                    .expect("spawning a kernel thread")
            })
            .collect();
        Pool {
            shared,
            workers,
            operations: 0,
            wait: Duration::ZERO,
        }
    }

    /// Threads in all, the caller included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// What the pool has run and waited so far.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            operations: self.operations,
            wait: self.wait,
            worker_idle: Duration::from_nanos(self.shared.idle_nanos.load(Relaxed)),
            threads: self.threads(),
        }
    }

    /// Runs `task(i)` for every thread index `i` in `0..threads()`, index 0 on the calling
    /// thread, and returns when all have finished. A panic in any share is raised here.
    pub fn run(&mut self, task: &(dyn Fn(usize) + Sync + '_)) {
        self.operations += 1;
        if self.workers.is_empty() {
            task(0);
            return;
        }
        let shared = &*self.shared;
        // SAFETY: no worker runs a task now (the last operation's barrier passed, or none ran),
        // and this one is cleared below before `task` goes out of scope: extending its lifetime
        // to 'static never lets a worker see it dangling.
        unsafe {
            *shared.task.get() = Some(std::mem::transmute::<
                &(dyn Fn(usize) + Sync + '_),
                &'static Task,
            >(task));
        }
        shared.pending.store(self.workers.len(), SeqCst);
        shared.generation.fetch_add(1, SeqCst);
        if shared.sleepers.load(SeqCst) > 0 {
            let _guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        let own = catch_unwind(AssertUnwindSafe(|| task(0)));
        let waiting = Instant::now();
        let mut spins = 0u32;
        while shared.pending.load(Acquire) != 0 {
            spins = spins.wrapping_add(1);
            // The clock is read once per 64 turns (reading it costs more than a turn).
            if spins > 256 && spins.is_multiple_of(64) && waiting.elapsed() > PURE_SPIN {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        self.wait += waiting.elapsed();
        // SAFETY: every worker has finished with the task (pending is 0).
        unsafe {
            *shared.task.get() = None;
        }
        if let Err(payload) = own {
            std::panic::resume_unwind(payload);
        }
        if shared.panicked.swap(false, SeqCst) {
            panic!("a kernel thread panicked (its message is above)");
        }
    }
}

fn work(shared: &Shared, index: usize) {
    let mut seen = 0;
    loop {
        let mut idle = Instant::now();
        let mut spins = 0u32;
        let generation = loop {
            let g = shared.generation.load(Acquire);
            if g != seen {
                count_idle(shared, idle);
                break g;
            }
            if shared.stop.load(Acquire) {
                return;
            }
            spins = spins.wrapping_add(1);
            // The clock is read once per 64 turns (reading it costs more than a turn).
            let idle_for = if spins > 256 && spins.is_multiple_of(64) {
                idle.elapsed()
            } else {
                Duration::ZERO
            };
            if idle_for > SPIN {
                count_idle(shared, idle);
                let mut guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
                shared.sleepers.fetch_add(1, SeqCst);
                while shared.generation.load(SeqCst) == seen && !shared.stop.load(SeqCst) {
                    guard = shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
                }
                shared.sleepers.fetch_sub(1, SeqCst);
                drop(guard);
                idle = Instant::now();
                spins = 0;
                continue;
            }
            if idle_for > PURE_SPIN {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        };
        seen = generation;
        // SAFETY: the caller set the task before bumping the generation (SeqCst store, Acquire
        // load above) and clears it only after this worker decrements `pending`.
        let task = unsafe { *shared.task.get() };
        if let Some(task) = task {
            if catch_unwind(AssertUnwindSafe(|| task(index))).is_err() {
                shared.panicked.store(true, SeqCst);
            }
        }
        shared.pending.fetch_sub(1, Release);
    }
}

fn count_idle(shared: &Shared, since: Instant) {
    let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
    shared.idle_nanos.fetch_add(nanos, Relaxed);
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        {
            let _guard = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_share_runs_once_per_operation_on_any_thread_count() {
        // 5 threads on a 2-core machine too: spinning threads must yield to the ones they wait for.
        for threads in [1, 2, 3, 5] {
            let mut pool = Pool::new(threads);
            assert_eq!(pool.threads(), threads);
            let counts: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
            for _ in 0..5_000 {
                pool.run(&|i| {
                    counts[i].fetch_add(1, Relaxed);
                });
            }
            for c in &counts {
                assert_eq!(c.load(Relaxed), 5_000, "{threads} threads");
            }
            assert_eq!(pool.stats().operations, 5_000);
        }
    }

    #[test]
    fn parked_workers_wake_for_the_next_operation() {
        let mut pool = Pool::new(3);
        let total = AtomicU64::new(0);
        for _ in 0..3 {
            std::thread::sleep(SPIN * 4);
            pool.run(&|i| {
                total.fetch_add(i as u64 + 1, Relaxed);
            });
        }
        assert_eq!(total.load(Relaxed), 3 * (1 + 2 + 3));
    }

    #[test]
    fn a_panicking_share_is_raised_in_the_caller_and_the_pool_still_works() {
        let mut pool = Pool::new(2);
        let result = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|i| assert!(i != 1, "share 1 fails"));
        }));
        assert!(result.is_err());
        let ran = AtomicU64::new(0);
        pool.run(&|_| {
            ran.fetch_add(1, Relaxed);
        });
        assert_eq!(ran.load(Relaxed), 2);
    }

    #[test]
    fn waiting_is_counted_on_whichever_side_waits() {
        let pause = Duration::from_millis(20);
        let mut pool = Pool::new(2);
        // The worker's share is long: the caller waits at the barrier.
        pool.run(&|i| {
            if i == 1 {
                std::thread::sleep(pause);
            }
        });
        let after_barrier = pool.stats();
        assert!(after_barrier.wait >= pause, "{after_barrier:?}");
        // The caller works alone between operations: the worker spins (shorter than SPIN, so
        // it does not park) and that is counted when the next operation reaches it.
        let alone = SPIN / 2;
        let started = Instant::now();
        while started.elapsed() < alone {
            std::hint::spin_loop();
        }
        pool.run(&|_| {});
        let stats = pool.stats();
        assert!(stats.worker_idle >= alone, "{stats:?}");
        assert_eq!((stats.operations, stats.threads), (2, 2));
        assert!(stats.per_thread_wait() >= (pause + alone) / 2, "{stats:?}");
        // One thread never waits.
        let mut single = Pool::new(1);
        single.run(&|_| std::thread::sleep(Duration::from_millis(1)));
        assert_eq!(single.stats().per_thread_wait(), Duration::ZERO);
    }
}
