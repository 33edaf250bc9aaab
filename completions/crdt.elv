
use builtin;
use str;

set edit:completion:arg-completer[crdt] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'crdt'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'crdt'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand inc 'Increment a counter (created as a g-counter unless --type says otherwise)'
            cand dec 'Decrement a pn-counter (created when missing)'
            cand set 'Write an lww-register: VALUE is JSON when it parses as JSON, else a string (text starting with {, [ or " must be valid JSON)'
            cand add 'Add members to an or-set (JSON when they parse as JSON, else strings; text starting with {, [ or " must be valid JSON)'
            cand rm 'Remove members from an or-set'
            cand insert 'Insert text into an rga before character POS (0 is the start)'
            cand delete 'Delete LEN characters of an rga starting at POS'
            cand append 'Append text at the end of an rga'
            cand new 'Create an empty object of a given type'
            cand get 'Print the value only: a number, a JSON value, set members one per line, the text'
            cand ls 'List objects: all, or one name or namespace'
            cand show 'Show an object''s type, value, version vector and contributing replicas'
            cand export 'Write a snapshot of the local replica (or of the named objects and namespaces)'
            cand version 'Print this replica''s version of the selected objects (a JSON version document), for another replica''s `export --since`'
            cand import 'Merge snapshot files into the local replica (`-` reads stdin)'
            cand merge 'Merge snapshot files into one, without touching the local replica'
            cand info 'Show the replica''s database: path, replica id, objects, history rows, size'
            cand history 'The history of changes this replica recorded'
            cand batch 'Apply many commands, one per line, in one process with one write'
            cand inspect 'Show an object''s internal state: per-replica counts, writes, dots, runs'
            cand visualize 'Draw an object''s structure as text or as a Graphviz graph'
            cand diff 'Compare two replica states: what differs, why, and what a merge gives'
            cand explain 'Explain in plain words why an object''s value is what it is'
            cand serve 'Run a sync endpoint (WebSocket at /ws, plus /healthz and /metrics)'
            cand sync 'Push and pull until the local replica and the endpoint have the same versions'
            cand watch 'Print changes to the selected objects as they arrive from the endpoint'
            cand wait 'Block until a condition holds (exit 0) or the timeout passes (exit 1)'
            cand completions 'Print shell completions'
            cand manpage 'Print the man page (roff)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'crdt;inc'= {
            cand --type 'Type to create the counter with'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;dec'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;set'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --string 'Take VALUE as a string even when it parses as JSON'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;add'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --string 'Take every ELEM as a string'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;rm'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --string 'Take every ELEM as a string'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;insert'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;delete'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;append'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;new'= {
            cand --type 'type'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;get'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;ls'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;show'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;export'= {
            cand -o 'Output file; `-` or none is stdout'
            cand --output 'Output file; `-` or none is stdout'
            cand --since 'Write only what a replica at this version lacks (a delta snapshot): a version document (`crdt version` output, inline or a file), or a snapshot or replica database whose versions count'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;version'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;import'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;merge'= {
            cand -o 'Output file; `-` or none is stdout'
            cand --output 'Output file; `-` or none is stdout'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --dry-run 'Print what the merge would change in each input instead of writing it'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;info'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;history'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand trim 'Delete the history rows older than a moment (the objects keep their state)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'crdt;history;trim'= {
            cand --before 'Delete the rows recorded before this moment'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;history;help'= {
            cand trim 'Delete the history rows older than a moment (the objects keep their state)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'crdt;history;help;trim'= {
        }
        &'crdt;history;help;help'= {
        }
        &'crdt;batch'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --stop-on-error 'Stop at the first failing line (nothing is saved then)'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;inspect'= {
            cand --from 'Read a snapshot file (`-` is stdin) instead of the local replica'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;visualize'= {
            cand --format 'format'
            cand --from 'Read a snapshot file (`-` is stdin) instead of the local replica'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;diff'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --local 'Use the local replica as A'
            cand --stat 'One summary line per name'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;explain'= {
            cand --from 'Read a snapshot file (`-` is stdin) instead of the local replica'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;serve'= {
            cand --listen 'Address to listen on (port 0 picks a free port)'
            cand --data 'Directory of the durable state (default $XDG_DATA_HOME/crdt/server)'
            cand --tokens 'Tokens file: one `TOKEN REPLICA-PATTERN` per line (`#` comments); a connection may only introduce changes of the replicas its token allows. Read again on SIGHUP. Instead of --token'
            cand --max-message-bytes 'Largest message accepted, in bytes (larger ones close with code 1009)'
            cand --max-connections 'Most simultaneous WebSocket connections'
            cand --idle-timeout 'Close connections silent for this many seconds (pinged at half)'
            cand --compact-bytes 'Log size that starts a compaction (tests make it small)'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --metrics-public 'Answer /metrics without a token even when tokens are required'
            cand --quiet 'No log lines on stderr'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;sync'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --follow 'Stay connected: send the changes other processes make to this replica within a second, merge what arrives, reconnect after a drop; one line per exchange (JSON lines with --json); SIGINT or SIGTERM stop it with exit 0'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;watch'= {
            cand --count 'Stop after this many changes'
            cand --timeout 'Stop after this many seconds'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;wait'= {
            cand --until 'until'
            cand --timeout 'timeout'
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;completions'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;manpage'= {
            cand --state 'The local replica''s database (an SQLite file)'
            cand --replica 'Replica id to create the database with (must match an existing one)'
            cand --color 'When to use colors (NO_COLOR is honoured with auto)'
            cand --url 'Sync endpoint (ws:// or wss://); change commands then sync what they changed'
            cand --token 'Bearer token for the sync endpoint'
            cand --connect-timeout 'Seconds to wait for the sync endpoint to connect and answer'
            cand --json 'Print one JSON document on stdout instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'crdt;help'= {
            cand inc 'Increment a counter (created as a g-counter unless --type says otherwise)'
            cand dec 'Decrement a pn-counter (created when missing)'
            cand set 'Write an lww-register: VALUE is JSON when it parses as JSON, else a string (text starting with {, [ or " must be valid JSON)'
            cand add 'Add members to an or-set (JSON when they parse as JSON, else strings; text starting with {, [ or " must be valid JSON)'
            cand rm 'Remove members from an or-set'
            cand insert 'Insert text into an rga before character POS (0 is the start)'
            cand delete 'Delete LEN characters of an rga starting at POS'
            cand append 'Append text at the end of an rga'
            cand new 'Create an empty object of a given type'
            cand get 'Print the value only: a number, a JSON value, set members one per line, the text'
            cand ls 'List objects: all, or one name or namespace'
            cand show 'Show an object''s type, value, version vector and contributing replicas'
            cand export 'Write a snapshot of the local replica (or of the named objects and namespaces)'
            cand version 'Print this replica''s version of the selected objects (a JSON version document), for another replica''s `export --since`'
            cand import 'Merge snapshot files into the local replica (`-` reads stdin)'
            cand merge 'Merge snapshot files into one, without touching the local replica'
            cand info 'Show the replica''s database: path, replica id, objects, history rows, size'
            cand history 'The history of changes this replica recorded'
            cand batch 'Apply many commands, one per line, in one process with one write'
            cand inspect 'Show an object''s internal state: per-replica counts, writes, dots, runs'
            cand visualize 'Draw an object''s structure as text or as a Graphviz graph'
            cand diff 'Compare two replica states: what differs, why, and what a merge gives'
            cand explain 'Explain in plain words why an object''s value is what it is'
            cand serve 'Run a sync endpoint (WebSocket at /ws, plus /healthz and /metrics)'
            cand sync 'Push and pull until the local replica and the endpoint have the same versions'
            cand watch 'Print changes to the selected objects as they arrive from the endpoint'
            cand wait 'Block until a condition holds (exit 0) or the timeout passes (exit 1)'
            cand completions 'Print shell completions'
            cand manpage 'Print the man page (roff)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'crdt;help;inc'= {
        }
        &'crdt;help;dec'= {
        }
        &'crdt;help;set'= {
        }
        &'crdt;help;add'= {
        }
        &'crdt;help;rm'= {
        }
        &'crdt;help;insert'= {
        }
        &'crdt;help;delete'= {
        }
        &'crdt;help;append'= {
        }
        &'crdt;help;new'= {
        }
        &'crdt;help;get'= {
        }
        &'crdt;help;ls'= {
        }
        &'crdt;help;show'= {
        }
        &'crdt;help;export'= {
        }
        &'crdt;help;version'= {
        }
        &'crdt;help;import'= {
        }
        &'crdt;help;merge'= {
        }
        &'crdt;help;info'= {
        }
        &'crdt;help;history'= {
            cand trim 'Delete the history rows older than a moment (the objects keep their state)'
        }
        &'crdt;help;history;trim'= {
        }
        &'crdt;help;batch'= {
        }
        &'crdt;help;inspect'= {
        }
        &'crdt;help;visualize'= {
        }
        &'crdt;help;diff'= {
        }
        &'crdt;help;explain'= {
        }
        &'crdt;help;serve'= {
        }
        &'crdt;help;sync'= {
        }
        &'crdt;help;watch'= {
        }
        &'crdt;help;wait'= {
        }
        &'crdt;help;completions'= {
        }
        &'crdt;help;manpage'= {
        }
        &'crdt;help;help'= {
        }
    ]
    $completions[$command]
}
