//! harness

pub mod workload;
