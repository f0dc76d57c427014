//! Human output an admin reads: aligned tables, `Key : value` lists (PowerShell's
//! `Format-List`), sizes and counts with separators.

use std::io::{self, Write};

/// How a column's cells line up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// A table with a header row; columns are as wide as their widest cell, two spaces apart.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// Writes the header and the rows; the last column is never padded.
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.columns[i].0.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = self.columns.iter().map(|c| c.0.to_owned()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in cells.iter().enumerate() {
                let last = i + 1 == cells.len();
                let pad = widths[i].saturating_sub(cell.chars().count());
                match self.columns[i].1 {
                    Align::Right => line.extend(std::iter::repeat_n(' ', pad)),
                    Align::Left => {}
                }
                line.push_str(cell);
                if !last {
                    if self.columns[i].1 == Align::Left {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    line.push_str("  ");
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Writes `Key : value` lines with the colons aligned, as `Format-List` does.
pub fn write_list(out: &mut dyn Write, items: &[(&str, String)]) -> io::Result<()> {
    let width = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in items {
        writeln!(out, "{key:<width$} : {value}")?;
    }
    Ok(())
}

/// `36700160` as `36,700,160`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A size in binary units with one decimal: `512 B`, `1.5 KiB`, `35.0 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// An optional value, or `-` in a table.
pub fn or_dash(value: Option<&str>) -> String {
    value.map_or_else(
        || "-".to_owned(),
        |v| super::terminal::printable(&v.replace(['\r', '\n'], " ")).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_an_admin_expects() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(36_700_160), "36,700,160");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(36_700_160), "35.0 MiB");
    }

    #[test]
    fn columns_line_up() {
        let mut t = Table::new(&[
            ("NAME", Align::Left),
            ("N", Align::Right),
            ("NOTE", Align::Left),
        ]);
        t.row(vec!["a".into(), "1000".into(), "x".into()]);
        t.row(vec!["bbbbbb".into(), "2".into(), "-".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "NAME       N  NOTE\na       1000  x\nbbbbbb     2  -\n"
        );
    }
}
