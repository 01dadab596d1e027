//! The one drawing of a workflow (feature `pictures`): the static picture
//! ([`Workflow::to_svg`]) and a run's picture ([`run_svg`]) share its layout
//! and its style. Layered left to right: a step's column is its longest path
//! from the input, the steps of a column are ordered by the mean row of their
//! upstream steps (one sweep), and edges are curves from the right side of a
//! node to the left side of the next. Linear in steps and edges but for that
//! sort, so thousands of steps draw in milliseconds. Sans-serif, coloured, as
//! tall as its tallest column plus margins; every piece of text escaped.

use std::fmt::Write as _;
use std::time::Duration;

use super::svg_text::{clip, cut, esc};
use super::{OnError, StepReport, StepStatus, Workflow, WorkflowResult, WorkflowStep};
use crate::error::Result;

/// How one step ran, as a run's picture writes it on the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRun {
    /// The step's id.
    pub id: String,
    /// The module that produced the output (the fallback, if it ran).
    pub module: String,
    /// Its version.
    pub version: String,
    /// How the step ended.
    pub status: StepStatus,
    /// The output came from the cache.
    pub cached: bool,
    /// Attempts of the step's module.
    pub attempts: u32,
    /// Time the step took.
    pub duration: Duration,
    /// The last error, if an attempt failed.
    pub error: Option<String>,
}

impl From<&StepReport> for StepRun {
    fn from(r: &StepReport) -> Self {
        StepRun {
            id: r.id.to_string(),
            module: r.module.to_string(),
            version: r.version.to_string(),
            status: r.status,
            cached: r.cache == crate::cache::CacheStatus::Hit,
            attempts: r.attempts,
            duration: r.duration,
            error: r.error.clone(),
        }
    }
}

impl WorkflowResult {
    /// This run of `workflow` drawn as SVG (see [`run_svg`]).
    pub fn to_svg(&self, workflow: &Workflow) -> Result<String> {
        let runs: Vec<StepRun> = self.steps.iter().map(StepRun::from).collect();
        run_svg(Some(workflow), &runs)
    }
}

/// A run drawn as SVG: the workflow's picture with each step coloured by its
/// outcome (`ok`, `failed`, `skipped`, `fallback`, `cached`, `not run`, also
/// the group's `data-outcome`), its attempts and duration written on it, and
/// its error on hover. Without a workflow (a result put together by hand), the
/// steps of `runs` in a row.
pub fn run_svg(workflow: Option<&Workflow>, runs: &[StepRun]) -> Result<String> {
    let Some(workflow) = workflow else {
        let mut nodes = vec![Node::end("input")];
        let mut seen = std::collections::HashSet::new();
        for run in runs.iter().filter(|r| seen.insert(r.id.as_str())) {
            nodes.push(Node::run(None, run));
        }
        nodes.push(Node::end("output"));
        let edges = (1..nodes.len()).map(|k| (k - 1, k)).collect::<Vec<_>>();
        return Ok(draw(&nodes, &edges, None, None));
    };
    let edges = workflow.node_edges()?;
    let by_id: std::collections::HashMap<&str, &StepRun> =
        runs.iter().rev().map(|r| (r.id.as_str(), r)).collect();
    let mut nodes = vec![Node::end("input")];
    for step in &workflow.steps {
        nodes.push(match by_id.get(step.id.as_str()) {
            Some(run) => Node::run(Some(step), run),
            None => Node::not_run(step),
        });
    }
    nodes.push(Node::end("output"));
    Ok(draw(&nodes, &edges, Some(&workflow.name), None))
}

impl Workflow {
    /// An SVG picture of the workflow (`pictures` feature): the input, each
    /// step (its id, its module and version requirement, and its `cache`,
    /// `timeout_ms`, `retries`, `pool` and `on_error` settings) and the output,
    /// in the layout and style of a run's picture ([`run_svg`]).
    pub fn to_svg(&self) -> Result<String> {
        let edges = self.node_edges()?;
        let nodes: Vec<Node> = std::iter::once(Node::end("input"))
            .chain(self.steps.iter().map(Node::step))
            .chain(std::iter::once(Node::end("output")))
            .collect();
        Ok(draw(&nodes, &edges, Some(&self.name), None))
    }

