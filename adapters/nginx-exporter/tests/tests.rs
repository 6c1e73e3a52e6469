//! nginx-exporter's integration tests, in one test binary (a module per area): `common` is
//! compiled once, and each of its helpers is used by some module.

mod access_log;
mod common;
mod differential;
mod exporter;
mod hostile;
