//! The `admin-api` binary: `--check-config`, start-up errors naming file and key, and serving
//! from a file until SIGTERM.

use std::{process::Stdio, time::Duration};

use test_support::cli::check_config;
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_admin-api");

#[test]
fn check_config_accepts_a_good_file_and_names_the_key_of_a_bad_one() {
    let dir = tempfile::tempdir().expect("dir");
    let good = "http_server { port = 0 }\nredis { url = \"redis://127.0.0.1:1\" }\n";
    let out = check_config(BIN, dir.path(), "good.conf", good);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "ok"), "{out:?}");

    let out = check_config(BIN, dir.path(), "bad.conf", "http_server {\n  auth_type = jwt\n}\n");
    assert_eq!(out.code, Some(2));
    let err = &out.stderr;
    assert!(err.contains("bad.conf") && err.contains("http_server.jwt.public.keyfile"), "{err}");
}

#[tokio::test]
async fn serves_from_a_file_until_sigterm() {
    test_support::install_crypto_provider();
    let redis = test_support::RedisServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let conf = dir.path().join("admin.conf");
    std::fs::write(
        &conf,
        format!(
            "http_server {{ port = 0, ip_addr = \"127.0.0.1\" }}\nredis {{ url = \"{}\" }}\n",
            redis.url()
        ),
    )
    .expect("write");
    let mut child = tokio::process::Command::new(BIN)
        .arg("--conf")
        .arg(&conf)
        .env("TERN_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("admin-api starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = lines.next_line().await.expect("read").expect("admin-api logs its address");
            if line.contains("admin-api listening")
                && let Some(rest) = line.split("addr=").nth(1)
            {
                return rest.split_whitespace().next().expect("address").to_owned();
            }
        }
    })
    .await
    .expect("listening in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/api/v4/nodes"))
        .basic_auth("admin", Some("public"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), r#"{"code":0,"data":[]}"#);
    let pid = child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(exit.success(), "{exit}");
}