    /// [`Workflow::to_svg`] with each edge labelled by the type that flows
    /// along it in `registry`: the workflow's input type out of the input,
    /// and each step's output type (its module's, with its fallback's and,
    /// for `on_error = "skip"`, its input's) out of the step. The workflow is
    /// planned (so checked, types included) first: one that does not check
    /// is its error, not a picture.
    pub fn to_svg_typed(&self, registry: &crate::registry::ModuleRegistry) -> Result<String> {
        let plan = super::plan::shared_plan(registry, self)?;
        let flows = super::types::flows(self, &plan.structure, &plan.steps)?;
        let edges = self.node_edges()?;
        let input = self
            .input
            .clone()
            .unwrap_or_else(crate::schema::Schema::any);
        let labels: Vec<String> = edges
            .iter()
            .map(|&(a, _)| match a {
                0 => input.to_string(),
                k => flows[k - 1].to_string(),
            })
            .collect();
        let nodes: Vec<Node> = std::iter::once(Node::end("input"))
            .chain(self.steps.iter().map(Node::step))
            .chain(std::iter::once(Node::end("output")))
            .collect();
        Ok(draw(&nodes, &edges, Some(&self.name), Some(&labels)))
    }
}

/// The most characters an edge's type label shows (the whole type is on hover).
const LABEL_CHARS: usize = 32;
/// Width of one character of an edge label (its font is smaller).
const LABEL_CHAR_W: f64 = 6.0;

/// Font size of the pictures' text, in pixels.
const FONT: f64 = 12.0;
/// Width of one character, a sans-serif average at [`FONT`] (bold text is
/// counted 10% wider): node widths are estimated from it.
const CHAR_W: f64 = 7.0;
/// Height of a line of text.
const LINE_H: f64 = 16.0;
/// Inner padding of a node.
const INSET: f64 = 8.0;
/// Space around the picture.
const MARGIN: f64 = 12.0;
/// Space between columns and between the nodes of a column.
const GAP_X: f64 = 48.0;
const GAP_Y: f64 = 14.0;
/// The most characters a line shows (the whole text is on hover).
const MAX_CHARS: usize = 48;
/// The least space between two arrowheads ending on one node.
const ARROW_GAP: f64 = 7.0;

/// Fill, border and text colour of a node by its outcome.
fn colours(outcome: Option<&str>) -> (&'static str, &'static str) {
    match outcome {
        None => ("#e8f0fe", "#3b6fd4"),
        Some("end") => ("#f1f3f4", "#80868b"),
        Some("ok") => ("#d4edda", "#2e7d32"),
        Some("failed") => ("#f8d7da", "#c62828"),
        Some("skipped") => ("#e2e3e5", "#616161"),
        Some("fallback") => ("#fff3cd", "#b26a00"),
        Some("cached") => ("#d1ecf1", "#0277bd"),
        Some(_) => ("#ffffff", "#9e9e9e"),
    }
}

/// One node: its lines (the first in bold), its hover text, and for a step
/// its id and outcome.
struct Node {
    lines: Vec<String>,
    tip: String,
    step: Option<String>,
    outcome: Option<&'static str>,
    end: bool,
}

impl Node {
    fn end(label: &str) -> Node {
        Node {
            lines: vec![label.to_string()],
            tip: label.to_string(),
            step: None,
            outcome: Some("end"),
            end: true,
        }
    }

    /// A step of the static picture.
    fn step(step: &WorkflowStep) -> Node {
        let target = step.target();
        let req = step.version.as_deref().map(|v| format!(" {v}"));
        let mut lines = if target == step.id {
            vec![format!("{target}{}", req.unwrap_or_default())]
        } else {
            vec![
                step.id.clone(),
                format!("{target}{}", req.unwrap_or_default()),
            ]
        };
        lines.extend(settings(step));
        Node {
            tip: lines.join("\n"),
            lines,
            step: Some(step.id.clone()),
            outcome: None,
            end: false,
        }
    }

