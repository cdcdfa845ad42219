//! Contract reverts, decoded into typed errors with readable messages.

use std::fmt;

use alloy::{
    contract,
    primitives::{Address, Bytes, U256},
    sol_types::{Panic, Revert as RevertReason, SolError, SolInterface},
    transports::TransportError,
};

use crate::bindings::IPoco::IPocoErrors;

alloy::sol! {
    /// Errors of the OpenZeppelin building blocks the contracts use (token, registries, owner).
    #[derive(Debug, PartialEq, Eq)]
    interface LibraryErrors {
        error OwnableUnauthorizedAccount(address account);
        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        error ERC721NonexistentToken(uint256 tokenId);
        error ERC721IncorrectOwner(address sender, uint256 tokenId, address owner);
        error ERC721InsufficientApproval(address operator, uint256 tokenId);
        error ERC721InvalidReceiver(address receiver);
        error FailedDeployment();
        error SafeERC20FailedOperation(address token);
    }
}

pub use LibraryErrors::LibraryErrorsErrors as LibraryError;

/// Why a contract call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revert {
    /// A poco protocol error (matching rule, escrow, lifecycle, registry).
    Poco(IPocoErrors),
    /// An error of the token, a registry or the owner check.
    Library(LibraryError),
    /// A revert with a reason string.
    Reason(String),
    /// A Solidity panic (arithmetic overflow, out-of-bounds...), with its code.
    Panic(U256),
    /// Revert data that no known error decodes (empty when the call reverted without data).
    Unknown(Bytes),
}

impl Revert {
    /// Decodes revert data.
    pub fn decode(data: &[u8]) -> Self {
        if let Ok(error) = IPocoErrors::abi_decode(data) {
            return Self::Poco(error);
        }
        if let Ok(error) = LibraryError::abi_decode(data) {
            return Self::Library(error);
        }
        if let Ok(reason) = RevertReason::abi_decode(data) {
            return Self::Reason(reason.reason);
        }
        if let Ok(panic) = Panic::abi_decode(data) {
            return Self::Panic(panic.code);
        }
        Self::Unknown(Bytes::copy_from_slice(data))
    }

    /// The revert carried by a failed contract call, if the failure was a revert.
    pub fn from_contract_error(error: &contract::Error) -> Option<Self> {
        error.as_revert_data().map(|data| Self::decode(&data))
    }

    /// The revert carried by a failed RPC call (e.g. gas estimation), if it was a revert.
    pub fn from_transport_error(error: &TransportError) -> Option<Self> {
        error.as_error_resp().and_then(|payload| payload.as_revert_data()).map(|d| Self::decode(&d))
    }

    /// The number of the `matchOrders` rule this revert reports, as in `IPocoErrors.sol`
    /// (0x00 to 0x80); `None` for anything that is not a matching refusal.
    pub fn matching_rule(&self) -> Option<u8> {
        let Self::Poco(error) = self else { return None };
        use IPocoErrors as E;
        Some(match error {
            E::CategoryMismatch(_) => 0x00,
            E::UnknownCategory(_) => 0x01,
            E::TrustNotOffered(_) => 0x02,
            E::AppPriceTooHigh(_) => 0x03,
            E::DatasetPriceTooHigh(_) => 0x04,
            E::WorkerpoolPriceTooHigh(_) => 0x05,
            E::TagNotOffered(_) => 0x06,
            E::TeeAppRequired(_) => 0x07,
            E::TrustOutOfRange(_) => 0x08,
            E::PriceOutOfRange(_) => 0x09,
            E::TrustBeyondCommittee(_) => 0x0a,
            E::CommitteePoolNotChosen(_) => 0x0b,
            E::AppMismatch(_) => 0x10,
            E::DatasetMismatch(_) => 0x11,
            E::RequestWorkerpoolRestricted(_) => 0x12,
            E::AppDatasetRestricted(_) => 0x13,
            E::AppWorkerpoolRestricted(_) => 0x14,
            E::AppRequesterRestricted(_) => 0x15,
            E::DatasetAppRestricted(_) => 0x16,
            E::DatasetWorkerpoolRestricted(_) => 0x17,
            E::DatasetRequesterRestricted(_) => 0x18,
            E::WorkerpoolAppRestricted(_) => 0x19,
            E::WorkerpoolDatasetRestricted(_) => 0x1a,
            E::WorkerpoolRequesterRestricted(_) => 0x1b,
            E::AppNotRegistered(_) => 0x20,
            E::InvalidAppOrderSignature(_) => 0x21,
            E::DatasetNotRegistered(_) => 0x30,
            E::InvalidDatasetOrderSignature(_) => 0x31,
            E::WorkerpoolNotRegistered(_) => 0x40,
            E::InvalidWorkerpoolOrderSignature(_) => 0x41,
            E::InvalidRequestOrderSignature(_) => 0x50,
            E::NoVolumeLeft(_) => 0x60,
            E::SponsorBalanceTooLow(_) => 0x70,
            E::SchedulerStakeTooLow(_) => 0x71,
            E::CommitteeTooSmall(_) => 0x80,
            _ => return None,
        })
    }
}

