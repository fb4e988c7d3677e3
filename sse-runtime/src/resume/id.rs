//! Event ids a hub owns (`<epoch>:<seq>`) and the cursor a reconnecting client sends.

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use http::request::Parts;

/// The longest `Last-Event-ID` (header or query value) that is read at all; longer ones are
/// [`LastEventId::Invalid`] without being looked at.
pub const MAX_LAST_EVENT_ID_LEN: usize = 64;

/// The name of the query parameter read when a request has no `Last-Event-ID` header.
pub const LAST_EVENT_ID_QUERY: &str = "last_event_id";

/// The longest epoch a cursor may name.
const MAX_EPOCH_LEN: usize = 16;
/// The length of the epochs a hub makes.
const EPOCH_LEN: usize = 8;

/// One history of a hub: 1-16 ASCII letters, random for each new history.
///
/// A process that keeps its history in memory starts a new epoch each time it starts, so an
/// id from before a restart is recognised as belonging to a history that is gone, never
/// misread as a position in the new one.
///
/// ```
/// use sse_runtime::resume::Epoch;
///
/// let a = Epoch::random();
/// assert_eq!(a.as_str().len(), 8);
/// assert!(a.as_str().bytes().all(|b| b.is_ascii_alphabetic()));
/// assert_ne!(a, Epoch::random());
/// assert_eq!("kqZbTeXa".parse::<Epoch>().unwrap().as_str(), "kqZbTeXa");
/// assert!("kq-1".parse::<Epoch>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Epoch {
    len: u8,
    bytes: [u8; MAX_EPOCH_LEN],
}

impl Epoch {
    /// A new random epoch of 8 letters.
    ///
    /// The randomness is the standard library's per-process random hash keys (from the
    /// operating system) over a counter: two histories never share an epoch in practice,
    /// without a random-number crate. (An epoch is not a secret.)
    pub fn random() -> Self {
        let mut bits = crate::random::u64();
        const LETTERS: &[u8; 52] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut bytes = [0; MAX_EPOCH_LEN];
        for byte in bytes.iter_mut().take(EPOCH_LEN) {
            *byte = LETTERS[(bits % 52) as usize];
            bits /= 52;
        }
        Self {
            len: EPOCH_LEN as u8,
            bytes,
        }
    }

    /// The epoch as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl FromStr for Epoch {
    type Err = InvalidEventId;

    fn from_str(text: &str) -> Result<Self, InvalidEventId> {
        let len = text.len();
        if len == 0 || len > MAX_EPOCH_LEN || !text.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(InvalidEventId(()));
        }
        let mut bytes = [0; MAX_EPOCH_LEN];
        bytes[..len].copy_from_slice(text.as_bytes());
        Ok(Self {
            len: len as u8,
            bytes,
        })
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({})", self.as_str())
    }
}

/// The id a hub gives an event: its history's [`Epoch`] and its number in the hub's sequence,
/// written `<epoch>:<seq>` (`kqZbTeXa:1042`).
///
/// Numbers count every event the hub publishes, whatever its topic, from 1, with no gap: a
/// client following any set of topics has one position in that sequence, and resuming after
/// it means "every event of my topics numbered higher". `<epoch>:0` stands before the first
/// event.
///
/// ```
/// use sse_runtime::resume::EventId;
///
/// let id: EventId = "kqZbTeXa:1042".parse().unwrap();
/// assert_eq!(id.seq(), 1042);
/// assert_eq!(id.epoch().as_str(), "kqZbTeXa");
/// assert_eq!(id.to_string(), "kqZbTeXa:1042");
/// for bad in ["", "1042", "kqZbTeXa:", ":1", "kq:+1", "kq:01x", "kq:1:2", "k q:1", "kq:99999999999999999999"] {
///     assert!(bad.parse::<EventId>().is_err(), "{bad:?}");
/// }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId {
    epoch: Epoch,
    seq: u64,
}

impl EventId {
    /// The id of event `seq` of the history `epoch`.
    pub const fn new(epoch: Epoch, seq: u64) -> Self {
        Self { epoch, seq }
    }

    /// The history this id belongs to.
    pub const fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The event's number in its hub's sequence (0: before the first event).
    pub const fn seq(&self) -> u64 {
        self.seq
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.epoch, self.seq)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl FromStr for EventId {
    type Err = InvalidEventId;

    /// Strict: exactly `<1-16 ASCII letters>:<decimal u64>`, digits only (no sign, no space),
    /// at most [`MAX_LAST_EVENT_ID_LEN`] bytes.
    fn from_str(text: &str) -> Result<Self, InvalidEventId> {
        if text.len() > MAX_LAST_EVENT_ID_LEN {
            return Err(InvalidEventId(()));
        }
        let (epoch, seq) = text.split_once(':').ok_or(InvalidEventId(()))?;
        if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidEventId(()));
        }
        Ok(Self {
            epoch: epoch.parse()?,
            seq: seq.parse().map_err(|_| InvalidEventId(()))?,
        })
    }
}

/// The error of parsing an [`EventId`] or an [`Epoch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidEventId(());

impl fmt::Display for InvalidEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an event id of the form <epoch>:<seq>")
    }
}

impl std::error::Error for InvalidEventId {}

