//! The compose deployment checked statically (these machines have no Docker engine): every
//! service's command names a binary the workspace builds and the Dockerfile installs, and is run
//! with `--check-config` against the files it mounts, from its working directory (so only flags
//! the binary accepts pass, and every mounted configuration exists and loads); published and
//! exposed ports and health checks agree with that configuration. The Dockerfile builds every
//! binary of the workspace. Every configuration file shipped under etc/ loads.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use e2e::binaries;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
    #[serde(default)]
    volumes: BTreeMap<String, Option<serde_norway::Value>>,
}

#[derive(Debug, Deserialize)]
struct Service {
    image: Option<String>,
    build: Option<serde_norway::Value>,
    #[serde(default)]
    command: Vec<String>,
    working_dir: Option<String>,
    #[serde(default)]
    volumes: Vec<String>,
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default)]
    expose: Vec<String>,
    #[serde(default)]
    depends_on: BTreeMap<String, serde_norway::Value>,
    healthcheck: Option<HealthCheck>,
}

#[derive(Debug, Deserialize)]
struct HealthCheck {
    test: Vec<String>,
}

fn compose() -> Compose {
    let path = binaries::workspace_root().join("docker-compose.yml");
    let text = std::fs::read_to_string(&path).expect("docker-compose.yml exists");
    serde_norway::from_str(&text).expect("docker-compose.yml parses")
}

/// The binaries the Dockerfile builds and installs (its `ARG BINARIES="…"`).
fn dockerfile_binaries() -> BTreeSet<String> {
    let text = std::fs::read_to_string(binaries::workspace_root().join("Dockerfile"))
        .expect("Dockerfile exists");
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG BINARIES="))
        .expect("the Dockerfile has ARG BINARIES=\"...\"");
    line.trim_matches('"').split_whitespace().map(str::to_owned).collect()
}

/// A service's container path mapped to the host through its bind mounts.
fn host_path(service: &Service, container: &str) -> Option<PathBuf> {
    service.volumes.iter().find_map(|volume| {
        let mut parts = volume.split(':');
        let (source, target) = (parts.next()?, parts.next()?);
        if !source.starts_with('.') && !source.starts_with('/') {
            return None; // a named volume
        }
        let rest = container.strip_prefix(target)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(binaries::workspace_root().join(source).join(rest.trim_start_matches('/')))
    })
}

/// The configuration a Tern service runs with, loaded as it would be in its container.
fn loaded_config(name: &str, service: &Service) -> tern_config::Config {
    let conf = service
        .command
        .iter()
        .skip_while(|a| *a != "--conf")
        .nth(1)
        .unwrap_or_else(|| panic!("{name}: its command names its configuration with --conf"));
    let file = host_path(service, conf).unwrap_or_else(|| panic!("{name}: {conf} is not mounted"));
    let cwd = working_dir(name, service);
    tern_config::load_in(&file, &cwd, &tern_config::Env::new())
        .unwrap_or_else(|e| panic!("{name}: {conf} does not load: {e}"))
        .config
}

fn working_dir(name: &str, service: &Service) -> PathBuf {
    let dir = service.working_dir.as_deref().unwrap_or_else(|| {
        panic!("{name}: a Tern service sets working_dir (relative paths in its file)")
    });
    host_path(service, dir).unwrap_or_else(|| panic!("{name}: working_dir {dir} is not mounted"))
}

fn is_tern(service: &Service) -> bool {
    service.build.is_some() || service.image.as_deref().is_some_and(|i| i.starts_with("tern"))
}

fn container_port(mapping: &str) -> u16 {
    let port = mapping.rsplit(':').next().unwrap_or(mapping);
    port.split('/').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("port {mapping}"))
}

#[test]
fn the_dockerfile_builds_every_binary_of_the_workspace() {
    let workspace: BTreeSet<String> = binaries::workspace_binaries().into_iter().collect();
    assert_eq!(dockerfile_binaries(), workspace, "Dockerfile ARG BINARIES vs the workspace");
    let dockerfile =
        std::fs::read_to_string(binaries::workspace_root().join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("USER tern"), "the runtime image runs as a non-root user");
    assert!(dockerfile.contains("ca-certificates"), "the runtime image has CA certificates");
}

