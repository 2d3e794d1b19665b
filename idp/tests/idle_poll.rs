//! The runtime's idle polling (idp/src/idle_poll.rs) against a real runtime. A test binary of its
//! own: finding the runtime's event queue compares the process's epoll instances before and
//! after the build, so no other test may build a runtime meanwhile.

use std::time::Duration;

use idp::idle_poll::IdlePoll;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn the_runtime_event_queue_is_found_and_polling_catches_its_events() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(1).enable_all();
    let (runtime, poller) = IdlePoll::attach(&mut builder, Duration::from_micros(200)).unwrap();
    let poller = poller.expect("the runtime's event queue");
    // Ping-pong over loopback between two tasks of the one worker: each time the worker runs
    // out of work, the other side's bytes are already in the event queue.
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4];
            for _ in 0..200 {
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
            }
        });
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 4];
        for i in 0..200u32 {
            c.write_all(&i.to_be_bytes()).await.unwrap();
            c.read_exact(&mut buf).await.unwrap();
            assert_eq!(u32::from_be_bytes(buf), i);
        }
        server.await.unwrap();
    });
    assert!(
        poller.window() > Duration::ZERO,
        "short idle periods open the window"
    );
    assert!(
        poller.caught() > 0,
        "polling saw the queue's events before sleeping"
    );
    // A long idle period halves the window, and a few of them close it. The task runs on the
    // worker, so nothing but its own timer wakes the worker.
    let sleeper = runtime.spawn(async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    runtime.block_on(sleeper).unwrap();
    assert_eq!(poller.window(), Duration::ZERO);
}

#[test]
fn a_zero_maximum_turns_polling_off() {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    let (_runtime, poller) = IdlePoll::attach(&mut builder, Duration::ZERO).unwrap();
    assert!(poller.is_err());
}
