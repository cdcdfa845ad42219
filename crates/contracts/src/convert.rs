//! Conversions between the protocol types of `poco-primitives` and the generated bindings.
//!
//! The two describe the same Solidity structs; the primitives carry the protocol's rules and
//! JSON, the bindings the ABI of the deployed contracts.

use poco_primitives::{self as p, Signed};

use crate::bindings::IPocoTypes as b;

/// Field-by-field conversions both ways between a primitives type and its binding.
macro_rules! signed_order {
    ($order:ident { $($field:ident),* $(,)? }) => {
        impl From<&Signed<p::$order>> for b::$order {
            fn from(signed: &Signed<p::$order>) -> Self {
                Self { $($field: signed.order.$field.clone(),)* sign: signed.sign.clone() }
            }
        }

        impl From<b::$order> for Signed<p::$order> {
            fn from(order: b::$order) -> Self {
                Signed::new(p::$order { $($field: order.$field,)* }, order.sign)
            }
        }
    };
}

signed_order!(AppOrder {
    app,
    appprice,
    volume,
    tag,
    datasetrestrict,
    workerpoolrestrict,
    requesterrestrict,
    salt
});
signed_order!(DatasetOrder {
    dataset,
    datasetprice,
    volume,
    tag,
    apprestrict,
    workerpoolrestrict,
    requesterrestrict,
    salt
});
signed_order!(WorkerpoolOrder {
    workerpool,
    workerpoolprice,
    volume,
    tag,
    category,
    trust,
    apprestrict,
    datasetrestrict,
    requesterrestrict,
    salt
});
signed_order!(RequestOrder {
    app,
    appmaxprice,
    dataset,
    datasetmaxprice,
    workerpool,
    workerpoolmaxprice,
    requester,
    volume,
    tag,
    category,
    trust,
    beneficiary,
    callback,
    params,
    salt
});

macro_rules! deal {
    ($($field:ident),* $(,)?) => {
        impl From<&p::Deal> for b::Deal {
            fn from(deal: &p::Deal) -> Self {
                Self { $($field: deal.$field,)* }
            }
        }

        impl From<b::Deal> for p::Deal {
            fn from(deal: b::Deal) -> Self {
                Self { $($field: deal.$field,)* }
            }
        }
    };
}

deal!(
    requestHash,
    app,
    appOwner,
    appPrice,
    dataset,
    datasetOwner,
    datasetPrice,
    workerpool,
    scheduler,
    workerpoolPrice,
    requester,
    sponsor,
    beneficiary,
    callback,
    tag,
    category,
    trust,
    startTime,
    timeref,
    botFirst,
    botSize,
    workerStake,
    schedulerRewardRatio,
    paramsHash,
);

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{Address, B256, U256},
        sol_types::SolValue,
    };

    use super::*;

    #[test]
    fn deals_convert_without_changing_their_encoding() {
        let deal = p::Deal {
            requestHash: B256::repeat_byte(1),
            app: Address::repeat_byte(2),
            appPrice: U256::from(3),
            botFirst: U256::from(4),
            botSize: U256::from(5),
            paramsHash: B256::repeat_byte(6),
            ..Default::default()
        };
        let binding = b::Deal::from(&deal);
        assert_eq!(binding.abi_encode(), deal.abi_encode());
        assert_eq!(p::Deal::from(binding), deal);
    }

    #[test]
    fn orders_round_trip() {
        let order = Signed::new(
            p::RequestOrder {
                app: Address::repeat_byte(7),
                params: "{\"iexec_args\":\"x\"}".into(),
                volume: U256::from(9),
                ..Default::default()
            },
            vec![1u8; 65].into(),
        );
        let binding = b::RequestOrder::from(&order);
        assert_eq!(binding.params, order.params);
        assert_eq!(Signed::<p::RequestOrder>::from(binding), order);
    }
}
