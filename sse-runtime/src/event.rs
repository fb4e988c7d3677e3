//! `ServerSentEvent`, `Separator`, and the byte-exact encoder behind them.
//!
//! The wire format is the one sse-starlette writes (SPEC §A): fields in the fixed order
//! comment, `id`, `event`, `data`, `retry`; one space after every colon; data and comments split
//! on `\r\n`, `\r` and `\n` (keeping empty pieces); CR and LF deleted from `id` and `event`; one
//! extra separator ending the event.

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};

/// The line separator an event is written with.
///
/// The default is [`Separator::CrLf`], as in sse-starlette (SPEC 2). Every line of an event and
/// the blank line that ends it use the same separator (SPEC 12).
///
/// ```
/// use sse_runtime::Separator;
///
/// assert_eq!(Separator::default(), Separator::CrLf);
/// assert_eq!("\n".parse::<Separator>().unwrap(), Separator::Lf);
/// assert_eq!(Separator::Cr.as_str(), "\r");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Separator {
    /// `"\r\n"`, the default.
    #[default]
    CrLf,
    /// `"\r"`.
    Cr,
    /// `"\n"`.
    Lf,
}

impl Separator {
    /// The separator as text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Separator::CrLf => "\r\n",
            Separator::Cr => "\r",
            Separator::Lf => "\n",
        }
    }

    /// The separator as bytes.
    pub const fn as_bytes(self) -> &'static [u8] {
        self.as_str().as_bytes()
    }
}

impl fmt::Display for Separator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Separator`] from anything but `"\r\n"`, `"\r"` or `"\n"`.
///
/// Its message follows sse-starlette's (SPEC 50), with the separators written as escapes:
///
/// ```
/// use sse_runtime::Separator;
///
/// let err = "xx".parse::<Separator>().unwrap_err();
/// assert_eq!(err.to_string(), r"sep must be one of: \r\n, \r, \n, got: xx");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseSeparatorError {
    got: String,
}

impl fmt::Display for ParseSeparatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r"sep must be one of: \r\n, \r, \n, got: {}",
            self.got.escape_debug()
        )
    }
}

impl std::error::Error for ParseSeparatorError {}

impl FromStr for Separator {
    type Err = ParseSeparatorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "\r\n" => Ok(Separator::CrLf),
            "\r" => Ok(Separator::Cr),
            "\n" => Ok(Separator::Lf),
            other => Err(ParseSeparatorError {
                got: other.to_owned(),
            }),
        }
    }
}

/// One Server-Sent Event: optional comment, `id`, `event`, `data` and `retry` fields.
///
/// Build it with the builder methods, in any order; the fields are always written in the order
/// comment, `id`, `event`, `data`, `retry` (SPEC 3).
///
/// ```
/// use sse_runtime::{Separator, ServerSentEvent};
///
/// let event = ServerSentEvent::new()
///     .data("foo")
///     .event("bar")
///     .id("xyz")
///     .retry(1);
/// assert_eq!(
///     event.encode(Separator::CrLf),
///     &b"id: xyz\r\nevent: bar\r\ndata: foo\r\nretry: 1\r\n\r\n"[..]
/// );
/// ```
///
/// * `data` and `comment` are split on `\r\n`, `\r` and `\n`; every piece, empty ones included,
///   becomes a line of its own (SPEC 13-16, 19).
/// * `id` and `event` have every CR and LF deleted (SPEC 20-21).
/// * An event with no field at all encodes as a bare separator (SPEC 17).
///
/// **Separator.** [`encode`](Self::encode) takes the separator of the response the event is sent
/// in, and uses it unless the event chose its own with [`separator`](Self::separator). This is a
/// deliberate improvement on sse-starlette, where a pre-built event always kept CRLF whatever the
/// response used (SPEC 43).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerSentEvent {
    // `Box<str>`, not `String`: 16 bytes instead of 24 per field keeps every event 32 bytes
    // smaller, and with it the yield slot of a hand-written stream of events (a macro stream's
    // slot holds a `Payload`, which boxes the event).
    data: Option<Box<str>>,
    event: Option<Box<str>>,
    id: Option<Box<str>>,
    retry: Option<u64>,
    comment: Option<Box<str>>,
    separator: Option<Separator>,
}

