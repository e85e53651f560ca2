//! Writes a message body in one pass:
//! `{"mediaType": .., "opaqueData": {..}, <the message's fields>}`.
//!
//! The message is serialized straight into the output through three small serializer
//! wrappers, with no intermediate `serde_json::Value`:
//! - [`TopLevel`] accepts only a struct or a map, writes the envelope keys first, leaves
//!   top-level `None` fields out (the seed's schemas reject `null` for absent fields) and
//!   refuses fields named like the envelope's keys. It writes the envelope and the top-level
//!   keys itself, escaped as serde_json escapes (`json::push_json_string`), and each value
//!   through serde_json;
//! - [`FiniteCheck`] refuses NaN and infinity at any depth (serde_json would write `null`);
//! - [`NoneProbe`] tells whether a field value is an absent `Option`, without writing it.
//!
//! [`FiniteCheck`] is also the decode side's check ([`non_finite_field`]): there it wraps
//! [`Sink`], a serializer that writes nothing, so one walker serves both directions.
//!
//! Only `None` is left out: a required field that serializes as `null` (a
//! `serde_json::Value::Null`, a unit) is written, or its own type could not decode the body.

use std::cell::Cell;
use std::fmt;

use serde::ser::{self, Impossible, Serialize, Serializer};

use crate::error::{EncodeError, JsonKind};
use crate::json::push_json_string;
use crate::opaque::{OpaqueData, REQUEST_PUBLISHED};

/// The two keys the envelope writes itself.
pub(crate) const MEDIA_TYPE_KEY: &str = "mediaType";
pub(crate) const OPAQUE_DATA_KEY: &str = "opaqueData";

/// The error text when [`FiniteCheck`] refuses a float. Only for the error's own display:
/// a refusal is recognised by [`FiniteCheck`]'s flag, never by this text.
const NON_FINITE: &str = "non-finite float";

/// What a message that serializes as an enum variant is called in [`EncodeError::NotAnObject`].
const AN_ENUM_VARIANT: &str = "an enum variant";

/// Serializes `content` as a message body of `media_type` with `opaque` data, stamped with
/// `published` as `x-request-published`.
pub(crate) fn write_body<T: Serialize + ?Sized>(
    media_type: &str,
    opaque: &OpaqueData,
    published: &str,
    content: &T,
) -> Result<String, EncodeError> {
    let mut out = Vec::with_capacity(256);
    let header = Header { media_type, opaque, published };
    content.serialize(TopLevel { out: &mut out, header }).map_err(BodyError::into_encode_error)?;
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

/// The top-level field of `content` holding a NaN or an infinity at any depth, which
/// [`write_body`] would refuse; `None` when every float is finite (empty when no field can
/// be named). The check is [`write_body`]'s own, run over a [`Sink`] that writes nothing
/// (cheap enough for every decode); only when it fails is the body written, to name the
/// field exactly as encode does.
pub(crate) fn non_finite_field<T: Serialize + ?Sized>(content: &T) -> Option<String> {
    let refused = Cell::new(false);
    match content.serialize(FiniteCheck { inner: Sink, refused: &refused }) {
        Err(Discarded) if refused.get() => {}
        // A `Serialize` that fails for its own reasons is not this check's to report.
        Ok(()) | Err(Discarded) => return None,
    }
    match write_body("", &OpaqueData::new(), "", content) {
        Err(EncodeError::NonFiniteFloat { field }) => Some(field),
        _ => Some(String::new()),
    }
}

#[derive(Clone, Copy)]
struct Header<'h> {
    media_type: &'h str,
    opaque: &'h OpaqueData,
    published: &'h str,
}

