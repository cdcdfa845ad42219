//! Orders: the four signed offers and demands that `matchOrders` turns into a deal.
//!
//! The structs have exactly the fields of iExec PoCo v5, in the same order, so that their
//! EIP-712 type strings (derived here by alloy's `sol!` from the field lists) are those of
//! protocol.md §1.6 and orders signed by iExec tools verify on poco, and the other way round.
//! The signature is not part of the signed struct: an order as published is a [`Signed`]
//! order, `{ order, sign }`.
//!
//! Hashing: the **order hash** used everywhere on-chain (consumed volumes, presignatures,
//! events) is the full EIP-712 digest `keccak256(0x1901 ‖ separator ‖ structHash)` under the
//! [`PocoDomain`] (name `iExecODB`, version `5.0.0`, chain id, the Poco contract), not the bare
//! struct hash. A presign or close operation (`manage*Order`) signed by the owner instead of
//! sent by it is a signature over [`Order::operation_digest`].
//!
//! JSON: exactly the field names of the protocol (`app`, `appprice`, `volume`, `tag`,
//! `datasetrestrict`, …, `salt`, and `sign` for a signed order). `uint256` fields are decimal
//! strings (JSON integers and `0x`-hex are read too), addresses EIP-55 checksummed, `bytes32`
//! and `bytes` lowercase `0x`-hex (see [`crate::serde_helpers`]). Unknown fields are refused.

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    signers::SignerSync,
    sol,
    sol_types::{Eip712Domain, SolStruct},
};
use serde::{Deserialize, Deserializer, Serialize, de::DeserializeOwned};
use std::{fmt, ops::Deref};

use crate::{error::Result, signature, tag::Tag};

