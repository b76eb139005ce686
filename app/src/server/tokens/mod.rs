//! Personal access tokens: made by their owner on the Account tab with a name, scopes and an
//! expiry (never none), shown once, stored only as a hash, listed with when each was last used,
//! revoked at once. [`authenticate`] is how the JSON API knows its caller.

pub mod format;

use serde_json::json;
use sqlx::Row;

use crate::error::{AppError, code};
use crate::server::audit::{self, Action, Event};
use crate::server::auth::users::{self, User};
use crate::server::db::{Db, new_id, parse_id};
use crate::tokens::{MAX_DAYS, MAX_PER_ACCOUNT, NAME_MAX_CHARS, Scope};

const DAY_MS: i64 = 86_400_000;
/// `last_used_at` is written at most this often per token: every request reads the token, but
/// a write per request would cost more than knowing the minute it was used.
const TOUCH_EVERY_MS: i64 = 5 * 60_000;

/// A stored token (its secret is not stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl TokenRow {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

const COLUMNS: &str = "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at";

fn row(r: &sqlx::any::AnyRow) -> Result<TokenRow, sqlx::Error> {
    let scopes: String = r.try_get("scopes")?;
    Ok(TokenRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        scopes: scopes.split(' ').filter_map(Scope::parse).collect(),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not shaped like a token, or its checksum fails: refused without a lookup.
    #[error("malformed token")]
    Malformed,
    /// Well formed, but no such token, or revoked, or expired, or its account disabled: the
    /// caller is told only that it does not work.
    #[error("token not accepted")]
    NotAccepted,
    #[error("{0}")]
    Invalid(&'static str, String),
    #[error("too many tokens")]
    TooMany,
    #[error("no such token")]
    NotFound,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<TokenError> for AppError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Malformed => AppError::new(
                code::TOKEN_MALFORMED,
                "That is not a Darkroom access token (they start with drk_pat_); check it was copied whole.",
            ),
            TokenError::NotAccepted => AppError::new(
                code::TOKEN_NOT_ACCEPTED,
                "This access token does not work: it was revoked, it expired, or it never existed.",
            ),
            TokenError::Invalid(field, message) => AppError::new(code::TOKEN_INVALID, message).on_field(field),
            TokenError::TooMany => AppError::new(
                code::TOKEN_TOO_MANY,
                format!("You have {MAX_PER_ACCOUNT} tokens already; revoke one you no longer use."),
            ),
            TokenError::NotFound => AppError::new(code::TOKEN_NOT_FOUND, "That token does not exist."),
            TokenError::Database(_) | TokenError::Internal(_) => {
                tracing::error!(%err, "access tokens failed");
                AppError::internal()
            }
        }
    }
}

/// What the owner asked for, checked: a name on one line, known scopes (at least one), and a
/// lifetime of 1 to [`MAX_DAYS`] days.
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub days: u32,
}

impl NewToken {
    pub fn parse(name: &str, scopes: &[String], days: u32) -> Result<Self, TokenError> {
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
            return Err(TokenError::Invalid("name", format!("Name the token (at most {NAME_MAX_CHARS} characters).")));
        }
        if name.chars().any(|c| c.is_control() || crate::server::auth::credentials::is_invisible(c)) {
            return Err(TokenError::Invalid("name", "The name cannot contain control or invisible characters.".into()));
        }
        let mut parsed = Vec::new();
        for raw in scopes {
            let scope = Scope::parse(raw.trim())
                .ok_or_else(|| TokenError::Invalid("scopes", format!("{raw:?} is not a scope.")))?;
            if !parsed.contains(&scope) {
                parsed.push(scope);
            }
        }
        if parsed.is_empty() {
            return Err(TokenError::Invalid("scopes", "Choose at least one thing the token may do.".into()));
        }
        parsed.sort();
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(TokenError::Invalid("days", format!("A token lasts 1 to {MAX_DAYS} days.")));
        }
        Ok(Self { name, scopes: parsed, days })
    }
}

