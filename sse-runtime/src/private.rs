//! Names the `#[sse_endpoint]` expansion uses, so users need not depend on them. Not public API:
//! anything here may change in any release.

pub use async_stream;
#[cfg(feature = "macros")]
pub use sse_macros::sse_block;

/// Defines SSE endpoints whose bodies `yield` their events, on stable Rust.
///
/// Write `async fn`s inside the braces, each with an optional
/// [`#[sse_endpoint(..)]`](crate::sse_endpoint) carrying its options; every one becomes an axum
/// handler returning an [`EventSourceResponse`](crate::EventSourceResponse). The options, the
/// parameters and the rules of the body are those of [`sse_endpoint`](crate::sse_endpoint).
///
/// ```
/// use std::time::Duration;
///
/// use axum::{Router, extract::Path, routing::get};
/// use sse_runtime::{ServerSentEvent, sse};
///
/// sse! {
///     #[sse_endpoint(ping = 15, send_timeout = 5)]
///     async fn numbers(Path((lo, hi)): Path<(u32, u32)>) {
///         for i in lo..=hi {
///             tokio::time::sleep(Duration::from_millis(900)).await;
///             yield ServerSentEvent::new().id(i).data(i);
///         }
///     }
///
///     /// Counts up once a second, forever.
///     pub async fn ticks() {
///         let mut n = 0u64;
///         loop {
///             tokio::time::sleep(Duration::from_secs(1)).await;
///             n += 1;
///             yield n;
///         }
///     }
/// }
///
/// let app: Router = Router::new()
///     .route("/numbers/{lo}/{hi}", get(numbers))
///     .route("/ticks", get(ticks));
/// ```
///
/// Why a block: stable rustc rejects `yield` written directly in a fn body ("yield syntax is
/// experimental") while it parses the file, before any attribute could rewrite it. Tokens inside
/// a macro's braces are not parsed that way, so the same fn works inside `sse! { .. }`. The
/// attribute alone works where the body has no `yield` of its own (a nightly toolchain with
/// `#![feature(yield_expr)]`, a body whose `yield`s sit inside other macros, or a fn that
/// returns its stream, `-> impl Stream<Item = T>`).
///
/// The generated code names the runtime through the path this macro was called by, so it works
/// through a re-export without `crate = ".."`.
#[cfg(feature = "macros")]
#[macro_export]
macro_rules! sse {
    ($($tokens:tt)*) => {
        $crate::__private::sse_block! { ($crate) $($tokens)* }
    };
}

use futures_core::Stream;
use futures_util::StreamExt;
use http::StatusCode;

use crate::{BoxError, EventSourceResponse, IntoEvent, Payload};

/// The return type of a fallible endpoint, `Result<(), E>`, written however the user spelled
/// it (`io::Result<()>` included): names its error type.
pub trait EndpointResult {
    type Error;

    /// The result as `Result<(), E>`.
    fn into_result(self) -> Result<(), Self::Error>;
}

/// A body that returns nothing cannot fail.
impl EndpointResult for () {
    type Error = std::convert::Infallible;

    fn into_result(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl<E> EndpointResult for Result<(), E> {
    type Error = E;

    fn into_result(self) -> Result<(), E> {
        self
    }
}

/// The error type of an endpoint that ends its stream on an error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot end a Server-Sent Event stream as an error",
    label = "the error type of this `#[sse_endpoint]` fn must convert into `sse_runtime::BoxError`",
    note = "implement `std::error::Error + Send + Sync + 'static` for it, use a `String` or a boxed error, \
            or add `on_error = path` to turn the error into a final event"
)]
pub trait StreamError: Into<BoxError> {
    /// Converts the error for the response's log.
    fn into_box_error(self) -> BoxError;
}

impl<E: Into<BoxError>> StreamError for E {
    fn into_box_error(self) -> BoxError {
        self.into()
    }
}

/// The response of a fallible endpoint without `on_error`: an error aborts the response and is
/// logged. `R` is the fn's return type; it fixes the stream's error type.
pub fn fallible<R, S>(events: S) -> EventSourceResponse
where
    R: EndpointResult,
    R::Error: StreamError,
    S: Stream<Item = Result<Payload, R::Error>> + Send + 'static,
{
    EventSourceResponse::from_try_stream(
        events.map(|item| item.map_err(StreamError::into_box_error)),
    )
}

