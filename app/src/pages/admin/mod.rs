//! The admin pages: users (and, for a reason, their galleries), jobs and the audit log. Rendered
//! on the server from the query string (filters and `?after=`, the last item shown), a page at a
//! time, so they work before the page hydrates and every page has an address.

mod audit;
mod gallery;
mod jobs;
mod users;

use leptos::prelude::*;
use leptos_router::components::A;

use crate::messages::{t, use_locale};

pub use audit::AdminAuditPage;
pub use gallery::AdminGalleryPage;
pub use jobs::AdminJobsPage;
pub use users::{AdminPage, AdminUserPage};

/// The admin area's own tabs.
#[component]
pub fn AdminNav() -> impl IntoView {
    let l = use_locale();
    view! {
        <nav class="admin-nav" aria-label=t(l, "frame.admin")>
            <A href="/admin" exact=true>{t(l, "admin.users")}</A>
            <A href="/admin/jobs">{t(l, "create.jobs")}</A>
            <A href="/admin/audit">{t(l, "admin.audit_log")}</A>
        </nav>
    }
}

pub use crate::format::urlencoding;

/// `?after=cursor` plus every filter set, for the next page's link.
pub fn next_href(path: &str, cursor: &str, filters: &[(&str, Option<String>)]) -> String {
    let mut href = format!("{path}?after={}", urlencoding(cursor));
    for (name, value) in filters {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            href.push_str(&format!("&{name}={}", urlencoding(value)));
        }
    }
    href
}
