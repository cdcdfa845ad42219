//! Who may work for the pool, and which reports count: the admission rules (allow-list, bonded,
//! open), reports from the holder of a replica only, each in the stage where it is expected,
//! and results accepted at the pool's result stores only.

use std::collections::HashSet;

use alloy::{
    primitives::{B256, Bytes},
    signers::local::PrivateKeySigner,
};
use poco_api::pool::{Action, ContributionMode, Registration, Report, WorkRequest};
use poco_primitives::request::unix_seconds;
use poco_scheduler::Admission;
use serde_json::Value;

use crate::{Pool, Worker, eventually, result_archive, until};

/// Posts `body` as JSON to `path`, signed by `worker`; returns the status and the JSON body
/// (`null` when empty).
async fn send<T: serde::Serialize>(worker: &Worker, path: &str, body: &T) -> (u16, Value) {
    let body = serde_json::to_vec(body).unwrap();
    let (status, text) = worker.post_raw(path, &body, unix_seconds()).await;
    let json = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
    (status, json)
}

async fn try_register(worker: &Worker) -> (u16, Value) {
    let registration = Registration { slots: 1, tee: false, version: "test".into() };
    send(worker, "/workers/register", &registration).await
}

async fn try_report(worker: &Worker, report: &Report) -> (u16, Value) {
    send(worker, "/reports", report).await
}

/// Asserts a 403 refusal naming the admission rule `rule`.
fn assert_not_admitted((status, body): &(u16, Value), rule: &str) {
    assert_eq!(*status, 403, "{body}");
    assert_eq!(body["code"], "not_admitted", "{body}");
    assert_eq!(body["rule"], rule, "{body}");
    assert!(body["error"].as_str().unwrap().contains(rule), "{body}");
}

/// The scheduler's public view of a task.
async fn view(pool: &Pool, task_id: B256) -> Value {
    reqwest::get(format!("{}/tasks/{task_id}", pool.url)).await.unwrap().json().await.unwrap()
}

fn uploaded(task_id: B256, location: impl Into<String>) -> Report {
    Report::Uploaded { task_id, location: location.into(), callback_data: Bytes::new() }
}

/// An allow-list admits its workers only: a stranger is refused at registration, and a
/// registered worker taken off the list is refused on every later request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_refuses_strangers_and_workers_taken_off_it() {
    let mut pool = Pool::start(2).await;
    let stranger = pool.worker_with(PrivateKeySigner::random());
    assert_not_admitted(&try_register(&stranger).await, "allow-list");

    let (kept, dropped) = (pool.worker(0), pool.worker(1));
    kept.register(1).await;
    dropped.register(1).await;
    pool.admission = Some(Admission::AllowList(HashSet::from([kept.address()])));
    pool.kill_scheduler().await;
    pool.start_scheduler().await;

    let work = WorkRequest { free_slots: 1 };
    assert_not_admitted(&send(&dropped, "/work", &work).await, "allow-list");
    let beat = poco_api::pool::Heartbeat { running: vec![], unhealthy: None };
    assert_not_admitted(&send(&dropped, "/workers/heartbeat", &beat).await, "allow-list");
    let report = Report::Failed { task_id: B256::repeat_byte(1), reason: "x".into() };
    assert_not_admitted(&try_report(&dropped, &report).await, "allow-list");
    assert_not_admitted(&try_register(&dropped).await, "allow-list");
    // The worker still on the list goes on.
    assert_eq!(send(&kept, "/work", &work).await.0, 200);
}

