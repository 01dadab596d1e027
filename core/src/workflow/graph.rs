//! Drawing workflows: Mermaid, Graphviz DOT, and SVG rendered in pure Rust
//! (`layout-rs`, no system binary).

use super::{StepInput, Workflow};
use crate::error::Result;

fn esc_dot(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(feature = "pictures")]
fn esc_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The most steps [`Workflow::to_svg`] hands to `layout-rs` (300 take a
/// fraction of a second, 2,000 half a minute); bigger workflows are drawn
/// in columns in one pass.
#[cfg(feature = "pictures")]
const LAYOUT_NODES: usize = 300;

fn esc_mermaid(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

impl Workflow {
    /// The name [`edges`](Self::edges) gives the workflow's own input: not a
    /// possible step id (those start with a letter or digit), so a step
    /// named `input` is a node of its own.
    pub const INPUT: &'static str = "(input)";
    /// The name [`edges`](Self::edges) gives the workflow's own output.
    pub const OUTPUT: &'static str = "(output)";

    /// The workflow's edges as `(from, to)`: [`Workflow::INPUT`], step ids
    /// and [`Workflow::OUTPUT`] (what the pictures draw). Every final step
    /// (or the one `output` names) has an edge to the output.
    pub fn edges(&self) -> Result<Vec<(String, String)>> {
        let n = self.steps.len();
        let name = |node: usize| match node {
            0 => Self::INPUT.to_string(),
            k if k == n + 1 => Self::OUTPUT.to_string(),
            k => self.steps[k - 1].id.clone(),
        };
        Ok(self
            .node_edges()?
            .into_iter()
            .map(|(a, b)| (name(a), name(b)))
            .collect())
    }

    /// The edges between nodes by number: 0 is the workflow's input, step
    /// `i` is `i + 1`, and `steps.len() + 1` is its output. Pictures name
    /// their nodes by number, so no step id can merge with another node.
    fn node_edges(&self) -> Result<Vec<(usize, usize)>> {
        let s = self.structure()?;
        let output = self.steps.len() + 1;
        let mut edges = Vec::new();
        for (i, input) in s.inputs.iter().enumerate() {
            match input {
                StepInput::Workflow => edges.push((0, i + 1)),
                StepInput::One(u) => edges.push((u + 1, i + 1)),
                StepInput::Map(refs) => edges.extend(refs.iter().map(|(_, u)| (u + 1, i + 1))),
            }
        }
        edges.extend(s.output.upstream().into_iter().map(|u| (u + 1, output)));
        Ok(edges)
    }

    fn label(&self, i: usize) -> String {
        let step = &self.steps[i];
        let mut label = format!("{}\n{}", step.id, step.target());
        if let Some(v) = &step.version {
            label.push_str(&format!(" {v}"));
        }
        if step.retries > 0 {
            label.push_str(&format!("\nretries: {}", step.retries));
        }
        if let Some(f) = &step.fallback {
            label.push_str(&format!("\nfallback: {f}"));
        } else if step.on_error == super::OnError::Skip {
            label.push_str("\non error: skip");
        }
        label
    }

    /// A Mermaid flowchart (left to right). A step's node is named by its id
    /// when that is letters and digits only and not one of Mermaid's words
    /// (`end`, `graph`, ...), else by the id with `_` for `.` and `-` and its
    /// position (`a.b` is `a_b_0`, `a-b` is `a_b_1`); the workflow's ends are
    /// `wf_in` and `wf_out`. Step ids have no `_`, so no two nodes merge.
    pub fn to_mermaid(&self) -> Result<String> {
        const WORDS: &[&str] = &[
            "end",
            "graph",
            "flowchart",
            "subgraph",
            "direction",
            "style",
            "class",
            "classdef",
            "click",
            "call",
            "href",
            "linkstyle",
            "default",
        ];
        let edges = self.node_edges()?;
        let n = self.steps.len();
        let ids: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let id = step.id.as_str();
                if id.bytes().all(|b| b.is_ascii_alphanumeric()) && !WORDS.contains(&id) {
                    id.to_string()
                } else {
                    format!("{}_{i}", id.replace(['.', '-'], "_"))
                }
            })
            .collect();
        let node = |k: usize| match k {
            0 => "wf_in",
            k if k == n + 1 => "wf_out",
            k => ids[k - 1].as_str(),
        };
        let mut out = String::from("flowchart LR\n    wf_in([input])\n    wf_out([output])\n");
        for (i, id) in ids.iter().enumerate() {
            out.push_str(&format!(
                "    {id}[\"{}\"]\n",
                esc_mermaid(&self.label(i)).replace('\n', "<br/>")
            ));
        }
        for (from, to) in edges {
            out.push_str(&format!("    {} --> {}\n", node(from), node(to)));
        }
        Ok(out)
    }

    /// A Graphviz DOT digraph: steps are nodes named by their ids, the
    /// workflow's input and output [`Workflow::INPUT`] and [`Workflow::OUTPUT`]
    /// (labelled `input` and `output`).
    pub fn to_dot(&self) -> Result<String> {
        let edges = self.edges()?;
        let mut out = format!(
            "digraph \"{}\" {{\n    rankdir=LR;\n    node [shape=box];\n    \"{}\" [shape=ellipse, label=\"input\"];\n    \"{}\" [shape=ellipse, label=\"output\"];\n",
            esc_dot(&self.name),
            Self::INPUT,
            Self::OUTPUT,
        );
        for i in 0..self.steps.len() {
            out.push_str(&format!(
                "    \"{}\" [label=\"{}\"];\n",
                esc_dot(&self.steps[i].id),
                esc_dot(&self.label(i)).replace('\n', "\\n")
            ));
        }
        for (from, to) in edges {
            out.push_str(&format!(
                "    \"{}\" -> \"{}\";\n",
                esc_dot(&from),
                esc_dot(&to)
            ));
        }
        out.push_str("}\n");
        Ok(out)
    }

    /// An SVG picture of the workflow, laid out in pure Rust (`pictures`
    /// feature): by `layout-rs` up to 300 steps; a bigger
    /// workflow (its layout grows faster than the square of its size) in
    /// columns by longest path from the input, in one pass.
    #[cfg(feature = "pictures")]
    pub fn to_svg(&self) -> Result<String> {
        if self.steps.len() > LAYOUT_NODES {
            return self.node_edges().map(|edges| self.layered_svg(&edges));
        }
        self.laid_out_svg()
    }

    /// Columns by longest path from the input (Kahn's order), rows in
    /// definition order: linear in steps and edges.
    #[cfg(feature = "pictures")]
    fn layered_svg(&self, edges: &[(usize, usize)]) -> String {
        const W: usize = 190;
        const H: usize = 62;
        const GAP_X: usize = 60;
        const GAP_Y: usize = 24;
        const PAD: usize = 16;
        let nodes = self.steps.len() + 2;
        let mut after = vec![Vec::new(); nodes];
        let mut pending = vec![0usize; nodes];
        for &(a, b) in edges {
            after[a].push(b);
            pending[b] += 1;
        }
        let mut column = vec![0usize; nodes];
        let mut ready: Vec<usize> = (0..nodes).filter(|&k| pending[k] == 0).collect();
        while let Some(a) = ready.pop() {
            for &b in &after[a] {
                column[b] = column[b].max(column[a] + 1);
                pending[b] -= 1;
                if pending[b] == 0 {
                    ready.push(b);
                }
            }
        }
        let columns = column.iter().max().map_or(1, |c| c + 1);
        let mut rows = vec![0usize; columns];
        let mut place = vec![(0usize, 0usize); nodes];
        for k in 0..nodes {
            let c = column[k];
            place[k] = (PAD + c * (W + GAP_X), PAD + rows[c] * (H + GAP_Y));
            rows[c] += 1;
        }
        let tallest = rows.iter().copied().max().unwrap_or(1);
        let width = 2 * PAD + columns * (W + GAP_X) - GAP_X;
        let height = 2 * PAD + tallest * (H + GAP_Y) - GAP_Y;
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\
             <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
             markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M 0 0 L 10 5 L 0 10 z\"/>\
             </marker></defs>"
        );
        for &(a, b) in edges {
            let ((ax, ay), (bx, by)) = (place[a], place[b]);
            out.push_str(&format!(
                "<line x1=\"{}\" y1=\"{}\" x2=\"{bx}\" y2=\"{}\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>",
                ax + W,
                ay + H / 2,
                by + H / 2
            ));
        }
        for (k, &(x, y)) in place.iter().enumerate() {
            let (lines, round) = match k {
                0 => (vec!["input".to_string()], H / 2),
                k if k == nodes - 1 => (vec!["output".to_string()], H / 2),
                k => (self.label(k - 1).lines().map(str::to_string).collect(), 6),
            };
            out.push_str(&format!(
                "<g><rect x=\"{x}\" y=\"{y}\" width=\"{W}\" height=\"{H}\" rx=\"{round}\" fill=\"#fff\" stroke=\"#333\"/>"
            ));
            for (i, line) in lines.iter().take(3).enumerate() {
                out.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\">{}</text>",
                    x + 10,
                    y + 18 + 17 * i,
                    esc_xml(line)
                ));
            }
            out.push_str("</g>");
        }
        out.push_str("</svg>");
        out
    }

    #[cfg(feature = "pictures")]
    fn laid_out_svg(&self) -> Result<String> {
        use layout::backends::svg::SVGWriter;
        use layout::core::base::Orientation;
        use layout::core::geometry::Point;
        use layout::core::style::StyleAttr;
        use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
        use layout::topo::layout::VisualGraph;

        let edges = self.node_edges()?;
        let labels: Vec<String> = std::iter::once("input".to_string())
            .chain((0..self.steps.len()).map(|i| self.label(i)))
            .chain(std::iter::once("output".to_string()))
            .collect();
        let render = move || {
            let mut vg = VisualGraph::new(Orientation::LeftToRight);
            let handles: Vec<_> = labels
                .iter()
                .enumerate()
                .map(|(i, label)| {
                    let shape = if i == 0 || i == labels.len() - 1 {
                        ShapeKind::new_circle(label)
                    } else {
                        ShapeKind::new_box(label)
                    };
                    let lines = label.lines().count().max(1) as f64;
                    let width = label.lines().map(str::len).max().unwrap_or(4) as f64 * 8.0 + 24.0;
                    let size = Point::new(width.max(60.0), 20.0 * lines + 20.0);
                    vg.add_node(Element::create(
                        shape,
                        StyleAttr::simple(),
                        Orientation::LeftToRight,
                        size,
                    ))
                })
                .collect();
            for &(a, b) in &edges {
                vg.add_edge(Arrow::simple(""), handles[a], handles[b]);
            }
            let mut svg = SVGWriter::new();
            vg.do_it(false, false, false, &mut svg);
            svg.finalize()
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(render)).map_err(|_| {
            crate::error::Error::InvalidInput {
                message: format!("could not lay out workflow {:?} as SVG", self.name),
            }
        })
    }
}
