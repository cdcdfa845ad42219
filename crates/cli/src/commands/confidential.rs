//! The confidential path: `poco dataset encrypt | push-key | check-key`, `poco secret`,
//! `poco result keygen | push-key | check-key` and `poco sms status`. Secret values and keys
//! are read from files, the environment or a prompt, and never printed (but a dataset key with
//! `--show-key`).

use std::{
    io::{IsTerminal, Read},
    path::{Path, PathBuf},
};

use alloy::primitives::Address;
use poco_api::sms::Secret;
use poco_sdk::{
    AssetKind,
    confidential::{self, SecretsClient},
};
use serde_json::json;

use crate::{
    Failure,
    cli::SecretCommand,
    context::Context,
    output::{Output, fields},
};

/// `poco dataset encrypt`.
pub(crate) fn encrypt_dataset(
    context: &Context,
    output: Output,
    file: &Path,
    out: &Path,
    show_key: bool,
) -> Result<(), Failure> {
    let (dataset, key) = confidential::encrypt_dataset_file(file, out, &context.keys())?;
    let mut value = serde_json::to_value(&dataset).expect("serializable");
    if show_key {
        value["key"] = key.to_hex().expose().into();
    }
    output.result(&value, || {
        let mut lines = vec![
            ("encrypted file", dataset.file.display().to_string()),
            ("checksum", dataset.checksum.to_string()),
            ("size", format!("{} bytes", dataset.size)),
            ("key kept in", dataset.key_file.display().to_string()),
        ];
        if show_key {
            lines.push(("key", key.to_hex().expose().to_owned()));
        }
        fields(&lines)
    });
    output.progress(format!(
        "next: publish {} where workers can fetch it, register it with `poco dataset deploy \
         --name <name> --file {} [--url <url>]` (its checksum is the one above), then push its \
         key with `poco dataset push-key <address>`",
        out.display(),
        out.display()
    ));
    Ok(())
}

/// `poco dataset push-key`.
pub(crate) async fn push_dataset_key(
    context: &Context,
    output: Output,
    dataset: Address,
    key_file: Option<PathBuf>,
) -> Result<(), Failure> {
    let secrets = context.secrets(true)?;
    let (path, hint) = match key_file {
        Some(path) => (path, "pass the file holding the dataset's key".to_owned()),
        None => {
            let asset = context.client().await?.asset(AssetKind::Dataset, dataset).await?;
            let checksum = asset.checksum.unwrap_or_default();
            let path = context.keys().dataset_key(checksum);
            let hint = format!(
                "this home keeps the keys of the datasets `poco dataset encrypt` encrypted here, \
                 and none for checksum {checksum}: pass the key of dataset {dataset} with \
                 --key-file"
            );
            (path, hint)
        }
    };
    let key = confidential::read_dataset_key(&path, &hint)?;
    secrets.push_dataset_key(dataset, &key).await?;
    let value = json!({"dataset": dataset, "sms": secrets.url(), "pushed": true});
    output.result(&value, || {
        format!(
            "the key of dataset {dataset} is at the SMS ({}): it goes only to attested enclaves \
             running tasks of deals that bought the dataset",
            secrets.url()
        )
    });
    Ok(())
}

/// `poco dataset check-key`.
pub(crate) async fn check_dataset_key(
    context: &Context,
    output: Output,
    dataset: Address,
) -> Result<(), Failure> {
    let secrets = context.secrets(false)?;
    if !secrets.dataset_key_exists(dataset).await? {
        return Err(poco_sdk::Error::NotSetAtSms {
            what: format!("the key of dataset {dataset}"),
            hint: "its owner pushes it with `poco dataset push-key`".into(),
        }
        .into());
    }
    let value = json!({"dataset": dataset, "sms": secrets.url(), "set": true});
    output.result(&value, || format!("the key of dataset {dataset} is set at the SMS"));
    Ok(())
}

