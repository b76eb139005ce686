//! Reusable pieces of UI. None of them knows SQL or S3.

mod fields;
mod frame;
pub mod generate;
mod images;
mod notice;
pub mod uploader;

pub use fields::{FieldHint, action_field_error, field_error};
pub use frame::AppFrame;
pub use images::ImageGrid;
pub use notice::{Notice, NoticeBanner};
