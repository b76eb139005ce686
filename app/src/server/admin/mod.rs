//! What only admins do: see every account with what it holds and spends, and change who may
//! sign in and with which role.

pub mod users;
