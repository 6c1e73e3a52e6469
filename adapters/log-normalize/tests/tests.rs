//! log-normalize's integration tests, in one test binary (a module per area): `common` is
//! compiled once, and each of its helpers is used by some module.

mod cli;
mod common;
mod ecs;
mod follow;
mod golden;
mod hostile;
mod nginx_live;
mod otlp;
mod parsing;
mod pattern;
mod syslog_sink;
