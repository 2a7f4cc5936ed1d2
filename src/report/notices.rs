//! The notices section: what each run said about its model and settings.

use super::*;

pub(super) fn section(out: &mut String, inputs: &Inputs, entries: &[Entry]) {
    let load_failures = inputs.files.iter().flat_map(|(_, r)| {
        r.load_failures
            .iter()
            .map(|f| format!("- {}: **could not be loaded**: {}", f.label, f.error))
    });
    let lines: Vec<String> = entries
        .iter()
        .flat_map(|e| {
            let notices = e
                .run
                .model
                .notices
                .iter()
                .map(move |n| format!("- {}: {n}", e.label));
            let error = e
                .run
                .error
                .iter()
                .map(move |err| format!("- {}: **stopped early**: {err}", e.label));
            notices.chain(error)
        })
        .chain(load_failures)
        .collect();
    if !lines.is_empty() {
        let _ = write!(out, "\n## Notices\n\n{}\n", lines.join("\n"));
    }
}
