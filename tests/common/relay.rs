//! A sniffer between the agent and an emulator, for tests that read what crossed the
//! wire (a capture to decode, or how many times a command was sent).

/// A TCP relay between the agent and the emulator that writes what passes in the plain
/// capture form (`>` agent → register, `<` back): a sniffer made of two threads.
pub fn sniffing_relay(upstream: &str) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (log2, upstream) = (log.clone(), upstream.trim_start_matches("tcp:").to_string());
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = std::net::TcpStream::connect(&upstream) else { return };
            for (mut from, mut to, marker) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap(), '>'),
                (server.try_clone().unwrap(), client.try_clone().unwrap(), '<'),
            ] {
                let log = log2.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = from.read(&mut buf) {
                        let hex: Vec<String> = buf[..n].iter().map(|b| format!("{b:02X}")).collect();
                        log.lock().unwrap().push(format!("{marker} {}", hex.join(" ")));
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    (format!("tcp:{addr}"), log)
}