sol! {
    /// An app owner's offer: run `app` for `appprice` nRLC per task, `volume` times.
    #[derive(Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AppOrder {
        /// The app contract; must be registered.
        #[serde(with = "crate::serde_helpers::address")]
        address app;
        /// Price per task paid to the app owner, in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 appprice;
        /// How many tasks the order may serve, across all deals.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 volume;
        /// Features the app needs (bit 0: the app runs in a TEE).
        bytes32 tag;
        /// Allowed dataset or dataset group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address datasetrestrict;
        /// Allowed workerpool or workerpool group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address workerpoolrestrict;
        /// Allowed requester or requester group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address requesterrestrict;
        /// Free nonce that makes otherwise identical orders distinct.
        bytes32 salt;
    }

    /// A dataset owner's offer: let `dataset` be used for `datasetprice` nRLC, `volume` times.
    /// A deal without a dataset still passes a dataset order, with a zero `dataset`.
    #[derive(Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DatasetOrder {
        /// The dataset contract (zero: no dataset).
        #[serde(with = "crate::serde_helpers::address")]
        address dataset;
        /// Price per use paid to the dataset owner, in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 datasetprice;
        /// How many uses the order may serve.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 volume;
        /// Features the dataset needs (TEE framework bits are ignored in deals).
        bytes32 tag;
        /// Allowed app or app group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address apprestrict;
        /// Allowed workerpool or workerpool group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address workerpoolrestrict;
        /// Allowed requester or requester group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address requesterrestrict;
        /// Free nonce that makes otherwise identical orders distinct.
        bytes32 salt;
    }

    /// A scheduler's offer: run tasks of `category` on `workerpool`, up to `trust`, for
    /// `workerpoolprice` nRLC per task.
    #[derive(Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WorkerpoolOrder {
        /// The workerpool contract; its owner is the scheduler.
        #[serde(with = "crate::serde_helpers::address")]
        address workerpool;
        /// Price per task for the execution (scheduler and workers), in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 workerpoolprice;
        /// How many tasks the pool offers.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 volume;
        /// Features the pool **offers**.
        bytes32 tag;
        /// The category served.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 category;
        /// The highest trust the pool agrees to deliver.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 trust;
        /// Allowed app or app group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address apprestrict;
        /// Allowed dataset or dataset group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address datasetrestrict;
        /// Allowed requester or requester group (zero: any).
        #[serde(with = "crate::serde_helpers::address")]
        address requesterrestrict;
        /// Free nonce that makes otherwise identical orders distinct.
        bytes32 salt;
    }

    /// A requester's demand: run `app` (on `dataset`) `volume` times, within price limits.
    #[derive(Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RequestOrder {
        /// The app wanted; must equal the app order's.
        #[serde(with = "crate::serde_helpers::address")]
        address app;
        /// Highest accepted app price per task, in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 appmaxprice;
        /// The dataset wanted (zero: none); must equal the dataset order's.
        #[serde(with = "crate::serde_helpers::address")]
        address dataset;
        /// Highest accepted dataset price per task, in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 datasetmaxprice;
        /// A restriction: a workerpool, a workerpool group, or zero for any.
        #[serde(with = "crate::serde_helpers::address")]
        address workerpool;
        /// Highest accepted workerpool price per task, in nRLC.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 workerpoolmaxprice;
        /// The signer, and the payer unless the deal is sponsored.
        #[serde(with = "crate::serde_helpers::address")]
        address requester;
        /// Size of the bag of tasks wanted.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 volume;
        /// Features required.
        bytes32 tag;
        /// The category wanted.
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 category;
        /// The trust wanted (0 and 1 both mean no replication).
        #[serde(with = "crate::serde_helpers::uint256")]
        uint256 trust;
        /// Who receives the results (used off-chain for result encryption).
        #[serde(with = "crate::serde_helpers::address")]
        address beneficiary;
        /// Contract called with the result at finalize (zero: none).
        #[serde(with = "crate::serde_helpers::address")]
        address callback;
        /// The app's arguments, stored as given.
        string params;
        /// Free nonce that makes otherwise identical orders distinct.
        bytes32 salt;
    }

    /// The EIP-712 struct an app order's owner signs to presign or close it.
    #[derive(Debug, PartialEq, Eq)]
    struct AppOrderOperation {
        /// The order operated on.
        AppOrder order;
        /// [`OrderOperation`] as a number.
        uint256 operation;
    }

    /// The EIP-712 struct a dataset order's owner signs to presign or close it.
    #[derive(Debug, PartialEq, Eq)]
    struct DatasetOrderOperation {
        /// The order operated on.
        DatasetOrder order;
        /// [`OrderOperation`] as a number.
        uint256 operation;
    }

    /// The EIP-712 struct a workerpool order's owner signs to presign or close it.
    #[derive(Debug, PartialEq, Eq)]
    struct WorkerpoolOrderOperation {
        /// The order operated on.
        WorkerpoolOrder order;
        /// [`OrderOperation`] as a number.
        uint256 operation;
    }

    /// The EIP-712 struct a requester signs to presign or close its request order.
    #[derive(Debug, PartialEq, Eq)]
    struct RequestOrderOperation {
        /// The order operated on.
        RequestOrder order;
        /// [`OrderOperation`] as a number.
        uint256 operation;
    }
}

/// The EIP-712 domain of poco orders: name `iExecODB`, version `5.0.0`, the chain id and the
/// Poco contract. Its separator is computed once, at construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PocoDomain {
    chain_id: u64,
    verifying_contract: Address,
    separator: B256,
}

impl PocoDomain {
    /// The domain name.
    pub const NAME: &'static str = "iExecODB";
    /// The domain version.
    pub const VERSION: &'static str = "5.0.0";

    /// The domain of the Poco contract `verifying_contract` on chain `chain_id`.
    pub fn new(chain_id: u64, verifying_contract: Address) -> Self {
        let separator = Self::eip712(chain_id, verifying_contract).separator();
        Self { chain_id, verifying_contract, separator }
    }

    fn eip712(chain_id: u64, verifying_contract: Address) -> Eip712Domain {
        Eip712Domain::new(
            Some(Self::NAME.into()),
            Some(Self::VERSION.into()),
            Some(U256::from(chain_id)),
            Some(verifying_contract),
            None,
        )
    }

    /// The chain id.
    pub const fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The Poco contract address.
    pub const fn verifying_contract(&self) -> Address {
        self.verifying_contract
    }

