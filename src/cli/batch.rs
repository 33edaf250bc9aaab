//! `crdt batch`: many commands, one lock, one write.

use std::borrow::Cow;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::FromArgMatches;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::args::{
    AddArgs, AppendArgs, Cli, Command, DecArgs, DelArgs, DeleteArgs, GetArgs, IncArgs, InsertArgs,
    PutArgs, RmArgs, SetArgs, UnsetArgs, When,
};
use super::output::{Out, Report};
use super::read::write_value;
use super::{Ctx, Exit, ops};

/// Parses one line with the command line's syntax and shell quoting.
/// `parser` is the clap tree, built once per batch (building it is the costly part).
fn parse_line(parser: &mut clap::Command, line: &str) -> Result<Command> {
    if let Some(cmd) = simple_words(line).and_then(|w| fast_parse(&w)) {
        return Ok(cmd);
    }
    let words = split_words(line)?;
    let borrowed: Vec<Cow<'_, str>> = words.iter().map(|w| Cow::Borrowed(w.as_str())).collect();
    if let Some(cmd) = fast_parse(&borrowed) {
        return Ok(cmd);
    }
    let matches = parser.try_get_matches_from_mut(std::iter::once("crdt".to_string()).chain(words));
    let cli = matches
        .and_then(|m| Cli::from_arg_matches(&m))
        .map_err(|e| {
            // clap's message without its usage block and help hint.
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid command")
                .trim_start_matches("error: ");
            anyhow!("{first}")
        })?;
    match cli.command {
        c @ (Command::Inc(_)
        | Command::Dec(_)
        | Command::Set(_)
        | Command::Add(_)
        | Command::Rm(_)
        | Command::Insert(_)
        | Command::Delete(_)
        | Command::Append(_)
        | Command::New(_)
        | Command::Put(_)
        | Command::Unset(_)
        | Command::Del(_)
        | Command::Resolve(_)
        | Command::Transfer(_)
        | Command::Get(GetArgs {
            when: When { at: None },
            ..
        })) => Ok(c),
        Command::Get(_) => Err(anyhow!(
            "`get --at` is not allowed in a batch: a batch reads the replica as it is"
        )),
        other => Err(anyhow!(
            "`{}` is not allowed in a batch (only change commands and get)",
            format!("{other:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or("?")
                .to_lowercase()
        )),
    }
}

/// Splits a line into words like a POSIX shell (shlex), plus bash's `$'...'`
/// quoting with backslash escapes, so a batch line can carry newlines and
/// tabs: `insert doc 0 $'line one\nline two'`.
pub(crate) fn split_words(line: &str) -> Result<Vec<String>> {
    if let Some(words) = simple_words(line) {
        return Ok(words.into_iter().map(Cow::into_owned).collect());
    }
    if !line.contains("$'") {
        return shlex::split(line).ok_or_else(|| anyhow!("unbalanced quotes"));
    }
    // Rewrite each $'...' segment outside other quotes as a plain
    // single-quoted word, then split.
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '$') if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push_str(&ansi_c_word(&mut chars)?);
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (Some(q), _) if c == q => {
                quote = None;
                out.push(c);
            }
            (None, '\\') | (Some('"'), '\\') => {
                out.push(c);
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    shlex::split(&out).ok_or_else(|| anyhow!("unbalanced quotes"))
}

/// Lines of plain words and single-quoted words (no backslashes, double
/// quotes or `$`), split without shlex: most batch lines are like that, and a
/// shell splits them the same way. `None` sends the line to shlex.
fn simple_words(line: &str) -> Option<Vec<Cow<'_, str>>> {
    let b = line.as_bytes();
    let special = |c: u8| {
        matches!(
            c,
            b'\\'
                | b'"'
                | b'$'
                | b'`'
                | b'\n'
                | b'|'
                | b'&'
                | b';'
                | b'<'
                | b'>'
                | b'('
                | b')'
                | b'*'
                | b'?'
                | b'['
                | b'~'
                | b'!'
                | b'{'
                | b'#'
        )
    };
    let mut words = Vec::with_capacity(4);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        // Most words are one plain or one quoted piece: borrow it then.
        let mut word: Option<Cow<'_, str>> = None;
        while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
            let piece = if b[i] == b'\'' {
                let close = i + 1 + b[i + 1..].iter().position(|&c| c == b'\'')?;
                let p = &line[i + 1..close];
                i = close + 1;
                p
            } else {
                let start = i;
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\'') {
                    if special(b[i]) {
                        return None;
                    }
                    i += 1;
                }
                &line[start..i]
            };
            word = Some(match word {
                None => Cow::Borrowed(piece),
                Some(w) => Cow::Owned(w.into_owned() + piece),
            });
        }
        words.push(word.unwrap_or_default());
    }
    Some(words)
}

