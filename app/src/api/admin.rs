//! Admin: every account with its usage; disabling, re-enabling, promoting and demoting.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::spending::SpendingView;
use crate::error::AppError;

/// An account as the admin's list shows it. Bytes are what the rows record; spend is the
/// estimates of this month's jobs (millionths of a dollar).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub last_login_at: Option<String>,
    pub uploads: i64,
    pub upload_bytes: i64,
    pub results: i64,
    pub result_bytes: i64,
    pub jobs_this_month: i64,
    pub spend_this_month: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersPage {
    pub users: Vec<UserRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// One account with its spending caps, for its admin page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDetail {
    pub user: UserRow,
    pub spending: SpendingView,
    pub quotas: crate::api::quotas::QuotaView,
}

/// Accounts, newest first, 50 a page; `q`: part of the address.
#[server(endpoint = "admin/users")]
pub async fn admin_users(q: Option<String>, after: Option<String>) -> Result<UsersPage, AppError> {
    use crate::server::admin::users;
    use crate::server::request::{cursor, require_admin, respond, state};
    respond(async move {
        require_admin().await?;
        if q.as_deref().is_some_and(|q| q.chars().count() > 254) {
            return Err(AppError::new(crate::error::code::REQUEST_MALFORMED, "Search for at most 254 characters."));
        }
        let state = state()?;
        let now = crate::format::now_ms();
        let (rows, next) =
            users::page(&state.db, q.as_deref(), cursor(after)?.as_deref(), 50, now).await.map_err(internal)?;
        Ok(UsersPage { users: rows.into_iter().map(row).collect(), next })
    })
    .await
}

#[server(endpoint = "admin/user")]
pub async fn admin_user(id: String) -> Result<UserDetail, AppError> {
    use crate::server::admin::users;
    use crate::server::request::{require_admin, respond, state};
    respond(async move {
        require_admin().await?;
        let state = state()?;
        let listed = users::one(&state.db, &id, crate::format::now_ms()).await.map_err(internal)?;
        let listed =
            listed.ok_or_else(|| AppError::new(crate::error::code::ADMIN_USER_NOT_FOUND, "There is no such user."))?;
        let spending = crate::api::spending::view(&state, &listed.user.id).await?;
        let quotas = crate::api::quotas::view(&state, &listed.user.id).await?;
        Ok(UserDetail { user: row(listed), spending, quotas })
    })
    .await
}

/// `change`: `disable`, `enable`, `promote` or `demote`. Disabling ends the account's sessions
/// and live streams at once and holds its queued jobs; a role change ends its sessions, so the
/// next sign-in starts a new session with the new role.
#[server(endpoint = "admin/users/change")]
pub async fn change_user(id: String, change: String) -> Result<UserRow, AppError> {
    use crate::server::admin::users::{self, Change};
    use crate::server::auth::users::Role;
    use crate::server::request::{client_ip, require_admin, respond, state};
    respond(async move {
        let admin = require_admin().await?;
        let change = match change.as_str() {
            "disable" => Change::Disable,
            "enable" => Change::Enable,
            "promote" => Change::Role(Role::Admin),
            "demote" => Change::Role(Role::User),
            _ => {
                return Err(AppError::new(
                    crate::error::code::ADMIN_INVALID_CHANGE,
                    "The change must be disable, enable, promote or demote.",
                ));
            }
        };
        let state = state()?;
        let user = users::change(&state, &admin, &id, change, &client_ip()).await?;
        let listed = users::one(&state.db, &user.id, crate::format::now_ms()).await.map_err(internal)?;
        Ok(row(listed.ok_or_else(AppError::internal)?))
    })
    .await
}

#[cfg(feature = "ssr")]
fn row(listed: crate::server::admin::users::Listed) -> UserRow {
    use crate::server::db::rfc3339;
    UserRow {
        role: listed.user.role.as_str().into(),
        disabled: listed.user.disabled,
        created_at: rfc3339(listed.user.created_at),
        last_login_at: listed.last_login_at.map(rfc3339),
        id: listed.user.id,
        email: listed.user.email,
        uploads: listed.uploads,
        upload_bytes: listed.upload_bytes,
        results: listed.results,
        result_bytes: listed.result_bytes,
        jobs_this_month: listed.jobs_this_month,
        spend_this_month: listed.spend_this_month,
    }
}

