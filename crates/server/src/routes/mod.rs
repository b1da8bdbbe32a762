//! The routers, one per module, merged in [`crate::router`].

pub mod cards;
pub mod cities;
pub mod clearing;
pub mod closures;
pub mod devices;
pub mod health;
pub mod hotlist;
pub mod operator;
pub mod payments;
pub mod phones;
pub mod settlement;
pub mod topups;
