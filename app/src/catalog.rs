//! The models Darkroom can run. Each entry names its fal endpoint, what it produces and the
//! inputs it takes, with limits; the Create tab renders its form from the entry and the server
//! validates against the same entry. Adding a model is adding an entry here.

use serde_json::{Map, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Image,
    Video,
}

#[derive(Debug, PartialEq)]
pub struct Model {
    /// The fal endpoint id, which is also the model's id in Darkroom.
    pub endpoint: &'static str,
    pub name: &'static str,
    pub summary: &'static str,
    pub output: Output,
    pub fields: &'static [Field],
    /// Ready-made prompts (the hairstyles of the try-on), filling the `prompt` field.
    pub presets: &'static [Preset],
}

#[derive(Debug, PartialEq)]
pub struct Field {
    /// The input's name in fal's schema.
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub required: bool,
}

#[derive(Debug, PartialEq)]
pub enum Kind {
    Text {
        max_chars: usize,
        multiline: bool,
    },
    /// Several of the user's uploads, sent as an array of URLs.
    Images {
        min: usize,
        max: usize,
    },
    /// One of the user's uploads, sent as one URL.
    Image,
    Choice {
        options: &'static [&'static str],
        default: &'static str,
    },
    Integer {
        min: i64,
        max: i64,
        default: Option<i64>,
    },
    Number {
        min: f64,
        max: f64,
        step: f64,
        default: f64,
    },
    Toggle {
        default: bool,
    },
}

#[derive(Debug, PartialEq)]
pub struct Preset {
    /// Stable, for the API (`hairstyleId`).
    pub id: &'static str,
    pub label: &'static str,
    pub prompt: &'static str,
}

const SEED: Field = Field {
    name: "seed",
    label: "Seed",
    kind: Kind::Integer { min: 0, max: 4_294_967_295, default: None },
    required: false,
};
const NUM_IMAGES: Field = Field {
    name: "num_images",
    label: "Images",
    kind: Kind::Integer { min: 1, max: 4, default: Some(1) },
    required: false,
};
/// The required text input every model has.
const fn prompt(label: &'static str, max_chars: usize) -> Field {
    Field { name: "prompt", label, kind: Kind::Text { max_chars, multiline: true }, required: true }
}
const NANO_RATIOS: &[&str] = &["1:1", "21:9", "16:9", "3:2", "4:3", "5:4", "4:5", "3:4", "2:3", "9:16"];
const NANO_FORMAT: Field = Field {
    name: "output_format",
    label: "Format",
    kind: Kind::Choice { options: &["png", "jpeg", "webp"], default: "png" },
    required: false,
};

pub const HAIRSTYLE_TRY_ON: &str = "fal-ai/nano-banana/edit";