/// The stream of a fallible endpoint with `on_error = f`: an error becomes `f(error)`, the last
/// event (the stream ends right after an error), so the response ends cleanly.
pub fn recover<R, S, F, T>(
    events: S,
    mut on_error: F,
) -> impl Stream<Item = Payload> + Send + 'static
where
    R: EndpointResult,
    S: Stream<Item = Result<Payload, R::Error>> + Send + 'static,
    F: FnMut(R::Error) -> T + Send + 'static,
    T: IntoEvent,
{
    events.map(move |item| match item {
        Ok(payload) => payload,
        Err(error) => on_error(error).into_event(),
    })
}

/// The stream of a fallible endpoint's body.
///
/// The expansion writes the body as an `async` block whose output is the fn's `Result<(), E>`,
/// so `?` and `return` in it are Rust's own, inside the input of any macro too. Every `yield`
/// of the body becomes `send(payload).await`, which hands the payload to the stream polling the
/// body through a slot of the thread; when the body ends with an error, the error is the
/// stream's last item. No `unsafe` is involved: the slot holds a [`Payload`], whatever the
/// body, so a misplaced `send` could at worst lose a payload, never confuse a type. And none
/// can be misplaced: the expansion writes a `send` only where a `break` to a label of the body
/// would compile, which rules out closures and `async` blocks, and polls the body only here.
pub mod generator {
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_core::Stream;
    use pin_project_lite::pin_project;

    use std::fmt;

    use super::EndpointResult;
    use crate::driver::direct::{self, Outcome, Place, Put, Text};
    use crate::{IntoEvent, Payload, ServerSentEvent};

    thread_local! {
        /// The payload that the body being polled on this thread has just yielded.
        static SLOT: Cell<Option<Payload>> = const { Cell::new(None) };
    }

    /// The stream of `body`, the fn's body as an `async` block. `R`, the fn's return type,
    /// fixes the block's output, and so the error type its `?`s convert into.
    pub fn stream<R, F>(body: F) -> Generator<F>
    where
        R: EndpointResult,
        F: Future<Output = R>,
    {
        Generator { body, done: false }
    }

    pin_project! {
        /// The stream of a fallible body: the payloads it yields, then its error, if any.
        #[must_use = "streams do nothing unless polled"]
        pub struct Generator<F> {
            #[pin]
            body: F,
            done: bool,
        }
    }

