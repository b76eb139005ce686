//! Finding the files in a model's output (README, "fal's API": outputs): `images[]`, `image`, `video`,
//! `videos[]`, `audio`, `audio_url`, then any object with a string `url` anywhere; `data:` URIs
//! included. Hints (type, size, dimensions) are carried along but never trusted.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct OutputFile {
    pub url: String,
    pub content_type: Option<String>,
    pub file_size: Option<u64>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub duration_secs: Option<f64>,
    /// The model's own `has_nsfw_concepts` verdict for this file, when it gave one.
    pub nsfw: Option<bool>,
}

/// The files of `payload`, in a stable order (the same payload always yields the same list, so
/// a resumed persist writes the same keys).
pub fn extract(payload: &Value) -> Vec<OutputFile> {
    let nsfw: Vec<Option<bool>> = match payload.get("has_nsfw_concepts") {
        Some(Value::Array(flags)) => flags.iter().map(Value::as_bool).collect(),
        Some(Value::Bool(flag)) => vec![Some(*flag)],
        _ => Vec::new(),
    };
    let mut files = Vec::new();
    for key in ["images", "image", "video", "videos", "audio", "audio_url"] {
        match payload.get(key) {
            Some(Value::Array(items)) => files.extend(items.iter().filter_map(file)),
            Some(Value::String(url)) if key == "audio_url" => files.extend(file(&serde_json::json!({ "url": url }))),
            Some(item) => files.extend(file(item)),
            None => {}
        }
    }
    if files.is_empty() {
        walk(payload, &mut files, 0);
    }
    for (n, file) in files.iter_mut().enumerate() {
        file.nsfw = nsfw.get(n).copied().flatten();
    }
    files
}

fn file(item: &Value) -> Option<OutputFile> {
    let url = item.get("url")?.as_str()?.trim();
    if url.is_empty() {
        return None;
    }
    let number = |name: &str| item.get(name).and_then(Value::as_u64);
    Some(OutputFile {
        url: url.to_owned(),
        content_type: item.get("content_type").and_then(Value::as_str).map(str::to_owned),
        file_size: number("file_size"),
        width: number("width"),
        height: number("height"),
        duration_secs: item.get("duration").and_then(Value::as_f64),
        nsfw: None,
    })
}

fn walk(value: &Value, files: &mut Vec<OutputFile>, depth: usize) {
    if depth > 8 {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(found) = file(value) {
                files.push(found);
                return;
            }
            for item in map.values() {
                walk(item, files, depth + 1);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, files, depth + 1)),
        _ => {}
    }
}

/// The model's text about its output (`description`), if any.
pub fn description(payload: &Value) -> Option<String> {
    payload.get("description").and_then(Value::as_str).map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_the_known_keys_in_order_with_their_hints() {
        let payload = json!({
            "images": [
                {"url": "https://v3.fal.media/a.png", "content_type": "image/png", "width": 1024, "height": 768, "file_size": 10},
                {"url": "https://v3.fal.media/b.png"}
            ],
            "video": {"url": "https://v3.fal.media/c.mp4", "duration": 5.0},
            "has_nsfw_concepts": [false, true],
            "description": " two images "
        });
        let files = extract(&payload);
        assert_eq!(
            files.iter().map(|f| f.url.as_str()).collect::<Vec<_>>(),
            ["https://v3.fal.media/a.png", "https://v3.fal.media/b.png", "https://v3.fal.media/c.mp4"]
        );
        assert_eq!((files[0].width, files[0].height, files[0].file_size), (Some(1024), Some(768), Some(10)));
        assert_eq!(files[1].nsfw, Some(true));
        assert_eq!(files[2].duration_secs, Some(5.0));
        assert_eq!(description(&payload).as_deref(), Some("two images"));
    }

    #[test]
    fn falls_back_to_any_object_with_a_url() {
        let payload = json!({"model_mesh": {"url": "https://v3.fal.media/m.glb"}, "extra": [{"nested": {"url": "data:image/png;base64,AAAA"}}], "seed": 3});
        let urls: Vec<String> = extract(&payload).into_iter().map(|f| f.url).collect();
        assert_eq!(urls.len(), 2);
        assert!(urls.contains(&"data:image/png;base64,AAAA".to_owned()));
        assert!(extract(&json!({"seed": 1, "images": []})).is_empty());
        assert_eq!(extract(&json!({"audio_url": "https://v3.fal.media/s.mp3"}))[0].url, "https://v3.fal.media/s.mp3");
    }
}
