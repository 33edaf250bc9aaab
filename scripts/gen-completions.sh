#!/usr/bin/env bash
# Regenerates the checked-in shell completions and man pages from the clap tree.
# Run after changing any command or flag; tests/cli.rs fails while they are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/crdt
"$bin" completions bash > completions/crdt.bash
"$bin" completions zsh > completions/_crdt
"$bin" completions fish > completions/crdt.fish
"$bin" completions elvish > completions/crdt.elv
"$bin" completions powershell > completions/_crdt.ps1
rm -rf docs/man
"$bin" manpage --dir docs/man
echo "regenerated completions/ and docs/man/"
