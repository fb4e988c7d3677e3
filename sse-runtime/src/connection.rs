//! The listener behind [`serve`](crate::serve): its connections time out stalled writes and
//! close when a shutdown's grace ends, even if their client stopped reading.
//!
//! hyper stops polling a response body while its write buffer is full, and it has no write
//! timeout of its own, so a client that stops reading keeps its connection (and the buffers
//! behind it) forever. [`Listener`] wraps each accepted `TcpStream` in an [`Io`] that arms a timer
//! whenever a write cannot proceed; an SSE response with a
//! [`send_timeout`](crate::EventSourceResponse::send_timeout) sets that timer's length through the
//! [`Connection`] it finds in the request. When it fires, the write fails, hyper closes the
//! connection (with a reset, so the kernel frees its buffers at once), and the stream ends with
//! [`CloseReason::SendTimeout`](crate::CloseReason::SendTimeout), all without an extra task or any
//! cost per event.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use sse_runtime::connection::{Connection, Listener};
//!
//! # async fn run(app: Router) -> std::io::Result<()> {
//! let listener = Listener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<Connection>()).await
//! # }
//! ```
//!
//! The same connections follow the [`Shutdown`] of the SSE responses they carry: once it began
//! and the longest grace of those responses plus [`SHUTDOWN_MARGIN`] passed, a connection whose
//! streams could not end by themselves (hyper does not poll a body whose client is not reading)
//! fails its pending read or write, hyper closes it (with a reset), and the dropped streams
//! report [`CloseReason::Shutdown`](crate::CloseReason::Shutdown). A connection that never
//! carried an SSE stream is left to axum's graceful shutdown.
//!
//! Its connections also write small responses cheaper: hyper writes each chunk of a stream as
//! three pieces (the chunk's size line, the events, a CRLF) with one `writev(2)`; an [`Io`]
//! gathers the pieces of a write of at most 2 KiB (one event, as a fan-out sends them one at a
//! time) into one buffer and sends it with one `send(2)`, which costs the kernel less. Larger
//! writes stay vectored, uncopied.
//!
//! Without this setup a send timeout still works: the stream then runs in a task of its own,
//! which drops the source and reports `SendTimeout`, but the socket stays open until the client
//! goes away, and a graceful shutdown waits for it.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::future::Future as _;
use std::io;
use std::mem::ManuallyDrop;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::time::{Instant, Sleep};

use crate::lock;
use crate::shutdown::{self, Shutdown, ShutdownWatch};
use crate::time::deadline;

