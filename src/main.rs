//! `vaulthalla`: the Vaulthalla node daemon.
//!
//! It opens the vault engine (unsealing the master key), serves the control socket for `vh`,
//! runs the enabled services (the S3 gateway), and shuts down cleanly on SIGTERM or SIGINT.

mod config;
mod config_edit;
mod control;
mod node;
mod preview;
mod services;
mod supervisor;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use vault::{Engine, EngineConfig};

use crate::config::Config;
use crate::node::Node;

/// Run a Vaulthalla node: encrypted vaults served over S3.
#[derive(Parser)]
#[command(name = "vaulthalla", version, about)]
struct Args {
    /// The config file; built-in defaults apply when the default file does not exist.
    #[arg(long, env = "VH_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// A development node in ./vh-dev: data, control socket and FUSE mount (vh-dev/mnt) there,
    /// the S3 gateway on 127.0.0.1:39000. `vh --dev` talks to it.
    #[arg(long, conflicts_with = "config")]
    dev: bool,
}

fn main() -> ExitCode {
    init_tracing();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("vaulthalla: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("vaulthalla: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The config path and contents to run with.
fn load_config(args: &Args) -> anyhow::Result<(PathBuf, Config)> {
    if args.dev {
        let path = PathBuf::from(vh_cli::dev::CONFIG_FILE);
        let mut config = Config::load(&path, true)?;
        if !path.exists() {
            config.s3_gateway.enabled = true;
            config.s3_gateway.host = "127.0.0.1".to_owned();
            // The developer's own mount: allow_other would need `user_allow_other` in
            // /etc/fuse.conf for a user without root.
            config.fuse.allow_other = false;
        }
        return Ok((path, config.with_dev_paths()));
    }
    match &args.config {
        Some(path) => Ok((path.clone(), Config::load(path, false)?)),
        None => {
            let path = PathBuf::from(vh_cli::DEFAULT_CONFIG_PATH);
            let config = Config::load(&path, true)?;
            Ok((path, config))
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (config_path, config) = load_config(&args)?;
    tracing::info!(config = %config_path.display(), data_dir = %config.data_dir.display(), "starting node");

    let engine_config = EngineConfig {
        data_dir: config.data_dir.clone(),
        key_provider: config.keys.provider,
        tpm_tcti: config.keys.tpm_tcti.clone(),
        part_dir: Some(&config.s3_gateway.multipart.part_dir)
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from),
    };
    let engine = tokio::task::spawn_blocking(move || Engine::open(&engine_config))
        .await
        .context("engine start task")?
        .with_context(|| format!("open the vault engine in {}", config.data_dir.display()))?;
    let engine = Arc::new(engine);
    tracing::info!(key_provider = %engine.key_provider(), "vault engine unlocked");

    let control_listener = control::bind(&config.control_socket)?;
    let control_path = config.control_socket.clone();
    let config_path_for_watch = config_path.clone();
    let node = Arc::new(Node::new(config_path, config, engine, args.dev));
    node.start().await;
    let control_task = tokio::spawn(control::serve(control_listener, Arc::clone(&node)));
    // Dropping the watcher stops it, so it lives as long as this function.
    let _config_watcher = match watch::watch_config(&config_path_for_watch, Arc::clone(&node)) {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "config changes will need a restart");
            None
        }
    };
    tracing::info!(socket = %control_path.display(), "control socket ready");

    let mut terminate = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
    }
    control_task.abort();
    node.shutdown().await;
    let _ = std::fs::remove_file(&control_path);
    tracing::info!("node stopped");
    Ok(())
}
