//! VRRP protocol core: packet codec and sans-IO state machine. No clock, no sockets.

pub mod types;
