//! `tern`: the command-line entry point. Parses the command line, starts the runtime and calls the
//! library; each subcommand lives in its own library module.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use tern::{
    bench::{self, BenchArgs},
    health::{self, HealthArgs},
    launch,
    pubsub::{self, PubArgs, SubArgs},
};
use tokio_util::sync::CancellationToken;

/// Tern: MQTT broker system.
#[derive(Debug, Parser)]
#[command(name = "tern", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load-test an MQTT broker: throughput, latency, loss, duplicates, reordering, connects/s.
    Bench(Box<BenchArgs>),
    /// Hash a password for the password file (`"user": "<hash>"` lines in nanomq_pwd.conf).
    Passwd(PasswdArgs),
    /// Run Tern in one process: broker-core and auth-service from one configuration file.
    Start(StartArgs),
    /// Check that a Tern service answers (gRPC health, MQTT CONNACK); for container health checks.
    Health(HealthArgs),
    /// Publish a message (mosquitto_pub's flags).
    Pub(Box<PubArgs>),
    /// Subscribe and print messages (mosquitto_sub's flags).
    Sub(Box<SubArgs>),
}

/// `tern start`.
#[derive(Debug, clap::Args)]
struct StartArgs {
    /// Configuration file (HOCON, NanoMQ's `nanomq.conf` format). Falls back to
    /// `NANOMQ_CONF_PATH`, then `TERN_CONF`; without any, the built-in etc/tern.conf (anonymous
    /// MQTT on 1883, WebSocket on 8083/mqtt).
    #[arg(long = "conf", value_name = "FILE")]
    conf: Option<PathBuf>,
    /// Load and check the configuration, print the problems or "ok", and exit.
    #[arg(long)]
    check_config: bool,
}

/// `tern passwd`.
#[derive(Debug, clap::Args)]
struct PasswdArgs {
    /// Hash algorithm: argon2id, bcrypt or pbkdf2-sha256.
    #[arg(short = 'a', long, default_value = "argon2id")]
    algorithm: auth_service::passwd::Algorithm,
    /// Print a whole password-file line for this user instead of the bare hash.
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// The password; read from the first line of standard input when absent (so it stays out of
    /// the shell history).
    password: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match cli.command {
        Command::Bench(args) => run_bench(&args),
        Command::Passwd(args) => run_passwd(args),
        Command::Start(args) => run_start(&args),
        Command::Health(args) => run_health(&args),
        Command::Pub(args) => {
            let quiet = args.connect.quiet;
            run_client(quiet, |stop| async move { pubsub::publish::run(&args, &stop).await })
        }
        Command::Sub(args) => {
            let quiet = args.connect.quiet;
            run_client(quiet, |stop| async move {
                let mut out = std::io::stdout();
                pubsub::subscribe::run(&args, &mut out, &stop).await
            })
        }
    }
}

/// Runs `tern pub` / `tern sub` on a small runtime; prints the failure as mosquitto would and
/// exits with its code. SIGINT / SIGTERM make the client disconnect cleanly and exit 0, as
/// mosquitto_sub does.
fn run_client<F, Fut>(quiet: bool, client: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), pubsub::Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("Error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        let stop = CancellationToken::new();
        let signalled = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signalled.cancel();
        });
        client(stop).await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !quiet {
                eprintln!("{}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

fn run_start(args: &StartArgs) -> ExitCode {
    let env = tern_config::Env::from_process();
    let loaded = match launch::load_config(args.conf.as_deref(), &env) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("tern: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tern_telemetry::service::runtime("tern") {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    if args.check_config {
        // The auth chain and the webhook targets are built (not served) so that their files and
        // settings are checked too, as `auth-service` and `webhook-relay --check-config` do.
        let mut problems = Vec::new();
        if let Err(error) = runtime.block_on(async { auth_service::setup::build(&loaded.config) }) {
            problems.push(format!("auth-service: {error}"));
        }
        for target in loaded.config.webhook_targets() {
            if let Err(error) = webhook_relay::delivery::Target::new(target.clone()) {
                problems.push(format!("webhook-relay: webhook target {error}"));
            }
        }
        return tern_telemetry::service::check("tern", &loaded, problems);
    }
    let telemetry = match tern_telemetry::service::start_logging("tern", &loaded, &env) {
        Ok(telemetry) => telemetry,
        Err(code) => return code,
    };
    let source = loaded.config.source.as_ref().map_or_else(
        || {
            args.conf
                .as_ref()
                .map_or(launch::DEFAULT_CONFIG_NAME.into(), |p| p.display().to_string())
        },
        |p| p.display().to_string(),
    );
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let running = match launch::start(loaded.config, Some(telemetry), shutdown.clone()).await {
            Ok(running) => running,
            Err(error) => {
                eprintln!("tern: {error}");
                return ExitCode::FAILURE;
            }
        };
        for note in &running.notes {
            eprintln!("note: {note}");
        }
        println!("Tern {} started from {source}", env!("CARGO_PKG_VERSION"));
        for endpoint in &running.endpoints {
            println!("  {endpoint}");
        }
        println!("Stop with Ctrl-C (SIGINT) or SIGTERM.");
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
        match running.wait().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("tern: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

fn run_health(args: &HealthArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("tern health: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(health::run(args)) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("tern health: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Returns on SIGINT or SIGTERM.
async fn wait_for_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn run_passwd(args: PasswdArgs) -> ExitCode {
    let password = match args.password {
        Some(password) => password,
        None => {
            let mut line = String::new();
            if let Err(error) = std::io::stdin().read_line(&mut line) {
                eprintln!("tern passwd: cannot read the password: {error}");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        eprintln!("tern passwd: the password is empty");
        return ExitCode::from(2);
    }
    match auth_service::passwd::hash_password(args.algorithm, &password) {
        Ok(hash) => {
            match args.username {
                // The password file is HOCON: quote both sides.
                Some(user) => println!("{}: {}", json_string(&user), json_string(&hash)),
                None => println!("{hash}"),
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tern passwd: {error}");
            ExitCode::FAILURE
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

fn run_bench(args: &BenchArgs) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("tern bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench::run(args)) {
        Ok(summary) => {
            eprint!("{}", summary.table());
            println!("{}", summary.to_json());
            ExitCode::SUCCESS
        }
        Err(bench::BenchError::Options(message)) => {
            eprintln!("tern bench: {message}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("tern bench: {error}");
            ExitCode::FAILURE
        }
    }
}