/// Writes the envelope keys: `{"mediaType":..,"opaqueData":{..}` with the publish stamp in
/// place of any earlier one, escaped as serde_json escapes (by hand: serde_json's map and
/// string writers were a third of the encode).
fn write_header(out: &mut Vec<u8>, header: Header<'_>) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(MEDIA_TYPE_KEY.as_bytes());
    out.extend_from_slice(b"\":");
    push_json_string(out, header.media_type);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(OPAQUE_DATA_KEY.as_bytes());
    out.extend_from_slice(b"\":{");
    for (key, value) in header.opaque.iter().filter(|(k, _)| *k != REQUEST_PUBLISHED) {
        push_json_string(out, key);
        out.push(b':');
        push_json_string(out, value);
        out.push(b',');
    }
    push_json_string(out, REQUEST_PUBLISHED);
    out.push(b':');
    push_json_string(out, header.published);
    out.push(b'}');
}

#[derive(Debug)]
enum BodyError {
    Json(serde_json::Error),
    NonFinite { field: String },
    NotAnObject(&'static str),
    Reserved(String),
    Custom(String),
}

impl BodyError {
    fn into_encode_error(self) -> EncodeError {
        match self {
            BodyError::Json(e) => EncodeError::Serialize(e.to_string()),
            BodyError::NonFinite { field } => EncodeError::NonFiniteFloat { field },
            BodyError::NotAnObject(found) => EncodeError::NotAnObject { found },
            BodyError::Reserved(key) => EncodeError::ReservedKey(key),
            BodyError::Custom(text) => EncodeError::Serialize(text),
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Json(e) => write!(f, "{e}"),
            BodyError::NonFinite { field } => write!(f, "field `{field}` holds a non-finite float"),
            BodyError::NotAnObject(found) => write!(f, "the message serializes as {found}"),
            BodyError::Reserved(key) => write!(f, "the content has the reserved key `{key}`"),
            BodyError::Custom(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for BodyError {}

impl ser::Error for BodyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        BodyError::Custom(msg.to_string())
    }
}

struct TopLevel<'a> {
    out: &'a mut Vec<u8>,
    header: Header<'a>,
}

impl<'a> TopLevel<'a> {
    fn start(self) -> Result<Fields<'a>, BodyError> {
        write_header(self.out, self.header);
        Ok(Fields { out: self.out, pending_key: None })
    }
}

macro_rules! not_an_object {
    ($($method:ident($($arg:ty),*) => $found:expr;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), BodyError> {
            Err(BodyError::NotAnObject($found))
        })*
    };
}

const NUMBER: &str = JsonKind::Number.as_str();

impl<'a> Serializer for TopLevel<'a> {
    type Ok = ();
    type Error = BodyError;
    type SerializeSeq = Impossible<(), BodyError>;
    type SerializeTuple = Impossible<(), BodyError>;
    type SerializeTupleStruct = Impossible<(), BodyError>;
    type SerializeTupleVariant = Impossible<(), BodyError>;
    type SerializeMap = Fields<'a>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Impossible<(), BodyError>;

