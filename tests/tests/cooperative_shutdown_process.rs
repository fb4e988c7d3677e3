//! The `cooperative_shutdown` example as a real process: SIGTERM sends every open stream its
//! farewell event, the streams end cleanly, and the process exits with status 0 within the grace
//! period plus one second.

use std::time::{Duration, Instant};

use tests::{ExampleProcess, ended_cleanly, raw_get, read_to_close, read_until};

const GRACE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn sigterm_sends_the_farewell_and_the_process_exits_cleanly() {
    let mut server = ExampleProcess::start("cooperative_shutdown").await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(raw_get(server.addr, "/events").await);
    }
    for client in &mut clients {
        read_until(client, b"data: tick 1\r\n").await;
    }

    let signalled = Instant::now();
    server.terminate();
    for client in &mut clients {
        let rest = read_to_close(client).await;
        let text = String::from_utf8_lossy(&rest);
        assert!(
            text.contains("event: shutdown\r\ndata: server is shutting down, goodbye\r\n\r\n"),
            "{text}"
        );
        assert!(ended_cleanly(&rest), "{text:?}");
    }
    let status = tokio::time::timeout(GRACE + Duration::from_secs(1), server.child.wait())
        .await
        .expect("the process did not exit within the grace period plus one second")
        .unwrap();
    println!(
        "exited {:?} after SIGTERM with {status}",
        signalled.elapsed()
    );
    assert!(
        status.success(),
        "exit status {status}; logs: {:?}",
        server.logs.lock().unwrap()
    );
}
