//! Gas benchmark: gas per step of the task lifecycle, on a real anvil with the real contracts.
//!
//! Every figure is a transaction receipt's `gasUsed` (intrinsic gas and calldata included),
//! as the reference figures were measured. Run with `cargo run --release -p poco-bench --bin gas`.

use std::fmt::Write as _;

use alloy::{
    primitives::{Address, B256, U256},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
};
use eyre::{Result, WrapErr, eyre};
use poco_bench::Lifecycle;
use poco_chain::devnet::{AnvilProcess, DevnetAccounts, find_anvil};

/// iExec PoCo 6.1.0 on anvil 1.7.1 (prague), per-transaction gasUsed.
mod reference {
    pub(crate) const MATCH: u64 = 694_869;
    pub(crate) const TRUST1: u64 = 1_395_727;
    pub(crate) const TRUST4: u64 = 2_083_041;
    pub(crate) const TRUST4_DISSENT: u64 = 3_186_251;
    pub(crate) const INIT_PER_TASK: u64 = 173_000;
    pub(crate) const CLAIM: u64 = 1_054_536;
}

/// Gas per step of the task lifecycle on the deployed contracts (anvil), against the
/// reference's figures and the targets.
#[derive(Debug, clap::Parser)]
struct Options {}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    <Options as clap::Parser>::parse();
    let dir = tempfile::tempdir()?;
    let anvil = AnvilProcess::ephemeral(&find_anvil(), 40, &dir.path().join("anvil.log"))
        .wrap_err("starting anvil")?;
    let accounts = DevnetAccounts::derive(30);
    let lifecycle = Lifecycle::deploy(anvil.endpoint(), &accounts).await?;
    let mut workers = accounts.workers.iter();
    let mut next_worker = || workers.next().cloned().ok_or_else(|| eyre!("out of workers"));

    let mut report = Report::default();

    // (e) a claim after the final deadline. Run first, so that the successes below run on a
    // chain where a claim burned a stake (nothing of it is ever paid out again).
    let claim_scenario = {
        let mut s = report.scenario("(e) claim after the final deadline");
        let (deal, receipt) = lifecycle.match_deal(1, 1, 6).await?;
        s.step("matchOrders", &receipt);
        let idx = deal.botFirst;
        s.step("initialize", &lifecycle.initialize(&deal, idx).await?);
        lifecycle.warp(deal.timeref.to::<u64>() * 10).await?;
        s.step("claim", &lifecycle.claim(&deal, idx, vec![]).await?);
        s.total(reference::CLAIM);
        s
    };

    // (a) trust 1, one worker, contributeAndFinalize.
    {
        let mut s = report.scenario("(a) trust 1, one worker, contributeAndFinalize");
        let (deal, receipt) = lifecycle.match_deal(1, 1, 1).await?;
        s.step("matchOrders", &receipt);
        let worker = next_worker()?;
        let receipt = lifecycle.contribute_and_finalize(&deal, deal.botFirst, &worker).await?;
        s.step("contributeAndFinalize (task initialized on the way)", &receipt);
        s.total(reference::TRUST1);
        s.note("same with an explicit initialize first:");
        let (deal, receipt) = lifecycle.match_deal(1, 1, 2).await?;
        s.step("matchOrders", &receipt);
        s.step("initialize", &lifecycle.initialize(&deal, deal.botFirst).await?);
        let receipt = lifecycle.contribute_and_finalize(&deal, deal.botFirst, &worker).await?;
        s.step("contributeAndFinalize", &receipt);
        s.total(reference::TRUST1);
        report.push(s);
    }

    // (b) trust 4, two agreeing fresh workers.
    {
        let mut s = report.scenario("(b) trust 4, two agreeing fresh workers");
        let (deal, receipt) = lifecycle.match_deal(4, 1, 3).await?;
        s.step("matchOrders", &receipt);
        let idx = deal.botFirst;
        s.step("initialize", &lifecycle.initialize(&deal, idx).await?);
        let digest = B256::repeat_byte(0x42);
        let pair = [next_worker()?, next_worker()?];
        for (i, worker) in pair.iter().enumerate() {
            let receipt = lifecycle.contribute(&deal, idx, worker, digest).await?;
            s.step(&format!("contribute #{}", i + 1), &receipt);
        }
        for (i, worker) in pair.iter().enumerate() {
            s.step(
                &format!("reveal #{}", i + 1),
                &lifecycle.reveal(&deal, idx, worker, digest).await?,
            );
        }
        let contributors: Vec<Address> = pair.iter().map(|w| w.address()).collect();
        s.step("finalize", &lifecycle.finalize(&deal, idx, digest, contributors).await?);
        s.total(reference::TRUST4);
        report.push(s);
    }

    // (c) trust 4, a wrong answer first, then four agreeing fresh workers (protocol.md §4.3).
    {
        let mut s = report.scenario("(c) trust 4, one wrong worker then four agreeing ones");
        let (deal, receipt) = lifecycle.match_deal(4, 1, 4).await?;
        s.step("matchOrders", &receipt);
        let idx = deal.botFirst;
        s.step("initialize", &lifecycle.initialize(&deal, idx).await?);
        let wrong = next_worker()?;
        let receipt = lifecycle.contribute(&deal, idx, &wrong, B256::repeat_byte(0x66)).await?;
        s.step("contribute (wrong)", &receipt);
        let digest = B256::repeat_byte(0x42);
        let honest: Vec<PrivateKeySigner> = (0..4).map(|_| next_worker()).collect::<Result<_>>()?;
        for (i, worker) in honest.iter().enumerate() {
            let receipt = lifecycle.contribute(&deal, idx, worker, digest).await?;
            s.step(&format!("contribute #{}", i + 1), &receipt);
        }
        for (i, worker) in honest.iter().enumerate() {
            s.step(
                &format!("reveal #{}", i + 1),
                &lifecycle.reveal(&deal, idx, worker, digest).await?,
            );
        }
        let mut contributors: Vec<Address> = honest.iter().map(|w| w.address()).collect();
        contributors.push(wrong.address());
        s.step("finalize", &lifecycle.finalize(&deal, idx, digest, contributors).await?);
        s.total(reference::TRUST4_DISSENT);
        report.push(s);
    }

    // (d) one deal of 100 tasks initialized in one batch.
    {
        let mut s = report.scenario("(d) one deal of 100 tasks, initialized in batch");
        let (deal, receipt) = lifecycle.match_deal(1, 100, 5).await?;
        s.step("matchOrders (volume 100)", &receipt);
        let indexes: Vec<U256> = (0..100u64).map(|i| deal.botFirst + U256::from(i)).collect();
        let receipt = lifecycle.initialize_array(&deal, indexes).await?;
        s.step("initializeArray (100 tasks)", &receipt);
        s.per_task("initialize per task", receipt.gas_used, 100, reference::INIT_PER_TASK);
        report.push(s);
    }

    report.push(claim_scenario);

    // (f), (g) committee deals: members bond, the contract draws the seats, the holders vote.
    let members: Vec<PrivateKeySigner> = (0..20).map(|_| next_worker()).collect::<Result<_>>()?;
    for member in &members {
        lifecycle.join(member).await?;
    }
    for (title, trust, salt) in [
        ("(f) committee deal, trust 4: 3 seats among 20 members", 4, 7),
        ("(g) committee deal, trust 100: 19 seats among 20 members", 100, 8),
    ] {
        report.push(committee_scenario(&report, &lifecycle, &members, title, trust, salt).await?);
    }

    report.matching(reference::MATCH);
    print!("{}", report.render(&lifecycle.conditions().await?));
    Ok(())
}

