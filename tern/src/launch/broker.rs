//! broker-core inside `tern start`: the listeners of the file, authenticating every client
//! through the in-process auth-service's gRPC interface and streaming events to the in-process
//! webhook-relay's (as a compose deployment does).

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::Arc,
};

use broker_core::{
    Broker, BrokerConfig,
    admin_grpc::AdminSecurity,
    auth_grpc::{GrpcAuth, GrpcAuthConfig},
    events::{EventSink, NoEvents},
    events_grpc::{GrpcEvents, GrpcEventsConfig},
};
use tern_config::ListenerKind;

use super::{BrokerAdminNode, Endpoint, LaunchError, Running, Service, Wiring, authority};

/// 32 random bytes from the operating system, in hex.
fn random_token() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How long the broker waits at shutdown for the relay to acknowledge its last events.
const EVENT_FLUSH_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub(super) async fn start(run: &mut Running, wiring: &mut Wiring) -> Result<(), LaunchError> {
    let fail = |message: String| LaunchError::Start { service: "broker-core", message };
    let Some(auth_addr) = wiring.auth_service else {
        return Err(fail("auth-service did not start before the broker".into()));
    };
    let mut config = wiring.config.clone();
    config.auth_service.address = Some(auth_addr.to_string());
    // Events go to the relay tern start runs, or nowhere (an address in the file is not used).
    config.webhook_relay.address = wiring.webhook_relay.map(|addr| addr.to_string());
    // The in-process services are not secured (loopback only): call them as they serve.
    config.auth_service.token = None;
    config.auth_service.tls = None;
    config.webhook_relay.token = None;
    config.webhook_relay.tls = None;
    let Some(grpc) = GrpcAuthConfig::from_config(&config) else {
        return Err(fail("no auth-service address".into()));
    };
    let settings = BrokerConfig::from_config(&config);
    let listeners = broker_core::server::bind_listeners(&config)
        .await
        .map_err(|e| fail(format!("cannot start listeners: {e}")))?;
    let enabled = config.listeners.iter().filter(|l| l.enable);
    let mut listener_names = Vec::new();
    for (listener, conf) in listeners.iter().zip(enabled) {
        let addr = listener.socket.local_addr().map_err(|e| fail(e.to_string()))?;
        listener_names.push(format!("{}@{addr}", listener.info.name));
        let path = conf.path.as_deref().unwrap_or(tern_config::DEFAULT_WS_PATH);
        let (what, url) = match conf.kind {
            ListenerKind::Tcp => ("MQTT over TCP", format!("mqtt://{}", authority(addr))),
            ListenerKind::Ssl => ("MQTT over TLS", format!("mqtts://{}", authority(addr))),
            ListenerKind::Ws => ("MQTT over WebSocket", format!("ws://{}{path}", authority(addr))),
            ListenerKind::Wss => {
                ("MQTT over secure WebSocket", format!("wss://{}{path}", authority(addr)))
            }
        };
        let what = match conf.name.as_str() {
            "default" => what.to_owned(),
            name => format!("{what} ({name})"),
        };
        run.endpoints.push(Endpoint { service: Service::BrokerCore.name(), what, addr, url });
    }
    let auth = Arc::new(GrpcAuth::start(grpc));
    let emitter = GrpcEventsConfig::from_config(&config).map(GrpcEvents::start);
    let events: Arc<dyn EventSink> = match &emitter {
        Some(emitter) => Arc::new(emitter.clone()),
        None => Arc::new(NoEvents),
    };
    let broker = Broker::new(settings, auth, events);
    // `log`, `mqtt` and `sys` changes made through admin-api arrive through the shared store.
    let set_level = wiring.telemetry.clone().map(|telemetry| {
        Box::new(move |level| telemetry.set_level(level).map_err(|e| e.to_string()))
            as broker_core::config_follow::SetLevel
    });
    let follower = broker_core::config_follow::follower(
        Arc::clone(&broker),
        config.source.clone(),
        wiring.base_dir.clone(),
        tern_config::Env::from_process(),
        set_level,
    );
    let store = Arc::clone(&wiring.store);
    run.spawn(Service::BrokerCore, |stop| async move {
        follower.run(store, stop).await;
        Ok(())
    });
    if let Some(bind) = config.node.metrics_bind {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| fail(format!("node.metrics_bind: cannot bind {bind}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
        let node = Arc::clone(&broker);
        run.spawn(Service::BrokerCore, |stop| async move {
            broker_core::metrics::serve(node, listener, stop.cancelled_owned())
                .await
                .map_err(|e| e.to_string())
        });
        run.endpoints.push(Endpoint {
            service: Service::BrokerCore.name(),
            what: "Prometheus metrics".into(),
            addr,
            url: format!("http://{}/metrics", authority(addr)),
        });
    }
    if config.http_server.is_some() {
        // BrokerAdmin for the in-process admin-api only: loopback, and a token made here.
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(|e| fail(format!("BrokerAdmin: cannot bind 127.0.0.1:0: {e}")))?;
        let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
        let token = random_token().map_err(|e| fail(format!("cannot make a token: {e}")))?;
        let security = AdminSecurity { token: Some(token.clone()), tls: None };
        let admin_broker = Arc::clone(&broker);
        run.spawn(Service::BrokerCore, |stop| async move {
            broker_core::admin_grpc::serve(admin_broker, listener, security, stop.cancelled_owned())
                .await
                .map_err(|e| e.to_string())
        });
        wiring.broker_admin = Some(BrokerAdminNode {
            addr,
            token,
            started_at_ms: broker.started_at_ms(),
            listeners: listener_names,
        });
    }
    run.spawn(Service::BrokerCore, |stop| async move {
        broker_core::run(broker, listeners, stop).await;
        // The relay stops after the broker: hand it the last events first, then close the
        // stream (the relay going away is then no broken stream).
        if let Some(emitter) = emitter {
            if !emitter.flush(EVENT_FLUSH_GRACE).await {
                tracing::warn!(
                    unacknowledged = emitter.stats().buffered,
                    "webhook-relay did not acknowledge every event within {EVENT_FLUSH_GRACE:?}"
                );
            }
            emitter.close();
        }
        Ok(())
    });
    Ok(())
}
