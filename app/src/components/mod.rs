//! Reusable pieces of UI. None of them knows SQL or S3.

mod fields;
mod frame;
pub mod gallery;
pub mod generate;
mod images;
mod notice;
pub mod uploader;
pub mod viewer;

pub use fields::{FieldHint, action_field_error, field_error};
pub use frame::{AppFrame, LanguageSwitch};
pub use images::ImageGrid;
pub use notice::{Notice, NoticeBanner};
