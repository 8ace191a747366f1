//! `#[event]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Fields, ItemStruct};

pub fn expand(mut input: ItemStruct) -> syn::Result<TokenStream> {
    let Fields::Named(named) = &mut input.fields else {
        return Err(syn::Error::new_spanned(
            &input,
            "#[event] needs a struct with named fields",
        ));
    };
    let mut topics = Vec::new();
    let mut data = Vec::new();
    for f in named.named.iter_mut() {
        let is_topic = f.attrs.iter().any(|a| a.path().is_ident("topic"));
        f.attrs.retain(|a| !a.path().is_ident("topic"));
        let (Some(id), ty) = (f.ident.clone(), f.ty.clone()) else {
            continue;
        };
        if is_topic {
            topics.push((id, ty))
        } else {
            data.push((id, ty))
        }
    }
    if topics.len() > 3 {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "an event has at most 3 #[topic] fields",
        ));
    }
    let ident = &input.ident;
    let name = ident.to_string();
    let topic = crate::keccak256(name.as_bytes());
    let topic_exprs = topics
        .iter()
        .map(|(id, _)| quote!(::stele_sdk::Topic::topic(&self.#id)));
    let data_stmts = data
        .iter()
        .map(|(id, _)| quote!(::stele_sdk::__rt::encode_into(&self.#id, &mut out);));
    let abi_topics = topics.iter().map(|(id, ty)| {
        let n = id.to_string();
        quote!((#n, <#ty as ::stele_sdk::abi::AbiType>::type_ref(reg)))
    });
    let abi_data = data.iter().map(|(id, ty)| {
        let n = id.to_string();
        quote!((#n, <#ty as ::stele_sdk::abi::AbiType>::type_ref(reg)))
    });
    Ok(quote! {
        #input

        impl ::stele_sdk::Event for #ident {
            const TOPIC: [u8; 32] = [#(#topic),*];
            fn topics(&self) -> ::stele_sdk::__rt::Vec<[u8; 32]> {
                let mut t = ::stele_sdk::__rt::Vec::with_capacity(4);
                t.push(Self::TOPIC);
                #(t.push(#topic_exprs);)*
                t
            }
            fn data(&self) -> ::stele_sdk::__rt::Vec<u8> {
                let mut out = ::stele_sdk::__rt::Vec::new();
                #(#data_stmts)*
                out
            }
            fn abi(reg: &mut ::stele_sdk::abi::TypeRegistry) -> ::stele_sdk::__rt::String {
                ::stele_sdk::abi::event_def(#name, &[#(#abi_topics),*], &[#(#abi_data),*])
            }
        }
    })
}
