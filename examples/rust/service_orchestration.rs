//! Seed scenario "Service Orchestration": workflow modules run one after the
//! other on order data, then chained with `orchestrate`.
//!
//! Run: `cargo run -p module-registry --example service_orchestration`

use module_registry::{
    BoxError, Error, ModuleConfig, ModuleRegistry, ModuleType, Result, Value, WorkflowOrchestration,
};

/// Parses `item=qty,item=qty` into an order map, or passes a map through.
fn order(input: Value) -> std::result::Result<Value, BoxError> {
    if input.as_map().is_some() {
        return Ok(input);
    }
    let text = String::from_utf8_lossy(input.bytes_or_text()?).into_owned();
    let mut items = module_registry::ValueMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (item, qty) = pair.split_once('=').unwrap_or((pair, "1"));
        let qty: i64 = qty
            .trim()
            .parse()
            .map_err(|_| Error::invalid_input(format!("bad quantity in {pair:?}")))?;
        items.insert(item.trim().to_string(), Value::Int(qty));
    }
    Ok(Value::from_iter([("items", Value::Map(items))]))
}

fn price(item: &str) -> i64 {
    item.bytes().map(i64::from).sum::<i64>() % 50 + 5
}

/// Adds the total in cents.
fn payment(input: Value) -> std::result::Result<Value, BoxError> {
    let mut order = input
        .as_map()
        .cloned()
        .ok_or_else(|| Error::invalid_input("payment expects an order map"))?;
    let total: i64 = order
        .get("items")
        .and_then(Value::as_map)
        .map(|items| {
            items
                .iter()
                .map(|(k, q)| price(k) * q.as_int().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    order.insert("total".into(), Value::Int(total));
    Ok(Value::Map(order))
}

/// Reserves stock: refuses orders of more than 10 of anything.
fn inventory(input: Value) -> std::result::Result<Value, BoxError> {
    let mut order = input
        .as_map()
        .cloned()
        .ok_or_else(|| Error::invalid_input("inventory expects an order map"))?;
    let short: Vec<Value> = order
        .get("items")
        .and_then(Value::as_map)
        .map(|items| {
            items
                .iter()
                .filter(|(_, q)| q.as_int().unwrap_or(0) > 10)
                .map(|(k, _)| Value::from(k))
                .collect()
        })
        .unwrap_or_default();
    order.insert("reserved".into(), Value::Bool(short.is_empty()));
    order.insert("backordered".into(), Value::List(short));
    Ok(Value::Map(order))
}

/// Renders the customer notification.
fn notification(input: Value) -> std::result::Result<Value, BoxError> {
    let total = input.get("total").and_then(Value::as_int).unwrap_or(0);
    let reserved = input
        .get("reserved")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Value::Str(format!(
        "Your order of ${}.{:02} is {}",
        total / 100,
        total % 100,
        if reserved {
            "confirmed"
        } else {
            "partly backordered"
        }
    )))
}

/// One workflow module's implementation.
type Step = fn(Value) -> std::result::Result<Value, BoxError>;

fn main() -> Result<()> {
    // The seed's own call, kept compiling (`ModuleRegistry::builder()` is the new way).
    #[allow(deprecated)]
    let registry = ModuleRegistry::new().with_workflow_orchestration(true);

    // Register workflow modules
    let workflow_modules: Vec<(&str, &str, Step)> = vec![
        ("order-workflow", "Order processing workflow", order),
        ("payment-workflow", "Payment processing workflow", payment),
        (
            "inventory-workflow",
            "Inventory management workflow",
            inventory,
        ),
        (
            "notification-workflow",
            "Notification workflow",
            notification,
        ),
    ];

    for (name, description, implementation) in workflow_modules {
        let config = ModuleConfig::new()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(ModuleType::DataProcessor)
            .with_metadata("description", description)
            .with_metadata("workflow_type", "orchestration");

        registry.register(config.with_handler(implementation))?;
    }

    // Orchestrate workflow
    let order_workflow = registry.create("order-workflow")?;
    let payment_workflow = registry.create("payment-workflow")?;
    let inventory_workflow = registry.create("inventory-workflow")?;
    let notification_workflow = registry.create("notification-workflow")?;

    // Execute workflow
    let order_data = b"apple=3, pear=2";
    let order_result = order_workflow.process(order_data)?;

    let payment_result = payment_workflow.process(order_result)?;

    let inventory_result = inventory_workflow.process(payment_result)?;

    let notification_result = notification_workflow.process(inventory_result)?;
    println!(
        "step by step: {}",
        notification_result.as_str().unwrap_or_default()
    );

    // The same chain, run by the registry.
    let chain = WorkflowOrchestration::new("checkout")
        .step("order-workflow")
        .step("payment-workflow")
        .step("inventory-workflow")
        .step("notification-workflow");
    let message = registry.orchestrate(&chain, b"plum=12")?;
    println!("orchestrated: {}", message.as_str().unwrap_or_default());
    Ok(())
}
