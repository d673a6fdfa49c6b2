//! The `qubix` client commands, built on the SDK: human tables by default, `--json` for
//! scripts, colours only on a terminal, and exit codes that tell usage errors (2), API errors
//! (3) and connection failures (4) apart. `QUBIX_API` and `QUBIX_TOKEN` (or the data dir's
//! `api-token`) configure it.

mod commands;
mod output;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use qubix_sdk::{Client, SdkError};

pub use commands::run;

/// How the client reaches the node.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// API base URL of the node.
    #[arg(
        long,
        env = "QUBIX_API",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub api: String,
    /// API token. A value given here shows in `ps` to every user of this machine: prefer
    /// the QUBIX_TOKEN environment variable or the token file (<token-dir>/api-token,
    /// read only when it is this user's, mode 0600 and not a symbolic link).
    #[arg(long, env = "QUBIX_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Data directory to read the api-token from.
    #[arg(
        long = "token-dir",
        env = "QUBIX_DATA_DIR",
        default_value = ".qubix",
        global = true
    )]
    pub token_dir: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Connection {
    /// A client, with the token from the flag, the env or the token file.
    pub fn client(&self) -> Result<Client, CliError> {
        let token = match &self.token {
            Some(t) => t.clone(),
            None => {
                let path = self.token_dir.join("api-token");
                match qubix_gateway::read_token_file(&path) {
                    Ok(token) => token.expose().to_owned(),
                    Err(qubix_gateway::GatewayError::TokenUnsafe(e))
                        if qubix_protocol::secret_file::is_missing(&e) =>
                    {
                        return Err(CliError::usage(format!(
                            "no API token: set QUBIX_TOKEN, or run where {} exists",
                            path.display()
                        )));
                    }
                    Err(e) => return Err(CliError::usage(e.to_string())),
                }
            }
        };
        Client::new(self.api.clone(), token).map_err(CliError::from)
    }
}

/// Client commands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Search the market: `qubix offers "gpu_name=RTX_4090 num_gpus>=2 price<=1500"`.
    Offers(commands::OffersArgs),
    /// Rent GPUs and run a container.
    Launch(commands::LaunchArgs),
    /// List your instances.
    Instances,
    /// Show one instance.
    Instance {
        /// Instance id.
        id: String,
    },
    /// Print an instance's logs.
    Logs {
        /// Instance id.
        id: String,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
        /// Lines of history.
        #[arg(long, default_value_t = 100)]
        tail: u32,
    },
    /// Print an instance's metrics (GPU utilisation, VRAM, temperature, power, CPU, memory).
    Metrics {
        /// Instance id.
        id: String,
        /// Keep printing new samples.
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop an instance, keeping its data.
    Stop {
        /// Instance id.
        id: String,
    },
    /// Start a stopped instance.
    Start {
        /// Instance id.
        id: String,
    },
    /// Restart an instance.
    Restart {
        /// Instance id.
        id: String,
    },
    /// Terminate an instance: remove it, end billing, refund the unused part.
    Terminate {
        /// Instance id.
        id: String,
    },
    /// Print (or run, with --exec) the SSH command of an instance.
    Ssh {
        /// Instance id.
        id: String,
        /// Run ssh instead of printing the command.
        #[arg(long)]
        exec: bool,
    },
    /// Balances, escrow and spend per instance.
    Billing,
    /// The signed usage receipts of an instance (`--json` includes each signed envelope).
    Receipts {
        /// Instance id (or a unique prefix).
        id: String,
    },
    /// Your wallet: identity and balance; `withdraw` sends QU out.
    Wallet(commands::WalletArgs),
}

/// What kind of failure ended a command (decides the exit code).
#[derive(Debug)]
pub enum CliError {
    /// Bad input from the user (exit 2).
    Usage(String),
    /// The node refused (exit 3).
    Api(String),
    /// The node could not be reached (exit 4).
    Connection(String),
}

impl CliError {
    fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Api(_) => 3,
            Self::Connection(_) => 4,
        }
    }

    /// The one line shown to the user.
    pub fn message(&self) -> &str {
        match self {
            Self::Usage(m) | Self::Api(m) | Self::Connection(m) => m,
        }
    }
}

impl From<SdkError> for CliError {
    fn from(e: SdkError) -> Self {
        match e {
            SdkError::Transport { .. } | SdkError::Timeout { .. } => {
                Self::Connection(e.to_string())
            }
            SdkError::Config(_) => Self::Usage(e.to_string()),
            SdkError::Api { .. } | SdkError::Decode { .. } => Self::Api(e.to_string()),
        }
    }
}
