//! The manageips rendering as a serde adapter: any `Serialize` value written through [`Manageips`] comes out with
//! every scalar as a string (`null` stays `null`), while it is serialised — no second tree is built. Lists keyed by
//! id are the records' own business ([`crate::model::Records`]); this adapter only changes scalars.

use serde::ser::{
    self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// The name under which `serde_json` (with `arbitrary_precision`) serialises a `Number`: a struct of that name with
/// one field of that name holding the number's text.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A value rendered the manageips way while it is serialised.
pub struct Manageips<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for Manageips<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Strings(s))
    }
}

/// A serializer that writes scalars as strings through the serializer it wraps.
struct Strings<S>(S);

/// A compound of the wrapped serializer whose elements are written through [`Strings`].
pub struct Compound<C>(C);

fn text<S: Serializer>(s: S, v: impl itoa::Integer) -> Result<S::Ok, S::Error> {
    s.serialize_str(itoa::Buffer::new().format(v))
}

impl<S: Serializer> Serializer for Strings<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = Compound<S::SerializeMap>;
    type SerializeStruct = StructOrNumber<S>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        text(self.0, v)
    }
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(&v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.0.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.0.collect_seq(v.iter().map(Manageips))
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Result<S::Ok, S::Error> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_variant(name, index, variant, &Manageips(v))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Compound)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Compound)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Compound)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple_variant(name, index, variant, len).map(Compound)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Compound)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        if name == NUMBER_TOKEN {
            return Ok(StructOrNumber::Number(Some(self.0), None));
        }
        self.0
            .serialize_struct(name, len)
            .map(|c| StructOrNumber::Struct(Compound(c)))
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0.serialize_struct_variant(name, index, variant, len).map(Compound)
    }
}

impl<C: SerializeSeq> SerializeSeq for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_element(&Manageips(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeTuple> SerializeTuple for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_element(&Manageips(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeTupleStruct> SerializeTupleStruct for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_field(&Manageips(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeTupleVariant> SerializeTupleVariant for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_field(&Manageips(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeMap> SerializeMap for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), C::Error> {
        self.0.serialize_key(&Manageips(k))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Manageips(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeStructVariant> SerializeStructVariant for Compound<C> {
    type Ok = C::Ok;
    type Error = C::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), C::Error> {
        self.0.serialize_field(key, &Manageips(v))
    }
    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

/// A struct, or a `serde_json` number (see [`NUMBER_TOKEN`]): the serializer that will write its text, then what
/// writing it gave.
pub enum StructOrNumber<S: Serializer> {
    Struct(Compound<S::SerializeStruct>),
    Number(Option<S>, Option<S::Ok>),
}

impl<S: Serializer> SerializeStruct for StructOrNumber<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Result<(), S::Error> {
        match self {
            StructOrNumber::Struct(c) => c.0.serialize_field(key, &Manageips(v)),
            // The number's text arrives as a string: written as it is, it is the string the envelope wants.
            StructOrNumber::Number(s, ok) => {
                let s = s.take().ok_or_else(|| ser::Error::custom("a number with two values"))?;
                *ok = Some(v.serialize(s)?);
                Ok(())
            }
        }
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        match self {
            StructOrNumber::Struct(c) => c.0.end(),
            StructOrNumber::Number(_, ok) => ok.ok_or_else(|| ser::Error::custom("a number without a value")),
        }
    }
}
