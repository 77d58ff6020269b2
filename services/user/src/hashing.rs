//! The password-hashing threads: a fixed set of them, each owning one argon2
//! block buffer that it reuses, running below the priority of the threads
//! that serve requests. A login storm then queues here: hashing memory is
//! bounded by the number of these threads (not by the blocking pool's), and
//! other calls' replies are not held up behind the hashes.

use argon2::Block;
use std::{
    collections::VecDeque,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Condvar, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::sync::oneshot;

/// A job computes in a thread's buffer and returns the delivery of its
/// result, made once the buffer is accounted for (so a caller that has its
/// answer sees the buffer it left).
type Job = Box<dyn FnOnce(&mut Vec<Block>) -> Delivery + Send>;
type Delivery = Box<dyn FnOnce() + Send>;

/// Why a job did not run to its end.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue is full.
    Busy,
    /// The job panicked, or the threads are gone.
    Failed,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    /// Bytes held in the threads' buffers.
    buffer_bytes: AtomicUsize,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job never runs under the lock, so a poisoned lock holds a
        // consistent queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The threads; they end when this is dropped (after the queued jobs).
pub struct HashingThreads {
    queue: Arc<Queue>,
    max_waiting: usize,
}

impl HashingThreads {
    /// `threads` threads at `nice` steps below the caller's priority; up to
    /// `max_waiting` jobs wait for one. A thread gives its buffer back to the
    /// allocator after `release_after` without work, so that a process that
    /// saw one storm does not keep its memory.
    pub fn start(
        threads: usize,
        nice: u8,
        max_waiting: usize,
        release_after: Duration,
    ) -> std::io::Result<Self> {
        let queue = Arc::new(Queue::default());
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    lower_priority(nice);
                    work(&queue, release_after);
                })?;
        }
        Ok(Self { queue, max_waiting })
    }

    /// How many jobs wait for a thread.
    pub fn queued(&self) -> usize {
        self.queue.lock().jobs.len()
    }

    /// How many bytes the threads' buffers hold.
    pub fn buffer_bytes(&self) -> usize {
        self.queue.buffer_bytes.load(Ordering::Relaxed)
    }

    /// Runs `job` on one of the threads with that thread's buffer. A job
    /// whose caller has gone away (the call was cancelled) is not run.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |buffer| {
            if reply.is_closed() {
                return Box::new(|| ());
            }
            let m = crate::metrics::metrics();
            m.password_hash_running.inc();
            let out = catch_unwind(AssertUnwindSafe(|| job(buffer)));
            m.password_hash_running.dec();
            Box::new(move || {
                let _ = reply.send(out);
            })
        });
        {
            let mut state = self.queue.lock();
            if state.jobs.len() >= self.max_waiting {
                return Err(Refused::Busy);
            }
            state.jobs.push_back(job);
        }
        crate::metrics::metrics().password_hash_queued.inc();
        self.queue.ready.notify_one();
        match answer.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_)) | Err(_) => Err(Refused::Failed),
        }
    }
}

impl Drop for HashingThreads {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.ready.notify_all();
    }
}

