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
use std::mem::ManuallyDrop;

use super::{FRAME_LIMIT, goes_alone};
use crate::event::Separator;
use crate::into_event::{IntoEvent, Payload};

/// The driver's frame buffer, lent for one poll of its source.
pub(crate) struct Sink {
    pub(crate) buf: Vec<u8>,
    separator: Separator,
    /// The room an empty buffer gets before the first event is written into it.
    reserve: usize,
    /// Events written directly, for the stream's probe.
    pub(crate) events: u64,
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
    /// Lends `buf`; `reserve` is the room it gets if it has none when an event comes.
    pub(crate) fn new(buf: Vec<u8>, separator: Separator, reserve: usize) -> Self {
        let sink = Sink {
            buf,
            separator,
            reserve,
            events: 0,
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
pub(crate) fn write<T: IntoEvent>(value: T) -> Result<Written, Payload> {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
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

/// The buffer of the body being polled, taken out while a fused `yield` writes an event field by
/// field (`__private::generator::Fused`), if it has one with room; [`give_back`] returns it.
#[inline]
pub(crate) fn take_for_event() -> Option<Sink> {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        current.as_mut().and_then(Sink::with_room)?;
        current.take()
    })
}

/// Puts back a buffer taken with [`take_for_event`].
#[inline]
pub(crate) fn give_back(sink: Sink) {
    CURRENT.with(|current| {
        let previous = current.borrow_mut().replace(sink);
        debug_assert!(previous.is_none(), "a buffer was lent twice");
    });
}

impl Sink {
    /// The sink, if its frame has room for another event (then with its first room reserved).
    fn with_room(&mut self) -> Option<&mut Self> {
        if self.buf.len() >= FRAME_LIMIT {
            return None;
        }
        if self.buf.capacity() == 0 {
            self.buf = super::frames::buffer(self.reserve);
        }
        Some(self)
    }

    /// The separator of the response the buffer is the frame of.
    pub(crate) fn separator(&self) -> Separator {
        self.separator
    }
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