    not_an_object! {
        serialize_bool(bool) => JsonKind::Boolean.as_str();
        serialize_i8(i8) => NUMBER;
        serialize_i16(i16) => NUMBER;
        serialize_i32(i32) => NUMBER;
        serialize_i64(i64) => NUMBER;
        serialize_i128(i128) => NUMBER;
        serialize_u8(u8) => NUMBER;
        serialize_u16(u16) => NUMBER;
        serialize_u32(u32) => NUMBER;
        serialize_u64(u64) => NUMBER;
        serialize_u128(u128) => NUMBER;
        serialize_f32(f32) => NUMBER;
        serialize_f64(f64) => NUMBER;
        serialize_char(char) => JsonKind::String.as_str();
        serialize_str(&str) => JsonKind::String.as_str();
        serialize_bytes(&[u8]) => JsonKind::Array.as_str();
        serialize_none() => JsonKind::Null.as_str();
        serialize_unit() => JsonKind::Null.as_str();
        serialize_unit_struct(&'static str) => JsonKind::Null.as_str();
        serialize_unit_variant(&'static str, u32, &'static str) => AN_ENUM_VARIANT;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), BodyError> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), BodyError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), BodyError> {
        Err(BodyError::NotAnObject(AN_ENUM_VARIANT))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, BodyError> {
        Err(BodyError::NotAnObject(JsonKind::Array.as_str()))
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, BodyError> {
        Err(BodyError::NotAnObject(JsonKind::Array.as_str()))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, BodyError> {
        Err(BodyError::NotAnObject(JsonKind::Array.as_str()))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, BodyError> {
        Err(BodyError::NotAnObject(AN_ENUM_VARIANT))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, BodyError> {
        self.start()
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, BodyError> {
        self.start()
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, BodyError> {
        Err(BodyError::NotAnObject(AN_ENUM_VARIANT))
    }
}

/// The message's own fields, written after the envelope keys: each key by hand, each value
/// by serde_json.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    pending_key: Option<String>,
}

impl Fields<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), BodyError> {
        if key == MEDIA_TYPE_KEY || key == OPAQUE_DATA_KEY {
            return Err(BodyError::Reserved(key.to_owned()));
        }
        if value.serialize(NoneProbe) == Ok(true) {
            return Ok(());
        }
        self.out.push(b',');
        push_json_string(self.out, key);
        self.out.push(b':');
        let refused = Cell::new(false);
        let finite = Finite { value, refused: &refused };
        finite.serialize(&mut serde_json::Serializer::new(&mut *self.out)).map_err(|e| {
            if refused.get() {
                BodyError::NonFinite { field: key.to_owned() }
            } else {
                BodyError::Json(e)
            }
        })
    }

    fn end(self) -> Result<(), BodyError> {
        self.out.push(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = BodyError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BodyError> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), BodyError> {
        Fields::end(self)
    }
}

impl ser::SerializeMap for Fields<'_> {
    type Ok = ();
    type Error = BodyError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), BodyError> {
        let key = match serde_json::to_value(key).map_err(BodyError::Json)? {
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(number) => number.to_string(),
            serde_json::Value::Bool(flag) => flag.to_string(),
            _ => return Err(BodyError::Custom("a message's keys must be strings".to_owned())),
        };
        self.pending_key = Some(key);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), BodyError> {
        let key = self.pending_key.take().expect("serialize_key comes before serialize_value");
        self.field(&key, value)
    }

    fn end(self) -> Result<(), BodyError> {
        Fields::end(self)
    }
}

/// A value whose floats are checked on the way through.
struct Finite<'v, T: ?Sized> {
    value: &'v T,
    refused: &'v Cell<bool>,
}

impl<T: Serialize + ?Sized> Serialize for Finite<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(FiniteCheck { inner: serializer, refused: self.refused })
    }
}

/// Forwards to `inner`, refusing non-finite floats at any depth. A refusal sets `refused`,
/// which is how the caller tells it from the inner serializer's own errors.
struct FiniteCheck<'f, S> {
    inner: S,
    refused: &'f Cell<bool>,
}

impl<'f, S> FiniteCheck<'f, S> {
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Finite<'v, T>
    where
        'f: 'v,
    {
        Finite { value, refused: self.refused }
    }

    fn check<E: ser::Error>(&self, finite: bool) -> Result<(), E> {
        if finite {
            Ok(())
        } else {
            self.refused.set(true);
            Err(E::custom(NON_FINITE))
        }
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.inner.$method($($arg),*)
        })*
    };
}