/// A committee deal of one task at `trust`: match, initialize (which fixes the seed), one
/// contribution per distinct seat holder until a majority of the seats agrees, their reveals,
/// finalize. No reference: the reference has no committees.
async fn committee_scenario(
    report: &Report,
    lifecycle: &Lifecycle,
    members: &[PrivateKeySigner],
    title: &str,
    trust: u64,
    salt: u8,
) -> Result<Scenario> {
    let mut s = report.scenario(title);
    let (deal, receipt) = lifecycle.match_committee_deal(trust, 1, salt).await?;
    s.step("matchOrders", &receipt);
    let idx = deal.botFirst;
    s.step("initialize (fixes the seed)", &lifecycle.initialize(&deal, idx).await?);
    let seats = lifecycle.seats(&deal, idx).await?;
    let digest = B256::repeat_byte(0x42);
    let (mut voters, mut held) = (Vec::new(), 0);
    for holder in &seats {
        if held * 2 > seats.len() {
            break;
        }
        if voters.contains(holder) {
            continue;
        }
        let worker = members
            .iter()
            .find(|m| m.address() == *holder)
            .ok_or_else(|| eyre!("seat holder {holder} is not a bench member"))?;
        let receipt = lifecycle.contribute(&deal, idx, worker, digest).await?;
        let count = seats.iter().filter(|seat| *seat == holder).count();
        s.step(&format!("contribute ({count} seat{})", if count > 1 { "s" } else { "" }), &receipt);
        voters.push(*holder);
        held += count;
    }
    for holder in &voters {
        let worker = members.iter().find(|m| m.address() == *holder).expect("a member");
        s.step("reveal", &lifecycle.reveal(&deal, idx, worker, digest).await?);
    }
    s.step("finalize", &lifecycle.finalize(&deal, idx, digest, voters).await?);
    s.lines.push(format!("  {:<52} {:>10}", "total", thousands(s.running)));
    Ok(s)
}

