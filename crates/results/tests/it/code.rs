//! Apps' code served by the store: only an app's owner publishes it, only the code the app is
//! registered with, once signed and fresh, its owner read at each publication; then anyone
//! downloads it at `/code/<sha256>`.

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use bytes::Bytes;
use poco_api::{
    http::ErrorBody,
    results::{ResultStoreClient, auth},
};
use poco_primitives::request::{
    HEADER_ADDRESS, HEADER_NONCE, SignedRequest, format_nonce, random_nonce, unix_seconds,
};
use poco_test_utils::TestNet;

use crate::{Store, answer, bounded, refusal_message, refused_code};

/// The code limit of this test's store.
const MAX_CODE: u64 = 64 * 1024;

/// A publication built by hand, so that tests can break any part of it.
#[derive(Clone)]
struct RawPublish {
    /// The checksum named in the path (and signed as the body hash).
    checksum: alloy::primitives::B256,
    body: Vec<u8>,
    app: Option<Address>,
    signer: PrivateKeySigner,
    /// The address the headers claim signed.
    claimed: Address,
    timestamp: u64,
    nonce: [u8; 16],
}

impl RawPublish {
    fn new(app: Address, code: &[u8], owner: &PrivateKeySigner) -> Self {
        Self {
            checksum: auth::sha256(code),
            body: code.to_vec(),
            app: Some(app),
            signer: owner.clone(),
            claimed: owner.address(),
            timestamp: unix_seconds(),
            nonce: random_nonce(),
        }
    }

    async fn send(&self, store: &Store) -> (u16, Option<ErrorBody>) {
        let path = ResultStoreClient::code_path(self.checksum);
        let signed = SignedRequest {
            method: "PUT",
            path: &path,
            timestamp: self.timestamp,
            nonce: self.nonce,
            body_sha256: self.checksum,
        };
        let signature = signed.sign(&self.signer).expect("signing works");
        let mut request = reqwest::Client::new()
            .put(format!("{}{path}", store.url))
            .header(HEADER_ADDRESS, self.claimed.to_string())
            .header(auth::HEADER_TIMESTAMP, self.timestamp.to_string())
            .header(HEADER_NONCE, format_nonce(&self.nonce))
            .header(auth::HEADER_SIGNATURE, signature.to_string());
        if let Some(app) = self.app {
            request = request.header(auth::HEADER_APP, app.to_string());
        }
        answer(request.body(self.body.clone())).await
    }

    async fn refused(&self, store: &Store, status: u16, code: &str) -> String {
        refusal_message(self.send(store).await, status, code)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_apps_owner_publishes_its_registered_code_and_anyone_downloads_it() {
    bounded(Box::pin(async {
        let net = TestNet::start(1).await;
        let accounts = net.accounts().clone();
        let owner = &accounts.app_provider;
        let stranger = &accounts.requester;
        let store = Store::start(&net, MAX_CODE).await;
        let client = store.client();

        let code = b"\0asm\x01\0\0\0 an app's code".repeat(10);
        let checksum = auth::sha256(&code);
        let app = net.create_app_at(owner, "published", &client.code_url(checksum), checksum).await;

        // Nothing served yet.
        let missing = reqwest::get(client.code_url(checksum)).await.unwrap();
        assert_eq!(missing.status(), 404);
        let body: ErrorBody = missing.json().await.unwrap();
        assert_eq!(body.code, "unknown_code");

        // A stranger's signature, or a stranger claiming the owner's address.
        let message = RawPublish {
            signer: stranger.clone(),
            claimed: stranger.address(),
            ..RawPublish::new(app, &code, owner)
        }
        .refused(&store, 403, "not_app_owner")
        .await;
        assert!(message.contains("only the owner publishes"), "{message}");
        RawPublish { signer: stranger.clone(), ..RawPublish::new(app, &code, owner) }
            .refused(&store, 401, "bad_signature")
            .await;
        let error =
            client.publish_code(app, Bytes::from(code.clone()), stranger).await.unwrap_err();
        assert_eq!(refused_code(&error), (403, "not_app_owner"));

        // Other code than the registered one, even by the owner.
        let other = b"other code".to_vec();
        let message =
            RawPublish::new(app, &other, owner).refused(&store, 409, "code_mismatch").await;
        assert!(message.contains(&checksum.to_string()), "{message}");
        // A body that is not the signed checksum's.
        RawPublish { body: other.clone(), ..RawPublish::new(app, &code, owner) }
            .refused(&store, 401, "content_hash_mismatch")
            .await;
        // No app there; no app named; a stale request; a malformed checksum; too large.
        RawPublish { app: Some(Address::repeat_byte(0x42)), ..RawPublish::new(app, &code, owner) }
            .refused(&store, 404, "unknown_app")
            .await;
        RawPublish { app: None, ..RawPublish::new(app, &code, owner) }
            .refused(&store, 400, "bad_request")
            .await;
        RawPublish { timestamp: unix_seconds() - 3_600, ..RawPublish::new(app, &code, owner) }
            .refused(&store, 401, "stale_request")
            .await;
        let bad_path = reqwest::Client::new()
            .put(format!("{}/code/0x1234", store.url))
            .body(code.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(bad_path.status(), 400);
        let big = vec![7u8; (MAX_CODE + 1) as usize];
        let big_checksum = auth::sha256(&big);
        let big_app =
            net.create_app_at(owner, "big", &client.code_url(big_checksum), big_checksum).await;
        RawPublish::new(big_app, &big, owner).refused(&store, 413, "too_large").await;
        // None of this stored anything.
        assert_eq!(reqwest::get(client.code_url(checksum)).await.unwrap().status(), 404);

        // The owner publishes; the same request again is a replay; a new one is accepted.
        let publish = RawPublish::new(app, &code, owner);
        let (status, _) = publish.send(&store).await;
        assert_eq!(status, 201);
        publish.refused(&store, 401, "replayed_request").await;
        let receipt = client.publish_code(app, Bytes::from(code.clone()), owner).await.unwrap();
        assert_eq!(
            (receipt.app, receipt.checksum, receipt.size),
            (app, checksum, code.len() as u64)
        );
        assert_eq!(receipt.path, ResultStoreClient::code_path(checksum));

        // Anyone downloads it, at the URL the app is registered with.
        let served = reqwest::get(client.code_url(checksum)).await.unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.headers()["content-type"], "application/octet-stream");
        assert!(served.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        assert_eq!(served.bytes().await.unwrap().as_ref(), code.as_slice());
        // Ownership is read at each publication: after a transfer, the former owner is refused
        // and the new one accepted.
        let moved_code = b"moved app".to_vec();
        let moved_checksum = auth::sha256(&moved_code);
        let moved = net
            .create_app_at(owner, "moved", &client.code_url(moved_checksum), moved_checksum)
            .await;
        let chain = net.client(owner);
        let registry = poco_contracts::bindings::AppRegistry::new(
            net.deployment().app_registry,
            chain.provider().clone(),
        );
        let token = alloy::primitives::U256::from_be_slice(moved.as_slice());
        chain
            .send(registry.transferFrom(owner.address(), stranger.address(), token))
            .await
            .expect("the transfer is mined");
        let error =
            client.publish_code(moved, Bytes::from(moved_code.clone()), owner).await.unwrap_err();
        assert_eq!(refused_code(&error), (403, "not_app_owner"));
        client.publish_code(moved, Bytes::from(moved_code), stranger).await.unwrap();

        let head = reqwest::Client::new().head(client.code_url(checksum)).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"], code.len().to_string().as_str());
        store.stop().await;
    }))
    .await;
}
