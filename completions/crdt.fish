complete --keep-order --exclusive --command crdt --arguments "(CRDT_COMPLETE=fish crdt -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
