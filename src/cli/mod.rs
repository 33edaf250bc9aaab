//! The command-line layer: parses arguments, calls the library, renders
//! results. Only this layer prints.

mod args;
mod batch;
mod complete;
mod debug;
mod decode;
mod files;
mod history;
mod manual;
mod net;
mod ops;
mod output;
mod read;
mod serve;
mod wait;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::FromArgMatches;
use crdt::db::{Change, Db, Migration, Moment};
use crdt::{ReplicaId, Store};

use args::{
    BatchArgs, BlameArgs, CompletionsArgs, DecodeArgs, DiffArgs, ExplainArgs, ExportArgs, GetArgs,
    ImportArgs, InspectArgs, LsArgs, ManpageArgs, MergeArgs, ShowArgs, SyncArgs, VersionArgs,
    VisualizeArgs, WaitArgs, WatchArgs,
};
pub use args::{Cli, ColorChoice, Command};
use output::{Format, Out};

/// An error that is a negative answer (exit 1): e.g. an object asked for
/// at a moment before it existed.
#[derive(Debug)]
pub struct Negative(pub String);

impl std::fmt::Display for Negative {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Negative {}

/// Exit codes, as documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// A negative answer, e.g. a diff that found differences.
    Negative = 1,
    Error = 2,
    /// Applied locally, but the sync endpoint was unreachable.
    Unreachable = 3,
}

pub fn main() -> ExitCode {
    complete::answer_if_asked();
    if let Err(e) = environment() {
        report(&e);
        return ExitCode::from(Exit::Error as u8);
    }
    if let Some(e) = non_utf8_argument() {
        report(&e);
        return ExitCode::from(Exit::Error as u8);
    }
    // The common forms (`crdt inc NAME [N]`, `crdt get NAME`, ... without
    // options) skip clap: building its command tree is over half of such a
    // command's work. They parse as clap parses them (the parser batch
    // lines take, tested against clap); anything else goes to clap.
    if let Some(command) = fast_command() {
        let cli = Cli {
            global: args::Global::defaults(),
            command,
        };
        let ctx = Ctx::new(&cli);
        return ExitCode::from(finish(run(&ctx, cli.command)) as u8);
    }
    let matches = match args::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => usage_error(e),
    };
    if let Some(e) = client_options_on_serve(&matches) {
        usage_error(e);
    }
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    // `log --replica ID` selects entries; clap also gives its value to the
    // global option of the same id (the local replica's id, checked).
    if let Command::Log(args) = &cli.command
        && args.replica.is_some()
        && matches
            .subcommand_matches("log")
            .and_then(|m| m.value_source("replica"))
            == Some(clap::parser::ValueSource::CommandLine)
    {
        cli.global.replica = None;
    }
    let mut ctx = Ctx::new(&cli);
    // `log` reads the server only when --url is on the command line (an
    // agent's CRDT_URL does not turn its `crdt log` into the server's).
    ctx.url_given = [Some(&matches), matches.subcommand_matches("log")]
        .into_iter()
        .flatten()
        .any(|m| m.value_source("url") == Some(clap::parser::ValueSource::CommandLine));
    ExitCode::from(finish(run(&ctx, cli.command)) as u8)
}

/// The exit code of a command's result (its error reported on stderr).
fn finish(result: Result<Exit>) -> Exit {
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => Exit::Success,
        Err(e) if e.downcast_ref::<Negative>().is_some() => {
            report(&e);
            Exit::Negative
        }
        Err(e) => {
            report(&e);
            Exit::Error
        }
    }
}

/// The command line as a command, when it is one of the forms batch's
/// fast parser reads (or `show NAME`, `ls [PREFIX]`) and holds no option at
/// all (every global option then has its default, and its variable is read
/// by `Ctx` as usual).
fn fast_command() -> Option<Command> {
    let words: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string().ok())
        .collect::<Option<_>>()?;
    fast_words(&words)
}

fn fast_words(words: &[String]) -> Option<Command> {
    if words.iter().any(|w| w.starts_with('-')) {
        return None;
    }
    let when = || args::When { at: None };
    match words {
        [show, name] if show == "show" => {
            return Some(Command::Show(ShowArgs {
                name: name.clone(),
                deleted: false,
                when: when(),
            }));
        }
        [ls, rest @ ..] if ls == "ls" && rest.len() <= 1 => {
            return Some(Command::Ls(LsArgs {
                prefix: rest.first().cloned(),
                when: when(),
            }));
        }
        _ => {}
    }
    let words: Vec<std::borrow::Cow<'_, str>> = words
        .iter()
        .map(|w| std::borrow::Cow::Borrowed(w.as_str()))
        .collect();
    batch::fast_parse(&words)
}

