#!/usr/bin/env python3
"""Converts an editing trace (../shared/traces/*.json.gz, format in its README)
into `crdt batch` lines: one `delete NAME POS LEN` and/or `insert NAME POS TEXT`
per patch, in order. Text with quotes, backslashes or control characters is
written in bash's $'...' quoting, which `crdt batch` understands.

    scripts/trace-to-batch.py ../shared/traces/automerge-paper.json.gz > paper.txt
    crdt --state doc.json batch paper.txt && crdt --state doc.json get document:main
"""
import argparse
import gzip
import json
import sys


def quote(text: str) -> str:
    if text and all(c.isprintable() and c not in "'\\" for c in text):
        return "'" + text + "'"
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == "'":
            out.append("\\'")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif not c.isprintable():
            out.append("\\u%04x" % ord(c) if ord(c) <= 0xFFFF else "\\U%08x" % ord(c))
        else:
            out.append(c)
    return "$'" + "".join(out) + "'"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace", help="a .json.gz editing trace")
    ap.add_argument("--name", default="document:main", help="object name (default document:main)")
    ap.add_argument("--end", metavar="FILE", help="also write the trace's endContent to FILE")
    args = ap.parse_args()
    with gzip.open(args.trace, "rt", encoding="utf-8") as f:
        trace = json.load(f)
    if trace.get("startContent"):
        sys.exit("traces with a non-empty startContent are not supported")
    out = sys.stdout
    name = args.name
    for txn in trace["txns"]:
        for pos, delete, insert in txn["patches"]:
            if delete:
                out.write(f"delete {name} {pos} {delete}\n")
            if insert:
                # `--` keeps text that starts with a dash from reading as an option.
                dashes = "-- " if insert.startswith("-") else ""
                out.write(f"insert {name} {pos} {dashes}{quote(insert)}\n")
    if args.end:
        with open(args.end, "w", encoding="utf-8") as f:
            f.write(trace["endContent"])


if __name__ == "__main__":
    main()
