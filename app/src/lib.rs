//! Darkroom's Leptos app: pages, components, server functions and (under `ssr`) the services.

// Leptos views are deeply nested types; without `erase_components` they need headroom.
#![recursion_limit = "256"]

#[cfg(test)]
mod alloc_meter;
pub mod api;
#[cfg(feature = "hydrate")]
mod browser;
pub mod catalog;
pub mod components;
pub mod error;
pub mod format;
pub mod gallery;
pub mod messages;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;
pub mod states;
pub mod tokens;
pub mod upload_queue;
pub mod validate;
pub mod views;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::api::auth::{CurrentUser, Login, Logout, Signup, me};
use crate::error::AppError;
use crate::pages::{
    AccountPage, AdminAuditPage, AdminGalleryPage, AdminJobsPage, AdminPage, AdminUserPage, CreatePage, GalleryPage,
    LoginPage, NotFound, SignupPage,
};

/// Login, signup and logout actions, and who is logged in: shared by every page.
#[derive(Clone, Copy)]
pub struct Auth {
    pub login: ServerAction<Login>,
    pub signup: ServerAction<Signup>,
    pub logout: ServerAction<Logout>,
    pub me: Resource<Result<Option<CurrentUser>, AppError>>,
}

/// The language the page is shown in: decided by the server for each request, and read back
/// from `<html lang>` in the browser, so both render the same words.
fn page_locale() -> messages::Locale {
    #[cfg(feature = "ssr")]
    {
        server::request::locale()
    }
    #[cfg(not(feature = "ssr"))]
    {
        document()
            .document_element()
            .and_then(|html| html.get_attribute("lang"))
            .and_then(|lang| messages::Locale::parse(&lang))
            .unwrap_or_default()
    }
}

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    server::csp::attach();
    view! {
        <!DOCTYPE html>
        <html lang=page_locale().as_str()>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="dark light" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(page_locale());
    let login = ServerAction::<Login>::new();
    let signup = ServerAction::<Signup>::new();
    let logout = ServerAction::<Logout>::new();
    let me = Resource::new(move || (login.version().get(), signup.version().get(), logout.version().get()), |_| me());
    provide_context(Auth { login, signup, logout, me });
    // Effects run only in the browser, after hydration: a marker tests and tools can wait for.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/darkroom.css" />
        <Title text="Darkroom" />
        // Async rendering: a page's data loads first, then the complete HTML goes out in one
        // piece, so forms and data work before hydration. (Streamed modes, in order or not, can
        // leave a response waiting forever for a resource that already resolved, under
        // concurrent load; the `pages` integration test counts such stalls. Async ones stall
        // too, far more rarely, which the server's page renderer detects and renders again.)
        <Router>
            <Routes fallback=NotFound>
                <Route path=path!("/") view=|| view! { <Redirect path="/create" /> } />
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                <Route path=path!("/signup") view=SignupPage ssr=SsrMode::Async />
                <Route path=path!("/create") view=CreatePage ssr=SsrMode::Async />
                <Route path=path!("/gallery") view=GalleryPage ssr=SsrMode::Async />
                <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async />
                <Route path=path!("/admin/users/:id") view=AdminUserPage ssr=SsrMode::Async />
                <Route path=path!("/admin/users/:id/gallery") view=AdminGalleryPage ssr=SsrMode::Async />
                <Route path=path!("/admin/jobs") view=AdminJobsPage ssr=SsrMode::Async />
                <Route path=path!("/admin/audit") view=AdminAuditPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
