//! Direct encoding: while the driver polls its source, it lends its frame buffer, and the body
//! of an `#[sse_endpoint]` fn polled inside encodes what it yields straight into it. No payload
//! is built, boxed or handed back per event, and the body goes on to its next event without
//! returning to the driver until the frame is full or the body waits.
//!
//! The buffer moves, it is never borrowed across a poll: the driver puts it in [`OFFER`] for
//! the one poll of its source and takes it back after, and the generator of a body
//! (`__private::generator`) moves it from there to [`CURRENT`] while it polls its body, where
//! the body's `yield`s find it. A generator polled inside another's body (a stream the body
//! reads) finds nothing offered, so what it yields goes to its reader, not to the frame. No
//! `unsafe` is involved, and a panic anywhere puts the buffer back on its way out (the guards'
//! `Drop`), so the driver never loses bytes it was lent.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::mem::ManuallyDrop;

use bytes::Bytes;

use super::{FRAME_LIMIT, goes_alone};
use crate::__private::generator::{Breaks, Field, Name};
use crate::event::{Lines, Separator, Stripped, find_break};
use crate::into_event::{IntoEvent, Payload};

/// The driver's frame buffer, lent for one poll of its source.
pub(crate) struct Sink {
    pub(crate) buf: Vec<u8>,
    separator: Separator,
    /// The room an empty buffer gets before the first event is written into it.
    reserve: usize,
    /// Events written directly, for the stream's probe.
    pub(crate) events: u64,
    /// Shared raw bytes yielded into a frame that had nothing yet (`buf` has no capacity then):
    /// if nothing follows them in this frame, they are the frame, uncopied; the next event
    /// copies them into `buf` first ([`Sink::with_room`]).
    pub(crate) lone: Option<Bytes>,
}

// Both are `ManuallyDrop`, so that they need no destructor: a thread-local that needs one is
// checked for being alive on every access, and registers the destructor on the first.
// Neither holds a buffer between polls (the guards below empty them on every way out), so
// nothing is left to drop when a thread ends; a buffer left by a thread that ends inside a
// poll would be leaked, never used.
thread_local! {
    /// The buffer lent by the driver whose source is being polled on this thread, until the
    /// first generator polled takes it.
    static OFFER: ManuallyDrop<Cell<Option<Sink>>> = const { ManuallyDrop::new(Cell::new(None)) };
    /// The buffer of the body being polled on this thread, where its `yield`s write.
    static CURRENT: ManuallyDrop<RefCell<Option<Sink>>> =
        const { ManuallyDrop::new(RefCell::new(None)) };
}

/// A buffer lent to the source for one poll: [`Lent::take_back`] returns it (and what was
/// lent before, by a driver polling this one, is lent again).
pub(crate) struct Lent {
    outer: Option<Option<Sink>>,
}

impl Lent {
    /// Lends `buf`, with the shared bytes that begin the frame if it has `lone` ones (`buf`
    /// has no capacity then); `reserve` is the room it gets if it has none when an event comes.
    pub(crate) fn new(
        buf: Vec<u8>,
        lone: Option<Bytes>,
        separator: Separator,
        reserve: usize,
    ) -> Self {
        debug_assert!(lone.is_none() || buf.capacity() == 0);
        let sink = Sink {
            buf,
            separator,
            reserve,
            events: 0,
            lone,
        };
        Lent {
            outer: Some(OFFER.with(|offer| offer.replace(Some(sink)))),
        }
    }

    /// The buffer back, with what was written into it. `None` only if the source kept it,
    /// which a generator never does (its guard gives it back, even on a panic).
    pub(crate) fn take_back(mut self) -> Option<Sink> {
        let sink = OFFER.with(|offer| offer.take());
        OFFER.with(|offer| offer.set(self.outer.take().flatten()));
        sink
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(outer) = self.outer.take() {
            OFFER.with(|offer| offer.set(outer));
        }
    }
}

