//! JSON events (feature `json`): sse-starlette's `JSONServerSentEvent` (SPEC §B).
//!
//! Data is serialized as compact JSON (no spaces, `{"a":1}`), with non-ASCII written as UTF-8
//! rather than escaped, and with NaN and the infinities rejected, as Python's
//! `json.dumps(ensure_ascii=False, allow_nan=False, separators=(",", ":"))` does.
//!
//! Numbers follow Python's `json` too (SPEC 38). Integers are written in full. A float gets the
//! shortest digits that read back as the same value, in exponent form below `1e-4` and from `1e16`
//! on, with a signed exponent of at least two digits, and otherwise in fixed form with a fraction:
//! `0.0001`, `1e-05`, `1.5e-07`, `1.0`, `9999999999999998.0`, `1e+16`, `-0.0`. An `f32` keeps its
//! own shortest digits (`0.1_f32` is `0.1`, not the `0.10000000149011612` of the widened `f64`)
//! in the same layout. Float map keys are written the same way, as strings. If a dependent turns
//! on serde_json's `arbitrary_precision` feature, a [`serde_json::Value`] number is written as the
//! text serde_json stores for it, unchanged. `float.rs` has the rule as CPython states it.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use serde::Serialize;
use serde::ser::{self, Serializer};

use crate::event::{Separator, ServerSentEvent};
use crate::into_event::{IntoEvent, Payload};

mod float;

/// JSON data wrapper: `Json(value)` sends `data: <compact JSON>`, numbers written as
/// [`ServerSentEvent::json`] writes them.
///
/// This is axum's own [`axum::Json`], re-exported. Yielding a value whose serialization fails
/// (a NaN or infinite float, a map with non-string keys, a failing `Serialize` impl) ends the
/// response with [`CloseReason::Error`](crate::CloseReason::Error), as a stream error would.
///
/// ```
/// use sse_runtime::{IntoEvent, Json, Separator};
///
/// let payload = Json(serde_json::json!({"foo": "bar"})).into_event();
/// assert_eq!(payload.encode(Separator::CrLf), &b"data: {\"foo\":\"bar\"}\r\n\r\n"[..]);
/// ```
pub use axum::Json;

/// The error of serializing a value as JSON event data.
///
/// ```
/// use sse_runtime::ServerSentEvent;
///
/// let err = ServerSentEvent::json(&f64::NAN).unwrap_err();
/// assert_eq!(err.to_string(), "Out of range float values are not JSON compliant: NaN");
/// ```
#[derive(Debug)]
pub struct JsonError(serde_json::Error);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Serializes `value` as compact JSON, with floats as Python writes them, rejecting non-finite
/// floats anywhere inside it. Every JSON event is made here.
pub(crate) fn to_json(value: &(impl Serialize + ?Sized)) -> Result<String, JsonError> {
    let mut out = Vec::with_capacity(64);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, float::PythonFormatter);
    value
        .serialize(Finite(&mut serializer))
        .map_err(JsonError)?;
    // serde_json writes UTF-8 only; the fallback cannot happen but costs nothing to keep.
    String::from_utf8(out).map_err(|e| JsonError(ser::Error::custom(e)))
}

