//! Which poll of a connection's task is running on this thread: lets a stream's driver tell
//! hyper's repeated polls within one task poll from a poll after a wake.
//!
//! hyper polls a response body three times for each chunk of an HTTP/1 stream, all within one
//! poll of the connection's task: the poll that yields the chunk, once more in the same write,
//! and once after the flush. When a stream's driver ended a poll with every part of it waiting
//! (its source, its timer), each registered with the task's waker, nothing can have changed
//! by a later poll of the same task poll without that waker being woken, and a woken task is
//! polled again. So the driver answers such a poll `Pending` without looking (see
//! `driver::State::poll_step`).
//!
//! Only [`serve`](crate::serve)'s connection tasks mark their polls ([`enter`]), with their
//! own waker; [`current`] gives the mark only to a poll made with that same waker, and 0
//! everywhere else (another task's poll, an executor run inside the task's poll, a body polled
//! by something other than hyper's connection): there the driver looks at every poll. An id is
//! never given to two polls, on any thread: each thread numbers its polls within a block of
//! ids of its own, taken from a process-wide counter.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

/// Polls numbered per block of ids: a thread takes a new block when its own runs out.
const BLOCK: u64 = 1 << 32;

/// The next block of ids to hand out (block 0 is never handed out: id 0 means none).
static BLOCKS: AtomicU64 = AtomicU64::new(1);

/// A marked task poll: its id, and its waker's identity (data and vtable pointers, as
/// `Waker::will_wake` compares them). The waker outlives the poll, so while the mark is set
/// no other waker has that identity.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Mark {
    id: u64,
    data: usize,
    vtable: usize,
}

const NONE: Mark = Mark {
    id: 0,
    data: 0,
    vtable: 0,
};

thread_local! {
    /// The task poll running on this thread, [`NONE`] for none that marks its polls.
    static CURRENT: Cell<Mark> = const { Cell::new(NONE) };
    /// The last id this thread handed out (0 before its first).
    static LAST: Cell<u64> = const { Cell::new(0) };
}

pub(crate) fn identity(waker: &Waker) -> (usize, usize) {
    (
        waker.data() as usize,
        std::ptr::from_ref(waker.vtable()) as usize,
    )
}

/// The id of the marked task poll running on this thread if `waker` is that task's own, else 0.
pub(crate) fn current(waker: &Waker) -> u64 {
    let mark = CURRENT.with(Cell::get);
    if mark.id != 0 && identity(waker) == (mark.data, mark.vtable) {
        mark.id
    } else {
        0
    }
}

/// Marks the task poll that runs until the guard is dropped, made with `waker`, with an id of
/// its own.
pub(crate) fn enter(waker: &Waker) -> Entered {
    let last = LAST.with(Cell::get);
    let id = if last % BLOCK == BLOCK - 1 || last == 0 {
        BLOCKS.fetch_add(1, Ordering::Relaxed) * BLOCK
    } else {
        last + 1
    };
    LAST.with(|cell| cell.set(id));
    let (data, vtable) = identity(waker);
    Entered {
        outer: CURRENT.with(|cell| cell.replace(Mark { id, data, vtable })),
    }
}

/// A marked poll: dropping it restores the mark of what it ran inside ([`NONE`], normally).
pub(crate) struct Entered {
    outer: Mark,
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|cell| cell.set(self.outer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake_count::WakeCount;

    #[test]
    fn a_poll_has_an_id_of_its_own_for_its_own_waker_only() {
        let ((_task, waker), (_other, stranger)) = (WakeCount::waker(), WakeCount::waker());
        assert_eq!(current(&waker), 0, "no poll marked");
        let first = enter(&waker);
        let a = current(&waker);
        assert_ne!(a, 0);
        assert_eq!(
            current(&stranger),
            0,
            "another waker, as an executor inside the poll has"
        );
        {
            let _inner = enter(&stranger);
            assert_ne!(current(&stranger), a);
            assert_ne!(current(&stranger), 0);
            assert_eq!(current(&waker), 0);
        }
        assert_eq!(current(&waker), a, "the outer poll's mark is back");
        drop(first);
        assert_eq!(current(&waker), 0);
        let again = enter(&waker);
        assert_ne!(
            current(&waker),
            a,
            "the next poll of the same task is another"
        );
        drop(again);
        let other_thread = std::thread::spawn(move || {
            let _entered = enter(&waker);
            current(&waker)
        })
        .join()
        .unwrap();
        assert_ne!(other_thread, a);
        assert_ne!(other_thread, 0);
    }

    #[test]
    fn a_thread_whose_block_ran_out_takes_another() {
        let (_task, waker) = WakeCount::waker();
        // A block no thread of this process takes (threads of other tests take blocks from
        // 1 up, a few dozen at most): the next id after its last would be in block 1,001.
        LAST.with(|cell| cell.set(1_000 * BLOCK + BLOCK - 1));
        let entered = enter(&waker);
        let id = current(&waker);
        drop(entered);
        assert_eq!(id % BLOCK, 0, "the first id of a fresh block");
        assert_ne!(id / BLOCK, 1_000);
        assert_ne!(id / BLOCK, 1_001, "not the id after the old block's last");
        assert_ne!(id, 0);
    }
}
