//! Markdown output shared by `report`, `compare` and `gate`.

use std::fmt::Write;

/// A cell's text made safe for a table row: a `|` would start a new cell and a line break
/// would end the row, so a model named `a|b` or holding a newline would shift every column.
pub fn escape_cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// A Markdown table; every cell is escaped.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "_Not measured in these results (see `--phases`)._\n".into();
    }
    let mut out = format!(
        "| {} |\n|{}\n",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| escape_cell(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_and_line_breaks_in_cells_keep_the_columns() {
        let t = table(&["a", "b"], &[vec!["x|y".into(), "line\nbreak".into()]]);
        let row = t.lines().nth(2).unwrap();
        assert_eq!(row, "| x\\|y | line break |");
        // Two unescaped separators inside plus the two at the ends: still two cells.
        assert_eq!(row.replace("\\|", "").matches('|').count(), 3);
        assert_eq!(t.lines().count(), 3);
    }
}
