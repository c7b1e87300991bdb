//! `tern health`: liveness probes for container health checks and scripts — gRPC health
//! (`grpc.health.v1`, served by every Tern gRPC service), MQTT (a listener answers CONNECT with
//! a CONNACK) and HTTP (the admin API answers). The runtime image has no other probe tools; `tern` is in it.

use std::time::Duration;

use crate::client::{ClientError, Target, TargetOptions, Transport};

/// `tern health`.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// What to probe.
    #[command(subcommand)]
    pub probe: Probe,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5, global = true)]
    pub timeout: u64,
}

/// One probe.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Probe {
    /// gRPC health check (grpc.health.v1 Check) of a service at HOST:PORT; healthy when SERVING.
    Grpc {
        /// `host:port` of the gRPC server.
        addr: String,
        /// Service name to check (empty: the server as a whole).
        #[arg(long, default_value = "")]
        service: String,
    },
    /// MQTT over TCP at HOST:PORT answers CONNECT with a CONNACK (a refusal still shows a live
    /// broker: probes carry no credentials).
    Mqtt {
        /// `host:port` of the MQTT listener.
        addr: String,
    },
    /// An HTTP server answers GET URL with a status below 500 (a 401 from an API that wants
    /// credentials still shows a live server: probes carry none).
    Http {
        /// `http://host:port/path`.
        url: String,
    },
}

/// Runs the probe; `Ok` carries what to print for a healthy target, `Err` why it is not.
pub async fn run(args: &HealthArgs) -> Result<String, String> {
    let limit = Duration::from_secs(args.timeout.max(1));
    match tokio::time::timeout(limit, probe(&args.probe)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {}s", limit.as_secs())),
    }
}

fn split(addr: &str) -> Result<(&str, u16), String> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("{addr:?} is not host:port"))?;
    let port = port.parse().map_err(|_| format!("{addr:?} is not host:port"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}

async fn probe(probe: &Probe) -> Result<String, String> {
    match probe {
        Probe::Grpc { addr, service } => {
            use tonic_health::pb::{
                HealthCheckRequest, health_check_response::ServingStatus,
                health_client::HealthClient,
            };
            split(addr)?;
            let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| format!("{addr}: {e}"))?;
            let channel = endpoint.connect().await.map_err(|e| format!("{addr}: {e}"))?;
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest { service: service.clone() })
                .await
                .map_err(|status| format!("{addr}: {}", status.message()))?;
            let status = answer.into_inner().status();
            match status {
                ServingStatus::Serving => Ok(format!("{addr}: SERVING")),
                other => Err(format!("{addr}: {}", other.as_str_name())),
            }
        }
        Probe::Mqtt { addr } => {
            let (host, port) = split(addr)?;
            let target = Target::new(TargetOptions {
                host,
                port,
                transport: Transport::Tcp,
                cafile: None,
                client_cert: None,
                insecure: false,
                ws_path: "/mqtt",
                version: mqtt_codec::ProtocolVersion::V5,
                keep_alive: 10,
                username: None,
                password: None,
            })
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
            let connect = target.connect_packet(&format!("tern-health-{:08x}", fastrand::u32(..)));
            match target.open_with(connect).await {
                Ok((conn, _)) => {
                    conn.close().await;
                    Ok(format!("{addr}: CONNACK"))
                }
                Err(ClientError::Refused(ack)) => {
                    Ok(format!("{addr}: CONNACK (refused: {:?})", ack.reason_code))
                }
                Err(error) => Err(format!("{addr}: {error}")),
            }
        }
        Probe::Http { url } => {
            let response = reqwest::Client::new()
                .get(url.as_str())
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let status = response.status();
            if status.is_server_error() {
                Err(format!("{url}: HTTP {status}"))
            } else {
                Ok(format!("{url}: HTTP {}", status.as_u16()))
            }
        }
    }
}