/// One thread's life: take a job, run it in this thread's buffer; give the
/// buffer back after an idle spell.
fn work(queue: &Queue, release_after: Duration) {
    let mut buffer: Vec<Block> = Vec::new();
    let mut held = 0;
    loop {
        let job = {
            let mut state = queue.lock();
            loop {
                if let Some(job) = state.jobs.pop_front() {
                    crate::metrics::metrics().password_hash_queued.dec();
                    break job;
                }
                if state.closed {
                    account(queue, &mut held, 0);
                    return;
                }
                if buffer.capacity() == 0 {
                    state = queue.ready.wait(state).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                let (next, waited) = queue
                    .ready
                    .wait_timeout(state, release_after)
                    .unwrap_or_else(|e| e.into_inner());
                state = next;
                if waited.timed_out() && state.jobs.is_empty() {
                    buffer = Vec::new();
                    account(queue, &mut held, 0);
                }
            }
        };
        let deliver = job(&mut buffer);
        account(queue, &mut held, buffer.len() * size_of::<Block>());
        deliver();
    }
}

/// Records that this thread's buffer now holds `now` bytes (it held `held`).
fn account(queue: &Queue, held: &mut usize, now: usize) {
    let gauge = &crate::metrics::metrics().password_hash_buffer_bytes;
    if now >= *held {
        queue.buffer_bytes.fetch_add(now - *held, Ordering::Relaxed);
        gauge.inc_by(i64::try_from(now - *held).unwrap_or(i64::MAX));
    } else {
        queue.buffer_bytes.fetch_sub(*held - now, Ordering::Relaxed);
        gauge.dec_by(i64::try_from(*held - now).unwrap_or(i64::MAX));
    }
    *held = now;
}

/// Raises this thread's nice value by `steps` (Linux keeps it per thread).
/// Failing to is harmless: the thread then hashes at the normal priority.
#[cfg(target_os = "linux")]
fn lower_priority(steps: u8) {
    use rustix::{process, thread};
    if steps == 0 {
        return;
    }
    let me = Some(thread::gettid());
    let lowered = process::getpriority_process(me)
        .and_then(|now| process::setpriority_process(me, (now + i32::from(steps)).min(19)));
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "could not lower the password-hashing thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_steps: u8) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    };
    use std::time::Instant;

    const NEVER: Duration = Duration::from_secs(3600);
    const DEADLINE: Duration = Duration::from_secs(20);

    fn grow(buffer: &mut Vec<Block>) -> usize {
        buffer.resize(64, Block::default());
        buffer.as_ptr() as usize
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_thread_keeps_its_buffer_between_jobs() {
        let threads = HashingThreads::start(1, 0, 8, NEVER).expect("threads");
        let first = threads.run(grow).await.expect("first job");
        assert_eq!(threads.buffer_bytes(), 64 * size_of::<Block>());
        let (len, at) = threads
            .run(|b: &mut Vec<Block>| (b.len(), b.as_ptr() as usize))
            .await
            .expect("second job");
        assert_eq!((len, at), (64, first));
    }

    #[tokio::test]
    async fn an_idle_thread_gives_its_buffer_back() {
        let threads = HashingThreads::start(1, 0, 8, Duration::from_millis(20)).expect("threads");
        threads.run(grow).await.expect("first job");
        // Counted before the answer came, so only the release makes it 0.
        until("the buffer to be released", || threads.buffer_bytes() == 0).await;
        let capacity = threads
            .run(|b: &mut Vec<Block>| b.capacity())
            .await
            .expect("second job");
        assert_eq!(capacity, 0, "the thread still held its buffer");
    }

    /// Blocks the only thread until the returned sender is used.
    async fn occupy(
        threads: &Arc<HashingThreads>,
    ) -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (go, wait) = mpsc::channel::<()>();
        let t = threads.clone();
        let busy = tokio::spawn(async move {
            let _ = t
                .run(move |_: &mut Vec<Block>| {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                })
                .await;
        });
        started.await.expect("the blocking job started");
        (go, busy)
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_cancelled_call_is_not_run() {
        let threads = Arc::new(HashingThreads::start(1, 0, 1, NEVER).expect("threads"));
        let (go, busy) = occupy(&threads).await;
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let t = threads.clone();
        let cancelled = tokio::spawn(async move {
            let _ = t
                .run(move |_: &mut Vec<Block>| r.store(true, Ordering::SeqCst))
                .await;
        });
        until("the second job to queue", || threads.queued() == 1).await;
        assert_eq!(threads.run(|_| ()).await, Err(Refused::Busy));
        cancelled.abort();
        let _ = cancelled.await;
        go.send(()).expect("release the thread");
        busy.await.expect("the blocking job");
        until("the cancelled job to leave the queue", || {
            threads.queued() == 0
        })
        .await;
        threads.run(|_| ()).await.expect("a later job runs");
        assert!(!ran.load(Ordering::SeqCst), "the cancelled job ran");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone() {
        let threads = HashingThreads::start(1, 0, 8, NEVER).expect("threads");
        let failed = threads
            .run(|_: &mut Vec<Block>| -> () { panic!("a job's bug") })
            .await;
        assert_eq!(failed, Err(Refused::Failed));
        assert_eq!(threads.run(|_| 7).await, Ok(7));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_threads_run_below_the_callers_priority() {
        use rustix::{process, thread};
        let mine = process::getpriority_process(Some(thread::gettid())).expect("own priority");
        let threads = HashingThreads::start(1, 5, 8, NEVER).expect("threads");
        let theirs = threads
            .run(|_| process::getpriority_process(Some(thread::gettid())))
            .await
            .expect("job")
            .expect("thread priority");
        assert_eq!(theirs, (mine + 5).min(19));
    }
}
