//! The command-line tree, and nothing else. Completions and the man page are
//! generated from it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  crdt inc metrics:requests            count a request (prints the new total)
  crdt add tasks:active task-1 task-2  add members to a set
  crdt set config:global '{\"ai-review\": true}'
  crdt put config:flags beta true      one key of a map
  crdt del tasks:done                  delete (a concurrent change survives)
  crdt append document:main 'Hello'    edit shared text
  crdt --json ls metrics:              machine-readable listing
  crdt export -o agent-1.json          snapshot to share or compare

State: --state, else $CRDT_STATE, else $XDG_DATA_HOME/crdt/replica.db (else
~/.local/share/crdt/replica.db): an SQLite database, one file per replica. A
JSON state file of an earlier version is migrated on first use (the old files
are kept as FILE.pre-sqlite).

Names: 1 to 256 bytes of UTF-8 without whitespace, control, invisible or
unassigned characters; `:` separates namespaces (metrics:requests), and a
selector `metrics` or `metrics:` picks every metrics:* name.

Environment: CRDT_STATE, CRDT_REPLICA, CRDT_URL, CRDT_TOKEN as the options
above; CRDT_NOW_MS sets the clock (milliseconds since the epoch) for register
timestamps and history rows; an empty variable counts as unset.

Exit codes:
  0  success
  1  a negative answer (a diff found differences, a deleted object, a missing
     map key, an allocation beyond a bounded counter's rights)
  2  error: usage, bad input, I/O
  3  applied locally, but the sync endpoint was unreachable";

/// Named CRDTs (counters, registers, sets, maps, text) that converge without coordination.
#[derive(Debug, Parser)]
#[command(
    name = "crdt",
    version,
    after_help = AFTER_HELP,
    max_term_width = 100,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The command tree as parsed and documented.
pub fn command() -> clap::Command {
    // `serve` keeps the clients' global options out of its help: its own
    // hidden ones, of the same ids, take their place (clap propagates a
    // global option only where no option of its id is), and are refused
    // when given (see `client_options_on_serve`).
    use clap::{Arg, value_parser};
    let hidden = |id: &'static str, long: &'static str, value: &'static str| {
        Arg::new(id)
            .long(long)
            .value_name(value)
            .num_args(1)
            .hide(true)
    };
    <Cli as clap::CommandFactory>::command().mut_subcommand("serve", |serve| {
        serve
            .arg(hidden("state", "state", "PATH").value_parser(value_parser!(PathBuf)))
            .arg(hidden("replica", "replica", "ID"))
            .arg(hidden("url", "url", "URL"))
            .arg(
                hidden("connect_timeout", "connect-timeout", "SECS")
                    .value_parser(value_parser!(f64)),
            )
    })
}

#[derive(Debug, Args)]
pub struct Global {
    // The environment variables are read by Ctx, not clap: clap would put
    // an option set by its variable in every usage line, as if required.
    /// The local replica's database, an SQLite file (or $CRDT_STATE)
    #[arg(long, global = true, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Replica id to create the database with; must match an existing one
    /// (or $CRDT_REPLICA)
    #[arg(long, global = true, value_name = "ID")]
    pub replica: Option<String>,
    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// When to use colors (NO_COLOR is honoured with auto)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Sync endpoint (ws:// or wss://); change commands then sync what they
    /// changed (or $CRDT_URL)
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// Bearer token: the one a client presents to the sync endpoint, or the
    /// one `serve` requires (or $CRDT_TOKEN)
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Seconds to wait for the sync endpoint to connect and answer
    #[arg(long, global = true, default_value_t = 5.0, value_name = "SECS")]
    pub connect_timeout: f64,
}

/// What clap makes of a command line (the tests compare the fast parsers
/// with it).
#[cfg(test)]
pub fn clap_parse(parser: &mut clap::Command, words: Vec<String>) -> Cli {
    use clap::FromArgMatches;
    let m = parser
        .try_get_matches_from_mut(std::iter::once("crdt".to_string()).chain(words))
        .unwrap();
    Cli::from_arg_matches(&m).unwrap()
}