impl std::error::Error for Revert {}

impl fmt::Display for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Poco(error) => describe_poco(error, f),
            Self::Library(error) => describe_library(error, f),
            Self::Reason(reason) => write!(f, "reverted: {reason}"),
            Self::Panic(code) => write!(f, "the contract panicked (code {code:#x})"),
            Self::Unknown(data) if data.is_empty() => f.write_str("reverted without a reason"),
            Self::Unknown(data) => write!(f, "reverted with unknown error data {data}"),
        }
    }
}

/// An amount in nRLC, shown in RLC when it is a whole number of RLC.
struct Nrlc(U256);

impl fmt::Display for Nrlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = U256::from(1_000_000_000u64);
        if self.0 == U256::MAX {
            f.write_str("more than exists")
        } else if !self.0.is_zero() && (self.0 % one).is_zero() {
            write!(f, "{} RLC", self.0 / one)
        } else {
            write!(f, "{} nRLC", self.0)
        }
    }
}

fn restriction(
    f: &mut fmt::Formatter<'_>,
    order: &str,
    what: &str,
    r: Address,
    a: Address,
) -> fmt::Result {
    write!(f, "the {order} order is restricted to {what} {r}, which does not include {a}")
}

fn describe_poco(error: &IPocoErrors, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    use IPocoErrors as E;
    match error {
        E::CategoryMismatch(e) => write!(
            f,
            "the request asks for category {} but the workerpool order serves category {}",
            e.requested, e.offered
        ),
        E::UnknownCategory(e) => write!(f, "category {} does not exist", e.category),
        E::TrustNotOffered(e) => write!(
            f,
            "the request asks for trust {} but the workerpool order offers at most {}",
            e.requested, e.offered
        ),
        E::TrustOutOfRange(e) => write!(f, "trust {} is above the maximum 2^64-1", e.trust),
        E::AppPriceTooHigh(e) => write!(
            f,
            "the app costs {} per task, above the request's maximum of {}",
            Nrlc(e.price),
            Nrlc(e.maxPrice)
        ),
        E::DatasetPriceTooHigh(e) => write!(
            f,
            "the dataset costs {} per task, above the request's maximum of {}",
            Nrlc(e.price),
            Nrlc(e.maxPrice)
        ),
        E::WorkerpoolPriceTooHigh(e) => write!(
            f,
            "the workerpool costs {} per task, above the request's maximum of {}",
            Nrlc(e.price),
            Nrlc(e.maxPrice)
        ),
        E::PriceOutOfRange(e) => write!(f, "price {} nRLC is beyond any possible balance", e.price),
        E::TagNotOffered(e) => {
            write!(f, "the workerpool does not offer the required tag bits {}", e.missing)
        }
        E::TeeAppRequired(_) => {
            f.write_str("the deal needs a TEE but the app order does not carry the TEE tag")
        }
        E::TrustBeyondCommittee(e) => write!(
            f,
            "a committee deal serves trust up to {}, not {}: ask for less trust",
            e.maxTrust, e.trust
        ),
        E::CommitteePoolNotChosen(e) if e.requested.is_zero() => write!(
            f,
            "a committee request must name its workerpool (it is matched with {}): a committee \
             is as honest as the pool's members, so the requester chooses the pool",
            e.workerpool
        ),
        E::CommitteePoolNotChosen(e) => write!(
            f,
            "the committee request names workerpool {}, not {}",
            e.requested, e.workerpool
        ),
        E::CommitteeTooSmall(e) => write!(
            f,
            "workerpool {} has {} active members; a committee of this trust needs {}",
            e.workerpool, e.activeMembers, e.needed
        ),
        E::AppMismatch(e) => {
            write!(
                f,
                "the request is for app {} but the app order sells {}",
                e.requested, e.offered
            )
        }
        E::DatasetMismatch(e) => write!(
            f,
            "the request is for dataset {} but the dataset order sells {}",
            e.requested, e.offered
        ),
        E::RequestWorkerpoolRestricted(e) => {
            restriction(f, "request", "workerpool", e.restriction, e.workerpool)
        }
        E::AppDatasetRestricted(e) => restriction(f, "app", "dataset", e.restriction, e.dataset),
        E::AppWorkerpoolRestricted(e) => {
            restriction(f, "app", "workerpool", e.restriction, e.workerpool)
        }
        E::AppRequesterRestricted(e) => {
            restriction(f, "app", "requester", e.restriction, e.requester)
        }
        E::DatasetAppRestricted(e) => restriction(f, "dataset", "app", e.restriction, e.app),
        E::DatasetWorkerpoolRestricted(e) => {
            restriction(f, "dataset", "workerpool", e.restriction, e.workerpool)
        }
        E::DatasetRequesterRestricted(e) => {
            restriction(f, "dataset", "requester", e.restriction, e.requester)
        }
        E::WorkerpoolAppRestricted(e) => restriction(f, "workerpool", "app", e.restriction, e.app),
        E::WorkerpoolDatasetRestricted(e) => {
            restriction(f, "workerpool", "dataset", e.restriction, e.dataset)
        }
        E::WorkerpoolRequesterRestricted(e) => {
            restriction(f, "workerpool", "requester", e.restriction, e.requester)
        }
        E::AppNotRegistered(e) => write!(f, "{} is not a registered app", e.app),
        E::InvalidAppOrderSignature(e) => write!(
            f,
            "the app order is not signed by the app's current owner {} (was the app transferred?)",
            e.owner
        ),
        E::DatasetNotRegistered(e) => write!(f, "{} is not a registered dataset", e.dataset),
        E::InvalidDatasetOrderSignature(e) => write!(
            f,
            "the dataset order is not signed by the dataset's current owner {} (was it transferred?)",
            e.owner
        ),
        E::WorkerpoolNotRegistered(e) => {
            write!(f, "{} is not a registered workerpool", e.workerpool)
        }
        E::InvalidWorkerpoolOrderSignature(e) => write!(
            f,
            "the workerpool order is not signed by the pool's current owner {} (was it transferred?)",
            e.owner
        ),
        E::InvalidRequestOrderSignature(e) => {
            write!(f, "the request order is not signed by its requester {}", e.requester)
        }
        E::NoVolumeLeft(_) => {
            f.write_str("one of the orders has no volume left: it was fully matched or cancelled")
        }
        E::SponsorBalanceTooLow(e) => write!(
            f,
            "{} has {} free in its account but the deal costs {}: deposit {} more",
            e.sponsor,
            Nrlc(e.available),
            Nrlc(e.needed),
            Nrlc(e.needed.saturating_sub(e.available))
        ),
        E::SchedulerStakeTooLow(e) => write!(
            f,
            "the scheduler {} has {} free but must stake {} on the deal",
            e.scheduler,
            Nrlc(e.available),
            Nrlc(e.needed)
        ),
        E::AmountOutOfRange(e) => {
            write!(f, "amount {} nRLC does not fit in an account", e.amount)
        }
        E::InsufficientBalance(e) => {
            write!(f, "{} has {} free but needs {}", e.account, Nrlc(e.available), Nrlc(e.needed))
        }
        E::UnauthorizedTokenCall(e) => {
            write!(f, "only the RLC token may call receiveApproval, not {}", e.caller)
        }
        E::UnsupportedOperation(e) => {
            write!(f, "approveAndCall carried an unsupported call {}", e.selector)
        }
        E::CallerIsNotTheRequester(e) => write!(
            f,
            "deposit-and-match by {} carried a request order of {}",
            e.caller, e.requester
        ),
        E::ZeroAddress(_) => f.write_str("the zero address cannot hold an account"),
        E::BurnAccountDeposit(_) => {
            f.write_str("nobody may deposit for the burn account: what it holds is burned")
        }
        E::NotOrderOwner(e) => {
            write!(f, "only the order's owner {} (or its signature) may manage it", e.owner)
        }
        E::AlreadyMember(e) => {
            write!(f, "{} is already a member of workerpool {}", e.worker, e.workerpool)
        }
        E::NotMember(e) => write!(
            f,
            "{} is not an active member of workerpool {} (it never joined, left or was expelled)",
            e.worker, e.workerpool
        ),
        E::BondLocked(e) if e.until.is_zero() => write!(
            f,
            "{} is still a member of workerpool {}: leave it first, then release the bond",
            e.worker, e.workerpool
        ),
        E::BondLocked(e) => write!(
            f,
            "the bond of {} in workerpool {} stays frozen until {}",
            e.worker, e.workerpool, e.until
        ),
        E::DrawNotReady(e) => {
            write!(f, "the committee of deal {} can be drawn from block {} on", e.dealid, e.readyAt)
        }
        E::DrawExpired(e) => write!(
            f,
            "the block that seeds the committee of deal {} is too old to be read: drawing the \
             committee again (drawCommittee) seeds it from a later block",
            e.dealid
        ),
        E::NotDrawn(e) => {
            write!(f, "worker {} holds no seat in the committee of task {}", e.worker, e.taskid)
        }
        E::InvalidTimeRef(e) => write!(
            f,
            "invalid category time reference {} s: it must be between 1 and 60480",
            e.timeref
        ),
        E::UnknownDeal(e) => write!(f, "deal {} does not exist or was altered", e.dealid),
        E::TaskIndexOutOfRange(e) => write!(
            f,
            "task index {} is outside the deal's tasks [{}, {})",
            e.idx,
            e.botFirst,
            e.botFirst.saturating_add(e.botSize)
        ),
        E::WrongTaskStatus(e) => {
            write!(f, "task {} is {} and cannot do that now", e.taskid, task_status_name(e.status))
        }
        E::ContributionDeadlineReached(e) => {
            write!(f, "task {} no longer accepts contributions (deadline {})", e.taskid, e.deadline)
        }
        E::RevealDeadlineReached(e) => {
            write!(f, "the reveal window of task {} closed at {}", e.taskid, e.deadline)
        }
        E::RevealDeadlineNotReached(e) => {
            write!(f, "the reveal window of task {} is open until {}", e.taskid, e.deadline)
        }
        E::FinalDeadlineReached(e) => write!(
            f,
            "task {} passed its final deadline {}: it can only be claimed",
            e.taskid, e.deadline
        ),
        E::FinalDeadlineNotReached(e) => write!(
            f,
            "task {} can be claimed only after its final deadline {}",
            e.taskid, e.deadline
        ),
        E::AlreadyContributed(e) => {
            write!(f, "worker {} already contributed to task {}", e.worker, e.taskid)
        }
        E::TooManyContributors(e) => {
            write!(f, "task {} already has the maximum of {} contributors", e.taskid, e.max)
        }
        E::EnclaveChallengeRequired(e) => {
            write!(
                f,
                "task {} needs a TEE: the contribution must carry an enclave challenge",
                e.taskid
            )
        }
        E::InvalidAuthorization(e) => write!(
            f,
            "worker {} has no valid authorization of the scheduler for task {}",
            e.worker, e.taskid
        ),
        E::InvalidEnclaveSignature(e) => write!(
            f,
            "the result of task {} is not signed by the enclave {}",
            e.taskid, e.enclaveChallenge
        ),
        E::EmptyResultHash(_) => f.write_str("the result hash is empty"),
        E::ConsensusOverflow(e) => {
            write!(f, "the consensus weights of task {} overflow", e.taskid)
        }
        E::NoContribution(e) => {
            write!(f, "worker {} has no open contribution to task {}", e.worker, e.taskid)
        }
        E::RevealMismatch(e) => write!(
            f,
            "the digest revealed by {} does not match its contribution to task {}",
            e.worker, e.taskid
        ),
        E::NotConsensus(e) => {
            write!(f, "{} is not the consensus of task {}", e.resultHash, e.taskid)
        }
        E::OnlyScheduler(e) => write!(f, "only the deal's scheduler {} may do that", e.scheduler),
        E::NotEnoughReveals(e) => write!(
            f,
            "task {} has {} of {} reveals and its reveal window is still open",
            e.taskid, e.reveals, e.winners
        ),
        E::AlreadyRevealed(e) => write!(f, "task {} has reveals: it cannot be reopened", e.taskid),
        E::InvalidResultsCallback(e) => write!(
            f,
            "the callback data of task {} does not match its deal's callback and result",
            e.taskid
        ),
        E::WrongContributorList(e) => {
            write!(f, "the contributor list of task {} is not its sorted contributors", e.taskid)
        }
        E::TaskHasContributions(e) => write!(
            f,
            "task {} already has contributions: contributeAndFinalize needs a fresh task",
            e.taskid
        ),
        E::TrustNotOne(e) => {
            write!(f, "contributeAndFinalize needs trust 1, the deal has trust {}", e.trust)
        }
        E::CallbackGasTooLow(e) => {
            write!(f, "not enough gas left ({}) to run the deal's callback", e.gasLeft)
        }
        E::LengthMismatch(_) => f.write_str("array arguments have different lengths"),
        E::InvalidPolicy(e) => write!(
            f,
            "invalid workerpool policy: worker stake {}% (at most 100) and scheduler share {}% \
             (at most 50)",
            e.workerStakeRatio, e.schedulerRewardRatio
        ),
        E::NotAssetOwner(e) => write!(f, "{} does not own {}", e.caller, e.asset),
        E::UnknownAsset(e) => write!(f, "{} is not registered", e.asset),
    }
}

