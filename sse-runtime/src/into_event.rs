//! `IntoEvent`: everything a stream or an endpoint body may yield, and how each becomes bytes.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::event::{Buffer, Separator, ServerSentEvent, put_lines};

/// One value a stream sends, ready to encode: the common type behind every [`IntoEvent`].
///
/// You rarely name it: yielding any [`IntoEvent`] value converts it. It is public so that a
/// stream of mixed values (as an `#[sse_endpoint]` body produces) has one item type.
///
/// ```
/// use sse_runtime::{IntoEvent, Payload, Separator};
///
/// let payload: Payload = 42.into_event();
/// assert_eq!(payload.encode(Separator::CrLf), &b"data: 42\r\n\r\n"[..]);
/// ```
pub struct Payload(pub(crate) Repr);

/// Raw bytes on one side, every other value on the other: the raw bytes' non-null vtable
/// pointer tells the two apart and the other values fit beside it (a `String`'s capacity tells
/// them apart in turn), so a payload is no larger than `Bytes`. Every stream's yield slot holds
/// one, so its size is paid by every open stream.
pub(crate) enum Repr {
    Raw(Bytes),
    Value(Value),
}

pub(crate) enum Value {
    Nothing,
    Text(String),
    /// An `i128` as bytes: byte alignment keeps every payload 16 bytes smaller than a
    /// 16-aligned `i128` would.
    Int([u8; 16]),
    /// A `u128` as bytes, likewise.
    UInt([u8; 16]),
    Float(f64),
    Bool(bool),
    Char(char),
    /// Boxed: a box costs only the events that are built as `ServerSentEvent`s.
    Event(Box<ServerSentEvent>),
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    Invalid(crate::BoxError),
}

/// A payload of any value but raw bytes.
const fn value(value: Value) -> Payload {
    Payload(Repr::Value(value))
}

impl Payload {
    /// A payload that sends nothing (what `None` yields).
    pub const fn nothing() -> Self {
        value(Value::Nothing)
    }

    /// A payload that cannot be sent: when a stream yields it, the response ends as if the
    /// stream had failed with `error` ([`CloseReason::Error`](crate::CloseReason::Error)).
    ///
    /// JSON values that cannot be serialized become such payloads.
    pub fn invalid(error: impl Into<crate::BoxError>) -> Self {
        value(Value::Invalid(error.into()))
    }

    /// Encodes the payload as it would be sent in a response using `separator`.
    ///
    /// Raw bytes come back unchanged; nothing comes back empty; an invalid payload comes back
    /// empty as well.
    ///
    /// ```
    /// use sse_runtime::{IntoEvent, Separator};
    ///
    /// assert_eq!("a\nb".into_event().encode(Separator::Lf), &b"data: a\ndata: b\n\n"[..]);
    /// assert_eq!(None::<u8>.into_event().encode(Separator::Lf), &b""[..]);
    /// ```
    pub fn encode(&self, separator: Separator) -> Bytes {
        let mut buf = BytesMut::new();
        // An invalid payload writes nothing; the driver reports its error instead.
        let _ = self.encode_to(separator, &mut buf);
        buf.freeze()
    }

    /// Appends the encoded payload to `buf`; returns the error of an invalid payload.
    pub(crate) fn encode_to(
        &self,
        separator: Separator,
        buf: &mut impl Buffer,
    ) -> Result<(), &crate::BoxError> {
        let sep = separator.as_bytes();
        match &self.0 {
            Repr::Value(Value::Nothing) => {}
            Repr::Value(Value::Text(text)) => put_data(buf, text, sep),
            Repr::Value(Value::Int(n)) => put_number(
                buf,
                itoa::Buffer::new().format(i128::from_ne_bytes(*n)),
                sep,
            ),
            Repr::Value(Value::UInt(n)) => put_number(
                buf,
                itoa::Buffer::new().format(u128::from_ne_bytes(*n)),
                sep,
            ),
            Repr::Value(Value::Float(x)) => {
                buf.put_slice(b"data: ");
                // Writing into a `Buffer` (a `Vec` or a `BytesMut`) cannot fail.
                let _ = write!(BytesWriter(buf), "{x}");
                buf.put_slice(sep);
                buf.put_slice(sep);
            }
            Repr::Value(Value::Bool(b)) => put_number(buf, if *b { "true" } else { "false" }, sep),
            Repr::Value(Value::Char(c)) => put_data(buf, c.encode_utf8(&mut [0; 4]), sep),
            Repr::Value(Value::Event(event)) => event.write_to(separator, buf),
            Repr::Raw(bytes) => buf.put_slice(bytes),
            Repr::Value(Value::Invalid(error)) => return Err(error),
        }
        Ok(())
    }

