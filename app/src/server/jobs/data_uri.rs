//! Inline outputs: a provider may return a file as a `data:` URI instead of a URL
//! (`data:image/png;base64,…` or percent-encoded text). Untrusted bytes, so the size is bounded
//! before anything is decoded.

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DataUriError {
    #[error("the inline file is unreadable")]
    Malformed,
    #[error("the inline file is larger than {0} bytes")]
    TooLarge(u64),
}

/// Decodes the part after `data:` into at most `limit` bytes.
pub fn decode(data: &str, limit: u64) -> Result<Vec<u8>, DataUriError> {
    let (meta, payload) = data.split_once(',').ok_or(DataUriError::Malformed)?;
    // Base64 needs 4 characters for 3 bytes, percent-encoding at least one per byte: either way
    // a payload this long cannot decode to `limit` bytes or fewer.
    if payload.len() as u64 > limit.saturating_mul(4) / 3 + 4 {
        return Err(DataUriError::TooLarge(limit));
    }
    let bytes = if meta.ends_with(";base64") {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(payload.trim()).map_err(|_| DataUriError::Malformed)?
    } else {
        percent_decode(payload).ok_or(DataUriError::Malformed)?
    };
    if bytes.len() as u64 > limit {
        return Err(DataUriError::TooLarge(limit));
    }
    Ok(bytes)
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_files_decode() {
        assert_eq!(decode("image/png;base64,aGVsbG8=", 100), Ok(b"hello".to_vec()));
        assert_eq!(decode("nonsense", 100), Err(DataUriError::Malformed));
        assert_eq!(decode("text/plain,a+b%20c%26d", 100), Ok(b"a+b c&d".to_vec()));
        assert_eq!(decode(&format!("x;base64,{}", "A".repeat(1000)), 100), Err(DataUriError::TooLarge(100)));
        assert_eq!(decode("text/plain,%e2%82", 100), Ok(vec![0xe2, 0x82]));
        assert_eq!(decode("text/plain,%+1", 100), Err(DataUriError::Malformed), "a sign is not a hex digit");
        assert_eq!(decode("text/plain,%é", 100), Err(DataUriError::Malformed), "never slices inside a character");
    }
}
