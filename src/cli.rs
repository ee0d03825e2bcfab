//! The command line: `serve`, `migrate` and the operator commands (`ops`, `admin`, `postal`,
//! `stub-apis`, `dev`, `openapi`). Only this module and `main` use `startup`.

use std::process::ExitCode;

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
    /// Print the OpenAPI description of /api/v1 (as committed in docs/api-v1.openapi.json).
    Openapi,
    /// Runbook checks and reports (daily checklist, business figures, weekly report).
    Ops {
        #[command(subcommand)]
        command: OpsCommand,
    },
    /// Admin console accounts (there is no default account).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Development tools (refused when APP_ENV=production).
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Postal-code data: rebuild the bundled table from Japan Post's utf_ken_all.csv.
    Postal {
        #[command(subcommand)]
        command: PostalCommand,
    },
    /// Backups of the database (SQLite or PostgreSQL) with a manifest of what they hold.
    Backup {
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Delete what has outlived its retention (flows, sent mail, old analytics counts, expired
    /// admin sessions and throttles; docs/privacy.md). `serve` runs the same once a day.
    Purge {
        /// Count what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Container health check: GET /health/live of the instance on LISTEN_ADDR; exit 0 when it
    /// answers 200 within 3 s, 1 otherwise.
    Probe {
        /// Another URL to probe (default: http://LISTEN_ADDR/health/live, 0.0.0.0 as 127.0.0.1).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Back up DATABASE_URL (SQLite: VACUUM INTO; PostgreSQL: pg_dump -Fc in one snapshot) and
    /// write PATH.manifest.json beside it.
    Create {
        /// Where to write it (default: BACKUP_DIR/normal-form-app-BACKEND-UTCTIME.EXT).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Folder for backups without --output.
        #[arg(long, env = "BACKUP_DIR", default_value = "backups")]
        backup_dir: std::path::PathBuf,
    },
    /// Restore a backup somewhere of its own and compare every table's row count and the
    /// registrations' checksum with its manifest (exit 1 on any difference).
    Verify {
        path: std::path::PathBuf,
        /// PostgreSQL server to restore into (a scratch database is created and dropped there;
        /// default: DATABASE_URL's server).
        #[arg(long)]
        scratch_url: Option<String>,
    },
    /// Replace DATABASE_URL's contents with a backup, checked against its manifest. Refuses a
    /// database holding registrations, flows or admin accounts, or one the service is connected
    /// to, without --force.
    Restore {
        path: std::path::PathBuf,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum OpsCommand {
    /// The runbook's 毎朝9:00 checklist against a running instance and its database (exit 1 if something needs a person).
    Daily {
        /// Base URL of a running instance, e.g. https://normal-form-app.com
        #[arg(long)]
        url: String,
        /// Prometheus base URL for 24-hour error rate and p95 (default: PROMETHEUS_URL).
        #[arg(long, env = "PROMETHEUS_URL")]
        prometheus_url: Option<String>,
        /// Folder whose newest file is the latest backup (checked to be at most 26 h old).
        #[arg(long, env = "BACKUP_DIR")]
        backup_dir: Option<std::path::PathBuf>,
        /// Print JSON instead of the Japanese report.
        #[arg(long)]
        json: bool,
    },
    /// The runbook's two business queries (daily registrations, completion rate) on either database.
    Stats {
        #[arg(long, default_value_t = 7)]
        days: i32,
        #[arg(long)]
        json: bool,
    },
    /// The weekly performance report (週次 性能監視レポート) as one self-contained HTML file.
    Report {
        #[arg(long, default_value_t = 7)]
        days: i32,
        #[arg(long, default_value = "report.html")]
        out: std::path::PathBuf,
        #[arg(long, env = "PROMETHEUS_URL")]
        prometheus_url: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create an admin account. The password is asked for twice on a terminal, or read as the
    /// first line of stdin; the TOTP second factor is enrolled at the first sign-in.
    Create {
        email: String,
        #[arg(long, value_parser = ["operator", "viewer"])]
        role: String,
    },
    /// Clear an account's TOTP secret and recovery codes (lost phone) and end its sessions; it
    /// enrols again at its next sign-in.
    #[command(name = "reset-2fa")]
    Reset2fa { email: String },
    /// Mask personal data (e-mail addresses, phone numbers, postal codes, the registrant's own
    /// values) in review comments and audit-log comments written before notes were checked.
    #[command(name = "mask-comments")]
    MaskComments {
        /// Count what would be masked, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
pub enum DevCommand {
    /// Insert N fake registrations (with their flows, some abandoned ones, and manual reviews)
    /// for screens and benchmarks.
    Seed {
        #[arg(long)]
        users: u64,
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

/// `ExitCode::FAILURE` when `ops daily` found something that needs a person. Returned, not
/// `process::exit`: the runtime must stop normally so that its workers write the log lines they
/// still hold (telemetry batches them).
async fn ops(command: OpsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    // The runbook's figures only read: from the replica when there is one.
    let db = Db::connect(config.database_read_url.as_deref().unwrap_or(&config.database_url), &PoolSettings::from(config))?;
    let mut outcome = ExitCode::SUCCESS;
    match command {
        OpsCommand::Daily { url, prometheus_url, backup_dir, json } => {
            let options =
                crate::ops::daily::DailyOptions { url: &url, prometheus_url: prometheus_url.as_deref(), backup_dir: backup_dir.as_deref() };
            let checks = crate::ops::daily::run(&db, &options).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                crate::ops::daily::print(&checks);
            }
            if checks.iter().any(|c| !c.ok) {
                outcome = ExitCode::FAILURE;
            }
        }
        OpsCommand::Stats { days, json } => {
            let daily = crate::ops::stats::daily_registrations(&db, days).await?;
            let completion = crate::ops::stats::completion_rate(&db, days).await?;
            if json {
                println!("{}", serde_json::json!({ "daily_registrations": daily, "completion": completion }));
            } else {
                println!("日次登録数（直近{days}日）");
                for day in &daily {
                    println!("  {}  {:>6}件", day.day, day.registrations);
                }
                println!(
                    "登録完了率（セッションベース、直近{days}日）: {}（完了 {} ／ セッション {}）",
                    completion.rate_text(),
                    completion.completed,
                    completion.total_sessions
                );
            }
        }
        OpsCommand::Report { days, out, prometheus_url } => {
            let html = crate::ops::report::build(&db, days, prometheus_url.as_deref()).await?;
            std::fs::write(&out, html)?;
            println!("wrote {}", out.display());
        }
    }
    db.close().await;
    Ok(outcome)
}

/// Runs a parsed command. Errors in configuration exit with code 2, anything else with 1.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
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
            let catalog = crate::catalog::Catalog::configured(config.catalog_path.as_deref())?;
            crate::stub_apis::run(catalog, StubOptions { listen, modes }, shutdown_signal()).await?;
        }
        Command::Ops { command } => return ops(command, &config).await,
        Command::Admin { command } => {
            let db = Db::connect(&config.database_url, &PoolSettings::from(&config))?;
            db.migrate().await?;
            match command {
                AdminCommand::Create { email, role } => {
                    let role =
                        crate::admin::actor::Role::parse(&role).ok_or_else(|| anyhow::anyhow!("--role must be operator or viewer"))?;
                    let password = crate::admin::accounts::read_password()?;
                    let id = crate::admin::accounts::create(&db, &email, role, password).await?;
                    println!("admin account {id} created ({}); it sets up TOTP at its first sign-in at /admin", role.as_str());
                }
                AdminCommand::Reset2fa { email } => {
                    crate::admin::accounts::reset_second_factor(&db, &email).await?;
                    println!("second factor cleared; the account enrols again at its next sign-in");
                }
                AdminCommand::MaskComments { dry_run } => {
                    let r = crate::admin::mask::mask_comments(&db, dry_run).await?;
                    let verb = if dry_run { "マスクされる" } else { "マスクした" };
                    println!("確認待ちのコメント: {} 件中 {verb}もの {} 件", r.reviews_checked, r.reviews_masked);
                    println!("監査ログのコメント・理由: {} 件中 {verb}もの {} 件", r.audit_checked, r.audit_masked);
                }
            }
            db.close().await;
        }
        Command::Dev { command: DevCommand::Seed { users } } => {
            crate::dev::ensure_not_production(config.mode)?;
            let db = Db::connect(&config.database_url, &PoolSettings::from(&config))?;
            db.migrate().await?;
            let catalog = crate::catalog::Catalog::configured(config.catalog_path.as_deref())?;
            crate::dev::run_seed(&db, &catalog, users).await?;
            db.close().await;
        }
        Command::Openapi => print!("{}", crate::openapi::json()),
        Command::Postal { command: PostalCommand::Import { file, out } } => {
            crate::address::import::run_import_cli(&file, &out)?;
        }
        Command::Backup { command } => match command {
            BackupCommand::Create { output, backup_dir } => {
                let output = output
                    .unwrap_or_else(|| crate::backup::default_output(&backup_dir, &config.database_url, time::OffsetDateTime::now_utc()));
                crate::backup::create(&config, output).await?;
            }
            BackupCommand::Verify { path, scratch_url } => {
                crate::backup::verify(&config, &path, scratch_url.as_deref()).await?;
            }
            BackupCommand::Restore { path, force } => {
                crate::backup::restore(&config, &path, force).await?;
            }
        },
        Command::Probe { url } => return Ok(probe(url, &config).await),
        Command::Purge { dry_run } => {
            let db = Db::connect(&config.database_url, &PoolSettings::from(&config))?;
            db.migrate().await?;
            let retention = crate::purge::Retention::from(&config);
            match crate::purge::run_exclusive(&db, &retention, dry_run).await? {
                Some(report) => {
                    crate::purge::record(&report);
                    println!(
                        "{}（保持期間: フロー {} 日、メール {} 日、集計 {} 日）",
                        if dry_run { "削除される行数" } else { "削除した行数" },
                        retention.flows.as_secs() / 86400,
                        retention.mail.as_secs() / 86400,
                        retention.analytics.as_secs() / 86400
                    );
                    for (table, n) in &report.tables {
                        println!("  {table:<24} {n:>8}");
                    }
                }
                None => println!("別のインスタンスが削除処理を実行中のため、何もしませんでした"),
            }
            db.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `probe`: what the container's HEALTHCHECK and the ECS task run.
async fn probe(url: Option<String>, config: &Config) -> ExitCode {
    let url = url.unwrap_or_else(|| {
        let mut addr = config.listen_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/health/live")
    });
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build();
    let answer = match client {
        Ok(client) => client.get(&url).send().await,
        Err(err) => Err(err),
    };
    match answer {
        Ok(response) if response.status() == reqwest::StatusCode::OK => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("probe: {url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("probe: {url}: {err}");
            ExitCode::FAILURE
        }
    }
}