impl ServerSentEvent {
    /// An event whose `data` is `value` as compact JSON (sse-starlette's
    /// `JSONServerSentEvent(value)`).
    ///
    /// ```
    /// use serde_json::json;
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::json(&json!({"k": "é😀"}))?.id("xyz").event("baz");
    /// assert_eq!(
    ///     event.encode(Separator::CrLf),
    ///     "id: xyz\r\nevent: baz\r\ndata: {\"k\":\"é😀\"}\r\n\r\n".as_bytes()
    /// );
    /// assert!(ServerSentEvent::json(&[1.0, f64::INFINITY]).is_err());
    /// # Ok::<(), sse_runtime::JsonError>(())
    /// ```
    ///
    /// Floats are written as Python's `json` writes them (SPEC 38): the shortest digits that
    /// read back as the same value, in exponent form below `1e-4` and from `1e16` on, with a
    /// signed exponent of at least two digits, and otherwise with a fraction (`1.0`). An `f32`
    /// keeps its own shortest digits (`0.1_f32` is `0.1`, where the widened `f64` would be
    /// `0.10000000149011612`), in the same layout.
    ///
    /// ```
    /// use sse_runtime::ServerSentEvent;
    ///
    /// let event = ServerSentEvent::json(&[1e-5, 0.0001, 1.0, 1e16, 1e20, -0.0])?;
    /// assert_eq!(event.get_data(), Some("[1e-05,0.0001,1.0,1e+16,1e+20,-0.0]"));
    /// assert_eq!(ServerSentEvent::json(&[0.1_f32, 2.5e-8])?.get_data(), Some("[0.1,2.5e-08]"));
    /// # Ok::<(), sse_runtime::JsonError>(())
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, JsonError> {
        Self::new().json_data(value)
    }

    /// Sets the `data` field to `value` as compact JSON.
    ///
    /// ```
    /// use sse_runtime::{Separator, ServerSentEvent};
    ///
    /// let event = ServerSentEvent::new().event("point").json_data(&(1, 2))?;
    /// assert_eq!(event.encode(Separator::Lf), &b"event: point\ndata: [1,2]\n\n"[..]);
    /// # Ok::<(), sse_runtime::JsonError>(())
    /// ```
    pub fn json_data<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, JsonError> {
        Ok(self.data(to_json(value)?))
    }
}

/// sse-starlette's `JSONServerSentEvent`: a [`ServerSentEvent`] whose data is JSON.
///
/// [`new`](Self::new) serializes at once (numbers as [`ServerSentEvent::json`] writes them) and
/// fails for non-finite floats (SPEC 35); [`empty`](Self::empty) has no data line at all, not
/// `data: null` (SPEC 32). It dereferences to the underlying [`ServerSentEvent`].
///
/// ```
/// use serde_json::json;
/// use sse_runtime::{JsonServerSentEvent, Separator};
///
/// let event = JsonServerSentEvent::new(&json!({"foo": "bar"}))?.event("baz");
/// assert_eq!(event.encode(Separator::CrLf), &b"event: baz\r\ndata: {\"foo\":\"bar\"}\r\n\r\n"[..]);
/// assert_eq!(JsonServerSentEvent::empty().encode(Separator::CrLf), &b"\r\n"[..]);
/// # Ok::<(), sse_runtime::JsonError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonServerSentEvent(ServerSentEvent);

impl JsonServerSentEvent {
    /// An event with `value` as compact JSON data.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Result<Self, JsonError> {
        ServerSentEvent::json(value).map(Self)
    }

    /// An event with no data line.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Sets the `event` field.
    pub fn event(self, event: impl fmt::Display) -> Self {
        Self(self.0.event(event))
    }

    /// Sets the `id` field.
    pub fn id(self, id: impl fmt::Display) -> Self {
        Self(self.0.id(id))
    }

    /// Sets the `retry` field, in milliseconds.
    pub fn retry(self, milliseconds: u64) -> Self {
        Self(self.0.retry(milliseconds))
    }

    /// Sets a comment.
    pub fn comment(self, comment: impl fmt::Display) -> Self {
        Self(self.0.comment(comment))
    }

    /// Fixes this event's separator.
    pub fn separator(self, separator: Separator) -> Self {
        Self(self.0.separator(separator))
    }

    /// Encodes the event, as [`ServerSentEvent::encode`].
    pub fn encode(&self, separator: Separator) -> Bytes {
        self.0.encode(separator)
    }

    /// The underlying event.
    pub fn into_inner(self) -> ServerSentEvent {
        self.0
    }
}

impl Deref for JsonServerSentEvent {
    type Target = ServerSentEvent;

    fn deref(&self) -> &ServerSentEvent {
        &self.0
    }
}

