//! Drawing workflows as text: Mermaid and Graphviz DOT (the SVG picture is
//! `picture.rs`).

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
    pub(super) fn node_edges(&self) -> Result<Vec<(usize, usize)>> {
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
        let target = step.target();
        // A step named after its module shows the name once.
        let mut label = if target == step.id {
            target
        } else {
            format!("{}\n{target}", step.id)
        };
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
}