impl Global {
    /// The options as clap gives them when none is on the command line.
    pub fn defaults() -> Global {
        Global {
            state: None,
            replica: None,
            json: false,
            color: ColorChoice::Auto,
            url: None,
            token: None,
            connect_timeout: 5.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The seven types, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    GCounter,
    PnCounter,
    LwwRegister,
    OrSet,
    Rga,
    Map,
    BoundedCounter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VizFormat {
    Text,
    Dot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CounterType {
    GCounter,
    PnCounter,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Increment a counter (created as a g-counter unless --type says otherwise)
    #[command(
        after_help = "Examples:\n  crdt inc metrics:requests\n  crdt inc metrics:bytes 512\n  crdt inc --type pn-counter resources:gpu 30"
    )]
    Inc(IncArgs),
    /// Decrement a pn-counter (created when missing)
    #[command(after_help = "Example:\n  crdt dec resources:gpu 30")]
    Dec(DecArgs),
    /// Write an lww-register: VALUE is JSON when it parses as JSON, else a
    /// string (text starting with {, [ or " must be valid JSON)
    #[command(
        after_help = "Examples:\n  crdt set config:global '{\"feature:ai-review\": true}'\n  crdt set config:mode fast\n  crdt set --string config:version 1.10"
    )]
    Set(SetArgs),
    /// Add members to an or-set (JSON when they parse as JSON, else strings;
    /// text starting with {, [ or " must be valid JSON)
    #[command(
        after_help = "Examples:\n  crdt add tasks:active task-1 task-2\n  crdt add tasks:active '{\"id\": \"task-3\"}'"
    )]
    Add(AddArgs),
    /// Remove members from an or-set
    #[command(
        after_help = "A member (or a set) this replica does not hold may not have arrived yet:\n\
nothing is removed, a note says so on stderr, and the exit code is 0.\n\n\
Example:\n  crdt rm tasks:active task-1"
    )]
    Rm(RmArgs),
    /// Insert text into an rga before character POS (0 is the start)
    #[command(after_help = "Example:\n  crdt insert document:main 0 'Hello '")]
    Insert(InsertArgs),
    /// Delete LEN characters of an rga starting at POS
    #[command(after_help = "Example:\n  crdt delete document:main 0 6")]
    Delete(DeleteArgs),
    /// Append text at the end of an rga
    #[command(after_help = "Example:\n  crdt append document:main 'World'")]
    Append(AppendArgs),
    /// Write KEY of a map (created when missing): VALUE is JSON when it
    /// parses as JSON, else a string
    #[command(
        after_help = "Each key merges on its own: agents that change different keys at the same\n\
time keep both changes; concurrent writes of one key are settled as in an\n\
lww-register (a write made after seeing another wins, else the later\n\
timestamp, then the greater replica id).\n\n\
Examples:\n  crdt put config:flags ai-review true\n  crdt put config:flags theme '{\"dark\": true}'\n  crdt put --string config:flags version 1.10"
    )]
    Put(PutArgs),
    /// Remove keys from a map
    #[command(
        after_help = "An unset removes the writes of the key this replica has seen: a put made\n\
concurrently elsewhere keeps the key. A key (or a map) this replica does not\n\
hold may not have arrived yet: nothing is removed, a note says so on stderr,\n\
and the exit code is 0.\n\n\
Example:\n  crdt unset config:flags ai-review"
    )]
    Unset(UnsetArgs),
    /// Delete objects: a delete wins over every change it has seen
    #[command(
        after_help = "A delete removes what this replica has seen of the object; a change made\n\
concurrently elsewhere survives it (the object comes back holding just that\n\
change), and so does a change made after it. Deleted objects are not listed;\n\
`get` says who deleted them (exit 1); `show --deleted` and the debugger still\n\
show them. A name with nothing to delete here (yet) is a note, not an error.\n\n\
Examples:\n  crdt del tasks:done\n  crdt del cache:a cache:b --url ws://127.0.0.1:7878/ws"
    )]
    Del(DelArgs),
    /// Settle a type conflict: keep one type of a name, delete the others
    #[command(
        after_help = "When replicas created one name with different types, merging keeps every\n\
object. `resolve` deletes the objects of the other types (as `del` does).\n\n\
Example:\n  crdt resolve votes --keep g-counter"
    )]
    Resolve(ResolveArgs),
    /// Create an empty object of a given type
    #[command(
        after_help = "A bounded-counter counts allocations under a limit: `--limit N` creates N\n\
rights, all held by this replica; `inc NAME K` allocates K of the rights this\n\
replica holds (exit 1, saying who holds the rest, when it holds fewer),\n\
`dec NAME K` releases, `transfer NAME K --to REPLICA` moves rights. No\n\
concurrency takes the value past the limit or below zero.\n\n\
Examples:\n  crdt new resources:gpu --type pn-counter\n  crdt new resources:gpus --type bounded-counter --limit 100"
    )]
    New(NewArgs),
    /// Move unused rights of a bounded counter to another replica
    #[command(
        after_help = "Example:\n  crdt transfer resources:gpus 30 --to agent-2   # agent-2 may now allocate 30"
    )]
    Transfer(TransferArgs),
    /// Print the value only: a number, a JSON value, set members one per line, the text
    #[command(
        after_help = "With KEY (maps only): that key's value, or exit 1 and a note on stderr\n\
when the map has no such key.\n\n\
Examples:\n  total=$(crdt get metrics:requests)\n  mode=$(crdt get --raw config:mode)   # fast, not \"fast\"\n  crdt get config:flags ai-review      # true"
    )]
    Get(GetArgs),
    /// List objects: all, or one name or namespace
    #[command(
        after_help = "A namespace is selected with or without its colon: `metrics` and `metrics:`\n\
both list metrics:requests (not metricsx:y), as export and sync select.\n\n\
Examples:\n  crdt ls\n  crdt ls metrics:\n  crdt --json ls"
    )]
    Ls(LsArgs),
    /// Show an object's type, value, version vector and contributing replicas
    #[command(
        after_help = "Examples:\n  crdt show metrics:requests\n  crdt show metrics:requests --at 1h   # as it was an hour ago"
    )]
    Show(ShowArgs),
    /// Write a snapshot of the local replica (or of the named objects and namespaces)
    #[command(
        after_help = "Examples:\n  crdt export -o agent-1.json\n  crdt export metrics: config:global -o part.json\n  crdt export > all.json\n  crdt export --since agent-2.version -o delta.json   # what agent-2 lacks"
    )]
    Export(ExportArgs),
    /// Print this replica's version of the selected objects (a JSON version
    /// document), for another replica's `export --since`
    #[command(after_help = "Delta files for offline exchange:
          crdt version > mine.json                      # on agent-1
          crdt export --since mine.json -o delta.json   # on agent-2, which has more
          crdt import delta.json                        # back on agent-1")]
    Version(VersionArgs),
    /// Merge snapshot files into the local replica (`-` reads stdin)
    #[command(after_help = "Example:\n  crdt import agent-2.json agent-3.json")]
    Import(ImportArgs),
    /// Merge snapshot files into one, without touching the local replica
    #[command(
        after_help = "Examples:\n  crdt merge a.json b.json -o merged.json\n  crdt merge a.json b.json --dry-run"
    )]
    Merge(MergeArgs),
    /// Show the replica's database: path, replica id, objects, history rows, size
    #[command(after_help = "Examples:\n  crdt info\n  crdt --json info | jq .history")]
    Info,
    /// The changes this replica applied, newest first: when, what, by whom, from where
    #[command(
        after_help = "Each line: the entry's position (@N, for --at @N), its time, the name, the\n\
type, what changed in the type's words, the replicas whose events it brought,\n\
and where it came from (local, batch, import FILE, sync URL). TIME is an RFC\n\
3339 time, a duration ago (10m, 2h, 1d) or milliseconds since the epoch.\n\
With --url on the command line (not only $CRDT_URL): the server's recent\n\
pushes instead, by the replica that pushed each.\n\n\
Examples:\n  crdt log -n 20\n  crdt log tasks: --since 1h\n  crdt log document:main --replica agent-2\n  crdt log --from agent-2.db config:\n  crdt log --url ws://127.0.0.1:7878/ws tasks:\n  crdt --json log -n 5 | jq '.[].summary'"
    )]
    Log(LogArgs),
    /// The history of changes this replica recorded
    #[command(subcommand, disable_help_subcommand = true)]
    History(HistoryCommand),
    /// Apply many commands, one per line, in one process with one write
    #[command(
        after_help = "Lines use the command line's syntax and shell quoting; blank lines and\n\
lines starting with # are skipped. Change commands (inc, dec, set, add, rm,\n\
put, unset, insert, delete, append, new, del, transfer) and get are allowed.\n\n\
Example:\n  printf 'inc metrics:requests\\nadd tasks:active \"task 1\"\\n' | crdt batch"
    )]
    Batch(BatchArgs),
    /// Show an object's internal state: per-replica counts, writes, dots, runs
    #[command(
        after_help = "Examples:\n  crdt inspect metrics:requests\n  crdt inspect config:global --from agent-2.json\n  crdt --json inspect tasks:active"
    )]
    Inspect(InspectArgs),
    /// Draw an object's structure as text or as a Graphviz graph
    #[command(
        after_help = "Examples:\n  crdt visualize document:main\n  crdt visualize document:main --format dot | dot -Tsvg > doc.svg"
    )]
    Visualize(VisualizeArgs),
    /// Compare two replica states: what differs, why, and what a merge gives
    #[command(
        after_help = "A and B are snapshot files (`-` is stdin); with --local, A is the local\n\
replica and the first argument is B. With --local --at WHEN, A is the local\n\
replica as it was then; with --at twice, B is too (then every argument is a\n\
NAME|PREFIX). Exit code 0 when equal, 1 when different.\n\n\
Examples:\n  crdt diff agent-1.json agent-2.json\n  crdt diff --local agent-2.json metrics:\n  crdt diff --stat a.json b.json\n  crdt diff --local --at 1h --at @120 document:main"
    )]
    Diff(DiffArgs),
    /// Who made each part of an object, and when it came here (from the history)
    #[command(
        after_help = "For text, each run of characters with the replica that typed it; for a set,\n\
who added each member; for a register, the write that holds and those that\n\
lost; for a counter, each replica's contributions over time. Each with the\n\
history entry (@N) that brought it here, its time and source.\n\n\
Examples:\n  crdt blame document:main\n  crdt blame tasks:active --json\n  crdt blame metrics:requests --from agent-2.db"
    )]
    Blame(BlameArgs),
    /// Print a protocol message or a line of the server's log in the words of `crdt log`
    #[command(
        after_help = "FRAME is one message as JSON text; `-` reads stdin, one message or log line\n\
per line (a server's log: DIR/log.jsonl). Each object is described as it is\n\
on the wire: a counter's entries are totals, a text's characters have no place\n\
until merged.\n\n\
Examples:\n  crdt decode '{\"type\":\"push\",\"id\":2,\"objects\":[...]}'\n  crdt decode - < /var/lib/crdt/log.jsonl\n  crdt --json decode - < frames.txt"
    )]
    Decode(DecodeArgs),
    /// Explain in plain words why an object's value is what it is
    #[command(
        after_help = "Examples:\n  crdt explain config:global\n  crdt explain tasks:active --from merged.json"
    )]
    Explain(ExplainArgs),
    /// Run a sync endpoint (WebSocket at /ws, plus /healthz and /metrics)
    #[command(
        after_help = "The clients' options (--state, --replica, --url, --connect-timeout) are not\n\
options of serve: it refuses them (its state is in --data) and ignores their\n\
variables (CRDT_STATE, CRDT_REPLICA, CRDT_URL), so one shell can run both.\n\n\
Examples:\n  crdt serve\n  crdt serve --listen 0.0.0.0:7878 --token \"$(cat token)\" --data /var/lib/crdt\n  crdt serve --tokens /etc/crdt/tokens     # lines like: s3cret-agents agent-*\n  kill -HUP $(pidof crdt)                  # read the tokens file again\n  crdt serve --token T --metrics-public    # /metrics for a local scraper without the token\n  crdt serve --listen 127.0.0.1:7001 --cluster redis://127.0.0.1:6379   # one node of a cluster\n  crdt serve --cluster rediss://redis.internal:6380 --cluster-ca ca.pem \\\n      --cluster-cert node.pem --cluster-key node.key   # TLS: a private CA, a client certificate\n  CRDT_URL=ws://127.0.0.1:7878/ws crdt inc metrics:requests"
    )]
    Serve(ServeArgs),
    /// Push and pull until the local replica and the endpoint have the same versions
    #[command(
        after_help = "Examples:\n  crdt --url ws://127.0.0.1:7878/ws sync\n  crdt sync metrics: config:global --json\n  crdt sync --follow tasks: &   # keep tasks:* in sync while agents change it"
    )]
    Sync(SyncArgs),
    /// Print changes to the selected objects as they arrive from the endpoint
    #[command(
        after_help = "Examples:\n  crdt watch metrics:\n  crdt watch tasks:active --json --count 10\n  crdt watch config:global --timeout 30"
    )]
    Watch(WatchArgs),
    /// Block until a condition holds (exit 0) or the timeout passes (exit 1)
    #[command(
        after_help = "EXPR: `>= N`, `> N`, `<= N`, `< N`, `== VALUE`, `!= VALUE` (counters and\n\
registers; VALUE is JSON or a string), `contains X` (sets, text; a map's\n\
keys), `len >= N` (members, characters, keys).\n\
A condition that can never hold for the object's type (`contains` on a counter,\n\
`>= 3` on a set) is an error, exit 2. A name this replica does not have yet may\n\
still arrive: wait keeps waiting for it.\n\n\
Examples:\n  crdt wait votes:approve --until '>= 3' --timeout 60\n  crdt wait tasks:done --until 'contains task-7' --timeout 10"
    )]
    Wait(WaitArgs),
    /// Print a shell completion script; object names complete from the
    /// local replica (the script calls crdt back with CRDT_COMPLETE set)
    #[command(
        after_help = "Examples:\n  crdt completions bash > ~/.local/share/bash-completion/completions/crdt\n  crdt completions zsh > ~/.zfunc/_crdt\n  crdt completions fish > ~/.config/fish/completions/crdt.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write every page (crdt.1 and one per
    /// command, crdt-inc.1 ...) into a directory
    #[command(hide = true)]
    Manpage(ManpageArgs),
}

