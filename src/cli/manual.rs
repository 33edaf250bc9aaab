//! The man pages, generated from the clap tree: `crdt.1` with the sections
//! a man page has (ENVIRONMENT, EXIT STATUS, FILES), and one page per
//! command (`crdt-inc.1`, `crdt-history-trim.1`), which `crdt.1` refers to.

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};
use clap_mangen::Man;

/// `(variable, what it sets)`; an empty variable counts as unset.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "CRDT_STATE",
        "The local replica's database, as --state (default $XDG_DATA_HOME/crdt/replica.db, else ~/.local/share/crdt/replica.db).",
    ),
    (
        "CRDT_REPLICA",
        "The replica id a new database is created with, as --replica (default: the host name and 8 random hex digits).",
    ),
    (
        "CRDT_URL",
        "The sync endpoint (ws:// or wss://), as --url. Ignored by crdt serve.",
    ),
    (
        "CRDT_TOKEN",
        "The bearer token: the one a client presents, or the one crdt serve requires, as --token.",
    ),
    (
        "CRDT_NOW_MS",
        "The clock, in milliseconds since the Unix epoch, for register timestamps and history rows (tests and reproducible scripts); a value that is not a number is an error.",
    ),
    (
        "CRDT_COMPLETE",
        "Set by the completion scripts (crdt completions SHELL) when they call crdt back: it then prints completions for the words after --, and runs nothing.",
    ),
    ("NO_COLOR", "When set, --color auto prints no colors."),
    (
        "XDG_DATA_HOME",
        "Where the default state (crdt/replica.db) and server data (crdt/server) live.",
    ),
];

const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "A negative answer: diff found differences, wait timed out.",
    ),
    (
        "2",
        "An error: usage, bad input, I/O; a command that exits 2 changed nothing (except where it says the change is saved locally).",
    ),
    (
        "3",
        "Applied locally, but the sync endpoint could not be reached: the next sync sends it.",
    ),
];

fn roff_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('-', "\\-")
}

fn section(out: &mut dyn Write, title: &str, items: &[(&str, &str)]) -> std::io::Result<()> {
    writeln!(out, ".SH {title}")?;
    for (term, text) in items {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff_text(term), roff_text(text))?;
    }
    Ok(())
}

/// `crdt.1`: clap's sections, then ENVIRONMENT, EXIT STATUS and FILES
/// (instead of clap's EXTRA, which repeats `--help`'s notes).
pub fn main_page(out: &mut dyn Write) -> std::io::Result<()> {
    let man = Man::new(super::args::command());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    section(out, "ENVIRONMENT", ENVIRONMENT)?;
    section(out, "\"EXIT STATUS\"", EXIT_STATUS)?;
    section(
        out,
        "FILES",
        &[
            (
                "$XDG_DATA_HOME/crdt/replica.db",
                "The local replica (an SQLite database, with -wal and -shm files beside it while in use). A JSON state file of an earlier version found there is migrated on first use and kept as FILE.pre-sqlite.",
            ),
            (
                "$XDG_DATA_HOME/crdt/server",
                "crdt serve's data: snapshot.json, log.jsonl (every acknowledged push), lock.",
            ),
        ],
    )?;
    writeln!(out, ".SH EXAMPLES")?;
    for line in EXAMPLES {
        writeln!(
            out,
            ".TP\n\\fB{}\\fR\n{}",
            roff_text(line.0),
            roff_text(line.1)
        )?;
    }
    man.render_version_section(out)
}

const EXAMPLES: &[(&str, &str)] = &[
    (
        "crdt inc metrics:requests",
        "Count a request; prints the new total.",
    ),
    (
        "crdt add tasks:active task-1 task-2",
        "Add members to a set.",
    ),
    (
        "crdt --url ws://127.0.0.1:7878/ws sync",
        "Push and pull until this replica and the endpoint agree.",
    ),
    (
        "crdt diff agent-1.json agent-2.json",
        "Why two replicas disagree.",
    ),
];

/// Writes `crdt.1` and a page per command (and per subcommand of one) into `dir`.
pub fn write_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut main = Vec::new();
    main_page(&mut main)?;
    write(dir, "crdt", &main)?;
    // Built, the tree has clap's `help` commands too, which crdt.1 lists.
    let mut root = super::args::command();
    root.build();
    for sub in root.get_subcommands().filter(|c| !c.is_hide_set()) {
        page(dir, &format!("crdt-{}", sub.get_name()), sub.clone())?;
    }
    Ok(())
}

fn page(dir: &Path, name: &str, cmd: clap::Command) -> Result<()> {
    let children: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
    let mut text = Vec::new();
    // clap names are &'static str (without its `string` feature): a page
    // is rendered once per process.
    let static_name: &'static str = Box::leak(name.to_string().into_boxed_str());
    Man::new(cmd.name(static_name)).render(&mut text)?;
    write(dir, name, &text)?;
    for child in children.into_iter().filter(|c| !c.is_hide_set()) {
        page(dir, &format!("{name}-{}", child.get_name()), child)?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, text: &[u8]) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}