/// The command tree the completions offer: without hidden commands
/// (clap_complete offers them otherwise).
fn completion_tree() -> clap::Command {
    let full = args::command();
    let mut tree = clap::Command::new("crdt")
        .disable_help_subcommand(true)
        .version(env!("CARGO_PKG_VERSION"));
    for a in full.get_arguments() {
        tree = tree.arg(a.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        tree = tree.subcommand(sub.clone());
    }
    tree
}

/// Exits on a clap error: help and version as clap prints them; a usage
/// error as every other error, `crdt: error: ...` on stderr, exit 2.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    eprint!("crdt: error: {text}");
    if !text.ends_with('\n') {
        eprintln!();
    }
    std::process::exit(Exit::Error as i32);
}

/// The first argument that is not UTF-8, as an error that says which
/// (clap would only say that one of them is not).
fn non_utf8_argument() -> Option<anyhow::Error> {
    std::env::args_os()
        .enumerate()
        .skip(1)
        .find(|(_, a)| a.to_str().is_none())
        .map(|(i, a)| {
            anyhow::anyhow!(
                "argument {i} ({}) is not valid UTF-8: names, values and paths must be UTF-8 text",
                a.to_string_lossy()
            )
        })
}

/// `serve` given a client's option on its command line (`--url`, `--state`,
/// `--replica`, `--connect-timeout`): a usage error, not an option ignored.
/// The environment variables of those options are ignored by `serve`, so a
/// shell that sets `CRDT_STATE` for its clients can still start a server.
fn client_options_on_serve(matches: &clap::ArgMatches) -> Option<clap::Error> {
    use clap::parser::ValueSource;
    if matches.subcommand_name() != Some("serve") {
        return None;
    }
    let sub = matches.subcommand_matches("serve")?;
    for (id, flag) in [
        ("url", "--url"),
        ("state", "--state"),
        ("replica", "--replica"),
        ("connect_timeout", "--connect-timeout"),
    ] {
        let given = [matches, sub]
            .iter()
            .any(|m| m.value_source(id) == Some(ValueSource::CommandLine));
        if given {
            let mut cmd = args::command();
            return Some(cmd.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{flag} is an option of the clients, not of `crdt serve` (the server keeps its state in --data DIR)"
                ),
            ));
        }
    }
    None
}