fn describe_library(error: &LibraryError, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    use LibraryError as E;
    match error {
        E::OwnableUnauthorizedAccount(e) => {
            write!(f, "{} is not the owner of the protocol", e.account)
        }
        E::ERC20InsufficientBalance(e) => {
            write!(f, "{} holds {} but needs {}", e.sender, Nrlc(e.balance), Nrlc(e.needed))
        }
        E::ERC20InsufficientAllowance(e) => write!(
            f,
            "{} may spend only {} of these tokens, {} are needed",
            e.spender,
            Nrlc(e.allowance),
            Nrlc(e.needed)
        ),
        E::ERC721NonexistentToken(e) => write!(f, "asset {:#x} is not registered", e.tokenId),
        E::ERC721IncorrectOwner(e) => {
            write!(f, "{} does not own asset {:#x} (owner {})", e.sender, e.tokenId, e.owner)
        }
        E::ERC721InsufficientApproval(e) => {
            write!(f, "{} may not transfer asset {:#x}", e.operator, e.tokenId)
        }
        E::ERC721InvalidReceiver(e) => write!(f, "{} cannot receive assets", e.receiver),
        E::FailedDeployment(_) => {
            f.write_str("an identical asset already exists for this owner (change a field)")
        }
        E::SafeERC20FailedOperation(e) => write!(f, "the token {} refused the transfer", e.token),
    }
}