#[cfg(feature = "ssr")]
fn internal(err: sqlx::Error) -> AppError {
    tracing::error!(%err, "admin: database");
    AppError::internal()
}

/// A job as the admin's list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminJobRow {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub model: String,
    pub state: crate::states::JobState,
    pub error_code: Option<String>,
    /// What the owner was told.
    pub error_message: Option<String>,
    pub attempts: i64,
    pub max_attempts: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub submitted_at: Option<String>,
    pub completed_at: Option<String>,
    pub estimate_micros: Option<i64>,
    pub can_retry: bool,
    pub can_cancel: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminJobsPage {
    pub jobs: Vec<AdminJobRow>,
    pub next: Option<String>,
    /// Unfinished jobs by state, across every account.
    pub depth: Vec<(crate::states::JobState, i64)>,
}

/// Everyone's jobs, newest first, 50 a page: `state` (`failed`…), `model` (an endpoint id),
/// `user` (an address or an account id), `from`/`to` (`YYYY-MM-DD`, UTC, both included).
#[server(endpoint = "admin/jobs")]
pub async fn admin_jobs(
    state: Option<String>,
    model: Option<String>,
    user: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
) -> Result<AdminJobsPage, AppError> {
    use crate::server::admin::jobs::{self, JobFilter};
    use crate::server::request::{require_admin, respond};
    respond(async move {
        require_admin().await?;
        let services = crate::server::request::state()?;
        let job_state = match given(&state) {
            None => None,
            Some(word) => Some(
                crate::states::JobState::parse(word).ok_or_else(|| bad_filter("state", "That is not a job state."))?,
            ),
        };
        let model = match given(&model) {
            Some(m) if m.len() > 200 || !m.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(bad_filter("model", "That is not a model's endpoint id."));
            }
            other => other.map(str::to_owned),
        };
        let (since, until) = days(&from, &to)?;
        let after = cursor_of(&after)?;
        let Some(user_id) = account(&services.db, &user).await? else {
            return Ok(AdminJobsPage {
                jobs: Vec::new(),
                next: None,
                depth: jobs::queue_depth(&services.db).await.map_err(internal)?,
            });
        };
        let filter = JobFilter { state: job_state, model, user_id, since, until };
        let (listed, next) = jobs::page(&services.db, &filter, after.as_ref(), 50).await.map_err(internal)?;
        let depth = jobs::queue_depth(&services.db).await.map_err(internal)?;
        Ok(AdminJobsPage { jobs: listed.into_iter().map(job_row).collect(), next, depth })
    })
    .await
}

/// Retries anyone's failed or canceled job, as its owner could (their spending caps apply).
#[server(endpoint = "admin/jobs/retry")]
pub async fn admin_retry_job(id: String) -> Result<AdminJobRow, AppError> {
    admin_job_step(id, true).await
}

/// Cancels anyone's unfinished job, as its owner could.
#[server(endpoint = "admin/jobs/cancel")]
pub async fn admin_cancel_job(id: String) -> Result<AdminJobRow, AppError> {
    admin_job_step(id, false).await
}

#[cfg(feature = "ssr")]
async fn admin_job_step(id: String, retry: bool) -> Result<AdminJobRow, AppError> {
    use crate::server::jobs::{self, JobError, rows};
    use crate::server::request::{client_ip, require_admin, respond, state};
    respond(async move {
        let admin = require_admin().await?;
        let state = state()?;
        let Some(id) = crate::server::db::parse_id(&id) else { return Err(JobError::NotFound.into()) };
        let job = rows::find(&state.db, &id).await.map_err(JobError::from)?.ok_or(JobError::NotFound)?;
        let ip = client_ip();
        let changed = if retry {
            jobs::retry((&state).into(), &job.user_id, &job.id, &admin.id, &ip).await?
        } else {
            jobs::cancel((&state).into(), &job.user_id, &job.id, &admin.id, &ip).await?
        };
        let email =
            crate::server::auth::users::find(&state.db, &changed.user_id).await?.map(|u| u.email).unwrap_or_default();
        Ok(job_row(crate::server::admin::jobs::Listed { job: changed, email }))
    })
    .await
}

/// One entry of the audit log; `detail` is its JSON as stored (already redacted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditRow>,
    pub next: Option<String>,
}

