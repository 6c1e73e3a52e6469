//! wait-for's integration tests, in one test binary (a module per area): `common` is compiled
//! once, and each of its helpers is used by some module.

mod common;
mod servers;
mod wait_for;
