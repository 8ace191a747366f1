//! JSON <-> Borsh conversion driven by the ABI.

use serde::Serialize;
use serde_json::{Map, Value};
use stele_types::Address;

use crate::types::{Abi, Field, Fields, TypeDef, TypeRef};
use crate::{AbiError, REVERT_ERROR, REVERT_MESSAGE};

/// Deepest nesting of values converted (recursive user types included).
const VALUE_DEPTH_MAX: usize = 64;
/// Most values (of any type, nested ones included) one decode produces, so
/// a short input announcing billions of empty elements cannot hang the host.
const VALUES_MAX: usize = 1 << 20;

/// A decoded revert payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Revert {
    /// Tag 0: a message (`require!`, panics, SDK checks).
    Message(String),
    /// Tag 1: the method's typed error, as JSON.
    Error(Value),
    /// Not in the SDK convention (or the method declares no error type).
    Raw(#[serde(serialize_with = "hex_ser")] Vec<u8>),
}

fn hex_ser<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&stele_types::hex::encode(b))
}

/// A decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecodedEvent {
    pub name: String,
    /// Topic fields then data fields, by name. A topic field whose type is
    /// not fixed-size within 32 bytes is only known by its hash (`0x` hex).
    pub fields: Map<String, Value>,
}

impl Abi {
    /// Encodes the arguments of `method` from a JSON object (by argument
    /// name) or array (in order); `null` stands for no arguments.
    pub fn encode_args(&self, method: &str, args: &Value) -> Result<Vec<u8>, AbiError> {
        let m = self.method(method)?;
        let mut enc = Encoder {
            abi: self,
            out: Vec::new(),
        };
        let path = |f: &Field| format!("arg `{}`", f.name);
        match args {
            Value::Null if m.args.is_empty() => {}
            Value::Array(items) => {
                if items.len() != m.args.len() {
                    return Err(value_err(
                        "args",
                        format!("expected {} arguments, got {}", m.args.len(), items.len()),
                    ));
                }
                for (f, v) in m.args.iter().zip(items) {
                    enc.value(&path(f), &f.ty, v, 0)?;
                }
            }
            Value::Object(map) => {
                enc.named(&m.args, map, "args", &path)?;
            }
            other => {
                return Err(value_err(
                    "args",
                    format!(
                        "expected an object or array of arguments, got {}",
                        show(other)
                    ),
                ));
            }
        }
        Ok(enc.out)
    }

    /// Encodes one value of `ty` from JSON.
    pub fn encode_value(&self, ty: &TypeRef, value: &Value) -> Result<Vec<u8>, AbiError> {
        let mut enc = Encoder {
            abi: self,
            out: Vec::new(),
        };
        enc.value("value", ty, value, 0)?;
        Ok(enc.out)
    }

    /// Decodes one Borsh value of `ty` (the whole input) to JSON.
    pub fn decode_value(&self, ty: &TypeRef, bytes: &[u8]) -> Result<Value, AbiError> {
        let mut dec = Decoder::new(self, bytes);
        let v = dec.value("value", ty, 0)?;
        dec.finish("value")?;
        Ok(v)
    }

    /// Decodes the arguments of `method` (call input) to a JSON object.
    pub fn decode_args(&self, method: &str, input: &[u8]) -> Result<Value, AbiError> {
        let m = self.method(method)?;
        let mut dec = Decoder::new(self, input);
        let mut out = Map::new();
        for f in &m.args {
            out.insert(
                f.name.clone(),
                dec.value(&format!("arg `{}`", f.name), &f.ty, 0)?,
            );
        }
        dec.finish("args")?;
        Ok(Value::Object(out))
    }

    /// Decodes the return data of a successful call of `method`.
    pub fn decode_return(&self, method: &str, output: &[u8]) -> Result<Value, AbiError> {
        let m = self.method(method)?;
        let mut dec = Decoder::new(self, output);
        let v = dec.value("return", &m.returns, 0)?;
        dec.finish("return")?;
        Ok(v)
    }