/// A generator's hold on the offered buffer while it polls its body: the body's `yield`s
/// write into it, and dropping the hold offers it back (and restores the buffer of the body
/// this one runs inside, if any).
pub(crate) struct Hold {
    outer: Option<Sink>,
}

impl Hold {
    pub(crate) fn enter() -> Self {
        let offered = OFFER.with(|offer| offer.take());
        Hold {
            outer: CURRENT.with(|current| current.replace(offered)),
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let own = CURRENT.with(|current| current.replace(self.outer.take()));
        OFFER.with(|offer| offer.set(own));
    }
}

/// What [`write`] did with a value it wrote.
pub(crate) enum Written {
    /// The frame has room for more.
    Room,
    /// The value filled the frame: it must go out before the next.
    Full,
}

/// Writes `value` into the buffer of the body being polled, if it has one with room and the
/// value is encoded by copying; otherwise gives the value back as the payload to yield.
/// Shared raw bytes that begin a frame are kept as they are (`Sink::lone`), not copied.
pub(crate) fn write<T: IntoEvent>(value: T) -> Result<Written, Payload> {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let value = match current.as_mut() {
            Some(sink) => match hold_lone(&sink.buf, &mut sink.lone, value) {
                Ok(()) => {
                    sink.events += 1;
                    return Ok(Written::Room);
                }
                Err(value) => value,
            },
            None => value,
        };
        match current.as_mut().and_then(Sink::with_room) {
            Some(sink) => {
                value.write_direct(sink.separator, &mut sink.buf)?;
                sink.events += 1;
                Ok(if sink.buf.len() < FRAME_LIMIT {
                    Written::Room
                } else {
                    Written::Full
                })
            }
            None => Err(value.into_event()),
        }
    })
}

// A fused `yield` (`__private::generator::Fused`) writes its event into the frame of the body
// being polled, where the frame stays: each function below finds it in [`CURRENT`] and writes
// in place. Moving the buffer out for the event and back, as this did before, cost more than
// the accesses: the moves read the sink right after its length and count were written, and
// the processor stalls on such loads. The fields whose text is at hand (strings, integers)
// are written together, the frame found once for all of them ([`put_fields`]); finding it
// once per field was most of what a fused event cost. The functions are not generic, so each
// is compiled once, here. Between the calls of one event only the body's own code runs (the
// builder's arguments), and it cannot suspend the body, so the frame found is the one the
// event began in; a body polled inside an argument puts it back when its poll ends. A value
// formatted with `Display` is written with the frame taken out of [`CURRENT`]
// ([`put_display`]), since its `fmt` is code of the user's and could poll such a body itself.

/// Where a fused event's field goes: whether it is the event's first (the frame is then
/// checked for room, and the event begins there) and its last (the event ends after it).
#[derive(Clone, Copy)]
pub(crate) struct Place {
    pub(crate) first: bool,
    pub(crate) last: bool,
}

/// What writing a field of a fused event did.
///
/// A pair of scalars, so that it is returned in two registers. As an enum with a field in
/// one variant (`NoFrame`, `Written { start, full }`), it was returned through memory, and
/// some builds copied it on in pieces that straddled how it was written: a failed
/// store-to-load forward per field (the calls' instructions that sampled most in a perf
/// profile of `bench render`).
#[derive(Clone, Copy)]
pub(crate) struct Put {
    /// Where the event began (for a first field); 0 if nothing was written.
    pub(crate) start: usize,
    pub(crate) outcome: Outcome,
}

/// What became of a field of a fused event.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The field was the first and the body has no frame with room: nothing was written.
    NoFrame,
    /// Written, and the frame has room (or the event goes on).
    Room,
    /// Written, the event ended (a last field) and filled the frame.
    Full,
}

impl Put {
    const NO_FRAME: Put = Put {
        start: 0,
        outcome: Outcome::NoFrame,
    };
}

/// Where a fused event begins in the frame, if the body has a frame with room for it.
pub(crate) fn begin_event() -> Option<usize> {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        current
            .as_mut()
            .and_then(Sink::with_room)
            .map(|sink| sink.buf.len())
    })
}

