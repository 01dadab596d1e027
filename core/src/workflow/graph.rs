//! Drawing workflows: Mermaid, Graphviz DOT, and SVG rendered in pure Rust
//! (`layout-rs`, no system binary).

use super::{StepInput, Workflow};
use crate::error::Result;

fn esc_dot(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn esc_mermaid(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

impl Workflow {
    /// The workflow's edges as `(from, to)`: `"input"`, step ids and
    /// `"output"` (what the pictures draw).
    pub fn edges(&self) -> Result<Vec<(String, String)>> {
        let s = self.structure()?;
        let mut edges = Vec::new();
        for (i, input) in s.inputs.iter().enumerate() {
            let to = self.steps[i].id.clone();
            match input {
                StepInput::Workflow => edges.push(("input".to_string(), to)),
                StepInput::One(u) => edges.push((self.steps[*u].id.clone(), to)),
                StepInput::Map(refs) => {
                    edges.extend(refs.iter().map(|(id, _)| (id.clone(), to.clone())))
                }
            }
        }
        edges.push((self.steps[s.output].id.clone(), "output".to_string()));
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

    /// A Mermaid flowchart (left to right).
    pub fn to_mermaid(&self) -> Result<String> {
        let edges = self.edges()?;
        let mut out = String::from("flowchart LR\n    input([input])\n    output([output])\n");
        for i in 0..self.steps.len() {
            out.push_str(&format!(
                "    {}[\"{}\"]\n",
                self.steps[i].id.replace(['.', '-'], "_"),
                esc_mermaid(&self.label(i)).replace('\n', "<br/>")
            ));
        }
        for (from, to) in edges {
            out.push_str(&format!(
                "    {} --> {}\n",
                from.replace(['.', '-'], "_"),
                to.replace(['.', '-'], "_")
            ));
        }
        Ok(out)
    }

    /// A Graphviz DOT digraph.
    pub fn to_dot(&self) -> Result<String> {
        let edges = self.edges()?;
        let mut out = format!(
            "digraph \"{}\" {{\n    rankdir=LR;\n    node [shape=box];\n    \"input\" [shape=ellipse];\n    \"output\" [shape=ellipse];\n",
            esc_dot(&self.name)
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

    /// An SVG picture of the workflow, laid out in pure Rust (`pictures` feature).
    #[cfg(feature = "pictures")]
    pub fn to_svg(&self) -> Result<String> {
        use layout::backends::svg::SVGWriter;
        use layout::core::base::Orientation;
        use layout::core::geometry::Point;
        use layout::core::style::StyleAttr;
        use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
        use layout::topo::layout::VisualGraph;

        let edges = self.edges()?;
        let mut names: Vec<String> = vec!["input".into()];
        names.extend(self.steps.iter().map(|s| s.id.clone()));
        names.push("output".into());
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
            for (from, to) in &edges {
                let a = names
                    .iter()
                    .position(|n| n == from)
                    .expect("edge from a known node");
                let b = names
                    .iter()
                    .position(|n| n == to)
                    .expect("edge to a known node");
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
