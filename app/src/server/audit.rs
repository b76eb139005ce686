//! The audit log: who did what to which thing, from where. Append-only.

use serde_json::Value;

use super::db::{Bind, Db, new_id, now_ms};

/// Every audited action, named once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SignedUp,
    LoggedIn,
    LoginFailed,
    LoggedOut,
    RateLimited,
    KeySaved,
    KeyReplaced,
    KeyDeleted,
    KeyTested,
    UserCreated,
    UserPromoted,
    UserDemoted,
    UserDisabled,
    UserEnabled,
    AdminDenied,
    UploadIssued,
    UploadConfirmed,
    UploadRejected,
    UploadDeleted,
    JobCreated,
    JobCanceled,
    JobRetried,
    JobFailed,
    FalInvoked,
    WebhookAccepted,
    WebhookRejected,
    AssetPersisted,
    AssetsFavorited,
    AssetsTrashed,
    AssetsRestored,
    AssetsDeleted,
    AssetsDownloaded,
    PasswordChanged,
    EmailChanged,
    SessionEnded,
    AccountDeleted,
    AccountExported,
    SpendCapsSet,
    AccessOpened,
    GalleryViewed,
    AssetViewed,
    QuotasSet,
    TokenCreated,
    TokenRevoked,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedUp => "auth.signup",
            Self::LoggedIn => "auth.login",
            Self::LoginFailed => "auth.login_failed",
            Self::LoggedOut => "auth.logout",
            Self::RateLimited => "auth.rate_limited",
            Self::KeySaved => "key.saved",
            Self::KeyReplaced => "key.replaced",
            Self::KeyDeleted => "key.deleted",
            Self::KeyTested => "key.tested",
            Self::UserCreated => "user.created",
            Self::UserPromoted => "user.promoted",
            Self::UserDemoted => "user.demoted",
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::PasswordChanged => "account.password_changed",
            Self::EmailChanged => "account.email_changed",
            Self::SessionEnded => "account.session_ended",
            Self::AccountDeleted => "account.deleted",
            Self::AccountExported => "account.exported",
            Self::SpendCapsSet => "spend.caps_set",
            Self::QuotasSet => "quota.set",
            Self::TokenCreated => "token.created",
            Self::TokenRevoked => "token.revoked",
            Self::AdminDenied => "admin.denied",
            Self::AccessOpened => "admin.access_opened",
            Self::GalleryViewed => "admin.gallery_viewed",
            Self::AssetViewed => "admin.asset_viewed",
            Self::UploadIssued => "upload.issued",
            Self::UploadConfirmed => "upload.confirmed",
            Self::UploadRejected => "upload.rejected",
            Self::UploadDeleted => "upload.deleted",
            Self::JobCreated => "job.created",
            Self::JobCanceled => "job.canceled",
            Self::JobRetried => "job.retried",
            Self::JobFailed => "job.failed",
            Self::FalInvoked => "fal.invoked",
            Self::WebhookAccepted => "webhook.accepted",
            Self::WebhookRejected => "webhook.rejected",
            Self::AssetPersisted => "asset.persisted",
            Self::AssetsFavorited => "asset.favorited",
            Self::AssetsTrashed => "asset.trashed",
            Self::AssetsRestored => "asset.restored",
            Self::AssetsDeleted => "asset.deleted",
            Self::AssetsDownloaded => "asset.downloaded",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Event<'a> {
    pub action: Action,
    pub actor_id: Option<&'a str>,
    pub subject: Option<(&'static str, &'a str)>,
    pub ip: Option<&'a str>,
    pub detail: Value,
}

impl<'a> Event<'a> {
    pub fn new(action: Action) -> Self {
        Self { action, actor_id: None, subject: None, ip: None, detail: Value::Object(Default::default()) }
    }

    pub fn actor(mut self, id: &'a str) -> Self {
        self.actor_id = Some(id);
        self
    }

    pub fn subject(mut self, kind: &'static str, id: &'a str) -> Self {
        self.subject = Some((kind, id));
        self
    }

    pub fn ip(mut self, ip: &'a str) -> Self {
        self.ip = Some(ip);
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

const COLUMNS: &str = "id, at, actor_id, action, subject_type, subject_id, ip, detail_json";

/// `INSERT INTO audit_events (…) SELECT $first, …, $first+7 <tail>`: an event written in the
/// same statement batch as the change it records, only when `tail` (a `WHERE` or `FROM`) lets
/// it. Its values are [`values`], bound after the batch's own `$1 … $first-1`.
pub fn insert_select(first: usize, tail: &str) -> String {
    let values = (first..first + 8).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO audit_events ({COLUMNS}) SELECT {values} {tail}")
}

/// `event`'s column values (redacted), in the order of [`insert_select`]'s placeholders.
pub fn values(mut event: Event<'_>) -> [Bind; 8] {
    super::redact::json(&mut event.detail);
    let text = |value: Option<&str>| Bind::Text(value.map(str::to_owned));
    [
        Bind::Text(Some(new_id())),
        Bind::Int(now_ms()),
        text(event.actor_id),
        text(Some(event.action.as_str())),
        text(event.subject.map(|(kind, _)| kind)),
        text(event.subject.map(|(_, id)| id)),
        text(event.ip),
        Bind::Text(Some(event.detail.to_string())),
    ]
}

fn insert(event: Event<'_>) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>> {
    static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| insert_select(1, ""));
    values(event).into_iter().fold(sqlx::query(INSERT.as_str()), |query, value| match value {
        Bind::Int(n) => query.bind(n),
        Bind::Text(text) => query.bind(text),
    })
}

/// Records `event`. A failure to audit is logged loudly but does not undo the user's action.
pub async fn record(db: &Db, event: Event<'_>) {
    let action = event.action.as_str();
    if let Err(err) = insert(event).execute(&db.pool).await {
        tracing::error!(action, %err, "could not write audit event");
    }
}

/// Records `event` inside the transaction of the action it describes: both commit or neither.
pub async fn record_in(conn: &mut sqlx::AnyConnection, event: Event<'_>) -> Result<(), sqlx::Error> {
    insert(event).execute(conn).await?;
    Ok(())
}
