use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
}

#[server(endpoint = "admin/users")]
pub async fn admin_users() -> Result<Vec<UserRow>, AppError> {
    use crate::server::auth::users;
    use crate::server::db::rfc3339;
    use crate::server::request::{require_admin, respond, state};
    respond(async move {
        require_admin().await?;
        let rows = users::list(&state()?.db).await?;
        Ok(rows
            .into_iter()
            .map(|u| UserRow {
                role: u.role.as_str().into(),
                disabled: u.disabled,
                created_at: rfc3339(u.created_at),
                id: u.id,
                email: u.email,
            })
            .collect())
    })
    .await
}
