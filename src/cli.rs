//! The command line: `serve` and `migrate`.

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::db::{Db, PoolSettings};
use crate::startup::{Application, shutdown_signal};

#[derive(Parser)]
#[command(name = "normal-form-app", version, about = "会員登録webフォーム: member-registration web form service")]
#[command(after_help = "Configuration comes from environment variables; see README.md (LISTEN_ADDR, DATABASE_URL, ...).")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the web server (applies pending database migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

/// Runs a parsed command. Errors in configuration exit with code 2, anything else with 1.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(config.log_format);
    match cli.command {
        Command::Serve => {
            let app = Application::build(config).await?;
            tracing::info!(event = "listening", address = %app.local_addr(), backend = app.state().db.backend(), "normal-form-app is listening");
            app.run_until(shutdown_signal()).await?;
        }
        Command::Migrate => {
            let db = Db::connect(&config.database_url, &PoolSettings::from(&config))?;
            db.migrate().await?;
            db.close().await;
            println!("migrations applied ({})", db.backend());
        }
    }
    Ok(())
}
