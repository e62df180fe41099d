//! TEMPORARY SHIM (replaced by the probes branch; never committed).
#![allow(missing_docs, clippy::all)]
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
#[derive(Debug, thiserror::Error)]
#[error("shim")]
pub struct ProbeError;
pub async fn ping(_t: IpAddr, _b: Option<IpAddr>, _d: Duration) -> Result<Duration, ProbeError> {
    Err(ProbeError)
}
pub async fn udp(
    _t: SocketAddr,
    _b: Option<IpAddr>,
    _c: &wasmalived_config::lvs::UdpCheck,
    _d: Duration,
) -> Result<Duration, ProbeError> {
    Err(ProbeError)
}
