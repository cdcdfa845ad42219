//! Hashes computed by the Solidity contracts themselves (`Orders`, the id helpers of
//! `PocoBase`, `Signatures.toEthSignedMessageHash`, `keccak256(abi.encode(deal))`), run with
//! forge on the fixed inputs below. Any change that breaks bit-for-bit agreement with the
//! contracts fails here.

use alloy::primitives::{Address, B256, U256, address, b256, keccak256};
use poco_primitives::{
    AppOrder, DatasetOrder, Deal, Order, OrderOperation, PocoDomain, RequestOrder, Tag,
    WorkerpoolAuthorization, WorkerpoolOrder, deal::task_id,
};

fn domain() -> PocoDomain {
    PocoDomain::new(31337, address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"))
}

fn word(value: u64) -> B256 {
    B256::from(U256::from(value))
}

const APP: Address = address!("0x1111111111111111111111111111111111111111");
const DATASET: Address = address!("0x3333333333333333333333333333333333333333");
const POOL: Address = address!("0x5555555555555555555555555555555555555555");
const REQUESTER: Address = address!("0x7777777777777777777777777777777777777777");

fn request() -> RequestOrder {
    RequestOrder {
        app: APP,
        appmaxprice: U256::from(1_000_000_000u64),
        dataset: DATASET,
        datasetmaxprice: U256::from(7),
        workerpool: Address::ZERO,
        workerpoolmaxprice: U256::from(25_000_000_000u64),
        requester: REQUESTER,
        volume: U256::from(4),
        tag: Tag::TEE.0,
        category: U256::from(2),
        trust: U256::from(3),
        beneficiary: address!("0x8888888888888888888888888888888888888888"),
        callback: Address::ZERO,
        params: r#"{"iexec_args":"hello world"}"#.into(),
        salt: word(3),
    }
}

#[test]
fn domain_separator() {
    assert_eq!(
        domain().separator(),
        b256!("0x351c31988d1d724f03d95d7a67e2accfef6b6dae5a76f27b0b47613646d2ef34")
    );
}

#[test]
fn order_hashes() {
    let app = AppOrder {
        app: APP,
        appprice: U256::from(1_000_000_000u64),
        volume: U256::from(10),
        tag: Tag::SCONE.0,
        datasetrestrict: address!("0x2222222222222222222222222222222222222222"),
        workerpoolrestrict: Address::ZERO,
        requesterrestrict: Address::ZERO,
        salt: word(0xabc),
    };
    assert_eq!(
        app.digest(&domain()),
        b256!("0x3128bab59bcfb03a9873b58344b78b0d132c2a845b6799ca68163b285fd3368c")
    );
    let dataset = DatasetOrder {
        dataset: DATASET,
        datasetprice: U256::from(7),
        volume: U256::from(1),
        tag: Tag::GPU.0,
        apprestrict: Address::ZERO,
        workerpoolrestrict: address!("0x4444444444444444444444444444444444444444"),
        requesterrestrict: Address::ZERO,
        salt: word(1),
    };
    assert_eq!(
        dataset.digest(&domain()),
        b256!("0x41b1fa8fa004f4e8870beddb89645f8e79a155bd49011acb0da96d77b45f69c0")
    );
    let workerpool = WorkerpoolOrder {
        workerpool: POOL,
        workerpoolprice: U256::from(25_000_000_000u64),
        volume: U256::from(100),
        tag: (Tag::TDX | Tag::GPU).0,
        category: U256::from(2),
        trust: U256::from(100),
        apprestrict: Address::ZERO,
        datasetrestrict: Address::ZERO,
        requesterrestrict: address!("0x6666666666666666666666666666666666666666"),
        salt: word(2),
    };
    assert_eq!(
        workerpool.digest(&domain()),
        b256!("0xa9ae510f09cce65d6e8cd43d2e1728f5e23f3a0e45f86143594664a45b95c3d6")
    );
    assert_eq!(
        request().digest(&domain()),
        b256!("0xa7a81bc4986f54fe9b1f0294c22b2d31cbc503fe3139e141877307152402fae0")
    );
    assert_eq!(
        request().operation_digest(OrderOperation::Close, &domain()),
        b256!("0xb92fba2188f570dec4c6aeb27b3bfcafd5da80aa3e84c6d4944b9f56c97b112c")
    );
}

#[test]
fn deal_hash_and_ids() {
    let request = request();
    let deal = Deal {
        requestHash: request.digest(&domain()),
        app: APP,
        appOwner: address!("0x00000000000000000000000000000000000000A1"),
        appPrice: U256::from(1_000_000_000u64),
        workerpool: POOL,
        scheduler: address!("0x000000000000000000000000000000000000005C"),
        workerpoolPrice: U256::from(25_000_000_000u64),
        requester: REQUESTER,
        sponsor: REQUESTER,
        beneficiary: request.beneficiary,
        tag: Tag::TEE.0,
        category: U256::from(2),
        trust: U256::from(3),
        startTime: U256::from(1_700_000_000u64),
        timeref: U256::from(3600),
        botFirst: U256::from(2),
        botSize: U256::from(2),
        workerStake: U256::from(7_500_000_000u64),
        schedulerRewardRatio: U256::from(1),
        paramsHash: keccak256(request.params.as_bytes()),
        ..Default::default()
    };
    assert_eq!(
        deal.hash(),
        b256!("0xa56b45cd28ade832683dc8aab2cac764f6192624ce96983e453e64231cb9c3fc")
    );
    let deal_id = b256!("0xa0d429e95e3bd98fa1f451e103b6678a99bd6c4896c831640d60cdcd7ae80987");
    assert_eq!(deal.id(), deal_id);
    let task = b256!("0xe6f1ddc7f127dd7be7f827ba399fd71a2e9d2fa7cb6d38694f6d50f772ec0500");
    assert_eq!(deal.task_id(U256::from(3)).unwrap(), task);
    assert_eq!(task_id(deal_id, U256::from(3)), task);

    let authorization = WorkerpoolAuthorization {
        worker: address!("0x9999999999999999999999999999999999999999"),
        task_id: task,
        enclave_challenge: address!("0x00000000000000000000000000000000000000EC"),
    };
    assert_eq!(
        authorization.signing_hash(),
        b256!("0xf186a0c2a7c1518d9199b42a7795add3eae4c4174c8342ae96e0e10857956911")
    );
}
