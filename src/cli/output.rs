//! Where output goes and how values look: plain lines when piped, tables and
//! colors at a terminal, one JSON document with `--json`. Commands hand a
//! [`Report`] (their result as data) to [`Out::report`]; the printer chosen
//! once from `--json` renders it, so no command asks which it is.

use std::io::{self, BufWriter, Stdout, Write};

use colored::Color;
use comfy_table::{ContentArrangement, Table, presets};
use crdt::snapshot::write_pretty;
use serde_json::Value;

/// How output looks: colors, and whether values are shown whole. Decided
/// once per process (`--color`, `NO_COLOR`, whether stdout is a terminal)
/// and carried by the output and its renderers, not held in a global.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// Paint with ANSI colors.
    pub color: bool,
    /// Show values whole, never cut with "…" (piped output is for scripts).
    pub whole: bool,
}

impl Style {
    /// No colors, values whole: what a script reads.
    pub fn plain() -> Style {
        Style {
            color: false,
            whole: true,
        }
    }

    /// `text` with the SGR `codes` (`1`, `2;31`) when painting.
    fn sgr(self, codes: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{codes}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(self, text: &str) -> String {
        self.sgr("1", text)
    }

    pub fn dim(self, text: &str) -> String {
        self.sgr("2", text)
    }

    pub fn paint(self, text: &str, color: Color) -> String {
        self.sgr(&color.to_fg_str(), text)
    }

    /// Struck through and dimmed, in `color` (deleted text).
    pub fn struck(self, text: &str, color: Color) -> String {
        self.sgr(&format!("2;9;{}", color.to_fg_str()), text)
    }

    /// Underlined, in `color` (inserted text).
    pub fn underlined(self, text: &str, color: Color) -> String {
        self.sgr(&format!("4;{}", color.to_fg_str()), text)
    }

    /// A short summary of a value for listings; with `whole`, the same
    /// words with nothing cut: every member, the whole text.
    pub fn summary(self, v: &Value, max: usize) -> String {
        let text = match v {
            Value::Array(items) => {
                let n = items.len();
                let take = if self.whole { n } else { 3 };
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
        self.cut(&text, max)
    }

    /// `text` cut to `max` characters with "…", unless values are whole.
    pub fn cut(self, text: &str, max: usize) -> String {
        if self.whole || text.chars().count() <= max {
            text.to_string()
        } else {
            let mut t: String = text.chars().take(max.saturating_sub(1)).collect();
            t.push('…');
            t
        }
    }
}

/// The printer: text for people, or JSON documents (`--json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// A command's result as data, printable both ways. The command builds it;
/// [`Out::report`] prints it in the format chosen for the process.
pub trait Report {
    /// The `--json` document.
    fn json(&self) -> Value;
    /// The text for people (tables at a terminal, colors as the style says).
    fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()>;
}

/// Where output goes: buffered stdout, or any writer (a `Vec<u8>` in the
/// renderers' tests). Write errors (a closed pipe included) propagate, so
/// `main` can tell a closed pipe from a real failure.
pub struct Out<W: Write = BufWriter<Stdout>> {
    inner: W,
    tty: bool,
    style: Style,
    format: Format,
}

impl Out {
    pub fn new(tty: bool, style: Style, format: Format) -> Out {
        Out::to(BufWriter::new(io::stdout()), tty, style).in_format(format)
    }
}

impl<W: Write> Out<W> {
    /// Text output into `inner`: `tty` draws tables with borders.
    pub fn to(inner: W, tty: bool, style: Style) -> Out<W> {
        Out {
            inner,
            tty,
            style,
            format: Format::Text,
        }
    }

    /// The same output, printing reports in `format`.
    pub fn in_format(self, format: Format) -> Out<W> {
        Out { format, ..self }
    }

    /// Prints a command's result in the chosen format.
    pub fn report(&mut self, r: &impl Report) -> io::Result<()> {
        match self.format {
            Format::Json => self.json(&r.json()),
            Format::Text => r.text(self),
        }
    }

    /// One event of a stream that does not end (`watch`, `sync --follow`):
    /// its text, or one compact JSON document on a line (JSON lines).
    pub fn line(&mut self, r: &impl Report) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let mut line = r.json().to_string();
                line.push('\n');
                self.write_all(line.as_bytes())
            }
            Format::Text => r.text(self),
        }
    }

