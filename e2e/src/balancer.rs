//! A round-robin TCP balancer in front of service replicas, as a Kubernetes Service or any L4
//! load balancer is: each new connection goes to the next replica that accepts it. It counts
//! connections per replica so a test can tell which one a client is using.
//!
//! In compose the broker finds auth-service replicas through DNS (one name, one address per
//! replica); one machine has no name resolving to two loopback addresses, so the end-to-end test
//! puts this balancer in front of its replicas instead.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::net::{TcpListener, TcpStream};

/// A running balancer; stops when dropped.
#[derive(Debug)]
pub struct Balancer {
    /// Where clients connect.
    pub addr: SocketAddr,
    connections: Arc<Vec<AtomicUsize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Balances connections to `127.0.0.1:0` over `replicas`.
    ///
    /// # Panics
    /// When the listener cannot be bound.
    pub async fn start(replicas: Vec<SocketAddr>) -> Self {
        let (listener, addr) = test_support::bind_tokio().await;
        let connections: Arc<Vec<AtomicUsize>> =
            Arc::new(replicas.iter().map(|_| AtomicUsize::new(0)).collect());
        let task = tokio::spawn(serve(listener, replicas, Arc::clone(&connections)));
        Self { addr, connections, task }
    }

    /// Connections made to each replica so far.
    pub fn connections(&self) -> Vec<usize> {
        self.connections.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, replicas: Vec<SocketAddr>, counts: Arc<Vec<AtomicUsize>>) {
    let next = Arc::new(AtomicUsize::new(0));
    let replicas = Arc::new(replicas);
    while let Ok((mut client, _)) = listener.accept().await {
        let (next, replicas, counts) =
            (Arc::clone(&next), Arc::clone(&replicas), Arc::clone(&counts));
        tokio::spawn(async move {
            let start = next.fetch_add(1, Ordering::Relaxed);
            for i in 0..replicas.len() {
                let index = (start + i) % replicas.len();
                if let Ok(mut upstream) = TcpStream::connect(replicas[index]).await {
                    counts[index].fetch_add(1, Ordering::Relaxed);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    return;
                }
            }
            // No replica accepts: the client sees its connection closed.
        });
    }
}
