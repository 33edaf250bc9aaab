
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'crdt' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'crdt'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'crdt' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('inc', 'inc', [CompletionResultType]::ParameterValue, 'Increment a counter (created as a g-counter unless --type says otherwise)')
            [CompletionResult]::new('dec', 'dec', [CompletionResultType]::ParameterValue, 'Decrement a pn-counter (created when missing)')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Write an lww-register: VALUE is JSON when it parses as JSON, else a string (text starting with {, [ or " must be valid JSON)')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add members to an or-set (JSON when they parse as JSON, else strings; text starting with {, [ or " must be valid JSON)')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove members from an or-set')
            [CompletionResult]::new('insert', 'insert', [CompletionResultType]::ParameterValue, 'Insert text into an rga before character POS (0 is the start)')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Delete LEN characters of an rga starting at POS')
            [CompletionResult]::new('append', 'append', [CompletionResultType]::ParameterValue, 'Append text at the end of an rga')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Create an empty object of a given type')
            [CompletionResult]::new('get', 'get', [CompletionResultType]::ParameterValue, 'Print the value only: a number, a JSON value, set members one per line, the text')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List objects: all, or one name or namespace')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show an object''s type, value, version vector and contributing replicas')
            [CompletionResult]::new('export', 'export', [CompletionResultType]::ParameterValue, 'Write a snapshot of the local replica (or of the named objects and namespaces)')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print this replica''s version of the selected objects (a JSON version document), for another replica''s `export --since`')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Merge snapshot files into the local replica (`-` reads stdin)')
            [CompletionResult]::new('merge', 'merge', [CompletionResultType]::ParameterValue, 'Merge snapshot files into one, without touching the local replica')
            [CompletionResult]::new('info', 'info', [CompletionResultType]::ParameterValue, 'Show the replica''s database: path, replica id, objects, history rows, size')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'The history of changes this replica recorded')
            [CompletionResult]::new('batch', 'batch', [CompletionResultType]::ParameterValue, 'Apply many commands, one per line, in one process with one write')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show an object''s internal state: per-replica counts, writes, dots, runs')
            [CompletionResult]::new('visualize', 'visualize', [CompletionResultType]::ParameterValue, 'Draw an object''s structure as text or as a Graphviz graph')
            [CompletionResult]::new('diff', 'diff', [CompletionResultType]::ParameterValue, 'Compare two replica states: what differs, why, and what a merge gives')
            [CompletionResult]::new('explain', 'explain', [CompletionResultType]::ParameterValue, 'Explain in plain words why an object''s value is what it is')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a sync endpoint (WebSocket at /ws, plus /healthz and /metrics)')
            [CompletionResult]::new('sync', 'sync', [CompletionResultType]::ParameterValue, 'Push and pull until the local replica and the endpoint have the same versions')
            [CompletionResult]::new('watch', 'watch', [CompletionResultType]::ParameterValue, 'Print changes to the selected objects as they arrive from the endpoint')
            [CompletionResult]::new('wait', 'wait', [CompletionResultType]::ParameterValue, 'Block until a condition holds (exit 0) or the timeout passes (exit 1)')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            break
        }
        'crdt;inc' {
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'Type to create the counter with')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;dec' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;set' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--string', '--string', [CompletionResultType]::ParameterName, 'Take VALUE as a string even when it parses as JSON')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;add' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--string', '--string', [CompletionResultType]::ParameterName, 'Take every ELEM as a string')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;rm' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--string', '--string', [CompletionResultType]::ParameterName, 'Take every ELEM as a string')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;insert' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;delete' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;append' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;new' {
            [CompletionResult]::new('--type', '--type', [CompletionResultType]::ParameterName, 'The type to create')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;get' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Print strings without JSON quotes (a register''s string, string members)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;ls' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;show' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;export' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output file; `-` or none is stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output file; `-` or none is stdout')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Write only what a replica at this version lacks (a delta snapshot): a version document (`crdt version` output, inline or a file), or a snapshot or replica database whose versions count')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;version' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;import' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;merge' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output file; `-` or none is stdout')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output file; `-` or none is stdout')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Print what the merge would change in each input instead of writing it')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;info' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;history' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('trim', 'trim', [CompletionResultType]::ParameterValue, 'Delete the history rows older than a moment (the objects keep their state)')
            break
        }
        'crdt;history;trim' {
            [CompletionResult]::new('--before', '--before', [CompletionResultType]::ParameterName, 'Delete the rows recorded before this moment')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;batch' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--stop-on-error', '--stop-on-error', [CompletionResultType]::ParameterName, 'Stop at the first failing line (nothing is saved then)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;inspect' {
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read a snapshot file (`-` is stdin) instead of the local replica')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;visualize' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'format')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read a snapshot file (`-` is stdin) instead of the local replica')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;diff' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--local', '--local', [CompletionResultType]::ParameterName, 'Use the local replica as A')
            [CompletionResult]::new('--stat', '--stat', [CompletionResultType]::ParameterName, 'One summary line per name')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;explain' {
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Read a snapshot file (`-` is stdin) instead of the local replica')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on (port 0 picks a free port)')
            [CompletionResult]::new('--data', '--data', [CompletionResultType]::ParameterName, 'Directory of the durable state (default $XDG_DATA_HOME/crdt/server)')
            [CompletionResult]::new('--tokens', '--tokens', [CompletionResultType]::ParameterName, 'Tokens file: one `TOKEN REPLICA-PATTERN` per line (`#` comments); a connection may only introduce changes of the replicas its token allows. Read again on SIGHUP. Instead of --token')
            [CompletionResult]::new('--max-message-bytes', '--max-message-bytes', [CompletionResultType]::ParameterName, 'Largest message accepted, in bytes (larger ones close with code 1009)')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Most simultaneous WebSocket connections')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Close connections silent for this many seconds (pinged at half)')
            [CompletionResult]::new('--compact-bytes', '--compact-bytes', [CompletionResultType]::ParameterName, 'Log size that starts a compaction (tests make it small)')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--metrics-public', '--metrics-public', [CompletionResultType]::ParameterName, 'Answer /metrics without a token even when tokens are required')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No log lines on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;sync' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Stay connected: send the changes other processes make to this replica within a second, merge what arrives, reconnect after a drop; one line per exchange (JSON lines with --json); SIGINT or SIGTERM stop it with exit 0')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;watch' {
            [CompletionResult]::new('--count', '--count', [CompletionResultType]::ParameterName, 'Stop after this many changes')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Stop after this many seconds')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;wait' {
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'The condition (see EXPR below), e.g. ''>= 3'' or ''contains task-1''')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds to wait at most (then exit 1)')
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'crdt;completions' {
            [CompletionResult]::new('--state', '--state', [CompletionResultType]::ParameterName, 'The local replica''s database, an SQLite file (or $CRDT_STATE)')
            [CompletionResult]::new('--replica', '--replica', [CompletionResultType]::ParameterName, 'Replica id to create the database with; must match an existing one (or $CRDT_REPLICA)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colors (NO_COLOR is honoured with auto)')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'Sync endpoint (ws:// or wss://); change commands then sync what they changed (or $CRDT_URL)')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token: the one a client presents to the sync endpoint, or the one `serve` requires (or $CRDT_TOKEN)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the sync endpoint to connect and answer')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON document on stdout instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