    /// A list printed as it comes: each item's text, or one JSON array
    /// (the same text as [`Out::json`] of the whole array) that is never
    /// held whole.
    pub fn list(&mut self) -> List<'_, W> {
        List {
            out: self,
            first: true,
        }
    }

    pub fn style(&self) -> Style {
        self.style
    }

    /// Whether this is a terminal (tables get borders, notes go to stderr).
    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// The writer, with everything written.
    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// One JSON document, pretty, keys sorted.
    pub fn json(&mut self, v: &Value) -> io::Result<()> {
        let mut text = String::new();
        write_pretty(&mut text, v, 0);
        writeln!(self, "{text}")
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

/// A list being printed: see [`Out::list`].
pub struct List<'o, W: Write> {
    out: &'o mut Out<W>,
    first: bool,
}

impl<W: Write> List<'_, W> {
    pub fn item(&mut self, r: &impl Report) -> io::Result<()> {
        match self.out.format {
            Format::Json => {
                let mut text = String::from(if self.first { "[\n  " } else { ",\n  " });
                write_pretty(&mut text, &r.json(), 1);
                self.out.write_all(text.as_bytes())?;
            }
            Format::Text => r.text(self.out)?,
        }
        self.first = false;
        Ok(())
    }

    /// Ends the list (the JSON array's closing bracket).
    pub fn finish(self) -> io::Result<()> {
        match self.out.format {
            Format::Json if self.first => self.out.write_all(b"[]\n"),
            Format::Json => self.out.write_all(b"\n]\n"),
            Format::Text => Ok(()),
        }
    }
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The JSON document of the objects of `name`: the single object's
/// document with `"conflict": false`, or, when a type conflict gives the
/// name several objects, `{"name", "conflict": true, "objects": [...]}`
/// (one document per type).
pub fn per_type(name: &str, docs: Vec<Value>) -> Value {
    match <[Value; 1]>::try_from(docs) {
        Ok([mut one]) => {
            one["conflict"] = Value::Bool(false);
            one
        }
        Err(docs) => serde_json::json!({
            "name": name,
            "conflict": true,
            "objects": docs,
        }),
    }
}

/// A value on one line: numbers and JSON compact, text raw.
pub fn one_line(v: &Value, is_text: bool) -> String {
    match v {
        Value::String(s) if is_text => s.clone(),
        other => other.to_string(),
    }
}

/// A report printed both ways into buffers, plain and piped: its text, and
/// its `--json` document (checked to be one JSON document).
#[cfg(test)]
pub fn printed(r: &impl Report) -> (String, Value) {
    let print = |format| {
        let mut out = Out::to(Vec::new(), false, Style::plain()).in_format(format);
        out.report(r).unwrap();
        String::from_utf8(out.into_inner()).unwrap()
    };
    let json = print(Format::Json);
    assert!(json.ends_with("}\n") || json.ends_with("]\n"), "{json}");
    let doc = serde_json::from_str(&json).unwrap();
    (print(Format::Text), doc)
}

#[cfg(test)]
mod test {
    use super::*;
    use serde_json::json;