pub static MODELS: &[Model] = &[
    Model {
        endpoint: HAIRSTYLE_TRY_ON,
        name: "Hairstyle try-on / image edit",
        summary: "Edits your photos from an instruction: try a hairstyle on a selfie, or change anything else.",
        output: Output::Image,
        fields: &[
            prompt("Instruction", 5000),
            Field { name: "image_urls", label: "Photos", kind: Kind::Images { min: 1, max: 4 }, required: true },
            NUM_IMAGES,
            Field {
                name: "aspect_ratio",
                label: "Aspect ratio",
                kind: Kind::Choice {
                    options: &["auto", "1:1", "21:9", "16:9", "3:2", "4:3", "5:4", "4:5", "3:4", "2:3", "9:16"],
                    default: "auto",
                },
                required: false,
            },
            NANO_FORMAT,
            SEED,
        ],
        presets: HAIRSTYLES,
    },
    Model {
        endpoint: "fal-ai/nano-banana",
        name: "Text to image (Nano Banana)",
        summary: "Creates images from a description.",
        output: Output::Image,
        fields: &[
            prompt("Prompt", 5000),
            NUM_IMAGES,
            Field {
                name: "aspect_ratio",
                label: "Aspect ratio",
                kind: Kind::Choice { options: NANO_RATIOS, default: "1:1" },
                required: false,
            },
            NANO_FORMAT,
            SEED,
        ],
        presets: &[],
    },
    Model {
        endpoint: "fal-ai/flux/dev",
        name: "Text to image (FLUX.1 dev)",
        summary: "Creates images from a description, with control over size, steps and guidance.",
        output: Output::Image,
        fields: &[
            prompt("Prompt", 5000),
            Field {
                name: "image_size",
                label: "Size",
                kind: Kind::Choice {
                    options: &[
                        "square_hd",
                        "square",
                        "portrait_4_3",
                        "portrait_16_9",
                        "landscape_4_3",
                        "landscape_16_9",
                    ],
                    default: "landscape_4_3",
                },
                required: false,
            },
            Field {
                name: "num_inference_steps",
                label: "Steps",
                kind: Kind::Integer { min: 1, max: 50, default: Some(28) },
                required: false,
            },
            Field {
                name: "guidance_scale",
                label: "Guidance",
                kind: Kind::Number { min: 1.0, max: 20.0, step: 0.5, default: 3.5 },
                required: false,
            },
            NUM_IMAGES,
            SEED,
            Field {
                name: "enable_safety_checker",
                label: "Safety checker",
                kind: Kind::Toggle { default: true },
                required: false,
            },
            Field {
                name: "output_format",
                label: "Format",
                kind: Kind::Choice { options: &["jpeg", "png"], default: "jpeg" },
                required: false,
            },
        ],
        presets: &[],
    },
    Model {
        endpoint: "fal-ai/kling-video/v2.1/standard/image-to-video",
        name: "Image to video (Kling 2.1)",
        summary: "Animates one of your photos into a short video.",
        output: Output::Video,
        fields: &[
            prompt("Motion", 2500),
            Field { name: "image_url", label: "Photo", kind: Kind::Image, required: true },
            Field {
                name: "duration",
                label: "Seconds",
                kind: Kind::Choice { options: &["5", "10"], default: "5" },
                required: false,
            },
            Field {
                name: "negative_prompt",
                label: "Avoid",
                kind: Kind::Text { max_chars: 2500, multiline: false },
                required: false,
            },
            Field {
                name: "cfg_scale",
                label: "Prompt adherence",
                kind: Kind::Number { min: 0.0, max: 1.0, step: 0.05, default: 0.5 },
                required: false,
            },
        ],
        presets: &[],
    },
];

/// The try-on's styles. Each prompt asks for the hair alone to change, so the person stays
/// recognisably themselves.
pub static HAIRSTYLES: &[Preset] = &[
    Preset {
        id: "bob-cut",
        label: "Bob cut",
        prompt: "Give the person in this photo a sleek chin-length bob cut. Keep their face, identity, expression, skin, clothing, lighting and background exactly as they are; change only the hair. Photorealistic.",
    },
    Preset {
        id: "pixie-cut",
        label: "Pixie cut",
        prompt: "Give the person in this photo a short textured pixie cut. Keep their face, identity, expression, skin, clothing, lighting and background exactly as they are; change only the hair. Photorealistic.",
    },
    Preset {
        id: "curly-afro",
        label: "Curly afro",
        prompt: "Give the person in this photo a full, rounded curly afro. Keep their face, identity, expression, skin, clothing, lighting and background exactly as they are; change only the hair. Photorealistic.",
    },
    Preset {
        id: "buzz-cut",
        label: "Buzz cut",
        prompt: "Give the person in this photo a very short buzz cut. Keep their face, identity, expression, skin, clothing, lighting and background exactly as they are; change only the hair. Photorealistic.",
    },
    Preset {
        id: "long-waves",
        label: "Long waves",
        prompt: "Give the person in this photo long, loose beach waves past the shoulders. Keep their face, identity, expression, skin, clothing, lighting and background exactly as they are; change only the hair. Photorealistic.",
    },
    Preset {
        id: "braids",
        label: "Braids",
        prompt: "Give the person in this photo long box braids. Keep their face, identity, expression, skin, clothing, lighting and background exactly as they are; change only the hair. Photorealistic.",
    },
    Preset {
        id: "undercut",
        label: "Undercut",
        prompt: "Give the person in this photo an undercut: short sides with longer hair swept back on top. Keep their face, identity, expression, skin, clothing, lighting and background exactly as they are; change only the hair. Photorealistic.",
    },
    Preset {
        id: "platinum-blonde",
        label: "Platinum blonde",
        prompt: "Keep the person's haircut but dye their hair platinum blonde. Keep their face, identity, expression, skin, clothing, lighting and background exactly as they are; change only the hair colour. Photorealistic.",
    },
];

