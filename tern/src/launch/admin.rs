//! admin-api inside `tern start`: NanoMQ's `/api/v4` on the file's `http_server {}` (port 8081 in
//! the built-in configuration), over the in-process broker's BrokerAdmin gRPC interface (on a
//! loopback port, with a token made at start) and the config store every service here shares —
//! so a rule written through the API reaches the in-process auth-service as it would reach every
//! replica through Redis. It runs only when the file has an `http_server {}` block.

use std::net::SocketAddr;

use admin_api::{AppState, AuthMode, NodeSource, Nodes, Settings};
use tern_config_store::nodes::NodeRecord;

use super::{Endpoint, LaunchError, Running, Service, Wiring, authority};

pub(super) async fn start(run: &mut Running, wiring: &mut Wiring) -> Result<(), LaunchError> {
    let Some(http) = wiring.config.http_server.clone() else { return Ok(()) };
    let fail = |message: String| LaunchError::Start { service: "admin-api", message };
    let Some(node) = &wiring.broker_admin else {
        return Err(fail("broker-core did not start its BrokerAdmin interface".into()));
    };
    let auth = AuthMode::from_config(&http).map_err(|e| fail(format!("http_server: {e}")))?;
    let record = NodeRecord {
        node_id: wiring.config.node.id.clone(),
        grpc_address: node.addr.to_string(),
        tls: false,
        version: env!("CARGO_PKG_VERSION").into(),
        started_at_ms: node.started_at_ms,
        listeners: node.listeners.clone(),
    };
    // The in-process relay's dead letters (loopback, not secured).
    let relay = match wiring.webhook_relay {
        Some(addr) => Some(
            admin_api::webhooks::RelayLink {
                address: addr.to_string(),
                security: proto::grpc::Security::default(),
            }
            .client(admin_api::NODE_CALL_TIMEOUT)
            .map_err(|e| fail(format!("webhook-relay: {e}")))?,
        ),
        None => None,
    };
    let state = AppState::new(Settings {
        http: http.clone(),
        auth,
        nodes: Nodes::new(
            NodeSource::Fixed(vec![record]),
            Some(&node.token),
            None,
            admin_api::NODE_CALL_TIMEOUT,
        ),
        store: std::sync::Arc::clone(&wiring.store),
        base_dir: wiring.base_dir.clone(),
        config_file: wiring.config.source.clone(),
        relay,
    });
    let bind = SocketAddr::new(http.ip_addr, http.port);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| fail(format!("http_server.port: cannot bind {bind}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    run.spawn(Service::AdminApi, |stop| async move {
        admin_api::serve(state, listener, stop.cancelled_owned()).await.map_err(|e| e.to_string())
    });
    run.endpoints.push(Endpoint {
        service: Service::AdminApi.name(),
        what: "HTTP API (NanoMQ /api/v4)".into(),
        addr,
        url: format!("http://{}/api/v4", authority(addr)),
    });
    Ok(())
}