/// How a field's text is written.
#[derive(Clone, Copy)]
pub(crate) enum Text {
    /// Split into lines, each with the prefix (`data`, a comment), as `put_lines` does.
    Lines,
    /// One line with every CR and LF deleted (`id`, `event`), as `put_stripped` does.
    Stripped,
}

/// The sink of the body being polled, for a field at `place`: checked for room if the field
/// is the first, with where the event begins.
#[inline(always)]
fn sink_for(current: &mut Option<Sink>, place: Place) -> Option<(&mut Sink, usize)> {
    let sink = if place.first {
        current.as_mut().and_then(Sink::with_room)?
    } else {
        let sink = current.as_mut();
        debug_assert!(sink.is_some(), "a fused event lost its frame");
        sink?
    };
    let start = sink.buf.len();
    Some((sink, start))
}

/// After the fields at `place`: the event's last separator and count, if they were its last.
#[inline(always)]
fn end_event_at(sink: &mut Sink, place: Place, start: usize) -> Put {
    if place.last {
        put_sep(&mut sink.buf, sink.separator.as_bytes());
        sink.events += 1;
    }
    Put {
        start,
        outcome: if sink.buf.len() >= FRAME_LIMIT {
            Outcome::Full
        } else {
            Outcome::Room
        },
    }
}

/// Writes `fields`, whose texts are at hand, as the fields of a fused event at `place` (the
/// place of the first and of the last of them): the frame is found once for all of them.
pub(crate) fn put_fields(fields: &[Field<'_>], place: Place) -> Put {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let Some((sink, start)) = sink_for(&mut current, place) else {
            return Put::NO_FRAME;
        };
        let sep = sink.separator.as_bytes();
        for field in fields {
            let Some((text, breaks)) = field.plain else {
                debug_assert!(
                    false,
                    "a field without its text is written with `put_display`"
                );
                continue;
            };
            put_text(&mut sink.buf, field.name, text, breaks, sep);
        }
        end_event_at(sink, place, start)
    })
}

/// Appends the field `name: text sep`, `text` split into lines or stripped of line breaks as
/// the field's kind wants; `breaks` says whether `text` may hold CR or LF.
#[inline(always)]
fn put_text(buf: &mut Vec<u8>, name: Name, text: &str, breaks: Breaks, sep: &[u8]) {
    let prefix = name.prefix();
    put_prefix(buf, prefix);
    // Most texts have no line break: copied as they are. Writing into a `Vec` cannot fail.
    if breaks == Breaks::No || find_break(text.as_bytes()).is_none() {
        buf.extend_from_slice(text.as_bytes());
    } else {
        let _ = match name.kind() {
            Text::Lines => fmt::Write::write_str(&mut Lines::new(buf, prefix, sep), text),
            Text::Stripped => fmt::Write::write_str(&mut Stripped(buf), text),
        };
    }
    put_sep(buf, sep);
}

/// Writes the field `name: value sep` of a fused event at `place`, `value` formatted once,
/// straight into the frame. The frame is out of [`CURRENT`] while the value's `fmt` runs, and
/// back after, also if it panics. A `fmt` that fails keeps what it wrote (the builder's
/// `to_string` would panic).
pub(crate) fn put_display(name: Name, value: fmt::Arguments<'_>, place: Place) -> Put {
    struct Out(Option<Sink>);
    impl Drop for Out {
        fn drop(&mut self) {
            if let Some(sink) = self.0.take() {
                CURRENT.with(|current| *current.borrow_mut() = Some(sink));
            }
        }
    }
    let mut out = Out(CURRENT.with(|current| current.borrow_mut().take()));
    let Some((sink, start)) = sink_for(&mut out.0, place) else {
        return Put::NO_FRAME;
    };
    let sep = sink.separator.as_bytes();
    let buf = &mut sink.buf;
    let prefix = name.prefix();
    put_prefix(buf, prefix);
    let _ = match name.kind() {
        Text::Lines => fmt::write(&mut Lines::new(buf, prefix, sep), value),
        Text::Stripped => fmt::write(&mut Stripped(buf), value),
    };
    put_sep(buf, sep);
    end_event_at(sink, place, start)
}

