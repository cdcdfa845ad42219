//! The simulator's in-process EVM runs the contracts exactly as a node does: the reference
//! scenario ends with the same gas for every transaction, the same task statuses and the same
//! balances on revm and on anvil.

use poco_chain::devnet::{AnvilProcess, find_anvil};
use poco_sim::{InProcess, Node, scenario};

#[test]
fn the_reference_scenario_ends_the_same_in_process_and_on_anvil() {
    let dir = tempfile::tempdir().unwrap();
    let anvil = AnvilProcess::ephemeral(&find_anvil(), 10, &dir.path().join("anvil.log"))
        .expect("anvil starts (npm ci installs it)");
    let on_node = scenario::run(Node::connect(anvil.endpoint()).unwrap(), 10).unwrap();
    let in_process = scenario::run(InProcess::new(), 10).unwrap();

    assert_eq!(in_process.statuses, on_node.statuses);
    assert_eq!(in_process.steps, on_node.steps);
    assert_eq!(in_process.holdings, on_node.holdings);
    // The scenario is what it says: tasks completed and failed, stakes seized and burned.
    assert_eq!(in_process.statuses.iter().filter(|status| **status == 4).count(), 2);
    assert_eq!(in_process.statuses.iter().filter(|status| **status == 3).count(), 10);
    let burned = &in_process.holdings.last().unwrap();
    assert_eq!(burned.0, "burn account");
    println!(
        "{} transactions, gas and balances equal on both ledgers; burned {} nRLC",
        in_process.steps.len(),
        burned.2
    );
}
