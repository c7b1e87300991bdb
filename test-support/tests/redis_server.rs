//! The private Redis server answers real commands and is gone once dropped.

use redis::AsyncCommands;
use test_support::RedisServer;

#[tokio::test]
async fn redis_server_serves_a_key_and_is_gone_after_drop() {
    let server = RedisServer::start();
    let pid = server.pid();
    let socket = server.socket().to_owned();

    let client = redis::Client::open(server.url()).expect("valid url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connects");
    let () = conn.set("tern:test:key", "value").await.expect("SET");
    let value: String = conn.get("tern:test:key").await.expect("GET");
    assert_eq!(value, "value");
    drop(conn);

    drop(server);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "redis-server (pid {pid}) still exists after drop"
    );
    assert!(!socket.exists(), "the socket directory is removed with the server");
}

#[tokio::test]
async fn redis_server_restart_keeps_the_address() {
    let mut server = RedisServer::start();
    let first = server.pid();
    let client = redis::Client::open(server.url()).expect("valid url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connects");
    let () = conn.set("k", "v").await.expect("SET");

    server.restart().expect("restarts");
    assert_ne!(server.pid(), first, "a new process serves the socket");
    let mut conn = client.get_multiplexed_async_connection().await.expect("reconnects");
    let value: Option<String> = conn.get("k").await.expect("GET");
    assert_eq!(value, None, "no persistence: a restarted server is empty");
}
