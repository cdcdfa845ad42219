//! `poco run`, `poco deal`, `poco task`, `poco result`.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use poco_sdk::{DealView, Decryption, Plan, Poco, RunSpec, TaskStatus, TaskView};

use crate::{
    Failure,
    cli::{DealCommand, DealRole, ResultCommand, RunArgs, TaskCommand},
    commands::{amount, confidential, confirm, tag},
    context::Context,
    output::{Output, fields, paint_status, table, when},
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

fn tasks_table(output: Output, views: &[TaskView]) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.index.to_string(),
                output.hash(v.task_id),
                paint_status(&v.status.to_string()),
                v.contributors.to_string(),
            ]
        })
        .collect();
    table(&["index", "task", "status", "contributors"], &rows)
}

/// Follows a deal's tasks until they are all final (or [`WATCH_LIMIT`]): on a terminal, a bar
/// of the tasks done and each task's status; elsewhere, a line each time a status changes.
async fn follow(client: &Poco, output: Output, deal: &DealView) -> Result<Vec<TaskView>, Failure> {
    let board = output.task_board(deal.tasks.len());
    let drawn = output.draws_progress();
    let views = client
        .watch(deal, WATCH_LIMIT, |views| {
            if drawn {
                let tasks: Vec<(String, String, bool)> = views
                    .iter()
                    .map(|v| {
                        let label = format!("task {} {}", v.index, output.hash(v.task_id));
                        (label, v.status.to_string(), v.status.is_final())
                    })
                    .collect();
                board.update(&tasks);
            } else {
                let done = views.iter().filter(|v| v.status.is_final()).count();
                let states: Vec<String> = views.iter().map(|v| v.status.to_string()).collect();
                output.progress(format!(
                    "  {done}/{} tasks done: {}",
                    views.len(),
                    states.join(" ")
                ));
            }
        })
        .await;
    board.clear();
    Ok(views?)
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
        let bar = output.download_bar(&format!("result of task {}", output.hash(view.task_id)));
        let mut progress = Output::download_progress(&bar);
        let result = Box::pin(client.download_result_reporting(
            view.task_id,
            &out,
            decryption,
            &mut progress,
        ))
        .await;
        bar.finish_and_clear();
        let result = result?;
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
    let plan = output.during("looking for the best offers", client.plan_run(&spec)).await?;
    output.progress(explain(&plan));
    confirm(context, &format!("Spend {}?", plan.costs.total))?;
    let deal = output
        .during("paying and matching the orders", client.execute(&plan, !args.no_deposit))
        .await?;
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
    output.result(&json, || format!("deal {}\n{}", deal.deal_id, tasks_table(output, &views)));
    if !watch {
        output.progress(format!(
            "follow it with `poco deal show {}` (or `poco task show <task> --watch`); results \
             download with `poco result download <task>` once tasks complete",
            deal.deal_id
        ));
    }
    if watch {
        let failed: Vec<String> = views.iter().filter_map(failure_line).collect();
        if !failed.is_empty() {
            let unfinished = views.iter().any(|v| !v.status.is_final());
            let next = if unfinished {
                format!(
                    "(the watch ended first: `poco deal show {0}` shows where they are, `poco \
                     task logs <task>` what the scheduler did; past their final deadline, \
                     `poco deal claim {0}` refunds them)",
                    deal.deal_id
                )
            } else {
                "(`poco task show <task>` says more, `poco task logs <task>` what the scheduler \
                 did)"
                    .to_owned()
            };
            return Err(Failure::tasks_failed(format!(
                "{} of {} task(s) failed:\n{}\n{next}",
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
    let deal = match command {
        DealCommand::Show { deal } => deal,
        DealCommand::List { role, address, limit } => {
            return list_deals(context, output, role, address, limit).await;
        }
        DealCommand::Claim { deal } => {
            let client = context.signing_client().await?;
            let tasks = output
                .during("claiming the deal's unfinished tasks", client.claim_deal(deal))
                .await?;
            let json = serde_json::json!({"dealId": deal, "tasks": tasks});
            output.result(&json, || format!("deal {deal}\n{}", tasks_table(output, &tasks)));
            return Ok(());
        }
    };
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
            ("matched", when(d.startTime.saturating_to())),
        ]);
        text += &tasks_table(output, &tasks);
        text
    });
    Ok(())
}

/// `poco deal list`.
async fn list_deals(
    context: &Context,
    output: Output,
    role: DealRole,
    address: Option<alloy::primitives::Address>,
    limit: usize,
) -> Result<(), Failure> {
    let client = context.client().await?;
    let who = match address {
        Some(address) => address,
        None => context.my_address()?,
    };
    let mut deals = match role {
        DealRole::Requester => client.deals_of(who).await?,
        DealRole::Workerpool => {
            let mut deals = Vec::new();
            for pool in client.assets_of(poco_sdk::AssetKind::Workerpool, who).await? {
                deals.extend(client.deals_of_workerpool(pool.address).await?);
            }
            deals.sort_by_key(|d| (d.deal.startTime, d.deal_id));
            deals
        }
    };
    deals.reverse();
    deals.truncate(limit);
    output.result(&deals, || {
        if deals.is_empty() {
            return match role {
                DealRole::Requester => format!(
                    "no deal requested by {who}: `poco run <app>` makes one \
                     (`poco deal list --as workerpool` lists your pools' deals)"
                ),
                DealRole::Workerpool => format!("no deal on the workerpools of {who}"),
            };
        }
        let rows: Vec<Vec<String>> = deals
            .iter()
            .map(|view| {
                let d = &view.deal;
                let price = d.appPrice + d.datasetPrice + d.workerpoolPrice;
                vec![
                    output.hash(view.deal_id),
                    d.app.to_string(),
                    d.workerpool.to_string(),
                    d.botSize.to_string(),
                    poco_primitives::Amount::from_nrlc(price).to_string(),
                    when(d.startTime.saturating_to()),
                ]
            })
            .collect();
        table(&["deal", "app", "workerpool", "tasks", "price per task", "matched"], &rows)
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
                // Each status the task goes through on its way, as it comes (drawn in place on
                // a terminal): the task is read again only when the chain has a new block.
                let board = output.task_board(1);
                let drawn = output.draws_progress();
                let mut last = None;
                let watched = client
                    .watch_tasks(&deal, &[index], WATCH_LIMIT, false, |views| {
                        for v in views {
                            if drawn {
                                let label = format!("task {}", output.hash(task));
                                board.update(&[(label, v.status.to_string(), v.status.is_final())]);
                            } else if !v.status.is_final() && last != Some(v.status) {
                                output.progress(format!("  task {task}: {}", v.status));
                                last = Some(v.status);
                            }
                        }
                    })
                    .await;
                board.clear();
                if let Some(latest) = watched?.into_iter().next() {
                    view = latest;
                }
            }
            if !view.status.is_final() {
                output.progress(format!(
                    "(the task is {}: `poco task show {task} --watch` follows it to its end)",
                    view.status
                ));
            }
            // The cause of a failure is the beneficiary's to read, asked of the result store
            // with a signature: the wallet is unlocked only when it is the beneficiary's.
            if view.status == TaskStatus::Completed
                && context.address().ok().flatten() == Some(deal.deal.beneficiary)
            {
                match context.signing_client().await {
                    Ok(signing) => view.failure = signing.task_failure(task).await.ok().flatten(),
                    Err(failure) => output.progress(format!(
                        "(whether the app failed is not shown: {})",
                        failure.message()
                    )),
                }
            }
            print_task(output, &view);
        }
        TaskCommand::Claim { task } => {
            let client = context.signing_client().await?;
            print_task(output, &output.during("claiming the task", client.claim(task)).await?);
        }
        TaskCommand::Logs { task, scheduler_url } => {
            task_logs(context, output, task, scheduler_url).await?;
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
        ResultCommand::Download { task, out_dir, out, key_file, no_decrypt } => {
            let out = out_dir.or(out);
            let client = context.signing_client().await?;
            let out = out.unwrap_or_else(|| PathBuf::from(task.to_string()));
            let decryption = if no_decrypt {
                Decryption::Keep
            } else {
                Decryption::KeyFile(key_file.unwrap_or_else(|| context.keys().result_key()))
            };
            let bar = output.download_bar("downloading the result");
            let mut progress = Output::download_progress(&bar);
            let result =
                Box::pin(client.download_result_reporting(task, &out, &decryption, &mut progress))
                    .await;
            bar.finish_and_clear();
            let result = result?;
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

/// `poco task logs`: the task's log, as its workerpool's scheduler kept it, asked as its
/// requester.
async fn task_logs(
    context: &Context,
    output: Output,
    task: alloy::primitives::B256,
    scheduler_url: Option<String>,
) -> Result<(), Failure> {
    let url =
        scheduler_url.or_else(|| context.devnet().map(|d| d.scheduler_url)).ok_or_else(|| {
            Failure::config(
                "which scheduler? Pass the task's workerpool's scheduler with --scheduler.url URL",
            )
        })?;
    let wallet = context.wallet()?.ok_or(poco_sdk::Error::NoWallet)?;
    let scheduler = poco_api::pool::SchedulerClient::new(&url, wallet);
    let logs = scheduler.task_logs(task).await.map_err(|e| {
        Failure::config(format!(
            "cannot read the log of task {task}: {e} (only the task's requester may, from the \
             scheduler of its workerpool)"
        ))
    })?;
    output.result(&logs, || {
        if logs.logs.is_empty() {
            return format!("the scheduler has no log of task {task} yet");
        }
        logs.logs
            .iter()
            .map(|entry| {
                let at = jiff::Timestamp::from_millisecond((entry.at * 1000.0) as i64)
                    .map(|t| {
                        t.to_zoned(jiff::tz::TimeZone::system())
                            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
                            .to_string()
                    })
                    .unwrap_or_else(|_| entry.at.to_string());
                format!("{at}  {}\n", entry.message)
            })
            .collect()
    });
    Ok(())
}
