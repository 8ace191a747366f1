//! Procedural macros of the Stele contract SDK: `#[contract]` (storage
//! struct and method impl), `#[event]`, `#[data]` / `#[derive(AbiType)]`
//! and `#[interface]` (typed cross-contract call stubs). Re-exported by
//! `stele-sdk`; see its docs and `docs/contracts.md`.

mod abi_type;
mod contract;
mod event;
mod interface;

use proc_macro::TokenStream;
use syn::parse_macro_input;

/// On a struct with named storage fields (`Item`, `Map`, `Vector`): places
/// each field at the key prefix `[len(name)] ++ name`. On an impl: exports
/// every `pub fn` as a contract method. Method attributes: `#[init]` (the
/// constructor, exported as `init`), `#[view]` (read-only), `#[payable]`
/// (accepts value), `#[migrate]` (exported as `migrate`). The impl takes
/// `#[contract(events(A, B))]` to list the events in the ABI.
#[proc_macro_attribute]
pub fn contract(attr: TokenStream, item: TokenStream) -> TokenStream {
    contract::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// An event struct; `#[topic]` marks fields that become topics.
#[proc_macro_attribute]
pub fn event(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[event] takes no arguments",
        )
        .into_compile_error()
        .into();
    }
    let input = parse_macro_input!(item as syn::ItemStruct);
    event::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// A type used in arguments, returns, errors or storage: derives Borsh
/// (through the SDK's re-export) and `AbiType`.
#[proc_macro_attribute]
pub fn data(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(proc_macro2::Span::call_site(), "#[data] takes no arguments")
            .into_compile_error()
            .into();
    }
    let item = proc_macro2::TokenStream::from(item);
    quote::quote! {
        #[derive(::stele_sdk::borsh::BorshSerialize, ::stele_sdk::borsh::BorshDeserialize, ::stele_sdk::AbiType)]
        #[borsh(crate = "::stele_sdk::borsh")]
        #item
    }
    .into()
}

/// Describes a struct or enum in the contract ABI.
#[proc_macro_derive(AbiType)]
pub fn derive_abi_type(item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as syn::DeriveInput);
    abi_type::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// On a trait describing another contract's methods: generates
/// `<Trait>Ref`, a typed stub whose methods make cross-contract calls.
#[proc_macro_attribute]
pub fn interface(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[interface] takes no arguments",
        )
        .into_compile_error()
        .into();
    }
    let input = parse_macro_input!(item as syn::ItemTrait);
    interface::expand(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Splits a method's return type into (value type, error type) for
/// `Result<T, E>`.
pub(crate) fn split_result(ret: &syn::ReturnType) -> (syn::Type, Option<syn::Type>) {
    let ty = match ret {
        syn::ReturnType::Default => return (syn::parse_quote!(()), None),
        syn::ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if let syn::Type::Path(p) = &ty
        && p.qself.is_none()
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && args.args.len() == 2
        && let (Some(syn::GenericArgument::Type(t)), Some(syn::GenericArgument::Type(e))) =
            (args.args.first(), args.args.last())
    {
        return (t.clone(), Some(e.clone()));
    }
    (ty, None)
}

/// A method's receiver and its named, typed arguments.
pub(crate) type TypedArgs = (Option<syn::Receiver>, Vec<(syn::Ident, syn::Type)>);

/// The typed arguments of a method (after the receiver): names and types.
pub(crate) fn typed_args(sig: &syn::Signature) -> syn::Result<TypedArgs> {
    let mut receiver = None;
    let mut args = Vec::new();
    for input in &sig.inputs {
        match input {
            syn::FnArg::Receiver(r) => receiver = Some(r.clone()),
            syn::FnArg::Typed(t) => {
                let syn::Pat::Ident(id) = &*t.pat else {
                    return Err(syn::Error::new_spanned(
                        &t.pat,
                        "contract method arguments must be plain names",
                    ));
                };
                if matches!(&*t.ty, syn::Type::Reference(_)) {
                    return Err(syn::Error::new_spanned(
                        &t.ty,
                        "contract method arguments must be owned types",
                    ));
                }
                args.push((id.ident.clone(), (*t.ty).clone()));
            }
        }
    }
    Ok((receiver, args))
}

/// Keccak-256, for event topics computed at compile time.
pub(crate) fn keccak256(data: &[u8]) -> [u8; 32] {
    use sha3::{Digest, Keccak256};
    Keccak256::digest(data).into()
}