/// Bonded: a worker holding a bond in the pool is admitted (also after leaving, while its bond
/// is frozen); one without is refused; one that released its bond is refused from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bonded_admits_bond_holders_only_and_not_after_the_bond_is_released() {
    let pool = Pool::start_admitting(2, Admission::Bonded).await;
    let (member, outsider) = (pool.worker(0), pool.worker(1));
    let (client, poco) = pool.net.poco(&member.key);
    client.send(poco.joinWorkerpool(pool.workerpool)).await.expect("joinWorkerpool");

    assert_not_admitted(&try_register(&outsider).await, "bonded");
    assert_eq!(try_register(&member).await.0, 200);
    let work = WorkRequest { free_slots: 1 };
    assert_eq!(send(&member, "/work", &work).await.0, 200);

    // Left, the bond still frozen: still at stake, still admitted.
    client.send(poco.leaveWorkerpool(pool.workerpool)).await.expect("leaveWorkerpool");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(send(&member, "/work", &work).await.0, 200);

    // Released: nothing at stake any more.
    let delay: u64 = poco.memberExitDelay().call().await.unwrap().saturating_to();
    pool.net.warp(delay + 1).await;
    client.send(poco.releaseBond(pool.workerpool)).await.expect("releaseBond");
    let mut last = (0, Value::Null);
    for _ in 0..50 {
        last = send(&member, "/work", &work).await;
        if last.0 == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_not_admitted(&last, "bonded");
}

/// Open: anyone registers, a fresh wallet included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_admits_anyone() {
    let pool = Pool::start_admitting(1, Admission::Open).await;
    let stranger = pool.worker_with(PrivateKeySigner::random());
    assert_eq!(try_register(&stranger).await.0, 200);
    assert_eq!(send(&stranger, "/work", &WorkRequest { free_slots: 1 }).await.0, 200);
}

/// A worker registered in the pool but not holding a replica of the task: every report about
/// it is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_from_a_worker_not_holding_the_task_change_nothing() {
    let pool = Pool::start(3).await;
    let workers: Vec<_> = (0..3).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    for worker in &workers[..2] {
        until("the worker gets the task", || async { worker.ask(1).await.pop() }).await;
    }
    let before = view(&pool, task_id).await;
    let outsider = &workers[2];
    for report in [
        Report::Computed { task_id, result_hash: B256::repeat_byte(9) },
        uploaded(task_id, format!("{}/results/{task_id}", pool.results_url)),
        Report::Failed { task_id, reason: "nothing".into() },
    ] {
        let (status, body) = try_report(outsider, &report).await;
        assert_eq!((status, body["code"].as_str()), (403, Some("not_assigned")), "{body}");
    }
    assert_eq!(view(&pool, task_id).await, before);
}

