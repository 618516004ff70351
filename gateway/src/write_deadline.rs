//! `write_timeout` on an HTTP/1 connection, as Go's server applies it: when
//! a request's head has been read, the connection's write deadline is set
//! that far ahead, and every write after it fails, which ends the
//! connection. A response the endpoint took too long to build is never
//! sent, and a client that stops reading a body cannot hold the connection
//! past it. (HTTP/2 streams have their own deadline, in `connection`.)

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hyper::rt::{Read, ReadBufCursor, Write};
use tokio::time::Sleep;

/// No deadline.
const NONE: u64 = u64::MAX;

/// A connection's write deadline, set by its requests.
#[derive(Debug)]
pub struct WriteDeadline {
    born: Instant,
    /// Nanoseconds from `born`, or [`NONE`].
    at: AtomicU64,
}

impl WriteDeadline {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            born: Instant::now(),
            at: AtomicU64::new(NONE),
        })
    }

    /// Writes fail from `limit` after now.
    pub fn arm(&self, limit: Duration) {
        let at = self.born.elapsed().saturating_add(limit);
        let nanos = u64::try_from(at.as_nanos()).unwrap_or(NONE - 1);
        self.at.store(nanos, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Instant> {
        match self.at.load(Ordering::Relaxed) {
            NONE => None,
            nanos => Some(self.born + Duration::from_nanos(nanos)),
        }
    }
}

/// A connection's transport whose writes obey a [`WriteDeadline`].
pub struct DeadlineIo<I> {
    inner: I,
    deadline: Arc<WriteDeadline>,
    /// Wakes a write blocked on a full socket at the deadline.
    timer: Option<(Instant, Pin<Box<Sleep>>)>,
}

impl<I> DeadlineIo<I> {
    pub fn new(inner: I, deadline: Arc<WriteDeadline>) -> Self {
        Self {
            inner,
            deadline,
            timer: None,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "write_timeout passed before the response was written",
    )
}

impl<I: Write + Unpin> DeadlineIo<I> {
    /// Runs one write-side operation under the deadline.
    fn guarded<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut I>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let Some(at) = self.deadline.get() else {
            return op(Pin::new(&mut self.inner), cx);
        };
        if Instant::now() >= at {
            return Poll::Ready(Err(timed_out()));
        }
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => {
                let timer = match &mut self.timer {
                    Some((armed, sleep)) if *armed == at => sleep,
                    slot => {
                        let sleep = Box::pin(tokio::time::sleep_until(at.into()));
                        &mut slot.insert((at, sleep)).1
                    }
                };
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timed_out())),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<I: Read + Unpin> Read for DeadlineIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for DeadlineIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guarded(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guarded(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guarded(cx, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use hyper_util::rt::TokioIo;

    use super::*;

    async fn write_one<I: Write + Unpin>(io: &mut DeadlineIo<I>) -> io::Result<usize> {
        poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, b"x")).await
    }

    #[tokio::test]
    async fn writes_pass_until_the_deadline_and_fail_after_it() {
        let (client, _server) = tokio::io::duplex(1 << 16);
        let deadline = WriteDeadline::new();
        let mut io = DeadlineIo::new(TokioIo::new(client), deadline.clone());
        // No deadline yet.
        assert_eq!(write_one(&mut io).await.unwrap(), 1);
        deadline.arm(Duration::from_millis(30));
        assert_eq!(write_one(&mut io).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(40)).await;
        let error = write_one(&mut io).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        // The next request moves it on.
        deadline.arm(Duration::from_secs(5));
        assert_eq!(write_one(&mut io).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_write_blocked_on_a_client_that_does_not_read_fails_at_the_deadline() {
        // A pipe of 16 bytes the other side never reads.
        let (client, _server) = tokio::io::duplex(16);
        let deadline = WriteDeadline::new();
        let mut io = DeadlineIo::new(TokioIo::new(client), deadline.clone());
        deadline.arm(Duration::from_millis(50));
        let started = Instant::now();
        let mut written = 0;
        let error = loop {
            match poll_fn(|cx| Pin::new(&mut io).poll_write(cx, &[0u8; 8])).await {
                Ok(n) => written += n,
                Err(error) => break error,
            }
        };
        assert_eq!(written, 16);
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
