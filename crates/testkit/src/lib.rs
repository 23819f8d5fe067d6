//! verity-testkit (being built).