/// Makes a token for `user`; answers its secret (to be shown once) and its row.
pub async fn create(db: &Db, user: &User, new: NewToken, ip: &str, now: i64) -> Result<(String, TokenRow), TokenError> {
    let token = format::generate();
    let row = TokenRow {
        id: new_id(),
        user_id: user.id.clone(),
        name: new.name,
        prefix: format::shown(&token),
        scopes: new.scopes,
        created_at: now,
        expires_at: now + i64::from(new.days) * DAY_MS,
        last_used_at: None,
        revoked_at: None,
    };
    let scopes = row.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
    let mut tx = db.begin_write().await?;
    // Counted in the transaction that adds one, so concurrent creates cannot pass the limit
    // together (SQLite's writer lock; PostgreSQL's row lock on the account).
    if db.backend == crate::server::db::Backend::Postgres {
        sqlx::query("SELECT id FROM users WHERE id = $1 FOR UPDATE").bind(&user.id).execute(&mut *tx).await?;
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_tokens WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind(&user.id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    if live as usize >= MAX_PER_ACCOUNT {
        return Err(TokenError::TooMany);
    }
    sqlx::query(
        "INSERT INTO access_tokens (id, user_id, name, prefix, token_hash, scopes, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.user_id)
    .bind(&row.name)
    .bind(&row.prefix)
    .bind(format::hash(&token))
    .bind(&scopes)
    .bind(row.created_at)
    .bind(row.expires_at)
    .execute(&mut *tx)
    .await?;
    let event = Event::new(Action::TokenCreated).actor(&user.id).subject("token", &row.id).ip(ip);
    let detail =
        json!({ "name": row.name, "scopes": scopes, "expires_at": crate::server::db::rfc3339(row.expires_at) });
    audit::record_in(&mut tx, event.detail(detail)).await?;
    tx.commit().await?;
    Ok((token, row))
}

/// `user_id`'s tokens, newest first (revoked ones too, marked so).
pub async fn list(db: &Db, user_id: &str) -> Result<Vec<TokenRow>, TokenError> {
    let sql = format!("SELECT {COLUMNS} FROM access_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC");
    let rows = sqlx::query(&sql).bind(user_id).fetch_all(&db.pool).await?;
    Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
}

/// Revokes `user_id`'s token `id`: the next request with it is refused.
pub async fn revoke(db: &Db, user_id: &str, id: &str, ip: &str, now: i64) -> Result<(), TokenError> {
    let id = parse_id(id).ok_or(TokenError::NotFound)?;
    let mut tx = db.begin_write().await?;
    let found =
        sqlx::query("UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND user_id = $2")
            .bind(&id)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    if found.rows_affected() == 0 {
        return Err(TokenError::NotFound);
    }
    let event = Event::new(Action::TokenRevoked).actor(user_id).subject("token", &id).ip(ip);
    audit::record_in(&mut tx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// The account and token behind `raw` at `now`: well formed (checked first, without the
/// database), known, not revoked, not expired, its account enabled.
pub async fn authenticate(db: &Db, raw: &str, now: i64) -> Result<(User, TokenRow), TokenError> {
    if !format::well_formed(raw) {
        return Err(TokenError::Malformed);
    }
    metrics::counter!("token_lookups_total").increment(1);
    let sql = format!("SELECT {COLUMNS} FROM access_tokens WHERE token_hash = $1");
    let found = sqlx::query(&sql).bind(format::hash(raw)).fetch_optional(&db.pool).await?;
    let token = found.as_ref().map(row).transpose()?.ok_or(TokenError::NotAccepted)?;
    if token.revoked_at.is_some() || token.expires_at <= now {
        return Err(TokenError::NotAccepted);
    }
    let user = users::find(db, &token.user_id).await.map_err(|e| TokenError::Internal(e.to_string()))?;
    let user = user.filter(|u| !u.disabled).ok_or(TokenError::NotAccepted)?;
    if token.last_used_at.is_none_or(|at| at <= now - TOUCH_EVERY_MS) {
        sqlx::query("UPDATE access_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(&token.id)
            .bind(now)
            .execute(&db.pool)
            .await?;
    }
    Ok((user, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_asks_for_a_name_known_scopes_and_a_bounded_life() {
        let ok =
            NewToken::parse("  my   phone ", &["jobs:read".into(), "uploads:write".into(), "jobs:read".into()], 90)
                .unwrap();
        assert_eq!(ok.name, "my phone");
        assert_eq!(ok.scopes, vec![Scope::UploadsWrite, Scope::JobsRead], "known, once each, in order");
        let field = |r: Result<NewToken, TokenError>| match r {
            Err(TokenError::Invalid(field, _)) => field,
            _ => "accepted",
        };
        let scopes = vec!["jobs:read".to_owned()];
        assert_eq!(field(NewToken::parse("", &scopes, 90)), "name");
        assert_eq!(field(NewToken::parse(&"x".repeat(101), &scopes, 90)), "name");
        assert_eq!(field(NewToken::parse("a\u{202E}b", &scopes, 90)), "name");
        assert_eq!(field(NewToken::parse("ci", &[], 90)), "scopes");
        assert_eq!(field(NewToken::parse("ci", &["admin".into()], 90)), "scopes");
        assert_eq!(field(NewToken::parse("ci", &scopes, 0)), "days");
        assert_eq!(field(NewToken::parse("ci", &scopes, 366)), "days");
        assert_eq!(field(NewToken::parse("ci", &scopes, 365)), "accepted");
    }
}
