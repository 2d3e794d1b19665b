//! The floor of a benchmark round trip (`scripts/bench/floor`): an HTTP/1.1 keep-alive server
//! that does no work at all. It reads each request up to its blank line and answers a fixed
//! `200 {}`; it ignores bodies, so it serves only the body-less GETs wrk sends. Whatever wrk
//! measures against it is the machine's cost of a round trip (loopback, wake-ups, wrk itself),
//! which every server's figures include.
//!
//! With `--blocking` it is a thread per connection blocked in `read` instead of a tokio event
//! loop: the fewest instructions and system calls a round trip can take without spinning, to
//! show that the floor is the kernel's and wrk's, not the runtime's.
//!
//! It binds 127.0.0.1 on a free port and prints the port on stdout.

use std::io::{Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

fn main() -> std::io::Result<()> {
    if std::env::args().any(|a| a == "--blocking") {
        return blocking();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .build()?
        .block_on(event_loop())
}

/// The length of the first complete request head in `buf` (through its blank line), if any.
fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|end| end + 4)
}

fn blocking() -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    for socket in listener.incoming() {
        let mut socket = socket?;
        socket.set_nodelay(true)?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            let mut filled = 0;
            loop {
                match socket.read(&mut buf[filled..]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => filled += n,
                }
                while let Some(head) = head_len(&buf[..filled]) {
                    if socket.write_all(RESPONSE).is_err() {
                        return;
                    }
                    buf.copy_within(head..filled, 0);
                    filled -= head;
                }
                if filled == buf.len() {
                    return;
                }
            }
        });
    }
    Ok(())
}

async fn event_loop() -> std::io::Result<()> {
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
                while let Some(head) = head_len(&buf[..filled]) {
                    if socket.write_all(RESPONSE).await.is_err() {
                        return;
                    }
                    buf.copy_within(head..filled, 0);
                    filled -= head;
                }
                if filled == buf.len() {
                    // A request head larger than the buffer: not something wrk sends.
                    return;
                }
            }
        });
    }
}