/// `--at WHEN`: read the replica as it was then.
#[derive(Debug, Args)]
pub struct When {
    /// The state as this replica had it then: an RFC 3339 time, a duration ago (10m, 2h, 1d), or @N (just after entry @N of `crdt log`)
    #[arg(long, value_name = "WHEN")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct IncArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// Amount to add (at least 1)
    #[arg(default_value_t = 1)]
    pub amount: u64,
    /// Type to create the counter with
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub ty: Option<CounterType>,
}

#[derive(Debug, Args)]
pub struct DecArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// Amount to subtract (at least 1)
    #[arg(default_value_t = 1)]
    pub amount: u64,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// The value: JSON (`{"a": 1}`, `true`, `3`, `"text"`) or a plain string
    pub value: String,
    /// Take VALUE as a string even when it parses as JSON
    #[arg(long)]
    pub string: bool,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// Members to add: JSON values or plain strings
    #[arg(required = true, value_name = "ELEM")]
    pub elems: Vec<String>,
    /// Take every ELEM as a string
    #[arg(long)]
    pub string: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// Members to remove, written as they were added
    #[arg(required = true, value_name = "ELEM")]
    pub elems: Vec<String>,
    /// Take every ELEM as a string
    #[arg(long)]
    pub string: bool,
}

