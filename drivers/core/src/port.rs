//! Where a device lives and how to reach it.
//!
//! A port is written the way people see it: `COM3`, `/dev/ttyACM0`,
//! `tcp:192.168.137.111:7778`, or `http://192.168.1.50:8088`. Serial ports, USB virtual
//! COM ports and pseudo-terminals all open through tokio-serial; TCP through tokio.
//! Byte-stream drivers get a boxed [`ByteStream`] and never know which it was, the way
//! tokio-modbus keeps its codec apart from RTU and TCP transports.
//!
//! An `http://` port is not a byte stream: the device answers requests (the УМКА
//! platform's JSON API). Its driver keeps its own HTTP client; [`open`] refuses it.

use crate::error::{DriverError, DriverResult, LinkFailure};
use std::fmt;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional async byte stream.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

pub type BoxStream = Box<dyn ByteStream>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// A serial device path or COM name, normalised for this OS.
    Serial { path: String },
    Tcp { host: String, port: u16 },
    /// A device that answers HTTP requests (`http://HOST[:PORT]`, port 8088 by default).
    Http { host: String, port: u16 },
}

/// The УМКА platform's default HTTP port.
pub const DEFAULT_HTTP_PORT: u16 = 8088;

impl PortSpec {
    /// Parses `tcp:host:port`, `http://host[:port]`, `COMn`, or a device path.
    pub fn parse(text: &str) -> Result<PortSpec, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty port name".into());
        }
        if let Some(rest) = t.strip_prefix("http://") {
            let rest = rest.strip_suffix('/').unwrap_or(rest);
            if rest.is_empty() || rest.contains(['/', '?', '#', '@']) || rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(format!("{t:?}: expected http://HOST:PORT (no path, no credentials)"));
            }
            let bad_port = |p: &str| format!("{t:?}: bad HTTP port {p:?}");
            let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
                let (h, after) = inner.split_once(']').ok_or_else(|| format!("{t:?}: unclosed [ in the host"))?;
                match after {
                    "" => (h, DEFAULT_HTTP_PORT),
                    a => {
                        let p = a.strip_prefix(':').ok_or_else(|| bad_port(a))?;
                        (h, p.parse::<u16>().map_err(|_| bad_port(p))?)
                    }
                }
            } else {
                match rest.rsplit_once(':') {
                    Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad_port(p))?),
                    None => (rest, DEFAULT_HTTP_PORT),
                }
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || port == 0 {
                return Err(format!("{t:?}: expected http://HOST:PORT"));
            }
            return Ok(PortSpec::Http { host: host.to_string(), port });
        }
        if t.starts_with("https://") {
            return Err(format!("{t:?}: the device API is plain HTTP on the local network; use http://HOST:PORT"));
        }
        if let Some(rest) = t.strip_prefix("tcp:").or_else(|| t.strip_prefix("tcp://")) {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("{t:?}: expected tcp:HOST:PORT"))?;
            let port: u16 = port.parse().map_err(|_| format!("{t:?}: bad TCP port {port:?}"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || port == 0 {
                return Err(format!("{t:?}: expected tcp:HOST:PORT"));
            }
            return Ok(PortSpec::Tcp { host: host.to_string(), port });
        }
        if t.chars().any(|c| c.is_control()) {
            return Err(format!("{t:?}: control characters in the port name"));
        }
        Ok(PortSpec::Serial { path: crate::platform::serial_path(t) })
    }

    pub fn is_tcp(&self) -> bool {
        matches!(self, PortSpec::Tcp { .. })
    }

    /// A request/response device (no byte stream, no line speed).
    pub fn is_http(&self) -> bool {
        matches!(self, PortSpec::Http { .. })
    }

    /// The base URL of an HTTP device, e.g. `http://127.0.0.1:8088`.
    pub fn http_base(&self) -> Option<String> {
        match self {
            PortSpec::Http { host, port } if host.contains(':') => Some(format!("http://[{host}]:{port}")),
            PortSpec::Http { host, port } => Some(format!("http://{host}:{port}")),
            _ => None,
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Serial { path } => f.write_str(path),
            PortSpec::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            PortSpec::Http { .. } => f.write_str(&self.http_base().unwrap_or_default()),
        }
    }
}

/// Opens the port. Serial ports are 8N1 without flow control and opened exclusively, so
/// a port held by another program fails with [`LinkFailure::PortBusy`].
pub async fn open(spec: &PortSpec, baud: u32, timeout: Duration) -> DriverResult<BoxStream> {
    match spec {
        PortSpec::Http { .. } => Err(DriverError::Unsupported(
            "an http:// port answers requests, not a byte stream: use a protocol that speaks HTTP (umka)",
        )),
        PortSpec::Tcp { host, port } => {
            let addr = format!("{host}:{port}");
            let s = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr))
                .await
                .map_err(|_| DriverError::link(LinkFailure::NoAnswer, format!("{addr}: connect timed out")))?
                .map_err(|e| DriverError::from_io(&e, &addr))?;
            let _ = s.set_nodelay(true);
            Ok(Box::new(s))
        }
        PortSpec::Serial { path } => {
            use tokio_serial::SerialPortBuilderExt;
            let builder = tokio_serial::new(path.as_str(), baud)
                .data_bits(tokio_serial::DataBits::Eight)
                .parity(tokio_serial::Parity::None)
                .stop_bits(tokio_serial::StopBits::One)
                .flow_control(tokio_serial::FlowControl::None)
                .timeout(timeout);
            let stream = builder.open_native_async().map_err(|e| serial_error(&e, path))?;
            Ok(Box::new(stream))
        }
    }
}

