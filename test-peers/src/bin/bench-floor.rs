//! The floor of a benchmark round trip (`scripts/bench/floor`): an HTTP/1.1 keep-alive server
//! that does no work at all. It reads each request up to its blank line and answers a fixed
//! `200 {}`; it ignores bodies, so it serves only the body-less GETs wrk sends. Whatever wrk
//! measures against it is the machine's cost of a round trip (loopback, wake-ups, wrk itself),
//! which every server's figures include.
//!
//! With `--blocking` it is a thread per connection blocked in `read` instead of a tokio event
//! loop: the fewest instructions and system calls a round trip can take without spinning, to
//! show that the floor is the kernel's and wrk's, not tokio's.
//!
//! With `--spin` it is a thread per connection that never sleeps: a non-blocking socket read in
//! a busy loop. It burns its core while idle, which no production server should do; it is here
//! to measure how much of the floor is the server's wake-up and how much is wrk's and the
//! loopback's, which no server can remove.
//!
//! It binds 127.0.0.1 on a free port and prints the port on stdout.

use std::io::{Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

fn main() -> std::io::Result<()> {
    if std::env::args().any(|a| a == "--blocking") {
        return threads(false);
    }
    if std::env::args().any(|a| a == "--spin") {
        return threads(true);
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

/// A thread per connection, blocked in `read` or, with `spin`, polling a non-blocking socket.
fn threads(spin: bool) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    println!("{}", listener.local_addr()?.port());
    for socket in listener.incoming() {
        let mut socket = socket?;
        socket.set_nodelay(true)?;
        socket.set_nonblocking(spin)?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            let mut filled = 0;
            loop {
                match socket.read(&mut buf[filled..]) {
                    Ok(0) => return,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::hint::spin_loop();
                        continue;
                    }
                    Err(_) => return,
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
