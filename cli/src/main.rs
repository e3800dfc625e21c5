//! `vh`: administers a running Vaulthalla node through its control socket.

mod client;
mod expiry;
mod render;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;
use vh_cli::protocol::{Output, PROTOCOL_VERSION, Request};

/// Administer a Vaulthalla node.
#[derive(Parser)]
#[command(name = "vh", version, about)]
struct Cli {
    /// The node's config file; `vh` reads `control_socket` from it.
    #[arg(long, global = true, env = "VH_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// The control socket, overriding the config file.
    #[arg(long, global = true, env = "VH_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Talk to a development node started with `vaulthalla --dev` in this directory.
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the node's state; exits non-zero when a service that should run does not.
    Status(JsonFlag),
    /// Print vh's version and, when the node answers, the node's.
    Version(JsonFlag),
    /// The S3 gateway: credentials, buckets, and the service itself.
    #[command(name = "s3-gateway", subcommand)]
    S3Gateway(GatewayCommand),
    /// Vaults: encrypted storage spaces.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// The node's services, one at a time.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print vh's manual page (roff), or write one page per command into a directory.
    Man {
        /// Write vh.1 and a page per subcommand (vh-vault.1, vh-vault-create.1, ...) here.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Tools for diagnosing the node.
    #[command(subcommand, hide = true)]
    Debug(DebugCommand),
}

#[derive(Subcommand)]
enum ServiceCommand {
    /// Start a service (it must be enabled in the config).
    Start(ServiceName),
    /// Stop a service until it is started again or the node restarts.
    Stop(ServiceName),
    /// Restart a service.
    Restart(ServiceName),
}

#[derive(Args)]
struct ServiceName {
    /// The service, as `vh status` names it (e.g. S3GatewayService, JanitorService).
    name: String,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Abort a service's task as if it crashed; the watchdog restarts it.
    KillService {
        /// The service's name.
        name: String,
    },
}

#[derive(Args)]
struct JsonFlag {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// Enable the gateway in the config file and start it.
    Enable,
    /// Disable the gateway in the config file and stop it.
    Disable,
    /// Show the gateway's state.
    Status(JsonFlag),
    /// Gateway credentials (access keys).
    #[command(subcommand)]
    Creds(CredsCommand),
    /// Buckets served by the gateway.
    #[command(subcommand)]
    Bucket(BucketCommand),
}

#[derive(Subcommand)]
enum CredsCommand {
    /// Create a credential; its secret is printed this once.
    Create {
        /// A name for it, e.g. the machine that will use it.
        name: String,
        /// When it stops working: a duration from now (30d, 12h, 90m) or an RFC 3339 time
        /// (2030-01-31T00:00:00Z). Without it, it works until revoked.
        #[arg(long, value_name = "DURATION|TIME", value_parser = expiry::parse_expiry)]
        expires: Option<i64>,
        /// What it is for.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List credentials (never their secrets), with their state and last use.
    List(JsonFlag),
    /// Show one credential (never its secret).
    Show {
        /// The access key id (`VH…`).
        access_key: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Revoke a credential; its next request is refused.
    Revoke {
        /// The access key id (`VH…`).
        access_key: String,
    },
}

#[derive(Subcommand)]
enum BucketCommand {
    /// Create a bucket on a new encrypted local vault of the same name.
    CreateLocal {
        /// The bucket name (S3 rules: 3-63 lowercase letters, digits, '.', '-').
        name: String,
        /// Make the vault writable only through the gateway (default from
        /// `s3_gateway.default_api_exclusive`).
        #[arg(long, overrides_with = "no_api_exclusive")]
        api_exclusive: bool,
        /// Let the mount write into the vault too.
        #[arg(long)]
        no_api_exclusive: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Serve an existing vault as a bucket.
    Bind {
        /// The bucket name.
        name: String,
        /// The vault's id or name.
        #[arg(long)]
        vault: String,
        /// The bucket mode.
        #[arg(long, default_value = "local", value_parser = ["local"])]
        mode: String,
        /// Make the vault writable only through the gateway; without it, the mount may write
        /// into the vault too.
        #[arg(long)]
        api_exclusive: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List buckets.
    List(JsonFlag),
    /// Show one bucket, with its vault's object count and size.
    Show {
        /// The bucket name.
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Stop serving a bucket; its vault and data stay.
    Unbind {
        /// The bucket name.
        name: String,
    },
    /// Make a bucket's vault writable only through the gateway (on), or through the mount too
    /// (off).
    ApiExclusive {
        /// The bucket name.
        name: String,
        /// The new setting.
        #[arg(value_enum)]
        setting: Switch,
    },
}

/// A setting turned on or off.
#[derive(Clone, Copy, ValueEnum)]
enum Switch {
    /// On.
    #[value(alias = "true")]
    On,
    /// Off.
    #[value(alias = "false")]
    Off,
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Create an encrypted vault.
    Create {
        /// The vault name (letters, digits, '.', '_', '-').
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List vaults.
    List(JsonFlag),
    /// Show a vault: its buckets, object count and size.
    Show {
        /// The vault's id or name.
        vault: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Rename a vault; the buckets it serves keep their names.
    Rename {
        /// The vault's id or name.
        vault: String,
        /// The new name (letters, digits, '.', '_', '-').
        new_name: String,
    },
    /// Delete a vault and everything in it.
    Delete {
        /// The vault's id or name.
        vault: String,
        /// Unbind the buckets it serves first instead of refusing.
        #[arg(long)]
        force: bool,
    },
    /// Show a vault in the FUSE mount (`fuse.mount_point`).
    Mount {
        /// The vault's id or name.
        vault: String,
    },
    /// Hide a vault from the FUSE mount; its data stays, and its buckets still serve it.
    Unmount {
        /// The vault's id or name.
        vault: String,
    },
}

fn main() -> ExitCode {
    let Cli {
        config,
        socket,
        dev,
        command,
    } = Cli::parse();
    let socket = || client::socket_path(socket, config, dev);
    let (request, json) = match command {
        Command::Completions { shell } => return local(print_completions(shell)),
        Command::Man { out_dir } => return local(print_man(out_dir.as_deref())),
        Command::Version(flag) => return print_version(&socket(), flag.json),
        command => to_request(command),
    };
    match client::call(&socket(), request) {
        Ok(output) => render::print(&output, json),
        Err(err) => {
            eprintln!("vh: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The exit code of a command that does not talk to the node. A reader that stops early (`| head`)
/// is no failure.
fn local(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("vh: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_completions(shell: Shell) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vh", &mut script);
    std::io::stdout()
        .write_all(&script)
        .context("write the completion script")
}

fn print_man(out_dir: Option<&Path>) -> anyhow::Result<()> {
    let command = Cli::command();
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create the directory {}", dir.display()))?;
        return clap_mangen::generate_to(command, dir)
            .with_context(|| format!("write the manual pages into {}", dir.display()));
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .context("render the manual page")?;
    std::io::stdout()
        .write_all(&page)
        .context("write the manual page")
}

/// Prints vh's version and the node's; succeeds even when the node does not answer.
fn print_version(socket: &Path, json: bool) -> ExitCode {
    let mine = env!("CARGO_PKG_VERSION");
    let node = match client::call(socket, Request::Version) {
        Ok(Output::Version(node)) => Ok(node),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(err) => Err(format!("{err:#}")),
    };
    if json {
        let (node, error) = match node {
            Ok(node) => (Some(node), None),
            Err(error) => (None, Some(error)),
        };
        let value = serde_json::json!({
            "vh": { "version": mine, "protocol": PROTOCOL_VERSION },
            "node": node,
            "node_error": error,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    println!("vh {mine} (control protocol {PROTOCOL_VERSION})");
    match node {
        Ok(node) => println!("node {} (control protocol {})", node.version, node.protocol),
        Err(error) => println!("node: unknown ({error})"),
    }
    ExitCode::SUCCESS
}

fn to_request(command: Command) -> (Request, bool) {
    match command {
        Command::Status(flag) => (Request::Status, flag.json),
        Command::Version(_) | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("main handles these before building a request")
        }
        Command::Vault(VaultCommand::Create { name, json }) => {
            (Request::VaultCreate { name }, json.json)
        }
        Command::Vault(VaultCommand::List(flag)) => (Request::VaultList, flag.json),
        Command::Vault(VaultCommand::Show { vault, json }) => {
            (Request::VaultShow { vault }, json.json)
        }
        Command::Vault(VaultCommand::Rename { vault, new_name }) => {
            (Request::VaultRename { vault, new_name }, false)
        }
        Command::Vault(VaultCommand::Delete { vault, force }) => {
            (Request::VaultDelete { vault, force }, false)
        }
        Command::Vault(VaultCommand::Mount { vault }) => (Request::VaultMount { vault }, false),
        Command::Vault(VaultCommand::Unmount { vault }) => (Request::VaultUnmount { vault }, false),
        Command::Service(ServiceCommand::Start(s)) => {
            (Request::ServiceStart { name: s.name }, s.json.json)
        }
        Command::Service(ServiceCommand::Stop(s)) => {
            (Request::ServiceStop { name: s.name }, s.json.json)
        }
        Command::Service(ServiceCommand::Restart(s)) => {
            (Request::ServiceRestart { name: s.name }, s.json.json)
        }
        Command::Debug(DebugCommand::KillService { name }) => {
            (Request::DebugKillService { name }, false)
        }
        Command::S3Gateway(command) => match command {
            GatewayCommand::Enable => (Request::GatewayEnable, false),
            GatewayCommand::Disable => (Request::GatewayDisable, false),
            GatewayCommand::Status(flag) => (Request::GatewayStatus, flag.json),
            GatewayCommand::Creds(CredsCommand::Create {
                name,
                expires,
                description,
                json,
            }) => (
                Request::CredentialCreate {
                    name,
                    description,
                    expires_at_ms: expires,
                },
                json.json,
            ),
            GatewayCommand::Creds(CredsCommand::List(flag)) => (Request::CredentialList, flag.json),
            GatewayCommand::Creds(CredsCommand::Show { access_key, json }) => {
                (Request::CredentialShow { access_key }, json.json)
            }
            GatewayCommand::Creds(CredsCommand::Revoke { access_key }) => {
                (Request::CredentialRevoke { access_key }, false)
            }
            GatewayCommand::Bucket(command) => match command {
                BucketCommand::CreateLocal {
                    name,
                    api_exclusive,
                    no_api_exclusive,
                    json,
                } => {
                    let flag = match (api_exclusive, no_api_exclusive) {
                        (true, _) => Some(true),
                        (false, true) => Some(false),
                        (false, false) => None,
                    };
                    (
                        Request::BucketCreateLocal {
                            name,
                            api_exclusive: flag,
                        },
                        json.json,
                    )
                }
                BucketCommand::Bind {
                    name,
                    vault,
                    mode,
                    api_exclusive,
                    json,
                } => (
                    Request::BucketBind {
                        name,
                        vault,
                        mode,
                        api_exclusive,
                    },
                    json.json,
                ),
                BucketCommand::List(flag) => (Request::BucketList, flag.json),
                BucketCommand::Show { name, json } => (Request::BucketShow { name }, json.json),
                BucketCommand::Unbind { name } => (Request::BucketUnbind { name }, false),
                BucketCommand::ApiExclusive { name, setting } => (
                    Request::BucketSetApiExclusive {
                        name,
                        api_exclusive: matches!(setting, Switch::On),
                    },
                    false,
                ),
            },
        },
    }
}
