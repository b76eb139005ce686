//! Writing a file of unknown length into storage a part at a time: one PUT when it fits in a
//! part, a multipart upload above that, holding at most one part in memory and hashing as it
//! goes. Every multipart upload is recorded in `multipart_uploads` the moment it exists and
//! forgotten when it is completed or aborted, so one a crash interrupted is always found again
//! ([`abort_recorded`]) on every backend, whether or not it can list its open uploads.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Storage, StorageError, request_error};
use crate::server::db::{Db, now_ms};

/// The most a writer holds in memory at once.
pub const PART: usize = 8 * 1024 * 1024;

pub struct Writer<'a> {
    storage: &'a Storage,
    db: &'a Db,
    bucket: String,
    key: String,
    content_type: &'static str,
    /// The job the file belongs to, so its interrupted uploads can be found by job.
    owner: String,
    buffer: Vec<u8>,
    hasher: Sha256,
    pub total: u64,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl<'a> Writer<'a> {
    pub fn new(
        storage: &'a Storage,
        db: &'a Db,
        bucket: &str,
        key: String,
        content_type: &'static str,
        owner: &str,
    ) -> Self {
        Self {
            storage,
            db,
            bucket: bucket.to_owned(),
            key,
            content_type,
            owner: owner.to_owned(),
            buffer: Vec::with_capacity(PART),
            hasher: Sha256::new(),
            total: 0,
            upload_id: None,
            parts: Vec::new(),
        }
    }

    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), WriteError> {
        self.hasher.update(chunk);
        self.total += chunk.len() as u64;
        self.buffer.extend_from_slice(chunk);
        if self.buffer.len() >= PART {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn flush_part(&mut self) -> Result<(), WriteError> {
        let client = self.storage.client();
        if self.upload_id.is_none() {
            let created = client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(self.content_type)
                .send()
                .await
                .map_err(request_error)?;
            let id = created.upload_id().unwrap_or_default().to_owned();
            let recorded = sqlx::query(
                "INSERT INTO multipart_uploads (upload_id, bucket, object_key, job_id, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&id)
            .bind(&self.bucket)
            .bind(&self.key)
            .bind(&self.owner)
            .bind(now_ms())
            .execute(&self.db.pool)
            .await;
            self.upload_id = Some(id);
            recorded?;
        }
        let number = self.parts.len() as i32 + 1;
        let body = std::mem::replace(&mut self.buffer, Vec::with_capacity(PART));
        let part = client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(self.upload_id.clone().unwrap_or_default())
            .part_number(number)
            .content_length(body.len() as i64)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(request_error)?;
        self.parts
            .push(CompletedPart::builder().part_number(number).set_e_tag(part.e_tag().map(str::to_owned)).build());
        Ok(())
    }

    /// Stores what remains and returns the size and SHA-256 (hex) of the whole file. On any
    /// failure the multipart upload is aborted.
    pub async fn finish(mut self) -> Result<(u64, String), WriteError> {
        let sha = hex::encode(self.hasher.clone().finalize());
        if self.upload_id.is_none() {
            use base64::Engine;
            let bytes = std::mem::take(&mut self.buffer);
            let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes));
            self.storage.put_bytes(&self.bucket, &self.key, bytes, self.content_type, &digest).await?;
            return Ok((self.total, sha));
        }
        if !self.buffer.is_empty()
            && let Err(err) = self.flush_part().await
        {
            self.abort().await;
            return Err(err);
        }
        let id = self.upload_id.clone().unwrap_or_default();
        let completed = self
            .storage
            .client()
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder().set_parts(Some(std::mem::take(&mut self.parts))).build(),
            )
            .send()
            .await;
        if let Err(err) = completed {
            self.abort().await;
            return Err(request_error(err).into());
        }
        forget(self.db, &id).await;
        Ok((self.total, sha))
    }

    /// Gives up on the file: the multipart upload (if any) is aborted and forgotten.
    pub async fn abort(&mut self) {
        if let Some(id) = self.upload_id.take() {
            abort_one(self.storage, self.db, &self.bucket, &self.key, &id).await;
        }
    }
}

async fn forget(db: &Db, upload_id: &str) {
    if let Err(err) =
        sqlx::query("DELETE FROM multipart_uploads WHERE upload_id = $1").bind(upload_id).execute(&db.pool).await
    {
        tracing::warn!(%err, "a finished multipart upload stays recorded; the sweeper will drop it");
    }
}

/// Aborts one upload and forgets it once storage has let go of it (an upload storage no longer
/// knows is gone too). Returns whether it is gone.
async fn abort_one(storage: &Storage, db: &Db, bucket: &str, key: &str, upload_id: &str) -> bool {
    let aborted = storage.client().abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await;
    let gone = match aborted {
        Ok(_) => true,
        Err(err) => {
            let code = err.as_service_error().and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e));
            let not_found = err.raw_response().is_some_and(|r| r.status().as_u16() == 404);
            if code == Some("NoSuchUpload") || not_found {
                true
            } else {
                tracing::warn!(err = %request_error(err), "could not abort an unfinished upload yet");
                false
            }
        }
    };
    if gone {
        forget(db, upload_id).await;
    }
    gone
}

/// Aborts the recorded uploads of `owner` (a job whose earlier run was interrupted or that
/// failed), or with `owner` `None` those recorded before `older_than` (epoch ms) whose job is no
/// longer saving anything. Returns how many were aborted.
pub async fn abort_recorded(
    storage: &Storage,
    db: &Db,
    owner: Option<&str>,
    older_than: i64,
) -> Result<u64, sqlx::Error> {
    let rows = match owner {
        Some(job) => {
            sqlx::query("SELECT upload_id, bucket, object_key FROM multipart_uploads WHERE job_id = $1")
                .bind(job)
                .fetch_all(&db.pool)
                .await?
        }
        None => {
            sqlx::query(
                "SELECT m.upload_id, m.bucket, m.object_key FROM multipart_uploads m \
                 WHERE m.created_at < $1 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = m.job_id \
                 AND j.state = $3 AND j.lease_until IS NOT NULL AND j.lease_until > $2) LIMIT 500",
            )
            .bind(older_than)
            .bind(now_ms())
            .bind(crate::states::JobState::Persisting.as_str())
            .fetch_all(&db.pool)
            .await?
        }
    };
    let mut aborted = 0;
    for row in rows {
        let (id, bucket, key): (String, String, String) =
            (row.try_get("upload_id")?, row.try_get("bucket")?, row.try_get("object_key")?);
        if abort_one(storage, db, &bucket, &key, &id).await {
            aborted += 1;
        }
    }
    Ok(aborted)
}
