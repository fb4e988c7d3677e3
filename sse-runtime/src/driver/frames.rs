//! Frame buffers, kept for the next frame once hyper has written them.
//!
//! A stream that sends fast fills a frame of up to [`FRAME_LIMIT`] bytes and hands it to
//! hyper, which queues a few frames and writes them with one `writev`, then drops them. Freed
//! at once, the buffers of a burst (hundreds of KiB) leave free memory at the top of the
//! allocator's heap, which glibc gives back to the kernel (`madvise`), and the next frames
//! fault their pages in again: in a burst to one client, about four page faults per frame and
//! a TLB shootdown per write, a tenth of the server's CPU. So a full frame's buffer goes
//! to hyper as [`Bytes`] that own a [`Frame`], whose `Drop` puts the buffer, emptied, into a
//! small pool of the thread that drops it (the connection's task, where the next frame is
//! made), and the next frame's buffer comes from there.
//!
//! The pool is bounded: [`POOL_LEN`] buffers of at most [`POOLED_MAX`] bytes of capacity per
//! thread (at most 1.25 MiB), kept until the thread ends. 32 is what a burst to 32 clients at
//! once on two worker threads needs: with 8, (b) of the benchmark still took 8,000 page
//! faults, with 32 about 2,800 (the floor: 760). Smaller frames (the one event of a live
//! fan-out, a ping, what a coalescing window merges) are allocated and freed as before: their
//! chunks are reused by the allocator without giving pages back. An idle stream holds no
//! buffer, pooled or not.

use std::cell::RefCell;

use bytes::Bytes;

use super::FRAME_LIMIT;

/// Buffers smaller than this are not pooled: only those of full frames, so that a buffer taken
/// from the pool fits the frame it is for (neither grown nor shrunk), and streams whose frames
/// are small (a live fan-out, a coalescing window) allocate as they would without the pool.
const POOLED_MIN: usize = FRAME_LIMIT;
/// A frame's buffer comes from the pool only if it is to have at least this much room.
const TAKES_POOLED: usize = FRAME_LIMIT / 2;
/// Nor larger than this: the room of a full frame ([`super::State::first_room`] reserves an
/// eighth more than the last frame) and its last event.
const POOLED_MAX: usize = FRAME_LIMIT + FRAME_LIMIT / 4;
/// Buffers kept per thread.
pub(crate) const POOL_LEN: usize = 32;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for `room` bytes: a pooled one if `room` is that of a full frame
/// and the pool has one, else a new one.
pub(crate) fn buffer(room: usize) -> Vec<u8> {
    if room >= TAKES_POOLED
        && let Ok(Some(mut buf)) = POOL.try_with(|pool| pool.borrow_mut().pop())
    {
        buf.reserve(room);
        return buf;
    }
    Vec::with_capacity(room)
}

/// Whether a buffer of this capacity goes back to the pool once its frame is written.
pub(crate) fn pooled(capacity: usize) -> bool {
    (POOLED_MIN..=POOLED_MAX).contains(&capacity)
}

/// The bytes of a frame: a large buffer's go back to the pool when hyper is done with them.
pub(crate) fn frame(buf: Vec<u8>) -> Bytes {
    if pooled(buf.capacity()) {
        Bytes::from_owner(Frame(buf))
    } else {
        Bytes::from(buf)
    }
}

/// A pooled buffer, owned by the [`Bytes`] of its frame.
struct Frame(Vec<u8>);

impl AsRef<[u8]> for Frame {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.0);
        buf.clear();
        // A thread that is ending has no pool any more: the buffer is freed.
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_LEN {
                pool.push(buf);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept() -> usize {
        POOL.with(|pool| pool.borrow().len())
    }

    #[test]
    fn a_large_frames_buffer_is_reused_once_its_bytes_are_dropped() {
        let mut buf = buffer(FRAME_LIMIT);
        buf.extend_from_slice(b"data: x\n\n");
        let address = buf.as_ptr();
        let bytes = frame(buf);
        assert_eq!(&bytes[..], b"data: x\n\n");
        let clone = bytes.clone();
        drop(bytes);
        // Still held by a clone.
        assert_eq!(kept(), 0);
        drop(clone);
        assert_eq!(kept(), 1);
        let again = buffer(FRAME_LIMIT);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address);
        assert_eq!(kept(), 0);
    }

    #[test]
    fn small_and_oversized_buffers_are_not_pooled_and_the_pool_is_bounded() {
        drop(frame(Vec::with_capacity(256)));
        drop(frame(Vec::with_capacity(POOLED_MAX + 1)));
        assert_eq!(kept(), 0);
        // A small room never takes a pooled buffer.
        drop(frame(buffer(FRAME_LIMIT)));
        assert_eq!(kept(), 1);
        assert!(buffer(256).capacity() < POOLED_MIN);
        assert_eq!(kept(), 1);
        let frames: Vec<Bytes> = (0..POOL_LEN + 3)
            .map(|_| frame(Vec::with_capacity(FRAME_LIMIT)))
            .collect();
        drop(frames);
        assert_eq!(kept(), POOL_LEN);
    }
}