impl<'f, S: Serializer> Serializer for FiniteCheck<'f, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = FiniteCompound<'f, S::SerializeSeq>;
    type SerializeTuple = FiniteCompound<'f, S::SerializeTuple>;
    type SerializeTupleStruct = FiniteCompound<'f, S::SerializeTupleStruct>;
    type SerializeTupleVariant = FiniteCompound<'f, S::SerializeTupleVariant>;
    type SerializeMap = FiniteCompound<'f, S::SerializeMap>;
    type SerializeStruct = FiniteCompound<'f, S::SerializeStruct>;
    type SerializeStructVariant = FiniteCompound<'f, S::SerializeStructVariant>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.check(v.is_finite())?;
        self.inner.serialize_f32(v)
    }

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.check(v.is_finite())?;
        self.inner.serialize_f64(v)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner.serialize_some(&value)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner.serialize_newtype_struct(name, &value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.wrap(value);
        self.inner.serialize_newtype_variant(name, index, variant, &value)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let refused = self.refused;
        self.inner.serialize_seq(len).map(|inner| FiniteCompound { inner, refused })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let refused = self.refused;
        self.inner.serialize_tuple(len).map(|inner| FiniteCompound { inner, refused })
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let refused = self.refused;
        self.inner.serialize_tuple_struct(name, len).map(|inner| FiniteCompound { inner, refused })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let refused = self.refused;
        self.inner
            .serialize_tuple_variant(name, index, variant, len)
            .map(|inner| FiniteCompound { inner, refused })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let refused = self.refused;
        self.inner.serialize_map(len).map(|inner| FiniteCompound { inner, refused })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        let refused = self.refused;
        self.inner.serialize_struct(name, len).map(|inner| FiniteCompound { inner, refused })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let refused = self.refused;
        self.inner
            .serialize_struct_variant(name, index, variant, len)
            .map(|inner| FiniteCompound { inner, refused })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// A compound serializer whose elements pass through [`FiniteCheck`].
struct FiniteCompound<'f, C> {
    inner: C,
    refused: &'f Cell<bool>,
}

impl<'f, C> FiniteCompound<'f, C> {
    fn wrap<'v, T: ?Sized>(&self, value: &'v T) -> Finite<'v, T>
    where
        'f: 'v,
    {
        Finite { value, refused: self.refused }
    }
}

macro_rules! finite_compound {
    ($($trait:ident :: $method:ident;)*) => {
        $(impl<C: ser::$trait> ser::$trait for FiniteCompound<'_, C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                let value = self.wrap(value);
                self.inner.$method(&value)
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        })*
    };
}

finite_compound! {
    SerializeSeq::serialize_element;
    SerializeTuple::serialize_element;
    SerializeTupleStruct::serialize_field;
    SerializeTupleVariant::serialize_field;
}

impl<C: ser::SerializeMap> ser::SerializeMap for FiniteCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_value(&value)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeStruct> ser::SerializeStruct for FiniteCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(key, &value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), C::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

impl<C: ser::SerializeStructVariant> ser::SerializeStructVariant for FiniteCompound<'_, C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), C::Error> {
        let value = self.wrap(value);
        self.inner.serialize_field(key, &value)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

/// A serializer that writes nothing: under [`FiniteCheck`] it makes the finiteness check of
/// a decoded message, which has nowhere to be written.
struct Sink;

/// [`Sink`]'s error: the walk stopped (the value's own `Serialize` failed, or
/// [`FiniteCheck`] refused a float, which its flag tells).
#[derive(Debug)]
struct Discarded;

impl fmt::Display for Discarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the walk stopped")
    }
}

impl std::error::Error for Discarded {}

impl ser::Error for Discarded {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Discarded
    }
}

macro_rules! sink {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), Discarded> {
            Ok(())
        })*
    };
}

macro_rules! sink_compound {
    ($($method:ident($($arg:ty),*) -> $compound:ident;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::$compound, Discarded> {
            Ok(Sink)
        })*
    };
}

impl Serializer for Sink {
    type Ok = ();
    type Error = Discarded;
    type SerializeSeq = Sink;
    type SerializeTuple = Sink;
    type SerializeTupleStruct = Sink;
    type SerializeTupleVariant = Sink;
    type SerializeMap = Sink;
    type SerializeStruct = Sink;
    type SerializeStructVariant = Sink;

    sink! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_i128(i128); serialize_u8(u8); serialize_u16(u16);
        serialize_u32(u32); serialize_u64(u64); serialize_u128(u128); serialize_f32(f32);
        serialize_f64(f64); serialize_char(char); serialize_str(&str); serialize_bytes(&[u8]);
        serialize_none(); serialize_unit(); serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Discarded> {
        value.serialize(Sink)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Discarded> {
        value.serialize(Sink)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), Discarded> {
        value.serialize(Sink)
    }

    sink_compound! {
        serialize_seq(Option<usize>) -> SerializeSeq;
        serialize_tuple(usize) -> SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant;
        serialize_map(Option<usize>) -> SerializeMap;
        serialize_struct(&'static str, usize) -> SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant;
    }
}

macro_rules! sink_elements {
    ($($trait:ident :: $method:ident($($key:ty)?);)*) => {
        $(impl ser::$trait for Sink {
            type Ok = ();
            type Error = Discarded;

            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $key,)? value: &T) -> Result<(), Discarded> {
                value.serialize(Sink)
            }

            fn end(self) -> Result<(), Discarded> {
                Ok(())
            }
        })*
    };
}

