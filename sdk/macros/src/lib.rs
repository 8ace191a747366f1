//! Procedural macros of the Stele contract SDK.
