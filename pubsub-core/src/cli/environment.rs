//! Daemon options from the environment, named as microcosm names them, so that a Python
//! daemon's deployment configuration works unchanged for its Rust rewrite:
//! `{NAME}__{GROUP}__{KEY}`, where NAME is the daemon's name upper-cased with `-` as `_`
//! (microcosm's `load_from_environ`): `EXAMPLE__SQS_CONSUMER__SQS_QUEUE_URL`. A flag wins over
//! its variable; `--help` shows each variable.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue};
use clap::{Command, Parser};

/// The environment variables of one daemon.
///
/// ```
/// use pubsub_core::cli::Environment;
///
/// let environment = Environment::of("order-events");
/// assert_eq!(environment.variable("SQS_CONSUMER__SQS_QUEUE_URL"), "ORDER_EVENTS__SQS_CONSUMER__SQS_QUEUE_URL");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    prefix: String,
}

/// Which argument reads which variable: `(clap argument id, key after the daemon's name)`,
/// as in [`DaemonArgs::ENVIRONMENT`](super::DaemonArgs::ENVIRONMENT).
pub type EnvironmentTable = &'static [(&'static str, &'static str)];

impl Environment {
    /// The variables of the daemon named `daemon_name`.
    pub fn of(daemon_name: &str) -> Environment {
        Environment { prefix: daemon_name.to_uppercase().replace('-', "_") }
    }

    /// The variable of `key` (`SQS_CONSUMER__WAIT_SECONDS`).
    pub fn variable(&self, key: &str) -> String {
        format!("{}__{key}", self.prefix)
    }

    /// `command` with each argument of `tables` reading its variable.
    ///
    /// # Panics
    ///
    /// When a table names an argument `command` does not have (a programming error).
    pub fn bind(&self, command: Command, tables: &[EnvironmentTable]) -> Command {
        tables
            .iter()
            .flat_map(|table| table.iter())
            .fold(command, |command, (id, key)| command.mut_arg(*id, |arg| arg.env(self.variable(key))))
    }
}

/// Parses `A` from `args` (the program name first) and the environment of the daemon it
/// names: `--name` when given, else `default_name`, which also becomes `--name`'s default.
/// `A` must have a `name` argument (as [`DaemonArgs`](super::DaemonArgs) has) and each
/// argument the tables name.
///
/// A bad value is an error that names the variable when the value came from it.
pub fn parse_with_environment<A: Parser>(
    default_name: &str,
    tables: &[EnvironmentTable],
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<A, clap::Error> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let name = name_in(&args).unwrap_or_else(|| default_name.to_owned());
    let environment = Environment::of(&name);
    let command = environment
        .bind(A::command().mut_arg("name", |arg| arg.default_value(default_name.to_owned())), tables);
    let mut matches = command
        .clone()
        .try_get_matches_from(&args)
        .map_err(|error| name_the_variable(error, &command, &environment, tables, &args))?;
    A::from_arg_matches_mut(&mut matches).map_err(|error| error.with_cmd(&command))
}

/// The value of `--name NAME` or `--name=NAME` in `args`.
fn name_in(args: &[OsString]) -> Option<String> {
    let mut args = args.iter().skip(1).map(|arg| arg.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            return None;
        }
        if arg == "--name" {
            return args.next().map(|name| name.into_owned());
        }
        if let Some(name) = arg.strip_prefix("--name=") {
            return Some(name.to_owned());
        }
    }
    None
}

/// Adds to a bad-value error the variable the value came from, when it did (its flag is not
/// on the command line).
fn name_the_variable(
    mut error: clap::Error,
    command: &Command,
    environment: &Environment,
    tables: &[EnvironmentTable],
    args: &[OsString],
) -> clap::Error {
    let Some(ContextValue::String(invalid)) = error.get(ContextKind::InvalidArg).cloned() else {
        return error;
    };
    let from_environment = tables.iter().flat_map(|table| table.iter()).find_map(|(id, key)| {
        let long = command.get_arguments().find(|arg| arg.get_id() == id)?.get_long()?;
        let flag = format!("--{long}");
        let given = args.iter().any(|arg| {
            let arg = arg.to_string_lossy();
            arg == flag || arg.starts_with(&format!("{flag}="))
        });
        let variable = environment.variable(key);
        (invalid.starts_with(&flag) && !given && std::env::var_os(&variable).is_some()).then_some(variable)
    });
    if let Some(variable) = from_environment {
        error.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![format!(
                "the value comes from the environment variable {variable}"
            )
            .into()]),
        );
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_the_name_upper_cased_with_underscores() {
        assert_eq!(
            Environment::of("example").variable("SQS_CONSUMER__LIMIT"),
            "EXAMPLE__SQS_CONSUMER__LIMIT"
        );
        assert_eq!(Environment::of("order-events").variable("X"), "ORDER_EVENTS__X");
    }

    #[test]
    fn the_name_is_read_before_parsing() {
        let args = |line: &[&str]| line.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(name_in(&args(&["d", "--testing", "--name", "billing"])), Some("billing".into()));
        assert_eq!(name_in(&args(&["d", "--name=billing"])), Some("billing".into()));
        assert_eq!(name_in(&args(&["d", "--", "--name", "x"])), None);
        assert_eq!(name_in(&args(&["d"])), None);
    }
}