    impl<F, R> Stream for Generator<F>
    where
        F: Future<Output = R>,
        R: EndpointResult,
    {
        type Item = Result<Payload, R::Error>;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            let this = self.project();
            if *this.done {
                return Poll::Ready(None);
            }
            let (poll, yielded) = {
                // The frame buffer the driver lent, if this stream is its source: the body's
                // `yield`s write into it while there is room (see `driver::direct`).
                let _hold = crate::driver::direct::Hold::enter();
                let polling = Polling::enter();
                let poll = this.body.poll(cx);
                (poll, polling.yielded())
            };
            if let Some(payload) = yielded {
                // A `send` returns `Pending` right after filling the slot: the body is not done.
                return Poll::Ready(Some(Ok(payload)));
            }
            match poll {
                Poll::Pending => Poll::Pending,
                Poll::Ready(result) => {
                    *this.done = true;
                    Poll::Ready(result.into_result().err().map(Err))
                }
            }
        }
    }

    /// The slot while one body is polled. A body may be polled inside another's poll (a
    /// response read from inside an endpoint's body): the outer body's slot is put back when
    /// the inner poll ends, also when it panics.
    struct Polling {
        outer: Option<Payload>,
    }

    impl Polling {
        fn enter() -> Self {
            Polling { outer: SLOT.take() }
        }

        fn yielded(&self) -> Option<Payload> {
            SLOT.take()
        }
    }

    impl Drop for Polling {
        fn drop(&mut self) {
            SLOT.set(self.outer.take());
        }
    }

    /// What a `yield` of the body awaits. The value is written into the frame the driver lent
    /// while it has room, and the body goes on at once (or, when the value filled the frame,
    /// after one pause, so that the frame goes out); otherwise it is put in the slot for the
    /// stream, and the body waits for the stream to be polled again.
    ///
    /// The payload goes into the slot here, not when the future is polled, so that the future
    /// is one byte: the body moves it into its own state to await it, and a 40-byte future
    /// holding the payload was copied there in pieces that did not match how it was written
    /// (a failed store-to-load forward on every event). The expansion awaits every `send` at
    /// once, in the same poll of the body.
    pub fn send<T: IntoEvent>(value: T) -> Yield {
        use crate::driver::direct::{self, Written};

        match direct::write(value) {
            Ok(written) => Yield::written(matches!(written, Written::Full)),
            Err(payload) => {
                let unsent = SLOT.replace(Some(payload));
                debug_assert!(unsent.is_none(), "a body yields one payload per poll");
                Yield(Step::Sent)
            }
        }
    }

    /// The future of [`send`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Yield(Step);

    impl Yield {
        /// After a value was written into the frame: a pause if it filled the frame.
        #[inline(always)]
        fn written(full: bool) -> Self {
            Yield(if full { Step::Pause } else { Step::Done })
        }
    }

    #[derive(Clone, Copy)]
    enum Step {
        /// The payload is in the slot: the body waits for the stream to take it.
        Sent,
        /// Written, and the frame is full: the body waits once.
        Pause,
        Done,
    }

    impl Future for Yield {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            match std::mem::replace(&mut self.0, Step::Done) {
                // The stream returns the payload at once, and its consumer polls it again for
                // the next item: no waker is needed.
                Step::Sent => Poll::Pending,
                // The driver sends the full frame and polls again; the wake makes sure of it
                // whoever polls the stream.
                Step::Pause => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Step::Done => Poll::Ready(()),
            }
        }
    }

    /// A `yield ServerSentEvent::new().id(..).data(..)` of a body, as the macro rewrites it when
    /// the builder calls come in the order the fields are written (comment, `id`, `event`,
    /// `data`, `retry`) and their arguments cannot suspend the body: the event is written
    /// straight into the frame the driver lent, and [`Fused::finish`] ends it. The bytes are
    /// those of the built event's encoding. The arguments are evaluated in the builder's order,
    /// each kept alive to the end of the `yield` as in the builder's chain. A value whose text
    /// [`Probe`] finds (strings, integers) is copied as it is, and all such fields that follow
    /// one another are written in one call (the frame found once for them); a value of any
    /// other type is formatted once, straight into the frame, at its place in the order (after
    /// the fields before it are written, before the next argument is evaluated), as the
    /// builder formats it. Without a frame to write into (a body read by another stream), the
    /// event is built, and sent as [`send`] sends it. Dropped unfinished (a value panicked, or
    /// an argument left the body with `?` or `return`), it takes its event's bytes back out of
    /// the frame, so none of a half-written event is ever sent.
    pub struct Fused {
        mode: Mode,
        /// How many of the event's fields were written (or given to the built event).
        next: u8,
    }

    enum Mode {
        /// Nothing written yet: the first field checks the frame for room.
        Waiting,
        /// Writing into the lent frame, where the event began at `start`.
        Direct {
            start: usize,
        },
        /// The last field ended the event; `full`: it filled the frame.
        Ended {
            full: bool,
        },
        /// No frame to write into: the event is built (boxed, so that `Fused` is small).
        Built(Box<ServerSentEvent>),
        Finished,
    }

    /// Which field of an event a fused field is.
    #[derive(Clone, Copy)]
    pub enum Name {
        Comment,
        Id,
        Event,
        Data,
        Retry,
    }

    impl Name {
        /// What the field's lines begin with.
        #[inline(always)]
        pub(crate) fn prefix(self) -> &'static [u8] {
            match self {
                Name::Comment => b": ",
                Name::Id => b"id: ",
                Name::Event => b"event: ",
                Name::Data => b"data: ",
                Name::Retry => b"retry: ",
            }
        }

        /// How the field's text is written: in lines (`data`, a comment), or as one line.
        #[inline(always)]
        pub(crate) fn kind(self) -> Text {
            match self {
                Name::Comment | Name::Data => Text::Lines,
                Name::Id | Name::Event | Name::Retry => Text::Stripped,
            }
        }
    }

    /// A field of a fused event, with the text [`Probe`] found of its value, if any (`None`:
    /// the value is formatted, by the `Fused` method named after the field).
    #[derive(Clone, Copy)]
    pub struct Field<'a> {
        pub(crate) name: Name,
        pub(crate) plain: Option<(&'a str, Breaks)>,
    }

    impl<'a> Field<'a> {
        #[inline(always)]
        pub fn new(name: Name, plain: Option<(&'a str, Breaks)>) -> Self {
            Field { name, plain }
        }
    }

    /// A builder argument, looked at by the expansion through method resolution (a concrete
    /// type at the call site): [`PlainText`] gives the text of strings and integers without
    /// `fmt`'s machinery, [`NotPlain`] gives nothing for every other type.
    pub struct Probe<'a, T: ?Sized>(pub &'a T);

    /// Room for an integer's digits.
    #[derive(Default)]
    pub struct Digits(itoa::Buffer);

    impl Digits {
        #[inline]
        pub fn new() -> Self {
            Self::default()
        }

        /// The text of a `retry` value.
        #[inline]
        pub fn retry(&mut self, milliseconds: u64) -> Option<(&str, Breaks)> {
            Some((self.0.format(milliseconds), Breaks::No))
        }
    }

    /// The value of a fused `retry`: what [`ServerSentEvent::retry`] takes.
    #[inline(always)]
    pub fn retry_ms(milliseconds: u64) -> u64 {
        milliseconds
    }

    /// Whether a plain text may hold CR or LF.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub enum Breaks {
        No,
        Maybe,
    }

    /// The text of a [`Probe`]d value, for the types that have one at hand. It borrows the
    /// value (or the digits), not the probe, so that it outlives the probe's temporaries.
    pub trait PlainText<'v> {
        fn __sse_plain(&self, digits: &'v mut Digits) -> Option<(&'v str, Breaks)>;
    }

    /// The fallback of [`PlainText`]: formatted with `Display`.
    pub trait NotPlain<'v> {
        #[inline]
        fn __sse_plain(&self, _digits: &'v mut Digits) -> Option<(&'v str, Breaks)> {
            None
        }
    }

    impl<'v, T: ?Sized> NotPlain<'v> for Probe<'v, T> {}

    macro_rules! plain_texts {
        ($($text:ty),*) => {$(
            impl<'v> PlainText<'v> for &Probe<'v, $text> {
                #[inline]
                fn __sse_plain(&self, _: &'v mut Digits) -> Option<(&'v str, Breaks)> {
                    let value: &'v $text = self.0;
                    Some((&**value, Breaks::Maybe))
                }
            }
        )*};
    }

    plain_texts!(
        &str,
        String,
        &String,
        std::borrow::Cow<'_, str>,
        Box<str>,
        std::sync::Arc<str>
    );

    macro_rules! plain_integers {
        ($($int:ty),*) => {$(
            impl<'v> PlainText<'v> for &Probe<'v, $int> {
                #[inline]
                fn __sse_plain(&self, digits: &'v mut Digits) -> Option<(&'v str, Breaks)> {
                    Some((digits.0.format(*self.0), Breaks::No))
                }
            }
        )*};
    }

    plain_integers!(
        u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
    );

    impl Fused {
        /// Starts the event; the builder's constructor is passed so that the expansion only
        /// compiles for this crate's `ServerSentEvent`. Nothing is written until the first
        /// field.
        #[inline(always)]
        pub fn new(_constructor: fn() -> ServerSentEvent) -> Self {
            Fused {
                mode: Mode::Waiting,
                next: 0,
            }
        }

        /// Writes the fields of `fields` not written yet (all of them have their text), in
        /// one call; `last` if the event ends after them.
        #[inline(always)]
        fn plains(&mut self, fields: &[Field<'_>], last: bool) {
            let rest = fields.get(usize::from(self.next)..).unwrap_or_default();
            // At most five fields.
            self.next = fields.len() as u8;
            if rest.is_empty() {
                return;
            }
            let first = match self.mode {
                Mode::Waiting => true,
                Mode::Direct { .. } => false,
                Mode::Built(_) => return self.build_plains(rest),
                Mode::Ended { .. } | Mode::Finished => return,
            };
            let place = Place { first, last };
            if !self.wrote(direct::put_fields(rest, place), place) {
                self.build_plains(rest);
            }
        }

        /// Writes the field `name` of formatted `value` after the fields of `before` not
        /// written yet, `last` if the event ends after it. `false` if the event is built
        /// instead (no frame).
        #[inline(always)]
        fn display<T: fmt::Display + ?Sized>(
            &mut self,
            before: &[Field<'_>],
            name: Name,
            value: &T,
            last: bool,
        ) -> bool {
            self.plains(before, false);
            self.next += 1;
            let first = match self.mode {
                Mode::Waiting => true,
                Mode::Direct { .. } => false,
                _ => return false,
            };
            let place = Place { first, last };
            let put = direct::put_display(name, format_args!("{value}"), place);
            self.wrote(put, place)
        }

        /// The state after fields were put at `place`.
        #[inline(always)]
        fn wrote(&mut self, put: Put, place: Place) -> bool {
            if put.outcome == Outcome::NoFrame {
                self.mode = Mode::Built(Box::default());
                false
            } else if place.last {
                self.mode = Mode::Ended {
                    full: put.outcome == Outcome::Full,
                };
                true
            } else {
                if place.first {
                    self.mode = Mode::Direct { start: put.start };
                }
                true
            }
        }

        fn build(&mut self, set: impl FnOnce(ServerSentEvent) -> ServerSentEvent) {
            if let Mode::Built(event) = &mut self.mode {
                **event = set(std::mem::take(&mut **event));
            }
        }

        /// Gives `fields` to the built event, by their text (which is what the builder would
        /// format of their values).
        #[cold]
        fn build_plains(&mut self, fields: &[Field<'_>]) {
            for field in fields {
                let Some((text, _)) = field.plain else {
                    continue;
                };
                self.build(|event| match field.name {
                    Name::Comment => event.comment(text),
                    Name::Id => event.id(text),
                    Name::Event => event.event(text),
                    Name::Data => event.data(text),
                    // The digits of a `u64`.
                    Name::Retry => event.retry(text.parse().unwrap_or_default()),
                });
            }
        }

        /// [`ServerSentEvent::comment`] of a value that is formatted, after the fields of
        /// `before`; `last` if it is the event's last field.
        #[inline(always)]
        pub fn comment<T: fmt::Display + ?Sized>(
            &mut self,
            before: &[Field<'_>],
            comment: &T,
            last: bool,
        ) {
            if !self.display(before, Name::Comment, comment, last) {
                self.build(|event| event.comment(comment));
            }
        }

        /// [`ServerSentEvent::id`] of a value that is formatted, after the fields of `before`;
        /// `last` if it is the event's last field.
        #[inline(always)]
        pub fn id<T: fmt::Display + ?Sized>(&mut self, before: &[Field<'_>], id: &T, last: bool) {
            if !self.display(before, Name::Id, id, last) {
                self.build(|event| event.id(id));
            }
        }

        /// [`ServerSentEvent::event`] of a value that is formatted, after the fields of
        /// `before`; `last` if it is the event's last field.
        #[inline(always)]
        pub fn event<T: fmt::Display + ?Sized>(
            &mut self,
            before: &[Field<'_>],
            event: &T,
            last: bool,
        ) {
            if !self.display(before, Name::Event, event, last) {
                self.build(|built| built.event(event));
            }
        }

        /// [`ServerSentEvent::data`] of a value that is formatted, after the fields of
        /// `before`; `last` if it is the event's last field.
        #[inline(always)]
        pub fn data<T: fmt::Display + ?Sized>(
            &mut self,
            before: &[Field<'_>],
            data: &T,
            last: bool,
        ) {
            if !self.display(before, Name::Data, data, last) {
                self.build(|event| event.data(data));
            }
        }

        /// Ends the event, writing the fields of `fields` (all of the event's) not written
        /// yet: what the `yield` awaits, as with [`send`].
        ///
        /// It reads only the fields of the builder its state needs: moving the whole `Mode`
        /// out (by value, or with `mem::replace`) made the compiler copy it in pieces of 1, 1,
        /// 8, 4 and 2 bytes and read `start` back across three of them: a failed
        /// store-to-load forward on every event (in a perf profile of the bench's (b), a fifth
        /// of the samples fell on the instruction after that read).
        #[inline(always)]
        pub fn finish(&mut self, fields: &[Field<'_>]) -> Yield {
            self.plains(fields, true);
            let yielded = match &self.mode {
                Mode::Ended { full } => Yield::written(*full),
                // An event with no field: its separator ends it.
                Mode::Waiting => match direct::begin_event() {
                    Some(_) => Yield::written(direct::end_event()),
                    None => send(ServerSentEvent::new()),
                },
                Mode::Direct { .. } => Yield::written(direct::end_event()),
                Mode::Built(_) => return self.send_built(),
                Mode::Finished => Yield(Step::Done),
            };
            self.mode = Mode::Finished;
            yielded
        }

        /// [`Fused::finish`] of an event that was built (there was no frame to write into).
        #[cold]
        fn send_built(&mut self) -> Yield {
            match std::mem::replace(&mut self.mode, Mode::Finished) {
                Mode::Built(event) => send(*event),
                _ => Yield(Step::Done),
            }
        }
    }

    impl Drop for Fused {
        #[inline(always)]
        fn drop(&mut self) {
            // Unfinished: a value panicked, or an argument left the body. What the event wrote
            // is taken back out of the frame.
            if let Mode::Direct { start } = self.mode {
                direct::cancel_event(start);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use futures_util::StreamExt;

        use super::{send, stream};
        use crate::{IntoEvent, Payload, Separator};

        fn texts(items: Vec<Result<Payload, &str>>) -> Vec<Result<String, &str>> {
            items
                .into_iter()
                .map(|item| {
                    item.map(|payload| {
                        String::from_utf8_lossy(&payload.encode(Separator::Lf)).into_owned()
                    })
                })
                .collect()
        }

        #[tokio::test]
        async fn a_body_yields_its_payloads_in_order_then_its_error() {
            let events = stream::<Result<(), &str>, _>(async {
                send(1.into_event()).await;
                send("two".into_event()).await;
                Err("failed")
            });
            assert_eq!(
                texts(events.collect().await),
                [
                    Ok("data: 1\n\n".to_owned()),
                    Ok("data: two\n\n".to_owned()),
                    Err("failed")
                ]
            );
        }

        #[tokio::test]
        async fn a_body_polled_inside_another_keeps_its_payloads_apart() {
            let outer = stream::<Result<(), &str>, _>(async {
                send("outer 1".into_event()).await;
                let inner = stream::<Result<(), &str>, _>(async {
                    send("inner 1".into_event()).await;
                    send("inner 2".into_event()).await;
                    Ok(())
                });
                let inner: Vec<_> = inner.collect().await;
                send(inner.len().into_event()).await;
                Ok(())
            });
            assert_eq!(
                texts(outer.collect().await),
                [
                    Ok("data: outer 1\n\n".to_owned()),
                    Ok("data: 2\n\n".to_owned())
                ]
            );
        }
    }
}

/// What the expansion of a fn that returns its stream (`-> impl Stream<Item = T>`) checks and
/// calls. The checks take the stream by reference: it reaches the response as the body made it.
pub mod stream {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures_core::{Stream, TryStream};
    use pin_project_lite::pin_project;

    use super::StreamError;
    use crate::{EventSourceResponse, IntoEvent, Payload};

    /// `EventSourceResponse::from_try_stream(events)`, with the error type's requirement named
    /// [`StreamError`] (whose message explains it). The stream is passed on as it is.
    pub fn from_try_stream<S>(events: S) -> EventSourceResponse
    where
        S: TryStream + Send + 'static,
        S::Ok: IntoEvent,
        S::Error: StreamError,
    {
        EventSourceResponse::from_try_stream(events)
    }

    /// `Stream<Item = T>`, as the return type declares.
    pub fn item<T, S>(_events: &S)
    where
        S: Stream<Item = T> + ?Sized,
    {
    }

    /// `TryStream<Ok = T, Error = E>`, as the return type declares.
    pub fn try_items<T, E, S>(_events: &S)
    where
        S: TryStream<Ok = T, Error = E> + ?Sized,
    {
    }

    /// `+ Sync`, as the return type declares.
    pub fn sync<S: Sync + ?Sized>(_events: &S) {}

    /// `+ Unpin`, as the return type declares.
    pub fn unpin<S: Unpin + ?Sized>(_events: &S) {}

    /// The stream of `on_error = f` for a stream of `Result`s: its events, then, for its first
    /// error, `f(error)` as the last event. The stream ends there, as it would have ended with
    /// the error, so the response ends cleanly.
    pub fn recover<S, F, T>(events: S, on_error: F) -> Recover<S, F>
    where
        S: TryStream,
        S::Ok: IntoEvent,
        F: FnOnce(S::Error) -> T,
        T: IntoEvent,
    {
        Recover {
            events,
            on_error: Some(on_error),
        }
    }

    pin_project! {
        /// The stream of [`recover`].
        #[must_use = "streams do nothing unless polled"]
        pub struct Recover<S, F> {
            #[pin]
            events: S,
            // `None` once the error was sent.
            on_error: Option<F>,
        }
    }

    impl<S, F, T> Stream for Recover<S, F>
    where
        S: TryStream,
        S::Ok: IntoEvent,
        F: FnOnce(S::Error) -> T,
        T: IntoEvent,
    {
        type Item = Payload;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
            let this = self.project();
            if this.on_error.is_none() {
                return Poll::Ready(None);
            }
            match this.events.try_poll_next(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Ok(event))) => Poll::Ready(Some(event.into_event())),
                Poll::Ready(Some(Err(error))) => match this.on_error.take() {
                    Some(on_error) => Poll::Ready(Some(on_error(error).into_event())),
                    None => Poll::Ready(None),
                },
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use futures_util::{StreamExt, stream};

        use super::recover;
        use crate::Separator;

        #[tokio::test]
        async fn recover_sends_the_first_error_as_the_last_event() {
            let items: Vec<Result<u32, &str>> = vec![Ok(1), Err("first"), Ok(2), Err("second")];
            let events = recover(stream::iter(items), |error: &str| format!("error: {error}"));
            let texts: Vec<String> = events
                .map(|payload| String::from_utf8_lossy(&payload.encode(Separator::Lf)).into_owned())
                .collect()
                .await;
            assert_eq!(texts, ["data: 1\n\n", "data: error: first\n\n"]);
        }
    }
}

/// The next item of a `for await` loop's stream.
pub fn next<S>(stream: &mut S) -> futures_util::stream::Next<'_, S>
where
    S: Stream + Unpin + ?Sized,
{
    stream.next()
}

/// The status of `status = <code>`; the attribute checked that `code` is within 100..=999,
/// every one of which `StatusCode` accepts.
pub fn status(code: u16) -> StatusCode {
    match StatusCode::from_u16(code) {
        Ok(status) => status,
        Err(_) => unreachable!("#[sse_endpoint] checks that status codes are within 100..=999"),
    }
}

/// Runs what a hook returned, sync or async alike.
///
/// The expansion writes `(&output).__sse_hook_kind().run(output)`. Method resolution picks the
/// kind from the output's type: `()` and futures match on `&T` directly, anything else only
/// after one more autoref, and its `run` then fails with a message that names the mistake.
pub mod hook {
    use std::future::Future;

    /// The kind of a hook returning `()`.
    #[derive(Clone, Copy, Debug)]
    pub struct Unit;

    /// The kind of a hook returning a future: it is spawned.
    #[derive(Clone, Copy, Debug)]
    pub struct Spawn;

    /// The kind of a hook returning anything else: a compile error.
    #[derive(Clone, Copy, Debug)]
    pub struct Other;

    /// Picks [`Unit`] for `()`.
    pub trait UnitHook {
        fn __sse_hook_kind(&self) -> Unit {
            Unit
        }
    }

    impl UnitHook for () {}

    /// Picks [`Spawn`] for a future of `()`.
    pub trait FutureHook {
        fn __sse_hook_kind(&self) -> Spawn {
            Spawn
        }
    }

    impl<F> FutureHook for F where F: Future<Output = ()> + Send + 'static {}

    /// Picks [`Other`] for everything else.
    pub trait OtherHook {
        fn __sse_hook_kind(&self) -> Other {
            Other
        }
    }

    impl<T> OtherHook for &T {}

    impl Unit {
        /// Nothing left to do.
        pub fn run(self, (): ()) {}
    }

    impl Spawn {
        /// Spawns the hook's future on the current runtime.
        pub fn run<F>(self, task: F)
        where
            F: Future<Output = ()> + Send + 'static,
        {
            crate::close::spawn_detached(task, "#[sse_endpoint] hook returned a future");
        }
    }

    /// What a hook may return; nothing implements it, so that [`Other::run`] reports the mistake.
    #[diagnostic::on_unimplemented(
        message = "an `#[sse_endpoint]` hook must return `()` or a future of `()`, but this one returns `{Self}`",
        label = "this hook returns `{Self}`",
        note = "a hook is a fn returning nothing, or an `async fn` (its future must be `Send + 'static`: it is spawned)"
    )]
    pub trait HookOutput {}

    impl Other {
        /// Never compiles: reports that the hook's output is neither `()` nor a future.
        pub fn run<T: HookOutput>(self, _output: T) {}
    }
}
