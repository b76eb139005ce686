//! What an upload may be, parsed at the boundary: the allowed image types, a SHA-256 checksum,
//! a display filename, and the object keys an upload lives under.

use std::fmt;

use base64::Engine;

use super::UploadError;

/// The image formats Darkroom accepts. SVG, HTML and anything text-like never are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageType {
    Jpeg,
    Png,
    Webp,
    Heif,
    Avif,
}

impl ImageType {
    /// Parses a declared `Content-Type`. `image/heic` and `image/heif` (and their sequence
    /// variants) are one container family.
    pub fn parse(raw: &str) -> Result<Self, UploadError> {
        let essence = raw.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        Ok(match essence.as_str() {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Self::Jpeg,
            "image/png" => Self::Png,
            "image/webp" => Self::Webp,
            "image/heic" | "image/heif" | "image/heic-sequence" | "image/heif-sequence" => Self::Heif,
            "image/avif" => Self::Avif,
            _ => return Err(UploadError::UnsupportedType(raw.chars().take(80).collect())),
        })
    }

    /// The canonical MIME type stored and sent to storage.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Heif => "image/heif",
            Self::Avif => "image/avif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Webp => "webp",
            Self::Heif => "heic",
            Self::Avif => "avif",
        }
    }
}

/// A SHA-256 digest, given as 64 hex digits or 44 base64 characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256([u8; 32]);

impl Sha256 {
    pub fn parse(raw: &str) -> Result<Self, UploadError> {
        let raw = raw.trim();
        let bytes = if raw.len() == 64 {
            hex::decode(raw).ok()
        } else {
            base64::engine::general_purpose::STANDARD.decode(raw).ok()
        };
        match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
            Some(digest) => Ok(Self(digest)),
            None => Err(UploadError::MalformedChecksum),
        }
    }

    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(bytes).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The form S3 wants in `x-amz-checksum-sha256`.
    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.hex())
    }
}

/// A filename for display only: no directories, no control characters, at most 120 characters.
pub fn display_filename(raw: Option<&str>) -> Option<String> {
    let base = raw?.rsplit(['/', '\\']).next()?;
    let clean: String = base.chars().filter(|c| !c.is_control()).take(120).collect();
    let clean = clean.trim().to_owned();
    (!clean.is_empty() && clean != "." && clean != "..").then_some(clean)
}

/// Where an upload's bytes live. Keys are built here from ids, never taken from a client as is.
pub struct Keys;

impl Keys {
    /// Where the browser PUTs (the only key a presigned PUT is ever issued for).
    pub fn upload(user_id: &str, upload_id: &str) -> String {
        format!("uploads/{user_id}/{upload_id}")
    }

    /// Where the validated, sanitized image lives.
    pub fn source(user_id: &str, upload_id: &str) -> String {
        format!("sources/{user_id}/{upload_id}")
    }
}

/// What a client may name an upload by: its id, or the key it was told to PUT to. A key must be
/// `uploads/{caller}/{id}` exactly; another user's key answers like a missing upload.
pub fn upload_id_from_client(raw: &str, caller: &str) -> Result<String, UploadError> {
    let raw = raw.trim();
    let id = match raw.split_once('/') {
        None => raw,
        Some(_) => {
            let parts: Vec<&str> = raw.split('/').collect();
            if parts.iter().any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\')) {
                return Err(UploadError::InvalidKey);
            }
            match parts.as_slice() {
                ["uploads", owner, id] if *owner == caller => *id,
                ["uploads", _, _] => return Err(UploadError::NotFound),
                _ => return Err(UploadError::InvalidKey),
            }
        }
    };
    uuid::Uuid::parse_str(id).map(|u| u.to_string()).map_err(|_| UploadError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn image_types_are_an_allow_list() {
        assert_eq!(ImageType::parse("image/jpeg").unwrap(), ImageType::Jpeg);
        assert_eq!(ImageType::parse("IMAGE/PNG; charset=binary").unwrap(), ImageType::Png);
        assert_eq!(ImageType::parse("image/heic").unwrap(), ImageType::Heif);
        for refused in ["image/svg+xml", "text/html", "image/gif", "application/octet-stream", "", "image/svg"] {
            assert!(matches!(ImageType::parse(refused), Err(UploadError::UnsupportedType(_))), "{refused}");
        }
    }

    #[test]
    fn checksums_in_hex_or_base64() {
        let digest = Sha256::of(b"hello");
        assert_eq!(Sha256::parse(&digest.hex()).unwrap(), digest);
        assert_eq!(Sha256::parse(&digest.base64()).unwrap(), digest);
        assert_eq!(Sha256::parse(&digest.hex().to_uppercase()).unwrap(), digest);
        for bad in ["", "abc", &"g".repeat(64), &digest.hex()[..62], "not base64 at all!!"] {
            assert!(matches!(Sha256::parse(bad), Err(UploadError::MalformedChecksum)), "{bad}");
        }
    }

    #[test]
    fn filenames_are_for_display_only() {
        assert_eq!(display_filename(Some("C:\\Users\\me\\IMG_0001.HEIC")).as_deref(), Some("IMG_0001.HEIC"));
        assert_eq!(display_filename(Some("../../etc/passwd")).as_deref(), Some("passwd"));
        assert_eq!(display_filename(Some("a\u{0}b\nc.jpg")).as_deref(), Some("abc.jpg"));
        assert_eq!(display_filename(Some("..")), None);
        assert_eq!(display_filename(None), None);
    }

    #[test]
    fn clients_name_only_their_own_uploads() {
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(upload_id_from_client(&id, "alice").unwrap(), id);
        assert_eq!(upload_id_from_client(&format!("uploads/alice/{id}"), "alice").unwrap(), id);
        assert!(matches!(upload_id_from_client(&format!("uploads/bob/{id}"), "alice"), Err(UploadError::NotFound)));
        for bad in [
            format!("uploads/alice/../bob/{id}"),
            format!("uploads/alice/./{id}"),
            format!("sources/alice/{id}"),
            format!("uploads//{id}"),
            format!("/uploads/alice/{id}"),
            format!("uploads/alice/{id}/x"),
        ] {
            assert!(matches!(upload_id_from_client(&bad, "alice"), Err(UploadError::InvalidKey)), "{bad}");
        }
        assert!(matches!(upload_id_from_client("not-a-uuid", "alice"), Err(UploadError::NotFound)));
    }

    proptest! {
        #[test]
        fn any_accepted_client_name_maps_into_the_callers_prefix(raw in "[a-z0-9/._-]{0,60}") {
            if let Ok(id) = upload_id_from_client(&raw, "alice") {
                let key = Keys::upload("alice", &id);
                prop_assert!(key.starts_with("uploads/alice/"));
                prop_assert!(!key.contains(".."));
            }
        }
    }
}
