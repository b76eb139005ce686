//! argon2id password hashing with OWASP's recommended parameters (19 MiB, t=2, p=1).
//!
//! Hashing is CPU-bound for tens of milliseconds and holds 19 MiB, so it runs on the blocking
//! pool (never on the async workers), and only as many at once as there are cores: a flood of
//! logins waits a moment for a turn and is then told to come back, instead of growing memory.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};

use super::AuthError;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// How long a hash waits for a free core before the request is answered "busy".
const WAIT_FOR_TURN: Duration = Duration::from_secs(3);

fn turns() -> &'static tokio::sync::Semaphore {
    static TURNS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    TURNS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        tokio::sync::Semaphore::new(cores)
    })
}

async fn turn() -> Result<tokio::sync::SemaphorePermit<'static>, AuthError> {
    match tokio::time::timeout(WAIT_FOR_TURN, turns().acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(AuthError::Busy),
    }
}

pub async fn hash(password: String) -> Result<String, AuthError> {
    let _turn = turn().await?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Internal(format!("argon2 hash: {e}")))
    })
    .await
    .map_err(|e| AuthError::Internal(format!("hash task: {e}")))?
}

/// Verifies `password` against `stored`. With `stored = None` (unknown account) it still does
/// the same work against a throwaway hash, so response time does not reveal which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, AuthError> {
    let _turn = turn().await?;
    tokio::task::spawn_blocking(move || {
        let (phc, known) = match stored {
            Some(phc) => (phc, true),
            None => (dummy_hash().to_owned(), false),
        };
        let parsed = PasswordHash::new(&phc).map_err(|e| AuthError::Internal(format!("stored hash: {e}")))?;
        let matches = hasher().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(|e| AuthError::Internal(format!("verify task: {e}")))?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(b"not-a-real-password-for-timing", &salt)
            .expect("hashing a constant cannot fail")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery".into()).await.unwrap();
        let b = hash("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("correct horse battery".into(), Some(a.clone())).await.unwrap());
        assert!(!verify("wrong horse battery".into(), Some(a)).await.unwrap());
        assert!(!verify("anything at all".into(), None).await.unwrap());
    }
}