    /// Raw bytes, handed over without copying when they are worth a frame of their own.
    pub(crate) fn raw(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Raw(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Whether the payload cannot be encoded (see [`Payload::invalid`]).
    pub(crate) fn is_invalid(&self) -> bool {
        matches!(self.0, Repr::Value(Value::Invalid(_)))
    }

    pub(crate) fn into_raw(self) -> Option<Bytes> {
        match self.0 {
            Repr::Raw(bytes) => Some(bytes),
            _ => None,
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Value(Value::Nothing) => f.write_str("Payload::Nothing"),
            Repr::Value(Value::Text(t)) => f.debug_tuple("Payload::Text").field(t).finish(),
            Repr::Value(Value::Int(n)) => f
                .debug_tuple("Payload::Number")
                .field(&i128::from_ne_bytes(*n))
                .finish(),
            Repr::Value(Value::UInt(n)) => f
                .debug_tuple("Payload::Number")
                .field(&u128::from_ne_bytes(*n))
                .finish(),
            Repr::Value(Value::Float(x)) => f.debug_tuple("Payload::Number").field(x).finish(),
            Repr::Value(Value::Bool(b)) => f.debug_tuple("Payload::Bool").field(b).finish(),
            Repr::Value(Value::Char(c)) => f.debug_tuple("Payload::Char").field(c).finish(),
            Repr::Value(Value::Event(e)) => f.debug_tuple("Payload::Event").field(e).finish(),
            Repr::Raw(b) => f.debug_tuple("Payload::Raw").field(b).finish(),
            Repr::Value(Value::Invalid(e)) => f.debug_tuple("Payload::Invalid").field(e).finish(),
        }
    }
}

fn put_data(buf: &mut impl Buffer, text: &str, sep: &[u8]) {
    buf.reserve_bytes(text.len() + 6 + 2 * sep.len());
    put_lines(buf, b"data: ", text, sep);
    buf.put_slice(sep);
}

/// A single-line value: no splitting needed.
fn put_number(buf: &mut impl Buffer, digits: &str, sep: &[u8]) {
    buf.reserve_bytes(digits.len() + 6 + 2 * sep.len());
    buf.put_slice(b"data: ");
    buf.put_slice(digits.as_bytes());
    buf.put_slice(sep);
    buf.put_slice(sep);
}

struct BytesWriter<'a, B>(&'a mut B);

impl<B: Buffer> fmt::Write for BytesWriter<'_, B> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

/// A value that a stream may send as a Server-Sent Event.
///
/// Streams given to [`EventSourceResponse`](crate::EventSourceResponse) and the bodies of
/// `#[sse_endpoint]` functions yield values of these types; each becomes bytes with the response's
/// separator (`SEP`, CRLF by default):
///
/// | yielded value | sent as |
/// | --- | --- |
/// | `&str`, `String`, `&String`, `Cow<str>`, `Box<str>`, `Arc<str>` | `data: ` lines, split on CR, LF and CRLF (SPEC 13) |
/// | integers (`i8` ..= `u128`, `isize`, `usize`) | `data: 42` |
/// | `f32`, `f64` | `data: ` + Rust's `Display` (`1.5`; `1.0` prints `1`) |
/// | `bool` | `data: true` / `data: false` |
/// | `char` | `data: c` (a `'\n'` gives two empty data lines) |
/// | [`ServerSentEvent`] | its own encoding, with the event's separator if it set one |
/// | [`JsonServerSentEvent`](crate::JsonServerSentEvent), [`Json<T>`](crate::Json), `serde_json::Value` | `data: ` + compact JSON (feature `json`) |
/// | `Bytes`, `BytesMut`, `Vec<u8>`, `&'static [u8]`, `&'static [u8; N]` | the bytes unchanged, no framing added (SPEC 40) |
/// | `Option<T>` | `None` sends nothing; `Some(v)` sends `v` |
/// | [`Payload`] | itself |
///
/// Differences from sse-starlette, where `str()` of any value was sent: `None` sends nothing
/// (instead of `data: None`), booleans are lowercase, and floats use Rust's formatting.
///
/// ```
/// use sse_runtime::{IntoEvent, Separator, ServerSentEvent};
///
/// let sep = Separator::CrLf;
/// assert_eq!(1.into_event().encode(sep), &b"data: 1\r\n\r\n"[..]);
/// assert_eq!("text".into_event().encode(sep), &b"data: text\r\n\r\n"[..]);
/// assert_eq!(b"raw-no-framing".into_event().encode(sep), &b"raw-no-framing"[..]);
/// assert_eq!(Some(true).into_event().encode(sep), &b"data: true\r\n\r\n"[..]);
/// assert_eq!(
///     ServerSentEvent::new().event("e").data("d").into_event().encode(sep),
///     &b"event: e\r\ndata: d\r\n\r\n"[..]
/// );
/// ```
///
/// Implement it for a type of your own to yield that type directly:
///
/// ```
/// use sse_runtime::{IntoEvent, Payload, ServerSentEvent};
///
/// struct Tick(u64);
///
/// impl IntoEvent for Tick {
///     fn into_event(self) -> Payload {
///         ServerSentEvent::new().event("tick").id(self.0).data(self.0).into_event()
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent as a Server-Sent Event",
    label = "this value does not implement `IntoEvent`",
    note = "yield text (`&str`, `String`), a number, `bool`, `char`, a `ServerSentEvent`, `Json(value)`, raw bytes (`Bytes`, `Vec<u8>`) or an `Option` of one of these",
    note = "to send a value of your own type, build a `ServerSentEvent::new().data(..)` from it, wrap it in `Json(..)`, or implement `sse_runtime::IntoEvent` for it"
)]
pub trait IntoEvent {
    /// Converts the value into the payload the response sends.
    fn into_event(self) -> Payload;

