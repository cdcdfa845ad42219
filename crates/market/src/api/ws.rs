//! `/ws`: the stream of order and deal events, optionally filtered by kind, asset and owner.

use std::sync::atomic::Ordering;

use alloy::primitives::Address;
use axum::{
    extract::{
        State,
        ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    response::Response,
};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::{
    api::{ApiState, Params, opt_address},
    error::{Error, Result},
    model::MarketEvent,
};

/// Query parameters of `/ws`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamParams {
    kind: Option<String>,
    asset: Option<String>,
    owner: Option<String>,
}

/// Which events a client wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    kinds: Option<Vec<String>>,
    asset: Option<Address>,
    owner: Option<Address>,
}

const KIND_NAMES: [&str; 5] = ["app", "dataset", "workerpool", "request", "deal"];

impl Filter {
    fn parse(params: &StreamParams) -> Result<Self> {
        let kinds = match &params.kind {
            None => None,
            Some(text) => {
                let kinds: Vec<String> = text.split(',').map(|k| k.trim().to_owned()).collect();
                if let Some(bad) = kinds.iter().find(|k| !KIND_NAMES.contains(&k.as_str())) {
                    return Err(Error::InvalidQuery(format!(
                        "kind: unknown kind {bad:?} (use app, dataset, workerpool, request, deal)"
                    )));
                }
                Some(kinds)
            }
        };
        Ok(Self {
            kinds,
            asset: opt_address("asset", params.asset.as_ref())?,
            owner: opt_address("owner", params.owner.as_ref())?,
        })
    }

    /// Whether the client wants `event`.
    pub(crate) fn accepts(&self, event: &MarketEvent) -> bool {
        let (kind, assets, owners): (&str, Vec<Address>, Vec<Address>) = match event {
            MarketEvent::Order { order, .. } => {
                let field = if order.kind == "request" { "app" } else { order.kind.as_str() };
                let asset = order
                    .order
                    .get(field)
                    .and_then(|v| v.as_str())
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_default();
                (order.kind.as_str(), vec![asset], vec![order.owner])
            }
            MarketEvent::Deal { deal, .. } => (
                "deal",
                vec![deal.deal.app, deal.deal.dataset, deal.deal.workerpool],
                vec![
                    deal.deal.requester,
                    deal.deal.beneficiary,
                    deal.deal.appOwner,
                    deal.deal.datasetOwner,
                    deal.deal.scheduler,
                ],
            ),
        };
        self.kinds.as_ref().is_none_or(|kinds| kinds.iter().any(|k| k == kind))
            && self.asset.is_none_or(|asset| assets.contains(&asset))
            && self.owner.is_none_or(|owner| owners.contains(&owner))
    }
}

pub(crate) async fn handler(
    State(state): State<ApiState>,
    Params(params): Params<StreamParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let filter = Filter::parse(&params)?;
    let upgrade = upgrade.map_err(|_| Error::WebSocketRequired)?;
    let limit = state.market.limits().max_websocket_clients;
    if state.websockets.fetch_add(1, Ordering::SeqCst) >= limit {
        state.websockets.fetch_sub(1, Ordering::SeqCst);
        return Err(Error::TooManyConnections);
    }
    // Subscribe before answering, so that no event after the handshake is missed.
    let events = state.market.store().subscribe();
    Ok(upgrade.on_upgrade(move |socket| async move {
        stream(socket, events, filter, state.shutdown.clone()).await;
        state.websockets.fetch_sub(1, Ordering::SeqCst);
    }))
}

async fn stream(
    socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<MarketEvent>,
    filter: Filter,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let (mut sink, mut incoming) = socket.split();
    loop {
        tokio::select! {
            event = events.recv() => {
                let text = match event {
                    Ok(event) if filter.accepts(&event) => match serde_json::to_string(&event) {
                        Ok(text) => text,
                        Err(_) => continue,
                    },
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        format!(r#"{{"type":"lagged","missed":{missed}}}"#)
                    }
                    Err(RecvError::Closed) => break,
                };
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            () = crate::follower::stopped(&mut shutdown) => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
        }
    }
}
