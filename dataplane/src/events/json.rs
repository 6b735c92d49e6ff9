//! A compact JSON writer for events: serde's data model written straight into the event
//! buffer, byte for byte what `serde_json::to_writer` writes for the same value.
//!
//! Why not serde_json here: a flow record (~1 KB, about 35 keys and 30 string values) cost
//! ~16,500 instructions through `serde_json::to_writer`, two thirds of them in its string
//! escaping, which looks at every byte through a table; with one record per flow that was
//! ~13% of a worker's time on the east-west capture. This writer checks 8 bytes at a time
//! for the three things JSON must escape (`"`, `\` and control bytes) and copies clean runs
//! whole. Integers go through itoa and floats, which events do not carry today, through
//! serde_json, so that their form stays serde_json's. `tests` holds the two writers to
//! the same bytes.

use std::fmt::Display;

use serde::ser::{self, Impossible, Serialize};

/// Why a value could not be written (a map key that is not a string or a number, or an
/// error raised by a `Serialize` impl).
#[derive(Debug)]
pub struct Error(String);

impl Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// Appends `value` as compact JSON to `out`. On error `out` may hold part of the value:
/// callers truncate it back.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    value.serialize(&mut Writer { out })
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes may need escaping: below 0x20, `"` or `\`. Exact for a word
/// with none (no false negatives); a false positive only costs a byte-by-byte look.
#[inline]
fn word_needs_escape(w: u64) -> bool {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let x = w ^ (ONES * u64::from(b'"'));
    let quote = x.wrapping_sub(ONES) & !x;
    let y = w ^ (ONES * u64::from(b'\\'));
    let backslash = y.wrapping_sub(ONES) & !y;
    (below_space | quote | backslash) & HIGHS != 0
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `b` escaped as serde_json escapes it (`b` is below 0x20, `"` or `\`).
#[inline]
fn push_escaped(out: &mut Vec<u8>, b: u8) {
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        0..=0x1f => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
            return;
        }
        other => {
            out.push(other);
            return;
        }
    };
    out.push(b'\\');
    out.push(short);
}

#[inline]
fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// The 8 bytes at `at` as a word (0 when they are not all there, which needs no escape).
#[inline]
fn word_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map_or(0x2020_2020_2020_2020, u64::from_le_bytes)
}

/// Whether `b` holds nothing JSON must escape: a word at a time, the last word read
/// overlapping the one before it; strings under 8 bytes (most keys) a byte at a time.
#[inline]
fn is_clean(b: &[u8]) -> bool {
    let len = b.len();
    if len < 8 {
        return !b.iter().any(|&c| needs_escape(c));
    }
    let mut i = 0usize;
    while i + 8 <= len {
        if word_needs_escape(word_at(b, i)) {
            return false;
        }
        i += 8;
    }
    i == len || !word_needs_escape(word_at(b, len - 8))
}

/// Writes `b` escaped, without the quotes.
fn write_contents(out: &mut Vec<u8>, b: &[u8]) {
    if is_clean(b) {
        out.extend_from_slice(b);
        return;
    }
    let mut clean = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if needs_escape(c) {
            out.extend_from_slice(b.get(clean..i).unwrap_or_default());
            push_escaped(out, c);
            clean = i + 1;
        }
    }
    out.extend_from_slice(b.get(clean..).unwrap_or_default());
}

/// Writes `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_contents(out, s.as_bytes());
    out.push(b'"');
}

/// `Display` output written straight into the line, escaped (an IPv6 address, say):
/// serde's default `collect_str` would format it into a new `String` first.
struct Escaping<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        write_contents(self.0, s.as_bytes());
        Ok(())
    }
}

/// Writes an integer in decimal (itoa, as serde_json does).
fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// A sequence or map being written: whether a comma goes before the next item.
pub struct Compound<'w, 'a> {
    w: &'w mut Writer<'a>,
    first: bool,
    /// Closers to write at the end (`]`, `}`, or `}}` for a variant's wrapper).
    close: &'static [u8],
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.w.out.push(b',');
        }
    }
}

