//! The one place with OS-specific code.
//!
//! * Serial port names: Windows wants `\\.\COM10` for ports above 9; on Linux a `COMn`
//!   name given by habit maps to `/dev/ttyS{n-1}`.
//! * Pseudo-terminals for the emulators (Unix only; on Windows the emulators listen on
//!   TCP, and a virtual COM pair such as com0com can bridge them).

/// Turns a user-facing port name into what this OS's serial API opens.
pub fn serial_path(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let com_number = upper.strip_prefix("COM").and_then(|n| n.parse::<u32>().ok()).filter(|n| *n >= 1);
    #[cfg(windows)]
    {
        if let Some(n) = com_number {
            return if n > 9 { format!(r"\\.\COM{n}") } else { format!("COM{n}") };
        }
        name.to_string()
    }
    #[cfg(not(windows))]
    {
        match com_number {
            Some(n) => format!("/dev/ttyS{}", n - 1),
            None => name.to_string(),
        }
    }
}

/// A pseudo-terminal pair: the emulator keeps the master, a client opens the slave path.
#[cfg(unix)]
pub struct Pty {
    pub master: std::os::fd::OwnedFd,
    pub slave_path: String,
    /// Kept open so that the master does not see a hang-up while no client is attached.
    pub slave_keepalive: std::os::fd::OwnedFd,
}

/// Opens a raw (no echo, no line discipline) pseudo-terminal.
#[cfg(unix)]
pub fn open_pty() -> std::io::Result<Pty> {
    use nix::pty::openpty;
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    use std::os::fd::AsRawFd;
    let pair = openpty(None, None).map_err(std::io::Error::from)?;
    let mut t = tcgetattr(&pair.slave).map_err(std::io::Error::from)?;
    cfmakeraw(&mut t);
    tcsetattr(&pair.slave, SetArg::TCSANOW, &t).map_err(std::io::Error::from)?;
    let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", pair.slave.as_raw_fd()))
        .map(|p| p.to_string_lossy().into_owned())
        .or_else(|_| nix::unistd::ttyname(&pair.slave).map(|p| p.to_string_lossy().into_owned()))
        .map_err(|e| std::io::Error::other(format!("cannot name the pty slave: {e}")))?;
    // Not inherited by programs this process starts (openpty does not set close-on-exec,
    // unlike Rust's own files): a child holding both ends would keep the line alive and
    // pass for the port's other end.
    for fd in [pair.master.as_raw_fd(), pair.slave.as_raw_fd()] {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).map_err(std::io::Error::from)?;
    }
    // Non-blocking master for tokio.
    let flags = nix::fcntl::fcntl(pair.master.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(pair.master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(std::io::Error::from)?;
    Ok(Pty { master: pair.master, slave_path, slave_keepalive: pair.slave })
}

#[cfg(test)]
mod tests {
    #[test]
    fn com_names() {
        let p = super::serial_path("COM3");
        if cfg!(windows) {
            assert_eq!(p, "COM3");
            assert_eq!(super::serial_path("com12"), r"\\.\COM12");
        } else {
            assert_eq!(p, "/dev/ttyS2");
        }
        assert_eq!(super::serial_path("/dev/ttyUSB0"), "/dev/ttyUSB0");
    }
}

/// An async byte stream over a PTY master, for the emulators.
#[cfg(unix)]
pub struct PtyStream {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
    /// When set, bytes sent while the host's line speed differs are lost, as on a real
    /// serial line at the wrong baud. This is what makes speed detection testable.
    required_baud: Option<u32>,
}

/// The line speed the host set on the pty (Linux shares termios between both ends).
#[cfg(unix)]
#[cfg(target_os = "linux")]
fn pty_baud(fd: &std::os::fd::OwnedFd) -> Option<u32> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    // serialport sets speeds through termios2 (BOTHER), so read the numeric speed back
    // the same way. SAFETY: TCGETS2 fills the zeroed termios2 we own; nothing else.
    let mut t: libc::termios2 = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TCGETS2, &mut t) };
    (r == 0).then_some(t.c_ospeed)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn pty_baud(fd: &std::os::fd::OwnedFd) -> Option<u32> {
    use nix::libc;
    let t: libc::termios = nix::sys::termios::tcgetattr(fd).ok()?.into();
    // SAFETY: cfgetospeed only reads the termios value we own. (nix's typed wrapper
    // panics on speed codes it does not know, which a pty may report.)
    let speed = unsafe { libc::cfgetospeed(&t) };
    Some(match speed {
        libc::B2400 => 2400,
        libc::B4800 => 4800,
        libc::B9600 => 9600,
        libc::B19200 => 19200,
        libc::B38400 => 38400,
        libc::B57600 => 57600,
        libc::B115200 => 115_200,
        libc::B230400 => 230_400,
        _ => 0,
    })
}

#[cfg(unix)]
impl PtyStream {
    pub fn new(master: std::os::fd::OwnedFd) -> std::io::Result<PtyStream> {
        // SAFETY: `master` is moved in and owned by the AsyncFd, so the descriptor stays
        // open and is registered with the reactor exactly once, until the stream drops.
        let fd = unsafe { tokio::io::unix::AsyncFd::register(master) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(PtyStream { fd, required_baud: None })
    }

    /// Makes the stream deaf to a host whose line speed is not `baud`.
    pub fn require_baud(&mut self, baud: Option<u32>) {
        self.required_baud = baud;
    }

    /// Throws away whatever the client has sent and not yet been read (a cable pulled).
    pub fn discard_input(&self) {
        let _ = nix::sys::termios::tcflush(self.fd.get_ref(), nix::sys::termios::FlushArg::TCIFLUSH);
    }
}

#[cfg(unix)]
impl tokio::io::AsyncRead for PtyStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        loop {
            let mut guard = match self.fd.poll_read_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(fd.get_ref()), unfilled).map_err(std::io::Error::from)) {
                Ok(Ok(n)) => {
                    if n > 0 && self.required_baud.is_some() && pty_baud(self.fd.get_ref()) != self.required_baud {
                        continue; // garbage at the wrong speed: the device hears nothing
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(unix)]
impl tokio::io::AsyncWrite for PtyStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        loop {
            let mut guard = match self.fd.poll_write_ready(cx) {
                Poll::Ready(Ok(g)) => g,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