sink_elements! {
    SerializeSeq::serialize_element();
    SerializeTuple::serialize_element();
    SerializeTupleStruct::serialize_field();
    SerializeTupleVariant::serialize_field();
    SerializeStruct::serialize_field(&'static str);
    SerializeStructVariant::serialize_field(&'static str);
}

impl ser::SerializeMap for Sink {
    type Ok = ();
    type Error = Discarded;

    // Keys hold no floats worth checking: serde_json writes a float key as text.
    fn serialize_key<T: Serialize + ?Sized>(&mut self, _: &T) -> Result<(), Discarded> {
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Discarded> {
        value.serialize(Sink)
    }

    fn end(self) -> Result<(), Discarded> {
        Ok(())
    }
}

/// Answers whether a value is `None` (under any `Some` or newtype); a compound answers "no"
/// by failing.
struct NoneProbe;

#[derive(Debug, PartialEq)]
struct NotNone;

impl fmt::Display for NotNone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not None")
    }
}

impl std::error::Error for NotNone {}

impl ser::Error for NotNone {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotNone
    }
}

macro_rules! probe {
    ($answer:literal: $($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<bool, NotNone> {
            Ok($answer)
        })*
    };
}

impl Serializer for NoneProbe {
    type Ok = bool;
    type Error = NotNone;
    type SerializeSeq = Impossible<bool, NotNone>;
    type SerializeTuple = Impossible<bool, NotNone>;
    type SerializeTupleStruct = Impossible<bool, NotNone>;
    type SerializeTupleVariant = Impossible<bool, NotNone>;
    type SerializeMap = Impossible<bool, NotNone>;
    type SerializeStruct = Impossible<bool, NotNone>;
    type SerializeStructVariant = Impossible<bool, NotNone>;

