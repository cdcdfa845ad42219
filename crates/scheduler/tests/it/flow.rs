//! How the scheduler drives tasks: replicas by the credibility maths, never twice to one
//! worker, more on dissent; reveal and upload requests; finalize, reopen, claim; and a kill
//! and restart in the middle of it all.

use std::time::Duration;

use alloy::primitives::{B256, Bytes};
use poco_api::pool::{Action, ContributionMode, Report};

use crate::{Database, Pool, eventually, result_archive, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_four_takes_two_fresh_workers_and_more_on_dissent() {
    let pool = Pool::start(4).await;
    let workers: Vec<_> = (0..4).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    eventually("the scheduler knows the deal", || async {
        reqwest::get(format!("{}/tasks/{task_id}", pool.url)).await.unwrap().status() == 200
    })
    .await;

    // Two fresh workers (weight 2 each) reach trust 4 if they agree: two replicas, no more.
    let a = workers[0].ask(1).await;
    let b = workers[1].ask(1).await;
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(a[0].mode, ContributionMode::Contribute);
    assert!(workers[2].ask(1).await.is_empty(), "a third replica is not needed yet");
    assert!(workers[0].ask(1).await.is_empty(), "never twice to the same worker");

    // They disagree: now more replicas are needed.
    workers[0].contribute(&pool.net, &a[0], B256::repeat_byte(1)).await;
    workers[1].contribute(&pool.net, &b[0], B256::repeat_byte(2)).await;
    eventually("a third worker is given the task", || async {
        !workers[2].ask(1).await.is_empty()
    })
    .await;
}

/// A worker frees its slot once a task is computed, so it may ask for more tasks than it has
/// slots; the scheduler still bounds what it holds uncontributed, so that a worker asking for
/// work and never contributing cannot take a deal's every task: `IN_FLIGHT_PER_SLOT` per slot,
/// one more each time it contributes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holds_at_most_its_in_flight_bound_uncontributed() {
    let bound = poco_scheduler::IN_FLIGHT_PER_SLOT as usize;
    let pool = Pool::start(1).await;
    let worker = pool.worker(0);
    worker.register(1).await;
    let deal = pool.deal(4, bound as u64 + 2).await;
    let first = until("the worker gets a task", || async { worker.ask(1).await.pop() }).await;
    let mut held = vec![first];
    for _ in 1..bound + 2 {
        held.extend(worker.ask(1).await);
    }
    assert_eq!(held.len(), bound, "one slot holds {bound} uncontributed tasks, no more");
    let mut tasks: Vec<B256> = held.iter().map(|a| a.task_id).collect();
    tasks.sort_unstable();
    tasks.dedup();
    assert_eq!(tasks.len(), bound, "distinct tasks");

    worker.contribute(&pool.net, &held[0], B256::repeat_byte(1)).await;
    let next =
        until("a contribution makes room for one more", || async { worker.ask(1).await.pop() })
            .await;
    assert!(!tasks.contains(&next.task_id), "a task it did not hold");
    assert!(worker.ask(1).await.is_empty(), "room for one only");
    assert!(deal.tasks().any(|(_, id)| id == next.task_id));
}

