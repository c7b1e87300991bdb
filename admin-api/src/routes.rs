//! The route table: one list drives the router, `GET /api/v4` and the OpenAPI document, so the
//! three cannot disagree.

use axum::{
    Router,
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodRouter, delete, get, post},
};
use serde::Serialize;

use crate::{
    AppState, auth, clients,
    clients::Envelope,
    configuration,
    error::{ApiError, Code},
    info, mqtt, openapi, webhooks,
};

/// The base path.
pub const BASE: &str = "/api/v4";

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path under [`BASE`], with `{name}` parameters.
    pub path: &'static str,
    /// Short name.
    pub name: &'static str,
    /// What it does.
    pub descr: &'static str,
    /// The JSON body it takes, by OpenAPI schema name (`None`: no body).
    pub body: Option<&'static str>,
    /// Builds the handler.
    handler: fn() -> MethodRouter<AppState>,
}

macro_rules! route {
    ($method:literal, $path:literal, $name:literal, $descr:literal, $body:expr, $handler:expr) => {
        Route {
            method: $method,
            path: $path,
            name: $name,
            descr: $descr,
            body: $body,
            handler: || $handler,
        }
    };
}

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    route!("GET", "", "list_endpoints", "List the API's endpoints", None, get(endpoints)),
    route!("GET", "/brokers", "list_brokers", "Broker node information", None, get(info::brokers)),
    route!(
        "GET",
        "/nodes",
        "list_nodes",
        "Node status and connection counts",
        None,
        get(info::nodes)
    ),
    route!(
        "GET",
        "/clients",
        "list_clients",
        "Clients on every node, filtered",
        None,
        get(clients::clients)
    ),
    route!("GET", "/clients/{clientid}", "get_client", "One client", None, get(clients::client)),
    route!(
        "DELETE",
        "/clients/{clientid}",
        "kick_client",
        "Disconnect a client on the node holding it",
        None,
        delete(clients::kick)
    ),
    route!(
        "GET",
        "/clients/username/{username}",
        "get_clients_by_username",
        "Clients with a username",
        None,
        get(clients::clients_by_username)
    ),
    route!(
        "GET",
        "/subscriptions",
        "list_subscriptions",
        "Subscriptions on every node, filtered",
        None,
        get(clients::subscriptions)
    ),
    route!(
        "GET",
        "/subscriptions/{clientid}",
        "get_client_subscriptions",
        "One client's subscriptions",
        None,
        get(clients::client_subscriptions)
    ),
    route!(
        "GET",
        "/topic-tree",
        "topic_tree",
        "The subscription trie, merged over nodes",
        None,
        get(info::topic_tree)
    ),
    route!(
        "GET",
        "/metrics",
        "metrics",
        "Counters and gauges of every node",
        None,
        get(info::metrics)
    ),
    route!(
        "GET",
        "/prometheus",
        "prometheus",
        "Prometheus metrics aggregated over nodes",
        None,
        get(info::prometheus)
    ),
    route!(
        "POST",
        "/mqtt/publish",
        "mqtt_publish",
        "Publish a message on every node",
        Some("Publish"),
        post(mqtt::publish)
    ),
    route!(
        "POST",
        "/mqtt/publish_batch",
        "mqtt_publish_batch",
        "Publish several messages",
        Some("PublishBatch"),
        post(mqtt::publish_batch)
    ),
    route!(
        "POST",
        "/mqtt/subscribe",
        "mqtt_subscribe",
        "Subscribe a client",
        Some("Subscribe"),
        post(mqtt::subscribe)
    ),
    route!(
        "POST",
        "/mqtt/subscribe_batch",
        "mqtt_subscribe_batch",
        "Subscribe several clients",
        Some("SubscribeBatch"),
        post(mqtt::subscribe_batch)
    ),
    route!(
        "POST",
        "/mqtt/unsubscribe",
        "mqtt_unsubscribe",
        "Unsubscribe a client",
        Some("Unsubscribe"),
        post(mqtt::unsubscribe)
    ),
    route!(
        "POST",
        "/mqtt/unsubscribe_batch",
        "mqtt_unsubscribe_batch",
        "Unsubscribe several clients",
        Some("UnsubscribeBatch"),
        post(mqtt::unsubscribe_batch)
    ),
    route!(
        "GET",
        "/reload",
        "get_reload",
        "Hot-reloadable settings in force",
        None,
        get(configuration::get_reload)
    ),
    route!(
        "POST",
        "/reload",
        "post_reload",
        "Change hot-reloadable settings on every service",
        Some("Reload"),
        post(configuration::post_reload)
    ),
    route!(
        "GET",
        "/configuration",
        "get_configuration",
        "Stored configuration and what each service applied",
        None,
        get(configuration::get_all)
    ),
    route!(
        "POST",
        "/configuration",
        "post_configuration",
        "Change configuration sections on every service",
        Some("ConfigurationData"),
        post(configuration::post_all)
    ),
    route!(
        "GET",
        "/configuration/{section}",
        "get_configuration_section",
        "One stored section",
        None,
        get(configuration::get_section)
    ),
    route!(
        "POST",
        "/configuration/{section}",
        "post_configuration_section",
        "Change one section on every service",
        Some("ConfigurationData"),
        post(configuration::post_section)
    ),
    route!(
        "POST",
        "/config_update",
        "config_update",
        "Change configuration from a HOCON document",
        Some("Hocon"),
        post(configuration::config_update)
    ),
    route!(
        "GET",
        "/webhooks/dead_letters",
        "list_dead_letters",
        "Webhook deliveries webhook-relay gave up (target, limit)",
        None,
        get(webhooks::list)
    ),
    route!(
        "POST",
        "/webhooks/dead_letters/redrive",
        "redrive_dead_letters",
        "Queue a target's dead letters for delivery again",
        Some("Redrive"),
        post(webhooks::redrive)
    ),
    route!(
        "GET",
        "/openapi.json",
        "openapi",
        "This API's OpenAPI document",
        None,
        get(openapi::document)
    ),
];

