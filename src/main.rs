//! The `tessera` binary: parse the command line, run it, print any error
//! once, on one line.

use clap::Parser;
use std::io::Write;

fn main() {
    let cli = match tessera::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, and a bare command with subcommands (`tessera
        // datasets`), which shows its help.
        Err(e) if !e.use_stderr() || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            // Usage errors on one line, like every other error.
            let text = e.render().to_string();
            let words: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:"))
                .collect();
            eprintln!("tessera: {} (see tessera --help)", words.join(" "));
            let _ = std::io::stderr().flush();
            // SAFETY: see below.
            unsafe { libc::_exit(2) }
        }
    };
    let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Err(e) => {
            eprintln!("tessera: error: cannot start the runtime: {e}");
            1
        }
        Ok(rt) => {
            let result = rt.block_on(tessera::cli::run(cli));
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
            match result {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("tessera: error: {}", format!("{e:#}").replace('\n', " "));
                    // An error about an expression shows where, under it.
                    if let Some(caret) = e.downcast_ref::<tessera::cli::Pointed>().and_then(|p| p.caret.as_deref()) {
                        eprintln!("{caret}");
                    }
                    1
                }
            }
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Leave without running C atexit handlers: HDF5's walks every object it
    // still has open, and one that a failed write (a full disk) could not
    // close makes it crash, turning a clean error into a SIGSEGV. Everything
    // tessera writes is durable before this point (tiles are fsynced,
    // catalogue transactions committed).
    // SAFETY: _exit ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}