/// A replica lives as long as its worker reports it running, however long the app takes; one
/// that expired while its worker was silent comes back when the worker reports it again, instead
/// of the worker being told to drop work it has nearly done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_lives_while_its_worker_reports_it_running() {
    let silence = Duration::from_secs(1);
    let pool = Box::pin(Pool::start_impatient(3, silence)).await;
    let workers: Vec<_> = (0..3).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let a = until("the first replica", || async { workers[0].ask(1).await.pop() }).await;
    assert_eq!(a.task_id, task_id);

    // Three timeouts long, the worker keeps saying it runs the task: it is never aborted and
    // the task still needs exactly one more worker, not two.
    let started = tokio::time::Instant::now();
    while started.elapsed() < 3 * silence {
        let response = workers[0].heartbeat(vec![task_id]).await;
        assert!(response.actions.is_empty(), "a running replica is left alone: {response:?}");
        workers[1].heartbeat(Vec::new()).await;
        workers[2].heartbeat(Vec::new()).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(workers[1].ask(1).await.len(), 1, "the second replica");
    assert!(workers[2].ask(1).await.is_empty(), "the first replica did not expire");

    // The first worker goes silent: its replica expires and a third worker gets the task.
    eventually("the task goes to a third worker", || async {
        workers[1].heartbeat(vec![task_id]).await;
        !workers[2].ask(1).await.is_empty()
    })
    .await;
    // It comes back, still computing: its replica lives again rather than being aborted.
    let response = workers[0].heartbeat(vec![task_id]).await;
    assert!(
        !response.actions.iter().any(|action| matches!(action, Action::Abort { .. })),
        "a task still open is not taken from a worker that kept computing: {response:?}"
    );
    pool.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_reveal_upload_and_finalize() {
    consensus_to_finalize(Pool::start(2).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn consensus_reveal_upload_and_finalize_on_postgres() {
    consensus_to_finalize(Pool::start_on(2, Database::postgres().await).await).await;
}

/// Two workers agree on a trust-4 task; both reveal, one uploads, the task is finalized.
async fn consensus_to_finalize(pool: Pool) {
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let digest = result_archive().1;
    let mut assignments = Vec::new();
    for worker in &workers {
        let mut got = until("the worker gets the task", || async {
            Some(worker.ask(1).await).filter(|a| !a.is_empty())
        })
        .await;
        assignments.push(got.remove(0));
    }
    for (worker, assignment) in workers.iter().zip(&assignments) {
        worker.contribute(&pool.net, assignment, digest).await;
    }
    // Both are asked to reveal.
    for worker in &workers {
        eventually("the worker is asked to reveal", || async {
            worker.heartbeat(vec![task_id]).await.actions.contains(&Action::Reveal { task_id })
        })
        .await;
        worker.reveal(&pool.net, task_id, digest).await;
    }
    // One of them is asked to upload.
    let (uploader, ticket) = until("an uploader is chosen", || async {
        for worker in &workers {
            let actions = worker.heartbeat(vec![task_id]).await.actions;
            for action in actions {
                if let Action::Upload { ticket, .. } = action {
                    return Some((worker, ticket));
                }
            }
        }
        None
    })
    .await;
    // It first reports an upload it did not make: the scheduler finds no archive at the
    // location and does not finalize.
    let location = format!("{}/results/{task_id}", pool.results_url);
    let report = Report::Uploaded { task_id, location, callback_data: Bytes::new() };
    uploader.report(report).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pool.task_status(task_id).await, 2, "not finalized without the archive");
    // Once the archive is there, with the consensus digest, the task is finalized.
    pool.upload(uploader, &deal, task_id, &ticket).await;
    eventually("the task is finalized", || async { pool.task_status(task_id).await == 3 }).await;
    eventually("a worker still running the finished task is told to stop", || async {
        let actions = workers[0].heartbeat(vec![task_id]).await.actions;
        actions.iter().any(|a| matches!(a, Action::Abort { .. }))
    })
    .await;
    pool.finish().await;
}

/// The uploader reports an upload it never made: once its time is up, the scheduler forgets
/// the report and asks the other revealer, whose real upload gets the task finalized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_upload_report_gets_another_revealer_asked() {
    let pool = Box::pin(Pool::start_hurried(2, Duration::from_secs(1))).await;
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let digest = result_archive().1;
    for worker in &workers {
        let assignment =
            until("the worker gets the task", || async { worker.ask(1).await.pop() }).await;
        worker.contribute(&pool.net, &assignment, digest).await;
    }
    for worker in &workers {
        eventually("the worker is asked to reveal", || async {
            worker.heartbeat(vec![task_id]).await.actions.contains(&Action::Reveal { task_id })
        })
        .await;
        worker.reveal(&pool.net, task_id, digest).await;
    }
    let asked_to_upload = |index: usize| {
        let worker = &workers[index];
        async move {
            worker.heartbeat(vec![task_id]).await.actions.into_iter().find_map(|a| match a {
                Action::Upload { ticket, .. } => Some(ticket),
                _ => None,
            })
        }
    };
    let liar = until("an uploader is chosen", || async {
        for index in 0..2 {
            if asked_to_upload(index).await.is_some() {
                return Some(index);
            }
        }
        None
    })
    .await;
    let location = format!("{}/results/{task_id}", pool.results_url);
    let report =
        Report::Uploaded { task_id, location: location.clone(), callback_data: Bytes::new() };
    workers[liar].report(report).await;
    let honest = 1 - liar;
    let ticket = until("the other revealer is asked to upload", || asked_to_upload(honest)).await;
    assert_eq!(pool.task_status(task_id).await, 2, "not finalized on the false report");
    let at = pool.upload(&workers[honest], &deal, task_id, &ticket).await;
    workers[honest]
        .report(Report::Uploaded { task_id, location: at, callback_data: Bytes::new() })
        .await;
    eventually("the task is finalized", || async { pool.task_status(task_id).await == 3 }).await;
    pool.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_winners_get_the_task_reopened_and_expired_tasks_are_claimed() {
    let pool = Pool::start(2).await;
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 2).await;
    let first = deal.task_id(deal.botFirst).unwrap();
    let mut assignments = Vec::new();
    for worker in &workers {
        let mut got = until("the worker gets work", || async {
            Some(worker.ask(1).await).filter(|a| !a.is_empty())
        })
        .await;
        assignments.push(got.remove(0));
    }
    assert!(assignments.iter().all(|a| a.task_id == first), "the earliest task goes first");
    for (worker, assignment) in workers.iter().zip(&assignments) {
        worker.contribute(&pool.net, assignment, B256::repeat_byte(9)).await;
    }
    eventually("consensus", || async { pool.task_status(first).await == 2 }).await;
    // Nobody reveals; the reveal window (2T = 600 s) passes: the scheduler reopens.
    pool.net.warp(601).await;
    eventually("the task is reopened", || async { pool.task_status(first).await == 1 }).await;
    // Then the final deadline (10T) passes: the scheduler claims both tasks.
    pool.net.warp(3_000).await;
    let second = deal.task_id(deal.botFirst + alloy::primitives::U256::from(1)).unwrap();
    eventually("both tasks are claimed", || async {
        pool.task_status(first).await == 4 && pool.task_status(second).await == 4
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_scheduler_resumes_where_it_was() {
    kill_and_resume(Pool::start(2).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL"]
async fn a_killed_scheduler_resumes_where_it_was_on_postgres() {
    kill_and_resume(Pool::start_on(2, Database::postgres().await).await).await;
}

/// The scheduler is killed twice in the middle of a three-task deal (after handing the tasks
/// out, then after the reveals) and restarted on the same store: nothing is handed out twice,
/// the uploaders chosen before the kill are remembered, every task is finalized.
async fn kill_and_resume(mut pool: Pool) {
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(3).await;
    }
    let deal = pool.deal(4, 3).await;
    let tasks: Vec<B256> = deal.tasks().map(|(_, id)| id).collect();
    let digest = result_archive().1;

    // Worker 0 gets all three tasks; then the scheduler dies.
    let first = until("worker 0 gets the tasks", || async {
        Some(workers[0].ask(3).await).filter(|a| !a.is_empty())
    })
    .await;
    assert_eq!(first.len(), 3);
    pool.kill_scheduler().await;
    // While it is down, worker 0 contributes to everything.
    for assignment in &first {
        workers[0].contribute(&pool.net, assignment, digest).await;
    }
    pool.start_scheduler().await;
    for worker in &workers {
        worker.register(3).await;
    }
    // After the restart, worker 0 is not given the tasks again, worker 1 is.
    assert!(workers[0].ask(3).await.is_empty(), "nothing handed out twice");
    let second = until("worker 1 gets the tasks", || async {
        Some(workers[1].ask(3).await).filter(|a| !a.is_empty())
    })
    .await;
    assert_eq!(second.len(), 3);
    for assignment in &second {
        workers[1].contribute(&pool.net, assignment, digest).await;
    }
    for task_id in &tasks {
        for worker in &workers {
            eventually("reveal asked", || async {
                worker
                    .heartbeat(vec![])
                    .await
                    .actions
                    .contains(&Action::Reveal { task_id: *task_id })
            })
            .await;
            worker.reveal(&pool.net, *task_id, digest).await;
        }
    }
    // Kill again before uploads: the uploaders chosen before the kill are remembered.
    pool.kill_scheduler().await;
    pool.start_scheduler().await;
    for task_id in &tasks {
        eventually("an upload is asked", || async {
            for worker in &workers {
                let actions = worker.heartbeat(vec![]).await.actions;
                let ticket = actions.into_iter().find_map(|action| match action {
                    Action::Upload { task_id: t, ticket } if t == *task_id => Some(ticket),
                    _ => None,
                });
                if let Some(ticket) = ticket {
                    let location = pool.upload(worker, &deal, *task_id, &ticket).await;
                    worker
                        .report(Report::Uploaded {
                            task_id: *task_id,
                            location,
                            callback_data: Bytes::new(),
                        })
                        .await;
                    return true;
                }
            }
            false
        })
        .await;
    }
    for task_id in &tasks {
        eventually("finalized", || async { pool.task_status(*task_id).await == 3 }).await;
    }
    pool.finish().await;
}