    /// Appends the value's encoding to `buf`, the frame a response is building, or gives the
    /// value back as a payload when it must not be copied there (large raw bytes, a payload
    /// that cannot be encoded). What an `#[sse_endpoint]` body yields goes this way, so that
    /// no payload is built per event; the default goes through [`into_event`](Self::into_event).
    #[doc(hidden)]
    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload>
    where
        Self: Sized,
    {
        crate::driver::direct::write_payload(self.into_event(), separator, buf)
    }

    /// The value as shared raw bytes that may go out as they are, as a frame of their own when
    /// nothing is written before or after them (a broadcast's event delivered alone), or the
    /// value back. Only raw bytes shorter than the zero-copy threshold answer `Ok`; larger ones
    /// go out alone anyway (see [`write_direct`](Self::write_direct)).
    #[doc(hidden)]
    fn __into_shared(self) -> Result<Bytes, Self>
    where
        Self: Sized,
    {
        Err(self)
    }

    /// What a `yield` of an `#[sse_endpoint]` body awaits (see
    /// `__private::generator::send`). A method of this trait, so that a value that is not
    /// `IntoEvent` is reported as such, at the value, and nothing else.
    #[doc(hidden)]
    fn __sse_send(self) -> crate::__private::generator::Yield
    where
        Self: Sized,
    {
        crate::__private::generator::send(self)
    }
}

impl IntoEvent for Payload {
    fn into_event(self) -> Payload {
        self
    }

    fn __into_shared(self) -> Result<Bytes, Self> {
        match self.0 {
            Repr::Raw(bytes) if crate::driver::shares(&bytes) => Ok(bytes),
            repr => Err(Payload(repr)),
        }
    }
}

impl IntoEvent for ServerSentEvent {
    fn into_event(self) -> Payload {
        value(Value::Event(Box::new(self)))
    }

    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload> {
        self.write_to(separator, buf);
        Ok(())
    }
}

