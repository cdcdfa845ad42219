//! Hand-backs: a worker that cannot keep a task (its disk is full) gives it back at once; the
//! next worker asking gets it without waiting for the replica timeout, and the same worker may
//! take it again later, a bounded number of times. Only the holder of a replica that reported
//! nothing and contributed nothing can hand it back; every other hand-back is refused and
//! changes nothing. A worker that says it is unhealthy gets no work until it says it is well.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256},
    signers::local::PrivateKeySigner,
};
use poco_api::pool::{
    Action, HAND_BACK_PATH, HandBack, HandBackCause, Report, SchedulerClient, Unhealthy,
};
use poco_primitives::request::{RequestHeaders, unix_seconds};
use serde_json::Value;

use crate::{Database, Pool, eventually, until};

/// The state of `worker`'s replica of `task_id`, as the scheduler's public view says.
async fn replica(pool: &Pool, task_id: B256, worker: Address) -> Option<String> {
    let url = format!("{}/tasks/{task_id}", pool.url);
    let task: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    task["replicas"].as_array()?.iter().find_map(|replica| {
        let of = replica["worker"].as_str()?.parse::<Address>().ok()? == worker;
        of.then(|| replica["state"].as_str().unwrap_or_default().to_owned())
    })
}

/// The scheduler's public view of a task, as JSON.
async fn view(pool: &Pool, task_id: B256) -> Value {
    reqwest::get(format!("{}/tasks/{task_id}", pool.url)).await.unwrap().json().await.unwrap()
}

/// The task's log, as its requester reads it.
async fn logs(pool: &Pool, task_id: B256) -> Vec<String> {
    let requester = pool.net.accounts().requester.clone();
    let logs = SchedulerClient::new(&pool.url, requester).task_logs(task_id).await.unwrap();
    logs.logs.into_iter().map(|entry| entry.message).collect()
}

/// A gauge or counter of the scheduler's `/metrics`.
async fn metric(pool: &Pool, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", pool.url)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in the metrics"))
}

