//! The serial ports of this PC: which there are, what USB device stands behind each, and
//! which program holds one.
//!
//! An engineer's first questions at a silent register are "does the PC see it at all?"
//! and "is another program (the vendor's test utility, a second agent) sitting on the
//! port?". The list comes from the `serialport` crate (on Linux without libudev it reads
//! `/sys/class/tty`, on Windows the registry/SetupAPI, on macOS IOKit). The holder is
//! named on Linux from `/proc/*/fd`; elsewhere a held port only shows as "busy" when we
//! try to open it.

use serde::Serialize;

/// One serial port and the USB identity behind it, if any.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PortInfo {
    /// What to put in the config: `/dev/ttyACM0`, `COM3`.
    pub port: String,
    /// `usb`, `pci`, `bluetooth` or `other`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usb: Option<UsbIds>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UsbIds {
    /// `VID:PID` in lower-case hex, as `lsusb` and Device Manager show it.
    pub vid_pid: String,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial_number: Option<String>,
}

impl PortInfo {
    /// A port given by name (`--port`), without anything known about it.
    pub fn named(port: &str) -> PortInfo {
        PortInfo { port: port.to_string(), kind: "other", usb: None }
    }

    /// `1fc9:0083 ATOL «FPrint»`, or empty for a port without USB.
    pub fn usb_text(&self) -> String {
        let Some(u) = &self.usb else { return String::new() };
        let names: Vec<&str> = [u.manufacturer.as_deref(), u.product.as_deref()].into_iter().flatten().collect();
        if names.is_empty() {
            u.vid_pid.clone()
        } else {
            format!("{} {}", u.vid_pid, names.join(" "))
        }
    }
}

/// Every serial port the OS knows, sorted by name. Never fails: an OS that cannot list
/// them gives an empty list (the engineer can still name ports with `--port`).
pub fn list() -> Vec<PortInfo> {
    #[cfg(target_os = "linux")]
    if !std::path::Path::new("/sys/class/tty").is_dir() {
        // serialport panics without sysfs (some containers).
        return Vec::new();
    }
    let found = std::panic::catch_unwind(tokio_serial::available_ports).ok().and_then(Result::ok).unwrap_or_default();
    let mut ports: Vec<PortInfo> = found
        .into_iter()
        .map(|p| {
            use tokio_serial::SerialPortType as T;
            let (kind, usb) = match p.port_type {
                T::UsbPort(u) => (
                    "usb",
                    Some(UsbIds {
                        vid_pid: format!("{:04x}:{:04x}", u.vid, u.pid),
                        manufacturer: u.manufacturer,
                        product: u.product,
                        serial_number: u.serial_number,
                    }),
                ),
                T::PciPort => ("pci", None),
                T::BluetoothPort => ("bluetooth", None),
                T::Unknown => ("other", None),
            };
            PortInfo { port: p.port_name, kind, usb }
        })
        .collect();
    ports.sort_by(|a, b| natural_key(&a.port).cmp(&natural_key(&b.port)));
    ports.dedup_by(|a, b| a.port == b.port);
    ports
}

/// Sorts `COM10` after `COM9` and `ttyUSB10` after `ttyUSB2`.
fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, tail) = name.split_at(name.len() - digits);
    (head.to_string(), tail.parse().unwrap_or(0))
}

/// A program that has the port open.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The program's name as the OS shows it (`/proc/PID/comm`).
    pub program: String,
}

impl Holder {
    pub fn text(list: &[Holder]) -> String {
        list.iter().map(|h| format!("{} (PID {})", h.program, h.pid)).collect::<Vec<_>>().join(", ")
    }
}

/// The programs other than this one that hold `port` open. Empty where the OS does not
/// tell (then a held port shows up as "busy" when opened).
pub fn holders(port: &str) -> Vec<Holder> {
    #[cfg(target_os = "linux")]
    {
        linux::holders(port)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        Vec::new()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Holder;
    use std::path::{Path, PathBuf};

    /// Scans `/proc/*/fd` for descriptors on the device. A process that also holds the
    /// master side of the same pseudo-terminal is the line's other end (an emulator, a
    /// terminal), not a competitor for the port, so it is left out.
    pub fn holders(port: &str) -> Vec<Holder> {
        let Ok(device) = std::fs::canonicalize(port) else { return Vec::new() };
        let pty_index: Option<u32> =
            device.strip_prefix("/dev/pts").ok().and_then(|n| n.to_str()).and_then(|n| n.parse().ok());
        let me = std::process::id();
        let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
        let mut out = Vec::new();
        for entry in procs.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if pid == me {
                continue;
            }
            let fd_dir = entry.path().join("fd");
            // Unreadable for another user's process unless we are root: nothing to say.
            let Ok(fds) = std::fs::read_dir(&fd_dir) else { continue };
            let (mut holds, mut is_other_end) = (false, false);
            for fd in fds.flatten() {
                let Ok(target) = std::fs::read_link(fd.path()) else { continue };
                if target == device {
                    holds = true;
                } else if let Some(index) = pty_index {
                    if is_ptmx(&target) && master_index(&entry.path(), &fd.file_name()) == Some(index) {
                        is_other_end = true;
                    }
                }
            }
            if holds && !is_other_end {
                let program = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_string();
                out.push(Holder { pid, program: if program.is_empty() { "?".into() } else { program } });
            }
        }
        out.sort_by_key(|h| h.pid);
        out
    }

    fn is_ptmx(target: &Path) -> bool {
        target == Path::new("/dev/ptmx") || target == Path::new("/dev/pts/ptmx")
    }

    /// The pty number a master descriptor serves (`tty-index:` in its fdinfo).
    fn master_index(proc_dir: &Path, fd: &std::ffi::OsStr) -> Option<u32> {
        let info = std::fs::read_to_string(PathBuf::from(proc_dir).join("fdinfo").join(fd)).ok()?;
        info.lines().find_map(|l| l.strip_prefix("tty-index:")).and_then(|v| v.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = ["COM10", "COM2", "COM1"].map(PortInfo::named).to_vec();
        v.sort_by(|a, b| natural_key(&a.port).cmp(&natural_key(&b.port)));
        assert_eq!(v.iter().map(|p| p.port.as_str()).collect::<Vec<_>>(), ["COM1", "COM2", "COM10"]);
    }

    #[test]
    fn listing_never_panics() {
        let _ = list();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_pty_owner_is_not_a_holder_but_another_process_is() {
        let pty = kkm_core::platform::open_pty().unwrap();
        // This process holds both ends: the line's other end, not a competitor (and it is us).
        assert!(holders(&pty.slave_path).is_empty());
        let file = std::fs::File::open(&pty.slave_path).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").stdin(file).spawn().unwrap();
        let found = holders(&pty.slave_path);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found, vec![Holder { pid: child.id(), program: "sleep".into() }]);
    }
}
