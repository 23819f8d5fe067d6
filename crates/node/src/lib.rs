//! verity-node (being built).

pub mod consensus;
