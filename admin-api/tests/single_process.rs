//! The single-process arrangement (`tern`): no Redis; admin-api knows its one node directly and
//! shares an in-memory config store with auth-service, which applies ACL changes from it.

mod common;

use std::{sync::Arc, time::Duration};

use broker_core::admin_grpc::AdminSecurity;
use common::{TOKEN, client, wait_for_puback};
use mqtt_codec::PubAckReasonCode;
use serde_json::json;
use tern_config_store::{ConfigStore, MemoryStore, nodes::NodeRecord};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn the_embedded_store_carries_api_changes_to_auth_service() {
    test_support::install_crypto_provider();
    let dir = tempfile::tempdir().expect("dir");
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let store: Arc<dyn ConfigStore> = Arc::new(MemoryStore::new());

    // auth-service, following the in-memory store.
    let file = dir.path().join("tern.conf");
    std::fs::write(&file, common::AUTH_CONF).expect("write");
    let config =
        tern_config::load_in(&file, dir.path(), &tern_config::Env::new()).expect("config").config;
    let built = auth_service::setup::build(&config).expect("chain");
    let (listener, auth_addr) = test_support::bind_tokio().await;
    let settings = auth_service::store::StoreSettings {
        file: Some(file),
        base_dir: dir.path().to_path_buf(),
        env: tern_config::Env::new(),
        instance: "local".into(),
        set_level: None,
    };
    let options = auth_service::server::RunOptions {
        store: Some((Arc::clone(&store), settings)),
        ..Default::default()
    };
    let stop = shutdown.clone();
    tokio::spawn(auth_service::server::run_with(built, listener, options, async move {
        stop.cancelled().await
    }));

    // One broker node, BrokerAdmin without registration.
    let grpc = common::grpc_auth(auth_addr.to_string(), "local");
    let (broker, mqtt, broker_stop) = common::mqtt_broker("local", grpc).await;
    let _broker_stop = broker_stop.drop_guard();
    let (admin_listener, admin_addr) = test_support::bind_tokio().await;
    tokio::spawn(broker_core::admin_grpc::run(
        broker,
        admin_listener,
        AdminSecurity { token: Some(TOKEN.into()), tls: None },
        None,
        shutdown.clone(),
    ));

    // admin-api over that node and the same store.
    let record = NodeRecord {
        node_id: "local".into(),
        grpc_address: admin_addr.to_string(),
        tls: false,
        version: "test".into(),
        started_at_ms: 0,
        listeners: vec![],
    };
    let state = admin_api::AppState::new(admin_api::Settings {
        http: tern_config::HttpServerConfig::default(),
        auth: admin_api::AuthMode::NoAuth,
        nodes: admin_api::Nodes::new(
            admin_api::NodeSource::Fixed(vec![record]),
            Some(TOKEN),
            None,
            Duration::from_secs(5),
        ),
        store: Arc::clone(&store),
        base_dir: dir.path().to_path_buf(),
        config_file: None,
        relay: None,
    });
    let (listener, api_addr) = test_support::bind_tokio().await;
    let stop = shutdown.clone();
    tokio::spawn(admin_api::serve(state, listener, async move { stop.cancelled().await }));
    let http = reqwest::Client::new();

    let mut publisher = client(mqtt, "p", "u").await;
    assert!(
        wait_for_puback(&mut publisher, "meters/1", 1, |c| c == PubAckReasonCode::NotAuthorized)
            .await
    );
    let body = json!({"data": {"auth": {"acl": {"rules": [{"permit": "allow", "action": "publish", "topics": ["meters/#"]}]}}}});
    let response = http
        .post(format!("http://{api_addr}/api/v4/configuration/auth"))
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(
        wait_for_puback(&mut publisher, "meters/1", 100, |c| c != PubAckReasonCode::NotAuthorized)
            .await,
        "the rule written through the API applies without Redis"
    );
    let clients =
        http.get(format!("http://{api_addr}/api/v4/clients")).send().await.expect("request");
    let clients: serde_json::Value =
        serde_json::from_slice(&clients.bytes().await.expect("body")).expect("json");
    assert_eq!(clients["data"][0]["client_id"], "p");
}