#[derive(Debug, Args)]
pub struct InsertArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// Position in characters (not bytes)
    pub pos: usize,
    /// The text to insert
    pub text: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// Position of the first character deleted (0 is the start)
    pub pos: usize,
    /// How many characters
    #[arg(default_value_t = 1)]
    pub len: usize,
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The object's name, e.g. document:main (see Names in `crdt --help`)
    pub name: String,
    /// The text to append
    pub text: String,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// The map's name, e.g. config:flags (see Names in `crdt --help`)
    pub name: String,
    /// The key (any string)
    pub key: String,
    /// The value: JSON (`{"a": 1}`, `true`, `3`, `"text"`) or a plain string
    pub value: String,
    /// Take VALUE as a string even when it parses as JSON
    #[arg(long)]
    pub string: bool,
}

#[derive(Debug, Args)]
pub struct UnsetArgs {
    /// The map's name, e.g. config:flags (see Names in `crdt --help`)
    pub name: String,
    /// Keys to remove
    #[arg(required = true, value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DelArgs {
    /// The objects' names, e.g. tasks:done (every type of each name)
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The name with a type conflict
    pub name: String,
    /// The type to keep
    #[arg(long, value_enum, value_name = "TYPE")]
    pub keep: TypeArg,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// The type to create
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub ty: TypeArg,
    /// For a bounded-counter: how many rights there are (this replica holds them all)
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The bounded counter's name, e.g. resources:gpu
    pub name: String,
    /// How many of this replica's unused rights to move
    pub amount: u64,
    /// The replica that gets them
    #[arg(long, value_name = "REPLICA")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The object's name, e.g. metrics:requests
    pub name: String,
    /// For a map: print this key's value only
    pub key: Option<String>,
    /// Print strings without JSON quotes (a register's string, string members)
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub when: When,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[arg(value_name = "NAME|NAMESPACE")]
    pub prefix: Option<String>,
    #[command(flatten)]
    pub when: When,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The object's name, e.g. metrics:requests
    pub name: String,
    /// Show deleted objects too
    #[arg(long)]
    pub deleted: bool,
    #[command(flatten)]
    pub when: When,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Names or namespaces (`metrics` or `metrics:` selects metrics:*)
    #[arg(value_name = "NAME|PREFIX")]
    pub select: Vec<String>,
    /// Output file; `-` or none is stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write only what a replica at this version lacks (a delta
    /// snapshot): a version document (`crdt version` output, inline or a
    /// file), or a snapshot or replica database whose versions count
    #[arg(long, value_name = "VERSION|FILE")]
    pub since: Option<String>,
    #[command(flatten)]
    pub when: When,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Names or namespaces (all when omitted)
    #[arg(value_name = "NAME|PREFIX")]
    pub select: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Snapshots, replica databases or old JSON state files; `-` is stdin
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Snapshots or replica databases to merge (A B ...)
    #[arg(required = true, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print what the merge would change in each input instead of writing it
    #[arg(long)]
    pub dry_run: bool,
    /// Output file; `-` or none is stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// File of commands; `-` or none reads stdin
    pub file: Option<PathBuf>,
    /// Stop at the first failing line (nothing is saved then)
    #[arg(long)]
    pub stop_on_error: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// Read a snapshot file (`-` is stdin) instead of the local replica
    #[arg(long, value_name = "FILE", conflicts_with = "at")]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub when: When,
}

