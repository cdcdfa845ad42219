//! The OpenAPI 3 document of the API, served at `/openapi.json`. Written by hand, next to the
//! handlers it describes; the tests check that every route is in it and that it parses.

use serde_json::{Value, json};

use crate::model::{KINDS, kind_name};

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": reference("Error") } }
    })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": reference(schema) } }
    })
}

fn query(name: &str, schema: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": reference(schema),
            "description": description })
}

fn required_query(name: &str, schema: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": true, "schema": reference(schema),
            "description": description })
}

fn flag(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": { "type": "boolean" },
            "description": description })
}

fn path(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": reference("Bytes32"),
            "description": description })
}

fn restriction(role: &str) -> Vec<Value> {
    vec![
        json!({ "name": role, "in": "query", "required": false,
            "schema": { "oneOf": [reference("Address"), { "type": "string", "enum": ["any"] }] },
            "description": format!("Orders allowed for this {role}: restricted to it or unrestricted. \
                Absent: unrestricted orders only; `any`: no filter.") }),
        flag(
            &format!("{role}Strict"),
            &format!(
                "With `{role}`: only orders restricted to exactly it (ignored without `{role}`)."
            ),
        ),
    ]
}

fn common_book_params() -> Vec<Value> {
    vec![
        query("owner", "Address", "The signer (the asset's owner, or the requester)."),
        query("minTag", "Tag", "Bits that must be set."),
        query("maxTag", "Tag", "Bits that may be set: orders with any other bit are left out."),
        query("minVolume", "Uint256", "Lowest remaining volume."),
        query("cursor", "OrderCursor", "The `nextCursor` of the previous page."),
        json!({ "name": "limit", "in": "query", "required": false,
            "schema": { "type": "integer", "minimum": 1, "maximum": 1000 },
            "description": "Page size (default 20, at most the configured maximum, 1000 by default)." }),
    ]
}

fn book_params(kind: &str) -> Vec<Value> {
    let mut params = match kind {
        "app" => {
            let mut p = vec![query("app", "Address", "The app.")];
            p.extend(restriction("dataset"));
            p.extend(restriction("workerpool"));
            p.extend(restriction("requester"));
            p
        }
        "dataset" => {
            let mut p = vec![query("dataset", "Address", "The dataset.")];
            p.extend(restriction("app"));
            p.extend(restriction("workerpool"));
            p.extend(restriction("requester"));
            p
        }
        "workerpool" => {
            let mut p = vec![
                query("workerpool", "Address", "The workerpool."),
                query("category", "SmallInt", "The category."),
                query("minTrust", "SmallInt", "Lowest trust offered."),
            ];
            p.extend(restriction("app"));
            p.extend(restriction("dataset"));
            p.extend(restriction("requester"));
            p
        }
        _ => {
            let mut p = vec![
                query("app", "Address", "The app wanted."),
                query("dataset", "Address", "The dataset wanted (zero: none)."),
                query("requester", "Address", "The requester."),
                query("category", "SmallInt", "The category."),
                query("maxTrust", "SmallInt", "Highest trust asked."),
            ];
            p.extend(restriction("workerpool"));
            p
        }
    };
    params.extend(common_book_params());
    params
}