    /// The domain separator (`eip712domainSeparator()` on-chain).
    pub const fn separator(&self) -> B256 {
        self.separator
    }

    /// The domain as alloy's EIP-712 type, for wallets that sign typed data.
    pub fn eip712_domain(&self) -> Eip712Domain {
        Self::eip712(self.chain_id, self.verifying_contract)
    }

    /// The EIP-712 digest of a struct hash: `keccak256(0x1901 ‖ separator ‖ structHash)`.
    pub fn digest(&self, struct_hash: B256) -> B256 {
        let mut message = [0u8; 66];
        message[..2].copy_from_slice(&[0x19, 0x01]);
        message[2..34].copy_from_slice(self.separator.as_slice());
        message[34..].copy_from_slice(struct_hash.as_slice());
        keccak256(message)
    }
}

/// What an owner does with an order through `manage*Order`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderOperation {
    /// Presign: record the owner as signer, for owners that cannot sign (contracts).
    Sign = 0,
    /// Close: consume the whole volume, so the order can never be matched again.
    Close = 1,
}

/// The four kinds of order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderKind {
    /// [`AppOrder`].
    App,
    /// [`DatasetOrder`].
    Dataset,
    /// [`WorkerpoolOrder`].
    Workerpool,
    /// [`RequestOrder`].
    Request,
}

impl fmt::Display for OrderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::App => "app",
            Self::Dataset => "dataset",
            Self::Workerpool => "workerpool",
            Self::Request => "request",
        })
    }
}

/// What the four order types have in common: EIP-712 hashing, volume and signing.
pub trait Order: SolStruct + Clone + fmt::Debug + Serialize + DeserializeOwned {
    /// Which of the four orders this is.
    const KIND: OrderKind;

    /// How many tasks the order may serve in total.
    fn volume(&self) -> U256;

    /// The features the order needs (or, for a workerpool order, offers).
    fn tag(&self) -> Tag;

    /// The EIP-712 struct hash of the operation `operation` on this order.
    fn operation_struct_hash(&self, operation: OrderOperation) -> B256;

    /// The order hash: the EIP-712 digest under `domain`, as used on-chain.
    fn digest(&self, domain: &PocoDomain) -> B256 {
        domain.digest(self.eip712_hash_struct())
    }

    /// The digest an owner signs to let anyone presign or close this order for it.
    fn operation_digest(&self, operation: OrderOperation, domain: &PocoDomain) -> B256 {
        domain.digest(self.operation_struct_hash(operation))
    }

    /// Signs the order with `signer` under `domain`.
    fn sign<S: SignerSync + ?Sized>(self, signer: &S, domain: &PocoDomain) -> Result<Signed<Self>> {
        let sign = signature::sign_hash(signer, self.digest(domain))?;
        Ok(Signed { order: self, sign })
    }
}

macro_rules! impl_order {
    ($order:ident, $operation:ident, $kind:ident) => {
        impl Order for $order {
            const KIND: OrderKind = OrderKind::$kind;

            fn volume(&self) -> U256 {
                self.volume
            }

            fn tag(&self) -> Tag {
                Tag(self.tag)
            }

            fn operation_struct_hash(&self, operation: OrderOperation) -> B256 {
                $operation { order: self.clone(), operation: U256::from(operation as u8) }
                    .eip712_hash_struct()
            }
        }
    };
}

impl_order!(AppOrder, AppOrderOperation, App);
impl_order!(DatasetOrder, DatasetOrderOperation, Dataset);
impl_order!(WorkerpoolOrder, WorkerpoolOrderOperation, Workerpool);
impl_order!(RequestOrder, RequestOrderOperation, Request);

/// An order with its owner's signature: what is published and passed to `matchOrders`.
///
/// `sign` is a 65-byte (or 64-byte EIP-2098) ECDSA signature of the order hash, an ERC-1271
/// signature of a contract owner, or empty when the order is presigned on-chain. In JSON the
/// order's fields and `sign` sit side by side in one object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Signed<T> {
    /// The order.
    #[serde(flatten)]
    pub order: T,
    /// The signature of the order hash (not part of the hash).
    pub sign: Bytes,
}