/// The inputs a job's price can depend on: how many images, how large, how many seconds.
pub const PRICED: &[&str] = &["num_images", "image_size", "duration"];

pub fn find(endpoint: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.endpoint == endpoint)
}

impl Model {
    /// Whether a job of this model with these inputs is a hairstyle try-on: one of the model's
    /// styles, maybe followed by the user's own words. The same model editing a photo from any
    /// other instruction is not, and needs no face.
    pub fn is_try_on(&self, params: &Map<String, Value>) -> bool {
        let Some(prompt) = params.get("prompt").and_then(Value::as_str) else { return false };
        let prompt = prompt.trim_start();
        self.presets.iter().any(|style| prompt.starts_with(style.prompt))
    }
}

/// An input the catalog refused, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid { field: field.to_owned(), message: message.into() }
}

/// What a valid request becomes: the model's scalar inputs (defaults filled in) and the upload
/// ids for its image field, which are turned into URLs only when the job is submitted.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    pub params: Map<String, Value>,
    pub images: Vec<String>,
}

impl Model {
    /// The field that takes the user's uploads, if the model takes any.
    pub fn image_field(&self) -> Option<&Field> {
        self.fields.iter().find(|f| matches!(f.kind, Kind::Images { .. } | Kind::Image))
    }

    /// The [`PRICED`] inputs of `params`, each as given when valid, else its default: what a
    /// price is estimated from while the rest of the form is still being filled in.
    pub fn priced_inputs(&self, params: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for field in self.fields.iter().filter(|f| PRICED.contains(&f.name)) {
            let raw = params.get(field.name).filter(|v| !is_blank(v));
            let value = match &field.kind {
                Kind::Choice { options, default } => {
                    let chosen = raw.and_then(as_text).filter(|c| options.contains(&c.as_str()));
                    Value::String(chosen.unwrap_or_else(|| (*default).to_owned()))
                }
                Kind::Integer { min, max, default } => {
                    let given =
                        raw.and_then(as_number).filter(|n| n.fract() == 0.0 && *n >= *min as f64 && *n <= *max as f64);
                    match given.map(|n| n as i64).or(*default) {
                        Some(n) => Value::from(n),
                        None => continue,
                    }
                }
                _ => continue,
            };
            out.insert(field.name.to_owned(), value);
        }
        out
    }

    /// Checks `params` (values as JSON, or as the strings a form sends) and `images` against
    /// the entry. Unknown inputs are refused rather than passed on to the provider.
    pub fn validate(&self, params: &Map<String, Value>, images: &[String]) -> Result<Validated, Invalid> {
        for name in params.keys() {
            let known =
                self.fields.iter().any(|f| f.name == name && !matches!(f.kind, Kind::Images { .. } | Kind::Image));
            if !known {
                return Err(invalid(name, format!("{} does not take an input named {name:?}.", self.name)));
            }
        }
        let mut out = Map::new();
        for field in self.fields {
            let raw = params.get(field.name).filter(|v| !is_blank(v));
            let value = match (&field.kind, raw) {
                (Kind::Images { .. } | Kind::Image, _) => continue,
                (_, None) if field.required => {
                    return Err(invalid(field.name, format!("{} is required.", field.label)));
                }
                (Kind::Text { .. }, None) => continue,
                (Kind::Text { max_chars, .. }, Some(v)) => Value::String(text(field, v, *max_chars)?),
                (Kind::Choice { default, .. }, None) => Value::String((*default).to_owned()),
                (Kind::Choice { options, .. }, Some(v)) => {
                    let chosen = as_text(v).ok_or_else(|| invalid(field.name, "must be one of the listed options"))?;
                    if !options.contains(&chosen.as_str()) {
                        return Err(invalid(
                            field.name,
                            format!("{} must be one of: {}.", field.label, options.join(", ")),
                        ));
                    }
                    Value::String(chosen)
                }
                (Kind::Integer { default: None, .. }, None) => continue,
                (Kind::Integer { default: Some(d), .. }, None) => Value::from(*d),
                (Kind::Integer { min, max, .. }, Some(v)) => {
                    let n = as_number(v)
                        .filter(|n| n.fract() == 0.0)
                        .ok_or_else(|| invalid(field.name, format!("{} must be a whole number.", field.label)))?;
                    if n < *min as f64 || n > *max as f64 {
                        return Err(invalid(field.name, format!("{} must be between {min} and {max}.", field.label)));
                    }
                    Value::from(n as i64)
                }
                (Kind::Number { default, .. }, None) => Value::from(*default),
                (Kind::Number { min, max, .. }, Some(v)) => {
                    let n = as_number(v)
                        .filter(|n| n.is_finite())
                        .ok_or_else(|| invalid(field.name, format!("{} must be a number.", field.label)))?;
                    if n < *min || n > *max {
                        return Err(invalid(field.name, format!("{} must be between {min} and {max}.", field.label)));
                    }
                    Value::from(n)
                }
                (Kind::Toggle { default }, None) => Value::Bool(*default),
                (Kind::Toggle { .. }, Some(v)) => Value::Bool(
                    as_bool(v).ok_or_else(|| invalid(field.name, format!("{} must be on or off.", field.label)))?,
                ),
            };
            out.insert(field.name.to_owned(), value);
        }
        let images = self.validate_images(images)?;
        Ok(Validated { params: out, images })
    }

