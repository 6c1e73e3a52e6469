//! redis-ambassador's integration tests, in one test binary (a module per area): `common` is
//! compiled once, and each of its helpers is used by some module.

mod clients;
mod command_table;
mod common;
mod differential;
mod hostile;
mod placement;
mod proxy;
mod twemproxy_suite;
mod workload;
