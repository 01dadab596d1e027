//! The one picture of a workflow (feature `pictures`): the static picture and
//! a run's picture share layout and style; sizes, labels, arrows and escaping
//! read back from the SVG.

use std::time::Duration;

use module_registry::workflow::{run_svg, StepRun};
use module_registry::{ModuleRegistry, OnError, StepStatus, Workflow, WorkflowStep};

/// The attributes of every element `<name ...>` of `svg`, in order.
fn elements(svg: &str, name: &str) -> Vec<Vec<(String, String)>> {
    let open = format!("<{name} ");
    svg.match_indices(&open)
        .map(|(at, _)| {
            let tag = &svg[at + open.len()..];
            let tag = &tag[..tag.find('>').unwrap()];
            let mut attrs = Vec::new();
            let mut rest = tag;
            while let Some(eq) = rest.find("=\"") {
                let key = rest[..eq].trim().to_string();
                let value_at = &rest[eq + 2..];
                let end = value_at.find('"').unwrap();
                attrs.push((key, value_at[..end].to_string()));
                rest = &value_at[end + 1..];
            }
            attrs
        })
        .collect()
}

fn attr(element: &[(String, String)], key: &str) -> f64 {
    element
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or_else(|| panic!("no {key} in {element:?}"))
}

/// The texts of the `<text>` elements, unescaped only of `&amp;`.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text ")
        .skip(1)
        .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].to_string())
        .collect()
}

/// Where each edge's path ends (its last two numbers).
fn ends(svg: &str) -> Vec<(f64, f64)> {
    elements(svg, "path")
        .into_iter()
        .filter(|e| e.iter().any(|(k, v)| k == "class" && v == "edge"))
        .map(|e| {
            let d = &e.iter().find(|(k, _)| k == "d").unwrap().1;
            let nums: Vec<f64> = d
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            (nums[nums.len() - 2], nums[nums.len() - 1])
        })
        .collect()
}

#[test]
fn a_one_row_chain_is_as_tall_as_its_boxes_and_sans_serif() {
    let wf = Workflow::new("chain")
        .step(WorkflowStep::module("a", "identity"))
        .step(WorkflowStep::module("b", "identity"));
    let svg = wf.to_svg().unwrap();
    let root = &elements(&svg, "svg")[0];
    assert!(svg.contains("font-family=\"sans-serif\""));
    let rects = elements(&svg, "rect");
    assert_eq!(rects.len(), 4);
    let top = rects.iter().map(|r| attr(r, "y")).fold(f64::MAX, f64::min);
    let bottom = rects
        .iter()
        .map(|r| attr(r, "y") + attr(r, "height"))
        .fold(0.0, f64::max);
    let right = rects
        .iter()
        .map(|r| attr(r, "x") + attr(r, "width"))
        .fold(0.0, f64::max);
    // Margins of at most 12 px around the boxes, nothing outside.
    assert!((0.0..=12.0).contains(&top), "{top}");
    assert!(attr(root, "height") - bottom <= 13.0 && attr(root, "height") >= bottom);
    assert!(attr(root, "width") - right <= 13.0 && attr(root, "width") >= right);
    // Coloured: steps and ends are filled, not white.
    assert!(rects.iter().all(|r| r
        .iter()
        .any(|(k, v)| k == "fill" && v != "#fff" && v != "#ffffff")));
}

#[test]
fn a_step_named_after_its_module_shows_the_name_once() {
    let registry = ModuleRegistry::with_native_modules();
    let wf = registry.pipeline(["identity", "sha256"]);
    let svg = wf.to_svg().unwrap();
    let all = texts(&svg);
    for name in ["identity", "sha256"] {
        assert_eq!(
            all.iter().filter(|t| t.contains(name)).count(),
            1,
            "{all:?}"
        );
    }
    let result = registry.run_workflow(&wf, "x").unwrap();
    let run = result.to_svg(&wf).unwrap();
    let all = texts(&run);
    // `identity@1.0.0` once, on the step's first line.
    assert_eq!(
        all.iter().filter(|t| t.contains("identity")).count(),
        1,
        "{all:?}"
    );
    assert!(all.iter().any(|t| t.starts_with("identity@")), "{all:?}");
    // A step of another name: its id and `module@version`, each once.
    let named = Workflow::new("n").step(WorkflowStep::module("hash", "sha256"));
    let run = registry
        .run_workflow(&named, "x")
        .unwrap()
        .to_svg(&named)
        .unwrap();
    let all = texts(&run);
    assert_eq!(all.iter().filter(|t| *t == "hash").count(), 1, "{all:?}");
    assert_eq!(
        all.iter().filter(|t| t.starts_with("sha256@")).count(),
        1,
        "{all:?}"
    );
}

