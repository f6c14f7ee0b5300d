//! The server the fleet's tasks call: one line in (the member's number), a hold, one line out. It counts the
//! requests in flight, the most ever in flight, and each member's answered requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// What the server counts, read by the benchmark in the same process.
#[derive(Debug)]
pub(crate) struct Counts {
    pub(crate) in_flight: AtomicUsize,
    pub(crate) max_in_flight: AtomicUsize,
    pub(crate) answered: Vec<AtomicU64>,
}

/// Serves on 127.0.0.1 on a free port; returns the port and the counts.
pub(crate) async fn start(members: usize, hold: Duration) -> std::io::Result<(u16, Arc<Counts>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let counts = Arc::new(Counts {
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        answered: (0..members).map(|_| AtomicU64::new(0)).collect(),
    });
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let n = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    c.max_in_flight.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(hold).await;
                    c.in_flight.fetch_sub(1, Ordering::SeqCst);
                    if let Some(a) = line
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| c.answered.get(i))
                    {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    if write.write_all(b"ok\n").await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok((port, counts))
}
