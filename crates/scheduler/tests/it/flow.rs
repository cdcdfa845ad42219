//! How the scheduler drives tasks: replicas by the credibility maths, never twice to one
//! worker, more on dissent; reveal and upload requests; finalize, reopen, claim; and a kill
//! and restart in the middle of it all.

use alloy::primitives::{B256, Bytes};
use poco_primitives::pool::{Action, ContributionMode, Report};

use crate::{Pool, eventually, until};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_reveal_upload_and_finalize() {
    let pool = Pool::start(2).await;
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(1).await;
    }
    let deal = pool.deal(4, 1).await;
    let task_id = deal.task_id(deal.botFirst).unwrap();
    let digest = B256::repeat_byte(0x42);
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
    // One of them is asked to upload; it reports the upload; the scheduler finalizes.
    let uploader = until("an uploader is chosen", || async {
        for worker in &workers {
            let actions = worker.heartbeat(vec![task_id]).await.actions;
            if actions.iter().any(|a| matches!(a, Action::Upload { .. })) {
                return Some(worker);
            }
        }
        None
    })
    .await;
    uploader
        .report(Report::Uploaded {
            task_id,
            location: format!("http://results.invalid/results/{task_id}"),
            callback_data: Bytes::new(),
        })
        .await;
    eventually("the task is finalized", || async { pool.task_status(task_id).await == 3 }).await;
    eventually("a worker still running the finished task is told to stop", || async {
        let actions = workers[0].heartbeat(vec![task_id]).await.actions;
        actions.iter().any(|a| matches!(a, Action::Abort { .. }))
    })
    .await;
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
    let mut pool = Pool::start(2).await;
    let workers: Vec<_> = (0..2).map(|i| pool.worker(i)).collect();
    for worker in &workers {
        worker.register(3).await;
    }
    let deal = pool.deal(4, 3).await;
    let tasks: Vec<B256> = deal.tasks().map(|(_, id)| id).collect();
    let digest = B256::repeat_byte(0x11);

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
                if actions
                    .iter()
                    .any(|a| matches!(a, Action::Upload { task_id: t, .. } if t == task_id))
                {
                    worker
                        .report(Report::Uploaded {
                            task_id: *task_id,
                            location: format!("http://results.invalid/results/{task_id}"),
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
}
