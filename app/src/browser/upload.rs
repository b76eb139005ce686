//! One file's upload in the browser: its SHA-256, a ticket from the server, an XHR PUT straight
//! to storage (XHR because fetch cannot report upload progress), then confirm.
//!
//! The checksum is computed here in WebAssembly, not with WebCrypto: browsers offer
//! `crypto.subtle` only in secure contexts (https or localhost), and the first place most people
//! run Darkroom is plain http on their home network.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Promise, Uint8Array};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{File, ProgressEvent, XmlHttpRequest};

use crate::api::uploads::{UploadTicket, confirm_upload, delete_upload, issue_upload};
use crate::upload_queue::{Item, Phase, Queue};

/// Attempts per PUT when the network or storage fails transiently.
const ATTEMPTS: u8 = 3;

thread_local! {
    /// The request in flight for each queue item, so Cancel can abort it.
    static ACTIVE: RefCell<HashMap<u64, (XmlHttpRequest, Option<String>)>> = RefCell::new(HashMap::new());
    static NEXT_KEY: RefCell<u64> = const { RefCell::new(0) };
}

pub fn from_input(queue: Queue, input: &web_sys::HtmlInputElement) {
    if let Some(files) = input.files() {
        enqueue(queue, (0..files.length()).filter_map(|i| files.get(i)).collect());
    }
    // Picking the same file again must fire `change` again.
    input.set_value("");
}

pub fn from_drop(queue: Queue, event: &web_sys::DragEvent) {
    if let Some(files) = event.data_transfer().and_then(|d| d.files()) {
        enqueue(queue, (0..files.length()).filter_map(|i| files.get(i)).collect());
    }
}

pub fn from_paste(queue: Queue, event: &web_sys::ClipboardEvent) {
    let Some(files) = event.clipboard_data().and_then(|d| d.files()) else { return };
    let files: Vec<File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
    if !files.is_empty() {
        event.prevent_default();
        enqueue(queue, files);
    }
}

fn enqueue(queue: Queue, files: Vec<File>) {
    for file in files {
        let key = NEXT_KEY.with(|k| {
            let mut k = k.borrow_mut();
            *k += 1;
            *k
        });
        let item = Item {
            key,
            name: file.name(),
            size: file.size() as u64,
            preview: web_sys::Url::create_object_url_with_blob(&file).ok(),
            phase: RwSignal::new(Phase::Hashing),
            upload_id: RwSignal::new(None),
        };
        queue.items.update(|items| items.push(item.clone()));
        leptos::task::spawn_local(async move {
            let outcome = run(&item, &file).await;
            ACTIVE.with(|active| active.borrow_mut().remove(&key));
            if item.phase.get_untracked() == Phase::Canceled {
                return;
            }
            match outcome {
                Ok(upload_id) => {
                    item.upload_id.set(upload_id);
                    item.phase.set(Phase::Ready);
                    queue.completed.update(|n| *n += 1);
                }
                Err(message) => item.phase.set(Phase::Failed(message)),
            }
        });
    }
}

/// Frees a `blob:` preview (the browser keeps the file in memory while it exists).
pub fn revoke_preview(item: &Item) {
    if let Some(url) = &item.preview {
        let _ = web_sys::Url::revoke_object_url(url);
    }
}

/// Frees the item's `blob:` preview (the browser keeps the file in memory while it exists).
pub fn release_preview(queue: Queue, key: u64) {
    let preview = queue.items.get_untracked().into_iter().find(|i| i.key == key).and_then(|i| i.preview);
    if let Some(url) = preview {
        let _ = web_sys::Url::revoke_object_url(&url);
    }
}

/// Stops an upload: aborts the PUT and cancels its ticket on the server.
pub fn cancel(queue: Queue, key: u64) {
    if let Some(item) = queue.items.get_untracked().into_iter().find(|i| i.key == key) {
        item.phase.set(Phase::Canceled);
    }
    if let Some((xhr, ticket)) = ACTIVE.with(|active| active.borrow_mut().remove(&key)) {
        let _ = xhr.abort();
        if let Some(ticket) = ticket {
            leptos::task::spawn_local(async move {
                let _ = delete_upload(ticket).await;
            });
        }
    }
}