/// A field's text. `to_string` allocates exactly the text's length for strings and numbers, so
/// the conversion to `Box<str>` does not reallocate.
fn text(value: impl fmt::Display) -> Box<str> {
    value.to_string().into_boxed_str()
}

impl ServerSentEvent {
    /// An event with no fields.
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// assert_eq!(ServerSentEvent::new().encode(Separator::CrLf), &b"\r\n"[..]);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `data` field to the value's `Display` text.
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::new().data("a\nb");
    /// assert_eq!(event.encode(Separator::CrLf), &b"data: a\r\ndata: b\r\n\r\n"[..]);
    /// assert_eq!(
    ///     ServerSentEvent::new().data(42).encode(Separator::Lf),
    ///     &b"data: 42\n\n"[..]
    /// );
    /// ```
    pub fn data(mut self, data: impl fmt::Display) -> Self {
        self.data = Some(text(data));
        self
    }

    /// Sets the `event` field (the event type). CR and LF are deleted when encoding.
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::new().event("a\nb");
    /// assert_eq!(event.encode(Separator::CrLf), &b"event: ab\r\n\r\n"[..]);
    /// ```
    pub fn event(mut self, event: impl fmt::Display) -> Self {
        self.event = Some(text(event));
        self
    }

    /// Sets the `id` field. CR and LF are deleted when encoding.
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::new().id(7).data("x");
    /// assert_eq!(event.encode(Separator::CrLf), &b"id: 7\r\ndata: x\r\n\r\n"[..]);
    /// ```
    pub fn id(mut self, id: impl fmt::Display) -> Self {
        self.id = Some(text(id));
        self
    }

    /// Sets the `retry` field: the reconnection time, in milliseconds.
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::new().retry(0);
    /// assert_eq!(event.encode(Separator::CrLf), &b"retry: 0\r\n\r\n"[..]);
    /// ```
    pub fn retry(mut self, milliseconds: u64) -> Self {
        self.retry = Some(milliseconds);
        self
    }

    /// Sets a comment. Clients ignore comments; each line becomes a `: ` line.
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::new().comment("a comment").data("foo");
    /// assert_eq!(
    ///     event.encode(Separator::CrLf),
    ///     &b": a comment\r\ndata: foo\r\n\r\n"[..]
    /// );
    /// ```
    pub fn comment(mut self, comment: impl fmt::Display) -> Self {
        self.comment = Some(text(comment));
        self
    }

    /// Fixes the separator of this event, whatever the response uses.
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::new().data("x").separator(Separator::CrLf);
    /// assert_eq!(event.encode(Separator::Lf), &b"data: x\r\n\r\n"[..]);
    /// ```
    pub fn separator(mut self, separator: Separator) -> Self {
        self.separator = Some(separator);
        self
    }

    /// The `data` field, if set.
    pub fn get_data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The `event` field, if set (as given, before CR/LF deletion).
    pub fn get_event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The `id` field, if set (as given, before CR/LF deletion).
    pub fn get_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `retry` field, if set.
    pub fn get_retry(&self) -> Option<u64> {
        self.retry
    }

    /// The comment, if set.
    pub fn get_comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The separator this event chose for itself, if any.
    pub fn get_separator(&self) -> Option<Separator> {
        self.separator
    }

