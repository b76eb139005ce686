//! Code that only runs in the browser (the `hydrate` feature): web APIs the server never sees.

pub mod live;
pub mod upload;
