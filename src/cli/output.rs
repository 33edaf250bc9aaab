//! Where output goes and how values look: plain lines when piped, tables and
//! colors at a terminal, one JSON document with `--json`.

use std::io::{self, BufWriter, Stdout, Write};

use comfy_table::{ContentArrangement, Table, presets};
use crdt::snapshot::write_pretty;
use serde_json::Value;

/// Buffered stdout. Write errors (a closed pipe included) propagate, so
/// `main` can tell a closed pipe from a real failure.
pub struct Out {
    inner: BufWriter<Stdout>,
    tty: bool,
}

impl Out {
    pub fn new(tty: bool) -> Out {
        Out {
            inner: BufWriter::new(io::stdout()),
            tty,
        }
    }

    /// One JSON document, pretty, keys sorted.
    pub fn json(&mut self, v: &Value) -> io::Result<()> {
        let mut text = String::new();
        write_pretty(&mut text, v, 0);
        writeln!(self, "{text}")
    }

    /// One JSON object for the objects of `name`: the single object's
    /// document with `"conflict": false`, or, when a type conflict gives the
    /// name several objects, `{"name", "conflict": true, "objects": [...]}`
    /// (one document per type).
    pub fn json_docs(&mut self, name: &str, docs: Vec<Value>) -> io::Result<()> {
        match <[Value; 1]>::try_from(docs) {
            Ok([mut one]) => {
                one["conflict"] = Value::Bool(false);
                self.json(&one)
            }
            Err(docs) => self.json(&serde_json::json!({
                "name": name,
                "conflict": true,
                "objects": docs,
            })),
        }
    }

    /// A table: borders at a terminal, aligned plain columns without a
    /// header when piped (easy to cut or awk).
    pub fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>) -> io::Result<()> {
        self.table_with(header, rows, false)
    }

    /// A table that keeps its header line when piped too.
    pub fn labeled_table(&mut self, header: &[&str], rows: Vec<Vec<String>>) -> io::Result<()> {
        self.table_with(header, rows, true)
    }

    fn table_with(
        &mut self,
        header: &[&str],
        rows: Vec<Vec<String>>,
        piped_header: bool,
    ) -> io::Result<()> {
        let mut t = Table::new();
        if self.tty {
            t.load_style(presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(header.to_vec());
            // Some terminals (and `script`) report no usable width.
            let width = t.width().filter(|w| *w >= 40).unwrap_or(100);
            t.set_width(width);
        } else {
            t.load_style(presets::NOTHING);
            if piped_header {
                t.set_header(header.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>());
            }
        }
        for row in rows {
            t.add_row(row);
        }
        if !self.tty {
            // No padding before the first column, so lines start with the name.
            for col in t.column_iter_mut() {
                col.set_padding((0, 2));
            }
        }
        for line in t.lines() {
            writeln!(self, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A value on one line: numbers and JSON compact, text raw.
pub fn one_line(v: &Value, is_text: bool) -> String {
    match v {
        Value::String(s) if is_text => s.clone(),
        other => other.to_string(),
    }
}

/// Values are shown whole (stdout is not a terminal): piped output is for
/// scripts, and a value cut with "…" would lose what they read.
static WHOLE_VALUES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once at start: `true` when stdout is not a terminal.
pub fn show_whole_values(whole: bool) {
    WHOLE_VALUES.store(whole, std::sync::atomic::Ordering::Relaxed);
}

/// A short summary for listings at a terminal; piped, the same words
/// with nothing cut: every member, the whole text (see [`show_whole_values`]).
pub fn summary(v: &Value, max: usize) -> String {
    let whole = WHOLE_VALUES.load(std::sync::atomic::Ordering::Relaxed);
    let text = match v {
        Value::Array(items) => {
            let n = items.len();
            let take = if whole { n } else { 3 };
            let shown: Vec<String> = items.iter().take(take).map(|i| i.to_string()).collect();
            let more = if n > take { ", …" } else { "" };
            format!(
                "{n} member{}: {{{}{more}}}",
                if n == 1 { "" } else { "s" },
                shown.join(", ")
            )
        }
        Value::String(s) => format!("{:?}", s),
        other => other.to_string(),
    };
    if whole { text } else { truncate(&text, max) }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
