# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_crdt_global_optspecs
    string join \n state= replica= json color= url= token= connect-timeout= h/help V/version
end

function __fish_crdt_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_crdt_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_crdt_using_subcommand
    set -l cmd (__fish_crdt_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c crdt -n "__fish_crdt_needs_command" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_needs_command" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_needs_command" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_needs_command" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_needs_command" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_needs_command" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_needs_command" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_needs_command" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_needs_command" -s V -l version -d 'Print version'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "inc" -d 'Increment a counter (created as a g-counter unless --type says otherwise)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "dec" -d 'Decrement a pn-counter (created when missing)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "set" -d 'Write an lww-register: VALUE is JSON when it parses as JSON, else a string (text starting with {, [ or " must be valid JSON)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "add" -d 'Add members to an or-set (JSON when they parse as JSON, else strings; text starting with {, [ or " must be valid JSON)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "rm" -d 'Remove members from an or-set'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "insert" -d 'Insert text into an rga before character POS (0 is the start)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "delete" -d 'Delete LEN characters of an rga starting at POS'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "append" -d 'Append text at the end of an rga'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "new" -d 'Create an empty object of a given type'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "get" -d 'Print the value only: a number, a JSON value, set members one per line, the text'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "ls" -d 'List objects: all, or one name or namespace'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "show" -d 'Show an object\'s type, value, version vector and contributing replicas'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "export" -d 'Write a snapshot of the local replica (or of the named objects and namespaces)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "version" -d 'Print this replica\'s version of the selected objects (a JSON version document), for another replica\'s `export --since`'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "import" -d 'Merge snapshot files into the local replica (`-` reads stdin)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "merge" -d 'Merge snapshot files into one, without touching the local replica'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "info" -d 'Show the replica\'s database: path, replica id, objects, history rows, size'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "history" -d 'The history of changes this replica recorded'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "batch" -d 'Apply many commands, one per line, in one process with one write'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "inspect" -d 'Show an object\'s internal state: per-replica counts, writes, dots, runs'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "visualize" -d 'Draw an object\'s structure as text or as a Graphviz graph'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "diff" -d 'Compare two replica states: what differs, why, and what a merge gives'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "explain" -d 'Explain in plain words why an object\'s value is what it is'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "serve" -d 'Run a sync endpoint (WebSocket at /ws, plus /healthz and /metrics)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "sync" -d 'Push and pull until the local replica and the endpoint have the same versions'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "watch" -d 'Print changes to the selected objects as they arrive from the endpoint'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "wait" -d 'Block until a condition holds (exit 0) or the timeout passes (exit 1)'
complete -c crdt -n "__fish_crdt_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c crdt -n "__fish_crdt_using_subcommand inc" -l type -d 'Type to create the counter with' -r -f -a "g-counter\t''
pn-counter\t''"
complete -c crdt -n "__fish_crdt_using_subcommand inc" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand inc" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand inc" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand inc" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand inc" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand inc" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand inc" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand inc" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand dec" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand dec" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand dec" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand dec" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand dec" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand dec" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand dec" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand dec" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand set" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand set" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand set" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand set" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand set" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand set" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand set" -l string -d 'Take VALUE as a string even when it parses as JSON'
complete -c crdt -n "__fish_crdt_using_subcommand set" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand set" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand add" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand add" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand add" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand add" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand add" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand add" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand add" -l string -d 'Take every ELEM as a string'
complete -c crdt -n "__fish_crdt_using_subcommand add" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand add" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand rm" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand rm" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand rm" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand rm" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand rm" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand rm" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand rm" -l string -d 'Take every ELEM as a string'
complete -c crdt -n "__fish_crdt_using_subcommand rm" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand rm" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand insert" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand insert" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand insert" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand insert" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand insert" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand insert" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand insert" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand insert" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand delete" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand delete" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand delete" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand delete" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand delete" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand delete" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand delete" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand delete" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand append" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand append" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand append" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand append" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand append" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand append" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand append" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand append" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand new" -l type -d 'The type to create' -r -f -a "g-counter\t''
pn-counter\t''
lww-register\t''
or-set\t''
rga\t''"
complete -c crdt -n "__fish_crdt_using_subcommand new" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand new" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand new" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand new" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand new" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand new" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand new" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand new" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand get" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand get" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand get" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand get" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand get" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand get" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand get" -l raw -d 'Print strings without JSON quotes (a register\'s string, string members)'
complete -c crdt -n "__fish_crdt_using_subcommand get" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand get" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand ls" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand ls" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand ls" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand ls" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand ls" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand ls" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand ls" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand ls" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand show" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand show" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand show" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand show" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand show" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand show" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand show" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand show" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand export" -s o -l output -d 'Output file; `-` or none is stdout' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand export" -l since -d 'Write only what a replica at this version lacks (a delta snapshot): a version document (`crdt version` output, inline or a file), or a snapshot or replica database whose versions count' -r
complete -c crdt -n "__fish_crdt_using_subcommand export" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand export" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand export" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand export" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand export" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand export" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand export" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand export" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand version" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand version" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand version" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand version" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand version" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand version" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand version" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand version" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand import" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand import" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand import" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand import" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand import" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand import" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand import" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand import" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand merge" -s o -l output -d 'Output file; `-` or none is stdout' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand merge" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand merge" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand merge" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand merge" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand merge" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand merge" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand merge" -l dry-run -d 'Print what the merge would change in each input instead of writing it'
complete -c crdt -n "__fish_crdt_using_subcommand merge" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand merge" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand info" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand info" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand info" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand info" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand info" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand info" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand info" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand info" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand history; and not __fish_seen_subcommand_from trim" -f -a "trim" -d 'Delete the history rows older than a moment (the objects keep their state)'
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -l before -d 'Delete the rows recorded before this moment' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand history; and __fish_seen_subcommand_from trim" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand batch" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand batch" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand batch" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand batch" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand batch" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand batch" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand batch" -l stop-on-error -d 'Stop at the first failing line (nothing is saved then)'
complete -c crdt -n "__fish_crdt_using_subcommand batch" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand batch" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -l from -d 'Read a snapshot file (`-` is stdin) instead of the local replica' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l format -r -f -a "text\t''
dot\t''"
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l from -d 'Read a snapshot file (`-` is stdin) instead of the local replica' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand visualize" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l local -d 'Use the local replica as A'
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l stat -d 'One summary line per name'
complete -c crdt -n "__fish_crdt_using_subcommand diff" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand diff" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand explain" -l from -d 'Read a snapshot file (`-` is stdin) instead of the local replica' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand explain" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand explain" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand explain" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand explain" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand explain" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand explain" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand explain" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand explain" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l listen -d 'Address to listen on (port 0 picks a free port)' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l data -d 'Directory of the durable state (default $XDG_DATA_HOME/crdt/server)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l tokens -d 'Tokens file: one `TOKEN REPLICA-PATTERN` per line (`#` comments); a connection may only introduce changes of the replicas its token allows. Read again on SIGHUP. Instead of --token' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l max-message-bytes -d 'Largest message accepted, in bytes (larger ones close with code 1009)' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l max-connections -d 'Most simultaneous WebSocket connections' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l idle-timeout -d 'Close connections silent for this many seconds (pinged at half)' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l compact-bytes -d 'Log size that starts a compaction (tests make it small)' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l metrics-public -d 'Answer /metrics without a token even when tokens are required'
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l quiet -d 'No log lines on stderr'
complete -c crdt -n "__fish_crdt_using_subcommand serve" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand serve" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand sync" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand sync" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand sync" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand sync" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand sync" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand sync" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand sync" -l follow -d 'Stay connected: send the changes other processes make to this replica within a second, merge what arrives, reconnect after a drop; one line per exchange (JSON lines with --json); SIGINT or SIGTERM stop it with exit 0'
complete -c crdt -n "__fish_crdt_using_subcommand sync" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand sync" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l count -d 'Stop after this many changes' -r
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l timeout -d 'Stop after this many seconds' -r
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand watch" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand watch" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l until -d 'The condition (see EXPR below), e.g. \'>= 3\' or \'contains task-1\'' -r -f
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l timeout -d 'Seconds to wait at most (then exit 1)' -r
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand wait" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand wait" -s h -l help -d 'Print help'
complete -c crdt -n "__fish_crdt_using_subcommand completions" -l state -d 'The local replica\'s database, an SQLite file (or $CRDT_STATE)' -r -F
complete -c crdt -n "__fish_crdt_using_subcommand completions" -l replica -d 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)' -r
complete -c crdt -n "__fish_crdt_using_subcommand completions" -l color -d 'When to use colors (NO_COLOR is honoured with auto)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c crdt -n "__fish_crdt_using_subcommand completions" -l url -d 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)' -r
complete -c crdt -n "__fish_crdt_using_subcommand completions" -l token -d 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)' -r
complete -c crdt -n "__fish_crdt_using_subcommand completions" -l connect-timeout -d 'Seconds to wait for the sync endpoint to connect and answer' -r
complete -c crdt -n "__fish_crdt_using_subcommand completions" -l json -d 'Print one JSON document on stdout instead of text'
complete -c crdt -n "__fish_crdt_using_subcommand completions" -s h -l help -d 'Print help'
