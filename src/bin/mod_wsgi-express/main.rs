//! `mod_wsgi-express`: run a WSGI script under Apache with mod_wsgi-rs, without writing any
//! Apache configuration by hand, or print and install what an existing Apache needs to load the
//! module. The original mod_wsgi-express's options, same names and flags; the few it cannot
//! honour are refused by name (`options.rs`).
//!
//! Exit status: 0 on success (and for help), 1 when setting up or starting the server failed,
//! 2 on a usage error (as the original's optparse does). A successful `start-server` does not
//! exit at all: the process becomes Apache.

mod accounts;
mod auth;
mod cli;
mod conf_syntax;
mod daemon;
mod docroot;
mod locale;
mod logs;
mod module;
mod options;
mod scripts;
mod setup;
mod telemetry;
mod template;
mod tls;

use cli::Command;
use std::process::ExitCode;

/// Options ignored as the original ignores them: said on stderr, one line each.
fn warn(warnings: &[String]) {
    for warning in warnings {
        eprintln!("mod_wsgi-express: warning: {warning}");
    }
}

fn main() -> ExitCode {
    let mut args = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(a) => args.push(a),
            Err(bad) => {
                eprintln!("mod_wsgi-express: argument {bad:?} is not valid UTF-8");
                return ExitCode::from(2);
            }
        }
    }
    let result = match cli::parse(&args) {
        Ok(Command::Help(text)) => {
            print!("{text}");
            Ok(())
        }
        Ok(Command::ModuleConfig { python_home }) => module::module_config(python_home.as_deref()).map(|text| print!("{text}")),
        Ok(Command::ModuleLocation) => module::locate_module().map(|path| println!("{}", path.display())),
        Ok(Command::InstallModule { modules_directory, python_home }) => {
            module::install_module(modules_directory.as_deref(), python_home.as_deref()).map(|text| print!("{text}"))
        }
        Ok(Command::StartServer(opts)) => {
            warn(&opts.warnings);
            setup::start_server(*opts)
        }
        Ok(Command::SetupServer(opts)) => {
            warn(&opts.warnings);
            setup::setup_server(*opts)
        }
        Err(usage) => {
            eprintln!("mod_wsgi-express: {}\n{}", usage.message, usage.usage);
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mod_wsgi-express: error: {message}");
            ExitCode::from(1)
        }
    }
}
