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

/// The `serialize_<integer>` methods: the integer's decimal text, as a string.
macro_rules! integers_as_text {
    ($($method:ident: $t:ty),* $(,)?) => {$(
        fn $method(self, v: $t) -> Result<S::Ok, S::Error> {
            self.0.serialize_str(itoa::Buffer::new().format(v))
        }
    )*};
}

/// A compound whose elements (or fields) are written through [`Manageips`] by the method `$element`.
macro_rules! elements_through_manageips {
    ($($trait:ident: $element:ident),* $(,)?) => {$(
        impl<C: $trait> $trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;
            fn $element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), C::Error> {
                self.0.$element(&Manageips(v))
            }
            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
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
    integers_as_text! {
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64, serialize_i128: i128,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_u128: u128,
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

elements_through_manageips! {
    SerializeSeq: serialize_element,
    SerializeTuple: serialize_element,
    SerializeTupleStruct: serialize_field,
    SerializeTupleVariant: serialize_field,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Keyed, Records};
    use serde_json::json;

    #[derive(serde::Serialize)]
    struct Record {
        id: i64,
        big: u128,
        ok: bool,
        none: Option<i64>,
        text: &'static str,
        nested: Vec<Option<u8>>,
        free: serde_json::Value,
    }

    impl Keyed for Record {
        type Key<'a> = i64;
        fn key(&self) -> i64 {
            self.id
        }
    }

    fn rendered(v: &impl Serialize) -> String {
        serde_json::to_string(&Manageips(v)).unwrap()
    }

    #[test]
    fn scalars_become_strings_while_serialising() {
        let r = Record {
            id: -7,
            big: u128::MAX,
            ok: true,
            none: None,
            text: "a\"b",
            nested: vec![Some(1), None],
            free: json!({"n": 12345678901234567890u64, "f": 1.5, "b": false, "l": [1, "x", null]}),
        };
        assert_eq!(
            rendered(&r),
            r#"{"id":"-7","big":"340282366920938463463374607431768211455","ok":"true","none":null,"text":"a\"b","nested":["1",null],"free":{"n":"12345678901234567890","f":"1.5","b":"false","l":["1","x",null]}}"#
        );
    }

    #[test]
    fn records_are_keyed_by_their_type_and_none_is_an_empty_list() {
        let one = |id| Record {
            id,
            big: 0,
            ok: false,
            none: Some(3),
            text: "",
            nested: vec![],
            free: json!(null),
        };
        let keyed = rendered(&Records(vec![one(9), one(2)]));
        assert!(keyed.starts_with(r#"{"9":{"id":"9","#), "{keyed}");
        assert!(keyed.contains(r#"},"2":{"id":"2","#), "in order, not sorted: {keyed}");
        assert_eq!(rendered(&Records(Vec::<Record>::new())), "[]");
    }
}