/// Decodes the body of a `$'...'` word (after the opening quote) and returns
/// it single-quoted for shlex.
fn ansi_c_word(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String> {
    let mut decoded = String::new();
    loop {
        let Some(c) = chars.next() else {
            bail!("unbalanced quotes in $'...'");
        };
        match c {
            '\'' => break,
            '\\' => {
                let e = chars
                    .next()
                    .ok_or_else(|| anyhow!("a backslash ends the line"))?;
                match e {
                    'n' => decoded.push('\n'),
                    't' => decoded.push('\t'),
                    'r' => decoded.push('\r'),
                    '\\' | '\'' | '"' | '?' => decoded.push(e),
                    'u' | 'U' | 'x' => {
                        let max = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut digits = String::new();
                        while digits.len() < max
                            && chars.peek().is_some_and(char::is_ascii_hexdigit)
                        {
                            digits.push(chars.next().expect("peeked"));
                        }
                        let code = u32::from_str_radix(&digits, 16)
                            .map_err(|_| anyhow!("\\{e} needs hex digits"))?;
                        decoded.push(
                            char::from_u32(code)
                                .ok_or_else(|| anyhow!("\\{e}{digits} is not a character"))?,
                        );
                    }
                    other => bail!("unknown escape \\{other} in $'...'"),
                }
            }
            c => decoded.push(c),
        }
    }
    Ok(shlex::try_quote(&decoded)
        .map_err(|_| anyhow!("a NUL character cannot be quoted"))?
        .into_owned())
}

/// The common flag-free lines, parsed without clap (clap costs ~10 µs a
/// line, which dominates a large batch). Anything else, including every line
/// with an option or a wrong number of arguments, returns `None` and goes
/// through clap, so errors and edge cases stay clap's. A test checks that
/// both parsers agree.
pub(crate) fn fast_parse(words: &[Cow<'_, str>]) -> Option<Command> {
    // `--` ends the options, so text may start with a dash (`insert doc 0 -- -x`).
    let owned;
    let words = match words.iter().position(|w| w.as_ref() == "--") {
        Some(i) if words[..i].iter().all(|w| !w.starts_with('-')) => {
            owned = [&words[..i], &words[i + 1..]].concat();
            &owned[..]
        }
        Some(_) => return None,
        None if words.iter().any(|w| w.starts_with('-')) => return None,
        None => words,
    };
    let name = || words[1].to_string();
    let num = |i: usize| words[i].parse::<u64>().ok();
    let idx = |i: usize| words[i].parse::<usize>().ok();
    Some(match (words.first()?.as_ref(), words.len()) {
        ("inc", 2 | 3) => Command::Inc(IncArgs {
            name: name(),
            amount: if words.len() == 3 { num(2)? } else { 1 },
            ty: None,
        }),
        ("dec", 2 | 3) => Command::Dec(DecArgs {
            name: name(),
            amount: if words.len() == 3 { num(2)? } else { 1 },
        }),
        ("set", 3) => Command::Set(SetArgs {
            name: name(),
            value: words[2].to_string(),
            string: false,
        }),
        ("add", 3..) => Command::Add(AddArgs {
            name: name(),
            elems: words[2..].iter().map(|w| w.to_string()).collect(),
            string: false,
        }),
        ("rm", 3..) => Command::Rm(RmArgs {
            name: name(),
            elems: words[2..].iter().map(|w| w.to_string()).collect(),
            string: false,
        }),
        ("insert", 4) => Command::Insert(InsertArgs {
            name: name(),
            pos: idx(2)?,
            text: words[3].to_string(),
        }),
        ("delete", 3 | 4) => Command::Delete(DeleteArgs {
            name: name(),
            pos: idx(2)?,
            len: if words.len() == 4 { idx(3)? } else { 1 },
        }),
        ("append", 3) => Command::Append(AppendArgs {
            name: name(),
            text: words[2].to_string(),
        }),
        ("put", 4) => Command::Put(PutArgs {
            name: name(),
            key: words[2].to_string(),
            value: words[3].to_string(),
            string: false,
        }),
        ("del", 2..) => Command::Del(DelArgs {
            names: words[1..].iter().map(|w| w.to_string()).collect(),
        }),
        ("unset", 3..) => Command::Unset(UnsetArgs {
            name: name(),
            keys: words[2..].iter().map(|w| w.to_string()).collect(),
        }),
        ("get", 2 | 3) => Command::Get(GetArgs {
            name: name(),
            key: words.get(2).map(|k| k.to_string()),
            raw: false,
            when: When { at: None },
        }),
        _ => return None,
    })
}

/// One line against the batch's transaction: `Ok(Ok(name))` when it
/// applied (the names it changed, none for a `get`), `Ok(Err(e))` when the
/// line fails (reported; the batch goes on), `Err` when the batch must
/// stop: a change that cannot be recorded (it would reuse ids) saves nothing.
fn apply_line(
    c: &mut crdt::db::Change<'_>,
    parser: &mut clap::Command,
    line_no: usize,
    line: &str,
    now: u64,
    gets: &mut Vec<(String, serde_json::Value)>,
) -> Result<Result<Vec<String>>> {
    let cmd = match parse_line(parser, line) {
        Ok(cmd) => cmd,
        Err(e) => return Ok(Err(e)),
    };
    let name = match &cmd {
        Command::Get(GetArgs { name, .. }) => Some(name.as_str()),
        other => ops::command_name(other),
    };
    if let Some(name) = name {
        c.load_name(name)?;
    }
    let folded = name.is_some_and(|name| {
        matches!(
            cmd,
            Command::Insert(_) | Command::Append(_) | Command::Delete(_)
        ) && c.folds(name)
    });
    if let (Some(name), true) = (name, folded) {
        return match ops::apply_untracked(c.store_mut(), &cmd, now) {
            Ok(()) => {
                c.record_folded(name, line_no);
                Ok(Ok(vec![name.to_string()]))
            }
            Err(e) => Ok(Err(e)),
        };
    }
    if !matches!(cmd, Command::Get(_)) {
        // The folded lines before are a row of their own, before this one.
        c.flush_run().with_context(|| format!("line {line_no}"))?;
    }
    if matches!(cmd, Command::Del(_) | Command::Resolve(_)) {
        let names = ops::deletion_names(&cmd);
        for name in &names {
            c.load_name(name)?;
        }
        let list = match ops::deletions(c.store(), &cmd) {
            Ok(list) => list,
            Err(e) => return Ok(Err(e)),
        };
        ops::apply_deletions(c, &list, now).with_context(|| format!("line {line_no}"))?;
        return Ok(Ok(list.into_iter().map(|(n, _)| n).collect()));
    }
    if let Command::Get(GetArgs { name, key, raw, .. }) = &cmd {
        let list = c.store().objects(name);
        if list.is_empty() {
            return Ok(Err(anyhow!("no object named {name}")));
        }
        if let Some(key) = key {
            let value = match super::read::key_value(&list, name, key) {
                Ok(Some(v)) => v,
                Ok(None) => return Ok(Err(anyhow!("{name} has no key {key}"))),
                Err(e) => return Ok(Err(e)),
            };
            let doc =
                json!({"line": line_no, "name": name, "type": "map", "key": key, "value": value});
            gets.push((super::read::json_line(value, *raw), doc));
            return Ok(Ok(Vec::new()));
        }
        for o in list {
            let value = json!({"line": line_no, "name": name, "type": o.ty().as_str(),
                "value": o.value_json()});
            gets.push((value_text(o, *raw), value));
        }
        return Ok(Ok(Vec::new()));
    }
    let (name, ty, delta, summary) = match ops::apply(c.store_mut(), &cmd, now) {
        Ok(applied) => applied,
        Err(e) => return Ok(Err(e)),
    };
    c.record_text(&name, ty, delta, summary, None)
        .with_context(|| format!("line {line_no}"))?;
    Ok(Ok(vec![name]))
}

/// Failing lines printed on stderr before the rest are only counted.
const MAX_SHOWN_ERRORS: usize = 50;

pub fn run(ctx: &Ctx, out: &mut Out, file: Option<PathBuf>, stop_on_error: bool) -> Result<Exit> {
    let text = read_batch(file.as_deref())?;
    let lines: Vec<&str> = text.lines().collect();
    let bar = progress(lines.len());

    // With --url, the endpoint is asked first: one that refuses changes nothing.
    let link = if ctx.url.is_some() {
        Some(super::net::link_before_change(ctx)?)
    } else {
        None
    };
    let mut changed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let now = ops::now_ms();
    let mut parser = super::args::command();
    let mut errors: Vec<(usize, String)> = Vec::new();
    let mut applied = 0usize;
    // What `get` lines read: the text they print, and the value for --json.
    let mut gets: Vec<(String, serde_json::Value)> = Vec::new();
    let result = ctx.update("batch", |c| {
        c.fold_runs();
        for (i, line) in lines.iter().enumerate() {
            if let Some(bar) = &bar
                && i % 1024 == 0
            {
                bar.set_position(i as u64);
            }
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match apply_line(c, &mut parser, i + 1, trimmed, now, &mut gets)? {
                Ok(names) => {
                    applied += 1;
                    if link.is_some() {
                        changed.extend(names);
                    }
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    if errors.len() < MAX_SHOWN_ERRORS {
                        eprintln!("crdt: line {}: {msg}", i + 1);
                    }
                    errors.push((i + 1, msg));
                    if stop_on_error {
                        return Err(anyhow!("stopped at line {}; nothing was saved", i + 1));
                    }
                }
            }
        }
        // The save (one transaction: every row, one fsync) is a step of
        // its own, not a bar stuck at 99%.
        if let Some(bar) = &bar {
            bar.set_position(lines.len() as u64);
            bar.set_message("; saving");
        }
        Ok(())
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // A batch that failed saved nothing: what its gets read is not printed.
    result?;
    let failed = errors.len();
    let synced = match link {
        Some(link) => {
            let names: Vec<String> = changed.into_iter().collect();
            Some(super::net::sync_changed(ctx, link, &names)?)
        }
        None => None,
    };
    out.report(&Batched {
        applied,
        errors: &errors,
        gets: &gets,
        synced: synced.map(|code| code == Exit::Success),
    })?;
    Ok(if failed > 0 {
        Exit::Error
    } else {
        synced.unwrap_or(Exit::Success)
    })
}

/// The batch's text: a file, or stdin (none, or `-`).
fn read_batch(file: Option<&Path>) -> Result<String> {
    let input: Box<dyn Read> = match file {
        Some(p) if p != Path::new("-") => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        ),
        _ => Box::new(std::io::stdin()),
    };
    let mut text = String::new();
    BufReader::new(input)
        .read_to_string(&mut text)
        .context("cannot read the batch (it must be UTF-8 text)")?;
    Ok(text)
}

/// A progress bar on stderr for a long batch at a terminal.
fn progress(lines: usize) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || lines < 10_000 {
        return None;
    }
    let bar = ProgressBar::new(lines as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} lines ({percent}%), {elapsed} so far{msg}",
        )
        .expect("valid template"),
    );
    Some(bar)
}