impl<'w, 'a> Writer<'a> {
    fn open(&'w mut self, open: &[u8], close: &'static [u8]) -> Compound<'w, 'a> {
        self.out.extend_from_slice(open);
        Compound {
            w: self,
            first: true,
            close,
        }
    }

    fn variant_key(&mut self, variant: &str) {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
    }
}

/// The narrower integer methods, each widening its value for the 64-bit one.
macro_rules! widen {
    ($($m:ident),* => $to:ident : $($t:ty),* => $w:ty) => {
        widen!(@each $to $w; $($m),*; $($t),*);
    };
    (@each $to:ident $w:ty; $($m:ident),*; $($t:ty),*) => {$(
        fn $m(self, v: $t) -> Result<(), Error> {
            self.$to(<$w>::from(v))
        }
    )*};
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }
    widen!(serialize_i8, serialize_i16, serialize_i32 => serialize_i64: i8, i16, i32 => i64);
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }
    widen!(serialize_u8, serialize_u16, serialize_u32 => serialize_u64: u8, u16, u32 => u64);
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v).map_err(|e| Error(e.to_string()))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        serde_json::to_writer(&mut *self.out, &v).map_err(|e| Error(e.to_string()))
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        use std::fmt::Write as _;
        self.out.push(b'"');
        write!(Escaping(self.out), "{value}").map_err(|e| Error(e.to_string()))?;
        self.out.push(b'"');
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(b)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        write_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant_key(variant);
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Ok(self.open(b"[", b"]"))
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        self.variant_key(variant);
        Ok(self.open(b"[", b"]}"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Ok(self.open(b"{", b"}"))
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Ok(self.open(b"{", b"}"))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        self.variant_key(variant);
        Ok(self.open(b"{", b"}}"))
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.comma();
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Error> {
        self.w.out.extend_from_slice(self.close);
        Ok(())
    }
}

/// Tuples are written as sequences: each trait's one method goes to [`ser::SerializeSeq`].
macro_rules! as_seq {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                ser::SerializeSeq::serialize_element(self, value)
            }
            fn end(self) -> Result<(), Error> {
                ser::SerializeSeq::end(self)
            }
        }
    )*};
}

as_seq!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.comma();
        key.serialize(MapKey { out: self.w.out })?;
        self.w.out.push(b':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Error> {
        self.w.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.comma();
        write_str(self.w.out, key);
        self.w.out.push(b':');
        value.serialize(&mut *self.w)
    }
    fn end(self) -> Result<(), Error> {
        self.w.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeStruct::end(self)
    }
}

/// A map key: strings as they are, numbers and booleans quoted (as serde_json writes them);
/// anything else is an error, since JSON keys are strings.
struct MapKey<'a> {
    out: &'a mut Vec<u8>,
}

fn key_error() -> Error {
    Error("a map key must be a string, a number or a boolean".into())
}

impl MapKey<'_> {
    fn quoted(self, f: impl FnOnce(&mut Vec<u8>)) -> Result<(), Error> {
        self.out.push(b'"');
        f(self.out);
        self.out.push(b'"');
        Ok(())
    }
}

