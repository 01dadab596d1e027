//! Seed scenario "Modular Web Framework": auth, user, content and API modules,
//! each with a real implementation, wired together by the API gateway.
//!
//! Run: `cargo run -p module-registry --example web_framework`

use std::collections::BTreeMap;
use std::sync::Arc;

use module_registry::{
    BoxError, Error, Module, ModuleConfig, ModuleInstance, ModuleRegistry, ModuleType, Result,
    Value,
};
use parking_lot::RwLock;

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid_input(format!("request needs a string field {key:?}")))
}

fn main() -> Result<()> {
    let registry = ModuleRegistry::new();

    // Register web application modules
    let web_modules = vec![
        (
            "auth-module",
            ModuleType::Security,
            vec!["authentication", "authorization"],
        ),
        (
            "user-module",
            ModuleType::DataProcessor,
            vec!["user-management", "profile"],
        ),
        (
            "content-module",
            ModuleType::DataProcessor,
            vec!["content-management", "publishing"],
        ),
        (
            "api-module",
            ModuleType::Network,
            vec!["api-gateway", "routing"],
        ),
    ];

    // Shared application state the modules work on.
    let users: Arc<RwLock<BTreeMap<String, String>>> = Arc::default();
    let posts: Arc<RwLock<Vec<String>>> = Arc::default();

    for (name, module_type, capabilities) in web_modules {
        let mut config = ModuleConfig::new()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(module_type);

        for capability in capabilities {
            config = config.add_capability(capability);
        }

        let config = match name {
            "auth-module" => {
                let users = users.clone();
                config.with_handler(move |req| {
                    let user = field(&req, "user")?;
                    let token = field(&req, "token")?;
                    let ok = users.read().get(user).is_some_and(|t| t == token);
                    Ok(Value::Bool(ok))
                })
            }
            "user-module" => {
                let users = users.clone();
                config.with_handler(move |req| {
                    let user = field(&req, "user")?.to_string();
                    let token = format!("tok-{}", user.len() * 7919);
                    users.write().insert(user, token.clone());
                    Ok(Value::Str(token))
                })
            }
            "content-module" => {
                let posts = posts.clone();
                config.with_handler(move |req| {
                    let body = field(&req, "body")?;
                    let mut posts = posts.write();
                    posts.push(format!("<p>{}</p>", body.replace('<', "&lt;")));
                    Ok(Value::Int(posts.len() as i64))
                })
            }
            _ => config
                .with_dependency("auth-module", "^1")
                .with_dependency("content-module", "^1")
                .with_factory(|context| {
                    Ok(Box::new(Gateway {
                        auth: context.require("auth-module")?,
                        content: context.require("content-module")?,
                    }))
                }),
        };
        registry.register(config)?;
    }

    // Use modules in web application
    let auth_module = registry.create("auth-module")?;
    let user_module = registry.create("user-module")?;
    let content_module = registry.create("content-module")?;
    let api_module = registry.create("api-module")?;

    let token = user_module.process(Value::from_iter([("user", "ada")]))?;
    println!("signed up ada, token {token:?}");
    let login: Value = [
        ("user", "ada"),
        ("token", token.as_str().unwrap_or_default()),
    ]
    .into_iter()
    .collect();
    println!("auth-module says {:?}", auth_module.process(login.clone())?);
    println!(
        "content-module stored post #{:?}",
        content_module.process(Value::from_iter([("body", "hello")]))?
    );

    let mut request = login.as_map().cloned().unwrap_or_default();
    request.insert("body".into(), Value::from("<b>via the gateway</b>"));
    println!(
        "api-module -> {:?}",
        api_module.process(Value::Map(request))?
    );
    let forged: Value = [("user", "ada"), ("token", "guess"), ("body", "spam")]
        .into_iter()
        .collect();
    println!(
        "api-module with a forged token -> {:?}",
        api_module.process(forged).map_err(|e| e.report())
    );
    println!("posts: {:?}", posts.read());
    Ok(())
}

/// Routes a request: authenticate, then publish. Its factory is handed the
/// dependency instances the registry built for it.
struct Gateway {
    auth: Arc<ModuleInstance>,
    content: Arc<ModuleInstance>,
}

impl Module for Gateway {
    fn process(&self, req: Value) -> std::result::Result<Value, BoxError> {
        if self.auth.process(req.clone())? != Value::Bool(true) {
            return Err("401: bad credentials".into());
        }
        let id = self.content.process(req)?;
        Ok(Value::from_iter([
            ("status", Value::Int(201)),
            ("post", id),
        ]))
    }
}