/// `CRDT_*` variables: an empty one means unset (as if it were not there),
/// and a bad one is an error that names it, before anything else runs.
fn environment() -> Result<()> {
    let empty: Vec<String> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            (k.starts_with("CRDT_") && v.is_empty()).then_some(k)
        })
        .collect();
    for k in empty {
        // SAFETY: the process has one thread yet (nothing has started any).
        unsafe { std::env::remove_var(k) };
    }
    if let Some(v) = std::env::var_os("CRDT_NOW_MS") {
        let ok = v.to_str().and_then(|s| s.parse::<u64>().ok());
        anyhow::ensure!(
            ok.is_some(),
            "CRDT_NOW_MS is {v:?}: it must be milliseconds since the epoch (e.g. 1700000000000)"
        );
    }
    if let Some(v) = std::env::var_os("CRDT_REPLICA") {
        let text = v.to_string_lossy().into_owned();
        crdt::ReplicaId::new(text).map_err(|e| anyhow::anyhow!("CRDT_REPLICA: {e}"))?;
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints an error and its causes once, on stderr.
fn report(e: &anyhow::Error) {
    let mut msg = format!("crdt: error: {e}");
    for cause in e.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{msg}");
}

/// What every command needs: where the state is and how to print.
#[derive(Clone)]
pub struct Ctx {
    pub state: PathBuf,
    /// No --state or CRDT_STATE: the default path.
    pub default_state: bool,
    pub replica: Option<String>,
    /// The printer `--json` chose.
    pub format: Format,
    /// stdout is a terminal: tables with borders, progress bars.
    pub tty: bool,
    /// Colors, and whether values are shown whole.
    pub style: output::Style,
    pub url: Option<String>,
    pub token: Option<String>,
    pub connect_timeout: f64,
    /// `--at`: read the replica as it was then (the moment, and as given).
    pub at: Option<(Moment, String)>,
    /// `--url` was given on the command line (not only `CRDT_URL`).
    pub url_given: bool,
}

impl Ctx {
    /// This context reading the replica as it was at `when` (`--at`).
    fn at(&self, when: Option<String>) -> Result<Ctx> {
        let mut ctx = self.clone();
        if let Some(w) = when {
            ctx.at = Some((history::parse_when(&w)?, w));
        }
        Ok(ctx)
    }

    fn new(cli: &Cli) -> Ctx {
        let tty = io::stdout().is_terminal();
        let color = match cli.global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        // Piped output and JSON are for scripts: values whole, never cut.
        let style = if cli.global.json {
            output::Style::plain()
        } else {
            output::Style { color, whole: !tty }
        };
        // An option, else its variable (empty ones were removed at start).
        let env = |key: &str| std::env::var_os(key).map(|v| v.to_string_lossy().into_owned());
        let state = cli
            .global
            .state
            .clone()
            .or_else(|| std::env::var_os("CRDT_STATE").map(PathBuf::from));
        Ctx {
            default_state: state.is_none(),
            state: state.unwrap_or_else(default_state_path),
            replica: cli.global.replica.clone().or_else(|| env("CRDT_REPLICA")),
            format: if cli.global.json {
                Format::Json
            } else {
                Format::Text
            },
            tty,
            style,
            url: cli
                .global
                .url
                .clone()
                .or_else(|| env("CRDT_URL"))
                .filter(|u| !u.is_empty()),
            token: cli
                .global
                .token
                .clone()
                .or_else(|| env("CRDT_TOKEN"))
                .filter(|t| !t.is_empty()),
            connect_timeout: cli.global.connect_timeout,
            at: None,
            url_given: false,
        }
    }

    fn out(&self) -> Out {
        Out::new(self.tty, self.style, self.format)
    }

    /// Opens the local replica, migrating a JSON state file of an earlier
    /// version first (one line on stderr says so). `None`: none yet.
    fn open_db(&self) -> Result<Option<Db>> {
        self.migrate_default()?;
        let Some((db, migration)) = Db::open(&self.state)? else {
            return Ok(None);
        };
        report_migration(migration, db.path());
        self.check_replica(db.replica())?;
        Ok(Some(db))
    }

    /// Without --state or CRDT_STATE: the default JSON state file of an
    /// earlier version (`state.json`) moves into the default database.
    fn migrate_default(&self) -> Result<()> {
        if !self.default_state || self.state.exists() {
            return Ok(());
        }
        let legacy = self.state.with_file_name("state.json");
        if legacy.exists() {
            let m = Db::migrate(&legacy, &self.state)?;
            report_migration(m, &self.state);
        }
        Ok(())
    }

    /// The local replica, for reading. `None` when it does not exist yet.
    pub fn load(&self) -> Result<Option<Store>> {
        self.load_selected(&[])
    }

    /// Like [`Ctx::load`], with the objects of `name` only. With `--at`,
    /// a name that did not exist yet then is a negative answer (exit 1).
    pub fn load_name(&self, name: &str) -> Result<Option<Store>> {
        let Some(db) = self.open_db()? else {
            return Ok(None);
        };
        let Some((moment, when)) = &self.at else {
            return Ok(Some(db.load_name(name)?));
        };
        let store = history::load_at(&db, &[name.to_string()], *moment, when)?;
        if store.objects(name).is_empty()
            && let Some(first) = db.first_entry_of(name)?
        {
            let (id, time, source) = first;
            let why = if source == "trim" {
                format!(
                    "the history before {} (@{id}) was trimmed (`crdt history trim`)",
                    debug::fmt_ms(time)
                )
            } else {
                format!("its history here starts at {} (@{id})", debug::fmt_ms(time))
            };
            return Err(Negative(format!("{name} did not exist yet at {when}: {why}")).into());
        }
        Ok(Some(store))
    }

    /// Like [`Ctx::load`], with the objects `select` picks (all when empty).
    pub fn load_selected(&self, select: &[String]) -> Result<Option<Store>> {
        let Some(db) = self.open_db()? else {
            return Ok(None);
        };
        Ok(Some(match &self.at {
            None => db.load_selected(select)?,
            Some((moment, when)) => history::load_at(&db, select, *moment, when)?,
        }))
    }

    /// The local replica's database, created when missing.
    pub fn open_or_create(&self) -> Result<Db> {
        self.migrate_default()?;
        let (db, migration) = Db::open_or_create(&self.state, || {
            self.replica_for_new_state().map_err(|e| e.to_string())
        })?;
        report_migration(migration, db.path());
        self.check_replica(db.replica())?;
        Ok(db)
    }

    /// The id of the local replica (or the one it will be created with).
    pub fn replica_id(&self) -> Result<ReplicaId> {
        match self.open_db()? {
            Some(db) => Ok(db.replica().clone()),
            None => self.replica_for_new_state(),
        }
    }

    /// Runs `f` on a change of the local replica (created when missing) and
    /// commits it: one transaction, so when `f` or the commit fails nothing
    /// is written. `source` is what the history rows say (`local`, `batch`,
    /// `import FILE`, `sync URL`).
    pub fn update<T>(
        &self,
        source: &str,
        f: impl FnOnce(&mut Change<'_>) -> Result<T>,
    ) -> Result<T> {
        self.update_spent(source, f).map(|(out, _)| out)
    }

    /// [`Ctx::update`], handing back what the change held (see
    /// [`crdt::db::Spent`]).
    pub fn update_spent<T>(
        &self,
        source: &str,
        f: impl FnOnce(&mut Change<'_>) -> Result<T>,
    ) -> Result<(T, crdt::db::Spent)> {
        let mut db = self.open_or_create()?;
        let mut change = db.change(source, ops::now_ms())?;
        let out = f(&mut change)?;
        let spent = change.commit_spent()?;
        Ok((out, spent))
    }

    fn check_replica(&self, replica: &ReplicaId) -> Result<()> {
        if let Some(wanted) = &self.replica
            && wanted != replica.as_str()
        {
            bail!(
                "{} belongs to replica {:?}, not {:?}: one database is one replica \
                 (use another --state for another replica)",
                self.state.display(),
                replica.as_str(),
                wanted
            );
        }
        Ok(())
    }

    /// The replica id a new database gets: --replica, or a generated one
    /// (generated once per process, so a sync before the first save agrees).
    fn replica_for_new_state(&self) -> Result<ReplicaId> {
        static GENERATED: std::sync::OnceLock<ReplicaId> = std::sync::OnceLock::new();
        match &self.replica {
            Some(id) => Ok(ReplicaId::new(id.clone())?),
            None => Ok(GENERATED.get_or_init(generated_replica_id).clone()),
        }
    }
}

/// `$XDG_DATA_HOME`, else `~/.local/share`.
fn data_home() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `$XDG_DATA_HOME/crdt/replica.db`, else `~/.local/share/crdt/replica.db`.
fn default_state_path() -> PathBuf {
    data_home().join("crdt").join("replica.db")
}

/// The one line a migration prints.
fn report_migration(m: Option<Migration>, to: &std::path::Path) {
    if let Some(m) = m {
        let kept: Vec<String> = m.kept.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "crdt: migrated the JSON state file {} ({} objects) into the SQLite database {}; the old files are kept as {}",
            m.from.display(),
            m.objects,
            to.display(),
            kept.join(" and ")
        );
    }
}

/// `<hostname>-<8 random hex digits>`: readable and unique.
fn generated_replica_id() -> ReplicaId {
    use std::hash::{BuildHasher, RandomState};
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let random = RandomState::new().hash_one((nanos, std::process::id())) as u32;
    let host = if host.is_empty() {
        "replica".into()
    } else {
        host
    };
    ReplicaId::new(format!("{host}-{random:08x}")).expect("valid by construction")
}

fn run(ctx: &Ctx, command: Command) -> Result<Exit> {
    let mut out = ctx.out();
    let done = |()| Exit::Success;
    let code = match command {
        Command::Get(GetArgs {
            name,
            key: None,
            raw,
            when,
        }) => match read::get(&ctx.at(when.at)?, &mut out, &name, raw)? {
            true => Exit::Success,
            false => Exit::Negative,
        },
        Command::Get(GetArgs {
            name,
            key: Some(key),
            raw,
            when,
        }) => match read::get_key(&ctx.at(when.at)?, &mut out, &name, &key, raw)? {
            true => Exit::Success,
            false => Exit::Negative,
        },
        Command::Ls(LsArgs { prefix, when }) => {
            read::ls(&ctx.at(when.at)?, &mut out, prefix.as_deref().unwrap_or("")).map(done)?
        }
        Command::Show(ShowArgs {
            name,
            deleted,
            when,
        }) => read::show(&ctx.at(when.at)?, &mut out, &name, deleted).map(done)?,
        cmd @ (Command::Del(_) | Command::Resolve(_)) => delete_command(ctx, &mut out, cmd)?,
        Command::Log(args) => history::log(ctx, &mut out, &args).map(done)?,
        Command::Info => read::info(ctx, &mut out).map(done)?,
        Command::History(args::HistoryCommand::Trim(args::TrimArgs { before })) => {
            read::history_trim(ctx, &mut out, &before).map(done)?
        }
        Command::Export(ExportArgs {
            select,
            output,
            since,
            when,
        }) => files::export(
            &ctx.at(when.at)?,
            &mut out,
            &select,
            output,
            since.as_deref(),
        )
        .map(done)?,
        Command::Version(VersionArgs { select }) => {
            files::version(ctx, &mut out, &select).map(done)?
        }
        Command::Import(ImportArgs { files }) => files::import(ctx, &mut out, &files)?,
        Command::Merge(MergeArgs {
            files,
            dry_run: true,
            ..
        }) => debug::merge_dry_run(&mut out, &files).map(done)?,
        Command::Merge(MergeArgs { files, output, .. }) => {
            files::merge(&mut out, &files, output).map(done)?
        }
        Command::Inspect(InspectArgs { name, from, when }) => {
            debug::inspect(&ctx.at(when.at)?, &mut out, &name, from).map(done)?
        }
        Command::Visualize(VisualizeArgs {
            name,
            format,
            from,
            when,
        }) => debug::visualize(&ctx.at(when.at)?, &mut out, &name, format, from).map(done)?,
        Command::Blame(BlameArgs { name, from }) => {
            debug::blame(ctx, &mut out, &name, from).map(done)?
        }
        Command::Decode(DecodeArgs { frame }) => decode::decode(&mut out, &frame).map(done)?,
        Command::Explain(ExplainArgs { name, from, when }) => {
            debug::explain(&ctx.at(when.at)?, &mut out, &name, from).map(done)?
        }
        Command::Diff(DiffArgs {
            local,
            stat,
            at,
            args,
        }) => match debug::diff(ctx, &mut out, local, stat, &at, &args)? {
            true => Exit::Negative,
            false => Exit::Success,
        },
        Command::Batch(BatchArgs {
            file,
            stop_on_error,
        }) => batch::run(ctx, &mut out, file, stop_on_error)?,
        Command::Serve(args) => serve::serve(args, ctx.token.clone())?,
        Command::Sync(SyncArgs {
            select,
            follow: true,
        }) => net::follow(ctx, &mut out, &select)?,
        Command::Sync(SyncArgs { select, .. }) => net::sync(ctx, &mut out, &select)?,
        Command::Watch(WatchArgs {
            select,
            count,
            timeout,
        }) => net::watch(ctx, &mut out, &select, count, timeout)?,
        Command::Wait(WaitArgs {
            name,
            until,
            timeout,
        }) => wait::wait(ctx, &mut out, &name, &until, timeout)?,
        Command::Completions(_) | Command::Manpage(_) if ctx.format == Format::Json => {
            bail!("completions and man pages are scripts and roff, not JSON: leave out --json")
        }
        Command::Completions(CompletionsArgs { shell }) => complete::registration(shell, &mut out)
            .context("cannot write the completions")
            .map(done)?,
        Command::Manpage(ManpageArgs { dir: None }) => manual::main_page(&mut out)
            .context("cannot write the man page")
            .map(done)?,
        Command::Manpage(ManpageArgs { dir: Some(dir) }) => manual::write_all(&dir).map(done)?,
        change => change_command(ctx, &mut out, change)?,
    };
    out.flush()?;
    Ok(code)
}

/// True when `e` is a bounded counter's refusal (not enough rights,
/// nothing to release): nothing changed, and the answer is no.
fn refused_by_a_bound(e: &anyhow::Error) -> bool {
    use crdt::bcounter::BoundedError;
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<crdt::EditError>(),
            Some(crdt::EditError::Bounded(
                BoundedError::NotEnoughRights { .. } | BoundedError::NotAllocated { .. }
            ))
        )
    })
}

