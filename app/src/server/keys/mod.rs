//! The fal key vault: each user's own key, sealed at rest, never sent back to the browser.

pub mod vault;

use sqlx::Row;

use crate::server::db::{Db, now_ms};
use crate::server::fal::FalKey;
pub use vault::{Sealed, Vault, VaultError};

const PROVIDER: &str = "fal";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("stored key is not a valid fal key")]
    Unreadable,
}

/// All that leaves the server about a saved key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    pub last4: String,
    pub saved_at: i64,
}

/// Whether the save created a key or replaced one (they are audited differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    Created,
    Replaced,
}

pub async fn save(db: &Db, vault: &Vault, user_id: &str, key: &FalKey) -> Result<(KeyStatus, Saved), KeyError> {
    let sealed = vault.seal(user_id, key.expose().as_bytes());
    let status = KeyStatus { last4: key.last4(), saved_at: now_ms() };
    // Each step is one statement that writes: a transaction that read first and wrote second
    // would fail at once on SQLite whenever another connection wrote in between (a read
    // snapshot cannot become a writer), whatever the busy timeout.
    let replace = || {
        sqlx::query(
            "UPDATE provider_keys SET ciphertext = $1, nonce = $2, key_id = $3, last4 = $4, created_at = $5 \
             WHERE user_id = $6 AND provider = $7",
        )
        .bind(sealed.ciphertext.clone())
        .bind(sealed.nonce.clone())
        .bind(sealed.key_id.clone())
        .bind(status.last4.clone())
        .bind(status.saved_at)
        .bind(user_id)
        .bind(PROVIDER)
        .execute(&db.pool)
    };
    let saved = if replace().await?.rows_affected() == 1 {
        Saved::Replaced
    } else {
        let inserted = sqlx::query(
            "INSERT INTO provider_keys (user_id, provider, ciphertext, nonce, key_id, last4, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, provider) DO NOTHING",
        )
        .bind(user_id)
        .bind(PROVIDER)
        .bind(sealed.ciphertext.clone())
        .bind(sealed.nonce.clone())
        .bind(sealed.key_id.clone())
        .bind(&status.last4)
        .bind(status.saved_at)
        .execute(&db.pool)
        .await?;
        if inserted.rows_affected() == 1 {
            Saved::Created
        } else {
            // A concurrent save created it between our two statements; ours is the later one.
            replace().await?;
            Saved::Replaced
        }
    };
    tracing::debug!(user_id, last4 = %status.last4, ?saved, "fal key saved");
    Ok((status, saved))
}

pub async fn status(db: &Db, user_id: &str) -> Result<Option<KeyStatus>, KeyError> {
    let row = sqlx::query("SELECT last4, created_at FROM provider_keys WHERE user_id = $1 AND provider = $2")
        .bind(user_id)
        .bind(PROVIDER)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row
        .map(|r| Ok::<_, sqlx::Error>(KeyStatus { last4: r.try_get("last4")?, saved_at: r.try_get("created_at")? }))
        .transpose()?)
}

/// Returns whether a key was deleted.
pub async fn delete(db: &Db, user_id: &str) -> Result<bool, KeyError> {
    let done = sqlx::query("DELETE FROM provider_keys WHERE user_id = $1 AND provider = $2")
        .bind(user_id)
        .bind(PROVIDER)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The plain key, for calling fal on the user's behalf. Stays on the server.
pub async fn load(db: &Db, vault: &Vault, user_id: &str) -> Result<Option<FalKey>, KeyError> {
    let row = sqlx::query("SELECT ciphertext, nonce, key_id FROM provider_keys WHERE user_id = $1 AND provider = $2")
        .bind(user_id)
        .bind(PROVIDER)
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let sealed =
        Sealed { ciphertext: row.try_get("ciphertext")?, nonce: row.try_get("nonce")?, key_id: row.try_get("key_id")? };
    let plain = vault.open(user_id, &sealed)?;
    let text = String::from_utf8(plain).map_err(|_| KeyError::Unreadable)?;
    FalKey::parse(&text).map(Some).map_err(|_| KeyError::Unreadable)
}

/// Re-seals every key not sealed under the current master key. Returns how many changed.
pub async fn rotate(db: &Db, vault: &Vault) -> Result<u64, KeyError> {
    let rows = sqlx::query("SELECT user_id, provider, ciphertext, nonce, key_id FROM provider_keys WHERE key_id <> $1")
        .bind(vault.current_key_id())
        .fetch_all(&db.pool)
        .await?;
    let mut changed = 0;
    for row in rows {
        let user_id: String = row.try_get("user_id")?;
        let provider: String = row.try_get("provider")?;
        let old_key_id: String = row.try_get("key_id")?;
        let sealed =
            Sealed { ciphertext: row.try_get("ciphertext")?, nonce: row.try_get("nonce")?, key_id: old_key_id.clone() };
        let fresh = vault.seal(&user_id, &vault.open(&user_id, &sealed)?);
        // The key_id guard makes a concurrent save win instead of being overwritten.
        changed += sqlx::query(
            "UPDATE provider_keys SET ciphertext = $1, nonce = $2, key_id = $3 \
             WHERE user_id = $4 AND provider = $5 AND key_id = $6",
        )
        .bind(fresh.ciphertext)
        .bind(fresh.nonce)
        .bind(fresh.key_id)
        .bind(&user_id)
        .bind(&provider)
        .bind(&old_key_id)
        .execute(&db.pool)
        .await?
        .rows_affected();
    }
    Ok(changed)
}

impl From<KeyError> for crate::error::AppError {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Vault(VaultError::UnknownKeyId(_) | VaultError::Corrupt) | KeyError::Unreadable => {
                tracing::error!(%err, "saved fal key cannot be opened");
                Self::new(
                    crate::error::code::KEYS_UNREADABLE,
                    "Your saved fal key can no longer be read (the server's master key changed). Save it again.",
                )
            }
            other => {
                tracing::error!(err = %other, "key vault failed");
                Self::internal()
            }
        }
    }
}