/// Where a client asks to resume: an extractor that never fails.
///
/// It reads the `Last-Event-ID` header (what a browser's `EventSource` sends when it
/// reconnects), else the `last_event_id` query parameter (for clients that cannot set headers,
/// and for a page's first connection: render the hub's [`head`](super::Hub::head) into the
/// page's URL and nothing published between the page load and the connection is missed).
/// The header wins when both are present.
///
/// Parsing is strict and bounded: a value longer than [`MAX_LAST_EVENT_ID_LEN`] bytes is not
/// read; one that is empty, not UTF-8, has a CR or LF, or is anything but `<epoch>:<seq>` or
/// `earliest` is [`Invalid`](Self::Invalid), which the hub's gap policy answers. A bad value
/// is never a 4xx, a 5xx or a panic.
///
/// ```
/// use axum::extract::FromRequestParts;
/// use sse_runtime::LastEventId;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// async fn extract(request: http::Request<()>) -> LastEventId {
///     let (mut parts, ()) = request.into_parts();
///     LastEventId::from_request_parts(&mut parts, &()).await.unwrap()
/// }
/// let header = http::Request::get("/?last_event_id=AbC:2").header("last-event-id", "AbC:7");
/// assert_eq!(extract(header.body(()).unwrap()).await.to_string(), "AbC:7");
/// let query = http::Request::get("/?last_event_id=AbC:2").body(()).unwrap();
/// assert_eq!(extract(query).await.to_string(), "AbC:2");
/// let earliest = http::Request::get("/?last_event_id=earliest").body(()).unwrap();
/// assert_eq!(extract(earliest).await, LastEventId::Earliest);
/// let none = http::Request::get("/").body(()).unwrap();
/// assert_eq!(extract(none).await, LastEventId::None);
/// let garbage = http::Request::get("/").header("last-event-id", "42").body(()).unwrap();
/// assert_eq!(extract(garbage).await, LastEventId::Invalid);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LastEventId {
    /// No cursor: a new client, which gets live events only.
    #[default]
    None,
    /// `earliest`: everything the hub still retains, then live events.
    Earliest,
    /// Every event after this one, then live events.
    After(EventId),
    /// A cursor that is not one (see above); the gap policy applies.
    Invalid,
}

impl LastEventId {
    /// Reads a cursor value (a header's or a decoded query parameter's bytes).
    ///
    /// ```
    /// use sse_runtime::LastEventId;
    ///
    /// assert_eq!(LastEventId::parse(b"earliest"), LastEventId::Earliest);
    /// assert!(matches!(LastEventId::parse(b"kq:5"), LastEventId::After(id) if id.seq() == 5));
    /// for bad in [&b""[..], b"kq:5\r\n", b"\xff\xfe", &[b'a'; 65][..], b" kq:5"] {
    ///     assert_eq!(LastEventId::parse(bad), LastEventId::Invalid);
    /// }
    /// ```
    pub fn parse(value: &[u8]) -> Self {
        if value.len() > MAX_LAST_EVENT_ID_LEN {
            return Self::Invalid;
        }
        match std::str::from_utf8(value) {
            Ok("earliest") => Self::Earliest,
            Ok(text) => text.parse().map_or(Self::Invalid, Self::After),
            Err(_) => Self::Invalid,
        }
    }

    /// The cursor of a request: the header, else the query parameter, else none.
    pub fn from_parts(parts: &Parts) -> Self {
        if let Some(header) = parts.headers.get("last-event-id") {
            return Self::parse(header.as_bytes());
        }
        let Some(query) = parts.uri.query() else {
            return Self::None;
        };
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == LAST_EVENT_ID_QUERY)
            .map_or(Self::None, |(_, value)| Self::parse(value.as_bytes()))
    }
}

impl fmt::Display for LastEventId {
    /// The cursor as a client would send it; nothing for `None` and `Invalid`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None | Self::Invalid => Ok(()),
            Self::Earliest => f.write_str("earliest"),
            Self::After(id) => id.fmt(f),
        }
    }
}

impl From<EventId> for LastEventId {
    fn from(id: EventId) -> Self {
        Self::After(id)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_valid_cursor_fits_the_bound() {
        let longest = format!("{}:{}", "a".repeat(MAX_EPOCH_LEN), u64::MAX);
        assert!(longest.len() <= MAX_LAST_EVENT_ID_LEN);
        assert!(matches!(
            LastEventId::parse(longest.as_bytes()),
            LastEventId::After(id) if id.seq() == u64::MAX
        ));
    }

    #[test]
    fn a_query_value_is_percent_decoded_and_bounded() {
        let parts = |uri: &str| http::Request::get(uri).body(()).unwrap().into_parts().0;
        assert_eq!(
            LastEventId::from_parts(&parts("/?topic=a&last_event_id=Ab%3A3")).to_string(),
            "Ab:3"
        );
        assert_eq!(
            LastEventId::from_parts(&parts("/?last_event_id=Ab%3A3%0D%0A")),
            LastEventId::Invalid
        );
        assert_eq!(
            LastEventId::from_parts(&parts("/?last_event_id=%FF")),
            LastEventId::Invalid
        );
        let long = format!("/?last_event_id=Ab:{}", "1".repeat(100));
        assert_eq!(LastEventId::from_parts(&parts(&long)), LastEventId::Invalid);
        assert_eq!(
            LastEventId::from_parts(&parts("/?last_event_id=")),
            LastEventId::Invalid
        );
    }

    #[test]
    fn an_epoch_prints_as_it_parses() {
        for _ in 0..100 {
            let epoch = Epoch::random();
            assert_eq!(epoch.as_str().parse::<Epoch>().unwrap(), epoch);
        }
    }
}