/// Ends a fused event that has no field: its separator. `true` if the frame is full.
pub(crate) fn end_event() -> bool {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let Some(sink) = current.as_mut() else {
            debug_assert!(false, "a fused event lost its frame");
            return false;
        };
        put_sep(&mut sink.buf, sink.separator.as_bytes());
        sink.events += 1;
        sink.buf.len() >= FRAME_LIMIT
    })
}

/// Takes an unfinished fused event (a value panicked, or an argument left the body) back out
/// of the frame: what was written from `start` on.
pub(crate) fn cancel_event(start: usize) {
    CURRENT.with(|current| {
        if let Some(sink) = current.borrow_mut().as_mut() {
            sink.buf.truncate(start);
        }
    });
}

/// Appends a field's prefix (`: `, `id: `, `data: `, `event: `, `retry: `) as a copy of a
/// known size, without a `memcpy` call: the call and its size dispatch cost more than the
/// bytes.
#[inline(always)]
fn put_prefix(buf: &mut Vec<u8>, prefix: &[u8]) {
    match *prefix {
        [a, b] => buf.extend_from_slice(&[a, b]),
        [a, b, c, d] => buf.extend_from_slice(&[a, b, c, d]),
        [a, b, c, d, e, f] => buf.extend_from_slice(&[a, b, c, d, e, f]),
        [a, b, c, d, e, f, g] => buf.extend_from_slice(&[a, b, c, d, e, f, g]),
        _ => buf.extend_from_slice(prefix),
    }
}

/// Appends a separator, one or two bytes, without a `memcpy` call.
#[inline(always)]
fn put_sep(buf: &mut Vec<u8>, sep: &[u8]) {
    match *sep {
        [cr, lf] => buf.extend_from_slice(&[cr, lf]),
        [byte] => buf.push(byte),
        _ => buf.extend_from_slice(sep),
    }
}

impl Sink {
    /// The sink, if its frame has room for another event (then with its first room reserved,
    /// and the lone bytes that began it copied in).
    fn with_room(&mut self) -> Option<&mut Self> {
        if self.buf.len() >= FRAME_LIMIT {
            return None;
        }
        if self.buf.capacity() == 0 {
            match self.lone.take() {
                Some(lone) => begin_frame(&mut self.buf, lone, self.reserve),
                None => self.buf = super::frames::buffer(self.reserve),
            }
        }
        Some(self)
    }
}

/// Keeps `value` aside as the `lone` shared bytes that begin a frame, if it is such bytes and
/// the frame has nothing yet (`buf` has no capacity, nothing is held); else gives it back.
pub(crate) fn hold_lone<T: IntoEvent>(
    buf: &Vec<u8>,
    lone: &mut Option<Bytes>,
    value: T,
) -> Result<(), T> {
    if buf.capacity() != 0 || lone.is_some() {
        return Err(value);
    }
    *lone = Some(value.__into_shared()?);
    Ok(())
}

/// Gives the frame's empty buffer room (`reserve`, or twice the bytes, whichever is more) and
/// copies in the `lone` shared bytes that began the frame.
pub(crate) fn begin_frame(buf: &mut Vec<u8>, lone: Bytes, reserve: usize) {
    debug_assert!(buf.capacity() == 0, "lone bytes begin a frame");
    *buf = super::frames::buffer(reserve.max(2 * lone.len()));
    buf.extend_from_slice(&lone);
}

/// [`IntoEvent::write_direct`] for a payload: copied into `buf` unless it is large raw bytes
/// (they go out as a frame of their own) or cannot be encoded (the driver reports it).
pub(crate) fn write_payload(
    payload: Payload,
    separator: Separator,
    buf: &mut Vec<u8>,
) -> Result<(), Payload> {
    if goes_alone(&payload) || payload.is_invalid() {
        return Err(payload);
    }
    // Not invalid, so encoding cannot fail.
    let _ = payload.encode_to(separator, buf);
    Ok(())
}
