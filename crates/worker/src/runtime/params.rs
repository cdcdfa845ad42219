//! The request parameters a deal carries (its `params` string): what the app is run with.

use serde::Deserialize;

use crate::{Error, Result};

/// The parameters the worker understands, from the request's JSON `params`. Unknown keys are
/// ignored (they may be meant for other parts of the system); an empty string means none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TaskParams {
    /// The app's arguments, split like a shell would (without expansion).
    #[serde(default)]
    pub iexec_args: String,
    /// URLs of input files, fetched into `/iexec_in`.
    #[serde(default)]
    pub iexec_input_files: Vec<String>,
}

impl TaskParams {
    /// Parses a deal's `params`.
    pub fn parse(params: &str) -> Result<Self> {
        if params.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(params).map_err(|e| Error::Params(e.to_string()))
    }

    /// The app's arguments.
    pub fn args(&self) -> Result<Vec<String>> {
        crate::exec::split_args(&self.iexec_args).map_err(|e| Error::Params(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_args_and_input_files_and_ignores_the_rest() {
        let params = TaskParams::parse(
            r#"{"iexec_args":"100 'two words'","iexec_input_files":["http://x/a"],"other":1}"#,
        )
        .unwrap();
        assert_eq!(params.args().unwrap(), ["100", "two words"]);
        assert_eq!(params.iexec_input_files, ["http://x/a"]);
        assert_eq!(TaskParams::parse("").unwrap(), TaskParams::default());
        assert!(TaskParams::parse("{not json").is_err());
    }
}
