//! One `Linker` per set of grants, following the one linking policy
//! ([`contract::Capability::linking`]): each capability unit ([`caps::UNITS`]) is linked when
//! its capability is linked with these grants. An import of a capability that is not (an
//! ungranted `processes`) is refused earlier by the loader with a clear message.

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
    types::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(&mut l, |s| s)?;
    for unit in caps::UNITS {
        if unit.capability.linked_with(grants) {
            (unit.link)(&mut l)?;
        }
    }
    Ok(l)
}
