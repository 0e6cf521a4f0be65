//! The bindings generated from `wit/mapper.wit`, and the export of [`crate::ExampleMapper`].
//!
//! Generated code and the export shims need `unsafe`; it is allowed in this module only.
#![allow(unsafe_code, reason = "wit-bindgen generated glue")]
#![allow(
    missing_docs,
    reason = "generated from the WIT, whose docs are the reference"
)]

wit_bindgen::generate!({
    world: "mapper",
    path: "../../wit",
});

// Only wasm gets the export shims: their symbol names (`interstate:mapper/...`) are not valid
// in a native linker script, and native builds exist only to run the unit tests.
#[cfg(target_arch = "wasm32")]
use crate::ExampleMapper;

#[cfg(target_arch = "wasm32")]
export!(ExampleMapper with_types_in crate::bindings);
