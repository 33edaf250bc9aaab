//! `crdt serve`: the sync endpoint's options turned into its configuration.

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use crdt::sync::auth::Auth;
use crdt::sync::cluster::{ClusterConfig, ClusterTls};
use crdt::sync::server::{Config, Server};

use super::Exit;
use super::args::ServeArgs;

/// Largest certificate or key file `serve` reads.
const PEM_MAX: u64 = 1 << 20;

/// `$XDG_DATA_HOME/crdt/server`, else `~/.local/share/crdt/server`.
fn default_data_dir() -> PathBuf {
    super::data_home().join("crdt").join("server")
}

/// `crdt serve`; `token` is the global `--token` (or `CRDT_TOKEN`).
pub fn serve(args: ServeArgs, token: Option<String>) -> Result<Exit> {
    let ServeArgs {
        listen,
        data,
        tokens,
        metrics_public,
        max_message_bytes,
        max_connections,
        idle_timeout,
        quiet,
        compact_bytes,
        cluster,
        cluster_prefix,
        cluster_stream_max,
        cluster_keep_ms,
        cluster_ca,
        cluster_cert,
        cluster_key,
    } = args;
    // A PEM file is a few kilobytes: more than a mebibyte (`/dev/zero`, a
    // wrong path) is refused, not read into memory.
    let pem = |flag: &str, path: &Option<PathBuf>| -> Result<Option<Vec<u8>>> {
        let Some(p) = path else { return Ok(None) };
        let mut bytes = Vec::new();
        std::fs::File::open(p)
            .and_then(|f| f.take(PEM_MAX + 1).read_to_end(&mut bytes))
            .with_context(|| format!("cannot read {flag} {}", p.display()))?;
        if bytes.len() as u64 > PEM_MAX {
            bail!(
                "{flag} {}: larger than {PEM_MAX} bytes, not a PEM file",
                p.display()
            );
        }
        Ok(Some(bytes))
    };
    let tls = ClusterTls {
        ca: pem("--cluster-ca", &cluster_ca)?,
        client: pem("--cluster-cert", &cluster_cert)?.zip(pem("--cluster-key", &cluster_key)?),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())
            .context("cannot install the signal handlers")?;
    }
    let data = data.unwrap_or_else(default_data_dir);
    if tokens.is_some() && token.is_some() {
        bail!("give --tokens FILE or --token (CRDT_TOKEN), not both");
    }
    let auth = match (&tokens, token) {
        (Some(path), _) => {
            Auth::Tokens(crdt::sync::server::read_tokens(path).map_err(|e| anyhow!(e))?)
        }
        (None, Some(t)) if t.is_empty() => bail!("--token (or CRDT_TOKEN) is empty"),
        (None, Some(t)) => Auth::Token(t),
        (None, None) => Auth::Open,
    };
    let open = !auth.required();
    let config = Config {
        listen,
        data: data.clone(),
        auth,
        tokens_file: tokens,
        metrics_public,
        compact_bytes,
        max_message_bytes,
        max_connections,
        idle_timeout: Duration::from_secs_f64(idle_timeout.max(0.1)),
        cluster: cluster.map(|url| ClusterConfig {
            url,
            prefix: cluster_prefix,
            stream_max: cluster_stream_max,
            keep: Duration::from_millis(cluster_keep_ms),
            tls,
        }),
    };
    if let Some(c) = &config.cluster {
        crdt::sync::cluster::check(c).map_err(|e| anyhow!(e))?;
    }
    let log: crdt::sync::server::Log = if quiet {
        Arc::new(|_| {})
    } else {
        Arc::new(|line| eprintln!("crdt serve: {line}"))
    };
    let (server, loaded) = Server::bind(config, log, stop).map_err(|e| anyhow!(e))?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, server.reload_flag())
        .context("cannot install the SIGHUP handler")?;
    let addr = server.local_addr()?;
    // The first line says where it listens, even with --quiet: scripts and
    // tests read the port from it when they ask for port 0.
    eprintln!(
        "crdt serve: listening on ws://{addr}/ws as {} ({} objects, {} log entries loaded from {}{}{})",
        server.replica(),
        loaded.objects,
        loaded.log_entries,
        data.display(),
        if loaded.torn {
            "; dropped a torn last log entry that was never acknowledged"
        } else {
            ""
        },
        if loaded.direct {
            ""
        } else {
            "; the log is written buffered, as the file system refuses direct I/O (slower)"
        }
    );
    if let Some(why) = &loaded.unfinished_compaction {
        eprintln!(
            "crdt serve: warning: cannot finish the last compaction ({why}); nothing is lost (both logs are kept), but free some space"
        );
    }
    // After the first line (scripts read the port from it).
    if open && !addr.ip().is_loopback() {
        eprintln!(
            "crdt serve: warning: listening on {addr} without a token: anyone who can reach it may read and change every object (use --token or --tokens)"
        );
    }
    server.run().context("the server failed")?;
    if !quiet {
        eprintln!("crdt serve: stopped; state flushed to {}", data.display());
    }
    Ok(Exit::Success)
}