    /// Decodes the output of a reverted call of `method` by the SDK's tag
    /// convention.
    pub fn decode_revert(&self, method: &str, payload: &[u8]) -> Result<Revert, AbiError> {
        let m = self.method(method)?;
        match (payload.split_first(), &m.error) {
            (Some((&REVERT_MESSAGE, msg)), _) => match std::str::from_utf8(msg) {
                Ok(s) => Ok(Revert::Message(s.to_string())),
                Err(_) => Ok(Revert::Raw(payload.to_vec())),
            },
            (Some((&REVERT_ERROR, body)), Some(ty)) => {
                let mut dec = Decoder::new(self, body);
                let v = dec.value("error", ty, 0)?;
                dec.finish("error")?;
                Ok(Revert::Error(v))
            }
            _ => Ok(Revert::Raw(payload.to_vec())),
        }
    }

    /// Decodes an event of this contract from its topics and data.
    pub fn decode_event(&self, topics: &[[u8; 32]], data: &[u8]) -> Result<DecodedEvent, AbiError> {
        let first = topics
            .first()
            .ok_or_else(|| AbiError::UnknownEvent("(none)".into()))?;
        let event = self
            .events
            .iter()
            .find(|e| event_topic(&e.name) == *first)
            .ok_or_else(|| AbiError::UnknownEvent(stele_types::hex::encode(first)))?;
        if topics.len() != event.topics.len() + 1 {
            return Err(decode_err(
                "topics",
                format!(
                    "event `{}` has {} topics, got {}",
                    event.name,
                    event.topics.len() + 1,
                    topics.len()
                ),
            ));
        }
        let mut fields = Map::new();
        for (f, topic) in event.topics.iter().zip(&topics[1..]) {
            let path = format!("topic `{}`", f.name);
            let v = match self.fixed_size(&f.ty, 0) {
                Some(n) if n <= 32 => {
                    if topic[n..].iter().any(|&b| b != 0) {
                        return Err(decode_err(&path, "padding bytes are not zero".into()));
                    }
                    let mut dec = Decoder::new(self, &topic[..n]);
                    let v = dec.value(&path, &f.ty, 0)?;
                    dec.finish(&path)?;
                    v
                }
                _ => Value::String(stele_types::hex::encode(topic)),
            };
            fields.insert(f.name.clone(), v);
        }
        let mut dec = Decoder::new(self, data);
        for f in &event.data {
            let v = dec.value(&format!("data `{}`", f.name), &f.ty, 0)?;
            fields.insert(f.name.clone(), v);
        }
        dec.finish("data")?;
        Ok(DecodedEvent {
            name: event.name.clone(),
            fields,
        })
    }

    /// Size of every encoding of `ty` if it is always the same, else `None`.
    /// Topic fields of such types up to 32 bytes are stored padded, others
    /// hashed.
    pub fn fixed_size(&self, ty: &TypeRef, depth: usize) -> Option<usize> {
        if depth > VALUE_DEPTH_MAX {
            return None;
        }
        Some(match ty {
            TypeRef::Unit => 0,
            TypeRef::Bool | TypeRef::U8 | TypeRef::I8 => 1,
            TypeRef::U16 | TypeRef::I16 => 2,
            TypeRef::U32 | TypeRef::I32 => 4,
            TypeRef::U64 | TypeRef::I64 => 8,
            TypeRef::U128 | TypeRef::I128 => 16,
            TypeRef::Address => 20,
            TypeRef::Array(t, n) => self.fixed_size(t, depth + 1)?.checked_mul(*n as usize)?,
            TypeRef::Tuple(ts) => ts
                .iter()
                .map(|t| self.fixed_size(t, depth + 1))
                .sum::<Option<usize>>()?,
            TypeRef::Defined(name) => match self.type_def(name)? {
                TypeDef::Struct { fields, .. } => match fields {
                    Fields::Unit => 0,
                    Fields::Named(f) => f
                        .iter()
                        .map(|f| self.fixed_size(&f.ty, depth + 1))
                        .sum::<Option<usize>>()?,
                    Fields::Unnamed(ts) => ts
                        .iter()
                        .map(|t| self.fixed_size(t, depth + 1))
                        .sum::<Option<usize>>()?,
                },
                TypeDef::Enum { .. } => return None,
            },
            TypeRef::String | TypeRef::Bytes | TypeRef::Vec(_) | TypeRef::Option(_) => return None,
        })
    }
}