    fn validate_images(&self, images: &[String]) -> Result<Vec<String>, Invalid> {
        let Some(field) = self.image_field() else {
            return if images.is_empty() {
                Ok(Vec::new())
            } else {
                Err(invalid("images", format!("{} does not take images.", self.name)))
            };
        };
        let (min, max) = match field.kind {
            Kind::Images { min, max } => (min, max),
            _ => (1, 1),
        };
        // Counted before anything else is done with them: a request cannot make us look at more
        // ids than the model takes.
        if images.len() > max {
            let what = if max == 1 { "one image".to_owned() } else { format!("at most {max} images") };
            return Err(invalid(field.name, format!("{} takes {what}.", self.name)));
        }
        let mut seen = std::collections::HashSet::with_capacity(images.len());
        let mut unique: Vec<String> = Vec::with_capacity(images.len());
        for id in images {
            let id = id.trim();
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Err(invalid(field.name, "That is not one of your images."));
            }
            if seen.insert(id) {
                unique.push(id.to_owned());
            }
        }
        if unique.len() < min {
            let what = if min == 1 { "an image".to_owned() } else { format!("at least {min} images") };
            return Err(invalid(field.name, format!("{} needs {what}.", self.name)));
        }
        Ok(unique)
    }
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn text(field: &Field, value: &Value, max_chars: usize) -> Result<String, Invalid> {
    let s = value.as_str().ok_or_else(|| invalid(field.name, format!("{} must be text.", field.label)))?.trim();
    let count = s.chars().count();
    if count > max_chars {
        return Err(invalid(field.name, format!("{} is {count} characters; the limit is {max_chars}.", field.label)));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(invalid(field.name, format!("{} contains control characters.", field.label)));
    }
    Ok(s.to_owned())
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "1" | "yes" => Some(true),
            "false" | "off" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const ID: &str = "0190f5a0-0000-7000-8000-000000000001";

    #[test]
    fn every_model_is_well_formed() {
        for model in MODELS {
            assert!(model.fields.iter().any(|f| f.name == "prompt" && f.required), "{}", model.endpoint);
            for field in model.fields {
                if let Kind::Choice { options, default } = field.kind {
                    assert!(options.contains(&default), "{}.{}", model.endpoint, field.name);
                }
            }
            let names: Vec<_> = model.fields.iter().map(|f| f.name).collect();
            let unique: std::collections::HashSet<_> = names.iter().collect();
            assert_eq!(names.len(), unique.len(), "{} names a field twice: {names:?}", model.endpoint);
        }
        let endpoints: std::collections::HashSet<_> = MODELS.iter().map(|m| m.endpoint).collect();
        assert_eq!(endpoints.len(), MODELS.len(), "a model is listed twice");
        assert!(find(HAIRSTYLE_TRY_ON).is_some_and(|m| m.presets.len() >= 3));
    }

    #[test]
    fn fills_defaults_and_converts_form_strings() {
        let flux = find("fal-ai/flux/dev").unwrap();
        let v = flux
            .validate(&params(json!({"prompt": " a cat ", "num_inference_steps": "30", "seed": "7", "enable_safety_checker": "off"})), &[])
            .unwrap();
        assert_eq!(v.params["prompt"], "a cat");
        assert_eq!(v.params["num_inference_steps"], 30);
        assert_eq!(v.params["seed"], 7);
        assert_eq!(v.params["guidance_scale"], 3.5);
        assert_eq!(v.params["image_size"], "landscape_4_3");
        assert_eq!(v.params["enable_safety_checker"], false);
        assert!(v.images.is_empty());
    }

    #[test]
    fn refuses_bad_input_naming_the_field() {
        let flux = find("fal-ai/flux/dev").unwrap();
        let field = |p: Value| flux.validate(&params(p), &[]).unwrap_err().field;
        assert_eq!(field(json!({})), "prompt");
        assert_eq!(field(json!({"prompt": "   "})), "prompt");
        assert_eq!(field(json!({"prompt": "x".repeat(5001)})), "prompt");
        assert_eq!(field(json!({"prompt": "x", "num_inference_steps": 51})), "num_inference_steps");
        assert_eq!(field(json!({"prompt": "x", "num_inference_steps": 2.5})), "num_inference_steps");
        assert_eq!(field(json!({"prompt": "x", "guidance_scale": "NaN"})), "guidance_scale");
        assert_eq!(field(json!({"prompt": "x", "image_size": "huge"})), "image_size");
        assert_eq!(field(json!({"prompt": "x", "sync_mode": true})), "sync_mode", "unknown inputs never reach fal");
        assert_eq!(field(json!({"prompt": "x", "image_urls": ["https://evil"]})), "image_urls");
        assert_eq!(flux.validate(&params(json!({"prompt": "x"})), &[ID.into()]).unwrap_err().field, "images");
    }

    #[test]
    fn a_try_on_is_a_style_with_or_without_more_words() {
        let edit = find(HAIRSTYLE_TRY_ON).unwrap();
        let with = |prompt: &str| edit.is_try_on(json!({ "prompt": prompt }).as_object().unwrap());
        let style = HAIRSTYLES[0].prompt;
        assert!(with(style));
        assert!(with(&format!("  {style} Make it auburn.")));
        assert!(!with("Replace the sky with a sunset."));
        assert!(!with(&style[..style.len() / 2]));
        assert!(!edit.is_try_on(&Map::new()));
        assert!(!find("fal-ai/nano-banana").unwrap().is_try_on(json!({ "prompt": style }).as_object().unwrap()));
    }

    #[test]
    fn image_fields_count_and_dedupe_uploads() {
        let edit = find(HAIRSTYLE_TRY_ON).unwrap();
        let p = params(json!({"prompt": "a bob cut"}));
        assert_eq!(edit.validate(&p, &[]).unwrap_err().field, "image_urls");
        assert_eq!(edit.validate(&p, &[ID.into(), ID.into()]).unwrap().images, vec![ID.to_owned()]);
        assert_eq!(edit.validate(&p, &["../etc".into()]).unwrap_err().field, "image_urls");
        let five: Vec<String> = (1..=5).map(|n| format!("0190f5a0-0000-7000-8000-00000000000{n}")).collect();
        assert_eq!(edit.validate(&p, &five).unwrap_err().field, "image_urls");
        // A flood of short ids is refused by its count, before any id is looked at.
        let flood = vec!["a".to_owned(); 500_000];
        let refused = edit.validate(&p, &flood).unwrap_err();
        assert_eq!(
            (refused.field.as_str(), refused.message.contains("at most")),
            ("image_urls", true),
            "{}",
            refused.message
        );

        let video = find("fal-ai/kling-video/v2.1/standard/image-to-video").unwrap();
        let v = video.validate(&params(json!({"prompt": "waves"})), &[ID.into()]).unwrap();
        assert_eq!(v.params["duration"], "5");
        let video = find("fal-ai/kling-video/v2.1/standard/image-to-video").unwrap();
        let priced = video
            .priced_inputs(&json!({"duration": "10", "prompt": "x", "cfg_scale": "0.5"}).as_object().unwrap().clone());
        assert_eq!(Value::Object(priced), json!({"duration": "10"}));
        let nano = find("fal-ai/nano-banana").unwrap();
        let priced = nano.priced_inputs(&json!({"num_images": "9", "seed": "3"}).as_object().unwrap().clone());
        assert_eq!(Value::Object(priced), json!({"num_images": 1}), "out of range falls back to the default");
        assert_eq!(video.validate(&params(json!({"prompt": "w"})), &five[..2]).unwrap_err().field, "image_url");
    }
}