    /// A step that ran (`step`: its declaration, when known).
    fn run(step: Option<&WorkflowStep>, run: &StepRun) -> Node {
        let module = format!("{}@{}", run.module, run.version);
        let mut lines = if run.id == run.module {
            vec![module.clone()]
        } else {
            vec![run.id.clone(), module.clone()]
        };
        lines.extend(step.map(settings).unwrap_or_default());
        let outcome = if run.cached {
            "cached"
        } else {
            run.status.as_str()
        };
        let attempts = match run.attempts {
            1 => "1 attempt".to_string(),
            n => format!("{n} attempts"),
        };
        lines.push(format!(
            "{outcome} · {attempts} · {}",
            duration_text(run.duration)
        ));
        let mut tip = format!("{} ({module}): {outcome}, {attempts}", run.id);
        if let Some(e) = &run.error {
            tip.push('\n');
            tip.push_str(&cut(e, 500));
        }
        Node {
            lines,
            tip,
            step: Some(run.id.clone()),
            outcome: Some(outcome),
            end: false,
        }
    }

    fn not_run(step: &WorkflowStep) -> Node {
        let mut node = Node::step(step);
        node.lines.push("not run".to_string());
        node.tip = format!("{}: not run", step.id);
        node.outcome = Some("not run");
        node
    }

    /// Estimated width and height of the node's box.
    fn size(&self) -> (f64, f64) {
        let chars = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let n = l.chars().count().min(MAX_CHARS) as f64;
                if i == 0 {
                    n * 1.1
                } else {
                    n
                }
            })
            .fold(0.0, f64::max);
        let width = (chars * CHAR_W + 2.0 * INSET).max(if self.end { 64.0 } else { 90.0 });
        (width, self.lines.len() as f64 * LINE_H + 2.0 * INSET - 4.0)
    }
}

/// The settings a step's picture shows: `cache`, `timeout`, `retries`,
/// `pool` and what a failure does, as few lines of at most [`MAX_CHARS`] as
/// hold them (none when all are default).
fn settings(step: &WorkflowStep) -> Vec<String> {
    let mut parts = Vec::new();
    if step.cache {
        parts.push("cache".to_string());
    }
    if let Some(ms) = step.timeout_ms {
        parts.push(format!(
            "timeout {}",
            duration_text(Duration::from_millis(ms))
        ));
    }
    if step.retries > 0 {
        parts.push(format!("retries {}", step.retries));
    }
    if let Some(n) = step.pool {
        parts.push(format!("pool {n}"));
    }
    match (&step.fallback, step.on_error) {
        (Some(f), _) => parts.push(format!("on error: fallback {f}")),
        (None, OnError::Skip) => parts.push("on error: skip".to_string()),
        _ => {}
    }
    let mut lines: Vec<String> = Vec::new();
    for part in parts {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 3 + part.chars().count() <= MAX_CHARS => {
                line.push_str(" · ");
                line.push_str(&part);
            }
            _ => lines.push(part),
        }
    }
    lines
}

