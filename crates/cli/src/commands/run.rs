//! `poco run`, `poco deal`, `poco task`, `poco result`.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use poco_sdk::{DealView, Decryption, Plan, Poco, RunSpec, TaskStatus, TaskView};

use crate::{
    Failure,
    cli::{DealCommand, ResultCommand, RunArgs, TaskCommand},
    commands::{amount, confidential, confirm, tag, when},
    context::Context,
    output::{Output, fields, table},
};

/// How long `--watch` follows tasks at most.
const WATCH_LIMIT: Duration = Duration::from_secs(3 * 3600);

fn explain(plan: &Plan) -> String {
    let c = &plan.costs;
    let mut text = format!(
        "{} task(s) of app {} on workerpool {}\n",
        c.volume, plan.app.app, plan.workerpool.workerpool
    );
    text += &table(
        &["who", "gets per task", ""],
        &[
            vec!["app owner".into(), c.app.to_string(), String::new()],
            vec!["dataset owner".into(), c.dataset.to_string(), String::new()],
            vec![
                "workerpool (scheduler and workers)".into(),
                c.workerpool.to_string(),
                String::new(),
            ],
        ],
    );
    text += &format!("you pay {} in all", c.total);
    if !c.to_deposit.nrlc().is_zero() {
        text += &format!(", of which {} will be deposited from your wallet first", c.to_deposit);
    }
    text += &format!("; the scheduler stakes {} until its tasks succeed.\n", c.scheduler_stake);
    text
}

fn task_rows(views: &[TaskView]) -> Vec<Vec<String>> {
    views
        .iter()
        .map(|v| {
            vec![
                v.index.to_string(),
                v.task_id.to_string(),
                v.status.to_string(),
                v.contributors.to_string(),
            ]
        })
        .collect()
}

fn tasks_table(views: &[TaskView]) -> String {
    table(&["index", "task", "status", "contributors"], &task_rows(views))
}

async fn follow(client: &Poco, output: Output, deal: &DealView) -> Result<Vec<TaskView>, Failure> {
    let views = client
        .watch(deal, WATCH_LIMIT, |views| {
            let done = views.iter().filter(|v| v.status.is_final()).count();
            let states: Vec<String> = views.iter().map(|v| v.status.to_string()).collect();
            output.progress(format!("  {done}/{} tasks done: {}", views.len(), states.join(" ")));
        })
        .await?;
    Ok(views)
}

/// What a download says it did.
fn downloaded(task: impl std::fmt::Display, out: &std::path::Path, decrypted: bool) -> String {
    let how = if decrypted { "verified, decrypted" } else { "verified" };
    format!("result of task {task} {how} and written to {}", out.display())
}

async fn download_all(
    client: &Poco,
    output: Output,
    views: &[TaskView],
    dir: &std::path::Path,
    decryption: &Decryption,
) -> Result<Vec<PathBuf>, Failure> {
    let mut written = Vec::new();
    for view in views.iter().filter(|v| v.status == TaskStatus::Completed) {
        let out =
            if views.len() == 1 { dir.to_path_buf() } else { dir.join(view.task_id.to_string()) };
        let mut progress = output.download_progress();
        let result = Box::pin(client.download_result_reporting(
            view.task_id,
            &out,
            decryption,
            &mut progress,
        ))
        .await?;
        output.progress(downloaded(view.task_id, &out, result.decrypted));
        written.push(out);
    }
    Ok(written)
}

/// The requester secrets of `--secret [INDEX=]NAME` options: numbered from 1 in order when
/// no index is given.
fn secrets(options: &[String]) -> Result<BTreeMap<u32, String>, Failure> {
    let mut secrets = BTreeMap::new();
    let mut next = 1;
    for option in options {
        let (index, name) = match option.split_once('=') {
            Some((index, name)) => {
                let index =
                    index.trim().parse::<u32>().ok().filter(|i| *i >= 1).ok_or_else(|| {
                        Failure::config(format!(
                            "--secret {option:?}: the index before '=' is a number from 1"
                        ))
                    })?;
                (index, name)
            }
            None => {
                while secrets.contains_key(&next) {
                    next += 1;
                }
                (next, option.as_str())
            }
        };
        if secrets.insert(index, name.to_owned()).is_some() {
            return Err(Failure::config(format!("two secrets are given for index {index}")));
        }
    }
    Ok(secrets)
}

