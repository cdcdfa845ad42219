//! `/ws`: the stream of order and deal events, optionally filtered by kind, asset and owner.
//!
//! Each client (IPv4 address, IPv6 /64) holds a share of the streams; a stream from which
//! nothing came for the idle timeout (the market pings, answers count) is closed, and a
//! client that does not take its events within the unread timeout is dropped.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

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
use tokio::{sync::broadcast::error::RecvError, time::Instant};
use tracing::{info, warn};

use crate::{
    api::{ApiState, Client, LimitCounters, Params, opt_address},
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
    client: Client,
    Params(params): Params<StreamParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let filter = Filter::parse(&params)?;
    let upgrade = upgrade.map_err(|_| Error::WebSocketRequired)?;
    let slot = match state.websockets.acquire(client.0) {
        Ok(slot) => slot,
        Err(refusal) => {
            let count = state.counters.websocket_refused.fetch_add(1, Ordering::Relaxed) + 1;
            if state.gate.allow(client.0) {
                warn!(target: "poco_market::limits", client = %client.0, %refusal, websocket_refused = count, "WebSocket refused");
            }
            return Err(Error::TooManyConnections);
        }
    };
    // Subscribe before answering, so that no event after the handshake is missed.
    let events = state.market.store().subscribe();
    let limits = *state.market.limits();
    let timeouts =
        Timeouts { idle: limits.websocket_idle_timeout, unread: limits.websocket_unread_timeout };
    Ok(upgrade.on_upgrade(move |socket| async move {
        let end = stream(socket, events, &filter, state.shutdown.clone(), timeouts).await;
        let counters: &Arc<LimitCounters> = &state.counters;
        let (counter, what) = match end {
            End::Idle => (&counters.websocket_idle_closed, "closed: idle"),
            End::Unread => (&counters.websocket_unread_dropped, "dropped: not reading its events"),
            End::Closed => return drop(slot),
        };
        let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if state.gate.allow(client.0) {
            info!(target: "poco_market::limits", client = %client.0, count, "WebSocket {what}");
        }
        drop(slot);
    }))
}

/// The timeouts of a stream.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    idle: Duration,
    unread: Duration,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed it, or the market is stopping.
    Closed,
    /// Nothing came from the client for the idle timeout.
    Idle,
    /// The client did not take an event within the unread timeout.
    Unread,
}

async fn stream(
    socket: WebSocket,
    mut events: tokio::sync::broadcast::Receiver<MarketEvent>,
    filter: &Filter,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    timeouts: Timeouts,
) -> End {
    let (mut sink, mut incoming) = socket.split();
    let mut last_heard = Instant::now();
    let mut pings = tokio::time::interval_at(last_heard + timeouts.idle / 3, timeouts.idle / 3);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let message = tokio::select! {
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
                    Err(RecvError::Closed) => return End::Closed,
                };
                Message::Text(text.into())
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Closed,
                Some(Ok(_)) => {
                    last_heard = Instant::now();
                    continue;
                }
            },
            () = tokio::time::sleep_until(last_heard + timeouts.idle) => {
                let _ = tokio::time::timeout(timeouts.unread, sink.send(Message::Close(None))).await;
                return End::Idle;
            }
            _ = pings.tick() => Message::Ping(Default::default()),
            () = crate::follower::stopped(&mut shutdown) => {
                let _ = tokio::time::timeout(timeouts.unread, sink.send(Message::Close(None))).await;
                return End::Closed;
            }
        };
        match tokio::time::timeout(timeouts.unread, sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return End::Closed,
            Err(_) => return End::Unread,
        }
    }
}
