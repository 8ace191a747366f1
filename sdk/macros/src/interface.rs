//! `#[interface]`: typed stubs for cross-contract calls.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemTrait, TraitItem};

pub fn expand(input: ItemTrait) -> syn::Result<TokenStream> {
    let vis = &input.vis;
    let stub = format_ident!("{}Ref", input.ident);
    let doc = format!(
        "Typed calls to a contract with the `{}` interface.",
        input.ident
    );
    let mut methods = Vec::new();
    for item in &input.items {
        let TraitItem::Fn(f) = item else {
            return Err(syn::Error::new_spanned(
                item,
                "an interface lists methods only",
            ));
        };
        let (_, args) = crate::typed_args(&f.sig)?;
        let (ret, err) = crate::split_result(&f.sig.output);
        let err = err.unwrap_or_else(|| syn::parse_quote!(::stele_sdk::call::NoError));
        let name = &f.sig.ident;
        let export = name.to_string();
        let params = args.iter().map(|(id, ty)| quote!(#id: #ty));
        let names = args.iter().map(|(id, _)| id);
        let attrs = f.attrs.iter().filter(|a| a.path().is_ident("doc"));
        methods.push(quote! {
            #(#attrs)*
            pub fn #name(&self, #(#params),*) -> ::core::result::Result<#ret, ::stele_sdk::CallError<#err>> {
                ::stele_sdk::call::call(&self.address, #export, &(#(#names,)*), self.options)
            }
        });
    }
    Ok(quote! {
        #[doc = #doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #vis struct #stub {
            pub address: ::stele_sdk::Address,
            pub options: ::stele_sdk::call::CallOptions,
        }

        impl #stub {
            /// Calls go to the contract at `address`, with no value and all allowed gas.
            pub fn new(address: ::stele_sdk::Address) -> Self {
                Self { address, options: ::stele_sdk::call::CallOptions::default() }
            }
            /// The next calls attach `value` (moved from this contract).
            pub fn with_value(mut self, value: ::stele_sdk::Amount) -> Self {
                self.options.value = value;
                self
            }
            /// The next calls get at most `gas` (0: all allowed).
            pub fn with_gas(mut self, gas: u64) -> Self {
                self.options.gas = gas;
                self
            }
            #(#methods)*
        }
    })
}
