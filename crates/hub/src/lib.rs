//! verity-hub (being built).
