//! A try-on's selfie must show one face before the job is queued (see `faces`): refusing here
//! spends nothing, at fal or of the user's quota.

use super::{JobError, Jobs};
use crate::server::faces::{self, Faces, Unreadable};
use crate::server::storage::Fetched;
use crate::server::uploads::{decode_slots, rows as upload_rows};

/// Looks at the upload `upload_id` (already checked to be `user_id`'s and ready).
pub(super) async fn require_one_face(ctx: Jobs<'_>, user_id: &str, upload_id: &str) -> Result<(), JobError> {
    let row = upload_rows::find_owned(ctx.db, upload_id, user_id).await?;
    let Some((object_key, content_type)) = row.and_then(|r| r.object_key.zip(r.content_type)) else {
        return Err(JobError::InputMissing(upload_id.to_owned()));
    };
    // HEIF and AVIF are kept as uploaded and cannot be decoded here: a phone's photo is not
    // refused for that, the try-on goes ahead unchecked.
    if !matches!(content_type.as_str(), "image/jpeg" | "image/png" | "image/webp") {
        tracing::info!(upload_id, content_type, "face check skipped: this format cannot be decoded here");
        return Ok(());
    }
    let storage = ctx.storage;
    let bytes =
        match storage.get_bytes(&storage.uploads_bucket, &object_key, ctx.uploads.max_bytes.saturating_mul(2)).await {
            Ok(Some(Fetched::Bytes(bytes))) => bytes,
            Ok(None) => return Err(JobError::InputMissing(upload_id.to_owned())),
            // Stored under an earlier, larger limit: too big to look at now, so fal decides.
            Ok(Some(Fetched::TooLarge(size))) => {
                tracing::warn!(upload_id, size, "face check skipped: the stored image is over the upload limit");
                return Ok(());
            }
            Err(err) => return Err(JobError::Storage(err.to_string())),
        };
    let max_pixels = ctx.uploads.max_pixels;
    // The permit travels with the decode: a request dropped mid-check must not free its slot
    // while the decode still runs.
    let slot = decode_slots().acquire().await.map_err(|e| JobError::Internal(e.to_string()))?;
    let seen = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        faces::count(&bytes, max_pixels)
    })
    .await
    .map_err(|e| JobError::Internal(format!("the face check stopped: {e}")))?;
    match seen {
        Ok(Faces::One) => Ok(()),
        Ok(Faces::None) => {
            tracing::info!(upload_id, "try-on refused: no face in the selfie");
            Err(JobError::NoFace)
        }
        Ok(Faces::Many(count)) => {
            tracing::info!(upload_id, count, "try-on refused: several faces in the selfie");
            Err(JobError::ManyFaces(count))
        }
        // A sanitized upload always decodes; if one somehow does not, fal can still try.
        Err(err @ (Unreadable::Undecodable(_) | Unreadable::TooManyPixels(..))) => {
            tracing::warn!(upload_id, %err, "face check skipped");
            Ok(())
        }
        Err(err @ Unreadable::Model(_)) => Err(JobError::Internal(err.to_string())),
    }
}
