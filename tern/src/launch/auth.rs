//! auth-service inside `tern start`: the chain from `auth {}`, served over its real gRPC
//! interface on an ephemeral loopback port that only the in-process broker is told about, with
//! its Prometheus metrics on `auth_service.metrics_bind` when set. Changes to `auth {}` written
//! through admin-api reach it through the shared config store and are applied live.

use std::net::{Ipv4Addr, SocketAddr};

use super::{Endpoint, LaunchError, Running, Service, Wiring, authority};

pub(super) async fn start(run: &mut Running, wiring: &mut Wiring) -> Result<(), LaunchError> {
    let fail = |message: String| LaunchError::Start { service: "auth-service", message };
    let built = auth_service::setup::build(&wiring.config).map_err(|e| fail(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| fail(format!("cannot bind 127.0.0.1:0: {e}")))?;
    let addr = listener.local_addr().map_err(|e| fail(e.to_string()))?;
    let (metrics, metrics_addr) = match wiring.config.auth_service.metrics_bind {
        Some(bind) => {
            let metrics = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(|e| fail(format!("auth_service.metrics_bind: cannot bind {bind}: {e}")))?;
            let metrics_addr = metrics.local_addr().map_err(|e| fail(e.to_string()))?;
            (Some(metrics), Some(metrics_addr))
        }
        None => (None, None),
    };
    // `auth {}` changes written through admin-api arrive through the shared config store; the
    // process's log level is applied once, by the in-process broker.
    let settings = auth_service::store::StoreSettings {
        file: wiring.config.source.clone(),
        base_dir: wiring.base_dir.clone(),
        env: tern_config::Env::from_process(),
        instance: wiring.config.node.id.clone(),
        set_level: None,
    };
    let options = auth_service::server::RunOptions {
        security: auth_service::server::Security::default(),
        store: Some((std::sync::Arc::clone(&wiring.store), settings)),
        metrics,
    };
    run.spawn(Service::AuthService, |stop| async move {
        auth_service::server::run_with(built, listener, options, stop.cancelled_owned())
            .await
            .map_err(|e| e.to_string())
    });
    run.endpoints.push(Endpoint {
        service: Service::AuthService.name(),
        what: "gRPC AuthService, health, reflection".into(),
        addr,
        url: format!("http://{}", authority(addr)),
    });
    if let Some(metrics_addr) = metrics_addr {
        run.endpoints.push(Endpoint {
            service: Service::AuthService.name(),
            what: "Prometheus metrics".into(),
            addr: metrics_addr,
            url: format!("http://{}/metrics", authority(metrics_addr)),
        });
    }
    wiring.auth_service = Some(addr);
    Ok(())
}