#[test]
fn a_steps_settings_are_written_on_it() {
    let wf = Workflow::new("s")
        .step(
            WorkflowStep::module("slow", "identity")
                .cache(true)
                .timeout(Duration::from_millis(1500))
                .retries(2)
                .pool(4),
        )
        .step(WorkflowStep::module("skip", "identity").on_error(OnError::Skip))
        .step(WorkflowStep::module("back", "identity").fallback("sha256"));
    let all = texts(&wf.to_svg().unwrap());
    assert!(
        all.contains(&"cache · timeout 1.50 s · retries 2 · pool 4".to_string()),
        "{all:?}"
    );
    assert!(all.contains(&"on error: skip".to_string()), "{all:?}");
    assert!(
        all.contains(&"on error: fallback sha256".to_string()),
        "{all:?}"
    );
}

#[test]
fn a_fan_in_ends_its_arrows_at_distinct_points_on_the_node() {
    let mut wf = Workflow::new("fan");
    wf.output = Some("join".into());
    let ids: Vec<String> = (0..7).map(|i| format!("b{i}")).collect();
    for id in &ids {
        wf.add_step(WorkflowStep::module(id.clone(), "identity").after([]));
    }
    wf.add_step(WorkflowStep::module("join", "identity").after(ids.clone()));
    let svg = wf.to_svg().unwrap();
    let ends = ends(&svg);
    assert_eq!(ends.len(), 7 + 7 + 1);
    // The seven arrows into `join` end on one x, at seven y's at least 6 px apart.
    // Columns: input, the branches, join, output.
    let mut xs: Vec<f64> = ends.iter().map(|e| e.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    assert_eq!(xs.len(), 3, "{ends:?}");
    let mut into: Vec<f64> = ends.iter().filter(|e| e.0 == xs[1]).map(|e| e.1).collect();
    into.sort_by(f64::total_cmp);
    assert_eq!(into.len(), 7, "{ends:?}");
    assert!(into.windows(2).all(|w| w[1] - w[0] >= 6.0), "{into:?}");
}

#[test]
fn a_thousand_steps_in_five_hundred_branches_are_all_drawn() {
    let mut wf = Workflow::new("wide");
    let mut last = Vec::new();
    for b in 0..500 {
        wf.add_step(WorkflowStep::module(format!("a{b}"), "identity").after([]));
        wf.add_step(WorkflowStep::module(format!("b{b}"), "identity").after([format!("a{b}")]));
        last.push(format!("b{b}"));
    }
    let svg = wf.to_svg().unwrap();
    assert_eq!(svg.matches("<g class=\"step\"").count(), 1000);
    // input -> a (500), a -> b (500), b -> output (500).
    assert_eq!(ends(&svg).len(), 1500);
    let root = &elements(&svg, "svg")[0];
    let bottom = elements(&svg, "rect")
        .iter()
        .map(|r| attr(r, "y") + attr(r, "height"))
        .fold(0.0, f64::max);
    assert!(attr(root, "height") - bottom <= 13.0);
}

fn run(id: &str, module: &str, status: StepStatus) -> StepRun {
    StepRun {
        id: id.into(),
        module: module.into(),
        version: "1.0.0".into(),
        status,
        cached: false,
        attempts: 1,
        duration: Duration::from_micros(1500),
        error: None,
    }
}

#[test]
fn every_label_of_a_hand_made_run_is_escaped() {
    let hostile = "<script>\"a\" & 'b'\nline\u{1b}[31m\u{0}";
    let mut bad = run(hostile, hostile, StepStatus::Failed);
    bad.error = Some(hostile.into());
    bad.version = hostile.into();
    let svg = run_svg(None, &[run("ok", "identity", StepStatus::Ok), bad]).unwrap();
    assert!(!svg.contains("<script") && !svg.contains('\u{1b}') && !svg.contains('\u{0}'));
    assert!(svg.contains("&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;"));
    // Quotes inside attributes cannot end them: every attribute parses.
    for name in ["g", "rect", "text", "path"] {
        for e in elements(&svg, name) {
            assert!(e.iter().all(|(k, _)| !k.contains(' ')), "{e:?}");
        }
    }
    assert_eq!(svg.matches("<g class=\"step\"").count(), 2);
    assert!(svg.contains("data-outcome=\"failed\"") && svg.contains("1.5 ms"));
    // A text line keeps to one line.
    assert!(texts(&svg).iter().all(|t| !t.contains('\n')));
}

#[test]
fn a_run_shows_each_outcome_and_steps_not_run() {
    let wf = Workflow::new("w")
        .step(WorkflowStep::module("a", "identity"))
        .step(WorkflowStep::module("b", "identity"));
    let mut cached = run("a", "identity", StepStatus::Ok);
    cached.cached = true;
    let svg = run_svg(Some(&wf), &[cached]).unwrap();
    assert!(
        svg.contains("data-step=\"a\" data-outcome=\"cached\""),
        "{svg}"
    );
    assert!(
        svg.contains("data-step=\"b\" data-outcome=\"not run\""),
        "{svg}"
    );
    // The static picture and the run's share the layout: same boxes.
    let boxes = |svg: &str| -> Vec<(f64, f64)> {
        elements(svg, "rect")
            .iter()
            .map(|r| (attr(r, "x"), attr(r, "y")))
            .collect()
    };
    let plain = wf.to_svg().unwrap();
    assert_eq!(boxes(&plain).len(), boxes(&svg).len());
    assert_eq!(boxes(&plain)[0].0, boxes(&svg)[0].0);
}