/// How long one write may take before the link is declared stalled. A device (or a peer
/// posing as one) that stops reading would otherwise block a writer forever once the
/// socket's or the serial driver's buffer is full.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(3);

/// Writes and flushes `bytes`, giving up after `wait` with a `link.no_answer` error that
/// says the device stopped taking data. Every link layer writes through this.
pub async fn write_within(stream: &mut BoxStream, bytes: &[u8], wait: Duration, what: &str) -> DriverResult<()> {
    use tokio::io::AsyncWriteExt;
    let work = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(wait, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(DriverError::from_io(&e, what)),
        Err(_) => Err(DriverError::link(
            LinkFailure::NoAnswer,
            format!("{what}: the device does not take data (a write did not finish in {} ms)", wait.as_millis()),
        )),
    }
}

fn serial_error(e: &tokio_serial::Error, path: &str) -> DriverError {
    use tokio_serial::ErrorKind;
    match e.kind() {
        // serialport reports a port locked by another opener (EBUSY under TIOCEXCL, or
        // another program's flock) as "no device": it is busy, not missing.
        ErrorKind::NoDevice if is_busy(&e.description) => DriverError::link(LinkFailure::PortBusy, format!("{path}: {e}")),
        ErrorKind::NoDevice => DriverError::link(LinkFailure::PortNotFound, format!("{path}: {e}")),
        ErrorKind::Io(kind) => DriverError::from_io(&std::io::Error::new(kind, e.description.clone()), path),
        _ => {
            let d = e.description.to_lowercase();
            let failure = if d.contains("busy") || d.contains("in use") {
                LinkFailure::PortBusy
            } else if d.contains("not found") || d.contains("no such") {
                LinkFailure::PortNotFound
            } else if d.contains("permission") || d.contains("access") {
                LinkFailure::PermissionDenied
            } else {
                LinkFailure::Io
            };
            DriverError::link(failure, format!("{path}: {e}"))
        }
    }
}

fn is_busy(description: &str) -> bool {
    let d = description.to_lowercase();
    // Windows says ERROR_ACCESS_DENIED for a COM port another program has open, in the
    // system's language; serialport keeps only that text.
    let windows_denied = cfg!(windows) && (d.contains("access") || d.contains("доступ"));
    d.contains("busy") || d.contains("lock") || windows_denied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn a_port_open_elsewhere_is_busy_not_missing() {
        let pty = crate::platform::open_pty().unwrap();
        let spec = PortSpec::parse(&pty.slave_path).unwrap();
        let _first = open(&spec, 9600, Duration::from_millis(200)).await.unwrap();
        let err = open(&spec, 9600, Duration::from_millis(200)).await.err().expect("the second open fails");
        assert_eq!(err.code(), "link.port_busy", "{err}");
        let gone = PortSpec::parse("/dev/ttyUSB-no-such-port").unwrap();
        assert_eq!(open(&gone, 9600, Duration::from_millis(200)).await.err().unwrap().code(), "link.port_not_found");
    }

    #[test]
    fn parse_ports() {
        assert_eq!(
            PortSpec::parse("tcp:127.0.0.1:7778").unwrap(),
            PortSpec::Tcp { host: "127.0.0.1".into(), port: 7778 }
        );
        assert!(PortSpec::parse("tcp:host").is_err());
        assert!(PortSpec::parse("tcp:host:99999").is_err());
        assert!(PortSpec::parse("").is_err());
        assert!(matches!(PortSpec::parse("COM3").unwrap(), PortSpec::Serial { .. }));
        assert_eq!(PortSpec::parse("/dev/ttyACM0").unwrap().to_string(), "/dev/ttyACM0");
    }

    #[test]
    fn parse_http_ports() {
        assert_eq!(
            PortSpec::parse("http://192.168.1.50:8088").unwrap(),
            PortSpec::Http { host: "192.168.1.50".into(), port: 8088 }
        );
        assert_eq!(PortSpec::parse("http://kassa/").unwrap(), PortSpec::Http { host: "kassa".into(), port: 8088 });
        assert_eq!(PortSpec::parse("http://[::1]:9000").unwrap().to_string(), "http://[::1]:9000");
        assert_eq!(PortSpec::parse("http://[::1]").unwrap(), PortSpec::Http { host: "::1".into(), port: 8088 });
        assert!(PortSpec::parse("http://host:0").is_err());
        assert!(PortSpec::parse("http://host:x").is_err());
        assert!(PortSpec::parse("http://1:1@host:8088").is_err());
        assert!(PortSpec::parse("http://host:8088/cashboxstatus.json").is_err());
        assert!(PortSpec::parse("https://host").is_err());
        assert!(PortSpec::parse("http://").is_err());
    }
}