/// A duration as people read it: `850 µs`, `12.5 ms`, `3.20 s`.
fn duration_text(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1e3)
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// Where each node goes: its column (longest path from a node without
/// upstream, Kahn's order; nodes on a cycle stay in column 0) and its order
/// in the column (by the mean order of its upstream nodes, then by number).
fn columns(count: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut after = vec![Vec::new(); count];
    let mut before = vec![Vec::new(); count];
    let mut pending = vec![0usize; count];
    for &(a, b) in edges {
        after[a].push(b);
        before[b].push(a);
        pending[b] += 1;
    }
    let mut column = vec![0usize; count];
    let mut ready: Vec<usize> = (0..count).filter(|&k| pending[k] == 0).collect();
    while let Some(a) = ready.pop() {
        for &b in &after[a] {
            column[b] = column[b].max(column[a] + 1);
            pending[b] -= 1;
            if pending[b] == 0 {
                ready.push(b);
            }
        }
    }
    let width = column.iter().max().map_or(1, |c| c + 1);
    let mut cols = vec![Vec::new(); width];
    for (k, &c) in column.iter().enumerate() {
        cols[c].push(k);
    }
    let mut rank = vec![0f64; count];
    for col in &mut cols {
        let key = |k: usize| {
            let up = &before[k];
            if up.is_empty() {
                k as f64
            } else {
                up.iter().map(|&u| rank[u]).sum::<f64>() / up.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = col.iter().map(|&k| (key(k), k)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *col = keyed.into_iter().map(|(_, k)| k).collect();
        for (i, &k) in col.iter().enumerate() {
            rank[k] = i as f64;
        }
    }
    cols
}

/// A node's box: left, top, width, height.
#[derive(Clone, Copy, Default)]
struct Place {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Boxes of the nodes: columns left to right, each as wide as its widest
/// node, each centred in the height of the tallest. A node receiving or
/// sending many edges is made tall enough for its arrows to stay apart.
/// Returns the boxes and the picture's size.
fn places(nodes: &[Node], edges: &[(usize, usize)], gap: f64) -> (Vec<Place>, f64, f64) {
    let mut ins = vec![0usize; nodes.len()];
    let mut outs = vec![0usize; nodes.len()];
    for &(a, b) in edges {
        outs[a] += 1;
        ins[b] += 1;
    }
    let cols = columns(nodes.len(), edges);
    let mut place = vec![Place::default(); nodes.len()];
    for (k, node) in nodes.iter().enumerate() {
        let (w, h) = node.size();
        let fan = ins[k].max(outs[k]) as f64;
        place[k] = Place {
            w,
            h: h.max((fan + 1.0) * ARROW_GAP),
            ..Place::default()
        };
    }
    let extents: Vec<f64> = cols
        .iter()
        .map(|col| {
            col.iter().map(|&k| place[k].h).sum::<f64>() + GAP_Y * (col.len().max(1) - 1) as f64
        })
        .collect();
    let tallest = extents.iter().copied().fold(0.0, f64::max);
    let mut x = MARGIN;
    for (col, extent) in cols.iter().zip(&extents) {
        let width = col.iter().map(|&k| place[k].w).fold(0.0, f64::max);
        let mut y = MARGIN + (tallest - extent) / 2.0;
        for &k in col {
            place[k].x = x;
            place[k].w = width;
            place[k].y = y;
            y += place[k].h + GAP_Y;
        }
        x += width + gap;
    }
    (place, x - gap + MARGIN, tallest + 2.0 * MARGIN)
}

/// Where each edge leaves and ends: the edges of one node spread along its
/// side in the order of the nodes at their other end, so no two arrowheads
/// end at one point and the lines do not cross at the node.
fn anchors(place: &[Place], edges: &[(usize, usize)]) -> Vec<(f64, f64)> {
    let mut ins: Vec<Vec<usize>> = vec![Vec::new(); place.len()];
    let mut outs: Vec<Vec<usize>> = vec![Vec::new(); place.len()];
    for (e, &(a, b)) in edges.iter().enumerate() {
        outs[a].push(e);
        ins[b].push(e);
    }
    let mut at = vec![(0.0, 0.0); edges.len()];
    let centre = |k: usize| place[k].y + place[k].h / 2.0;
    for (k, list) in ins.iter_mut().enumerate() {
        list.sort_by(|&e, &f| centre(edges[e].0).total_cmp(&centre(edges[f].0)));
        for (i, &e) in list.iter().enumerate() {
            at[e].1 = place[k].y + place[k].h * (i + 1) as f64 / (list.len() + 1) as f64;
        }
    }
    for (k, list) in outs.iter_mut().enumerate() {
        list.sort_by(|&e, &f| centre(edges[e].1).total_cmp(&centre(edges[f].1)));
        for (i, &e) in list.iter().enumerate() {
            at[e].0 = place[k].y + place[k].h * (i + 1) as f64 / (list.len() + 1) as f64;
        }
    }
    at
}

/// The picture of `nodes` joined by `edges` (by number), titled `title`.
fn draw(
    nodes: &[Node],
    edges: &[(usize, usize)],
    title: Option<&str>,
    labels: Option<&[String]>,
) -> String {
    // Columns stand apart enough for the longest label between them.
    let gap = labels.map_or(GAP_X, |labels| {
        let longest = labels
            .iter()
            .map(|l| l.chars().count().min(LABEL_CHARS))
            .max()
            .unwrap_or(0);
        GAP_X.max(longest as f64 * LABEL_CHAR_W + 2.0 * GAP_Y)
    });
    let (place, width, height) = places(nodes, edges, gap);
    let at = anchors(&place, edges);
    let mut out = String::with_capacity(400 * nodes.len() + 200 * edges.len());
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"mr-workflow\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         font-family=\"sans-serif\" font-size=\"{FONT}\">"
    );
    if let Some(t) = title {
        let _ = write!(out, "<title>{}</title>", esc(t));
    }
    out.push_str(
        "<defs><marker id=\"mr-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
         <path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#5f6368\"/></marker></defs>",
    );
    for (&(a, b), &(y1, y2)) in edges.iter().zip(&at) {
        let (x1, x2) = (place[a].x + place[a].w, place[b].x);
        let bend = ((x2 - x1) / 2.0).max(12.0);
        let _ = write!(
            out,
            "<path class=\"edge\" d=\"M {x1:.1} {y1:.1} C {:.1} {y1:.1} {:.1} {y2:.1} {x2:.1} {y2:.1}\" \
             fill=\"none\" stroke=\"#5f6368\" stroke-width=\"1.2\" marker-end=\"url(#mr-arrow)\"/>",
            x1 + bend,
            x2 - bend
        );
    }
    if let Some(labels) = labels {
        // Each label at its curve's middle, just above it.
        for ((&(a, b), &(y1, y2)), label) in edges.iter().zip(&at).zip(labels) {
            let (x1, x2) = (place[a].x + place[a].w, place[b].x);
            let shown = clip(label, LABEL_CHARS);
            let _ = write!(
                out,
                "<text class=\"edge-type\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                 font-size=\"10\" fill=\"#5f6368\"><title>{}</title>{}</text>",
                (x1 + x2) / 2.0,
                (y1 + y2) / 2.0 - 4.0,
                esc(label),
                esc(&shown)
            );
        }
    }
    for (node, p) in nodes.iter().zip(&place) {
        node_svg(&mut out, node, p);
    }
    out.push_str("</svg>");
    out
}

/// One node: a group (`end` or `step`, with `data-step` and `data-outcome`),
/// its hover text, its box and its lines.
fn node_svg(out: &mut String, node: &Node, p: &Place) {
    let (fill, stroke) = colours(node.outcome);
    if node.end {
        let _ = write!(out, "<g class=\"end\">");
    } else {
        let _ = write!(out, "<g class=\"step\"");
        if let Some(id) = &node.step {
            let _ = write!(out, " data-step=\"{}\"", esc(id));
        }
        if let Some(o) = node.outcome {
            let _ = write!(out, " data-outcome=\"{o}\"");
        }
        out.push('>');
    }
    let round = if node.end { p.h / 2.0 } else { 6.0 };
    let _ = write!(
        out,
        "<title>{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{round:.1}\" \
         fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"/>",
        esc(&node.tip),
        p.x,
        p.y,
        p.w,
        p.h
    );
    let block = node.lines.len() as f64 * LINE_H;
    let top = p.y + (p.h - block) / 2.0;
    for (i, line) in node.lines.iter().enumerate() {
        let y = top + LINE_H * (i as f64 + 1.0) - 4.0;
        let (x, anchor) = if node.end {
            (p.x + p.w / 2.0, " text-anchor=\"middle\"")
        } else {
            (p.x + INSET, "")
        };
        let weight = if i == 0 { " font-weight=\"bold\"" } else { "" };
        let fill = if i == 0 { "#202124" } else { "#3c4043" };
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\"{anchor}{weight} fill=\"{fill}\">{}</text>",
            esc(&clip(&line.replace(['\n', '\r'], " "), MAX_CHARS))
        );
    }
    out.push_str("</g>");
}
