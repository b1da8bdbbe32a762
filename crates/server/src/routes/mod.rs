//! The routers, one per module, merged in [`crate::router`].

pub mod cities;
pub mod devices;
pub mod health;