/// Reads a secret value: from a file (one trailing newline dropped), an environment variable,
/// a prompt without echo on a terminal, or else all of stdin.
fn read_value(file: Option<&Path>, env: Option<&str>) -> Result<Secret, Failure> {
    let text = if let Some(path) = file {
        let bytes =
            std::fs::read(path).map_err(|e| Failure::config(format!("{}: {e}", path.display())))?;
        let text = Secret::new(String::from_utf8(bytes).map_err(|_| {
            Failure::config(format!("{}: a secret value is UTF-8 text", path.display()))
        })?);
        let trimmed = text.expose().strip_suffix('\n').unwrap_or(text.expose());
        Secret::new(trimmed.strip_suffix('\r').unwrap_or(trimmed))
    } else if let Some(name) = env {
        Secret::new(std::env::var(name).map_err(|_| {
            Failure::config(format!("the environment variable {name} is not set (or not UTF-8)"))
        })?)
    } else if std::io::stdin().is_terminal() {
        Secret::new(rpassword::prompt_password("Secret value (not shown): ").map_err(|e| {
            Failure::config(format!(
                "cannot prompt for the value ({e}): pass --value-file or --value-env"
            ))
        })?)
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Failure::config(format!("cannot read the value from stdin ({e}): pass --value-file"))
        })?;
        let text = Secret::new(text);
        Secret::new(text.expose().strip_suffix('\n').unwrap_or(text.expose()))
    };
    if text.is_empty() {
        return Err(Failure::config("the secret value is empty"));
    }
    Ok(text)
}

/// `poco secret ...`.
pub(crate) async fn secret(
    context: &Context,
    output: Output,
    command: SecretCommand,
) -> Result<(), Failure> {
    match command {
        SecretCommand::Push { name, app, value_file, value_env } => {
            if let Some(name) = &name {
                confidential::check_name(name)?;
            }
            let secrets = context.secrets(true)?;
            let value = read_value(value_file.as_deref(), value_env.as_deref())?;
            match (name, app) {
                (Some(name), _) => {
                    secrets.push_requester_secret(&name, &value).await?;
                    let requester = secrets.address()?;
                    let json = json!({
                        "name": name, "requester": requester, "sms": secrets.url(), "pushed": true,
                    });
                    output.result(&json, || {
                        format!(
                            "secret {name:?} of requester {requester} is at the SMS ({}): the \
                             app of a TEE task of yours gets it when you name it (`poco run \
                             --tag tee --secret {name}`)",
                            secrets.url()
                        )
                    });
                }
                (None, Some(app)) => {
                    secrets.push_app_secret(app, &value).await?;
                    let json = json!({"app": app, "sms": secrets.url(), "pushed": true});
                    output.result(&json, || {
                        format!(
                            "the developer secret of app {app} is at the SMS ({}): every TEE \
                             task of the app gets it (IEXEC_APP_DEVELOPER_SECRET)",
                            secrets.url()
                        )
                    });
                }
                (None, None) => return Err(Failure::config("name a secret, or pass --app")),
            }
        }
        SecretCommand::Check { name, app, requester } => {
            let secrets = context.secrets(false)?;
            let (json, what) = match (name, app) {
                (Some(name), _) => {
                    let requester = match requester {
                        Some(requester) => requester,
                        None => context.my_address()?,
                    };
                    let what = format!("secret {name:?} of requester {requester}");
                    if !secrets.requester_secret_exists(requester, &name).await? {
                        return Err(not_set(
                            what,
                            format!("push it with `poco secret push {name}`"),
                        ));
                    }
                    (json!({"name": name, "requester": requester, "set": true}), what)
                }
                (None, Some(app)) => {
                    let what = format!("the developer secret of app {app}");
                    if !secrets.app_secret_exists(app).await? {
                        return Err(not_set(
                            what,
                            format!(
                                "the app's owner pushes it with `poco secret push --app {app}`"
                            ),
                        ));
                    }
                    (json!({"app": app, "set": true}), what)
                }
                (None, None) => return Err(Failure::config("name a secret, or pass --app")),
            };
            output.result(&json, || format!("{what} is set at the SMS"));
        }
    }
    Ok(())
}