/// A signed app order.
pub type SignedAppOrder = Signed<AppOrder>;
/// A signed dataset order.
pub type SignedDatasetOrder = Signed<DatasetOrder>;
/// A signed workerpool order.
pub type SignedWorkerpoolOrder = Signed<WorkerpoolOrder>;
/// A signed request order.
pub type SignedRequestOrder = Signed<RequestOrder>;

impl<T: Order> Signed<T> {
    /// An order with the given signature.
    pub const fn new(order: T, sign: Bytes) -> Self {
        Self { order, sign }
    }

    /// An order without signature, to be matched on the strength of an on-chain presignature.
    pub fn presigned(order: T) -> Self {
        Self { order, sign: Bytes::new() }
    }

    /// The order hash under `domain`.
    pub fn digest(&self, domain: &PocoDomain) -> B256 {
        self.order.digest(domain)
    }

    /// The externally owned account that signed the order, or why the signature is refused.
    pub fn recover_signer(&self, domain: &PocoDomain) -> Result<Address> {
        signature::recover_signer(self.digest(domain), &self.sign)
    }

    /// Whether `sign` is `owner`'s ECDSA signature of the order (presignatures and ERC-1271
    /// need the chain: see [`crate::matching`]).
    pub fn is_signed_by(&self, owner: Address, domain: &PocoDomain) -> bool {
        signature::is_signed_by(owner, self.digest(domain), &self.sign)
    }
}

impl<T> Deref for Signed<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.order
    }
}

impl<'de, T: Order> Deserialize<'de> for Signed<T> {
    /// The order's fields and `sign` in one object; unknown fields are refused.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // serde cannot refuse unknown fields through `flatten`: split the object by hand.
        let mut fields = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let sign = fields.remove("sign").ok_or_else(|| D::Error::missing_field("sign"))?;
        let sign = Bytes::deserialize(sign).map_err(|e| D::Error::custom(format!("sign: {e}")))?;
        let order = T::deserialize(serde_json::Value::Object(fields)).map_err(D::Error::custom)?;
        Ok(Self { order, sign })
    }
}

/// The addresses an order names in each role: the asset itself, a restriction, or the app and
/// dataset a request wants. Zero means none (or no restriction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles {
    /// The app (app orders, requests) or app restriction (dataset and workerpool orders).
    pub app: Address,
    /// The dataset (dataset orders, requests) or dataset restriction.
    pub dataset: Address,
    /// The workerpool (workerpool orders) or workerpool restriction (others).
    pub workerpool: Address,
    /// The requester (requests) or requester restriction.
    pub requester: Address,
}

/// Any of the four signed orders, serialized as the order itself (its protocol field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AnySigned {
    /// An app order.
    App(Signed<AppOrder>),
    /// A dataset order.
    Dataset(Signed<DatasetOrder>),
    /// A workerpool order.
    Workerpool(Signed<WorkerpoolOrder>),
    /// A request order.
    Request(Signed<RequestOrder>),
}

/// Applies `$body` to the signed order inside any variant of [`AnySigned`].
macro_rules! with_signed {
    ($any:expr, $order:ident => $body:expr) => {
        match $any {
            AnySigned::App($order) => $body,
            AnySigned::Dataset($order) => $body,
            AnySigned::Workerpool($order) => $body,
            AnySigned::Request($order) => $body,
        }
    };
}

impl AnySigned {
    /// Reads a signed order of `kind` from a JSON value (unknown fields refused).
    pub fn from_value(kind: OrderKind, value: serde_json::Value) -> serde_json::Result<Self> {
        Ok(match kind {
            OrderKind::App => Self::App(serde_json::from_value(value)?),
            OrderKind::Dataset => Self::Dataset(serde_json::from_value(value)?),
            OrderKind::Workerpool => Self::Workerpool(serde_json::from_value(value)?),
            OrderKind::Request => Self::Request(serde_json::from_value(value)?),
        })
    }

