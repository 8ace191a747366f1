//! The ABI document: methods, events and type definitions (serde, JSON).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::AbiError;

/// Version of the ABI document format this crate reads and writes.
pub const ABI_VERSION: u32 = 1;

/// Most methods, events or type definitions an ABI may list.
const ITEMS_MAX: usize = 1024;
/// Most fields or variants of one item.
const FIELDS_MAX: usize = 256;
/// Deepest nesting of a type reference.
pub(crate) const TYPE_DEPTH_MAX: usize = 32;
/// Most non-signature topics of an event (the VM allows 4 topics).
const TOPIC_FIELDS_MAX: usize = 3;

/// A contract's interface, as embedded in its Wasm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Abi {
    /// Format version, [`ABI_VERSION`].
    pub abi_version: u32,
    /// Contract (crate) name.
    pub name: String,
    /// Contract (crate) version.
    pub version: String,
    pub methods: Vec<Method>,
    #[serde(default)]
    pub events: Vec<Event>,
    /// Definitions of the user structs and enums the methods and events use.
    #[serde(default)]
    pub types: Vec<TypeDef>,
}

/// How a method may be invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// The constructor, exported as `init`: run once by the deploy.
    Init,
    /// Mutating method, called by a transaction or another contract.
    Call,
    /// Read-only method; the RPC may run it as a query.
    View,
}

/// One exported method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// Export name (`init` for the constructor).
    pub name: String,
    pub kind: MethodKind,
    /// Whether a native value may be attached; non-payable methods revert
    /// when called with value.
    #[serde(default)]
    pub payable: bool,
    /// Arguments in declaration order.
    pub args: Vec<Field>,
    /// Type of the return value ([`TypeRef::Unit`] for none).
    pub returns: TypeRef,
    /// Error type of a method returning `Result<T, E>`: its reverts carry a
    /// Borsh-encoded `E` with tag [`crate::REVERT_ERROR`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<TypeRef>,
}

/// A named, typed value: an argument or a struct/event field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: TypeRef,
}

/// An event a contract emits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub name: String,
    /// Indexed fields, one topic each after the name topic (at most 3).
    #[serde(default)]
    pub topics: Vec<Field>,
    /// Fields in the event data, Borsh-encoded as a tuple.
    #[serde(default)]
    pub data: Vec<Field>,
}

/// A reference to a type. Serialized as `"u64"`, `{"vec": "address"}`,
/// `{"array": ["u8", 32]}`, `{"defined": "Order"}` and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeRef {
    Unit,
    Bool,
    U8,
    U16,
    U32,
    U64,
    U128,
    I8,
    I16,
    I32,
    I64,
    I128,
    /// UTF-8 string: `u32` length then bytes.
    String,
    /// Byte vector: `u32` length then bytes; JSON `0x` hex.
    Bytes,
    /// 20 raw bytes; JSON `0x` hex, EIP-55.
    Address,
    /// `u32` count then the elements.
    Vec(Box<TypeRef>),
    /// Tag byte 0 (none) or 1 then the value.
    Option(Box<TypeRef>),
    /// Exactly `n` elements, no length prefix.
    Array(Box<TypeRef>, u32),
    /// The elements in order.
    Tuple(Vec<TypeRef>),
    /// A struct or enum from [`Abi::types`].
    Defined(String),
}

/// The type as a contract author writes it in Rust: `u128`, `Address`,
/// `Vec<u8>` (bytes), `Option<String>`, `[u8; 32]`, `(u64, bool)`, a
/// defined type's name.
impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeRef::Unit => f.write_str("()"),
            TypeRef::Bool => f.write_str("bool"),
            TypeRef::U8 => f.write_str("u8"),
            TypeRef::U16 => f.write_str("u16"),
            TypeRef::U32 => f.write_str("u32"),
            TypeRef::U64 => f.write_str("u64"),
            TypeRef::U128 => f.write_str("u128"),
            TypeRef::I8 => f.write_str("i8"),
            TypeRef::I16 => f.write_str("i16"),
            TypeRef::I32 => f.write_str("i32"),
            TypeRef::I64 => f.write_str("i64"),
            TypeRef::I128 => f.write_str("i128"),
            TypeRef::String => f.write_str("String"),
            TypeRef::Bytes => f.write_str("Vec<u8>"),
            TypeRef::Address => f.write_str("Address"),
            TypeRef::Vec(t) => write!(f, "Vec<{t}>"),
            TypeRef::Option(t) => write!(f, "Option<{t}>"),
            TypeRef::Array(t, n) => write!(f, "[{t}; {n}]"),
            TypeRef::Tuple(ts) => {
                f.write_str("(")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                // A one-element tuple keeps its comma, as in Rust.
                f.write_str(if ts.len() == 1 { ",)" } else { ")" })
            }
            TypeRef::Defined(name) => f.write_str(name),
        }
    }
}

/// A user struct or enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TypeDef {
    /// The fields in order.
    Struct { name: String, fields: Fields },
    /// A `u8` variant index (declaration order) then the variant's fields.
    Enum {
        name: String,
        variants: Vec<Variant>,
    },
}

impl TypeDef {
    /// The type's name, as used by [`TypeRef::Defined`].
    pub fn name(&self) -> &str {
        match self {
            TypeDef::Struct { name, .. } | TypeDef::Enum { name, .. } => name,
        }
    }
}

/// One variant of an enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub fields: Fields,
}

/// Fields of a struct or variant: `"unit"`, `{"named": [fields]}` or
/// `{"unnamed": [types]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fields {
    Unit,
    Named(Vec<Field>),
    Unnamed(Vec<TypeRef>),
}

