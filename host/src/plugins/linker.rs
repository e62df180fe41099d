//! One `Linker` per set of grants: the baseline (log, scratch, WASI inert baseline) plus
//! exactly the capabilities granted. An import of an ungranted capability is refused earlier
//! by the loader with a clear message; linking it would fail here anyway.

use wasmtime::component::Linker;
use wasmtime::Engine;

use super::bindings::wasmalived::plugin::types;
use super::caps;
use super::grants::Grants;
use super::state::HostState;

/// `types` has no functions; linking it only makes the instance name resolvable.
impl types::Host for HostState {}

/// Build the linker for `grants`.
pub fn build(engine: &Engine, grants: &Grants) -> wasmtime::Result<Linker<HostState>> {
    let mut l = Linker::new(engine);
    caps::wasi::add_to_linker(&mut l)?;
    types::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(&mut l, |s| s)?;
    caps::log::add_to_linker(&mut l)?;
    caps::scratch::add_to_linker(&mut l)?;
    if grants.processes.is_some() {
        caps::processes::add_to_linker(&mut l)?;
    }
    if !grants.remediation.is_empty() {
        caps::remediation::add_to_linker(&mut l)?;
    }
    if !grants.http.is_empty() {
        caps::http::add_to_linker(&mut l)?;
    }
    if !grants.tcp.is_empty() {
        caps::sockets::add_to_linker(&mut l)?;
    }
    Ok(l)
}
