use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// The logged-in person, as the pages see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub email: String,
    pub is_admin: bool,
}

#[server(endpoint = "auth/me")]
pub async fn me() -> Result<Option<CurrentUser>, AppError> {
    use crate::server::request::{current_user, respond};
    respond(async move {
        Ok(current_user().await?.map(|user| CurrentUser { is_admin: user.is_admin(), email: user.email }))
    })
    .await
}

#[server(endpoint = "auth/signup")]
pub async fn signup(email: String, password: String, confirm: String) -> Result<(), AppError> {
    use crate::server::auth::{account, session};
    use crate::server::request::{client_ip, respond, seen, session, state};
    respond(async move {
        let state = state()?;
        let form = account::SignupForm { email: &email, password: &password, confirm: &confirm };
        let user = account::sign_up(&state.db, &state.config.auth, &client_ip(), form).await?;
        session::log_in(&session().await?, &state.db, &user, &seen()).await?;
        leptos_axum::redirect("/create");
        Ok(())
    })
    .await
}

#[server(endpoint = "auth/login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::server::auth::{account, session};
    use crate::server::request::{client_ip, respond, safe_next, seen, session, state};
    respond(async move {
        let state = state()?;
        let user = account::log_in(&state.db, &state.config.auth, &client_ip(), &email, &password).await?;
        session::log_in(&session().await?, &state.db, &user, &seen()).await?;
        leptos_axum::redirect(&safe_next(next.as_deref()));
        Ok(())
    })
    .await
}

#[server(endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::server::audit::{self, Action, Event};
    use crate::server::auth::session;
    use crate::server::request::{client_ip, current_user, respond, session, state};
    respond(async move {
        let state = state()?;
        if let Some(user) = current_user().await? {
            audit::record(&state.db, Event::new(Action::LoggedOut).actor(&user.id).ip(&client_ip())).await;
        }
        session::log_out(&session().await?, &state.db).await?;
        leptos_axum::redirect("/login");
        Ok(())
    })
    .await
}