/// A TCP listener for `axum::serve` whose connections can enforce send timeouts.
///
/// Accepted sockets get `TCP_NODELAY`, so that small events are not held back by Nagle's
/// algorithm.
///
/// ```
/// use sse_runtime::connection::Listener;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let listener = Listener::bind("127.0.0.1:0").await?;
/// assert!(listener.local_addr()?.port() > 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    /// Binds a new listener.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        TcpListener::bind(addr).await.map(Self::new)
    }

    /// Wraps a bound `TcpListener`.
    pub fn new(inner: TcpListener) -> Self {
        Self { inner }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl axum::serve::Listener for Listener {
    type Io = Io;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Io, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        (Io::new(stream), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// How long after the grace of its streams a connection is closed on shutdown: the streams end
/// themselves when the grace ends, if hyper still polls them; this is the backstop for those it
/// does not (a client that stopped reading), and the margin lets the ordinary ending win.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_millis(250);

/// The shared state of one connection.
///
/// Its atomics are `Relaxed`: each is a flag or a setting on its own, guarding no other memory.
/// The body that sets the write timeout is polled on the connection's task (HTTP/1), and a body
/// that reads `timed_out` or `shut_down` is dropped after the connection's task set them, with
/// hyper's own synchronization (the task, or h2's stream lock) between the two.
#[derive(Debug, Default)]
struct Shared {
    /// The write timeout in nanoseconds; 0 means none.
    timeout_nanos: AtomicU64,
    timed_out: AtomicBool,
    /// The shutdown the SSE streams of this connection follow (set by the first of them).
    shutdown: OnceLock<Shutdown>,
    /// The longest grace of those streams, in nanoseconds (saturating).
    grace_nanos: AtomicU64,
    /// The connection was closed because the shutdown's grace ended.
    shut_down: AtomicBool,
}

impl Shared {
    fn grace(&self) -> Duration {
        Duration::from_nanos(self.grace_nanos.load(Ordering::Relaxed))
            .saturating_add(SHUTDOWN_MARGIN)
    }
}

/// What a response holds of its connection.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionHandle(Arc<Shared>);

impl ConnectionHandle {
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) {
        let nanos = timeout.map_or(0, |t| {
            u64::try_from(t.as_nanos()).unwrap_or(u64::MAX).max(1)
        });
        self.0.timeout_nanos.store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn timed_out(&self) -> bool {
        self.0.timed_out.load(Ordering::Relaxed)
    }

    /// Makes the connection follow `shutdown`: once it began and `grace` (the longest of the
    /// connection's streams) plus [`SHUTDOWN_MARGIN`] passed, the connection is closed, even if
    /// hyper cannot poll the streams because their client stopped reading.
    pub(crate) fn follow_shutdown(&self, shutdown: &Shutdown, grace: Duration) {
        // A connection serves one app, so every stream names the same handle.
        let _ = self.0.shutdown.set(shutdown.clone());
        let nanos = u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX);
        self.0.grace_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Whether the connection was closed by the shutdown.
    pub(crate) fn shut_down(&self) -> bool {
        self.0.shut_down.load(Ordering::Relaxed)
    }
}

/// A connection accepted by [`Listener`]: a `TcpStream` whose stalled writes time out once a
/// response with a send timeout set one. You do not use it directly; `axum::serve` does.
pub struct Io {
    socket: Arc<Socket>,
    shared: Arc<Shared>,
    stall: Option<Pin<Box<Sleep>>>,
    stalled: bool,
    /// The shutdown, once an SSE stream of this connection follows one.
    shutdown: Option<Box<ShutdownWatch>>,
    /// The watch is waiting, registered with the connection task's waker: until a shutdown of
    /// the process begins, nothing of it (or of `shared`) needs reading.
    armed: bool,
    /// Closed by the shutdown: every later read and write fails.
    closed: bool,
}

impl Io {
    fn new(stream: TcpStream) -> Self {
        Self {
            socket: Arc::new(Socket::new(stream)),
            shared: Arc::default(),
            stall: None,
            stalled: false,
            shutdown: None,
            armed: false,
            closed: false,
        }
    }

    /// Called whenever the socket cannot proceed (hyper then waits for it, and may not poll
    /// the response bodies): whether the shutdown's grace ended, so the connection must close.
    /// The watch registers the task's waker, so a connection parked on a client that stopped
    /// reading wakes up for it.
    fn shutdown_due(&mut self, cx: &mut Context<'_>) -> bool {
        // hyper polls the socket from the connection's task only, so the waker is the one
        // the watch holds.
        if self.armed && shutdown::none_triggered() {
            return false;
        }
        let watch = match &mut self.shutdown {
            Some(watch) => watch,
            None => {
                let Some(handle) = self.shared.shutdown.get() else {
                    return false;
                };
                self.shutdown.insert(Box::new(ShutdownWatch::for_connection(
                    handle,
                    Duration::ZERO,
                )))
            }
        };
        watch.extend_grace(self.shared.grace());
        if watch.poll(cx).is_pending() {
            self.armed = true;
            return false;
        }
        self.closed = true;
        self.shared.shut_down.store(true, Ordering::Relaxed);
        if let Err(error) = self.socket.stream.set_zero_linger() {
            tracing::debug!(%error, "cannot set SO_LINGER");
        }
        tracing::debug!("shutdown grace over; closing a connection whose client is not reading");
        true
    }

    /// A pending poll, or the error that closes the connection once the shutdown is due.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.shutdown_due(cx) {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        Poll::Pending
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &TcpStream {
        &self.socket.stream
    }

    /// The socket, shared with `serve`'s connection task for its direct writes.
    pub(crate) fn socket(&self) -> &Arc<Socket> {
        &self.socket
    }

    /// Sends what a direct write left (see [`Socket::poll_direct`]) before anything of hyper's:
    /// the bytes of a chunk the socket took only in part, or the error that write met.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.socket.has_pending.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let socket = self.socket.clone();
        if let Some(error) = lock(&socket.failed).take() {
            return Poll::Ready(Err(error));
        }
        let mut pending = lock(&socket.pending);
        while !pending.is_empty() {
            let poll = poll_write_to(&socket.stream, cx, &pending);
            match ready!(self.track(cx, poll)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => pending.advance(n),
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        socket.has_pending.store(false, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }

    /// Tracks a write's result: progress clears the stall, a blocked write arms the timer.
    fn track(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if poll.is_ready() {
            self.stalled = false;
            return poll;
        }
        if self.shutdown_due(cx) {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        let nanos = self.shared.timeout_nanos.load(Ordering::Relaxed);
        if nanos == 0 {
            return poll;
        }
        if !self.stalled {
            self.stalled = true;
            let at = deadline(Instant::now(), Duration::from_nanos(nanos));
            match &mut self.stall {
                Some(sleep) => sleep.as_mut().reset(at),
                None => self.stall = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        let expired = self
            .stall
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if !expired {
            return Poll::Pending;
        }
        self.shared.timed_out.store(true, Ordering::Relaxed);
        // Reset instead of a FIN that would wait behind unread data for a client that is gone.
        if let Err(error) = self.socket.stream.set_zero_linger() {
            tracing::debug!(%error, "cannot set SO_LINGER");
        }
        tracing::warn!("send timeout: the client stopped reading; closing the connection");
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "send timeout: the client stopped reading",
        )))
    }
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("stream", &self.socket.stream)
            .field("stalled", &self.stalled)
            .finish_non_exhaustive()
    }
}

/// Vectored writes of at most this many bytes are gathered into one buffer and sent with one
/// `send(2)`.
const GATHER_LIMIT: usize = 2048;

/// `bufs` gathered into one buffer, with their length, if they are small enough
/// ([`GATHER_LIMIT`]).
///
/// hyper writes a chunk of an SSE response as three pieces (the chunk's size line, the event,
/// the CRLF after it) with one `writev(2)`. For one event at a time, as a fan-out sends them,
/// `writev` costs the kernel more than the bytes: it looks up the file with its position lock
/// and imports the vector before the socket's send, where `send(2)` goes to the socket at
/// once. Copying a few hundred bytes costs less than either. Larger writes (a backlog, a
/// replay) keep `writev`, which copies nothing in user space.
fn gathered(bufs: &[io::IoSlice<'_>]) -> Option<([u8; GATHER_LIMIT], usize)> {
    let len = bufs.iter().try_fold(0usize, |len, buf| {
        let len = len + buf.len();
        (len <= GATHER_LIMIT).then_some(len)
    })?;
    let mut small = [0u8; GATHER_LIMIT];
    let mut at = 0;
    for buf in bufs {
        small[at..at + buf.len()].copy_from_slice(buf);
        at += buf.len();
    }
    Some((small, len))
}

fn closed_by_shutdown() -> io::Error {
    io::Error::other("server shutdown: the grace period ended")
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        // hyper's registration of the read replaces the direct path's watch.
        this.socket.read_armed.store(false, Ordering::Relaxed);
        match poll_read_from(&this.socket.stream, cx, buf) {
            // hyper keeps a read pending on every open connection (h2 frames, h1 EOF detection).
            Poll::Pending => this.pending(cx),
            ready => ready,
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        ready!(this.poll_drain(cx))?;
        this.socket.clean.store(false, Ordering::Relaxed);
        let poll = poll_write_to(&this.socket.stream, cx, buf);
        this.track(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        ready!(this.poll_drain(cx))?;
        this.socket.clean.store(false, Ordering::Relaxed);
        let stream = &this.socket.stream;
        let poll = match gathered(bufs) {
            Some((small, len)) => poll_write_to(stream, cx, &small[..len]),
            None => poll_write_vectored_to(stream, cx, bufs),
        };
        this.track(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Err(closed_by_shutdown()));
        }
        ready!(this.poll_drain(cx))?;
        // A TCP socket has nothing to flush. hyper flushes only once its buffer is written
        // out, so from here until its next write, nothing of hyper's waits to be sent.
        this.socket.clean.store(true, Ordering::Relaxed);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Poll::Ready(socket2::SockRef::from(&this.socket.stream).shutdown(std::net::Shutdown::Write))
    }
}

/// `TcpStream::poll_read` through a shared reference.
fn poll_read_from(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    loop {
        ready!(stream.poll_read_ready(cx))?;
        match stream.try_read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Poll::Ready(Err(error)),
        }
    }
}

/// `TcpStream::poll_write` through a shared reference.
fn poll_write_to(stream: &TcpStream, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    poll_writable(stream, cx, || stream.try_write(buf))
}

/// `TcpStream::poll_write_vectored` through a shared reference.
fn poll_write_vectored_to(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    poll_writable(stream, cx, || stream.try_write_vectored(bufs))
}

/// `write` once `stream` is writable, again each time it finds the socket full.
fn poll_writable(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    mut write: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match write() {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            result => return Poll::Ready(result),
        }
    }
}

/// `send(2)` flags of a direct write: no SIGPIPE for a closed client (an `EPIPE` error
/// instead), as std's and tokio's writes to a `TcpStream` ask.
#[cfg(any(target_os = "linux", target_os = "android"))]
const SEND_FLAGS: std::ffi::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SEND_FLAGS: std::ffi::c_int = 0;

/// The most frames one task poll writes directly before it lets other tasks run (as hyper's
/// own loop does after 16 rounds).
const DIRECT_FRAMES: usize = 16;

/// What hyper is to get next from a relayed body instead of polling it: the frame after the
/// direct writes (trailers, an error) or the end.
type Stash = Option<Result<Frame<Bytes>, axum::Error>>;

/// The SSE response a connection is streaming, when `serve` relays it.
#[derive(Default)]
struct Relay {
    body: Option<Body>,
    stash: Option<Stash>,
    /// The waker the socket's read readiness was last registered with by the direct path.
    read: Option<ReadWatch>,
}

/// A waker for the socket's read readiness that says it was used: then, and only then, the
/// direct path has to ask the socket again whether the client sent something. Each event's
/// poll otherwise reads no line of the socket's readiness state, which lives in the I/O
/// driver's slab away from the connection's own memory (a cache miss per delivery saved).
struct ReadWatch {
    flag: Arc<ReadFlag>,
    waker: std::task::Waker,
}

struct ReadFlag {
    /// Read readiness came since the watch was registered.
    woken: AtomicBool,
    /// The connection task's waker.
    task: std::task::Waker,
}

impl std::task::Wake for ReadFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

impl ReadWatch {
    fn new(task: &std::task::Waker) -> Self {
        let flag = Arc::new(ReadFlag {
            woken: AtomicBool::new(false),
            task: task.clone(),
        });
        Self {
            waker: std::task::Waker::from(flag.clone()),
            flag,
        }
    }
}

/// The socket of one connection, shared by its [`Io`] (hyper's side) and `serve`'s connection
/// task, which writes the frames of a relayed SSE body to it directly
/// ([`poll_direct`](Self::poll_direct)).
pub(crate) struct Socket {
    stream: TcpStream,
    /// Nothing of hyper's waits to be written: its last call on the socket's write side was a
    /// completed flush, which hyper makes only once its buffer is empty.
    clean: AtomicBool,
    /// `pending` or `failed` holds something.
    has_pending: AtomicBool,
    /// What the socket did not take of a direct write: it goes before hyper's next bytes.
    pending: Mutex<BytesMut>,
    /// The error a direct write met, for hyper's next write to report.
    failed: Mutex<Option<io::Error>>,
    relay: Mutex<Relay>,
    /// The direct path's [`ReadWatch`] is what the socket's read readiness wakes: hyper has
    /// not polled a read since (its own registration replaces the watch's).
    read_armed: AtomicBool,
    /// Where the connection's task is, for a send that would wake it (see [`Socket::wake`]).
    task: AtomicU8,
    /// The thread the task last went idle on ([`this_thread`]): only a send on that thread
    /// polls the body in the task's place, on the runtime and the thread the task would have
    /// been polled on.
    thread: AtomicU64,
    /// A panic of the relayed body polled by a send, for the connection's task to go on with.
    panicked: Mutex<Option<Box<dyn Any + Send>>>,
}

/// The connection's task is being polled, or waits for something other than its relayed
/// body alone: a send must wake it.
const TASK_BUSY: u8 = 0;
/// The task's last poll ended on the direct path with everything written and the body
/// waiting: a send may poll the body in its place.
const TASK_IDLE: u8 = 1;
/// A send is polling the body in the task's place.
const TASK_INLINE: u8 = 2;
/// A send is polling the body, and the task was polled meanwhile (and did nothing): the send
/// wakes it when it is done.
const TASK_WANTED: u8 = 3;

thread_local! {
    /// The socket whose relayed body the direct path is polling on this thread, with the
    /// identity of the waker of its poll: a tap that parks that waker parks the socket with
    /// it, so that the send that wakes it can poll the body in its task's place.
    static DIRECT: ManuallyDrop<Cell<Option<DirectPoll>>> =
        const { ManuallyDrop::new(Cell::new(None)) };
    /// A send is polling bodies in their tasks' places on this thread: a send from inside
    /// one of them wakes, it does not poll.
    static INLINING: Cell<bool> = const { Cell::new(false) };
}

/// A poll of a relayed body on the direct path: its socket, and its waker's identity.
struct DirectPoll {
    socket: Arc<Socket>,
    waker: (usize, usize),
}

/// The socket whose relayed body the direct path polls on this thread with `waker`, if any.
pub(crate) fn direct_socket(waker: &Waker) -> Option<Arc<Socket>> {
    DIRECT.with(|direct| {
        let current = direct.take();
        let found = match &current {
            Some(poll) if crate::task_poll::identity(waker) == poll.waker => {
                Some(poll.socket.clone())
            }
            _ => None,
        };
        direct.set(current);
        found
    })
}

/// How many bodies a send on this thread may poll in their tasks' places before it wakes the
/// rest: none from inside such a poll, all on a runtime of one worker, else [`INLINE_MAX`], so
/// that the other workers take their share meanwhile.
pub(crate) fn inline_budget() -> usize {
    if INLINING.with(Cell::get) {
        return 0;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.metrics().num_workers() == 1 => usize::MAX,
        Ok(_) => INLINE_MAX,
        Err(_) => 0,
    }
}

/// How many bodies one send polls in their tasks' places on a runtime of several workers.
const INLINE_MAX: usize = 64;

/// A number of this thread's own, never 0, for a socket to tell whether its task last ran here.
fn this_thread() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static THIS: Cell<u64> = const { Cell::new(0) };
    }
    THIS.with(|this| {
        let mut number = this.get();
        if number == 0 {
            number = NEXT.fetch_add(1, Ordering::Relaxed);
            this.set(number);
        }
        number
    })
}

/// Held by the tests that read the counters below (process-wide), one at a time.
#[cfg(test)]
pub(crate) static COUNTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Reads from `client` into `seen` until `want` is among it; at most 10 s per read.
#[cfg(test)]
pub(crate) async fn read_until(client: &mut tokio::net::TcpStream, seen: &mut Vec<u8>, want: &str) {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(want) {
        let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {want:?} within 10 s"))
            .unwrap();
        assert!(n > 0, "the connection closed before {want:?}");
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Polls of relayed bodies by a send, in their tasks' places.
#[cfg(test)]
pub(crate) static INLINE_POLLS: AtomicU64 = AtomicU64::new(0);
#[cfg(test)]
pub(crate) static DIRECT_CHUNKS: AtomicU64 = AtomicU64::new(0);
#[cfg(test)]
pub(crate) static PARTIAL_CHUNKS: AtomicU64 = AtomicU64::new(0);

impl Socket {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            clean: AtomicBool::new(false),
            has_pending: AtomicBool::new(false),
            pending: Mutex::default(),
            failed: Mutex::default(),
            relay: Mutex::default(),
            read_armed: AtomicBool::new(false),
            task: AtomicU8::new(TASK_BUSY),
            thread: AtomicU64::new(0),
            panicked: Mutex::default(),
        }
    }

    /// Begins a poll of the connection's task: `false` if a send is polling the body in the
    /// task's place (it wakes the task when it is done). Goes on with a panic that such a
    /// poll met, as the task's own poll would have.
    pub(crate) fn begin_poll(&self) -> bool {
        let mut state = self.task.load(Ordering::Acquire);
        loop {
            let next = match state {
                TASK_BUSY => break,
                TASK_IDLE => TASK_BUSY,
                _ => TASK_WANTED,
            };
            match self
                .task
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == TASK_WANTED => return false,
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        if let Some(panic) = lock(&self.panicked).take() {
            std::panic::resume_unwind(panic);
        }
        true
    }

    /// Polls the relayed body on the direct path ([`Socket::poll_direct`]), as the poll of
    /// the connection's task; `Pending` leaves the task idle, for a send to poll the body in
    /// its place.
    pub(crate) fn poll_task(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<()> {
        let polled = self.poll_marked(cx);
        if polled.is_pending() {
            self.thread.store(this_thread(), Ordering::Relaxed);
            self.task.store(TASK_IDLE, Ordering::Release);
        }
        polled
    }

    fn poll_marked(self: &Arc<Self>, cx: &mut Context<'_>) -> Poll<()> {
        /// Puts back what [`DIRECT`] held, also on a panic's way out.
        struct Restore(Option<DirectPoll>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let outer = self.0.take();
                drop(DIRECT.with(|direct| direct.replace(outer)));
            }
        }
        let poll = DirectPoll {
            socket: self.clone(),
            waker: crate::task_poll::identity(cx.waker()),
        };
        let _restore = Restore(DIRECT.with(|direct| direct.replace(Some(poll))));
        self.poll_direct(cx)
    }

    /// Polls the relayed body in the place of the connection's task, with the task's
    /// `waker`, when the task is idle on the direct path and last ran on this thread; else,
    /// or when hyper has something to do after it, wakes the task.
    pub(crate) fn wake(self: Arc<Self>, waker: Waker) {
        if self.thread.load(Ordering::Relaxed) != this_thread()
            || self
                .task
                .compare_exchange(TASK_IDLE, TASK_INLINE, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            waker.wake();
            return;
        }
        let mut cx = Context::from_waker(&waker);
        let polled = {
            let _poll = crate::task_poll::enter(&waker);
            INLINING.with(|inlining| inlining.set(true));
            let mut poll =
                std::pin::pin!(tokio::task::unconstrained(std::future::poll_fn(
                    |cx| self.poll_marked(cx)
                )));
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                poll.as_mut().poll(&mut cx)
            }));
            INLINING.with(|inlining| inlining.set(false));
            polled
        };
        #[cfg(test)]
        INLINE_POLLS.fetch_add(1, Ordering::Relaxed);
        match polled {
            Ok(Poll::Pending)
                if self
                    .task
                    .compare_exchange(TASK_INLINE, TASK_IDLE, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok() => {}
            Ok(_) => {
                self.task.store(TASK_BUSY, Ordering::Release);
                waker.wake();
            }
            Err(panic) => {
                *lock(&self.panicked) = Some(panic);
                self.task.store(TASK_BUSY, Ordering::Release);
                waker.wake();
            }
        }
    }

    /// Makes `body` the relayed response of this connection: hyper polls the [`Relayed`] body,
    /// which polls `body`, and the connection task writes its frames itself while hyper has
    /// nothing to write. Only for a chunked HTTP/1.1 response.
    pub(crate) fn relay(self: &Arc<Self>, body: Body) -> Relayed {
        // hyper is about to write the head.
        self.clean.store(false, Ordering::Relaxed);
        *lock(&self.relay) = Relay {
            body: Some(body),
            stash: None,
            read: None,
        };
        Relayed {
            socket: self.clone(),
        }
    }

    /// Polls the relayed body, if any, and writes its frames to the socket as hyper's chunks,
    /// while nothing of hyper's waits to be written. `Pending` when hyper has nothing to do:
    /// the body waits, the socket took every chunk, and nothing is there to read (so hyper's
    /// pending read has nothing to find). `Ready` when hyper must be polled: no relayed body,
    /// hyper has bytes of its own to write, a chunk was taken only in part (hyper's next flush
    /// sends the rest, and waits for the socket), the body ended or gave something other than
    /// data (hyper gets it from the relayed body), or the client sent something.
    pub(crate) fn poll_direct(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.clean.load(Ordering::Relaxed) || self.has_pending.load(Ordering::Relaxed) {
            return Poll::Ready(());
        }
        let mut relay = lock(&self.relay);
        let relay = &mut *relay;
        if relay.stash.is_some() {
            return Poll::Ready(());
        }
        let Some(body) = relay.body.as_mut() else {
            return Poll::Ready(());
        };
        for _ in 0..DIRECT_FRAMES {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Pending => return self.poll_readable(&mut relay.read, cx),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        // hyper asks the same after each data frame, and skips empty ones.
                        let end = http_body::Body::is_end_stream(body);
                        let whole = data.is_empty() || self.write_chunk(&data);
                        if end {
                            relay.stash = Some(None);
                        }
                        if end || !whole {
                            return Poll::Ready(());
                        }
                    }
                    Err(frame) => {
                        relay.stash = Some(Some(Ok(frame)));
                        return Poll::Ready(());
                    }
                },
                Poll::Ready(other) => {
                    relay.stash = Some(other);
                    return Poll::Ready(());
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// `Ready` if the client may have sent something (hyper must read it), else `Pending`
    /// with the socket's read readiness set to wake this task. Asks the socket only when its
    /// readiness woke the watch, or the watch is not the one registered.
    fn poll_readable(&self, read: &mut Option<ReadWatch>, cx: &mut Context<'_>) -> Poll<()> {
        let watch = match read {
            Some(watch) if watch.flag.task.will_wake(cx.waker()) => watch,
            _ => {
                self.read_armed.store(false, Ordering::Relaxed);
                read.insert(ReadWatch::new(cx.waker()))
            }
        };
        if self.read_armed.load(Ordering::Relaxed) && !watch.flag.woken.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        // Cleared first: readiness that comes from here on is either seen by the poll below
        // or wakes the watch.
        watch.flag.woken.store(false, Ordering::Relaxed);
        match self
            .stream
            .poll_read_ready(&mut Context::from_waker(&watch.waker))
        {
            Poll::Pending => {
                self.read_armed.store(true, Ordering::Relaxed);
                Poll::Pending
            }
            Poll::Ready(_) => Poll::Ready(()),
        }
    }

    /// Writes `data` as one chunk, framed as hyper frames it; whether the socket took all of
    /// it (what it did not take, or the error, waits in `pending`).
    fn write_chunk(&self, data: &Bytes) -> bool {
        use std::io::Write as _;
        let mut line = [0u8; 20];
        let mut cursor = io::Cursor::new(&mut line[..]);
        write!(cursor, "{:X}\r\n", data.len()).expect("a usize in hex fits 20 bytes");
        let len = usize::try_from(cursor.position()).unwrap_or(0);
        let line = &line[..len];
        let parts = [line, &data[..], b"\r\n"];
        let total = line.len() + data.len() + 2;
        let slices = parts.map(io::IoSlice::new);
        // Straight to the socket, not through tokio's `try_write`, which first reads the
        // socket's readiness in the I/O driver's slab (a cache line of its own, cold at each
        // event). A full socket answers `WouldBlock` all the same, and the rest goes out
        // through `Io`, whose writes wait for readiness as tokio's do.
        let socket = socket2::SockRef::from(&self.stream);
        let result = match gathered(&slices) {
            Some((small, len)) => socket.send_with_flags(&small[..len], SEND_FLAGS),
            None => socket.send_vectored_with_flags(&slices, SEND_FLAGS),
        };
        let written = match result {
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
            Err(error) => {
                *lock(&self.failed) = Some(error);
                self.has_pending.store(true, Ordering::Relaxed);
                return false;
            }
        };
        #[cfg(test)]
        DIRECT_CHUNKS.fetch_add(1, Ordering::Relaxed);
        if written == total {
            return true;
        }
        #[cfg(test)]
        PARTIAL_CHUNKS.fetch_add(1, Ordering::Relaxed);
        let mut pending = lock(&self.pending);
        let mut skip = written;
        for part in parts {
            let from = skip.min(part.len());
            pending.extend_from_slice(&part[from..]);
            skip -= from;
        }
        self.has_pending.store(true, Ordering::Relaxed);
        false
    }
}

/// The body hyper polls for a relayed response: what the direct writes left for it (the
/// frame after them, or the end), else the response's own body. Dropping it drops that body.
pub(crate) struct Relayed {
    socket: Arc<Socket>,
}

impl http_body::Body for Relayed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut relay = lock(&self.socket.relay);
        if let Some(stash) = relay.stash.take() {
            return Poll::Ready(stash);
        }
        match relay.body.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let relay = lock(&self.socket.relay);
        match &relay.stash {
            Some(stash) => stash.is_none(),
            None => relay
                .body
                .as_ref()
                .is_none_or(http_body::Body::is_end_stream),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let relay = lock(&self.socket.relay);
        match (&relay.stash, &relay.body) {
            (None, Some(body)) => body.size_hint(),
            _ => http_body::SizeHint::default(),
        }
    }
}