/// `poco run`.
pub(crate) async fn run(context: &Context, output: Output, args: RunArgs) -> Result<(), Failure> {
    let client = context.signing_client().await?;
    let spec = RunSpec {
        app: args.app,
        dataset: args.dataset,
        workerpool: args.workerpool,
        args: args.args.clone(),
        input_files: args.input_files.clone(),
        category: args.category,
        trust: args.trust,
        tag: tag(&args.tag)?,
        max_price: args.max_price.as_deref().map(amount).transpose()?,
        volume: args.volume,
        beneficiary: args.beneficiary,
        callback: args.callback,
        secrets: secrets(&args.secrets)?,
        encrypt_result: args.encrypt_result,
        check: !args.no_check,
    };
    spec.check()?;
    if spec.tag.is_tee()
        && let Some(url) = context.sms_url()
    {
        output.progress(format!("checking what the TEE tasks need at the SMS ({url})..."));
        let sms = poco_sdk::confidential::SecretsClient::new(&url, None);
        sms.check_run(&spec, client.address()?).await?;
    }
    output.progress("looking for the best offers...");
    let plan = client.plan_run(&spec).await?;
    output.progress(explain(&plan));
    confirm(context, &format!("Spend {}?", plan.costs.total))?;
    let deal = client.execute(&plan, !args.no_deposit).await?;
    output.progress(format!("deal {} matched: {} task(s)", deal.deal_id, deal.tasks.len()));
    let watch = args.watch || args.download.is_some();
    let views = if watch {
        let mut views = follow(&client, output, &deal).await?;
        for view in &mut views {
            view.failure = failure_of(&client, view).await;
        }
        views
    } else {
        client.tasks_of(&deal).await?
    };
    let downloaded = match &args.download {
        Some(dir) => {
            let decryption = Decryption::KeyFile(context.keys().result_key());
            download_all(&client, output, &views, dir, &decryption).await?
        }
        None => Vec::new(),
    };
    let json = serde_json::json!({
        "dealId": deal.deal_id,
        "costs": plan.costs,
        "tasks": views,
        "downloaded": downloaded,
    });
    output.result(&json, || format!("deal {}\n{}", deal.deal_id, tasks_table(&views)));
    if watch {
        let failed: Vec<String> = views.iter().filter_map(failure_line).collect();
        if !failed.is_empty() {
            return Err(Failure::tasks_failed(format!(
                "{} of {} task(s) failed:\n{}\n(`poco task show <task>` says more)",
                failed.len(),
                views.len(),
                failed.join("\n")
            )));
        }
    }
    Ok(())
}

/// `poco deal ...`.
pub(crate) async fn deal(
    context: &Context,
    output: Output,
    command: DealCommand,
) -> Result<(), Failure> {
    let DealCommand::Show { deal } = command;
    let client = context.client().await?;
    let view = client.deal(deal).await?;
    let tasks = client.tasks_of(&view).await?;
    let json = serde_json::json!({"deal": view, "tasks": tasks});
    output.result(&json, || {
        let d = &view.deal;
        let mut text = fields(&[
            ("deal", view.deal_id.to_string()),
            ("app", d.app.to_string()),
            ("workerpool", d.workerpool.to_string()),
            ("requester", d.requester.to_string()),
            ("beneficiary", d.beneficiary.to_string()),
            ("trust", d.trust.to_string()),
            ("category", d.category.to_string()),
            (
                "price per task",
                poco_primitives::Amount::from_nrlc(d.appPrice + d.datasetPrice + d.workerpoolPrice)
                    .to_string(),
            ),
            ("params", view.params.clone()),
        ]);
        text += &tasks_table(&tasks);
        text
    });
    Ok(())
}

/// Why a followed task failed, if it did: its result's failure record (the wallet is its
/// beneficiary), or its end without a result.
async fn failure_of(
    client: &Poco,
    view: &TaskView,
) -> Option<poco_primitives::result::FailureRecord> {
    if view.status != TaskStatus::Completed {
        return None;
    }
    client.task_failure(view.task_id).await.ok().flatten()
}

