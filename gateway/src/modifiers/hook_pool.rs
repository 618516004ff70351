//! The threads that run blocking plugin hooks (RSA signing and the like).
//! One thread a core, so heavy hooks use the machine without swamping it
//! with hundreds of threads (tokio's blocking pool would start one per
//! request in flight), and at a slightly lower scheduling priority, so the
//! async workers that move everyone else's bytes win when both are ready.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{mpsc, Arc, Mutex},
};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of hook threads.
#[derive(Clone)]
pub struct HookPool {
    sender: mpsc::Sender<Job>,
}

/// The pool is gone or the job died.
#[derive(Debug, thiserror::Error)]
#[error("the hook thread pool is not running")]
pub struct HookPoolGone;

/// How much lower than normal the hook threads run. Measured with RS256
/// signing saturating two cores beside a plain endpoint at light load:
/// nice 10 cost a fifth of the signing throughput (the workers' wake-ups
/// kept preempting the signers) for no clear gain in the plain endpoint's
/// p99 (4–11 ms at nice 10, 5–11 ms at nice 2); nice 2 keeps the workers
/// ahead with about the throughput of nice 0.
const NICENESS: i32 = 2;

#[allow(unsafe_code)]
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority with PRIO_PROCESS and who = 0 changes the calling
    // thread's own nice value on Linux; it reads no memory of ours.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS);
    }
}

impl HookPool {
    /// Starts `threads` hook threads.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("sepia-hooks-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // Hooks guard their own panics; this keeps the
                            // thread alive whatever a job does.
                            Ok(job) => {
                                let _ = catch_unwind(AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self { sender })
    }

    /// A pool of one thread a core.
    pub fn per_core() -> std::io::Result<Self> {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    /// Runs `work` on a hook thread and waits for it without blocking the
    /// async worker.
    pub async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, HookPoolGone> {
        let (done, result) = oneshot::channel();
        self.sender
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|_| HookPoolGone)?;
        result.await.map_err(|_| HookPoolGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_and_a_panicking_job_leaves_the_pool_working() {
        let pool = HookPool::new(1).unwrap();
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
        assert!(pool.run(|| panic!("job failed")).await.is_err());
        assert_eq!(pool.run(|| "still here").await.unwrap(), "still here");
    }
}
