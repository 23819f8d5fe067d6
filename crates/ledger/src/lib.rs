//! verity-ledger (being built).
