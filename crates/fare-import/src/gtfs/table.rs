//! One CSV file of a feed, read whole, with each row's real line number (LF and CRLF alike).

use std::collections::HashMap;
use std::path::Path;

use yitong_fare::LoadError;

/// Rows a feed file may hold (a large city's `stop_times.txt` has a few million).
pub const ROWS_MAX: usize = 20_000_000;

/// A CSV file: its columns and rows, each row with the line it starts on.
pub struct Table {
    pub file: String,
    columns: HashMap<String, usize>,
    pub rows: Vec<(usize, Vec<String>)>,
}

/// The 1-based line of byte `offset`: line breaks before it are `\n`, `\r\n` or a lone `\r`.
fn line_at(text: &str, offset: usize) -> usize {
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    let mut line = 1;
    for (i, &b) in bytes[..end].iter().enumerate() {
        // The reader may place a record just after the `\r` of a `\r\n`: that `\r` ends a line.
        if b == b'\n' || (b == b'\r' && (i + 1 == end || bytes.get(i + 1) != Some(&b'\n'))) {
            line += 1;
        }
    }
    line
}

impl Table {
    /// Reads `dir/name`; a missing optional file is `None`.
    pub fn read(dir: &Path, name: &str, required: bool) -> Result<Option<Table>, LoadError> {
        let path = dir.join(name);
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
            Err(e) => return Err(LoadError::new(file, e.to_string())),
        };
        Self::parse(file, &text).map(Some)
    }

    /// Parses the text of a file called `file`.
    pub fn parse(file: String, text: &str) -> Result<Table, LoadError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // Feeds often end rows early (trailing empty fields left out): those fields are empty.
        // Fields are trimmed here, not by the reader: its trimming drops the record's position.
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| LoadError::new(&file, e.to_string()).at_line(1))?.clone();
        let columns = headers.iter().enumerate().map(|(i, h)| (h.trim().to_string(), i)).collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| line_at(text, p.byte() as usize));
                LoadError::new(&file, e.to_string()).at_line(line)
            })?;
            if record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if rows.len() >= ROWS_MAX {
                return Err(LoadError::new(&file, format!("more than {ROWS_MAX} rows")));
            }
            let line = record.position().map_or(0, |p| line_at(text, p.byte() as usize));
            rows.push((line, record.iter().map(|f| f.trim().to_string()).collect()));
        }
        Ok(Table { file, columns, rows })
    }

    pub fn has(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }

    /// A field's value; empty is `None`.
    pub fn get<'a>(&self, row: &'a [String], column: &str) -> Option<&'a str> {
        self.columns.get(column).and_then(|&i| row.get(i)).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn req<'a>(&self, line: usize, row: &'a [String], column: &str) -> Result<&'a str, LoadError> {
        self.get(row, column).ok_or_else(|| self.err(line, column, "missing"))
    }

    pub fn err(&self, line: usize, column: &str, message: impl Into<String>) -> LoadError {
        LoadError::new(&self.file, message).at_line(line).in_field(column)
    }

    pub fn parse_field<T: std::str::FromStr>(
        &self,
        line: usize,
        row: &[String],
        column: &str,
    ) -> Result<Option<T>, LoadError> {
        match self.get(row, column) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| self.err(line, column, format!("`{v}` is not a valid value"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_real_in_lf_and_crlf_files() {
        for text in ["a,b\n1,2\n\"x\ny\",3\n4,5\n", "a,b\r\n1,2\r\n\"x\r\ny\",3\r\n4,5\r\n"] {
            let t = Table::parse("t.txt".into(), text).unwrap();
            let lines: Vec<usize> = t.rows.iter().map(|(l, _)| *l).collect();
            assert_eq!(lines, [2, 3, 5], "{text:?}");
        }
        let t = Table::parse("t.txt".into(), "a,b,c\n1\n").unwrap();
        assert_eq!((t.get(&t.rows[0].1, "a"), t.get(&t.rows[0].1, "c")), (Some("1"), None));
    }
}
