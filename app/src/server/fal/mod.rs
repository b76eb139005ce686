//! fal.ai: the HTTP client, its typed errors and the key type (the README's "fal's API").

mod client;
mod error;
mod key;
mod queue;
mod storage;
pub mod webhook;

pub use client::{Balance, FalClient, Price, join};
pub use error::{FalError, FieldError};
pub use key::{FalKey, FalKeyError};
pub use queue::{CancelOutcome, QueueStatus, Submitted, app_path};
