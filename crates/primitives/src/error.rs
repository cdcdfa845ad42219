//! The errors of poco-primitives.
//!
//! [`Error`] is what a function of this crate returns when its input is refused. A failed
//! match is data rather than a malfunction (the market shows it, the SDK explains it), so its
//! reason is its own type, [`MatchError`], whose variants mirror one to one the Solidity errors
//! `matchOrders` reverts with (contracts/src/interfaces/IPocoErrors.sol), with the same
//! arguments, and whose [`MatchError::code`] is the rule number in brackets there.

use alloy::primitives::{Address, B256, U256};
use std::path::PathBuf;

use crate::tag::Tag;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an input was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A signature is neither 65 bytes (`r ‖ s ‖ v`) nor 64 bytes (EIP-2098).
    #[error("a signature must be 65 or 64 bytes long, this one is {length}")]
    SignatureLength {
        /// The length found.
        length: usize,
    },
    /// A 65-byte signature whose `v` is not 27 or 28.
    #[error("signature v must be 27 or 28, got {v}")]
    SignatureRecoveryId {
        /// The `v` byte found.
        v: u8,
    },
    /// A signature with `s` in the upper half of the curve order: refused as malleable.
    #[error("signature s is in the upper half of the curve order (malleable signature)")]
    MalleableSignature,
    /// A well-formed signature from which no public key can be recovered.
    #[error("the signature does not recover to any signer")]
    UnrecoverableSignature,
    /// The signer failed to sign.
    #[error("signing failed: {0}")]
    Signer(#[from] alloy::signers::Error),
    /// A signature header of a signed HTTP request is missing or malformed
    /// ([`crate::request::RequestHeaders`]).
    #[error("{header}: {reason}")]
    InvalidRequestHeader {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A signed HTTP request whose signature recovers to another signer than the one it names.
    #[error(
        "the request is signed by {signer}, not by {claimed}: sign exactly the method, path, \
         timestamp, nonce and body sent"
    )]
    WrongRequestSigner {
        /// The signer the request names (its address header).
        claimed: Address,
        /// Who the signature recovers to.
        signer: Address,
    },

    /// An amount given without its unit: a bare number could mean any of them (RLC and nRLC
    /// are 10^9 apart).
    #[error("amount {input:?} has no unit: write {}", readings(input, units))]
    AmountWithoutUnit {
        /// The number given.
        input: String,
        /// The units it could be read in.
        units: Vec<&'static str>,
    },
    /// A text that is not an exact amount with its unit.
    #[error("invalid amount {input:?}: {reason}")]
    InvalidAmount {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A text that is not a tag.
    #[error("invalid tag {input:?}: {reason}")]
    InvalidTag {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A task index outside the deal's bag of tasks `[botFirst, botFirst + botSize)`.
    #[error("task index {idx} is outside the deal's tasks [{bot_first}, {bot_first} + {bot_size})")]
    TaskIndexOutOfRange {
        /// The index asked for.
        idx: U256,
        /// The deal's first task index.
        bot_first: U256,
        /// The deal's number of tasks.
        bot_size: U256,
    },

    /// The consensus total went above 2^184 - 1 (the contract reverts with `ConsensusOverflow`).
    #[error("the consensus weight no longer fits: total above 2^184 - 1")]
    ConsensusOverflow,
    /// The task already has the most contributions a task accepts.
    #[error("a task takes at most {max} contributions")]
    TooManyContributors {
        /// The limit.
        max: usize,
    },
    /// A contribution with a zero result hash.
    #[error("the result hash is zero")]
    EmptyResultHash,
    /// A contribution after consensus was reached: the task is no longer open.
    #[error("consensus is already reached on {consensus}")]
    ConsensusAlreadyReached {
        /// The consensus result hash.
        consensus: B256,
    },
    /// Reopening a task that has no consensus.
    #[error("the task has no consensus to reopen")]
    NoConsensus,

    /// A result path that is not a clean relative path.
    #[error("invalid result path {path:?}: {reason}")]
    InvalidResultPath {
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same path twice in a result tree.
    #[error("result path {path:?} appears twice")]
    DuplicateResultPath {
        /// The repeated path.
        path: String,
    },
    /// A symbolic link or special file in a result directory: only regular files are digested.
    #[error("{}: not a regular file or directory ({kind}); results hold regular files only", path.display())]
    UnsupportedFileType {
        /// The offending entry.
        path: PathBuf,
        /// What it is: "symbolic link", "special file".
        kind: &'static str,
    },
    /// A file name in a result directory that is not UTF-8.
    #[error("{}: file names in results must be UTF-8", path.display())]
    NonUtf8Path {
        /// The offending entry.
        path: PathBuf,
    },
    /// A result file changed size while it was being digested.
    #[error("{}: the file changed while it was being read", path.display())]
    FileChanged {
        /// The file.
        path: PathBuf,
    },
    /// Reading a result directory failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A result's failure record does not parse.
    #[error("the result's failure record is malformed: {0}")]
    InvalidFailureRecord(String),

    /// The orders do not match.
    #[error(transparent)]
    Match(#[from] MatchError),
}

/// Why `matchOrders` would refuse four orders: the first rule that fails, in the contract's
/// order. Each variant is the Solidity error of the same name with the same arguments.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatchError {
    /// \[0x00\] The request asks for another category than the workerpool serves.
    #[error("[0x00] the request asks for category {requested}, the workerpool serves {offered}")]
    CategoryMismatch {
        /// The request's category.
        requested: U256,
        /// The workerpool order's category.
        offered: U256,
    },
    /// \[0x01\] The category does not exist.
    #[error("[0x01] category {category} does not exist")]
    UnknownCategory {
        /// The category asked for.
        category: U256,
    },
    /// \[0x02\] The request wants more trust than the workerpool agrees to deliver.
    #[error("[0x02] the request wants trust {requested}, the workerpool offers at most {offered}")]
    TrustNotOffered {
        /// The request's trust.
        requested: U256,
        /// The workerpool order's trust.
        offered: U256,
    },
    /// \[0x08\] The request's trust is above 2^64 - 1.
    #[error("[0x08] trust {trust} is above the maximum 2^64 - 1")]
    TrustOutOfRange {
        /// The request's trust.
        trust: U256,
    },
    /// \[0x0a\] A committee deal asks for more trust than the largest committee serves.
    #[error("[0x0a] a committee deal serves trust up to {max_trust}, the request wants {trust}")]
    TrustBeyondCommittee {
        /// The request's trust.
        trust: U256,
        /// The largest trust a committee serves.
        max_trust: U256,
    },
    /// \[0x0b\] A committee request does not name the workerpool it is matched with: a
    /// committee is as honest as its pool's members, and only the requester may choose them.
    #[error(
        "[0x0b] a committee request must name its workerpool: it names {requested}, the order \
         is for {workerpool}"
    )]
    CommitteePoolNotChosen {
        /// The request's workerpool field (zero: any).
        requested: Address,
        /// The workerpool order's pool.
        workerpool: Address,
    },
    /// \[0x03\] The app price is above the request's maximum.
    #[error("[0x03] the app costs {price} nRLC, the request pays at most {max_price}")]
    AppPriceTooHigh {
        /// The app order's price.
        price: U256,
        /// The request's maximum.
        max_price: U256,
    },
    /// \[0x04\] The dataset price is above the request's maximum.
    #[error("[0x04] the dataset costs {price} nRLC, the request pays at most {max_price}")]
    DatasetPriceTooHigh {
        /// The dataset order's price.
        price: U256,
        /// The request's maximum.
        max_price: U256,
    },
    /// \[0x05\] The workerpool price is above the request's maximum.
    #[error("[0x05] the workerpool costs {price} nRLC, the request pays at most {max_price}")]
    WorkerpoolPriceTooHigh {
        /// The workerpool order's price.
        price: U256,
        /// The request's maximum.
        max_price: U256,
    },
    /// \[0x09\] A price is above 2^96 - 1 nRLC, more than an account can ever hold.
    #[error("[0x09] price {price} nRLC is above the maximum 2^96 - 1")]
    PriceOutOfRange {
        /// The price.
        price: U256,
    },
    /// \[0x06\] The deal needs tag bits that the workerpool does not offer.
    #[error("[0x06] the workerpool does not offer the features {missing} ({missing:x})")]
    TagNotOffered {
        /// The demanded bits the pool lacks.
        missing: Tag,
    },
    /// \[0x07\] The dataset or the request needs TEE but the app order lacks the TEE bit.
    #[error("[0x07] the deal needs a TEE but the app order does not carry the TEE bit")]
    TeeAppRequired,

    /// \[0x10\] The request names another app than the app order.
    #[error("[0x10] the request wants app {requested}, the app order is for {offered}")]
    AppMismatch {
        /// The request's app.
        requested: Address,
        /// The app order's app.
        offered: Address,
    },
    /// \[0x11\] The request names another dataset than the dataset order.
    #[error("[0x11] the request wants dataset {requested}, the dataset order is for {offered}")]
    DatasetMismatch {
        /// The request's dataset.
        requested: Address,
        /// The dataset order's dataset.
        offered: Address,
    },
    /// \[0x12\] The request's workerpool restriction excludes this workerpool.
    #[error(
        "[0x12] the request's workerpool restriction {restriction} excludes workerpool {workerpool}"
    )]
    RequestWorkerpoolRestricted {
        /// The restriction.
        restriction: Address,
        /// The workerpool excluded.
        workerpool: Address,
    },
    /// \[0x13\] The app order's dataset restriction excludes this dataset.
    #[error("[0x13] the app order's dataset restriction {restriction} excludes dataset {dataset}")]
    AppDatasetRestricted {
        /// The restriction.
        restriction: Address,
        /// The dataset excluded (zero when the deal has none).
        dataset: Address,
    },
    /// \[0x14\] The app order's workerpool restriction excludes this workerpool.
    #[error(
        "[0x14] the app order's workerpool restriction {restriction} excludes workerpool {workerpool}"
    )]
    AppWorkerpoolRestricted {
        /// The restriction.
        restriction: Address,
        /// The workerpool excluded.
        workerpool: Address,
    },
    /// \[0x15\] The app order's requester restriction excludes this requester.
    #[error(
        "[0x15] the app order's requester restriction {restriction} excludes requester {requester}"
    )]
    AppRequesterRestricted {
        /// The restriction.
        restriction: Address,
        /// The requester excluded.
        requester: Address,
    },
    /// \[0x16\] The dataset order's app restriction excludes this app.
    #[error("[0x16] the dataset order's app restriction {restriction} excludes app {app}")]
    DatasetAppRestricted {
        /// The restriction.
        restriction: Address,
        /// The app excluded.
        app: Address,
    },
    /// \[0x17\] The dataset order's workerpool restriction excludes this workerpool.
    #[error(
        "[0x17] the dataset order's workerpool restriction {restriction} excludes workerpool {workerpool}"
    )]
    DatasetWorkerpoolRestricted {
        /// The restriction.
        restriction: Address,
        /// The workerpool excluded.
        workerpool: Address,
    },
    /// \[0x18\] The dataset order's requester restriction excludes this requester.
    #[error(
        "[0x18] the dataset order's requester restriction {restriction} excludes requester {requester}"
    )]
    DatasetRequesterRestricted {
        /// The restriction.
        restriction: Address,
        /// The requester excluded.
        requester: Address,
    },
    /// \[0x19\] The workerpool order's app restriction excludes this app.
    #[error("[0x19] the workerpool order's app restriction {restriction} excludes app {app}")]
    WorkerpoolAppRestricted {
        /// The restriction.
        restriction: Address,
        /// The app excluded.
        app: Address,
    },
    /// \[0x1a\] The workerpool order's dataset restriction excludes this dataset.
    #[error(
        "[0x1a] the workerpool order's dataset restriction {restriction} excludes dataset {dataset}"
    )]
    WorkerpoolDatasetRestricted {
        /// The restriction.
        restriction: Address,
        /// The dataset excluded (zero when the deal has none).
        dataset: Address,
    },
    /// \[0x1b\] The workerpool order's requester restriction excludes this requester.
    #[error(
        "[0x1b] the workerpool order's requester restriction {restriction} excludes requester {requester}"
    )]
    WorkerpoolRequesterRestricted {
        /// The restriction.
        restriction: Address,
        /// The requester excluded.
        requester: Address,
    },

    /// \[0x20\] The app is not in the app registry.
    #[error("[0x20] app {app} is not registered")]
    AppNotRegistered {
        /// The app.
        app: Address,
    },
    /// \[0x21\] The app order is neither signed nor presigned by the app's current owner.
    #[error("[0x21] the app order is not signed by the app owner {owner}")]
    InvalidAppOrderSignature {
        /// The app's current owner.
        owner: Address,
    },
    /// \[0x30\] The dataset is not in the dataset registry.
    #[error("[0x30] dataset {dataset} is not registered")]
    DatasetNotRegistered {
        /// The dataset.
        dataset: Address,
    },
    /// \[0x31\] The dataset order is neither signed nor presigned by the dataset's current owner.
    #[error("[0x31] the dataset order is not signed by the dataset owner {owner}")]
    InvalidDatasetOrderSignature {
        /// The dataset's current owner.
        owner: Address,
    },
    /// \[0x40\] The workerpool is not in the workerpool registry.
    #[error("[0x40] workerpool {workerpool} is not registered")]
    WorkerpoolNotRegistered {
        /// The workerpool.
        workerpool: Address,
    },
    /// \[0x41\] The workerpool order is neither signed nor presigned by the pool's current owner.
    #[error("[0x41] the workerpool order is not signed by the workerpool owner {owner}")]
    InvalidWorkerpoolOrderSignature {
        /// The workerpool's current owner (the scheduler).
        owner: Address,
    },
    /// \[0x50\] The request order is neither signed nor presigned by its requester.
    #[error("[0x50] the request order is not signed by its requester {requester}")]
    InvalidRequestOrderSignature {
        /// The request's requester.
        requester: Address,
    },

    /// \[0x60\] One of the orders has no volume left (consumed or closed).
    #[error("[0x60] one of the orders has no volume left")]
    NoVolumeLeft,
    /// \[0x70\] The sponsor's free balance does not cover the deal's price.
    #[error("[0x70] the sponsor {sponsor} needs {needed} nRLC free but has {available}")]
    SponsorBalanceTooLow {
        /// Who pays.
        sponsor: Address,
        /// The deal's price for all its tasks (saturated at 2^256 - 1).
        needed: U256,
        /// The sponsor's free balance.
        available: U256,
    },
    /// \[0x71\] The scheduler's free balance does not cover its stake on the deal.
    #[error(
        "[0x71] the scheduler {scheduler} needs {needed} nRLC free to stake but has {available}"
    )]
    SchedulerStakeTooLow {
        /// The workerpool owner.
        scheduler: Address,
        /// The scheduler's stake for all the deal's tasks (saturated at 2^256 - 1).
        needed: U256,
        /// The scheduler's free balance, after the sponsor's lock when they are the same.
        available: U256,
    },
    /// \[0x80\] A committee deal on a workerpool with too few active members.
    #[error(
        "[0x80] workerpool {workerpool} has {active_members} active members, a committee of \
         this trust needs {needed}"
    )]
    CommitteeTooSmall {
        /// The workerpool.
        workerpool: Address,
        /// Its active members.
        active_members: u64,
        /// The fewest it needs.
        needed: u64,
    },
}