#[derive(Debug, Args)]
pub struct VisualizeArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    #[arg(long, value_enum, default_value_t = VizFormat::Text)]
    pub format: VizFormat,
    /// Read a snapshot file (`-` is stdin) instead of the local replica
    #[arg(long, value_name = "FILE", conflicts_with = "at")]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub when: When,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Use the local replica as A
    #[arg(long)]
    pub local: bool,
    /// One summary line per name
    #[arg(long)]
    pub stat: bool,
    /// With --local: A as the local replica was then; given twice, B too
    /// (an RFC 3339 time, a duration ago, or @N)
    #[arg(long, value_name = "WHEN", requires = "local", num_args = 1, action = clap::ArgAction::Append)]
    pub at: Vec<String>,
    /// A B [NAME|PREFIX...] (or B [NAME|PREFIX...] with --local)
    #[arg(value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BlameArgs {
    /// The object's name, e.g. document:main
    pub name: String,
    /// Read another replica's database (read-only) instead of the local one
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The message (JSON text), or `-` for stdin
    #[arg(value_name = "FRAME|-")]
    pub frame: String,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// Read a snapshot file (`-` is stdin) instead of the local replica
    #[arg(long, value_name = "FILE", conflicts_with = "at")]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub when: When,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Names or namespaces (all when omitted)
    #[arg(value_name = "NAME|PREFIX")]
    pub select: Vec<String>,
    /// Stay connected: send the changes other processes make to this
    /// replica within a second, merge what arrives, reconnect after a
    /// drop; one line per exchange (JSON lines with --json); SIGINT or
    /// SIGTERM stop it with exit 0
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Names or namespaces to watch
    #[arg(required = true, value_name = "NAME|PREFIX")]
    pub select: Vec<String>,
    /// Stop after this many changes
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The object's name, e.g. metrics:requests (see Names in `crdt --help`)
    pub name: String,
    /// The condition (see EXPR below), e.g. '>= 3' or 'contains task-1'
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true, value_hint = clap::ValueHint::Other)]
    pub until: String,
    /// Seconds to wait at most (then exit 1)
    #[arg(long, value_name = "SECS")]
    pub timeout: f64,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Write the pages here instead of printing crdt.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `crdt serve`'s options (the client options are the global ones).
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub listen: String,
    /// Directory of the durable state (default $XDG_DATA_HOME/crdt/server)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Tokens file: one `TOKEN REPLICA-PATTERN` per line (`#` comments); a
    /// connection may only introduce changes of the replicas its token
    /// allows. Read again on SIGHUP. Instead of --token
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Answer /metrics without a token even when tokens are required
    #[arg(long)]
    pub metrics_public: bool,
    /// Largest message accepted, in bytes (larger ones close with code 1009)
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    pub max_message_bytes: usize,
    /// Most simultaneous WebSocket connections
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Close connections silent for this many seconds (pinged at half)
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub idle_timeout: f64,
    /// No log lines on stderr
    #[arg(long)]
    pub quiet: bool,
    /// Log size that starts a compaction (tests make it small)
    #[arg(long, hide = true, default_value_t = crdt::sync::persist::COMPACT_BYTES)]
    pub compact_bytes: u64,
    /// Run as one node of a cluster: share every change with the other nodes
    /// through Redis (redis://HOST:PORT[/DB], rediss:// for TLS; a password
    /// as redis://:PASSWORD@HOST)
    #[arg(long, value_name = "URL", help_heading = "Cluster")]
    pub cluster: Option<String>,
    /// Start of the cluster's Redis key names (nodes of one cluster share it)
    #[arg(
        long,
        default_value = "crdt:",
        value_name = "P",
        requires = "cluster",
        help_heading = "Cluster"
    )]
    pub cluster_prefix: String,
    /// Compact the Redis stream once it holds more entries than this: older
    /// entries are folded into a compacted copy per object and trimmed
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "N",
        requires = "cluster",
        help_heading = "Cluster"
    )]
    pub cluster_stream_max: usize,
    /// Entries younger than this many milliseconds are never trimmed
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "MS",
        requires = "cluster",
        help_heading = "Cluster"
    )]
    pub cluster_keep_ms: u64,
    /// CA certificate (PEM) that signed Redis's certificate, for a rediss://
    /// URL to a Redis whose certificate no public CA signed
    #[arg(
        long,
        value_name = "FILE",
        requires = "cluster",
        help_heading = "Cluster"
    )]
    pub cluster_ca: Option<PathBuf>,
    /// Client certificate (PEM) this node shows Redis over rediss:// (for a
    /// Redis with tls-auth-clients yes, its default); with --cluster-key
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["cluster", "cluster_key"],
        help_heading = "Cluster"
    )]
    pub cluster_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); with --cluster-cert
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["cluster", "cluster_cert"],
        help_heading = "Cluster"
    )]
    pub cluster_key: Option<PathBuf>,
}

/// `crdt log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Names or namespaces (all when omitted)
    #[arg(value_name = "NAME|PREFIX")]
    pub select: Vec<String>,
    /// Entries recorded at or after this time
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Entries recorded at or before this time
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Entries that brought events made by this replica
    #[arg(long = "replica", id = "replica", value_name = "ID")]
    pub replica: Option<String>,
    /// The newest N entries
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max_count: Option<usize>,
    /// Read another replica's database (read-only) instead of the local one
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
}

/// `crdt history ...`
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Delete the history rows older than a moment (the objects keep their state)
    #[command(
        after_help = "TIME is an RFC 3339 time (2026-12-01T10:00:00Z), a duration ago (30d, 12h,\n\
10m), or milliseconds since the epoch. History is kept until trimmed.\n\n\
Examples:\n  crdt history trim --before 30d\n  crdt history trim --before 2026-12-01T00:00:00Z"
    )]
    Trim(TrimArgs),
}

#[derive(Debug, Args)]
pub struct TrimArgs {
    /// Delete the rows recorded before this moment
    #[arg(long, value_name = "TIME")]
    pub before: String,
}