    probe! { true: serialize_none(); }
    probe! { false:
        serialize_unit(); serialize_unit_struct(&'static str);
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_i128(i128); serialize_u8(u8); serialize_u16(u16);
        serialize_u32(u32); serialize_u64(u64); serialize_u128(u128); serialize_f32(f32);
        serialize_f64(f64); serialize_char(char); serialize_str(&str); serialize_bytes(&[u8]);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<bool, NotNone> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<bool, NotNone> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, NotNone> {
        Ok(false)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotNone> {
        Err(NotNone)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotNone> {
        Err(NotNone)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotNone> {
        Err(NotNone)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotNone> {
        Err(NotNone)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotNone> {
        Err(NotNone)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, NotNone> {
        Err(NotNone)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotNone> {
        Err(NotNone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(content: &serde_json::Value) -> Result<serde_json::Value, EncodeError> {
        let opaque = OpaqueData::new().with_request_id("r");
        let text = write_body("a/b", &opaque, "1.000000", content)?;
        Ok(serde_json::from_str(&text).unwrap())
    }

    #[test]
    fn envelope_keys_come_first_and_nones_are_left_out() {
        #[derive(serde::Serialize)]
        struct Content {
            x: i32,
            gone: Option<i32>,
            also_gone: Option<Option<i32>>,
            // Required: left out, the body would not decode as its own type.
            kept: serde_json::Value,
        }
        let content = Content { x: 1, gone: None, also_gone: Some(None), kept: serde_json::Value::Null };
        let text = write_body("a/b", &OpaqueData::new(), "1.5", &content).unwrap();
        assert_eq!(
            text,
            r#"{"mediaType":"a/b","opaqueData":{"x-request-published":"1.5"},"x":1,"kept":null}"#
        );
    }

    #[test]
    fn non_finite_field_names_the_top_level_field() {
        #[derive(serde::Serialize)]
        struct Floats {
            ok: f64,
            nested: Vec<Option<f32>>,
        }
        assert_eq!(non_finite_field(&Floats { ok: 1.0, nested: vec![Some(2.0), None] }), None);
        let bad = Floats { ok: 1.0, nested: vec![Some(f32::INFINITY)] };
        assert_eq!(non_finite_field(&bad).as_deref(), Some("nested"));
        assert_eq!(non_finite_field(&json!({"a": 1, "b": [1.5, {"c": 2}]})), None);
        let map = std::collections::BTreeMap::from([("k", vec![f64::NAN])]);
        assert_eq!(non_finite_field(&map).as_deref(), Some("k"));
    }

    #[test]
    fn refuses_what_json_or_the_envelope_cannot_hold() {
        assert!(matches!(write(&json!([1])), Err(EncodeError::NotAnObject { found: "an array" })));
        assert!(
            matches!(write(&json!({"mediaType": "x"})), Err(EncodeError::ReservedKey(k)) if k == "mediaType")
        );
        #[derive(serde::Serialize)]
        struct Floats {
            ok: f64,
            nested: Vec<Option<f32>>,
        }
        let bad = Floats { ok: 1.0, nested: vec![Some(1.0), Some(f32::INFINITY)] };
        let error = write_body("a/b", &OpaqueData::new(), "1", &bad).unwrap_err();
        assert!(matches!(&error, EncodeError::NonFiniteFloat { field } if field == "nested"), "{error}");
        let nan = Floats { ok: f64::NAN, nested: vec![] };
        assert!(matches!(
            write_body("a/b", &OpaqueData::new(), "1", &nan),
            Err(EncodeError::NonFiniteFloat { .. })
        ));
    }

    #[test]
    fn the_stamp_replaces_an_earlier_one() {
        let opaque = OpaqueData::new().with_ttl(3);
        let mut old = opaque.clone();
        old.insert(REQUEST_PUBLISHED, "0.0");
        let text = write_body("a/b", &old, "2.0", &json!({})).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["opaqueData"], json!({"x-request-ttl": "3", "x-request-published": "2.0"}));
    }

    /// A `Serialize` that fails for its own reason, in words that read like the float check's.
    struct Refusing;

    impl Serialize for Refusing {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(ser::Error::custom(NON_FINITE))
        }
    }

    #[test]
    fn a_serialize_error_is_never_taken_for_a_non_finite_float() {
        #[derive(serde::Serialize)]
        struct Content {
            ok: f64,
            odd: Refusing,
        }
        let content = Content { ok: 1.0, odd: Refusing };
        let error = write_body("a/b", &OpaqueData::new(), "1", &content).unwrap_err();
        assert!(matches!(&error, EncodeError::Serialize(text) if text == NON_FINITE), "{error}");
        assert_eq!(non_finite_field(&content), None);
    }

    #[test]
    fn the_decode_check_names_fields_as_encode_does() {
        #[derive(serde::Serialize)]
        struct Inner {
            rate: f32,
        }
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Content {
            first_rate: f64,
            #[serde(flatten)]
            inner: Inner,
            by_tag: std::collections::BTreeMap<String, (i8, Option<f64>)>,
        }
        let mut content = Content {
            first_rate: 1.0,
            inner: Inner { rate: 2.0 },
            by_tag: [("a".to_owned(), (1, Some(f64::NEG_INFINITY)))].into(),
        };
        assert_eq!(non_finite_field(&content).as_deref(), Some("byTag"));
        content.by_tag.clear();
        assert_eq!(non_finite_field(&content), None);
        // Flattened: serialized as a map, the key still names the field.
        content.inner.rate = f32::NAN;
        assert_eq!(non_finite_field(&content).as_deref(), Some("rate"));
        // Not an object: nothing to name, but still refused.
        assert_eq!(non_finite_field(&f64::INFINITY).as_deref(), Some(""));
    }
}