impl MatchError {
    /// The rule number, as in brackets in IPocoErrors.sol and in iExec's
    /// `iExecV5-matchOrders-0xNN` revert strings (0x08 to 0x0b and 0x80 are poco's own rules).
    pub const fn code(&self) -> u8 {
        match self {
            Self::CategoryMismatch { .. } => 0x00,
            Self::UnknownCategory { .. } => 0x01,
            Self::TrustNotOffered { .. } => 0x02,
            Self::AppPriceTooHigh { .. } => 0x03,
            Self::DatasetPriceTooHigh { .. } => 0x04,
            Self::WorkerpoolPriceTooHigh { .. } => 0x05,
            Self::TagNotOffered { .. } => 0x06,
            Self::TeeAppRequired => 0x07,
            Self::TrustOutOfRange { .. } => 0x08,
            Self::PriceOutOfRange { .. } => 0x09,
            Self::TrustBeyondCommittee { .. } => 0x0a,
            Self::CommitteePoolNotChosen { .. } => 0x0b,
            Self::AppMismatch { .. } => 0x10,
            Self::DatasetMismatch { .. } => 0x11,
            Self::RequestWorkerpoolRestricted { .. } => 0x12,
            Self::AppDatasetRestricted { .. } => 0x13,
            Self::AppWorkerpoolRestricted { .. } => 0x14,
            Self::AppRequesterRestricted { .. } => 0x15,
            Self::DatasetAppRestricted { .. } => 0x16,
            Self::DatasetWorkerpoolRestricted { .. } => 0x17,
            Self::DatasetRequesterRestricted { .. } => 0x18,
            Self::WorkerpoolAppRestricted { .. } => 0x19,
            Self::WorkerpoolDatasetRestricted { .. } => 0x1a,
            Self::WorkerpoolRequesterRestricted { .. } => 0x1b,
            Self::AppNotRegistered { .. } => 0x20,
            Self::InvalidAppOrderSignature { .. } => 0x21,
            Self::DatasetNotRegistered { .. } => 0x30,
            Self::InvalidDatasetOrderSignature { .. } => 0x31,
            Self::WorkerpoolNotRegistered { .. } => 0x40,
            Self::InvalidWorkerpoolOrderSignature { .. } => 0x41,
            Self::InvalidRequestOrderSignature { .. } => 0x50,
            Self::NoVolumeLeft => 0x60,
            Self::SponsorBalanceTooLow { .. } => 0x70,
            Self::SchedulerStakeTooLow { .. } => 0x71,
            Self::CommitteeTooSmall { .. } => 0x80,
        }
    }