/// First topic of the event called `name`: its Keccak-256.
pub fn event_topic(name: &str) -> [u8; 32] {
    stele_types::keccak256(name.as_bytes()).0
}

fn value_err(path: &str, msg: String) -> AbiError {
    AbiError::Value {
        path: path.to_string(),
        msg,
    }
}

fn decode_err(path: &str, msg: String) -> AbiError {
    AbiError::Decode {
        path: path.to_string(),
        msg,
    }
}

/// A JSON value shortened for an error message.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 64 {
        let cut: String = s.chars().take(61).collect();
        format!("{cut}...")
    } else {
        s
    }
}

struct Encoder<'a> {
    abi: &'a Abi,
    out: Vec<u8>,
}

impl Encoder<'_> {
    fn named(
        &mut self,
        fields: &[Field],
        map: &Map<String, Value>,
        at: &str,
        path: &dyn Fn(&Field) -> String,
    ) -> Result<(), AbiError> {
        if let Some(k) = map.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
            return Err(value_err(at, format!("unknown field `{k}`")));
        }
        for f in fields {
            let v = map
                .get(&f.name)
                .ok_or_else(|| value_err(&path(f), "missing".into()))?;
            self.value(&path(f), &f.ty, v, 1)?;
        }
        Ok(())
    }

    fn value(&mut self, path: &str, ty: &TypeRef, v: &Value, depth: usize) -> Result<(), AbiError> {
        if depth > VALUE_DEPTH_MAX {
            return Err(value_err(path, "value nested too deeply".into()));
        }
        let expected = |what: &str| value_err(path, format!("expected {what}, got {}", show(v)));
        match ty {
            TypeRef::Unit => match v {
                Value::Null => {}
                _ => return Err(expected("null")),
            },
            TypeRef::Bool => match v {
                Value::Bool(b) => self.out.push(u8::from(*b)),
                _ => return Err(expected("a boolean")),
            },
            TypeRef::U8 => self
                .out
                .push(small_uint(v, u8::MAX.into()).ok_or_else(|| expected("u8 (0..=255)"))? as u8),
            TypeRef::U16 => self.out.extend_from_slice(
                &(small_uint(v, u16::MAX.into()).ok_or_else(|| expected("u16 (0..=65535)"))?
                    as u16)
                    .to_le_bytes(),
            ),
            TypeRef::U32 => self.out.extend_from_slice(
                &(small_uint(v, u32::MAX.into()).ok_or_else(|| expected("u32"))? as u32)
                    .to_le_bytes(),
            ),
            TypeRef::I8 => self.out.extend_from_slice(
                &i8::try_from(small_int(v).ok_or_else(|| expected("i8"))?)
                    .map_err(|_| expected("i8 (-128..=127)"))?
                    .to_le_bytes(),
            ),
            TypeRef::I16 => self.out.extend_from_slice(
                &i16::try_from(small_int(v).ok_or_else(|| expected("i16"))?)
                    .map_err(|_| expected("i16"))?
                    .to_le_bytes(),
            ),
            TypeRef::I32 => self.out.extend_from_slice(
                &i32::try_from(small_int(v).ok_or_else(|| expected("i32"))?)
                    .map_err(|_| expected("i32"))?
                    .to_le_bytes(),
            ),
            TypeRef::U64 => self.out.extend_from_slice(
                &u64::try_from(big_uint(v).ok_or_else(|| expected("u64 as a decimal string"))?)
                    .map_err(|_| expected("u64 (at most 18446744073709551615)"))?
                    .to_le_bytes(),
            ),
            TypeRef::U128 => self.out.extend_from_slice(
                &big_uint(v)
                    .ok_or_else(|| expected("u128 as a decimal string"))?
                    .to_le_bytes(),
            ),
            TypeRef::I64 => self.out.extend_from_slice(
                &i64::try_from(big_int(v).ok_or_else(|| expected("i64 as a decimal string"))?)
                    .map_err(|_| expected("i64 in range"))?
                    .to_le_bytes(),
            ),
            TypeRef::I128 => self.out.extend_from_slice(
                &big_int(v)
                    .ok_or_else(|| expected("i128 as a decimal string"))?
                    .to_le_bytes(),
            ),
            TypeRef::String => match v {
                Value::String(s) => self.bytes(path, s.as_bytes())?,
                _ => return Err(expected("a string")),
            },
            TypeRef::Bytes => {
                let b = hex_bytes(v).ok_or_else(|| expected("bytes as 0x-prefixed hex"))?;
                self.bytes(path, &b)?;
            }
            TypeRef::Address => match v {
                Value::String(s) => {
                    let a: Address = s
                        .parse()
                        .map_err(|e| value_err(path, format!("{e}, got {}", show(v))))?;
                    self.out.extend_from_slice(&a.0);
                }
                _ => return Err(expected("an address as 0x-prefixed hex")),
            },
            TypeRef::Array(t, n) if **t == TypeRef::U8 => {
                let b = hex_bytes(v)
                    .filter(|b| b.len() == *n as usize)
                    .ok_or_else(|| expected(&format!("{n} bytes as 0x-prefixed hex")))?;
                self.out.extend_from_slice(&b);
            }
            TypeRef::Array(t, n) => match v {
                Value::Array(items) if items.len() == *n as usize => {
                    for (i, item) in items.iter().enumerate() {
                        self.value(&format!("{path}[{i}]"), t, item, depth + 1)?;
                    }
                }
                _ => return Err(expected(&format!("an array of {n} elements"))),
            },
            TypeRef::Vec(t) => match v {
                Value::Array(items) => {
                    let n = u32::try_from(items.len())
                        .map_err(|_| expected("at most 2^32-1 elements"))?;
                    self.out.extend_from_slice(&n.to_le_bytes());
                    for (i, item) in items.iter().enumerate() {
                        self.value(&format!("{path}[{i}]"), t, item, depth + 1)?;
                    }
                }
                _ => return Err(expected("an array")),
            },
            TypeRef::Option(t) => match v {
                Value::Null => self.out.push(0),
                _ => {
                    self.out.push(1);
                    self.value(path, t, v, depth + 1)?;
                }
            },
            TypeRef::Tuple(ts) => match v {
                Value::Array(items) if items.len() == ts.len() => {
                    for (i, (t, item)) in ts.iter().zip(items).enumerate() {
                        self.value(&format!("{path}[{i}]"), t, item, depth + 1)?;
                    }
                }
                _ => return Err(expected(&format!("an array of {} elements", ts.len()))),
            },
            TypeRef::Defined(name) => {
                let def = self
                    .abi
                    .type_def(name)
                    .ok_or_else(|| value_err(path, format!("type `{name}` is not defined")))?;
                match def {
                    TypeDef::Struct { fields, .. } => self.fields(path, name, fields, v, depth)?,
                    TypeDef::Enum { variants, .. } => {
                        let (vname, body) = match v {
                            Value::String(s) => (s.as_str(), &Value::Null),
                            Value::Object(m) if m.len() == 1 => match m.iter().next() {
                                Some((k, b)) => (k.as_str(), b),
                                None => return Err(expected("an enum variant")),
                            },
                            _ => {
                                return Err(expected(&format!(
                                    "a `{name}` variant as \"Name\" or {{\"Name\": fields}}"
                                )));
                            }
                        };
                        let (i, variant) = variants
                            .iter()
                            .enumerate()
                            .find(|(_, var)| var.name == vname)
                            .ok_or_else(|| {
                                value_err(path, format!("`{name}` has no variant `{vname}`"))
                            })?;
                        self.out.push(
                            u8::try_from(i)
                                .map_err(|_| expected("an enum with at most 256 variants"))?,
                        );
                        self.fields(
                            &format!("{path}.{vname}"),
                            vname,
                            &variant.fields,
                            body,
                            depth,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    fn fields(
        &mut self,
        path: &str,
        name: &str,
        fields: &Fields,
        v: &Value,
        depth: usize,
    ) -> Result<(), AbiError> {
        match (fields, v) {
            (Fields::Unit, Value::Null) => Ok(()),
            (Fields::Named(fs), Value::Object(map)) => {
                if let Some(k) = map.keys().find(|k| !fs.iter().any(|f| &f.name == *k)) {
                    return Err(value_err(path, format!("`{name}` has no field `{k}`")));
                }
                for f in fs {
                    let p = format!("{path}.{}", f.name);
                    let item = map
                        .get(&f.name)
                        .ok_or_else(|| value_err(&p, "missing".into()))?;
                    self.value(&p, &f.ty, item, depth + 1)?;
                }
                Ok(())
            }
            (Fields::Unnamed(ts), Value::Array(items)) if ts.len() == items.len() => {
                for (i, (t, item)) in ts.iter().zip(items).enumerate() {
                    self.value(&format!("{path}[{i}]"), t, item, depth + 1)?;
                }
                Ok(())
            }
            (Fields::Unit, _) => Err(value_err(
                path,
                format!("expected null for `{name}`, got {}", show(v)),
            )),
            (Fields::Named(_), _) => Err(value_err(
                path,
                format!("expected an object for `{name}`, got {}", show(v)),
            )),
            (Fields::Unnamed(ts), _) => Err(value_err(
                path,
                format!(
                    "expected an array of {} elements for `{name}`, got {}",
                    ts.len(),
                    show(v)
                ),
            )),
        }
    }

    fn bytes(&mut self, path: &str, b: &[u8]) -> Result<(), AbiError> {
        let n = u32::try_from(b.len())
            .map_err(|_| value_err(path, "longer than 2^32-1 bytes".into()))?;
        self.out.extend_from_slice(&n.to_le_bytes());
        self.out.extend_from_slice(b);
        Ok(())
    }
}

fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

fn small_uint(v: &Value, max: u64) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => digits(s)?.parse().ok()?,
        _ => return None,
    };
    (n <= max).then_some(n)
}

fn small_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(_) => i64::try_from(big_int(v)?).ok(),
        _ => None,
    }
}

fn big_uint(v: &Value) -> Option<u128> {
    match v {
        Value::Number(n) => n.as_u64().map(u128::from),
        Value::String(s) => digits(s)?.parse().ok(),
        _ => None,
    }
}

fn big_int(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n.as_i64().map(i128::from),
        Value::String(s) => {
            let (neg, d) = match s.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, s.as_str()),
            };
            let d = digits(d)?;
            if neg {
                format!("-{d}").parse().ok()
            } else {
                d.parse().ok()
            }
        }
        _ => None,
    }
}

