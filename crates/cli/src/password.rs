//! Where the command line reads a keystore password: the `--password-file` given, else the
//! `POCO_WALLET_PASSWORD` environment variable when it is set, else a prompt on the terminal.

use std::{io, path::PathBuf};

use poco_chain::wallet::Password;

use crate::Failure;

/// The environment variable a keystore password is read from, when it is set and no password
/// file is given.
pub(crate) const PASSWORD_ENV: &str = "POCO_WALLET_PASSWORD";

/// Where a keystore password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PasswordSource {
    /// The first line of a file, without its line ending.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// An interactive prompt on the terminal, without echo.
    Prompt,
}

impl PasswordSource {
    /// The password file when one is given, else [`PASSWORD_ENV`] when it is set, else a prompt.
    pub(crate) fn choose(file: Option<PathBuf>) -> Self {
        Self::choose_with(file, PASSWORD_ENV, |name| std::env::var_os(name).is_some())
    }

    /// The password file when one is given, else the variable `env` when `is_set` says it is,
    /// else a prompt.
    fn choose_with(file: Option<PathBuf>, env: &str, is_set: impl Fn(&str) -> bool) -> Self {
        match file {
            Some(file) => Self::File(file),
            None if is_set(env) => Self::Env(env.to_owned()),
            None => Self::Prompt,
        }
    }

    /// Reads the password to open an existing keystore.
    pub(crate) fn read(&self) -> Result<Password, Failure> {
        self.read_with(false, prompt_terminal)
    }

    /// Reads the password for a new keystore; a prompt asks twice and both must match.
    pub(crate) fn read_new(&self) -> Result<Password, Failure> {
        self.read_with(true, prompt_terminal)
    }

    fn read_with(
        &self,
        confirm: bool,
        mut prompt: impl FnMut(&str) -> io::Result<String>,
    ) -> Result<Password, Failure> {
        match self {
            Self::File(path) => Ok(Password::from_file(path)?),
            Self::Env(name) => Password::from_env(name).map_err(|error| {
                Failure::wallet(format!("{error}: set it to the password, or give a password file"))
            }),
            Self::Prompt => {
                let mut ask = |text: &str| {
                    prompt(text).map(Password::new).map_err(|error| {
                        Failure::wallet(format!(
                            "cannot prompt for the password ({error}): give a password file or \
                             an environment variable instead"
                        ))
                    })
                };
                if !confirm {
                    return ask("Keystore password: ");
                }
                let first = ask("New keystore password: ")?;
                let second = ask("Repeat the password: ")?;
                if first.expose_secret() != second.expose_secret() {
                    return Err(Failure::wallet("the two passwords typed differ: try again"));
                }
                Ok(first)
            }
        }
    }
}

/// Asks on the terminal, without echo.
fn prompt_terminal(text: &str) -> io::Result<String> {
    rpassword::prompt_password(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_comes_first_then_a_set_variable_then_the_prompt() {
        let choose = |file: Option<PathBuf>, set: bool| {
            PasswordSource::choose_with(file, "VAR", |name| name == "VAR" && set)
        };
        let file = PathBuf::from("password.txt");
        assert_eq!(choose(Some(file.clone()), true), PasswordSource::File(file.clone()));
        assert_eq!(choose(Some(file.clone()), false), PasswordSource::File(file));
        assert_eq!(choose(None, true), PasswordSource::Env("VAR".to_owned()));
        assert_eq!(choose(None, false), PasswordSource::Prompt);
        assert_eq!(PASSWORD_ENV, "POCO_WALLET_PASSWORD");
    }

    #[test]
    fn a_new_password_is_asked_twice() {
        let answers = |list: &[&str]| {
            let mut list: Vec<String> = list.iter().rev().map(|s| (*s).to_owned()).collect();
            move |_: &str| Ok(list.pop().expect("asked too often"))
        };
        let source = PasswordSource::Prompt;
        let password = source.read_with(true, answers(&["same", "same"])).unwrap();
        assert_eq!(password.expose_secret(), "same");
        let mismatch = source.read_with(true, answers(&["one", "two"])).unwrap_err();
        assert_eq!(mismatch.message, "the two passwords typed differ: try again");
        assert_eq!((mismatch.kind, mismatch.code), ("wallet", 3));
        let once = source.read_with(false, answers(&["once"])).unwrap();
        assert_eq!(once.expose_secret(), "once");
        let no_terminal = source
            .read_with(false, |_| Err(io::Error::new(io::ErrorKind::NotFound, "no tty")))
            .unwrap_err();
        assert_eq!(
            no_terminal.message,
            "cannot prompt for the password (no tty): give a password file or an environment \
             variable instead"
        );
        assert_eq!((no_terminal.kind, no_terminal.code), ("wallet", 3));
    }

    #[test]
    fn files_and_variables_are_read_without_asking() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "from a file\nsecond line\n").unwrap();
        let never = |_: &str| -> io::Result<String> { panic!("a prompt was shown") };
        let source = PasswordSource::File(file);
        assert_eq!(source.read_with(false, never).unwrap().expose_secret(), "from a file");
        assert_eq!(source.read_with(true, never).unwrap().expose_secret(), "from a file");

        let missing = PasswordSource::File(dir.path().join("missing"));
        let error = missing.read_with(false, never).unwrap_err();
        assert!(error.message.starts_with("cannot read the password file "), "{}", error.message);
        assert_eq!((error.kind, error.code), ("wallet", 3));

        let unset = "POCO_TEST_CLI_PASSWORD_NEVER_SET";
        let error = PasswordSource::Env(unset.to_owned()).read_with(false, never).unwrap_err();
        assert_eq!(
            error.message,
            format!(
                "environment variable {unset} is not set: set it to the password, or give a \
                 password file"
            )
        );
        assert_eq!((error.kind, error.code), ("wallet", 3));
    }
}