/// The holders of a trust-4 task's replicas report out of turn at every stage: `uploaded`
/// before consensus, `computed` and `failed` after contributing, `uploaded` from a revealer
/// not asked to upload, or at a location that is not the pool's. Each is refused and changes
/// nothing; the uploader's report of its real upload at the pool's store is accepted and the
/// task finalized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_out_of_their_stage_or_place_are_refused() {
    let pool = Pool::start(2).await;
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let mut assignments = Vec::new();
    for worker in &workers {
        assignments
            .push(until("the worker gets the task", || async { worker.ask(1).await.pop() }).await);
    }
    let store = pool.results_url.clone();
    let location = format!("{store}/results/{task_id}");
    assert_eq!(assignments[0].results_location, location, "assignments name the first store");

    // Open: no upload before consensus, even at the right place.
    for worker in &workers {
        for report in [uploaded(task_id, &location), uploaded(task_id, "http://evil.example/x")] {
            let (status, body) = try_report(worker, &report).await;
            assert_eq!((status, body["code"].as_str()), (409, Some("unexpected_report")), "{body}");
        }
    }
    assert_eq!(view(&pool, task_id).await["resultLocation"], Value::Null);
    let digest = result_archive().1;
    let computed = Report::Computed { task_id, result_hash: B256::repeat_byte(7) };
    assert_eq!(try_report(&workers[0], &computed).await.0, 204, "computed while pending");

    // Contributed: neither computed nor failed any more.
    for (worker, assignment) in workers.iter().zip(&assignments) {
        worker.contribute(&pool.net, assignment, digest).await;
    }
    eventually("consensus", || async { view(&pool, task_id).await["stage"] == "revealing" }).await;
    for worker in &workers {
        for report in [computed.clone(), Report::Failed { task_id, reason: "late".into() }] {
            let (status, body) = try_report(worker, &report).await;
            assert_eq!((status, body["code"].as_str()), (409, Some("unexpected_report")), "{body}");
        }
    }
    let states = view(&pool, task_id).await["replicas"].clone();
    assert!(states.as_array().unwrap().iter().all(|r| r["state"] == "contributed"), "{states}");

    for worker in &workers {
        eventually("the worker is asked to reveal", || async {
            worker.heartbeat(vec![task_id]).await.actions.contains(&Action::Reveal { task_id })
        })
        .await;
        worker.reveal(&pool.net, task_id, digest).await;
    }
    let (uploader, ticket) = until("an uploader is chosen", || async {
        for (index, worker) in workers.iter().enumerate() {
            let actions = worker.heartbeat(vec![task_id]).await.actions;
            for action in actions {
                if let Action::Upload { ticket, .. } = action {
                    return Some((index, ticket));
                }
            }
        }
        None
    })
    .await;
    let (asked, other) = (&workers[uploader], &workers[1 - uploader]);

    // The revealer not asked to upload cannot report an upload, even at the right place.
    let (status, body) = try_report(other, &uploaded(task_id, &location)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_uploader")), "{body}");
    // The uploader cannot name another place, however it spells it.
    let other_task = B256::repeat_byte(3);
    let authority = store.trim_start_matches("http://");
    for foreign in [
        format!("http://evil.example/results/{task_id}"),
        format!("{store}/results/{task_id}/"),
        format!("{store}//results/{task_id}"),
        format!("http://user@{authority}/results/{task_id}"),
        format!("http://results-2.invalid.evil.example/results/{task_id}"),
        format!("HTTP://{authority}/results/{task_id}"),
        format!("{store}/results/{task_id}?x=1"),
        format!("{store}/results/{other_task}"),
        format!("{store}/other/{task_id}"),
        String::new(),
    ] {
        let (status, body) = try_report(asked, &uploaded(task_id, &foreign)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("foreign_location")),
            "{foreign}: {body}"
        );
    }
    assert_eq!(view(&pool, task_id).await["resultLocation"], Value::Null);

    // Its real upload at the pool's store: accepted, and finalized.
    let uploaded_at = pool.upload(asked, &deal, task_id, &ticket).await;
    assert_eq!(uploaded_at, location);
    assert_eq!(try_report(asked, &uploaded(task_id, &location)).await.0, 204);
    eventually("the task is finalized", || async { pool.task_status(task_id).await == 3 }).await;
    assert_eq!(view(&pool, task_id).await["resultLocation"], location);
    pool.finish().await;
}

/// Trust 1: the worker holding the task contributes and finalizes at once, then reports its
/// upload; that report is accepted from it, at the pool's stores only (here the second one,
/// declared with a trailing slash).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trust_one_upload_counts_from_the_holder_at_the_pool_store_only() {
    let pool = Pool::start(2).await;
    let (holder, outsider) = (pool.worker(0), pool.worker(1));
    holder.register(1).await;
    outsider.register(1).await;
    let deal = pool.deal(1, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let assignment =
        until("the worker gets the task", || async { holder.ask(1).await.pop() }).await;
    assert_eq!(assignment.mode, ContributionMode::ContributeAndFinalize);
    let location = format!("http://results-2.invalid/results/{task_id}");

    let (status, body) = try_report(&outsider, &uploaded(task_id, &location)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("not_assigned")), "{body}");
    let foreign = format!("http://127.0.0.2:9/results/{task_id}");
    let (status, body) = try_report(&holder, &uploaded(task_id, &foreign)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("foreign_location")), "{body}");
    assert_eq!(view(&pool, task_id).await["resultLocation"], Value::Null);
    assert_eq!(try_report(&holder, &uploaded(task_id, &location)).await.0, 204);
    assert_eq!(view(&pool, task_id).await["resultLocation"], location);
}
