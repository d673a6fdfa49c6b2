//! The baseline of network figures: a TCP round trip on loopback, measured with a plain
//! echo over a connected socket.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Median round trip of `rounds` 64-byte echoes over loopback TCP, in milliseconds.
pub async fn loopback_rtt(rounds: usize) -> std::io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        loop {
            if s.read_exact(&mut buf).await.is_err() {
                return Ok::<_, std::io::Error>(());
            }
            s.write_all(&buf).await?;
        }
    });
    let mut c = TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    let mut samples = Vec::with_capacity(rounds);
    let mut buf = [7u8; 64];
    for _ in 0..rounds {
        let t = Instant::now();
        c.write_all(&buf).await?;
        c.read_exact(&mut buf).await?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    drop(c);
    let _ = server.await;
    Ok(super::percentile(&mut samples, 50.0))
}