    /// Encodes the event. `separator` is the response's; the event's own wins if it set one.
    ///
    /// Encoding is pure: the same event always gives the same bytes (SPEC 28).
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::new().data("foo").event("event");
    /// assert_eq!(event.encode(Separator::Cr), &b"event: event\rdata: foo\r\r"[..]);
    /// ```
    pub fn encode(&self, separator: Separator) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len_hint());
        self.encode_to(separator, &mut buf);
        buf.freeze()
    }

    /// Appends the encoded event to `buf`, without an intermediate allocation.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let mut buf = BytesMut::new();
    /// ServerSentEvent::new().data(1).encode_to(Separator::Lf, &mut buf);
    /// ServerSentEvent::new().data(2).encode_to(Separator::Lf, &mut buf);
    /// assert_eq!(&buf[..], b"data: 1\n\ndata: 2\n\n");
    /// ```
    pub fn encode_to(&self, separator: Separator, buf: &mut BytesMut) {
        self.write_to(separator, buf);
    }

    /// [`encode_to`](Self::encode_to) for any [`Buffer`].
    pub(crate) fn write_to(&self, separator: Separator, buf: &mut impl Buffer) {
        let sep = self.separator.unwrap_or(separator).as_bytes();
        buf.reserve_bytes(self.encoded_len_hint());
        if let Some(comment) = &self.comment {
            put_lines(buf, b": ", comment, sep);
        }
        if let Some(id) = &self.id {
            put_stripped(buf, b"id: ", id, sep);
        }
        if let Some(event) = &self.event {
            put_stripped(buf, b"event: ", event, sep);
        }
        if let Some(data) = &self.data {
            put_lines(buf, b"data: ", data, sep);
        }
        if let Some(retry) = self.retry {
            buf.put_slice(b"retry: ");
            buf.put_slice(itoa::Buffer::new().format(retry).as_bytes());
            buf.put_slice(sep);
        }
        buf.put_slice(sep);
    }

    /// This event encoded without any id, cut where an `id:` line goes (after the comment),
    /// and the separator it uses: for a store that numbers events elsewhere (a Redis script
    /// puts `id: <epoch>:<seq><separator>` between the two parts).
    #[cfg(feature = "redis")]
    pub(crate) fn encode_around_id(
        mut self,
        separator: Separator,
    ) -> (Vec<u8>, Vec<u8>, &'static [u8]) {
        let sep = self.separator.unwrap_or(separator);
        self.id = None;
        let mut before = Vec::new();
        if let Some(comment) = self.comment.take() {
            put_lines(&mut before, b": ", &comment, sep.as_bytes());
        }
        let mut after = Vec::new();
        self.write_to(sep, &mut after);
        (before, after, sep.as_bytes())
    }

    /// A size that usually fits the encoded event (exact when no field holds a line break).
    fn encoded_len_hint(&self) -> usize {
        const SEP: usize = 2;
        let text = |field: &Option<Box<str>>, name: usize| {
            field.as_ref().map_or(0, |t| name + t.len() + SEP)
        };
        text(&self.comment, 2)
            + text(&self.id, 4)
            + text(&self.event, 7)
            + text(&self.data, 6)
            + self.retry.map_or(0, |_| 7 + 20 + SEP)
            + SEP
    }
}

/// Writes `text` split on `\r\n`, `\r` and `\n` as `prefix piece sep` lines, keeping empty
/// pieces (SPEC 13-16).
pub(crate) fn put_lines(buf: &mut impl Buffer, prefix: &[u8], text: &str, sep: &[u8]) {
    buf.put_slice(prefix);
    // Writing into a `Buffer` cannot fail.
    let _ = fmt::Write::write_str(&mut Lines::new(buf, prefix, sep), text);
    buf.put_slice(sep);
}

/// Writes one `prefix text sep` line with every CR and LF of `text` deleted (SPEC 20-21).
fn put_stripped(buf: &mut impl Buffer, prefix: &[u8], text: &str, sep: &[u8]) {
    buf.put_slice(prefix);
    let _ = fmt::Write::write_str(&mut Stripped(buf), text);
    buf.put_slice(sep);
}

/// The lines of [`put_lines`], for text that may come in pieces (a `Display` writing itself),
/// after its caller wrote the first line's prefix and before it writes the last line's
/// separator: each CR, LF or CRLF (also one split across two pieces) ends a line and starts the
/// next, so that the bytes are the same however the text is cut.
pub(crate) struct Lines<'a, B> {
    buf: &'a mut B,
    prefix: &'a [u8],
    sep: &'a [u8],
    /// The last piece ended with a CR: an LF that starts the next belongs to it.
    after_cr: bool,
}

impl<'a, B: Buffer> Lines<'a, B> {
    pub(crate) fn new(buf: &'a mut B, prefix: &'a [u8], sep: &'a [u8]) -> Self {
        Lines {
            buf,
            prefix,
            sep,
            after_cr: false,
        }
    }
}

impl<B: Buffer> fmt::Write for Lines<'_, B> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text.as_bytes();
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(at) = find_break(rest) {
            self.buf.put_slice(&rest[..at]);
            self.buf.put_slice(self.sep);
            self.buf.put_slice(self.prefix);
            if rest[at] == b'\r' {
                match rest.get(at + 1) {
                    Some(b'\n') => rest = &rest[at + 2..],
                    Some(_) => rest = &rest[at + 1..],
                    None => {
                        self.after_cr = true;
                        return Ok(());
                    }
                }
            } else {
                rest = &rest[at + 1..];
            }
        }
        self.buf.put_slice(rest);
        Ok(())
    }
}

