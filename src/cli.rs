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
    /// Serve stand-ins for the three external APIs (address, inventory, region) on one port.
    StubApis {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: std::net::SocketAddr,
        /// Make an API slow: NAME[=MILLISECONDS] (default 3000). Repeatable.
        #[arg(long, value_name = "NAME[=MS]")]
        slow: Vec<String>,
        /// Make an API answer 503. Repeatable.
        #[arg(long, value_name = "NAME")]
        fail: Vec<String>,
        /// Make an API refuse connections. Repeatable.
        #[arg(long, value_name = "NAME")]
        refuse: Vec<String>,
    },
    /// Postal-code data: rebuild the bundled table from Japan Post's utf_ken_all.csv.
    Postal {
        #[command(subcommand)]
        command: PostalCommand,
    },
}

#[derive(Subcommand)]
pub enum PostalCommand {
    /// Rebuild assets/postal/ken_all.tsv.gz from Japan Post's UTF-8 utf_ken_all.csv and summarise the changes.
    Import {
        /// Path of utf_ken_all.csv.
        file: std::path::PathBuf,
        /// Where to write the table.
        #[arg(long, default_value = "assets/postal/ken_all.tsv.gz")]
        out: std::path::PathBuf,
    },
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
        Command::StubApis { listen, slow, fail, refuse } => {
            use crate::stub_apis::{Mode, StubOptions, parse_switch};
            let mut modes = Vec::new();
            for value in &slow {
                modes.push(parse_switch(value, true).map_err(|e| anyhow::anyhow!("--slow {e}"))?);
            }
            for (values, mode) in [(&fail, Mode::Fail), (&refuse, Mode::Refuse)] {
                for value in values {
                    let (api, _) = parse_switch(value, false).map_err(|e| anyhow::anyhow!("{e}"))?;
                    modes.push((api, mode));
                }
            }
            let catalog = match &config.catalog_path {
                Some(path) => crate::catalog::Catalog::load(path)?,
                None => crate::catalog::Catalog::embedded()?,
            };
            crate::stub_apis::run(catalog, StubOptions { listen, modes }).await?;
        }
        Command::Postal { command: PostalCommand::Import { file, out } } => {
            crate::address::run_import_cli(&file, &out)?;
        }
    }
    Ok(())
}