/// `del` and `resolve`: one transaction with a history row per object
/// deleted; with `--url` the endpoint is asked first and the names synced
/// after.
fn delete_command(ctx: &Ctx, out: &mut Out, cmd: Command) -> Result<Exit> {
    let link = if ctx.url.is_some() {
        Some(net::link_before_change(ctx)?)
    } else {
        None
    };
    let now = ops::now_ms();
    let names = ops::deletion_names(&cmd);
    let deleted = ctx.update("local", |c| {
        for name in &names {
            c.load_name(name)?;
        }
        let list = ops::deletions(c.store(), &cmd)?;
        ops::apply_deletions(c, &list, now)?;
        Ok(list)
    })?;
    let code = match link {
        Some(link) if !deleted.is_empty() => {
            let mut changed: Vec<String> = deleted.iter().map(|(n, _)| n.clone()).collect();
            changed.dedup();
            net::sync_changed(ctx, link, &changed)?
        }
        _ => Exit::Success,
    };
    out.report(&read::Deleted { list: &deleted })?;
    out.flush()?;
    Ok(code)
}

/// A change command (`inc`, `set`, `add`, ...): one transaction, its history
/// row, and with `--url` the endpoint asked first and synced after.
fn change_command(ctx: &Ctx, out: &mut Out, change: Command) -> Result<Exit> {
    // With --url, the endpoint is asked first: one that refuses (a
    // malformed URL, a wrong path or token) changes nothing here;
    // one that cannot be reached leaves the change local (exit 3).
    let link = if ctx.url.is_some() {
        Some(net::link_before_change(ctx)?)
    } else {
        None
    };
    // A register value too large for the endpoint's messages could
    // never be sent: refused before anything changes.
    let limit = match &link {
        Some(net::Link::Open(client)) => Some(client.limit),
        _ => None,
    };
    let now = ops::now_ms();
    let target = ops::command_name(&change).unwrap_or_default().to_string();
    let updated = ctx.update("local", |c| {
        c.load_name(&target)?;
        let (name, ty, delta, summary) = ops::apply(c.store_mut(), &change, now)?;
        if let Some(limit) = limit
            && matches!(ty, crdt::CrdtType::LwwRegister | crdt::CrdtType::Map)
            && delta.len() + 512 > limit
        {
            bail!(
                "nothing was changed: the value is {} bytes, and the endpoint takes messages of at most {limit} bytes (a register's or a map key's value travels whole)",
                delta.len()
            );
        }
        c.record_text(&name, ty, delta, summary, None)?;
        // A change that made nothing (`rm` on a set not here yet)
        // prints the empty value of its type.
        let value = c.store().get(&name, ty).map(|o| o.value_json());
        Ok((
            name,
            ty,
            value.unwrap_or_else(|| crdt::Object::new(ty).value_json()),
        ))
    });
    let (name, ty, value) = match updated {
        Ok(done) => done,
        // A bounded counter that lacks the rights: a negative answer.
        Err(e) if refused_by_a_bound(&e) => {
            eprintln!("crdt: {e}");
            return Ok(Exit::Negative);
        }
        Err(e) => return Err(e),
    };
    let (code, value) = match link {
        Some(link) => net::sync_after_change(ctx, link, &name, value, ty)?,
        None => (Exit::Success, value),
    };
    out.report(&read::ValueLine {
        name: &name,
        ty,
        value: &value,
    })?;
    out.flush()?;
    Ok(code)
}

#[cfg(test)]
mod fast_test {
    use super::*;

    /// The command lines `main` parses without clap give clap's command and
    /// clap's global defaults; others are left to clap.
    #[test]
    fn the_fast_forms_parse_as_clap_does() {
        let mut parser = args::command();
        for line in [
            "inc metrics:requests",
            "get metrics:requests",
            "show metrics:requests",
            "ls",
            "ls metrics:",
            "put config:flags a 1",
            "del tasks:done",
        ] {
            let words: Vec<String> = line.split(' ').map(String::from).collect();
            let fast = fast_words(&words).unwrap_or_else(|| panic!("{line}: no fast path"));
            let slow = args::clap_parse(&mut parser, words);
            assert_eq!(format!("{fast:?}"), format!("{:?}", slow.command), "{line}");
            assert_eq!(
                format!("{:?}", args::Global::defaults()),
                format!("{:?}", slow.global)
            );
        }
        for line in [
            "show",
            "ls a b",
            "show a --deleted",
            "--json get a",
            "info",
            "log",
        ] {
            let words: Vec<String> = line.split(' ').map(String::from).collect();
            assert!(fast_words(&words).is_none(), "{line}");
        }
    }
}