impl IntoEvent for String {
    fn into_event(self) -> Payload {
        value(Value::Text(self))
    }

    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload> {
        put_data(buf, &self, separator.as_bytes());
        Ok(())
    }
}

impl IntoEvent for &String {
    fn into_event(self) -> Payload {
        value(Value::Text(self.clone()))
    }

    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload> {
        put_data(buf, self, separator.as_bytes());
        Ok(())
    }
}

impl IntoEvent for &str {
    fn into_event(self) -> Payload {
        value(Value::Text(self.to_owned()))
    }

    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload> {
        put_data(buf, self, separator.as_bytes());
        Ok(())
    }
}

impl IntoEvent for Cow<'_, str> {
    fn into_event(self) -> Payload {
        match self {
            Cow::Borrowed(text) => text.into_event(),
            Cow::Owned(text) => text.into_event(),
        }
    }

    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload> {
        put_data(buf, &self, separator.as_bytes());
        Ok(())
    }
}

impl IntoEvent for Box<str> {
    fn into_event(self) -> Payload {
        value(Value::Text(self.into_string()))
    }

    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload> {
        put_data(buf, &self, separator.as_bytes());
        Ok(())
    }
}

impl IntoEvent for Arc<str> {
    fn into_event(self) -> Payload {
        value(Value::Text(self.as_ref().to_owned()))
    }

    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload> {
        put_data(buf, &self, separator.as_bytes());
        Ok(())
    }
}

impl IntoEvent for char {
    fn into_event(self) -> Payload {
        value(Value::Char(self))
    }
}

impl IntoEvent for bool {
    fn into_event(self) -> Payload {
        value(Value::Bool(self))
    }
}

macro_rules! signed {
    ($($ty:ty)*) => {$(
        impl IntoEvent for $ty {
            fn into_event(self) -> Payload {
                value(Value::Int((self as i128).to_ne_bytes()))
            }
        }
    )*};
}

macro_rules! unsigned {
    ($($ty:ty)*) => {$(
        impl IntoEvent for $ty {
            fn into_event(self) -> Payload {
                value(Value::UInt((self as u128).to_ne_bytes()))
            }
        }
    )*};
}

signed!(i8 i16 i32 i64 i128 isize);
unsigned!(u8 u16 u32 u64 u128 usize);

impl IntoEvent for f32 {
    fn into_event(self) -> Payload {
        value(Value::Float(f64::from(self)))
    }
}

impl IntoEvent for f64 {
    fn into_event(self) -> Payload {
        value(Value::Float(self))
    }
}

impl IntoEvent for Bytes {
    fn into_event(self) -> Payload {
        Payload(Repr::Raw(self))
    }

    fn __into_shared(self) -> Result<Bytes, Self> {
        if crate::driver::shares(&self) {
            Ok(self)
        } else {
            Err(self)
        }
    }
}

impl IntoEvent for BytesMut {
    fn into_event(self) -> Payload {
        Payload(Repr::Raw(self.freeze()))
    }
}

impl IntoEvent for Vec<u8> {
    fn into_event(self) -> Payload {
        Payload(Repr::Raw(Bytes::from(self)))
    }
}

impl IntoEvent for &'static [u8] {
    fn into_event(self) -> Payload {
        Payload(Repr::Raw(Bytes::from_static(self)))
    }
}

impl<const N: usize> IntoEvent for &'static [u8; N] {
    fn into_event(self) -> Payload {
        Payload(Repr::Raw(Bytes::from_static(self)))
    }
}

impl<T: IntoEvent> IntoEvent for Option<T> {
    fn into_event(self) -> Payload {
        match self {
            Some(value) => value.into_event(),
            None => Payload::nothing(),
        }
    }

    fn write_direct(self, separator: Separator, buf: &mut Vec<u8>) -> Result<(), Payload> {
        match self {
            Some(value) => value.write_direct(separator, buf),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_payload_is_no_larger_than_raw_bytes() {
        // Every stream's yield slot holds one: see `Repr`.
        assert!(std::mem::size_of::<super::Payload>() <= std::mem::size_of::<bytes::Bytes>());
    }
}
