//! `tern`: the command-line entry point. Parses the command line, starts the runtime and calls the
//! library; each subcommand lives in its own library module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tern::bench::{self, BenchArgs};

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