/// One `GET /api/v4` item.
#[derive(Debug, Serialize)]
pub struct EndpointItem {
    /// Full path.
    pub path: String,
    /// Short name.
    pub name: &'static str,
    /// Method.
    pub method: &'static str,
    /// What it does.
    pub descr: &'static str,
}

/// The `GET /api/v4` list.
pub fn endpoint_items() -> Vec<EndpointItem> {
    ROUTES
        .iter()
        .map(|r| EndpointItem {
            path: format!("{BASE}{}", r.path),
            name: r.name,
            method: r.method,
            descr: r.descr,
        })
        .collect()
}

// A named future type rather than `async fn`: the route table refers to this handler, and an
// opaque future type here would make the table's type depend on itself.
fn endpoints() -> std::future::Ready<axum::Json<Envelope<Vec<EndpointItem>>>> {
    std::future::ready(Envelope::ok(endpoint_items()))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Code::Unknown, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Code::Unknown,
        "method not allowed on this endpoint",
    )
}

/// Bounds concurrent requests (`http_server.limit_conn`): later ones wait their turn.
async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match std::sync::Arc::clone(&state.inner.limit).acquire_owned().await {
        Ok(_permit) => next.run(request).await,
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unknown, "shutting down")
            .into_response(),
    }
}

/// The application: every route under [`BASE`], behind authentication, with NanoMQ's 404/405.
pub fn app(state: AppState) -> Router {
    let mut api: Router<AppState> = Router::new();
    for route in ROUTES {
        api = api.route(&format!("{BASE}{}", route.path), (route.handler)());
    }
    // admin-api's own metrics, outside NanoMQ's API (and its route list), behind the same auth.
    api = api.route("/metrics", get(crate::service_metrics::metrics));
    let auth_mode = std::sync::Arc::clone(&state.inner.auth);
    api.route_layer(middleware::from_fn_with_state(auth_mode, auth::require))
        .route_layer(middleware::from_fn_with_state(state.clone(), crate::service_metrics::count))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(state.inner.max_body))
        .layer(middleware::from_fn_with_state(state.clone(), limit))
        .with_state(state)
}
