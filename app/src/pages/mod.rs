//! One module per screen.

mod account;
mod admin;
mod auth;
mod create;
mod gallery;
mod not_found;

pub use account::AccountPage;
pub use admin::{AdminAuditPage, AdminGalleryPage, AdminJobsPage, AdminPage, AdminUserPage};
pub use auth::{LoginPage, SignupPage};
pub use create::CreatePage;
pub use gallery::GalleryPage;
pub use not_found::NotFound;