#[test]
fn the_images_default_command_runs_the_shipped_all_in_one_configuration() {
    let dockerfile =
        std::fs::read_to_string(binaries::workspace_root().join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("COPY etc/ /etc/tern/"), "the image carries etc/ at /etc/tern");
    let cmd =
        dockerfile.lines().rev().find_map(|l| l.strip_prefix("CMD ")).expect("the image has a CMD");
    let cmd: Vec<String> = serde_json::from_str(cmd).expect("CMD in exec form");
    let installed = dockerfile_binaries();
    assert!(installed.contains(&cmd[0]), "CMD runs an installed binary: {cmd:?}");
    let args: Vec<String> = cmd[1..]
        .iter()
        .map(|a| match a.strip_prefix("/etc/tern/") {
            Some(rest) => binaries::workspace_root().join("etc").join(rest).display().to_string(),
            None => a.clone(),
        })
        .chain(["--check-config".to_owned()])
        .collect();
    let output = std::process::Command::new(binaries::path(&cmd[0]))
        .args(&args)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn every_service_runs_a_built_binary_with_flags_and_files_it_accepts() {
    let compose = compose();
    let installed = dockerfile_binaries();
    let tern: Vec<_> = compose.services.iter().filter(|(_, s)| is_tern(s)).collect();
    assert!(!tern.is_empty(), "compose runs Tern services");
    for (name, service) in &tern {
        let binary = service.command.first().unwrap_or_else(|| panic!("{name}: a command"));
        assert!(installed.contains(binary), "{name}: {binary} is not installed by the Dockerfile");
        for volume in &service.volumes {
            if let Some(source) = volume.split(':').next().filter(|s| s.starts_with('.')) {
                let path = binaries::workspace_root().join(source);
                assert!(path.exists(), "{name}: mounted {} does not exist", path.display());
            }
        }
        // The same command, checked: unknown flags fail clap; a file that does not load fails.
        let mut args: Vec<String> = service.command[1..].to_vec();
        for arg in &mut args {
            if let Some(host) = host_path(service, arg) {
                *arg = host.to_str().expect("utf-8").to_owned();
            }
        }
        args.push("--check-config".into());
        let output = std::process::Command::new(binaries::path(binary))
            .args(&args)
            .current_dir(working_dir(name, service))
            .output()
            .expect("the binary runs");
        assert!(
            output.status.success(),
            "{name}: {binary} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok", "{name}");
        for dependency in service.depends_on.keys() {
            assert!(compose.services.contains_key(dependency), "{name}: depends on {dependency}");
        }
    }
    for volume in compose.services.values().flat_map(|s| &s.volumes) {
        let source = volume.split(':').next().unwrap_or_default();
        if !source.starts_with('.') && !source.starts_with('/') {
            assert!(compose.volumes.contains_key(source), "named volume {source} is declared");
        }
    }
}

#[test]
fn auth_service_scales_and_brokers_find_every_replica_by_name() {
    let compose = compose();
    let auth = &compose.services["auth-service"];
    assert!(auth.ports.is_empty(), "no fixed host port, so --scale auth-service=N works");
    let config = loaded_config("auth-service", auth);
    let port = config.auth_service.bind.port();
    let metrics = config.auth_service.metrics_bind.expect("auth-service serves metrics").port();
    assert_eq!(
        auth.expose.iter().map(|p| container_port(p)).collect::<Vec<_>>(),
        [port, metrics],
        "gRPC and metrics on the compose network only"
    );
    let health = &auth.healthcheck.as_ref().expect("auth-service has a health check").test;
    assert_eq!(health[..3], ["CMD", "tern", "health"], "probed with tern health");
    assert_eq!(health[3], "grpc");
    assert_eq!(container_port(&health[4]), port, "the probe checks the gRPC port");

    for (name, service) in compose.services.iter().filter(|(n, _)| n.starts_with("broker")) {
        let broker = loaded_config(name, service);
        let address = broker.auth_service.address.expect("brokers name auth-service");
        let (host, target) = address.rsplit_once(':').expect("host:port");
        assert_eq!(host, "auth-service", "{name}: the service name (every replica)");
        assert_eq!(target.parse::<u16>().ok(), Some(port), "{name}: auth-service's port");
        assert!(service.depends_on.contains_key("auth-service"), "{name}");
    }
}

#[test]
fn webhook_relay_keeps_its_outbox_on_a_volume_and_brokers_find_it() {
    let compose = compose();
    let relay = &compose.services["webhook-relay"];
    let config = loaded_config("webhook-relay", relay);
    let port = config.webhook_relay.bind.port();
    let health = &relay.healthcheck.as_ref().expect("webhook-relay has a health check").test;
    assert_eq!(health[..4], ["CMD", "tern", "health", "grpc"], "probed with tern health");
    assert_eq!(container_port(&health[4]), port, "the probe checks the gRPC port");
    let outbox = config.webhook_relay.outbox;
    let outbox_dir = outbox.parent().and_then(Path::to_str).expect("an absolute outbox path");
    let on_volume = relay.volumes.iter().any(|v| {
        let mut parts = v.split(':');
        let source = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or_default();
        let read_only = parts.next() == Some("ro");
        !source.starts_with('.') && !source.starts_with('/') && target == outbox_dir && !read_only
    });
    assert!(on_volume, "the outbox {} is on a named, writable volume", outbox.display());

    for (name, service) in compose.services.iter().filter(|(n, _)| n.starts_with("broker")) {
        let broker = loaded_config(name, service);
        let address = broker.webhook_relay.address.expect("brokers name webhook-relay");
        let (host, target) = address.rsplit_once(':').expect("host:port");
        assert_eq!(host, "webhook-relay", "{name}: the service name");
        assert_eq!(target.parse::<u16>().ok(), Some(port), "{name}: webhook-relay's port");
        assert!(service.depends_on.contains_key("webhook-relay"), "{name}");
    }
}

#[test]
fn every_service_exposes_its_metrics_port() {
    let compose = compose();
    let exposed = |name: &str| -> Vec<u16> {
        compose.services[name].expose.iter().map(|p| container_port(p)).collect()
    };
    let relay = loaded_config("webhook-relay", &compose.services["webhook-relay"]);
    let relay_metrics = relay.webhook_relay.metrics_bind.expect("relay metrics configured");
    assert!(exposed("webhook-relay").contains(&relay_metrics.port()));
    for (name, service) in compose.services.iter().filter(|(n, _)| n.starts_with("broker")) {
        let broker = loaded_config(name, service);
        let metrics = broker.node.metrics_bind.expect("broker metrics configured");
        assert!(exposed(name).contains(&metrics.port()), "{name} exposes {metrics}");
    }
}

#[test]
fn admin_api_publishes_its_http_port_with_a_health_check_on_it() {
    let compose = compose();
    let admin = &compose.services["admin-api"];
    let config = loaded_config("admin-api", admin);
    let port = config.http_server.as_ref().expect("admin-api reads http_server {}").port;
    let published: Vec<u16> = admin.ports.iter().map(|p| container_port(p)).collect();
    assert_eq!(published, [port], "the API port is published");
    let health = &admin.healthcheck.as_ref().expect("admin-api has a health check").test;
    assert_eq!(health[..4], ["CMD", "tern", "health", "http"], "probed with tern health");
    let url = health[4].strip_prefix("http://").expect("an http:// URL");
    let authority = url.split('/').next().expect("host:port");
    assert_eq!(container_port(authority), port, "the probe checks the API port");
}

#[test]
fn broker_ports_and_health_check_match_its_listeners() {
    let compose = compose();
    let broker = &compose.services["broker-core"];
    let config = loaded_config("broker-core", broker);
    let listeners: BTreeSet<u16> =
        config.listeners.iter().filter(|l| l.enable).map(|l| l.bind.port()).collect();
    let published: BTreeSet<u16> = broker.ports.iter().map(|p| container_port(p)).collect();
    assert_eq!(published, listeners, "every listener is published and nothing else");
    assert_eq!(listeners, BTreeSet::from([1883, 8883, 8083, 8084]), "NanoMQ's ports");
    for mapping in &broker.ports {
        let parts: Vec<&str> = mapping.split(':').collect();
        assert_eq!(parts.len(), 2, "{mapping}: host:container");
        assert_eq!(parts[0], parts[1], "{mapping}: same port on the host");
    }
    let health = &broker.healthcheck.as_ref().expect("broker-core has a health check").test;
    assert_eq!(health[..4], ["CMD", "tern", "health", "mqtt"]);
    let probed = container_port(&health[4]);
    let tcp = config.listeners.iter().find(|l| l.kind == tern_config::ListenerKind::Tcp);
    assert_eq!(Some(probed), tcp.map(|l| l.bind.port()), "the probe uses the TCP listener");
}

#[test]
fn redis_is_there_with_a_health_check_for_the_services_that_use_it() {
    let compose = compose();
    let redis = &compose.services["redis"];
    let health = &redis.healthcheck.as_ref().expect("redis has a health check").test;
    assert_eq!(health, &["CMD", "redis-cli", "ping"]);
    let auth = loaded_config("auth-service", &compose.services["auth-service"]);
    let url = auth.auth.redis.expect("auth-service keeps users in Redis").url;
    assert!(url.expose().starts_with("redis://redis:6379"), "the compose service name");
}

/// Every `.conf` under `dir`, recursively.
fn conf_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read etc/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            conf_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "conf") {
            out.push(path);
        }
    }
}

#[test]
fn every_configuration_file_shipped_in_etc_loads() {
    let mut files = Vec::new();
    conf_files(&binaries::workspace_root().join("etc"), &mut files);
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let dir = file.parent().expect("a directory");
        if name.ends_with("_pwd.conf") {
            tern_config::parse_password_file(&file).unwrap_or_else(|e| panic!("{e}"));
        } else if name.ends_with("_acl.conf") {
            tern_config::parse_acl_file(&file).unwrap_or_else(|e| panic!("{e}"));
        } else {
            let loaded = tern_config::load_in(&file, dir, &tern_config::Env::new())
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(loaded.warnings.is_empty(), "{}: {:?}", file.display(), loaded.warnings);
        }
    }
}
