//! The token's text: `drk_pat_`, 32 random base62 characters (190 bits), and a 6-character
//! base62 CRC32 of them. The prefix lets secret scanners recognise a leaked token; the checksum
//! lets a typo or a made-up token be refused without asking the database. Only a SHA-256 of the
//! whole token is stored: with this much randomness a slow hash would add nothing.

use rand::Rng;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "drk_pat_";
const SECRET_CHARS: usize = 32;
const CHECK_CHARS: usize = 6;
/// Every token is exactly this long.
pub const LEN: usize = PREFIX.len() + SECRET_CHARS + CHECK_CHARS;
/// How much of a token its owner's list shows: the prefix and four characters.
const SHOWN: usize = PREFIX.len() + 4;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new token from the operating system's randomness.
pub fn generate() -> String {
    let mut rng = rand::rngs::OsRng;
    let secret: String = (0..SECRET_CHARS).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    let check = checksum(&secret);
    format!("{PREFIX}{secret}{check}")
}

/// Whether `raw` is shaped like a token and its checksum holds (no database involved).
pub fn well_formed(raw: &str) -> bool {
    if raw.len() != LEN || !raw.starts_with(PREFIX) {
        return false;
    }
    let body = &raw[PREFIX.len()..];
    if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (secret, check) = body.split_at(SECRET_CHARS);
    checksum(secret) == check
}

/// What is stored and looked up: the SHA-256 of the whole token, in hex.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The start of the token its owner recognises it by.
pub fn shown(token: &str) -> String {
    token.chars().take(SHOWN).collect()
}

fn checksum(secret: &str) -> String {
    let mut n = u64::from(crc32fast::hash(secret.as_bytes()));
    let mut out = [b'0'; CHECK_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_is_well_formed_and_unlike_the_last() {
        let a = generate();
        let b = generate();
        assert!(a.starts_with("drk_pat_") && a.len() == LEN && well_formed(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(shown(&a).len(), "drk_pat_".len() + 4);
        assert_eq!(hash(&a).len(), 64);
    }

    #[test]
    fn a_typo_or_a_made_up_token_fails_the_checksum() {
        let token = generate();
        let mut typo = token.clone().into_bytes();
        let at = PREFIX.len() + 5;
        typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
        assert!(!well_formed(std::str::from_utf8(&typo).unwrap()));
        for bad in [
            "",
            "drk_pat_",
            "ghp_0123456789",
            &token[..LEN - 1],
            &format!("{token}x"),
            &token.replace("drk_pat_", "drk_pak_"),
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any string is judged without a panic; a random one of the right shape almost never
        /// passes (a one-in-62⁶ chance per try).
        #[test]
        fn arbitrary_text_is_judged_safely(raw in "\\PC{0,60}", secret in "[0-9A-Za-z]{32}", check in "[0-9A-Za-z]{6}") {
            let _ = well_formed(&raw);
            let made_up = format!("{PREFIX}{secret}{check}");
            proptest::prop_assert_eq!(well_formed(&made_up), checksum(&secret) == check);
            let real = format!("{PREFIX}{secret}{}", checksum(&secret));
            proptest::prop_assert!(well_formed(&real));
        }
    }
}
