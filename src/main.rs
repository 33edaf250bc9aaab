//! The `crdt` command-line tool. All the work is in the `cli` module and the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