#[derive(Default)]
struct Report {
    scenarios: Vec<Scenario>,
    match_gas: Vec<u64>,
}

struct Scenario {
    title: String,
    lines: Vec<String>,
    running: u64,
}

impl Report {
    fn scenario(&self, title: &str) -> Scenario {
        Scenario { title: title.to_owned(), lines: vec![], running: 0 }
    }

    fn push(&mut self, scenario: Scenario) {
        self.scenarios.push(scenario);
    }

    fn matching(&mut self, reference: u64) {
        for scenario in &self.scenarios {
            for line in &scenario.lines {
                if let Some(rest) = line.trim_start().strip_prefix("matchOrders")
                    && let Some(gas) =
                        rest.split_whitespace().find_map(|w| w.replace(',', "").parse().ok())
                {
                    self.match_gas.push(gas);
                }
            }
        }
        let worst = self.match_gas.iter().copied().max().unwrap_or_default();
        self.scenarios.push(Scenario {
            title: "matchOrders".into(),
            lines: vec![format!(
                "  {:<52} {:>10}   reference {:>10}   target {:>9}   {}",
                "highest of all matches above",
                thousands(worst),
                thousands(reference),
                thousands(250_000),
                verdict(worst <= 250_000)
            )],
            running: 0,
        });
    }

    fn render(&self, conditions: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "poco gas benchmark: gasUsed per transaction receipt");
        let _ = writeln!(out, "{conditions}");
        for scenario in &self.scenarios {
            let _ = writeln!(out, "\n{}", scenario.title);
            for line in &scenario.lines {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}

impl Scenario {
    fn step(&mut self, name: &str, receipt: &TransactionReceipt) {
        self.running += receipt.gas_used;
        self.lines.push(format!("  {:<52} {:>10}", name, thousands(receipt.gas_used)));
    }

    fn note(&mut self, text: &str) {
        self.lines.push(format!("  {text}"));
        self.running = 0;
    }

    fn total(&mut self, reference: u64) {
        let target = reference / 3;
        self.lines.push(format!(
            "  {:<52} {:>10}   reference {:>10}   target {:>9}   {}",
            "total",
            thousands(self.running),
            thousands(reference),
            thousands(target),
            verdict(self.running <= target)
        ));
    }

    fn per_task(&mut self, name: &str, gas: u64, tasks: u64, reference: u64) {
        let per_task = gas / tasks;
        self.lines.push(format!(
            "  {:<52} {:>10}   reference {:>10}   target {:>9}   {}",
            name,
            thousands(per_task),
            thousands(reference),
            thousands(reference / 3),
            verdict(per_task <= reference / 3)
        ));
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