impl ser::Serializer for MapKey<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0u8; 4]));
        Ok(())
    }
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(|o| o.extend_from_slice(if v { b"true" as &[u8] } else { b"false" }))
    }
    widen!(serialize_i8, serialize_i16, serialize_i32 => serialize_i64: i8, i16, i32 => i64);
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.quoted(|o| write_int(o, v))
    }
    widen!(serialize_u8, serialize_u16, serialize_u32 => serialize_u64: u8, u16, u32 => u64);
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.quoted(|o| write_int(o, v))
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        write_str(self.out, variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    fn both<T: Serialize>(v: &T) -> (String, String) {
        let mut ours = Vec::new();
        write(&mut ours, v).unwrap();
        (
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(v).unwrap(),
        )
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut all: Vec<String> = (0u32..0x80)
            .map(|c| char::from_u32(c).unwrap().to_string())
            .collect();
        all.extend(
            [
                "",
                "plain ascii text longer than eight bytes",
                "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{1}i\u{1f}",
                "ünïcödé ✓ 漢字 \u{7f} \u{80} \u{10ffff}",
                "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
                "12345678\u{0}",
                "1234567\u{0}8",
                "\u{0}1234567",
                "ÿÿÿÿÿÿÿÿ\"",
                "\u{2028}\u{2029}</script>",
            ]
            .map(String::from),
        );
        // Every byte value (as a code point) at every offset in a 16-byte window.
        for c in 0u32..0x100 {
            let ch = char::from_u32(c).unwrap();
            for at in 0..16 {
                let mut s = "x".repeat(16);
                s.insert(at, ch);
                all.push(s);
            }
        }
        for s in &all {
            let (ours, theirs) = both(s);
            assert_eq!(ours, theirs, "{s:?}");
        }
    }

    #[test]
    fn numbers_match() {
        for v in [
            0u64,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            65535,
            u64::MAX,
            1 << 53,
        ] {
            let (a, b) = both(&v);
            assert_eq!(a, b);
        }
        for v in [0i64, -1, -9, -10, i64::MIN, i64::MAX, -65536] {
            let (a, b) = both(&v);
            assert_eq!(a, b);
        }
        for v in [0.5f64, -1.25, 1e300, f64::NAN, 3.0] {
            let (a, b) = both(&v);
            assert_eq!(a, b);
        }
        let (a, b) = both(&u128::MAX);
        assert_eq!(a, b);
        let (a, b) = both(&i128::MIN);
        assert_eq!(a, b);
    }

    #[derive(Serialize)]
    enum E {
        Unit,
        New(u8),
        Tup(u8, String),
        Rec { a: u8, b: Option<&'static str> },
    }

    #[derive(Serialize)]
    struct Inner {
        x: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        y: Option<u32>,
    }

    #[derive(Serialize)]
    struct Outer<'a> {
        name: &'a str,
        flag: bool,
        list: Vec<E>,
        map: BTreeMap<String, Vec<u8>>,
        #[serde(with = "serde_bytes_as_seq")]
        raw: &'a [u8],
        unit: (),
        tuple: (u8, char, &'a str),
        nested: Option<Inner>,
        #[serde(flatten)]
        flat: Inner,
        ints: BTreeMap<u16, bool>,
    }

    mod serde_bytes_as_seq {
        pub fn serialize<S: serde::Serializer>(v: &&[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[test]
    fn the_data_model_matches() {
        let mut map = BTreeMap::new();
        map.insert("k\"1".to_string(), vec![1, 2]);
        map.insert(String::new(), vec![]);
        let mut ints = BTreeMap::new();
        ints.insert(7u16, true);
        ints.insert(65535, false);
        let v = Outer {
            name: "n\u{1}",
            flag: true,
            list: vec![
                E::Unit,
                E::New(3),
                E::Tup(4, "t".into()),
                E::Rec { a: 5, b: None },
                E::Rec { a: 6, b: Some("s") },
            ],
            map,
            raw: b"\x00\xff",
            unit: (),
            tuple: (1, '"', "z"),
            nested: Some(Inner { x: 1, y: None }),
            flat: Inner { x: 2, y: Some(3) },
            ints,
        };
        let (a, b) = both(&v);
        assert_eq!(a, b);
        let (a, b) = both(&Option::<Inner>::None);
        assert_eq!(a, b);
    }

    #[test]
    fn displayed_values_are_escaped_in_place() {
        struct Shown(&'static str);
        impl Display for Shown {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)?;
                f.write_str("\"tail\n")
            }
        }
        impl Serialize for Shown {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        for v in ["", "plain", "a\\b\u{1}", "2001:db8::ff00:42:8329"] {
            let (a, b) = both(&Shown(v));
            assert_eq!(a, b);
        }
        let ip: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let (a, b) = both(&ip);
        assert_eq!(a, b);
    }

    #[test]
    fn a_key_that_cannot_be_a_string_is_an_error() {
        let mut m = BTreeMap::new();
        m.insert(vec![1u8], 1u8);
        let mut out = Vec::new();
        assert!(write(&mut out, &m).is_err());
        assert!(serde_json::to_vec(&m).is_err());
    }
}
