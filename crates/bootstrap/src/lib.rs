//! # cairn-bootstrap
//!
//! Joining the network and staying joined: bootstrap lists ([`BootstrapList`], with Kubo's public
//! default list), the [`Bootstrapper`] state machine (Kubo's rounds plus backoff with jitter and
//! an observable status), private-network keys ([`parse_swarm_key`]) and the wire format of
//! js-libp2p's pubsub peer discovery ([`discovery`]).

pub mod discovery;
pub mod error;
pub mod list;
pub mod machine;
pub mod swarm_key;

pub use error::BootstrapError;
pub use list::{BootstrapList, BootstrapPeer, DEFAULT_BOOTSTRAP};
pub use machine::{
    BootstrapAction, BootstrapConfig, BootstrapEvent, BootstrapPhase, BootstrapStatus, Bootstrapper,
};
pub use swarm_key::{format_swarm_key, parse_swarm_key};