impl From<JsonServerSentEvent> for ServerSentEvent {
    fn from(event: JsonServerSentEvent) -> Self {
        event.0
    }
}

impl IntoEvent for JsonServerSentEvent {
    fn into_event(self) -> Payload {
        self.0.into_event()
    }
}

impl<T: Serialize> IntoEvent for Json<T> {
    fn into_event(self) -> Payload {
        match to_json(&self.0) {
            Ok(json) => json.into_event(),
            Err(error) => Payload::invalid(error),
        }
    }
}

impl IntoEvent for serde_json::Value {
    fn into_event(self) -> Payload {
        Json(self).into_event()
    }
}

impl IntoEvent for &serde_json::Value {
    fn into_event(self) -> Payload {
        Json(self).into_event()
    }
}

// ---------------------------------------------------------------------------------------------
// A pass-through serializer that rejects NaN and the infinities wherever they occur. serde_json
// itself writes them as `null`, which would silently lose data (Python raises, SPEC 35).

const NON_FINITE: &str = "Out of range float values are not JSON compliant";

struct Finite<S>(S);

/// A value whose serialization goes through [`Finite`] again, for nested values.
struct Checked<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Checked<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Finite(serializer))
    }
}

fn check_finite<E: ser::Error>(value: f64) -> Result<(), E> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(E::custom(format_args!("{NON_FINITE}: {value}")))
    }
}

macro_rules! forward {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method(self, value: $ty) -> Result<S::Ok, S::Error> {
            self.0.$method(value)
        }
    )*};
}

impl<S: Serializer> Serializer for Finite<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Finite<S::SerializeSeq>;
    type SerializeTuple = Finite<S::SerializeTuple>;
    type SerializeTupleStruct = Finite<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Finite<S::SerializeTupleVariant>;
    type SerializeMap = Finite<S::SerializeMap>;
    type SerializeStruct = Finite<S::SerializeStruct>;
    type SerializeStructVariant = Finite<S::SerializeStructVariant>;

    forward! {
        serialize_bool(bool);
        serialize_i8(i8);
        serialize_i16(i16);
        serialize_i32(i32);
        serialize_i64(i64);
        serialize_i128(i128);
        serialize_u8(u8);
        serialize_u16(u16);
        serialize_u32(u32);
        serialize_u64(u64);
        serialize_u128(u128);
        serialize_char(char);
        serialize_str(&str);
        serialize_bytes(&[u8]);
        serialize_unit_struct(&'static str);
    }

    fn serialize_f32(self, value: f32) -> Result<S::Ok, S::Error> {
        check_finite(f64::from(value))?;
        self.0.serialize_f32(value)
    }

    fn serialize_f64(self, value: f64) -> Result<S::Ok, S::Error> {
        check_finite(value)?;
        self.0.serialize_f64(value)
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Checked(value))
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Checked(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Checked(value))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Finite)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Finite)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Finite)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Finite)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Finite)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Finite)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Finite)
    }

    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(value)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! compound {
    ($($trait:ident :: $method:ident;)*) => {$(
        impl<S: ser::$trait> ser::$trait for Finite<S> {
            type Ok = S::Ok;
            type Error = S::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
                self.0.$method(&Checked(value))
            }

            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

compound! {
    SerializeSeq::serialize_element;
    SerializeTuple::serialize_element;
    SerializeTupleStruct::serialize_field;
    SerializeTupleVariant::serialize_field;
}

impl<S: ser::SerializeMap> ser::SerializeMap for Finite<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(&Checked(key))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&Checked(value))
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

macro_rules! compound_struct {
    ($($trait:ident)*) => {$(
        impl<S: ser::$trait> ser::$trait for Finite<S> {
            type Ok = S::Ok;
            type Error = S::Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), S::Error> {
                self.0.serialize_field(key, &Checked(value))
            }

            fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
                self.0.skip_field(key)
            }

            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

compound_struct!(SerializeStruct SerializeStructVariant);