/// One line about a task that failed; `None` for a task that completed without failure.
fn failure_line(view: &TaskView) -> Option<String> {
    let why = match (&view.failure, view.status) {
        (Some(failure), _) => format!("{} (paid: the failure is the request's)", failure.cause),
        (None, TaskStatus::Completed) => return None,
        (None, TaskStatus::Failed) => {
            "no worker completed it in time: claimed, the price refunded".to_owned()
        }
        (None, TaskStatus::Timeout) => {
            "no worker completed it in time: claim it to be refunded (`poco task claim`)".to_owned()
        }
        (None, status) => format!("still {status} when the watch ended"),
    };
    Some(format!("  task {}: {why}", view.task_id))
}

fn print_task(output: Output, view: &TaskView) {
    output.result(view, || {
        let mut lines = vec![
            ("task", view.task_id.to_string()),
            ("deal", view.deal_id.to_string()),
            ("index", view.index.to_string()),
            ("status", view.status.to_string()),
            ("contributors", view.contributors.to_string()),
            ("contributions close", when(view.contribution_deadline)),
            ("claimable from", when(view.final_deadline)),
        ];
        if let Some(digest) = view.result_digest {
            lines.push(("result digest", digest.to_string()));
        }
        if let Some(results) = &view.results {
            lines.push(("results", results.clone()));
        }
        if let Some(failure) = &view.failure {
            lines.push(("outcome", format!("failed ({:?}): {}", failure.stage, failure.cause)));
            if let Some(code) = failure.exit_code {
                lines.push(("exit code", code.to_string()));
            }
            if !failure.stderr_tail.is_empty() {
                lines.push(("error output (end)", failure.stderr_tail.clone()));
            }
        } else if view.status == TaskStatus::Completed {
            lines.push(("outcome", "completed".to_owned()));
        }
        fields(&lines)
    });
}

/// `poco task ...`.
pub(crate) async fn task(
    context: &Context,
    output: Output,
    command: TaskCommand,
) -> Result<(), Failure> {
    match command {
        TaskCommand::Show { task, watch } => {
            let client = context.client().await?;
            let (deal, index) = client.deal_of_task(task).await?;
            let mut view = client.task_in(&deal, index).await?;
            if watch && !view.status.is_final() {
                // Each status the task goes through on its way, as it comes: the task is read
                // again only when the chain has a new block.
                let mut last = None;
                let watched = client
                    .watch_tasks(&deal, &[index], WATCH_LIMIT, false, |views| {
                        for v in views.iter().filter(|v| !v.status.is_final()) {
                            if last != Some(v.status) {
                                output.progress(format!("  task {task}: {}", v.status));
                                last = Some(v.status);
                            }
                        }
                    })
                    .await?;
                if let Some(latest) = watched.into_iter().next() {
                    view = latest;
                }
            }
            // The cause of a failure is the beneficiary's to read: asked with the wallet, when
            // one is configured.
            if view.status == TaskStatus::Completed && client.wallet().is_ok() {
                view.failure = client.task_failure(task).await.ok().flatten();
            }
            print_task(output, &view);
        }
        TaskCommand::Claim { task } => {
            let client = context.signing_client().await?;
            print_task(output, &client.claim(task).await?);
        }
    }
    Ok(())
}

/// `poco result ...`.
pub(crate) async fn result(
    context: &Context,
    output: Output,
    command: ResultCommand,
) -> Result<(), Failure> {
    match command {
        ResultCommand::Download { task, out, key_file, no_decrypt } => {
            let client = context.signing_client().await?;
            let out = out.unwrap_or_else(|| PathBuf::from(task.to_string()));
            let decryption = if no_decrypt {
                Decryption::Keep
            } else {
                Decryption::KeyFile(key_file.unwrap_or_else(|| context.keys().result_key()))
            };
            let mut progress = output.download_progress();
            let result =
                Box::pin(client.download_result_reporting(task, &out, &decryption, &mut progress))
                    .await?;
            let json = serde_json::json!({
                "task": task,
                "digest": result.task.result_digest,
                "directory": out,
                "encrypted": result.encrypted,
                "decrypted": result.decrypted,
            });
            output.result(&json, || downloaded(task, &out, result.decrypted));
        }
        ResultCommand::Keygen { out, force } => confidential::keygen(context, output, out, force)?,
        ResultCommand::PushKey { key_file } => {
            confidential::push_result_key(context, output, key_file).await?;
        }
        ResultCommand::CheckKey { beneficiary } => {
            confidential::check_result_key(context, output, beneficiary).await?;
        }
    }
    Ok(())
}
