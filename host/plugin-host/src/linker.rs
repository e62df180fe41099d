//! One `Linker` per set of grants: the baseline (log, scratch, WASI inert baseline), the
//! capabilities that are linked with no authority unless granted (remediation with an empty
//! command table, wasi:http with an empty allowlist, wasi:sockets with TCP off — see
//! `contract::Capability::linked_without_grant`), and `processes` only when granted. An
//! import of ungranted `processes` is refused earlier by the loader with a clear message.

use wasmtime::component::Linker;
use wasmtime::Engine;

use super::bindings::wasmalived::plugin::types;
use super::caps;
use super::state::HostState;
use wasmalived_config::grants::Grants;

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
    caps::remediation::add_to_linker(&mut l)?;
    caps::http::add_to_linker(&mut l)?;
    caps::sockets::add_to_linker(&mut l)?;
    Ok(l)
}
