//! `#[derive(AbiType)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Fields};

fn fields_json(fields: &Fields) -> TokenStream {
    match fields {
        Fields::Unit => quote!(::stele_sdk::abi::fields_unit()),
        Fields::Named(named) => {
            let items = named.named.iter().map(|f| {
                let name = f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
                let ty = &f.ty;
                quote!((#name, <#ty as ::stele_sdk::abi::AbiType>::type_ref(reg)))
            });
            quote!(::stele_sdk::abi::fields_named(&[#(#items),*]))
        }
        Fields::Unnamed(unnamed) => {
            let items = unnamed.unnamed.iter().map(|f| {
                let ty = &f.ty;
                quote!(<#ty as ::stele_sdk::abi::AbiType>::type_ref(reg))
            });
            quote!(::stele_sdk::abi::fields_unnamed(&[#(#items),*]))
        }
    }
}

pub fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "AbiType does not support generic types",
        ));
    }
    let ident = &input.ident;
    let name = ident.to_string();
    let body = match &input.data {
        Data::Struct(s) => {
            let f = fields_json(&s.fields);
            quote!(::stele_sdk::abi::struct_def(#name, #f))
        }
        Data::Enum(e) => {
            if e.variants.len() > 256 {
                return Err(syn::Error::new_spanned(ident, "at most 256 variants"));
            }
            let vs = e.variants.iter().map(|v| {
                let vname = v.ident.to_string();
                let f = fields_json(&v.fields);
                quote!((#vname, #f))
            });
            quote!(::stele_sdk::abi::enum_def(#name, &[#(#vs),*]))
        }
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(
                ident,
                "AbiType does not support unions",
            ));
        }
    };
    Ok(quote! {
        impl ::stele_sdk::abi::AbiType for #ident {
            fn type_ref(reg: &mut ::stele_sdk::abi::TypeRegistry) -> ::stele_sdk::__rt::String {
                reg.define(#name, |reg| #body)
            }
        }
    })
}
