//! Describing a contract's types for its ABI (the `stele_abi` section).
//!
//! `stele-build` builds a contract once with the SDK feature `__abi`, which
//! makes `#[contract]` export `__stele_abi`: it assembles the ABI JSON from
//! the [`AbiType`] impls of every argument, return and error type, then
//! returns `(ptr << 32) | len` of the JSON in memory. The format is the one
//! `stele-abi` reads (see `docs/contracts.md`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::Address;
use crate::event::Event;

/// Revert payload tag: a UTF-8 message follows.
pub const REVERT_MESSAGE: u8 = 0;
/// Revert payload tag: the Borsh encoding of the method's error type follows.
pub const REVERT_ERROR: u8 = 1;

/// A type with an ABI description; derive it for your structs and enums
/// with `#[stele_sdk::data]` (or `#[derive(AbiType)]`).
pub trait AbiType {
    /// The type reference as ABI JSON, registering any user type definitions
    /// it needs.
    fn type_ref(reg: &mut TypeRegistry) -> String;
    /// Whether this is `u8` (so `Vec<u8>` is described as `bytes`).
    #[doc(hidden)]
    const IS_U8: bool = false;
}

/// The user type definitions gathered while describing a contract.
#[derive(Default, Debug)]
pub struct TypeRegistry {
    defs: Vec<(&'static str, String)>,
}

impl TypeRegistry {
    /// Registers the definition of `name` (built by `body`, once, even for
    /// recursive types) and returns the reference to it.
    pub fn define(&mut self, name: &'static str, body: fn(&mut TypeRegistry) -> String) -> String {
        if !self.defs.iter().any(|(n, _)| *n == name) {
            self.defs.push((name, String::new()));
            let def = body(self);
            if let Some(slot) = self.defs.iter_mut().find(|(n, _)| *n == name) {
                slot.1 = def;
            }
        }
        format!("{{\"defined\":{}}}", quote(name))
    }
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `[{"name":..,"type":..},..]`
pub fn named_list(fields: &[(&str, String)]) -> String {
    let items: Vec<String> = fields
        .iter()
        .map(|(n, t)| format!("{{\"name\":{},\"type\":{}}}", quote(n), t))
        .collect();
    format!("[{}]", items.join(","))
}

/// Fields JSON: `"unit"`, `{"named":[..]}` or `{"unnamed":[..]}`.
pub fn fields_named(fields: &[(&str, String)]) -> String {
    format!("{{\"named\":{}}}", named_list(fields))
}

/// Fields JSON for tuple fields.
pub fn fields_unnamed(types: &[String]) -> String {
    format!("{{\"unnamed\":[{}]}}", types.join(","))
}

/// Fields JSON for no fields.
pub fn fields_unit() -> String {
    String::from("\"unit\"")
}

/// A struct definition.
pub fn struct_def(name: &str, fields: String) -> String {
    format!(
        "{{\"kind\":\"struct\",\"name\":{},\"fields\":{}}}",
        quote(name),
        fields
    )
}

/// An enum definition from `(variant name, fields JSON)` pairs.
pub fn enum_def(name: &str, variants: &[(&str, String)]) -> String {
    let vs: Vec<String> = variants
        .iter()
        .map(|(n, f)| format!("{{\"name\":{},\"fields\":{}}}", quote(n), f))
        .collect();
    format!(
        "{{\"kind\":\"enum\",\"name\":{},\"variants\":[{}]}}",
        quote(name),
        vs.join(",")
    )
}

/// An event entry.
pub fn event_def(name: &str, topics: &[(&str, String)], data: &[(&str, String)]) -> String {
    format!(
        "{{\"name\":{},\"topics\":{},\"data\":{}}}",
        quote(name),
        named_list(topics),
        named_list(data)
    )
}

macro_rules! prim {
    ($($t:ty => $s:literal),*) => {$(
        impl AbiType for $t {
            fn type_ref(_: &mut TypeRegistry) -> String {
                String::from(concat!("\"", $s, "\""))
            }
        }
    )*};
}
prim!(bool => "bool", u16 => "u16", u32 => "u32", u64 => "u64", u128 => "u128",
      i8 => "i8", i16 => "i16", i32 => "i32", i64 => "i64", i128 => "i128",
      String => "string", Address => "address", () => "unit");

impl AbiType for u8 {
    fn type_ref(_: &mut TypeRegistry) -> String {
        String::from("\"u8\"")
    }
    const IS_U8: bool = true;
}

impl<T: AbiType> AbiType for Vec<T> {
    fn type_ref(reg: &mut TypeRegistry) -> String {
        if T::IS_U8 {
            String::from("\"bytes\"")
        } else {
            format!("{{\"vec\":{}}}", T::type_ref(reg))
        }
    }
}

impl<T: AbiType> AbiType for Option<T> {
    fn type_ref(reg: &mut TypeRegistry) -> String {
        format!("{{\"option\":{}}}", T::type_ref(reg))
    }
}

impl<T: AbiType, const N: usize> AbiType for [T; N] {
    fn type_ref(reg: &mut TypeRegistry) -> String {
        format!("{{\"array\":[{},{}]}}", T::type_ref(reg), N)
    }
}

macro_rules! tuple_abi {
    ($($t:ident),*) => {
        impl<$($t: AbiType),*> AbiType for ($($t,)*) {
            fn type_ref(reg: &mut TypeRegistry) -> String {
                let parts: Vec<String> = alloc::vec![$($t::type_ref(reg)),*];
                format!("{{\"tuple\":[{}]}}", parts.join(","))
            }
        }
    };
}
tuple_abi!(A, B);
tuple_abi!(A, B, C);
tuple_abi!(A, B, C, D);

/// Describes a type reference (function pointer form used by the macros).
pub type TypeFn = fn(&mut TypeRegistry) -> String;

/// Assembles the ABI document; used by the `__stele_abi` export.
#[derive(Debug)]
pub struct AbiBuilder {
    reg: TypeRegistry,
    name: &'static str,
    version: &'static str,
    methods: Vec<String>,
    events: Vec<String>,
}

impl AbiBuilder {
    pub fn new(name: &'static str, version: &'static str) -> Self {
        AbiBuilder {
            reg: TypeRegistry::default(),
            name,
            version,
            methods: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Adds a method. `kind` is `init`, `call` or `view`.
    pub fn method(
        &mut self,
        name: &str,
        kind: &str,
        payable: bool,
        args: &[(&str, TypeFn)],
        returns: TypeFn,
        error: Option<TypeFn>,
    ) {
        let args: Vec<(&str, String)> = args.iter().map(|(n, f)| (*n, f(&mut self.reg))).collect();
        let ret = returns(&mut self.reg);
        let err = match error {
            Some(f) => format!(",\"error\":{}", f(&mut self.reg)),
            None => String::new(),
        };
        self.methods.push(format!(
            "{{\"name\":{},\"kind\":{},\"payable\":{},\"args\":{},\"returns\":{}{}}}",
            quote(name),
            quote(kind),
            payable,
            named_list(&args),
            ret,
            err
        ));
    }

    /// Adds an event type.
    pub fn event<E: Event>(&mut self) {
        let e = E::abi(&mut self.reg);
        self.events.push(e);
    }

    /// The ABI JSON.
    pub fn finish(self) -> String {
        let types: Vec<&str> = self.reg.defs.iter().map(|(_, d)| d.as_str()).collect();
        format!(
            "{{\"abi_version\":1,\"name\":{},\"version\":{},\"methods\":[{}],\"events\":[{}],\"types\":[{}]}}",
            quote(self.name),
            quote(self.version),
            self.methods.join(","),
            self.events.join(","),
            types.join(",")
        )
    }
}

/// Leaks the JSON and returns `(ptr << 32) | len` for the `__stele_abi`
/// export.
#[doc(hidden)]
pub fn export(json: String) -> i64 {
    let bytes = json.into_bytes().leak();
    (((bytes.as_ptr() as usize as u64) << 32) | bytes.len() as u64) as i64
}