impl Abi {
    /// Parses and validates an ABI document.
    pub fn from_json(json: &[u8]) -> Result<Abi, AbiError> {
        let abi: Abi =
            serde_json::from_slice(json).map_err(|e| AbiError::InvalidJson(e.to_string()))?;
        abi.validate()?;
        Ok(abi)
    }

    /// The document as compact JSON.
    pub fn to_json(&self) -> String {
        // Serializing these plain types cannot fail (string keys only).
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The method called `name`.
    pub fn method(&self, name: &str) -> Result<&Method, AbiError> {
        self.methods
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| AbiError::UnknownMethod(name.to_string()))
    }

    /// The definition of the user type called `name`.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name() == name)
    }

    /// Checks the version, limits, unique names and that every
    /// [`TypeRef::Defined`] names a definition.
    pub fn validate(&self) -> Result<(), AbiError> {
        let invalid = |m: String| Err(AbiError::Invalid(m));
        if self.abi_version != ABI_VERSION {
            return invalid(format!(
                "abi_version {} is not the supported {ABI_VERSION}",
                self.abi_version
            ));
        }
        for (what, n) in [
            ("methods", self.methods.len()),
            ("events", self.events.len()),
            ("types", self.types.len()),
        ] {
            if n > ITEMS_MAX {
                return invalid(format!("{n} {what}, over the maximum of {ITEMS_MAX}"));
            }
        }
        unique("method", self.methods.iter().map(|m| m.name.as_str()))?;
        unique("event", self.events.iter().map(|e| e.name.as_str()))?;
        unique("type", self.types.iter().map(TypeDef::name))?;
        if self
            .methods
            .iter()
            .filter(|m| m.kind == MethodKind::Init)
            .count()
            > 1
        {
            return invalid("more than one init method".into());
        }
        for m in &self.methods {
            if (m.kind == MethodKind::Init) != (m.name == "init") {
                return invalid(format!(
                    "method `{}`: only `init` is the constructor",
                    m.name
                ));
            }
            self.check_fields(&format!("method `{}`", m.name), &m.args)?;
            self.check_ref(&format!("method `{}` return", m.name), &m.returns, 0)?;
            if let Some(e) = &m.error {
                self.check_ref(&format!("method `{}` error", m.name), e, 0)?;
            }
        }
        for e in &self.events {
            if e.topics.len() > TOPIC_FIELDS_MAX {
                return invalid(format!(
                    "event `{}` has {} topic fields, over the maximum of {TOPIC_FIELDS_MAX}",
                    e.name,
                    e.topics.len()
                ));
            }
            self.check_fields(&format!("event `{}`", e.name), &e.topics)?;
            self.check_fields(&format!("event `{}`", e.name), &e.data)?;
        }
        for t in &self.types {
            let at = format!("type `{}`", t.name());
            match t {
                TypeDef::Struct { fields, .. } => self.check_shape(&at, fields)?,
                TypeDef::Enum { variants, .. } => {
                    if variants.len() > FIELDS_MAX {
                        return invalid(format!("{at}: too many variants"));
                    }
                    unique("variant", variants.iter().map(|v| v.name.as_str()))?;
                    for v in variants {
                        self.check_shape(&format!("{at} variant `{}`", v.name), &v.fields)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn check_shape(&self, at: &str, fields: &Fields) -> Result<(), AbiError> {
        match fields {
            Fields::Unit => Ok(()),
            Fields::Named(f) => self.check_fields(at, f),
            Fields::Unnamed(types) => {
                if types.len() > FIELDS_MAX {
                    return Err(AbiError::Invalid(format!("{at}: too many fields")));
                }
                types.iter().try_for_each(|t| self.check_ref(at, t, 0))
            }
        }
    }

    fn check_fields(&self, at: &str, fields: &[Field]) -> Result<(), AbiError> {
        if fields.len() > FIELDS_MAX {
            return Err(AbiError::Invalid(format!("{at}: too many fields")));
        }
        unique("field", fields.iter().map(|f| f.name.as_str()))?;
        fields
            .iter()
            .try_for_each(|f| self.check_ref(&format!("{at} field `{}`", f.name), &f.ty, 0))
    }

    fn check_ref(&self, at: &str, ty: &TypeRef, depth: usize) -> Result<(), AbiError> {
        if depth > TYPE_DEPTH_MAX {
            return Err(AbiError::Invalid(format!("{at}: type nested too deeply")));
        }
        match ty {
            TypeRef::Vec(t) | TypeRef::Option(t) | TypeRef::Array(t, _) => {
                self.check_ref(at, t, depth + 1)
            }
            TypeRef::Tuple(ts) => {
                if ts.len() > FIELDS_MAX {
                    return Err(AbiError::Invalid(format!("{at}: tuple too long")));
                }
                ts.iter().try_for_each(|t| self.check_ref(at, t, depth + 1))
            }
            TypeRef::Defined(name) if self.type_def(name).is_none() => Err(AbiError::Invalid(
                format!("{at}: type `{name}` is not defined"),
            )),
            _ => Ok(()),
        }
    }
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), AbiError> {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(AbiError::Invalid(format!("duplicate {what} `{n}`")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod display_tests {
    use super::TypeRef;

    #[test]
    fn types_print_as_rust() {
        let t = |json: &str| serde_json::from_str::<TypeRef>(json).unwrap().to_string();
        assert_eq!(t(r#"{"array":["u8",32]}"#), "[u8; 32]");
        assert_eq!(t(r#"{"option":"address"}"#), "Option<Address>");
        assert_eq!(
            t(r#"{"vec":{"tuple":["u64","string"]}}"#),
            "Vec<(u64, String)>"
        );
        assert_eq!(t(r#"{"tuple":["bool"]}"#), "(bool,)");
        assert_eq!(t(r#""bytes""#), "Vec<u8>");
        assert_eq!(t(r#""unit""#), "()");
    }
}
