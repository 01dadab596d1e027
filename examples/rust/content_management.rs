//! Seed scenario "Dynamic Content Management": content processors registered
//! by capability, then found by capability and run.
//!
//! Run: `cargo run -p module-registry --example content_management`

use module_registry::{
    BoxError, CapabilityQuery, Error, ModuleConfig, ModuleRegistry, ModuleType, Result, Value,
};

/// A tiny Markdown subset: `# heading`, `*emphasis*`, paragraphs.
fn markdown(input: Value) -> std::result::Result<Value, BoxError> {
    let text = String::from_utf8_lossy(input.bytes_or_text()?).into_owned();
    let mut html = String::new();
    for block in text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()) {
        let escaped = block.replace('&', "&amp;").replace('<', "&lt;");
        let level = escaped.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) {
            html.push_str(&format!("<h{level}>{}</h{level}>", escaped[level..].trim()));
        } else {
            let mut out = String::new();
            for (i, part) in escaped.split('*').enumerate() {
                if i % 2 == 1 {
                    out.push_str(&format!("<em>{part}</em>"))
                } else {
                    out.push_str(part)
                }
            }
            html.push_str(&format!("<p>{out}</p>"));
        }
    }
    Ok(Value::Str(html))
}

/// Fits `{width, height}` into `max` pixels, keeping the aspect ratio.
fn resize(input: Value) -> std::result::Result<Value, BoxError> {
    let dim = |k: &str| {
        input
            .get(k)
            .and_then(Value::as_int)
            .ok_or_else(|| Error::invalid_input(format!("missing int {k:?}")))
    };
    let (w, h, max) = (dim("width")?, dim("height")?, dim("max")?);
    let scale = (max as f64 / w.max(h) as f64).min(1.0);
    Ok(Value::from_iter([
        ("width", ((w as f64 * scale).round() as i64)),
        ("height", ((h as f64 * scale).round() as i64)),
    ]))
}

/// Plans HLS segments for a video of `seconds`.
fn transcode_plan(input: Value) -> std::result::Result<Value, BoxError> {
    let seconds = input
        .as_int()
        .ok_or_else(|| Error::invalid_input("expected the duration in seconds"))?;
    let segments: Vec<Value> = (0..seconds)
        .step_by(6)
        .map(|s| Value::Str(format!("seg-{s:05}.ts")))
        .collect();
    Ok(Value::List(segments))
}

/// Extracts the text shown by `(...) Tj` operators of a PDF content stream.
fn pdf_text(input: Value) -> std::result::Result<Value, BoxError> {
    let data = String::from_utf8_lossy(input.bytes_or_text()?).into_owned();
    let mut out = Vec::new();
    for line in data.lines() {
        if let (Some(start), Some(end)) = (line.find('('), line.rfind(") Tj")) {
            out.push(line[start + 1..end].to_string());
        }
    }
    Ok(Value::Str(out.join(" ")))
}

/// A processor's implementation.
type Processor = fn(Value) -> std::result::Result<Value, BoxError>;

fn main() -> Result<()> {
    let registry = ModuleRegistry::new();

    // Register content processing modules
    let content_modules: Vec<(&str, Vec<&str>, Processor)> = vec![
        (
            "markdown-processor",
            vec!["markdown", "text-processing"],
            markdown,
        ),
        (
            "image-processor",
            vec!["image-processing", "resizing", "optimization"],
            resize,
        ),
        (
            "video-processor",
            vec!["video-processing", "transcoding", "streaming"],
            transcode_plan,
        ),
        (
            "pdf-processor",
            vec!["pdf-processing", "text-extraction", "conversion"],
            pdf_text,
        ),
    ];

    for (name, capabilities, implementation) in content_modules {
        let mut config = ModuleConfig::new()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(ModuleType::DataProcessor);

        for capability in capabilities {
            config = config.add_capability(capability);
        }

        registry.register(config.with_handler(implementation))?;
    }

    // Discover content processors by capability
    let query = CapabilityQuery::new().with_required_capabilities(vec!["text-processing"]);

    let text_processors = registry.discover_capabilities(query)?;
    for info in &text_processors {
        let html = registry
            .create(info.name())?
            .process("# Title\n\nSome *fine* text")?;
        println!("{} -> {}", info.name(), html.as_str().unwrap_or_default());
    }

    let resized = registry
        .create("image-processor")?
        .process(Value::from_iter([
            ("width", 4000i64),
            ("height", 3000),
            ("max", 800),
        ]))?;
    println!("image-processor -> {resized:?}");
    let plan = registry.create("video-processor")?.process(20i64)?;
    println!("video-processor -> {plan:?}");
    let text = registry
        .create("pdf-processor")?
        .process(b"BT\n(Hello) Tj\n(PDF) Tj\nET")?;
    println!("pdf-processor -> {text:?}");
    Ok(())
}
