//! The AWS adapter against moto server behind the fault proxy: failovers, crash windows, drills, preflight and
//! shared state on S3. One test binary, so the AWS SDK is linked once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/aws_world.rs"]
mod aws_world;
#[path = "../support/crash.rs"]
mod crash;
#[path = "../support/customer_world.rs"]
mod customer_world;
#[path = "../support/mod.rs"]
mod support;

mod aws_moto;
mod drill_moto;
mod nat_moto;
mod preflight_moto;
mod region_health;
mod shared_state;