fn hex_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => stele_types::hex::decode(s).ok(),
        _ => None,
    }
}

struct Decoder<'a> {
    abi: &'a Abi,
    bytes: &'a [u8],
    pos: usize,
    values: usize,
}

impl<'a> Decoder<'a> {
    fn new(abi: &'a Abi, bytes: &'a [u8]) -> Self {
        Decoder {
            abi,
            bytes,
            pos: 0,
            values: 0,
        }
    }

    fn finish(&self, path: &str) -> Result<(), AbiError> {
        if self.pos != self.bytes.len() {
            return Err(decode_err(
                path,
                format!("{} trailing bytes", self.bytes.len() - self.pos),
            ));
        }
        Ok(())
    }

    fn take(&mut self, path: &str, n: usize) -> Result<&'a [u8], AbiError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                decode_err(
                    path,
                    format!("input ends early: need {n} bytes at offset {}", self.pos),
                )
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self, path: &str) -> Result<[u8; N], AbiError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(path, N)?);
        Ok(a)
    }

    fn len(&mut self, path: &str) -> Result<usize, AbiError> {
        Ok(u32::from_le_bytes(self.arr(path)?) as usize)
    }

    fn value(&mut self, path: &str, ty: &TypeRef, depth: usize) -> Result<Value, AbiError> {
        if depth > VALUE_DEPTH_MAX {
            return Err(decode_err(path, "value nested too deeply".into()));
        }
        self.values += 1;
        if self.values > VALUES_MAX {
            return Err(decode_err(path, format!("more than {VALUES_MAX} values")));
        }
        Ok(match ty {
            TypeRef::Unit => Value::Null,
            TypeRef::Bool => match self.arr::<1>(path)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(decode_err(path, format!("invalid bool byte {b}"))),
            },
            TypeRef::U8 => self.arr::<1>(path)?[0].into(),
            TypeRef::U16 => u16::from_le_bytes(self.arr(path)?).into(),
            TypeRef::U32 => u32::from_le_bytes(self.arr(path)?).into(),
            TypeRef::I8 => i8::from_le_bytes(self.arr(path)?).into(),
            TypeRef::I16 => i16::from_le_bytes(self.arr(path)?).into(),
            TypeRef::I32 => i32::from_le_bytes(self.arr(path)?).into(),
            TypeRef::U64 => u64::from_le_bytes(self.arr(path)?).to_string().into(),
            TypeRef::I64 => i64::from_le_bytes(self.arr(path)?).to_string().into(),
            TypeRef::U128 => u128::from_le_bytes(self.arr(path)?).to_string().into(),
            TypeRef::I128 => i128::from_le_bytes(self.arr(path)?).to_string().into(),
            TypeRef::String => {
                let n = self.len(path)?;
                let b = self.take(path, n)?;
                std::str::from_utf8(b)
                    .map_err(|_| decode_err(path, "string is not UTF-8".into()))?
                    .into()
            }
            TypeRef::Bytes => {
                let n = self.len(path)?;
                stele_types::hex::encode(self.take(path, n)?).into()
            }
            TypeRef::Address => Address(self.arr(path)?).to_checksum().into(),
            TypeRef::Array(t, n) if **t == TypeRef::U8 => {
                stele_types::hex::encode(self.take(path, *n as usize)?).into()
            }
            TypeRef::Array(t, n) => self.seq(path, t, *n as usize, depth)?,
            TypeRef::Vec(t) => {
                let n = self.len(path)?;
                self.seq(path, t, n, depth)?
            }
            TypeRef::Option(t) => match self.arr::<1>(path)?[0] {
                0 => Value::Null,
                1 => self.value(path, t, depth + 1)?,
                b => return Err(decode_err(path, format!("invalid option tag {b}"))),
            },
            TypeRef::Tuple(ts) => {
                let mut out = Vec::new();
                for (i, t) in ts.iter().enumerate() {
                    out.push(self.value(&format!("{path}[{i}]"), t, depth + 1)?);
                }
                Value::Array(out)
            }
            TypeRef::Defined(name) => {
                let def = self
                    .abi
                    .type_def(name)
                    .ok_or_else(|| decode_err(path, format!("type `{name}` is not defined")))?;
                match def {
                    TypeDef::Struct { fields, .. } => self.fields(path, fields, depth)?,
                    TypeDef::Enum { variants, .. } => {
                        let i = self.arr::<1>(path)?[0];
                        let v = variants.get(usize::from(i)).ok_or_else(|| {
                            decode_err(path, format!("`{name}` has no variant index {i}"))
                        })?;
                        match v.fields {
                            Fields::Unit => Value::String(v.name.clone()),
                            _ => {
                                let body =
                                    self.fields(&format!("{path}.{}", v.name), &v.fields, depth)?;
                                let mut m = Map::new();
                                m.insert(v.name.clone(), body);
                                Value::Object(m)
                            }
                        }
                    }
                }
            }
        })
    }

    fn seq(&mut self, path: &str, t: &TypeRef, n: usize, depth: usize) -> Result<Value, AbiError> {
        // No capacity from the untrusted count: the vector grows as the
        // elements actually decode.
        let mut out = Vec::new();
        for i in 0..n {
            out.push(self.value(&format!("{path}[{i}]"), t, depth + 1)?);
        }
        Ok(Value::Array(out))
    }

    fn fields(&mut self, path: &str, fields: &Fields, depth: usize) -> Result<Value, AbiError> {
        Ok(match fields {
            Fields::Unit => Value::Null,
            Fields::Named(fs) => {
                let mut m = Map::new();
                for f in fs {
                    m.insert(
                        f.name.clone(),
                        self.value(&format!("{path}.{}", f.name), &f.ty, depth + 1)?,
                    );
                }
                Value::Object(m)
            }
            Fields::Unnamed(ts) => {
                let mut out = Vec::new();
                for (i, t) in ts.iter().enumerate() {
                    out.push(self.value(&format!("{path}[{i}]"), t, depth + 1)?);
                }
                Value::Array(out)
            }
        })
    }
}