/// Asserts a refusal `status` with the error code `code`.
fn refused((status, body): &(u16, Value), expected: u16, code: &str) {
    assert_eq!((*status, body["code"].as_str()), (expected, Some(code)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_handed_back_goes_to_the_next_worker_at_once_and_back_to_its_worker_later() {
    let pool = Pool::start_pausing(2, Database::sqlite(), Duration::from_secs(2)).await;
    handed_back_and_taken_again(pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_task_handed_back_goes_to_the_next_worker_at_once_and_back_to_its_worker_later_on_postgres()
 {
    let pool = Pool::start_pausing(2, Database::postgres().await, Duration::from_secs(2)).await;
    handed_back_and_taken_again(pool).await;
}

/// Trust 1: the first worker takes the task and hands it back (its disk is full); the second
/// gets it on its very next request, long before a replica would time out, and the first is
/// told to drop it. The second hands it back too: the first gets it again once its pause is
/// over, on the same replica.
async fn handed_back_and_taken_again(pool: Pool) {
    let (first, second) = (pool.worker(0), pool.worker(1));
    first.register(1).await;
    second.register(1).await;
    let deal = pool.deal(1, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let held = until("the first worker gets the task", || async { first.ask(1).await.pop() }).await;
    assert_eq!(held.task_id, task_id);
    assert!(second.ask(1).await.is_empty(), "trust 1: one replica is enough while it is held");

    let (status, body) = first.hand_back(task_id, HandBackCause::DiskFull).await;
    assert_eq!(status, 204, "{body}");
    let handed_back = Instant::now();
    assert_eq!(replica(&pool, task_id, first.address()).await.as_deref(), Some("released"));
    let taken = second.ask(1).await;
    assert_eq!(taken.len(), 1, "the next worker asking gets the task at once");
    assert_eq!(taken[0].task_id, task_id);
    println!("handed back and taken by another worker in {:?}", handed_back.elapsed());
    assert!(handed_back.elapsed() < pool.config().replica_timeout);
    assert_eq!(metric(&pool, "poco_scheduler_hand_backs_total").await, 1);

    let response = first.heartbeat(vec![task_id]).await;
    assert_eq!(
        response.actions,
        vec![Action::Abort { task_id, reason: "the worker handed the task back".into() }],
    );
    let log = logs(&pool, task_id).await;
    let line = format!(
        "worker {} handed the task back (the worker's disk is full): it goes to the next worker",
        first.address()
    );
    assert!(log.iter().any(|entry| entry.starts_with(&line)), "{log:?}");

    assert_eq!(second.hand_back(task_id, HandBackCause::StorageFailed).await.0, 204);
    assert!(first.ask(1).await.is_empty(), "not again before its pause is over");
    let again =
        until("the first worker gets the task again", || async { first.ask(1).await.pop() }).await;
    assert_eq!(again.task_id, task_id);
    assert!(handed_back.elapsed() >= pool.config().hand_back_pause);
    assert_eq!(replica(&pool, task_id, first.address()).await.as_deref(), Some("assigned"));
    let replicas = view(&pool, task_id).await["replicas"].as_array().unwrap().len();
    assert_eq!(replicas, 2, "one replica per worker, the first one's handed out again");
    // It is the first worker's again: its heartbeat keeps it, its report counts.
    assert!(first.heartbeat(vec![task_id]).await.actions.is_empty());
    first.report(Report::Computed { task_id, result_hash: B256::repeat_byte(3) }).await;
    assert_eq!(replica(&pool, task_id, first.address()).await.as_deref(), Some("computed"));
    pool.finish().await;
}

/// A worker that hands back everything it is given takes the same task at most
/// `MAX_HAND_BACKS` times; then the task is for others only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_takes_a_task_back_a_bounded_number_of_times() {
    let pause = Duration::from_millis(200);
    let pool = Pool::start_pausing(2, Database::sqlite(), pause).await;
    let (griefer, other) = (pool.worker(0), pool.worker(1));
    griefer.register(1).await;
    other.register(1).await;
    let deal = pool.deal(1, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    for _ in 0..poco_scheduler::MAX_HAND_BACKS {
        let held = until("the worker gets the task", || async { griefer.ask(1).await.pop() }).await;
        assert_eq!(held.task_id, task_id);
        assert_eq!(griefer.hand_back(task_id, HandBackCause::DiskFull).await.0, 204);
    }
    let log = logs(&pool, task_id).await;
    assert!(log.last().unwrap().ends_with("(never to this one again)"), "{log:?}");
    // Many pauses later, still nothing for it; the other worker gets the task.
    let started = Instant::now();
    while started.elapsed() < 5 * pause {
        assert!(griefer.ask(1).await.is_empty(), "handed back too often to get it again");
        tokio::time::sleep(pause / 2).await;
    }
    assert_eq!(other.ask(1).await.len(), 1);
    pool.finish().await;
}

/// Every hand-back that must not count is refused with its own error and changes nothing: a
/// body that does not parse or names an unknown cause, a signature forged or replayed, a
/// stranger, an unknown task, another worker's task, a task already handed back, computed or
/// failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_backs_that_must_not_count_are_refused() {
    let pool = Pool::start(3).await;
    let (holder, other, unregistered) = (pool.worker(0), pool.worker(1), pool.worker(2));
    holder.register(1).await;
    other.register(1).await;
    let deal = pool.deal(1, 3).await;
    let mut held = Vec::new();
    while held.len() < 2 {
        let more = until("the holder gets tasks", || async {
            Some(holder.ask(2 - held.len() as u32).await).filter(|more| !more.is_empty())
        })
        .await;
        held.extend(more);
    }
    let (task_id, failed) = (held[0].task_id, held[1].task_id);
    let computed =
        until("the other worker gets the third task", || async { other.ask(1).await.pop() })
            .await
            .task_id;
    assert!(deal.tasks().any(|(_, id)| id == computed) && ![task_id, failed].contains(&computed));
    let before = view(&pool, task_id).await;

    let path = HAND_BACK_PATH;
    for malformed in [
        b"{\"taskId\":".to_vec(),
        format!(r#"{{"taskId":"{task_id}","cause":"bored"}}"#).into_bytes(),
        format!(r#"{{"taskId":"{task_id}"}}"#).into_bytes(),
        format!(r#"{{"taskId":"{task_id}","cause":"diskFull","worker":"{}"}}"#, other.address())
            .into_bytes(),
    ] {
        let (status, text) = holder.post_raw(path, &malformed, unix_seconds()).await;
        assert_eq!(status, 400, "{text}");
    }

    let body = serde_json::to_vec(&HandBack { task_id, cause: HandBackCause::DiskFull }).unwrap();
    // Signed by another worker under the holder's name.
    let forged = RequestHeaders {
        address: holder.address(),
        ..other.sign_post(path, &body, unix_seconds())
    };
    let (status, text) = holder.post_signed(path, &body, &forged).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("bad_signature"), "{text}");
    // Stale.
    let (status, text) = holder.post_raw(path, &body, unix_seconds() - 3_600).await;
    assert_eq!((status, text.contains("replayed_request")), (401, true), "{text}");
    // A stranger, and a worker of the pool that never registered.
    let stranger = pool.worker_with(PrivateKeySigner::random());
    refused(&stranger.hand_back(task_id, HandBackCause::DiskFull).await, 403, "unknown_worker");
    refused(&unregistered.hand_back(task_id, HandBackCause::DiskFull).await, 403, "unknown_worker");
    // Another registered worker handing back the holder's task: it signs as itself, so it can
    // only speak of its own replicas.
    refused(&other.hand_back(task_id, HandBackCause::DiskFull).await, 403, "not_assigned");
    refused(
        &holder.hand_back(B256::repeat_byte(9), HandBackCause::DiskFull).await,
        404,
        "unknown_task",
    );
    assert_eq!(view(&pool, task_id).await, before, "nothing changed");

    // The genuine request counts once; sent again, it is a replay.
    let signed = holder.sign_post(path, &body, unix_seconds());
    assert_eq!(holder.post_signed(path, &body, &signed).await.0, 204);
    let (status, text) = holder.post_signed(path, &body, &signed).await;
    assert_eq!((status, text.contains("replayed_request")), (401, true), "{text}");
    // Handed back already: a fresh request for it is refused too.
    refused(&holder.hand_back(task_id, HandBackCause::DiskFull).await, 409, "cannot_hand_back");
    assert_eq!(metric(&pool, "poco_scheduler_hand_backs_total").await, 1);

    // A replica that reported its result, or failed, cannot be handed back.
    other.report(Report::Computed { task_id: computed, result_hash: B256::repeat_byte(4) }).await;
    let refusal = other.hand_back(computed, HandBackCause::DiskFull).await;
    refused(&refusal, 409, "cannot_hand_back");
    assert_eq!(replica(&pool, computed, other.address()).await.as_deref(), Some("computed"));
    holder.report(Report::Failed { task_id: failed, reason: "gave up".into() }).await;
    refused(&holder.hand_back(failed, HandBackCause::DiskFull).await, 409, "cannot_hand_back");
    assert_eq!(replica(&pool, failed, holder.address()).await.as_deref(), Some("failed"));
    assert_eq!(metric(&pool, "poco_scheduler_hand_backs_total").await, 1);
}

/// A worker that contributed on-chain cannot hand the task back, even before the scheduler,
/// following the chain some blocks behind, has seen the contribution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_contributed_to_cannot_be_handed_back_before_the_scheduler_sees_it() {
    let confirmations = 5;
    let pool = Pool::start_confirming(2, Database::sqlite(), confirmations).await;
    let worker = pool.worker(0);
    worker.register(1).await;
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let held = until("the worker gets the task", || async {
        pool.net.mine(1).await;
        worker.ask(1).await.pop()
    })
    .await;
    worker.contribute(&pool.net, &held, B256::repeat_byte(5)).await;
    assert_eq!(replica(&pool, task_id, worker.address()).await.as_deref(), Some("assigned"));
    let refusal = worker.hand_back(task_id, HandBackCause::DiskFull).await;
    refused(&refusal, 409, "cannot_hand_back");
    assert!(
        refusal.1["error"].as_str().unwrap().contains("contributed to it on-chain"),
        "{refusal:?}"
    );
    assert_eq!(replica(&pool, task_id, worker.address()).await.as_deref(), Some("assigned"));
}

/// A worker whose heartbeat says it is short of disk space is given no work, and is counted
/// among the unhealthy workers, until a heartbeat says it is well again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_worker_gets_no_work_until_it_says_it_is_well() {
    let pool = Pool::start(1).await;
    let worker = pool.worker(0);
    worker.register(1).await;
    assert_eq!(metric(&pool, "poco_scheduler_workers_unhealthy").await, 0);
    let low = Unhealthy::LowDisk { free_bytes: 4096, min_free_bytes: 1 << 20 };
    assert!(worker.health(Some(low)).await.actions.is_empty());
    assert_eq!(metric(&pool, "poco_scheduler_workers_unhealthy").await, 1);
    let deal = pool.deal(1, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    eventually("the scheduler knows the task", || async {
        reqwest::get(format!("{}/tasks/{task_id}", pool.url)).await.unwrap().status() == 200
    })
    .await;
    for _ in 0..5 {
        assert!(worker.ask(1).await.is_empty(), "no work for an unhealthy worker");
    }
    worker.health(None).await;
    assert_eq!(metric(&pool, "poco_scheduler_workers_unhealthy").await, 0);
    let task = until("the worker gets the task", || async { worker.ask(1).await.pop() }).await;
    assert_eq!(task.task_id, task_id);
}