/// The batch's outcome: what its gets read (text: their values), how many
/// lines applied and failed (text: a line on stderr), whether it synced.
struct Batched<'a> {
    applied: usize,
    errors: &'a [(usize, String)],
    /// Each get's text, and its value for `--json`.
    gets: &'a [(String, Value)],
    synced: Option<bool>,
}

impl Report for Batched<'_> {
    fn json(&self) -> Value {
        let errs: Vec<_> = self
            .errors
            .iter()
            .map(|(l, e)| json!({"line": l, "error": e}))
            .collect();
        let gets: Vec<&Value> = self.gets.iter().map(|(_, v)| v).collect();
        let mut report = json!({"applied": self.applied, "failed": self.errors.len(),
            "errors": errs, "gets": gets, "saved": true});
        if let Some(synced) = self.synced {
            report["synced"] = json!(synced);
        }
        report
    }

    fn text<W: Write>(&self, out: &mut Out<W>) -> std::io::Result<()> {
        for (text, _) in self.gets {
            write!(out, "{text}")?;
        }
        let failed = self.errors.len();
        if failed > MAX_SHOWN_ERRORS {
            eprintln!(
                "crdt: ... and {} more failing lines (all of them with --json)",
                failed - MAX_SHOWN_ERRORS
            );
        }
        eprintln!("crdt: batch: {} applied, {failed} failed", self.applied);
        Ok(())
    }
}

