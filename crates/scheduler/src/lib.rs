//! The scheduler a workerpool owner runs: turns deals into tasks, hands them to workers and
//! drives them through consensus to finalization.
