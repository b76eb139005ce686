//! Reusable pieces of UI. None of them knows SQL or S3.

mod fields;
mod frame;
mod notice;

pub use fields::{FieldHint, field_error};
pub use frame::AppFrame;
pub use notice::{Notice, NoticeBanner};
