//! A client of the market's HTTP API.

use alloy::primitives::B256;
use poco_market::{BestMatch, Unpublish, api::OrderPage, model::OrderView};
use poco_primitives::OrderKind;
use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, Result};

/// The path segment of an order kind: `app`, `dataset`, `workerpool`, `request`.
pub fn kind_path(kind: OrderKind) -> &'static str {
    match kind {
        OrderKind::App => "app",
        OrderKind::Dataset => "dataset",
        OrderKind::Workerpool => "workerpool",
        OrderKind::Request => "request",
    }
}

/// A client of one market.
#[derive(Debug, Clone)]
pub struct MarketClient {
    url: String,
    http: reqwest::Client,
}

impl MarketClient {
    /// A client of the market at `url`.
    pub fn new(url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a default HTTP client");
        Self { url: url.trim_end_matches('/').to_owned(), http }
    }

    /// The market's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn answer<T: DeserializeOwned>(
        &self,
        response: reqwest::Result<reqwest::Response>,
    ) -> Result<T> {
        let down = || Error::MarketDown { url: self.url.clone() };
        let response = response.map_err(|_| down())?;
        let status = response.status();
        let text = response.text().await.map_err(|_| down())?;
        if !status.is_success() {
            let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let field = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            return Err(Error::MarketRefused {
                code: field("code").unwrap_or_else(|| status.as_u16().to_string()),
                message: field("error").unwrap_or(text),
            });
        }
        serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("unexpected answer from the market: {e}")))
    }

    /// Publishes a signed order (its JSON); returns the order as the market stores it.
    pub async fn publish<T: Serialize>(&self, kind: OrderKind, signed: &T) -> Result<OrderView> {
        let url = format!("{}/{}orders", self.url, kind_path(kind));
        self.answer(self.http.post(url).json(signed).send().await).await
    }

    /// One order by hash (any status).
    pub async fn order(&self, kind: OrderKind, hash: B256) -> Result<OrderView> {
        let url = format!("{}/{}orders/{hash}", self.url, kind_path(kind));
        self.answer(self.http.get(url).send().await).await
    }

    /// Unpublishes an order with its owner's signed authorization.
    pub async fn unpublish(
        &self,
        kind: OrderKind,
        hash: B256,
        request: &Unpublish,
    ) -> Result<OrderView> {
        let url = format!("{}/{}orders/{hash}/unpublish", self.url, kind_path(kind));
        self.answer(self.http.post(url).json(request).send().await).await
    }

    /// A page of the orderbook of `kind`, filtered by `query` (the API's parameters).
    pub async fn orderbook(&self, kind: OrderKind, query: &[(&str, String)]) -> Result<OrderPage> {
        let url = format!("{}/{}orders", self.url, kind_path(kind));
        self.answer(self.http.get(url).query(query).send().await).await
    }

    /// The cheapest compatible orders for what a requester wants (the API's parameters).
    pub async fn best_match(&self, query: &[(&str, String)]) -> Result<BestMatch> {
        let url = format!("{}/bestmatch", self.url);
        self.answer(self.http.get(url).query(query).send().await).await
    }
}
