//! The floor of a benchmark round trip (`scripts/bench/floor`): an HTTP/1.1 keep-alive server
//! that does no work at all. It reads each request up to its blank line and answers a fixed
//! `200 {}`; it ignores bodies, so it serves only the body-less GETs wrk sends. Whatever wrk
//! measures against it is the machine's cost of a round trip (loopback, wake-ups, wrk itself),
//! which every server's figures include.
//!
//! It binds 127.0.0.1 on a free port and prints the port on stdout.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    loop {
        let (mut socket, _) = listener.accept().await?;
        socket.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut filled = 0;
            loop {
                let Ok(n) = socket.read(&mut buf[filled..]).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                filled += n;
                while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                    if socket.write_all(RESPONSE).await.is_err() {
                        return;
                    }
                    buf.copy_within(end + 4..filled, 0);
                    filled -= end + 4;
                }
                if filled == buf.len() {
                    // A request head larger than the buffer: not something wrk sends.
                    return;
                }
            }
        });
    }
}
