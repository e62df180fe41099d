//! The plugin runtime: one wasmtime engine, plugin loading and hot reload, host capabilities.

pub mod grants;
