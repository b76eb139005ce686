//! Encryption at rest for provider keys: AES-256-GCM, a random 96-bit nonce per value, and the
//! owner's id as associated data so a ciphertext copied onto another user's row fails to open.
//!
//! Each master key has an id (a short fingerprint) stored beside every ciphertext. Opening picks
//! the key by id, so a new master key can be introduced while the previous one still opens old
//! rows (`DARKROOM_MASTER_KEY_PREVIOUS`), and `keys rotate` re-seals everything under the new one.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::server::config::MasterKeySource;
use crate::server::secret_file;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("no master key with id {0} is configured; set DARKROOM_MASTER_KEY_PREVIOUS to open older values")]
    UnknownKeyId(String),
    #[error("a sealed value failed authentication (wrong key, wrong owner, or tampering)")]
    Corrupt,
}

struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

impl MasterKey {
    fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        if bytes.len() != 32 {
            return Err(VaultError::MasterKey(format!("must be 32 bytes, got {}", bytes.len())));
        }
        // The id identifies the key without revealing it: a truncated hash of a domain-separated input.
        let digest = Sha256::new().chain_update(b"darkroom master key id\0").chain_update(bytes).finalize();
        Ok(Self {
            id: hex::encode(&digest[..6]),
            cipher: Aes256Gcm::new_from_slice(bytes).map_err(|e| VaultError::MasterKey(e.to_string()))?,
        })
    }

    fn from_base64(encoded: &str) -> Result<Self, VaultError> {
        let bytes = B64.decode(encoded.trim()).map_err(|_| VaultError::MasterKey("is not valid base64".into()))?;
        Self::from_bytes(&bytes)
    }
}

/// A value sealed by the vault, as stored in `provider_keys`.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub key_id: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

pub struct Vault {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault").field("current_key_id", &self.current.id).finish_non_exhaustive()
    }
}

impl Vault {
    /// Loads the master key, creating the key file (mode 0600) on first run.
    pub fn load(source: &MasterKeySource, previous: &[String]) -> Result<Self, VaultError> {
        let current = match source {
            MasterKeySource::Inline(encoded) => MasterKey::from_base64(encoded)?,
            MasterKeySource::File(path) => MasterKey::from_base64(&read_or_create_key_file(path)?)?,
        };
        let previous = previous.iter().map(|k| MasterKey::from_base64(k)).collect::<Result<_, _>>()?;
        Ok(Self { current, previous })
    }

    pub fn from_key_bytes(bytes: &[u8; 32]) -> Self {
        Self { current: MasterKey::from_bytes(bytes).expect("32 bytes"), previous: Vec::new() }
    }

    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    pub fn seal(&self, owner: &str, plaintext: &[u8]) -> Sealed {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .current
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: owner.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        Sealed { ciphertext, nonce: nonce.to_vec(), key_id: self.current.id.clone() }
    }

    pub fn open(&self, owner: &str, sealed: &Sealed) -> Result<Vec<u8>, VaultError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKeyId(sealed.key_id.clone()))?;
        if sealed.nonce.len() != 12 {
            return Err(VaultError::Corrupt);
        }
        key.cipher
            .decrypt(Nonce::from_slice(&sealed.nonce), Payload { msg: &sealed.ciphertext, aad: owner.as_bytes() })
            .map_err(|_| VaultError::Corrupt)
    }
}

fn read_or_create_key_file(path: &Path) -> Result<String, VaultError> {
    let generate = || {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        B64.encode(key)
    };
    let (encoded, created) = secret_file::read_or_create(path, generate)
        .map_err(|e| VaultError::MasterKey(format!("cannot read or create {}: {e}", path.display())))?;
    if created {
        tracing::info!(path = %path.display(), "generated a new master key file (mode 0600); back it up");
    }
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_for_the_same_owner_only() {
        let vault = Vault::from_key_bytes(&[7; 32]);
        let sealed = vault.seal("user-a", b"key-id:key-secret");
        assert_eq!(sealed.nonce.len(), 12);
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"));
        assert_eq!(vault.open("user-a", &sealed).unwrap(), b"key-id:key-secret");
        assert!(matches!(vault.open("user-b", &sealed), Err(VaultError::Corrupt)));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let vault = Vault::from_key_bytes(&[7; 32]);
        let a = vault.seal("u", b"same");
        let b = vault.seal("u", b"same");
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn tampering_is_detected() {
        let vault = Vault::from_key_bytes(&[7; 32]);
        let mut sealed = vault.seal("u", b"value");
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(vault.open("u", &sealed), Err(VaultError::Corrupt)));
    }

    #[test]
    fn previous_keys_open_old_values_by_id() {
        let old = Vault::from_key_bytes(&[1; 32]);
        let sealed = old.seal("u", b"value");
        let new_only = Vault::from_key_bytes(&[2; 32]);
        assert!(matches!(new_only.open("u", &sealed), Err(VaultError::UnknownKeyId(_))));
        let rotated = Vault::load(&MasterKeySource::Inline(B64.encode([2u8; 32])), &[B64.encode([1u8; 32])]).unwrap();
        assert_eq!(rotated.open("u", &sealed).unwrap(), b"value");
        assert_ne!(rotated.seal("u", b"value").key_id, sealed.key_id);
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("darkroom-vault-{}", std::process::id()));
        let path = dir.join("master.key");
        let _ = std::fs::remove_dir_all(&dir);
        let first = Vault::load(&MasterKeySource::File(path.clone()), &[]).unwrap();
        let second = Vault::load(&MasterKeySource::File(path.clone()), &[]).unwrap();
        assert_eq!(first.current_key_id(), second.current_key_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_master_keys_are_refused() {
        assert!(Vault::load(&MasterKeySource::Inline("not base64!".into()), &[]).is_err());
        assert!(Vault::load(&MasterKeySource::Inline(B64.encode([0u8; 16])), &[]).is_err());
    }
}