/// Uploads and confirms `file`; the id of the stored image, or `None` when it was canceled.
async fn run(item: &Item, file: &File) -> Result<Option<String>, String> {
    let digest = sha256_hex(file).await?;
    let content_type = content_type(file);
    let mut ticket = issue(&content_type, file, &digest).await?;
    let mut reissued = false;
    let mut attempt = 1;
    loop {
        if item.phase.get_untracked() == Phase::Canceled {
            return Ok(None);
        }
        item.phase.set(Phase::Uploading(0));
        let (status, body) = put(item, &ticket, file).await?;
        match status {
            200..=299 => break,
            0 if item.phase.get_untracked() == Phase::Canceled => return Ok(None),
            400 | 403 if body.contains("xpired") && !reissued => {
                // The link expired (a slow or interrupted connection): ask for a fresh one.
                reissued = true;
                ticket = issue(&content_type, file, &digest).await?;
            }
            0 | 408 | 429 | 500..=599 if attempt < ATTEMPTS => {
                item.phase.set(Phase::Retrying { attempt, of: ATTEMPTS - 1 });
                sleep(1000 * 2_i32.pow(u32::from(attempt) - 1)).await;
                attempt += 1;
            }
            0 => return Err("The connection failed while uploading. Check your network and try again.".into()),
            other => return Err(storage_refusal(other, &body)),
        }
    }
    item.phase.set(Phase::Verifying);
    let mut result = confirm_upload(ticket.upload_id.clone()).await;
    if matches!(&result, Err(e) if e.code == "upload.not_uploaded") {
        sleep(1000).await;
        result = confirm_upload(ticket.upload_id).await;
    }
    result.map(|image| Some(image.id)).map_err(|e| e.message)
}

async fn issue(content_type: &str, file: &File, digest: &str) -> Result<UploadTicket, String> {
    issue_upload(content_type.to_owned(), file.size() as u64, digest.to_owned(), Some(file.name()))
        .await
        .map_err(|e| e.message)
}

/// The browser's type, or one from the extension when the browser does not know (HEIC often).
fn content_type(file: &File) -> String {
    let declared = file.type_();
    if !declared.is_empty() && declared != "application/octet-stream" {
        return declared;
    }
    let name = file.name().to_ascii_lowercase();
    let extension = name.rsplit('.').next().unwrap_or_default();
    match extension {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "avif" => "image/avif",
        _ => "application/octet-stream",
    }
    .to_owned()
}

/// How much of the file is read into memory at once while hashing.
const HASH_CHUNK: f64 = 2.0 * 1024.0 * 1024.0;

/// The file's SHA-256, read a slice at a time so a large photo is never held twice, and the
/// page stays responsive between slices.
async fn sha256_hex(file: &File) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    let failed = |_| "This browser could not read the file.".to_owned();
    let size = file.size();
    let mut hasher = Sha256::new();
    let mut chunk = Vec::new();
    let mut start = 0.0;
    while start < size {
        let end = (start + HASH_CHUNK).min(size);
        let slice = file.slice_with_f64_and_f64(start, end).map_err(failed)?;
        let buffer = JsFuture::from(slice.array_buffer()).await.map_err(failed)?;
        let view = Uint8Array::new(&buffer);
        chunk.resize(view.length() as usize, 0);
        view.copy_to(&mut chunk);
        if chunk.is_empty() {
            // The file shrank after it was picked: what we would hash is not what was chosen.
            return Err("This browser could not read the file.".into());
        }
        hasher.update(&chunk);
        start += chunk.len() as f64;
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// PUTs the file with exactly the signed headers; resolves with the status (0 for a network
/// error or an abort) and the body.
async fn put(item: &Item, ticket: &UploadTicket, file: &File) -> Result<(u16, String), String> {
    let failed = |_| "This browser could not start the upload.".to_owned();
    let xhr = XmlHttpRequest::new().map_err(failed)?;
    xhr.open_with_async("PUT", &ticket.url, true).map_err(failed)?;
    for (name, value) in &ticket.headers {
        // The browser sets these itself (and refuses to be told).
        if !matches!(name.to_ascii_lowercase().as_str(), "content-length" | "host") {
            xhr.set_request_header(name, value).map_err(failed)?;
        }
    }
    let phase = item.phase;
    let progress = Closure::<dyn FnMut(ProgressEvent)>::new(move |event: ProgressEvent| {
        if event.length_computable() && event.total() > 0.0 {
            phase.set(Phase::Uploading((event.loaded() / event.total() * 100.0).floor().min(100.0) as u8));
        }
    });
    xhr.upload().map_err(failed)?.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    let finished = Promise::new(&mut |resolve, _reject| xhr.set_onloadend(Some(&resolve)));
    ACTIVE.with(|active| active.borrow_mut().insert(item.key, (xhr.clone(), Some(ticket.upload_id.clone()))));
    xhr.send_with_opt_blob(Some(file)).map_err(failed)?;
    let _ = JsFuture::from(finished).await;
    drop(progress);
    let status = xhr.status().unwrap_or(0);
    Ok((status, xhr.response_text().ok().flatten().unwrap_or_default()))
}

fn storage_refusal(status: u16, body: &str) -> String {
    let code = body.split("<Code>").nth(1).and_then(|rest| rest.split("</Code>").next()).unwrap_or_default();
    match code {
        "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch" => {
            "The file changed while it was being uploaded. Try again.".into()
        }
        _ => format!(
            "Storage refused the upload ({status}{}).",
            if code.is_empty() { String::new() } else { format!(" {code}") }
        ),
    }
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}
