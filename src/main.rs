use std::process::ExitCode;

use clap::Parser;
use normal_form_app::cli::{Cli, run};
use normal_form_app::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, normal_form_app::cli::Command::Openapi) {
        // Needs no configuration (and must not create ./data just to print a document).
        print!("{}", normal_form_app::openapi::json());
        return ExitCode::SUCCESS;
    }
    normal_form_app::external::install_crypto_provider();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    match run(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
