//! Banners for phases other processes disturbed (`resources::contention`): one over the
//! report listing them all, one under each affected section.

use super::{Entry, Inputs};
use crate::results::PhaseName;
use std::fmt::Write;

/// A warning over the report (`phase` None: every contended phase and bandwidth figure) or
/// under one section: other processes used the CPUs while these timings were taken.
pub(super) fn banner(
    out: &mut String,
    inputs: &Inputs,
    entries: &[Entry],
    phase: Option<PhaseName>,
) {
    let phases: Vec<PhaseName> = phase.map_or(PhaseName::ALL.to_vec(), |p| vec![p]);
    let mut lines: Vec<String> = entries
        .iter()
        .flat_map(|e| {
            phases.iter().filter_map(move |&p| {
                let why = e.run.phase(p)?.resources.contention.as_ref()?;
                Some(format!("`{}` {p}: {why}", e.label))
            })
        })
        .collect();
    if phase.is_none() {
        lines.extend(inputs.files.iter().filter_map(|(path, r)| {
            let why = r.memory_bandwidth.as_ref()?.contention.as_ref()?;
            Some(format!(
                "`{}` memory bandwidth (not cached): {why}",
                path.display()
            ))
        }));
    }
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n> **Contended**: other processes used the CPUs while {} ran, so {} timings are inflated and noisier than the machine allows; rerun on an idle machine to compare.\n>",
        if phase.is_some() { "this section's requests" } else { "these phases" },
        if phase.is_some() { "its" } else { "their" },
    );
    for line in lines {
        let _ = writeln!(out, "> - {}", line.replace(['\n', '\r'], " "));
    }
}
