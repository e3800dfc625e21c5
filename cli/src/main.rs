//! `vh`: administers a running Vaulthalla node through its control socket.

mod client;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use vh_cli::protocol::Request;

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
    /// The S3 gateway: credentials, buckets, and the service itself.
    #[command(name = "s3-gateway", subcommand)]
    S3Gateway(GatewayCommand),
    /// Vaults: encrypted storage spaces.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// The node's services, one at a time.
    #[command(subcommand)]
    Service(ServiceCommand),
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
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List credentials (never their secrets).
    List(JsonFlag),
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
        /// Make the vault writable only through the gateway.
        #[arg(long)]
        api_exclusive: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// List buckets.
    List(JsonFlag),
    /// Stop serving a bucket; its vault and data stay.
    Unbind {
        /// The bucket name.
        name: String,
    },
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (request, json) = to_request(cli.command);
    let socket = client::socket_path(cli.socket, cli.config, cli.dev);
    match client::call(&socket, request) {
        Ok(output) => render::print(&output, json),
        Err(err) => {
            eprintln!("vh: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn to_request(command: Command) -> (Request, bool) {
    match command {
        Command::Status(flag) => (Request::Status, flag.json),
        Command::Vault(VaultCommand::Create { name, json }) => {
            (Request::VaultCreate { name }, json.json)
        }
        Command::Vault(VaultCommand::List(flag)) => (Request::VaultList, flag.json),
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
            GatewayCommand::Creds(CredsCommand::Create { name, json }) => {
                (Request::CredentialCreate { name }, json.json)
            }
            GatewayCommand::Creds(CredsCommand::List(flag)) => (Request::CredentialList, flag.json),
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
                BucketCommand::Unbind { name } => (Request::BucketUnbind { name }, false),
            },
        },
    }
}
