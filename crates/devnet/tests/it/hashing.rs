//! Order hashes computed in Rust equal the contract's, for random orders; operation digests
//! signed in Rust are accepted by `manage*Order`.

use alloy::primitives::{Address, B256, U256};
use poco_contracts::bindings::IPocoTypes;
use poco_primitives::{
    AppOrder, DatasetOrder, Order, OrderOperation, RequestOrder, Signed, WorkerpoolOrder,
};
use poco_test_utils::TestNet;
use proptest::{prelude::*, test_runner::TestRunner};

use crate::runtime;

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address::from)
}

fn word() -> impl Strategy<Value = B256> {
    any::<[u8; 32]>().prop_map(B256::from)
}

fn uint() -> impl Strategy<Value = U256> {
    prop_oneof![any::<u64>().prop_map(U256::from), word().prop_map(|w| U256::from_be_bytes(w.0))]
}

#[derive(Debug, Clone)]
struct Orders {
    app: AppOrder,
    dataset: DatasetOrder,
    workerpool: WorkerpoolOrder,
    request: RequestOrder,
}

fn orders() -> impl Strategy<Value = Orders> {
    let app = (address(), uint(), uint(), word(), address(), address(), address(), word())
        .prop_map(|(app, appprice, volume, tag, d, w, r, salt)| AppOrder {
            app,
            appprice,
            volume,
            tag,
            datasetrestrict: d,
            workerpoolrestrict: w,
            requesterrestrict: r,
            salt,
        });
    let dataset = (address(), uint(), uint(), word(), address(), address(), address(), word())
        .prop_map(|(dataset, datasetprice, volume, tag, a, w, r, salt)| DatasetOrder {
            dataset,
            datasetprice,
            volume,
            tag,
            apprestrict: a,
            workerpoolrestrict: w,
            requesterrestrict: r,
            salt,
        });
    let workerpool = (
        (address(), uint(), uint(), word(), uint()),
        (uint(), address(), address(), address(), word()),
    )
        .prop_map(|((workerpool, price, volume, tag, category), (trust, a, d, r, salt))| {
            WorkerpoolOrder {
                workerpool,
                workerpoolprice: price,
                volume,
                tag,
                category,
                trust,
                apprestrict: a,
                datasetrestrict: d,
                requesterrestrict: r,
                salt,
            }
        });
    let request = (
        (address(), uint(), address(), uint(), address(), uint(), address()),
        (uint(), word(), uint(), uint(), address(), address(), ".{0,80}", word()),
    )
        .prop_map(
            |(
                (app, appmax, dataset, datasetmax, workerpool, poolmax, requester),
                (volume, tag, category, trust, beneficiary, callback, params, salt),
            )| RequestOrder {
                app,
                appmaxprice: appmax,
                dataset,
                datasetmaxprice: datasetmax,
                workerpool,
                workerpoolmaxprice: poolmax,
                requester,
                volume,
                tag,
                category,
                trust,
                beneficiary,
                callback,
                params,
                salt,
            },
        );
    (app, dataset, workerpool, request).prop_map(|(app, dataset, workerpool, request)| Orders {
        app,
        dataset,
        workerpool,
        request,
    })
}

#[test]
fn order_hashes_equal_the_contracts() {
    let rt = runtime();
    let net = rt.block_on(TestNet::start(0));
    let domain = net.domain();
    let poco = net.owner().poco(net.deployment().poco);
    let mut runner = TestRunner::new(ProptestConfig { cases: 96, ..ProptestConfig::default() });
    runner
        .run(&orders(), |orders| {
            let on_chain = rt.block_on(async {
                let app = IPocoTypes::AppOrder::from(&Signed::presigned(orders.app.clone()));
                let dataset =
                    IPocoTypes::DatasetOrder::from(&Signed::presigned(orders.dataset.clone()));
                let workerpool = IPocoTypes::WorkerpoolOrder::from(&Signed::presigned(
                    orders.workerpool.clone(),
                ));
                let request =
                    IPocoTypes::RequestOrder::from(&Signed::presigned(orders.request.clone()));
                [
                    poco.hashAppOrder(app).call().await.expect("hashAppOrder"),
                    poco.hashDatasetOrder(dataset).call().await.expect("hashDatasetOrder"),
                    poco.hashWorkerpoolOrder(workerpool).call().await.expect("hashWorkerpoolOrder"),
                    poco.hashRequestOrder(request).call().await.expect("hashRequestOrder"),
                ]
            });
            let in_rust = [
                orders.app.digest(&domain),
                orders.dataset.digest(&domain),
                orders.workerpool.digest(&domain),
                orders.request.digest(&domain),
            ];
            prop_assert_eq!(in_rust, on_chain);
            Ok(())
        })
        .expect("Rust and the contract hash orders alike");
}

#[test]
fn operations_signed_in_rust_presign_and_close_orders() {
    let rt = runtime();
    rt.block_on(async {
        let net = TestNet::start(1).await;
        let accounts = net.accounts();
        let domain = net.domain();
        let app = net.create_app(&accounts.app_provider, "op-app", B256::ZERO).await;
        let order = AppOrder {
            app,
            volume: U256::from(3),
            salt: B256::repeat_byte(9),
            ..Default::default()
        };
        let hash = order.digest(&domain);
        // Someone else relays the owner's signed presign, then its signed close.
        let relayer = &accounts.workers[0];
        let (client, poco) = net.poco(relayer);
        for (operation, code) in [(OrderOperation::Sign, 0u8), (OrderOperation::Close, 1u8)] {
            let sign = poco_primitives::signature::sign_hash(
                &accounts.app_provider,
                order.operation_digest(operation, &domain),
            )
            .expect("signing");
            let call = poco.manageAppOrder(IPocoTypes::AppOrderOperation {
                order: IPocoTypes::AppOrder::from(&Signed::presigned(order.clone())),
                operation: code,
                sign,
            });
            client.send(call).await.expect("the owner's signed operation is accepted");
        }
        assert_eq!(poco.viewPresigned(hash).call().await.unwrap(), accounts.app_provider.address());
        assert_eq!(poco.viewConsumed(hash).call().await.unwrap(), U256::from(3));
        // A stranger's signature of the same operation is refused.
        let sign = poco_primitives::signature::sign_hash(
            relayer,
            order.operation_digest(OrderOperation::Close, &domain),
        )
        .unwrap();
        let call = poco.manageAppOrder(IPocoTypes::AppOrderOperation {
            order: IPocoTypes::AppOrder::from(&Signed::presigned(order.clone())),
            operation: 1,
            sign,
        });
        let error = client.send(call).await.expect_err("a stranger cannot close the order");
        assert!(error.to_string().contains("only the order's owner"), "{error}");
    });
}