/// The audit log, newest first, 100 a page: `actor` (an address or an account id), `action`
/// (`auth.login`, or `auth.` for every `auth.*`), `subject` (any id), `from`/`to` as for jobs.
#[server(endpoint = "admin/audit")]
pub async fn admin_audit(
    actor: Option<String>,
    action: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
) -> Result<AuditPage, AppError> {
    use crate::server::admin::audit::{self, AuditFilter};
    use crate::server::request::{require_admin, respond, state};
    respond(async move {
        require_admin().await?;
        let state = state()?;
        let action = match given(&action) {
            Some(a) if a.len() > 64 || !a.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_') => {
                return Err(bad_filter("action", "Actions are written like auth.login, or auth. for all of auth."));
            }
            other => other.map(str::to_owned),
        };
        let subject_id = match given(&subject) {
            Some(s) if s.len() > 64 => return Err(bad_filter("subject", "That is not an id.")),
            other => other.map(str::to_owned),
        };
        let (since, until) = days(&from, &to)?;
        let after = cursor_of(&after)?;
        let Some(actor_id) = account(&state.db, &actor).await? else {
            return Ok(AuditPage { entries: Vec::new(), next: None });
        };
        let filter = AuditFilter { actor_id, action, subject_id, since, until };
        let (entries, next) = audit::page(&state.db, &filter, after.as_ref(), 100).await.map_err(internal)?;
        let entries = entries
            .into_iter()
            .map(|e| AuditRow {
                id: e.id,
                at: crate::server::db::rfc3339(e.at),
                actor_id: e.actor_id,
                actor_email: e.actor_email,
                action: e.action,
                subject_type: e.subject_type,
                subject_id: e.subject_id,
                ip: e.ip,
                detail: e.detail_json,
            })
            .collect();
        Ok(AuditPage { entries, next })
    })
    .await
}

#[cfg(feature = "ssr")]
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(feature = "ssr")]
fn bad_filter(field: &str, message: &str) -> AppError {
    AppError::new(crate::error::code::ADMIN_INVALID_FILTER, message).on_field(field)
}

#[cfg(feature = "ssr")]
fn days(from: &Option<String>, to: &Option<String>) -> Result<(Option<i64>, Option<i64>), AppError> {
    use crate::server::gallery::query::day_start;
    let day = |raw: &Option<String>, field: &str| match given(raw) {
        None => Ok(None),
        Some(d) => day_start(d).map(Some).ok_or_else(|| bad_filter(field, "Dates are written as YYYY-MM-DD.")),
    };
    Ok((day(from, "from")?, day(to, "to")?.map(|start| start + 86_400_000)))
}

#[cfg(feature = "ssr")]
fn cursor_of(after: &Option<String>) -> Result<Option<crate::server::gallery::query::Cursor>, AppError> {
    match given(after) {
        None => Ok(None),
        Some(raw) => crate::server::gallery::query::Cursor::decode(raw).map(Some).ok_or_else(|| {
            AppError::new(crate::error::code::REQUEST_INVALID_CURSOR, "That page does not exist; start from the first.")
        }),
    }
}

/// The account a filter names, by id or address: `Ok(Some(None))` without a filter,
/// `Ok(None)` when it names no account (nothing matches).
#[cfg(feature = "ssr")]
async fn account(db: &crate::server::db::Db, named: &Option<String>) -> Result<Option<Option<String>>, AppError> {
    let Some(named) = given(named) else { return Ok(Some(None)) };
    if let Some(id) = crate::server::db::parse_id(named) {
        return Ok(Some(Some(id)));
    }
    let Ok(email) = crate::server::auth::Email::parse(named) else { return Ok(None) };
    Ok(crate::server::auth::users::find_by_email(db, &email).await?.map(|u| Some(u.id)))
}

#[cfg(feature = "ssr")]
fn job_row(listed: crate::server::admin::jobs::Listed) -> AdminJobRow {
    use crate::server::db::rfc3339;
    use crate::states::JobState;
    let job = listed.job;
    AdminJobRow {
        can_retry: JobState::RETRIABLE.contains(&job.state),
        can_cancel: JobState::CANCELABLE.contains(&job.state),
        id: job.id,
        user_id: job.user_id,
        email: listed.email,
        model: job.model,
        state: job.state,
        error_code: job.error_code,
        error_message: job.error_message,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        created_at: rfc3339(job.created_at),
        submitted_at: job.submitted_at.map(rfc3339),
        completed_at: job.completed_at.map(rfc3339),
        estimate_micros: job.estimate_micros,
    }
}