fn task_status_name(status: u8) -> &'static str {
    match status {
        0 => "not initialized",
        1 => "active",
        2 => "revealing",
        3 => "completed",
        4 => "failed",
        _ => "in an unknown status",
    }
}

#[cfg(test)]
mod tests {
    use alloy::sol_types::SolError;

    use super::*;
    use crate::bindings::IPoco;

    #[test]
    fn decodes_a_matching_error_with_its_rule() {
        let data = IPoco::SponsorBalanceTooLow {
            sponsor: Address::repeat_byte(0x11),
            needed: U256::from(3_000_000_000u64),
            available: U256::from(1_000_000_000u64),
        }
        .abi_encode();
        let revert = Revert::decode(&data);
        assert_eq!(revert.matching_rule(), Some(0x70));
        let message = revert.to_string();
        assert!(message.contains("deposit 2 RLC more"), "{message}");
    }

    #[test]
    fn decodes_reason_strings_panics_and_garbage() {
        let reason = RevertReason { reason: "nope".into() }.abi_encode();
        assert_eq!(Revert::decode(&reason), Revert::Reason("nope".into()));
        let panic = Panic { code: U256::from(0x11) }.abi_encode();
        assert_eq!(Revert::decode(&panic), Revert::Panic(U256::from(0x11)));
        assert_eq!(
            Revert::decode(&[1, 2, 3]).to_string(),
            "reverted with unknown error data 0x010203"
        );
        assert_eq!(Revert::decode(&[]).to_string(), "reverted without a reason");
    }

    #[test]
    fn library_errors_are_readable() {
        let data =
            LibraryErrors::OwnableUnauthorizedAccount { account: Address::ZERO }.abi_encode();
        assert!(Revert::decode(&data).to_string().contains("not the owner"));
        assert_eq!(Revert::decode(&data).matching_rule(), None);
    }
}