    /// The signed order as JSON.
    pub fn to_value(&self) -> serde_json::Value {
        with_signed!(self, order => serde_json::to_value(order).expect("orders serialize"))
    }

    /// Which kind of order.
    pub fn kind(&self) -> OrderKind {
        match self {
            Self::App(_) => OrderKind::App,
            Self::Dataset(_) => OrderKind::Dataset,
            Self::Workerpool(_) => OrderKind::Workerpool,
            Self::Request(_) => OrderKind::Request,
        }
    }

    /// The order hash (EIP-712 digest) under `domain`, as used on-chain and by the market.
    pub fn hash(&self, domain: &PocoDomain) -> B256 {
        with_signed!(self, order => order.digest(domain))
    }

    /// The signature bytes (empty for a presigned order).
    pub fn sign(&self) -> &[u8] {
        with_signed!(self, order => &order.sign)
    }

    /// The total volume.
    pub fn volume(&self) -> U256 {
        with_signed!(self, order => order.order.volume())
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        with_signed!(self, order => order.order.tag())
    }

    /// The asset the order sells (app, dataset, workerpool), or the app a request wants.
    pub fn asset(&self) -> Address {
        match self {
            Self::App(o) => o.app,
            Self::Dataset(o) => o.dataset,
            Self::Workerpool(o) => o.workerpool,
            Self::Request(o) => o.app,
        }
    }

    /// The addresses the order names, by role.
    pub fn roles(&self) -> Roles {
        match self {
            Self::App(o) => Roles {
                app: o.app,
                dataset: o.datasetrestrict,
                workerpool: o.workerpoolrestrict,
                requester: o.requesterrestrict,
            },
            Self::Dataset(o) => Roles {
                app: o.apprestrict,
                dataset: o.dataset,
                workerpool: o.workerpoolrestrict,
                requester: o.requesterrestrict,
            },
            Self::Workerpool(o) => Roles {
                app: o.apprestrict,
                dataset: o.datasetrestrict,
                workerpool: o.workerpool,
                requester: o.requesterrestrict,
            },
            Self::Request(o) => Roles {
                app: o.app,
                dataset: o.dataset,
                workerpool: o.workerpool,
                requester: o.requester,
            },
        }
    }

    /// The price the book sorts on: the price of a sell order, the workerpool max price of a
    /// request.
    pub fn price(&self) -> U256 {
        match self {
            Self::App(o) => o.appprice,
            Self::Dataset(o) => o.datasetprice,
            Self::Workerpool(o) => o.workerpoolprice,
            Self::Request(o) => o.workerpoolmaxprice,
        }
    }

    /// The category (workerpool orders and requests; zero otherwise).
    pub fn category(&self) -> U256 {
        match self {
            Self::Workerpool(o) => o.category,
            Self::Request(o) => o.category,
            _ => U256::ZERO,
        }
    }

    /// The trust offered (workerpool orders) or wanted (requests); zero otherwise.
    pub fn trust(&self) -> U256 {
        match self {
            Self::Workerpool(o) => o.trust,
            Self::Request(o) => o.trust,
            _ => U256::ZERO,
        }
    }

