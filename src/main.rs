use std::process::ExitCode;

use clap::Parser;
use normal_form_app::cli::{Cli, run};
use normal_form_app::config::Config;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Access-log lines are batched per worker and written when it runs out of work.
        .on_thread_park(normal_form_app::telemetry::flush_this_thread)
        .on_thread_stop(normal_form_app::telemetry::flush_and_stop_batching)
        .build();
    match runtime {
        Ok(runtime) => {
            let code = runtime.block_on(async_main());
            // Stops the workers, which write what they still hold.
            drop(runtime);
            code
        }
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn async_main() -> ExitCode {
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
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
