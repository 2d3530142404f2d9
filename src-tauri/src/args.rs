//! Command-line options of the tray app: the same as `cvmwebapi serve`, so tests and power users can
//! run the GUI with the headless daemon's configuration.

use clap::Parser;
use webapi_core::config::ServeArgs;

#[derive(Debug, Parser)]
#[command(name = "cernvm-webapi", version, about = "CernVM WebAPI tray app")]
pub struct AppArgs {
    #[command(flatten)]
    pub serve: ServeArgs,

    /// URLs passed by the desktop's URL handler (cernvm-webapi://launch); accepted and ignored.
    #[arg(hide = true)]
    pub urls: Vec<String>,
}