/// What `get` prints for an object, as text.
fn value_text(o: &crdt::Object, raw: bool) -> String {
    let mut buf = Vec::new();
    write_value(&mut buf, o, raw).expect("writing to memory");
    String::from_utf8(buf).expect("values are UTF-8")
}

/// Both parsers give the same command for the same words.
#[cfg(test)]
mod test {
    use super::*;
    use crate::cli::output::printed;

    #[test]
    fn a_batch_prints_its_gets_and_the_counts_go_to_stderr() {
        let errors = [(2, "bad".to_string())];
        let gets = [("5\n".to_string(), json!({"line": 1, "value": 5}))];
        let (text, doc) = printed(&Batched {
            applied: 3,
            errors: &errors,
            gets: &gets,
            synced: Some(true),
        });
        assert_eq!(text, "5\n");
        assert_eq!(
            doc,
            json!({"applied": 3, "failed": 1, "errors": [{"line": 2, "error": "bad"}],
                   "gets": [{"line": 1, "value": 5}], "saved": true, "synced": true})
        );
    }

    #[test]
    fn fast_parse_agrees_with_clap() {
        let lines = [
            "inc metrics:requests",
            "inc metrics:requests 5",
            "dec resources:gpu 30",
            "dec resources:gpu",
            "set config:global '{\"a\": 1}'",
            "set config:mode fast",
            "add tasks:active task-1 'task 2' '{\"id\": 3}'",
            "rm tasks:active task-1",
            "insert document:main 0 'Hello '",
            "delete document:main 3",
            "delete document:main 3 4",
            "append document:main 'World'",
            "get metrics:requests",
            "insert document:main 3 -- '- item'",
            "append document:main -- --",
            "put config:flags ai-review true",
            "unset config:flags a b",
            "get config:flags ai-review",
            "del tasks:done metrics:x",
        ];
        let mut parser = crate::cli::args::command();
        for line in lines {
            let words = shlex::split(line).unwrap();
            let cow: Vec<Cow<'_, str>> = words.iter().map(|w| Cow::Borrowed(w.as_str())).collect();
            let fast = fast_parse(&cow).unwrap_or_else(|| panic!("{line}: no fast path"));
            let slow = crate::cli::args::clap_parse(&mut parser, words);
            assert_eq!(format!("{fast:?}"), format!("{:?}", slow.command), "{line}");
            // What a command line without options gets (`main` skips clap
            // for the fast forms): clap's defaults.
            assert_eq!(
                format!("{:?}", crate::cli::args::Global::defaults()),
                format!("{:?}", slow.global),
                "{line}"
            );
        }
        assert_eq!(
            split_words(r"insert doc 0 $'a\nb\t\\c\'d' x").unwrap(),
            ["insert", "doc", "0", "a\nb\t\\c'd", "x"]
        );
        assert_eq!(
            split_words(r"append doc $'\u00e9\x41'").unwrap(),
            ["append", "doc", "éA"]
        );
        assert!(split_words(r"append doc $'open").is_err());
        // The plain fast path agrees with shlex.
        for line in [
            "inc a:b 5",
            "insert doc 3 'a b'",
            "insert doc 3 ''",
            "set x 'it'\''s'",
            "add s x'y z'w",
            "add s {a,b} [1] #x",
            "insert d 0 'é ü'",
            "inc  a   2 ",
        ] {
            assert_eq!(split_words(line).ok(), shlex::split(line), "{line}");
        }
        assert_eq!(
            split_words(r#"insert doc 0 '$' "$'" x$'y'"#).unwrap(),
            ["insert", "doc", "0", "$", "$'", "xy"]
        );
        // Lines the fast path leaves to clap.
        for line in [
            "inc x 0x5",
            "inc --type pn-counter x",
            "inc x -5",
            "insert d x y",
            "delete d",
            "set x",
            "frobnicate",
        ] {
            let words = shlex::split(line).unwrap();
            let cow: Vec<Cow<'_, str>> = words.iter().map(|w| Cow::Borrowed(w.as_str())).collect();
            assert!(fast_parse(&cow).is_none(), "{line}");
        }
    }
}
