
set edit:completion:arg-completer[crdt] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) CRDT_COMPLETE="elvish" crdt -- $@words) | to-lines
}

