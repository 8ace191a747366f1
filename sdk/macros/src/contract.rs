//! `#[contract]` on the storage struct and on the method impl.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Fields, ImplItem, Item, ItemImpl, ItemStruct, Token, Visibility};

pub fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    match syn::parse2::<Item>(item)? {
        Item::Struct(s) => {
            if !attr.is_empty() {
                return Err(syn::Error::new_spanned(
                    attr,
                    "#[contract] on a struct takes no arguments",
                ));
            }
            expand_struct(s)
        }
        Item::Impl(i) => expand_impl(attr, i),
        other => Err(syn::Error::new_spanned(
            other,
            "#[contract] goes on the storage struct and its impl",
        )),
    }
}

fn expand_struct(s: ItemStruct) -> syn::Result<TokenStream> {
    let ident = &s.ident;
    let fields = match &s.fields {
        Fields::Named(n) => &n.named,
        Fields::Unit => {
            return Ok(quote! {
                #s
                impl ::stele_sdk::__rt::ContractState for #ident {
                    fn __load() -> Self { #ident }
                }
            });
        }
        Fields::Unnamed(_) => {
            return Err(syn::Error::new_spanned(
                &s,
                "contract storage fields must be named",
            ));
        }
    };
    let mut inits = Vec::new();
    for f in fields {
        let Some(id) = &f.ident else { continue };
        let name = id.to_string();
        if name.len() > 64 {
            return Err(syn::Error::new_spanned(
                id,
                "storage field names are at most 64 bytes",
            ));
        }
        let mut prefix = vec![name.len() as u8];
        prefix.extend_from_slice(name.as_bytes());
        let lit = Literal::byte_string(&prefix);
        let ty = &f.ty;
        inits.push(quote!(#id: <#ty as ::stele_sdk::__rt::StorageField>::with_prefix(#lit)));
    }
    Ok(quote! {
        #s
        impl ::stele_sdk::__rt::ContractState for #ident {
            fn __load() -> Self {
                #ident { #(#inits),* }
            }
        }
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Init,
    Call,
    View,
    Migrate,
}

fn parse_events(attr: TokenStream) -> syn::Result<Vec<syn::Path>> {
    if attr.is_empty() {
        return Ok(Vec::new());
    }
    let meta: syn::Meta = syn::parse2(attr)?;
    let syn::Meta::List(list) = &meta else {
        return Err(syn::Error::new_spanned(
            meta,
            "expected #[contract(events(A, B))]",
        ));
    };
    if !list.path.is_ident("events") {
        return Err(syn::Error::new_spanned(
            &list.path,
            "expected #[contract(events(A, B))]",
        ));
    }
    let paths = Punctuated::<syn::Path, Token![,]>::parse_terminated.parse2(list.tokens.clone())?;
    Ok(paths.into_iter().collect())
}

fn expand_impl(attr: TokenStream, mut imp: ItemImpl) -> syn::Result<TokenStream> {
    let events = parse_events(attr)?;
    let self_ty = imp.self_ty.clone();
    let mut exports = Vec::new();
    let mut abi_methods = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for item in &mut imp.items {
        let ImplItem::Fn(f) = item else { continue };
        let mut kind = Kind::Call;
        let mut payable = false;
        let mut marks = 0;
        for a in &f.attrs {
            let p = a.path();
            if p.is_ident("init") {
                kind = Kind::Init;
                marks += 1;
            } else if p.is_ident("view") {
                kind = Kind::View;
                marks += 1;
            } else if p.is_ident("migrate") {
                kind = Kind::Migrate;
                marks += 1;
            } else if p.is_ident("payable") {
                payable = true;
            }
        }
        f.attrs.retain(|a| {
            !["init", "view", "migrate", "payable"]
                .iter()
                .any(|n| a.path().is_ident(n))
        });
        if !matches!(f.vis, Visibility::Public(_)) {
            if marks > 0 || payable {
                return Err(syn::Error::new_spanned(
                    &f.sig,
                    "contract methods must be `pub`",
                ));
            }
            continue;
        }
        if marks > 1 {
            return Err(syn::Error::new_spanned(
                &f.sig,
                "use at most one of #[init], #[view], #[migrate]",
            ));
        }
        if payable && kind == Kind::View {
            return Err(syn::Error::new_spanned(
                &f.sig,
                "a #[view] method cannot be #[payable]",
            ));
        }
        let method = f.sig.ident.clone();
        let export = match kind {
            Kind::Init => "init".to_string(),
            Kind::Migrate => "migrate".to_string(),
            _ => method.to_string(),
        };
        if export.starts_with("__stele") {
            return Err(syn::Error::new_spanned(
                &method,
                "names starting with `__stele` are reserved",
            ));
        }
        if kind == Kind::Call && (export == "init" || export == "migrate") {
            return Err(syn::Error::new_spanned(
                &method,
                "mark the constructor #[init] and the migration #[migrate]",
            ));
        }
        if !names.insert(export.clone()) {
            return Err(syn::Error::new_spanned(
                &method,
                "two methods export the same name",
            ));
        }
        if !f.sig.generics.params.is_empty() || f.sig.asyncness.is_some() {
            return Err(syn::Error::new_spanned(
                &f.sig,
                "contract methods cannot be generic or async",
            ));
        }
        let (receiver, args) = crate::typed_args(&f.sig)?;
        let Some(receiver) = receiver else {
            return Err(syn::Error::new_spanned(
                &f.sig,
                "contract methods take `&self` or `&mut self`",
            ));
        };
        if receiver.reference.is_none() {
            return Err(syn::Error::new_spanned(
                receiver,
                "contract methods take `&self` or `&mut self`",
            ));
        }
        let (ret, err) = crate::split_result(&f.sig.output);
        let arg_names: Vec<_> = args.iter().map(|(id, _)| id.clone()).collect();
        let arg_types: Vec<_> = args.iter().map(|(_, ty)| ty.clone()).collect();
        let ret_stmt = if err.is_some() {
            quote!(::stele_sdk::__rt::ret_result(&__r);)
        } else {
            quote!(::stele_sdk::__rt::ret(&__r);)
        };
        let fn_ident = format_ident!("__stele_export_{}", export);
        let view_guard = (kind == Kind::View).then(|| quote!(::stele_sdk::__rt::enter_view();));
        exports.push(quote! {
            #[cfg(target_arch = "wasm32")]
            #[unsafe(export_name = #export)]
            extern "C" fn #fn_ident() {
                #view_guard
                ::stele_sdk::__rt::check_payable(#payable);
                let (#(#arg_names,)*): (#(#arg_types,)*) = ::stele_sdk::__rt::args();
                #[allow(unused_mut)]
                let mut __s = <#self_ty as ::stele_sdk::__rt::ContractState>::__load();
                let __r = __s.#method(#(#arg_names),*);
                #ret_stmt
            }
        });
        let kind_str = match kind {
            Kind::Init => "init",
            Kind::View => "view",
            Kind::Call | Kind::Migrate => "call",
        };
        let arg_abi = args.iter().map(|(id, ty)| {
            let n = id.to_string();
            quote!((#n, <#ty as ::stele_sdk::abi::AbiType>::type_ref as ::stele_sdk::abi::TypeFn))
        });
        let err_abi = match &err {
            Some(e) => {
                quote!(::core::option::Option::Some(<#e as ::stele_sdk::abi::AbiType>::type_ref as ::stele_sdk::abi::TypeFn))
            }
            None => quote!(::core::option::Option::None),
        };
        abi_methods.push(quote! {
            __b.method(#export, #kind_str, #payable, &[#(#arg_abi),*], <#ret as ::stele_sdk::abi::AbiType>::type_ref, #err_abi);
        });
    }
    Ok(quote! {
        #imp

        const _: () = {
            #(#exports)*
        };

        ::stele_sdk::__abi_export! {
            #[cfg(target_arch = "wasm32")]
            #[unsafe(no_mangle)]
            extern "C" fn __stele_abi() -> i64 {
                let mut __b = ::stele_sdk::abi::AbiBuilder::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
                #(#abi_methods)*
                #(__b.event::<#events>();)*
                ::stele_sdk::abi::export(__b.finish())
            }
        }
    })
}