fn not_set(what: String, hint: String) -> Failure {
    poco_sdk::Error::NotSetAtSms { what, hint }.into()
}

/// `poco result keygen`.
pub(crate) fn keygen(
    context: &Context,
    output: Output,
    out: Option<PathBuf>,
    force: bool,
) -> Result<(), Failure> {
    let path = out.unwrap_or_else(|| context.keys().result_key());
    let pair = confidential::generate_result_key(&path, force)?;
    let json = json!({"recipient": pair.recipient(), "keyFile": path});
    output.result(&json, || {
        fields(&[("public key", pair.recipient()), ("key kept in", path.display().to_string())])
    });
    output.progress(
        "next: push its public key to the SMS as the beneficiary with `poco result push-key`; \
         keep a copy of the key file: results encrypted for it open only with it",
    );
    Ok(())
}

/// `poco result push-key`.
pub(crate) async fn push_result_key(
    context: &Context,
    output: Output,
    key_file: Option<PathBuf>,
) -> Result<(), Failure> {
    let path = key_file.unwrap_or_else(|| context.keys().result_key());
    let pair = confidential::read_result_key(&path, "create one with `poco result keygen`")?;
    let secrets = context.secrets(true)?;
    let recipient = secrets.push_result_key(&pair).await?;
    let beneficiary = secrets.address()?;
    let json = json!({
        "beneficiary": beneficiary, "recipient": recipient, "sms": secrets.url(), "pushed": true,
    });
    output.result(&json, || {
        format!(
            "results of deals asking for encryption (`poco run --encrypt-result`) with \
             {beneficiary} as beneficiary are now encrypted for {recipient}"
        )
    });
    Ok(())
}

/// `poco result check-key`.
pub(crate) async fn check_result_key(
    context: &Context,
    output: Output,
    beneficiary: Option<Address>,
) -> Result<(), Failure> {
    let secrets = context.secrets(false)?;
    let beneficiary = match beneficiary {
        Some(beneficiary) => beneficiary,
        None => context.my_address()?,
    };
    if !secrets.result_key_exists(beneficiary).await? {
        return Err(not_set(
            format!("the result key of beneficiary {beneficiary}"),
            "create one with `poco result keygen` and push it with `poco result push-key`".into(),
        ));
    }
    let json = json!({"beneficiary": beneficiary, "set": true});
    output
        .result(&json, || format!("the result key of beneficiary {beneficiary} is set at the SMS"));
    Ok(())
}

/// `poco sms status`.
pub(crate) async fn sms_status(context: &Context, output: Output) -> Result<(), Failure> {
    let secrets: SecretsClient = context.secrets(false)?;
    let status = secrets.status().await?;
    let json = json!({
        "url": secrets.url(),
        "version": status.version,
        "dcap": status.dcap,
        "simulation": status.simulation,
        "warning": status.warning,
        "publicUrl": status.public_url,
    });
    output.result(&json, || {
        let mut lines = vec![("SMS", secrets.url().to_owned())];
        if let Some(url) = &status.public_url {
            lines.push(("public URL", url.clone()));
        }
        lines.extend([
            ("version", status.version.clone()),
            ("DCAP attestation (SGX, TDX)", if status.dcap { "on" } else { "off" }.into()),
            (
                "simulated enclaves",
                if status.simulation { "ACCEPTED (INSECURE)" } else { "refused" }.into(),
            ),
        ]);
        let mut text = fields(&lines);
        if let Some(warning) = &status.warning {
            text += &format!("WARNING: {warning}\n");
        }
        text
    });
    Ok(())
}