    /// What the signer must hold free per task for the order to stand: the scheduler's stake
    /// for a workerpool order, the sum of the maximum prices for a request; `None` for apps
    /// and datasets.
    pub fn coverage_per_task(&self) -> Option<U256> {
        match self {
            Self::Workerpool(o) => Some(crate::matching::scheduler_stake(o.workerpoolprice)),
            Self::Request(o) => Some(
                o.appmaxprice
                    .saturating_add(o.datasetmaxprice)
                    .saturating_add(o.workerpoolmaxprice),
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{
        primitives::{address, b256},
        signers::local::PrivateKeySigner,
    };

    fn type_hash<T: SolStruct>() -> B256 {
        keccak256(T::eip712_encode_type().as_bytes())
    }

    #[test]
    fn type_strings_and_hashes_are_those_of_iexec() {
        assert_eq!(
            AppOrder::eip712_encode_type(),
            "AppOrder(address app,uint256 appprice,uint256 volume,bytes32 tag,address datasetrestrict,address workerpoolrestrict,address requesterrestrict,bytes32 salt)"
        );
        assert_eq!(
            type_hash::<AppOrder>(),
            b256!("0x60815a0eeec47dddf1615fe53b31d016c31444e01b9d796db365443a6445d008")
        );
        assert_eq!(
            type_hash::<DatasetOrder>(),
            b256!("0x6cfc932a5a3d22c4359295b9f433edff52b60703fa47690a04a83e40933dd47c")
        );
        assert_eq!(
            type_hash::<WorkerpoolOrder>(),
            b256!("0xaa3429fb281b34691803133d3d978a75bb77c617ed6bc9aa162b9b30920022bb")
        );
        assert_eq!(
            type_hash::<RequestOrder>(),
            b256!("0xf24e853034a3a450aba845a82914fbb564ad85accca6cf62be112a154520fae0")
        );
        assert_eq!(
            PocoDomain::new(1, Address::ZERO).eip712_domain().type_hash(),
            b256!("0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f")
        );
    }

    #[test]
    fn operation_type_hashes_are_those_of_iexec() {
        // protocol.md §1.6 gives the first 4 and last 2 bytes.
        let check = |hash: B256, head: &str, tail: &str| {
            let hex = hash.to_string();
            assert!(hex.starts_with(head) && hex.ends_with(tail), "{hex}");
        };
        assert_eq!(
            AppOrderOperation::eip712_encode_type(),
            format!(
                "AppOrderOperation(AppOrder order,uint256 operation){}",
                AppOrder::eip712_encode_type()
            )
        );
        check(type_hash::<AppOrderOperation>(), "0x0638bb07", "6ee0");
        check(type_hash::<DatasetOrderOperation>(), "0x075eb6f7", "65ec");
        check(type_hash::<WorkerpoolOrderOperation>(), "0x322d980b", "4388");
        check(type_hash::<RequestOrderOperation>(), "0x0ded7b52", "77c7");
    }

    fn request() -> RequestOrder {
        RequestOrder {
            app: address!("0x1000000000000000000000000000000000000001"),
            appmaxprice: U256::from(5),
            workerpoolmaxprice: U256::from(10).pow(U256::from(20)),
            requester: address!("0x2000000000000000000000000000000000000002"),
            volume: U256::from(3),
            trust: U256::from(1),
            params: r#"{"iexec_args":"hello"}"#.into(),
            salt: B256::repeat_byte(7),
            ..Default::default()
        }
    }

    #[test]
    fn struct_hash_is_keccak_of_the_words() {
        let order = request();
        let mut words = type_hash::<RequestOrder>().to_vec();
        let word = |out: &mut Vec<u8>, bytes: B256| out.extend_from_slice(bytes.as_slice());
        word(&mut words, order.app.into_word());
        word(&mut words, order.appmaxprice.into());
        word(&mut words, order.dataset.into_word());
        word(&mut words, order.datasetmaxprice.into());
        word(&mut words, order.workerpool.into_word());
        word(&mut words, order.workerpoolmaxprice.into());
        word(&mut words, order.requester.into_word());
        word(&mut words, order.volume.into());
        word(&mut words, order.tag);
        word(&mut words, order.category.into());
        word(&mut words, order.trust.into());
        word(&mut words, order.beneficiary.into_word());
        word(&mut words, order.callback.into_word());
        word(&mut words, keccak256(order.params.as_bytes()));
        word(&mut words, order.salt);
        assert_eq!(order.eip712_hash_struct(), keccak256(words));
    }

    #[test]
    fn digest_is_the_eip712_signing_hash() {
        let domain = PocoDomain::new(31337, address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"));
        let order = request();
        assert_eq!(order.digest(&domain), order.eip712_signing_hash(&domain.eip712_domain()));
        assert_ne!(
            order.digest(&domain),
            order.digest(&PocoDomain::new(1, domain.verifying_contract()))
        );
        let mut other = order.clone();
        other.salt = B256::repeat_byte(8);
        assert_ne!(order.digest(&domain), other.digest(&domain));
    }

    #[test]
    fn operation_digest() {
        let domain = PocoDomain::new(1, Address::repeat_byte(0x11));
        let order = AppOrder { volume: U256::from(1), ..Default::default() };
        let mut words = type_hash::<AppOrderOperation>().to_vec();
        words.extend_from_slice(order.eip712_hash_struct().as_slice());
        words.extend_from_slice(&U256::from(1).to_be_bytes::<32>());
        assert_eq!(
            order.operation_digest(OrderOperation::Close, &domain),
            domain.digest(keccak256(words))
        );
        assert_ne!(
            order.operation_digest(OrderOperation::Sign, &domain),
            order.operation_digest(OrderOperation::Close, &domain)
        );
    }

    #[test]
    fn sign_and_recover() {
        let signer = PrivateKeySigner::from_bytes(&B256::repeat_byte(1)).unwrap();
        let domain = PocoDomain::new(1, Address::repeat_byte(0x11));
        let signed = request().sign(&signer, &domain).unwrap();
        assert_eq!(signed.sign.len(), 65);
        assert_eq!(signed.recover_signer(&domain).unwrap(), signer.address());
        assert!(signed.is_signed_by(signer.address(), &domain));
        assert!(
            !signed.is_signed_by(signer.address(), &PocoDomain::new(2, Address::repeat_byte(0x11)))
        );
        assert!(!Signed::presigned(request()).is_signed_by(signer.address(), &domain));
    }

    #[test]
    fn json_uses_protocol_field_names() {
        let signed = Signed::new(
            AppOrder {
                app: address!("0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"),
                appprice: U256::from(2_000_000_000u64),
                volume: U256::from(10),
                tag: Tag::TEE.0,
                ..Default::default()
            },
            Bytes::from_static(&[0xab, 0xcd]),
        );
        let json = serde_json::to_value(&signed).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "app": "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045",
                "appprice": "2000000000",
                "volume": "10",
                "tag": "0x0000000000000000000000000000000000000000000000000000000000000001",
                "datasetrestrict": "0x0000000000000000000000000000000000000000",
                "workerpoolrestrict": "0x0000000000000000000000000000000000000000",
                "requesterrestrict": "0x0000000000000000000000000000000000000000",
                "salt": "0x0000000000000000000000000000000000000000000000000000000000000000",
                "sign": "0xabcd"
            })
        );
        assert_eq!(serde_json::from_value::<SignedAppOrder>(json.clone()).unwrap(), signed);

        let mut integers = json;
        integers["appprice"] = serde_json::json!(2_000_000_000u64);
        integers["volume"] = serde_json::json!("0xa");
        assert_eq!(serde_json::from_value::<SignedAppOrder>(integers).unwrap(), signed);
    }

    #[test]
    fn json_refuses_unknown_missing_and_out_of_range_fields() {
        let json = serde_json::to_value(Signed::presigned(request())).unwrap();
        let parse = |json: &serde_json::Value| {
            serde_json::from_value::<SignedRequestOrder>(json.clone()).map_err(|e| e.to_string())
        };
        assert_eq!(parse(&json).unwrap(), Signed::presigned(request()));

        let mut unknown = json.clone();
        unknown["price"] = serde_json::json!("1");
        assert!(parse(&unknown).unwrap_err().contains("unknown field `price`"));

        let mut missing = json.clone();
        missing.as_object_mut().unwrap().remove("salt");
        assert!(parse(&missing).unwrap_err().contains("missing field `salt`"));

        let mut unsigned = json.clone();
        unsigned.as_object_mut().unwrap().remove("sign");
        assert!(parse(&unsigned).unwrap_err().contains("missing field `sign`"));
        assert!(serde_json::from_value::<RequestOrder>(unsigned).is_ok());

        let mut huge = json.clone();
        huge["volume"] = serde_json::json!(format!("{}0", U256::MAX));
        assert!(parse(&huge).unwrap_err().contains("out of range for uint256"));

        let mut negative = json;
        negative["trust"] = serde_json::json!(-1);
        assert!(parse(&negative).unwrap_err().contains("negative"));
    }
}