impl Drop for Relayed {
    fn drop(&mut self) {
        // Taken out first: the body's drop runs its stream's close hooks, outside the lock.
        let body = std::mem::take(&mut *lock(&self.socket.relay));
        drop(body);
    }
}

/// Connection info for `into_make_service_with_connect_info::<Connection>()` with a
/// [`Listener`]: the peer's address, and what a response needs to time out its writes.
///
/// Handlers can take `ConnectInfo<Connection>` to learn the client's address:
///
/// ```
/// use axum::extract::ConnectInfo;
/// use sse_runtime::connection::Connection;
///
/// async fn whoami(ConnectInfo(connection): ConnectInfo<Connection>) -> String {
///     connection.remote_addr().to_string()
/// }
/// # let _ = whoami;
/// ```
#[derive(Clone, Debug)]
pub struct Connection {
    remote_addr: SocketAddr,
    handle: ConnectionHandle,
}

impl Connection {
    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }

    pub(crate) fn handle(&self) -> &ConnectionHandle {
        &self.handle
    }
}

impl Connection {
    /// The connection of `io`, accepted from `remote_addr`.
    pub(crate) fn of(io: &Io, remote_addr: SocketAddr) -> Self {
        Self {
            remote_addr,
            handle: ConnectionHandle(io.shared.clone()),
        }
    }
}