    /// The name of the Solidity error, as a contract revert decodes to.
    pub const fn solidity_name(&self) -> &'static str {
        match self {
            Self::CategoryMismatch { .. } => "CategoryMismatch",
            Self::UnknownCategory { .. } => "UnknownCategory",
            Self::TrustNotOffered { .. } => "TrustNotOffered",
            Self::TrustOutOfRange { .. } => "TrustOutOfRange",
            Self::AppPriceTooHigh { .. } => "AppPriceTooHigh",
            Self::DatasetPriceTooHigh { .. } => "DatasetPriceTooHigh",
            Self::WorkerpoolPriceTooHigh { .. } => "WorkerpoolPriceTooHigh",
            Self::PriceOutOfRange { .. } => "PriceOutOfRange",
            Self::TagNotOffered { .. } => "TagNotOffered",
            Self::TeeAppRequired => "TeeAppRequired",
            Self::TrustBeyondCommittee { .. } => "TrustBeyondCommittee",
            Self::CommitteePoolNotChosen { .. } => "CommitteePoolNotChosen",
            Self::AppMismatch { .. } => "AppMismatch",
            Self::DatasetMismatch { .. } => "DatasetMismatch",
            Self::RequestWorkerpoolRestricted { .. } => "RequestWorkerpoolRestricted",
            Self::AppDatasetRestricted { .. } => "AppDatasetRestricted",
            Self::AppWorkerpoolRestricted { .. } => "AppWorkerpoolRestricted",
            Self::AppRequesterRestricted { .. } => "AppRequesterRestricted",
            Self::DatasetAppRestricted { .. } => "DatasetAppRestricted",
            Self::DatasetWorkerpoolRestricted { .. } => "DatasetWorkerpoolRestricted",
            Self::DatasetRequesterRestricted { .. } => "DatasetRequesterRestricted",
            Self::WorkerpoolAppRestricted { .. } => "WorkerpoolAppRestricted",
            Self::WorkerpoolDatasetRestricted { .. } => "WorkerpoolDatasetRestricted",
            Self::WorkerpoolRequesterRestricted { .. } => "WorkerpoolRequesterRestricted",
            Self::AppNotRegistered { .. } => "AppNotRegistered",
            Self::InvalidAppOrderSignature { .. } => "InvalidAppOrderSignature",
            Self::DatasetNotRegistered { .. } => "DatasetNotRegistered",
            Self::InvalidDatasetOrderSignature { .. } => "InvalidDatasetOrderSignature",
            Self::WorkerpoolNotRegistered { .. } => "WorkerpoolNotRegistered",
            Self::InvalidWorkerpoolOrderSignature { .. } => "InvalidWorkerpoolOrderSignature",
            Self::InvalidRequestOrderSignature { .. } => "InvalidRequestOrderSignature",
            Self::NoVolumeLeft => "NoVolumeLeft",
            Self::SponsorBalanceTooLow { .. } => "SponsorBalanceTooLow",
            Self::SchedulerStakeTooLow { .. } => "SchedulerStakeTooLow",
            Self::CommitteeTooSmall { .. } => "CommitteeTooSmall",
        }
    }

    /// Whether the failure may go away without changing the orders: a balance to top up. All
    /// other rules fail for good until an order or the chain's registries change.
    pub const fn is_funding(&self) -> bool {
        matches!(self, Self::SponsorBalanceTooLow { .. } | Self::SchedulerStakeTooLow { .. })
    }
}

/// `"1 RLC" or "1 nRLC"`: the readings of a bare number.
fn readings(input: &str, units: &[&str]) -> String {
    let quoted: Vec<String> = units.iter().map(|unit| format!("\"{input} {unit}\"")).collect();
    quoted.join(" or ")
}

/// The causes of `error`, outermost first, joined by `": "`: what a transport's own message
/// leaves out ("error sending request" hides "Connection refused"). A cause whose text its
/// parent already carries is skipped.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut level = error.source();
    while let Some(cause) = level {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        level = cause.source();
    }
    text
}

#[cfg(test)]
mod causes_tests {
    use super::causes;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn every_cause_is_told_once() {
        let error = Layer(
            "error sending request",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer("Connection refused (os error 111)", None))),
            ))),
        );
        assert_eq!(
            causes(&error),
            "error sending request: client error (Connect): Connection refused (os error 111)"
        );
        let repeated = Layer("tcp connect: refused", Some(Box::new(Layer("refused", None))));
        assert_eq!(causes(&repeated), "tcp connect: refused");
    }
}
