//! `cvmwebapi`: the GUI-free command line: the headless daemon (`serve`) and, as they land, the tools
//! for website operators (key generation, VMCP signing, keystores).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::sync::Arc;
use webapi_core::config::ServeArgs;

use webapi_core::consent::ConsentBroker;
use webapi_core::daemon::{wiring, Daemon, StartError};
use webapi_core::trust::cli as trust_cli;

#[derive(Parser)]
#[command(
    name = "cvmwebapi",
    version,
    about = "CernVM WebAPI: lets trusted scientific websites run a VM on this computer, with your consent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon headless (no tray, no dialogs), logging to stderr and the data dir.
    Serve(ServeArgs),
    /// Show which idle source works in this session and the time since the last keyboard or mouse input.
    IdleStatus,
    /// Make a signing key pair for a website's VMCPs or for a keystore.
    Keygen(trust_cli::KeygenArgs),
    /// Sign or check VMCP documents (for website operators).
    #[command(subcommand)]
    Vmcp(trust_cli::VmcpCommand),
    /// Sign or check keystores (domain=key lists).
    #[command(subcommand)]
    Keystore(trust_cli::KeystoreCommand),
    /// Serve the demo website on loopback: a page driving the app, a signed VMCP and a tiny VM image.
    DemoSite(webapi_core::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::IdleStatus => idle_status(),
        Command::Keygen(args) => trust_cli::keygen(args),
        Command::Vmcp(command) => trust_cli::vmcp(command),
        Command::Keystore(command) => trust_cli::keystore(command),
        Command::DemoSite(args) => demo_site(args),
    }
}

fn demo_site(args: webapi_core::demo::DemoArgs) -> ExitCode {
    let config = match args.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cvmwebapi demo-site: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cvmwebapi: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let site = match webapi_core::demo::DemoSite::prepare(&config).await {
            Ok(s) => s,
            Err(e @ webapi_core::demo::DemoError::Bind(..)) => {
                eprintln!("cvmwebapi demo-site: {e}");
                return ExitCode::from(3);
            }
            Err(e) => {
                eprintln!("cvmwebapi demo-site: {e}");
                return ExitCode::from(2);
            }
        };
        print!("{}", site.instructions());
        use std::io::Write;
        let _ = std::io::stdout().flush();
        match site.run(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cvmwebapi demo-site: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match args.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cvmwebapi: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = webapi_core::trust::TrustConfig::from_serve_args(&args)
        .and_then(|trust| trust.check_keystore_files())
    {
        eprintln!("cvmwebapi: {}", e.detail());
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cvmwebapi: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let data_dir = match webapi_core::store::DataDir::open(&config.data_dir) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("cvmwebapi: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let _log_guard = match webapi_core::logging::init(data_dir.root()) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("cvmwebapi: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        if config.allow_origins.is_empty() {
            tracing::info!("headless: new sessions are refused (no --allow-origin given, nobody to ask)");
        } else {
            tracing::info!(origins = ?config.allow_origins, "headless: new sessions pre-approved for these origins only");
        }
        // One event feed for the whole daemon: the consent broker, the image cache, sessions, idle control.
        let events = webapi_core::events::EventFeed::new();
        let consent = Arc::new(
            ConsentBroker::headless(data_dir.root(), &config.allow_origins)
                .with_events(events.clone()),
        );
        let real = match wiring::build(&args, &config, consent, events).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cvmwebapi: {e}");
                return ExitCode::from(2);
            }
        };
        let daemon = match Daemon::builder(&config).services(real.services).bind().await {
            Ok(d) => d,
            Err(e @ StartError::AddressInUse(_)) => {
                eprintln!("cvmwebapi: {e}");
                return ExitCode::from(3);
            }
            Err(e) => {
                eprintln!("cvmwebapi: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Idle control: raises or lowers the caps of sessions that opted in, as the user comes and goes.
        // Settings (idle threshold, default idle policy) apply from here; flags win over them.
        let _idle = webapi_core::settings::start_idle(&daemon.state(), &real.startup).await;
        match daemon.run(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("daemon failed: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

fn idle_status() -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => {
            print!("{}", rt.block_on(webapi_core::idle::detect::report()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cvmwebapi: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT or SIGTERM (Ctrl-C on Windows).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested");
}