impl Connected<IncomingStream<'_, Listener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        Self::of(stream.io(), *stream.remote_addr())
    }
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;

    use super::{GATHER_LIMIT, gathered};

    #[test]
    fn small_vectored_writes_are_gathered_into_one_buffer_in_order() {
        let size_line = b"40\r\n";
        let event = [b'x'; 64];
        let bufs = [
            IoSlice::new(size_line),
            IoSlice::new(&[]),
            IoSlice::new(&event),
            IoSlice::new(b"\r\n"),
        ];
        let (small, len) = gathered(&bufs).expect("gathered");
        let expected: Vec<u8> = [&size_line[..], &event, b"\r\n"].concat();
        assert_eq!(&small[..len], &expected[..]);
        assert_eq!(gathered(&[]).map(|(_, len)| len), Some(0));
    }

    #[test]
    fn vectored_writes_above_the_limit_stay_vectored() {
        let half = vec![7u8; GATHER_LIMIT / 2];
        let exactly = [IoSlice::new(&half), IoSlice::new(&half)];
        let (small, len) = gathered(&exactly).expect("at the limit, gathered");
        assert_eq!(len, GATHER_LIMIT);
        assert!(small.iter().all(|&byte| byte == 7));
        let over = [IoSlice::new(&half), IoSlice::new(&half), IoSlice::new(b"!")];
        assert!(gathered(&over).is_none());
    }
}