/// Texts longer than this are scanned by `memchr`, whose wide loop wins once its setup is paid.
const SHORT_TEXT: usize = 256;

/// The index of the first CR or LF in `bytes`.
///
/// Most field texts are short and have neither, so the scan is written for that case: whole
/// blocks of 16, 32 or 64 bytes, each byte compared with both at once (the compiler makes these
/// SIMD compares and one mask test per block), the end of the text as a last block that
/// overlaps the one before, and `memchr` to find the break's place only once a block has one.
/// `memchr`'s runtime dispatch and setup alone cost about as much as the whole scan of a 64-byte
/// text; over long texts its wider loop wins, so it scans those.
#[inline]
pub(crate) fn find_break(bytes: &[u8]) -> Option<usize> {
    #[inline(always)]
    fn has_break<const N: usize>(block: &[u8]) -> bool {
        let block: &[u8; N] = block.try_into().expect("a block of N bytes");
        let mut hit = 0u8;
        for &byte in block {
            hit |= u8::from((byte == b'\r') | (byte == b'\n'));
        }
        hit != 0
    }

    #[inline(always)]
    fn find_from(bytes: &[u8], from: usize) -> Option<usize> {
        memchr::memchr2(b'\r', b'\n', &bytes[from..]).map(|at| from + at)
    }

    let len = bytes.len();
    let clean = match len {
        0..16 => return find_from(bytes, 0),
        16..32 => !has_break::<16>(&bytes[..16]) && !has_break::<16>(&bytes[len - 16..]),
        32..64 => !has_break::<32>(&bytes[..32]) && !has_break::<32>(&bytes[len - 32..]),
        64..=SHORT_TEXT => {
            let mut from = 0;
            while from + 64 <= len {
                if has_break::<64>(&bytes[from..from + 64]) {
                    return find_from(bytes, from);
                }
                from += 64;
            }
            // What follows the last whole block, as the last 64 bytes (the overlap is clean).
            if from == len || !has_break::<64>(&bytes[len - 64..]) {
                return None;
            }
            return find_from(bytes, from);
        }
        _ => return find_from(bytes, 0),
    };
    if clean { None } else { find_from(bytes, 0) }
}

/// The text of [`put_stripped`], for text that may come in pieces: every CR and LF deleted.
pub(crate) struct Stripped<'a, B>(pub(crate) &'a mut B);

impl<B: Buffer> fmt::Write for Stripped<'_, B> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text.as_bytes();
        while let Some(at) = find_break(rest) {
            self.0.put_slice(&rest[..at]);
            rest = &rest[at + 1..];
        }
        self.0.put_slice(rest);
        Ok(())
    }
}

/// Where events are encoded: a `BytesMut`, or the `Vec` a response's frames are built in.
pub(crate) trait Buffer: BufMut {
    /// Makes room for at least `additional` more bytes.
    fn reserve_bytes(&mut self, additional: usize);
}

impl Buffer for BytesMut {
    fn reserve_bytes(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

impl Buffer for Vec<u8> {
    fn reserve_bytes(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::find_break;

    /// Every length up to past the short-text limit, with no break, and with a CR or an LF at
    /// each position (alone, and before a second break later on): the same answer as `memchr`.
    #[test]
    fn find_break_finds_what_memchr_finds() {
        for len in 0..300 {
            let clean = vec![b'x'; len];
            assert_eq!(find_break(&clean), None, "len {len}");
            for at in 0..len {
                for byte in [b'\r', b'\n'] {
                    let mut text = clean.clone();
                    text[at] = byte;
                    assert_eq!(find_break(&text), Some(at), "len {len}, at {at}");
                    if at + 3 < len {
                        text[len - 1] = b'\n';
                        assert_eq!(find_break(&text), Some(at), "len {len}, at {at}, two");
                    }
                    assert_eq!(
                        find_break(&text),
                        memchr::memchr2(b'\r', b'\n', &text),
                        "len {len}, at {at}"
                    );
                }
            }
        }
    }
}