    /// A report that says which printer printed it.
    struct Said(&'static str);

    impl Report for Said {
        fn json(&self) -> Value {
            json!({ "said": self.0 })
        }

        fn text<W: Write>(&self, out: &mut Out<W>) -> io::Result<()> {
            writeln!(out, "said {}", self.0)
        }
    }

    fn in_format(format: Format, f: impl FnOnce(&mut Out<Vec<u8>>)) -> String {
        let mut out = Out::to(Vec::new(), false, Style::plain()).in_format(format);
        f(&mut out);
        String::from_utf8(out.into_inner()).unwrap()
    }

    #[test]
    fn the_format_chooses_the_printer_for_reports_lists_and_lines() {
        let report = |o: &mut Out<Vec<u8>>| o.report(&Said("a")).unwrap();
        assert_eq!(in_format(Format::Text, report), "said a\n");
        assert_eq!(in_format(Format::Json, report), "{\n  \"said\": \"a\"\n}\n");
        let lines = |o: &mut Out<Vec<u8>>| {
            o.line(&Said("a")).unwrap();
            o.line(&Said("b")).unwrap();
        };
        assert_eq!(in_format(Format::Text, lines), "said a\nsaid b\n");
        assert_eq!(
            in_format(Format::Json, lines),
            "{\"said\":\"a\"}\n{\"said\":\"b\"}\n"
        );
        // A list streamed as JSON is the same text as the whole array printed at once.
        for n in [0, 1, 3] {
            let items: Vec<Said> = ["a", "b", "c"][..n].iter().map(|s| Said(s)).collect();
            let streamed = in_format(Format::Json, |o| {
                let mut list = o.list();
                for i in &items {
                    list.item(i).unwrap();
                }
                list.finish().unwrap();
            });
            let whole = in_format(Format::Text, |o| {
                o.json(&Value::Array(items.iter().map(Report::json).collect()))
                    .unwrap()
            });
            assert_eq!(streamed, whole);
            let text = in_format(Format::Text, |o| {
                let mut list = o.list();
                for i in &items {
                    list.item(i).unwrap();
                }
                list.finish().unwrap();
            });
            assert_eq!(text.lines().count(), n, "{text}");
        }
    }

    fn rendered(tty: bool, f: impl FnOnce(&mut Out<Vec<u8>>)) -> String {
        let mut out = Out::to(Vec::new(), tty, Style::plain());
        f(&mut out);
        String::from_utf8(out.into_inner()).unwrap()
    }

    #[test]
    fn tables_are_plain_columns_when_piped_and_boxes_at_a_terminal() {
        let rows = || {
            vec![
                vec![
                    "metrics:requests".to_string(),
                    "g-counter".into(),
                    "6".into(),
                ],
                vec![
                    "tasks:active".to_string(),
                    "or-set".into(),
                    "2 members".into(),
                ],
            ]
        };
        let piped = rendered(false, |o| {
            o.table(&["name", "type", "value"], rows()).unwrap()
        });
        assert_eq!(
            piped,
            "metrics:requests  g-counter  6\ntasks:active      or-set     2 members\n"
        );
        let labeled = rendered(false, |o| {
            o.labeled_table(&["name", "type", "value"], rows()).unwrap()
        });
        assert!(
            labeled.starts_with("NAME              TYPE       VALUE\n"),
            "{labeled}"
        );
        let boxed = rendered(true, |o| {
            o.table(&["name", "type", "value"], rows()).unwrap()
        });
        assert!(boxed.contains('┌') && boxed.contains("│ name"), "{boxed}");
    }

    #[test]
    fn json_is_one_document_and_a_conflict_is_wrapped() {
        let one = rendered(false, |o| {
            o.json(&per_type("n", vec![json!({"name": "n"})])).unwrap()
        });
        assert_eq!(one, "{\n  \"conflict\": false,\n  \"name\": \"n\"\n}\n");
        let two = rendered(false, |o| {
            o.json(&per_type(
                "n",
                vec![json!({"type": "a"}), json!({"type": "b"})],
            ))
            .unwrap()
        });
        let v: Value = serde_json::from_str(&two).unwrap();
        assert_eq!(v["conflict"], true);
        assert_eq!(v["objects"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_style_paints_and_cuts_only_when_asked() {
        let terminal = Style {
            color: true,
            whole: false,
        };
        assert_eq!(terminal.bold("x"), "\u{1b}[1mx\u{1b}[0m");
        assert_eq!(Style::plain().bold("x"), "x");
        let members = json!(["a", "b", "c", "d"]);
        assert_eq!(
            terminal.summary(&members, 80),
            "4 members: {\"a\", \"b\", \"c\", …}"
        );
        assert_eq!(
            Style::plain().summary(&members, 5),
            "4 members: {\"a\", \"b\", \"c\", \"d\"}"
        );
        assert_eq!(terminal.cut("abcdef", 4), "abc…");
    }
}
