//! The OpenAPI 3.1 document, written from the route table (no generator crate: the table is the
//! single source of the routes).

use axum::{Json, http::StatusCode};
use serde_json::{Map, Value, json};

use crate::routes::{BASE, ROUTES};

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

fn query_parameters(path: &str) -> Vec<Value> {
    let names: &[&str] = match path {
        "/clients" => &[
            "clientid",
            "client_id",
            "username",
            "conn_state",
            "clean_start",
            "proto_name",
            "proto_ver",
            "_like_clientid",
            "_like_username",
            "ip_address",
        ],
        "/subscriptions" => &["clientid", "topic", "qos", "share", "_match_topic"],
        _ => &[],
    };
    names
        .iter()
        .map(|name| json!({"name": name, "in": "query", "required": false, "schema": {"type": "string"}}))
        .collect()
}

fn schemas() -> Value {
    let publish = json!({
        "type": "object",
        "properties": {
            "topic": {"type": "string"}, "topics": {"type": "string", "description": "comma-separated"},
            "payload": {"type": "string"}, "clientid": {"type": "string", "default": "NanoMQ-HTTP-Client"},
            "qos": {"type": "integer", "minimum": 0, "maximum": 2}, "retain": {"type": "boolean"},
            "encoding": {"enum": ["plain", "base64"]}, "decoding": {"enum": ["plain", "base64"]},
            "properties": {"type": "object"}
        },
        "required": ["payload"]
    });
    let subscribe = json!({
        "type": "object",
        "properties": {
            "topic": {"type": "string"}, "topics": {"type": "string"}, "clientid": {"type": "string"},
            "qos": {"type": "integer", "minimum": 0, "maximum": 2}, "nl": {"type": "boolean"},
            "rap": {"type": "boolean"}, "rh": {"type": "integer", "minimum": 0, "maximum": 2}
        },
        "required": ["clientid"]
    });
    let unsubscribe = json!({
        "type": "object",
        "properties": {"topic": {"type": "string"}, "topics": {"type": "string"}, "clientid": {"type": "string"}},
        "required": ["clientid"]
    });
    json!({
        "Publish": publish,
        "PublishBatch": {"type": "array", "items": {"$ref": "#/components/schemas/Publish"}},
        "Subscribe": subscribe,
        "SubscribeBatch": {"type": "array", "items": {"$ref": "#/components/schemas/Subscribe"}},
        "Unsubscribe": unsubscribe,
        "UnsubscribeBatch": {"type": "array", "items": {"$ref": "#/components/schemas/Unsubscribe"}},
        "Reload": {"type": "object", "properties": {"data": {"type": "object", "properties": {
            "property_size": {"type": "integer"}, "max_packet_size": {"type": "integer", "description": "KB"},
            "client_max_packet_size": {"type": "integer", "description": "KB"}, "msq_len": {"type": "integer"},
            "qos_duration": {"type": "integer", "description": "seconds"}, "keepalive_backoff": {"type": "number"},
            "allow_anonymous": {"type": "boolean"}}}}, "required": ["data"]},
        "ConfigurationData": {"type": "object", "properties": {"data": {"type": "object",
            "description": "sections by name (mqtt, log, auth, webhook, webhooks, sys), in NanoMQ's key names"}},
            "required": ["data"]},
        "Hocon": {"type": "string", "description": "a HOCON document"},
        "Redrive": {"type": "object", "properties": {
            "target": {"type": "string", "description": "webhook (the webhook {} block) or a webhooks.<name> name"},
            "offsets": {"type": "array", "items": {"type": "integer"}, "description": "absent or empty: all of the target's"}},
            "required": ["target"]},
        "Error": {"type": "object", "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}
    })
}

/// The document.
pub fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in ROUTES {
        let mut operation = json!({
            "operationId": route.name,
            "summary": route.descr,
            "responses": {
                "200": {"description": "success: {\"code\":0,...}"},
                "400": {"description": "bad parameter (108) or body (109, 117)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "missing (104) or wrong (103) credentials, expired token (116)"}
            }
        });
        let mut params = parameters(route.path);
        params.extend(query_parameters(route.path));
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        if let Some(schema) = route.body {
            let media = if schema == "Hocon" { "text/plain" } else { "application/json" };
            operation["requestBody"] = json!({"required": true, "content": {media: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let item = paths.entry(format!("{BASE}{}", route.path)).or_insert_with(|| json!({}));
        item[route.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Tern admin API (NanoMQ /api/v4 compatible)", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256, iss = public key file name)"}
            }
        },
        "security": [{"basic": []}, {"jwt": []}]
    })
}

/// `GET /openapi.json`.
pub async fn document() -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(build()))
}