fn order_paths(paths: &mut serde_json::Map<String, Value>) {
    for kind in KINDS {
        let name = kind_name(kind);
        let schema = format!("Signed{}Order", capitalized(name));
        let sort = if name == "request" {
            "by workerpoolmaxprice descending"
        } else {
            "by price ascending"
        };
        paths.insert(
            format!("/{name}orders"),
            json!({
                "get": {
                    "operationId": format!("list{}Orders", capitalized(name)),
                    "summary": format!("Open {name} orders, {sort}, then publication time, then hash."),
                    "parameters": book_params(name),
                    "responses": {
                        "200": ok("A page of orders.", "OrderPage"),
                        "400": error("An unknown or malformed parameter."),
                        "429": error("Rate limited."),
                        "default": error("Any other failure.")
                    }
                },
                "post": {
                    "operationId": format!("publish{}Order", capitalized(name)),
                    "summary": format!("Publishes a signed {name} order."),
                    "description": "The order is checked: schema, EIP-712 signature by the asset's \
                        current owner or the requester (ECDSA, ERC-1271 or presigned), registered \
                        asset, volume left on-chain, stake coverage (workerpool and request \
                        orders) and the per-wallet open-order cap. Publishing an order already \
                        known returns it with 200; a dead or unpublished one is checked again and \
                        reopened (201).",
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": reference(&schema) } }
                    },
                    "responses": {
                        "200": ok("The order was already published: nothing changed.", "OrderRecord"),
                        "201": ok("Published.", "OrderRecord"),
                        "400": error("The body is not JSON."),
                        "409": error("No volume left, the wallet's open-order cap, or the market not yet at the asset's block."),
                        "413": error("The body is too large."),
                        "422": error("Not an order of this kind, a value no match accepts, a bad signature, an unregistered asset, a signer that is not the owner, or not enough stake."),
                        "429": error("Rate limited."),
                        "default": error("Any other failure.")
                    }
                }
            }),
        );
        paths.insert(
            format!("/{name}orders/{{orderHash}}"),
            json!({
                "get": {
                    "operationId": format!("get{}Order", capitalized(name)),
                    "summary": format!("One {name} order, whatever its status."),
                    "parameters": [path("orderHash", "The order hash (EIP-712 digest).")],
                    "responses": {
                        "200": ok("The order.", "OrderRecord"),
                        "400": error("A malformed hash."),
                        "404": error("No such order."),
                        "default": error("Any other failure.")
                    }
                }
            }),
        );
        paths.insert(
            format!("/{name}orders/{{orderHash}}/unpublish"),
            json!({
                "post": {
                    "operationId": format!("unpublish{}Order", capitalized(name)),
                    "summary": format!("Takes an open {name} order out of the book."),
                    "description": "Authenticated by the owner's EIP-712 signature of \
                        `UnpublishOrder(bytes32 orderHash,uint256 expiry,bytes32 nonce)` under the \
                        domain {name: \"poco-market\", version: \"1\", chainId, verifyingContract: \
                        the Poco contract}. Each authorization works once and only until its expiry.",
                    "parameters": [path("orderHash", "The order hash.")],
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": reference("Unpublish") } }
                    },
                    "responses": {
                        "200": ok("Unpublished.", "OrderRecord"),
                        "400": error("A malformed hash or body."),
                        "401": error("The authorization is expired or expires too late."),
                        "403": error("Not signed by the order's owner."),
                        "404": error("No such order."),
                        "409": error("The authorization was already used, or the order is not open."),
                        "413": error("The body is too large."),
                        "422": error("The body is not an unpublish request."),
                        "429": error("Rate limited."),
                        "default": error("Any other failure.")
                    }
                }
            }),
        );
    }
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// An order's schema; `answer` for the form the market writes (checksummed addresses, which
/// the input pattern does not describe).
fn order_schema(fields: &[(&str, &str, &str)], answer: bool) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = vec![];
    for (name, schema, description) in fields {
        let schema = match *schema {
            "Address" if answer => "AnyAddress",
            "Volume" | "Price" if answer => "Uint256",
            other => other,
        };
        let mut property = reference(schema);
        if !description.is_empty() {
            property = json!({ "allOf": [reference(schema)], "description": description });
        }
        properties.insert((*name).to_owned(), property);
        required.push(*name);
    }
    properties.insert("sign".into(), json!({ "allOf": [reference("Bytes")],
        "description": "65-byte or 64-byte ECDSA signature of the order hash, an ERC-1271 signature, or 0x when presigned on-chain." }));
    required.push("sign");
    json!({ "type": "object", "additionalProperties": false, "properties": properties, "required": required })
}

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    order_paths(&mut paths);
    paths.insert("/bestmatch".into(), json!({
        "get": {
            "operationId": "bestMatch",
            "summary": "The cheapest app, dataset and workerpool orders matchOrders accepts for a request.",
            "description": "Candidates are checked with the protocol's matching rules against the market's \
                mirror of the chain. When nothing matches, `found` is false and `explanation` says why.",
            "parameters": [
                required_query("app", "Address", "The app to run."),
                query("dataset", "Address", "The dataset to use."),
                query("workerpool", "Address", "Only this workerpool."),
                required_query("requester", "Address", "Who signs and pays."),
                query("beneficiary", "Address", "Who gets the results (default: the requester)."),
                required_query("category", "SmallInt", "The category."),
                query("trust", "SmallInt", "The trust wanted (default 0)."),
                query("tag", "Tag", "The features wanted."),
                required_query("appmaxprice", "Uint256", "Highest app price per task, nRLC."),
                query("datasetmaxprice", "Uint256", "Highest dataset price per task, nRLC (default 0)."),
                required_query("workerpoolmaxprice", "Uint256", "Highest workerpool price per task, nRLC."),
                query("volume", "Volume", "Tasks wanted (default 1): every order proposed has that much left.")
            ],
            "responses": {
                "200": ok("The best match, or why there is none.", "BestMatch"),
                "400": error("A missing, unknown or malformed parameter."),
                "429": error("Rate limited."),
                "default": error("Any other failure.")
            }
        }
    }));
    paths.insert(
        "/deals".into(),
        json!({
            "get": {
                "operationId": "listDeals",
                "summary": "Deals indexed from the chain, newest first.",
                "parameters": [
                    query("requester", "Address", "The requester."),
                    query("app", "Address", "The app."),
                    query("dataset", "Address", "The dataset."),
                    query("workerpool", "Address", "The workerpool."),
                    query("scheduler", "Address", "The workerpool's owner at match time."),
                    query("appOwner", "Address", "The app's owner at match time."),
                    query("datasetOwner", "Address", "The dataset's owner at match time."),
                    query("beneficiary", "Address", "The beneficiary."),
                    query("category", "SmallInt", "The category."),
                    query("cursor", "DealCursor", "The `nextCursor` of the previous page."),
                    json!({ "name": "limit", "in": "query", "required": false,
                        "schema": { "type": "integer", "minimum": 1, "maximum": 1000 },
                        "description": "Page size (default 20)." })
                ],
                "responses": {
                    "200": ok("A page of deals.", "DealPage"),
                    "400": error("An unknown or malformed parameter."),
                    "429": error("Rate limited."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert(
        "/deals/{dealId}".into(),
        json!({
            "get": {
                "operationId": "getDeal",
                "summary": "One deal.",
                "parameters": [path("dealId", "The deal id.")],
                "responses": {
                    "200": ok("The deal.", "DealRecord"),
                    "400": error("A malformed deal id."),
                    "404": error("No such deal."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert(
        "/deals/{dealId}/tasks".into(),
        json!({
            "get": {
                "operationId": "getDealTasks",
                "summary": "The tasks of a deal the market indexed, by index.",
                "description": format!(
                    "The first {} tasks of the deal, each with its id and index.",
                    crate::store::TASKS_INDEXED_PER_DEAL
                ),
                "parameters": [path("dealId", "The deal id.")],
                "responses": {
                    "200": ok("The deal's tasks.", "DealTasks"),
                    "400": error("A malformed deal id, or a query parameter."),
                    "404": error("No such deal."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert(
        "/tasks/{taskId}".into(),
        json!({
            "get": {
                "operationId": "getTask",
                "summary": "The deal of a task, and the task's index in it.",
                "description": format!(
                    "The market indexes the first {} tasks of each deal (by index), written \
                     with the deal: a later task of a larger deal, or a task of a deal indexed \
                     before the index existed, is answered 404 like an unknown one, and is \
                     found on the chain. The answer is a hint to check against the chain: the \
                     deal hashes to `viewDealHash(dealId)`, and the task id is \
                     `keccak256(dealId ‖ index)`.",
                    crate::store::TASKS_INDEXED_PER_DEAL
                ),
                "parameters": [path("taskId", "The task id.")],
                "responses": {
                    "200": ok("The task's deal and index.", "IndexedTask"),
                    "400": error("A malformed task id, or a query parameter."),
                    "404": error("No indexed deal holds this task."),
                    "429": error("Rate limited."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert(
        "/tasks/{taskId}/events".into(),
        json!({
            "get": {
                "operationId": "getTaskEvents",
                "summary": "What the chain said of a task: its lifecycle, in chain order.",
                "description": "Initialization, each contribution (worker and result hash), \
                    the consensus, the reveals, the finalization (result location) or the \
                    claim, and each contributor's outcome: `accurate_contribution` (stake back, \
                    reward paid, `value` the reward in nRLC), `faulty_contribution` (stake \
                    seized, score cut) or `silent_seat`. Indexed from the confirmed events the \
                    market follows; a reorganisation removes the events of the blocks it \
                    replaced. An empty list for a task the chain said nothing of yet.",
                "parameters": [path("taskId", "The task id.")],
                "responses": {
                    "200": ok("The task's events.", "TaskEvents"),
                    "400": error("A malformed task id, or a query parameter."),
                    "429": error("Rate limited."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert(
        "/accounts/{address}/events".into(),
        json!({
            "get": {
                "operationId": "getAccountEvents",
                "summary": "What the chain said of an account, newest first.",
                "description": "Its own movements (`deposit`, `withdraw`, `member_joined`, \
                    `member_left`, `member_expelled` with the penalty, `bond_released`) and the \
                    events of tasks that name it (a workerpool's `initialize`, a worker's \
                    `contribute`, `reveal`, `accurate_contribution` with its reward, \
                    `faulty_contribution`, `silent_seat`): a worker's score follows from its \
                    accurate and faulty contributions. A reorganisation removes the events of \
                    the blocks it replaced.",
                "parameters": [
                    path("address", "The account."),
                    json!({ "name": "before", "in": "query", "required": false,
                        "schema": { "type": "string", "pattern": "^[0-9]+:[0-9]+$" },
                        "description": "Events older than this `BLOCK:LOG_INDEX` (a previous page's `nextBefore`)." }),
                    json!({ "name": "limit", "in": "query", "required": false,
                        "schema": { "type": "integer", "minimum": 1, "maximum": 1000 },
                        "description": "Page size (default 20)." })
                ],
                "responses": {
                    "200": ok("The account's events.", "AccountEvents"),
                    "400": error("A malformed address, or a query parameter."),
                    "429": error("Rate limited."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert(
        "/workerpools/{address}/workers".into(),
        json!({
            "get": {
                "operationId": "getPoolWorkers",
                "summary": "The workers of a workerpool, most accurate first.",
                "description": "Every account that contributed to a task of the pool's indexed \
                    deals: its contributions, how many were proved right (`accurate`) or wrong \
                    (`faulty`, stake seized), and its latest score the market read; the pool's \
                    members (bonded for its committees) with where each membership stands and \
                    what remains of its bond; how many of its tasks completed or failed.",
                "parameters": [path("address", "The workerpool.")],
                "responses": {
                    "200": ok("The pool's workers.", "PoolWorkers"),
                    "400": error("A malformed address, or a query parameter."),
                    "429": error("Rate limited."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert(
        "/accounts/{address}".into(),
        json!({
            "get": {
                "operationId": "getAccountFunds",
                "summary": "An account's free and frozen balances.",
                "description": "Read by the market from the chain (`viewAccount`) at its \
                    confirmed head, as deep as the events it follows: a deposit in a block a \
                    reorganisation may still replace does not show yet. `frozen` is what the \
                    protocol holds: the price of a requester's unfinished tasks, a scheduler's \
                    and a worker's stakes, a member's bond.",
                "parameters": [path("address", "The account.")],
                "responses": {
                    "200": ok("The account's funds.", "AccountFunds"),
                    "400": error("A malformed address, or a query parameter."),
                    "429": error("Rate limited."),
                    "default": error("Any other failure, the chain node's included.")
                }
            }
        }),
    );
    paths.insert(
        "/assets/{address}".into(),
        json!({
            "get": {
                "operationId": "getAsset",
                "summary": "What an address is in the registries: an app, a dataset or a \
                    workerpool, with its owner and record.",
                "description": "Read by the market from the registries at its confirmed head. \
                    Byte strings the owner chose (`multiaddr`, `mrenclave`) are given as text \
                    when they are UTF-8, as `0x` hexadecimal otherwise; a reader shows them as \
                    text, never as markup.",
                "parameters": [path("address", "The asset.")],
                "responses": {
                    "200": ok("The asset.", "AssetView"),
                    "400": error("A malformed address, or a query parameter."),
                    "404": error("No registry knows this address."),
                    "429": error("Rate limited."),
                    "default": error("Any other failure, the chain node's included.")
                }
            }
        }),
    );
    paths.insert(
        "/accounts/{address}/scores".into(),
        json!({
            "get": {
                "operationId": "getScores",
                "summary": "A worker's score over time, newest first.",
                "description": "Its score as the chain holds it (`viewScore`) after each block \
                    whose events proved it right or wrong. A reorganisation removes the scores \
                    of the blocks it replaced.",
                "parameters": [
                    path("address", "The worker."),
                    json!({ "name": "limit", "in": "query", "required": false,
                        "schema": { "type": "integer", "minimum": 1, "maximum": 1000 },
                        "description": "Page size (default 20)." })
                ],
                "responses": {
                    "200": ok("The worker's scores.", "Scores"),
                    "400": error("A malformed address, or a query parameter."),
                    "429": error("Rate limited."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert(
        "/categories".into(),
        json!({
            "get": {
                "operationId": "listCategories",
                "summary": "The categories, with their time reference in seconds.",
                "responses": {
                    "200": { "description": "The categories.", "content": { "application/json": {
                        "schema": { "type": "array", "items": reference("Category") } } } },
                    "400": error("A query parameter was given."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert("/health".into(), json!({
        "get": {
            "operationId": "health",
            "summary": "Whether the service and its database answer, and where the follower is.",
            "responses": {
                "200": ok("Healthy.", "Health"),
                "400": error("A query parameter was given."),
                "default": error("Unhealthy.")
            }
        }
    }));
    paths.insert("/metrics".into(), json!({
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics: open orders per kind, follower checkpoint and lag, request counts and latency.",
            "responses": {
                "200": { "description": "Prometheus text format.",
                    "content": { "text/plain": { "schema": { "type": "string" } } } },
                "400": error("A query parameter was given."),
                "default": error("Any other failure.")
            }
        }
    }));
    paths.insert(
        "/openapi.json".into(),
        json!({
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": { "description": "The OpenAPI document.",
                        "content": { "application/json": { "schema": { "type": "object" } } } },
                    "400": error("A query parameter was given."),
                    "default": error("Any other failure.")
                }
            }
        }),
    );
    paths.insert("/ws".into(), json!({
        "get": {
            "operationId": "events",
            "summary": "WebSocket stream of order and deal events.",
            "description": "Each message is a JSON `Event`. After a burst the server may skip events and \
                send `{\"type\":\"lagged\",\"missed\":n}`.",
            "parameters": [
                { "name": "kind", "in": "query", "required": false,
                  "schema": { "type": "string", "pattern": "^(app|dataset|workerpool|request|deal)(,(app|dataset|workerpool|request|deal))*$" },
                  "description": "Comma-separated kinds to receive (app, dataset, workerpool, request, deal)." },
                query("asset", "Address", "Only events of this app, dataset or workerpool."),
                query("owner", "Address", "Only events of orders signed by, or deals involving, this address.")
            ],
            "responses": {
                "101": { "description": "Switching to the WebSocket protocol; messages are `Event`s.",
                    "content": { "application/json": { "schema": reference("Event") } } },
                "400": error("An unknown or malformed parameter."),
                "426": error("Not a WebSocket handshake."),
                "429": error("Too many clients or requests."),
                "default": error("Any other failure.")
            }
        }
    }));

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "poco market",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The poco orderbook: signed orders published, found and kept true to the chain. \
                Amounts are decimal strings of nRLC (uint256 fields also accept JSON integers and 0x-hex); \
                addresses are 0x-hex (EIP-55 checksummed in answers); errors are `{\"error\", \"code\"}`."
        },
        "paths": paths,
        "components": { "schemas": schemas() }
    })
}

fn schemas() -> Value {
    let mut schemas = order_schemas(false);
    let answers = order_schemas(true);
    for (name, schema) in answers {
        schemas.insert(name.replacen("Signed", "Answered", 1), schema);
    }
    let mut all = other_schemas();
    let objects = all.as_object_mut().expect("an object");
    objects.extend(schemas);
    if let Value::Object(index) = index_schemas() {
        objects.extend(index);
    }
    all
}

fn order_schemas(answer: bool) -> serde_json::Map<String, Value> {
    let app = order_schema(
        &[
            ("app", "Address", "The app; must be registered."),
            ("appprice", "Price", "Price per task, nRLC."),
            ("volume", "Volume", "Tasks the order may serve."),
            ("tag", "Bytes32", "Features the app needs."),
            ("datasetrestrict", "Address", ""),
            ("workerpoolrestrict", "Address", ""),
            ("requesterrestrict", "Address", ""),
            ("salt", "Bytes32", ""),
        ],
        answer,
    );
    let dataset = order_schema(
        &[
            ("dataset", "Address", "The dataset; must be registered."),
            ("datasetprice", "Price", "Price per use, nRLC."),
            ("volume", "Volume", ""),
            ("tag", "Bytes32", ""),
            ("apprestrict", "Address", ""),
            ("workerpoolrestrict", "Address", ""),
            ("requesterrestrict", "Address", ""),
            ("salt", "Bytes32", ""),
        ],
        answer,
    );
    let workerpool = order_schema(
        &[
            ("workerpool", "Address", "The workerpool; must be registered."),
            ("workerpoolprice", "Price", "Price per task, nRLC."),
            ("volume", "Volume", ""),
            ("tag", "Bytes32", "Features offered."),
            ("category", "Uint256", ""),
            ("trust", "Uint256", "Highest trust offered."),
            ("apprestrict", "Address", ""),
            ("datasetrestrict", "Address", ""),
            ("requesterrestrict", "Address", ""),
            ("salt", "Bytes32", ""),
        ],
        answer,
    );
    let mut request = order_schema(
        &[
            ("app", "Address", ""),
            ("appmaxprice", "Uint256", ""),
            ("dataset", "Address", ""),
            ("datasetmaxprice", "Uint256", ""),
            ("workerpool", "Address", "A workerpool restriction (zero: any)."),
            ("workerpoolmaxprice", "Uint256", ""),
            ("requester", "Address", "The signer and payer."),
            ("volume", "Volume", ""),
            ("tag", "Bytes32", ""),
            ("category", "Uint256", ""),
            ("trust", "SmallInt", "At most 2^64 - 1."),
            ("beneficiary", "Address", ""),
            ("callback", "Address", ""),
            ("params", "Address", ""),
            ("salt", "Bytes32", ""),
        ],
        answer,
    );
    request["properties"]["params"] =
        json!({ "type": "string", "description": "The app's arguments." });
    let mut schemas = serde_json::Map::new();
    schemas.insert("SignedAppOrder".into(), app);
    schemas.insert("SignedDatasetOrder".into(), dataset);
    schemas.insert("SignedWorkerpoolOrder".into(), workerpool);
    schemas.insert("SignedRequestOrder".into(), request);
    schemas
}

/// The schemas of what the market indexes for the explorer: tasks' events, accounts'
/// histories, workers' scores, pools' workers.
fn index_schemas() -> Value {
    let uint =
        |description: &str| json!({ "allOf": [reference("Uint256")], "description": description });
    json!({
        "PoolWorkers": {
            "type": "object", "required": ["workerpool", "workers", "members", "tasks"],
            "properties": {
                "workerpool": reference("Address"),
                "workers": { "type": "array", "items": {
                    "type": "object", "required": ["worker", "contributions", "accurate", "faulty"],
                    "properties": {
                        "worker": reference("Address"),
                        "contributions": { "type": "integer", "minimum": 0 },
                        "accurate": { "type": "integer", "minimum": 0 },
                        "faulty": { "type": "integer", "minimum": 0 },
                        "score": { "type": "integer", "minimum": 0 }
                    }
                } },
                "members": { "type": "array", "items": {
                    "type": "object", "required": ["worker", "status", "since", "bond"],
                    "properties": {
                        "worker": reference("Address"),
                        "status": { "type": "string", "enum": ["active", "left", "expelled", "released"] },
                        "since": { "type": "integer", "minimum": 0, "description": "The block of the last change." },
                        "bond": uint("What remains of its bond, nRLC.")
                    }
                } },
                "tasks": {
                    "type": "object", "required": ["completed", "failed"],
                    "properties": {
                        "completed": { "type": "integer", "minimum": 0 },
                        "failed": { "type": "integer", "minimum": 0, "description": "Claimed past their final deadline." }
                    }
                }
            }
        },
        "AccountFunds": {
            "type": "object", "required": ["account", "block", "balance", "frozen"],
            "properties": {
                "account": reference("Address"),
                "block": { "type": "integer", "minimum": 0, "description": "The block read." },
                "balance": uint("The free balance, nRLC."),
                "frozen": uint("What the protocol holds, nRLC.")
            }
        },
        "AssetView": {
            "type": "object", "required": ["address", "block", "owner", "kind"],
            "properties": {
                "address": reference("Address"),
                "block": { "type": "integer", "minimum": 0, "description": "The block read." },
                "owner": reference("Address"),
                "kind": { "type": "string", "enum": ["app", "dataset", "workerpool"] },
                "name": { "type": "string", "description": "An app's or a dataset's name." },
                "appType": { "type": "string", "description": "An app's execution format." },
                "multiaddr": { "type": "string", "description": "Where workers fetch an app or a dataset." },
                "checksum": reference("Bytes32"),
                "mrenclave": { "type": "string", "description": "An app's enclave metadata (empty: standard)." },
                "description": { "type": "string", "description": "A workerpool's description." },
                "workerStakeRatio": { "type": "integer", "minimum": 0, "maximum": 100 },
                "schedulerRewardRatio": { "type": "integer", "minimum": 0, "maximum": 100 }
            }
        },
        "Scores": {
            "type": "object", "required": ["account", "scores"],
            "properties": {
                "account": reference("Address"),
                "scores": { "type": "array", "items": {
                    "type": "object", "required": ["block", "score"],
                    "properties": {
                        "block": { "type": "integer", "minimum": 0 },
                        "score": { "type": "integer", "minimum": 0 }
                    }
                } }
            }
        },
        "AccountEvents": {
            "type": "object", "required": ["account", "events"],
            "properties": {
                "account": reference("Address"),
                "events": { "type": "array", "items": reference("AccountEvent") },
                "nextBefore": { "type": "string", "description": "The `before` of the next page, when there may be one." }
            }
        },
        "AccountEvent": {
            "type": "object", "required": ["kind", "block", "transaction", "logIndex"],
            "properties": {
                "kind": { "type": "string" },
                "block": { "type": "integer", "minimum": 0 },
                "transaction": reference("Bytes32"),
                "logIndex": { "type": "integer", "minimum": 0 },
                "taskId": reference("Bytes32"),
                "workerpool": reference("Address"),
                "value": { "type": "string", "description": "An amount in nRLC (decimal), or the hash a task's event carries." }
            }
        },
        "DealTasks": {
            "type": "object", "required": ["dealId", "tasks"],
            "properties": {
                "dealId": reference("Bytes32"),
                "tasks": { "type": "array", "items": {
                    "type": "object", "required": ["taskId", "index"],
                    "properties": {
                        "taskId": reference("Bytes32"),
                        "index": uint("The task's index in its deal.")
                    }
                } }
            }
        },
        "TaskEvents": {
            "type": "object", "required": ["taskId", "events"],
            "properties": {
                "taskId": reference("Bytes32"),
                "events": { "type": "array", "items": reference("TaskEvent") }
            }
        },
        "TaskEvent": {
            "type": "object", "required": ["kind", "block", "transaction", "logIndex"],
            "properties": {
                "kind": {
                    "type": "string",
                    "enum": ["initialize", "contribute", "consensus", "reveal", "reopen",
                             "finalize", "claimed", "accurate_contribution",
                             "faulty_contribution", "silent_seat"]
                },
                "block": { "type": "integer", "minimum": 0 },
                "transaction": reference("Bytes32"),
                "logIndex": { "type": "integer", "minimum": 0 },
                "account": reference("Address"),
                "value": { "type": "string", "description": "A hash (result hash, consensus, digest), or the reward in nRLC (decimal)." },
                "results": { "type": "string", "description": "The result location of a finalize (text, or hex when not UTF-8)." }
            }
        }
    })
}

fn other_schemas() -> Value {
    let deal_fields = [
        ("requestHash", "Bytes32"),
        ("app", "Address"),
        ("appOwner", "Address"),
        ("appPrice", "Uint256"),
        ("dataset", "Address"),
        ("datasetOwner", "Address"),
        ("datasetPrice", "Uint256"),
        ("workerpool", "Address"),
        ("scheduler", "Address"),
        ("workerpoolPrice", "Uint256"),
        ("requester", "Address"),
        ("sponsor", "Address"),
        ("beneficiary", "Address"),
        ("callback", "Address"),
        ("tag", "Bytes32"),
        ("category", "Uint256"),
        ("trust", "Uint256"),
        ("startTime", "Uint256"),
        ("timeref", "Uint256"),
        ("botFirst", "Uint256"),
        ("botSize", "Uint256"),
        ("workerStake", "Uint256"),
        ("schedulerRewardRatio", "Uint256"),
        ("paramsHash", "Bytes32"),
    ];
    let mut deal_properties = serde_json::Map::new();
    for (name, schema) in deal_fields {
        let schema = if schema == "Address" { "AnyAddress" } else { schema };
        deal_properties.insert(name.into(), reference(schema));
    }
    let deal_required: Vec<&str> = deal_fields.iter().map(|(n, _)| *n).collect();
    let uint =
        |description: &str| json!({ "allOf": [reference("Uint256")], "description": description });
    json!({
        "Address": { "type": "string", "pattern": "^0x([0-9a-f]{40}|[0-9A-F]{40})$",
            "description": "An address in lowercase or uppercase hexadecimal; mixed case is accepted when it is a valid EIP-55 checksum." },
        "AnyAddress": { "type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "description": "An address, EIP-55 checksummed." },
        "Bytes32": { "type": "string", "pattern": "^0x[0-9a-fA-F]{64}$" },
        "Bytes": { "type": "string", "pattern": "^0x([0-9a-fA-F]{2})*$" },
        "Uint256": { "type": "string", "pattern": "^[0-9]{1,77}$", "description": "A decimal integer below 2^256 (JSON integers and 0x-hex are accepted in orders too)." },
        "Volume": { "type": "string", "pattern": "^0*[1-9][0-9]{0,75}$", "description": "A positive decimal integer below 2^256." },
        "Price": { "type": "string", "pattern": "^[0-9]{1,28}$", "description": "nRLC, a decimal integer below 2^96 (matchOrders refuses more)." },
        "SmallInt": { "type": "string", "pattern": "^[0-9]{1,19}$", "description": "A decimal integer below 2^64." },
        "Tag": { "type": "string",
            "pattern": "^(none|(tee|scone|gramine|tdx|gpu|0x[0-9a-fA-F]{1,64})(,(tee|scone|gramine|tdx|gpu|0x[0-9a-fA-F]{1,64}))*)?$",
            "description": "A bytes32 mask in hexadecimal, or names (tee, scone, gramine, tdx, gpu) and 0x masks separated by commas." },
        "OrderCursor": { "type": "string", "pattern": "^6f[0-9a-f]{144}$", "description": "An opaque cursor returned as nextCursor." },
        "DealCursor": { "type": "string", "pattern": "^64[0-7][0-9a-f]{15}[0-7][0-9a-f]{15}$", "description": "An opaque cursor returned as nextCursor." },
        "Error": {
            "type": "object", "required": ["error", "code"], "additionalProperties": false,
            "properties": {
                "error": { "type": "string", "description": "What went wrong and what to do." },
                "code": { "type": "string", "description": "A stable machine code.", "enum": [
                    "malformed_json", "invalid_order", "invalid_value", "invalid_query", "invalid_path",
                    "body_too_large", "not_found", "invalid_signature", "signer_not_owner",
                    "asset_not_registered", "chain_sync_pending", "no_volume_left", "insufficient_stake",
                    "open_order_cap", "rate_limited", "authorization_expired", "authorization_replayed",
                    "not_order_owner", "order_not_open", "method_not_allowed", "websocket_required",
                    "too_many_connections", "timeout", "chain_unavailable", "internal"] }
            }
        },
        "OrderRecord": {
            "type": "object",
            "required": ["orderHash", "kind", "status", "remaining", "owner", "signature", "publishedAt", "updatedAt", "order"],
            "properties": {
                "orderHash": reference("Bytes32"),
                "kind": { "type": "string", "enum": ["app", "dataset", "workerpool", "request"] },
                "status": { "type": "string", "enum": ["open", "filled", "cancelled", "dead", "unpublished"] },
                "remaining": uint("Volume not consumed on-chain."),
                "owner": reference("AnyAddress"),
                "signature": { "type": "string", "enum": ["eoa", "contract", "presigned"] },
                "publishedAt": { "type": "integer", "description": "Milliseconds since the Unix epoch." },
                "updatedAt": { "type": "integer", "description": "Milliseconds since the Unix epoch." },
                "reason": { "type": "string", "description": "Why the order is dead or cancelled." },
                "order": { "oneOf": [reference("AnsweredAppOrder"), reference("AnsweredDatasetOrder"),
                    reference("AnsweredWorkerpoolOrder"), reference("AnsweredRequestOrder")] }
            }
        },
        "OrderPage": {
            "type": "object", "required": ["orders", "count"],
            "properties": {
                "orders": { "type": "array", "items": reference("OrderRecord") },
                "count": { "type": "integer" },
                "nextCursor": reference("OrderCursor")
            }
        },
        "Deal": { "type": "object", "properties": deal_properties, "required": deal_required },
        "DealRecord": {
            "type": "object",
            "required": ["dealId", "deal", "params", "volume", "appHash", "datasetHash", "workerpoolHash", "requestHash", "block", "transaction", "logIndex"],
            "properties": {
                "dealId": reference("Bytes32"), "deal": reference("Deal"),
                "params": { "type": "string" }, "volume": reference("Uint256"),
                "appHash": reference("Bytes32"), "datasetHash": reference("Bytes32"),
                "workerpoolHash": reference("Bytes32"), "requestHash": reference("Bytes32"),
                "block": { "type": "integer" }, "transaction": reference("Bytes32"),
                "logIndex": { "type": "integer" }
            }
        },
        "DealPage": {
            "type": "object", "required": ["deals", "count"],
            "properties": {
                "deals": { "type": "array", "items": reference("DealRecord") },
                "count": { "type": "integer" },
                "nextCursor": reference("DealCursor")
            }
        },
        "IndexedTask": {
            "type": "object", "required": ["taskId", "index", "deal"],
            "properties": {
                "taskId": reference("Bytes32"),
                "index": uint("The task's index in its deal (from `deal.botFirst`)."),
                "deal": reference("DealRecord")
            }
        },
        "PriceBreakdown": {
            "type": "object",
            "required": ["app", "dataset", "workerpool", "perTask", "total", "schedulerStake"],
            "properties": {
                "app": reference("Uint256"), "dataset": reference("Uint256"),
                "workerpool": reference("Uint256"), "perTask": reference("Uint256"),
                "total": uint("What the requester pays for the deal's volume."),
                "schedulerStake": uint("What the scheduler stakes for the deal's volume.")
            }
        },
        "BestMatch": {
            "type": "object", "required": ["found", "explanation"],
            "properties": {
                "found": { "type": "boolean" },
                "apporder": reference("OrderRecord"),
                "datasetorder": reference("OrderRecord"),
                "workerpoolorder": reference("OrderRecord"),
                "requestorder": { "type": "object", "description": "The unsigned request order to sign (set salt and params first)." },
                "volume": uint("Tasks of the deal."),
                "price": reference("PriceBreakdown"),
                "explanation": { "type": "array", "items": { "type": "string" } }
            }
        },
        "Unpublish": {
            "type": "object", "additionalProperties": false, "required": ["expiry", "nonce", "sign"],
            "properties": {
                "expiry": { "type": "integer", "minimum": 0, "maximum": 9007199254740991_u64, "description": "Unix seconds; at most one hour ahead by default." },
                "nonce": reference("Bytes32"),
                "sign": reference("Bytes")
            }
        },
        "Category": {
            "type": "object", "required": ["id", "timeref"],
            "properties": { "id": { "type": "integer" }, "timeref": { "type": "integer" } }
        },
        "Health": {
            "type": "object", "required": ["status", "backend", "leader", "checkpoint", "confirmedHead"],
            "properties": {
                "status": { "type": "string" }, "backend": { "type": "string", "enum": ["sqlite", "postgres"] },
                "leader": { "type": "boolean" }, "checkpoint": { "type": "integer" },
                "confirmedHead": { "type": "integer" }
            }
        },
        "Event": {
            "type": "object", "required": ["type", "event"],
            "properties": {
                "type": { "type": "string", "enum": ["order", "deal", "lagged"] },
                "event": { "type": "string", "enum": ["published", "updated", "filled", "cancelled", "dead", "unpublished", "deal_created", "deal_removed"] },
                "order": reference("OrderRecord"),
                "deal": reference("DealRecord"),
                "missed": { "type": "integer" }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let text = document.to_string();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            assert!(schemas.contains_key(&name), "missing schema {name}");
        }
    }

    #[test]
    fn every_operation_documents_its_errors() {
        let document = document();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(operation["operationId"].is_string(), "{method} {path}");
                assert!(operation["responses"]["default"].is_object(), "{method} {path}");
            }
        }
    }
}
