//! Raw-socket helpers: speak AMQP by hand to test what no client library would send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Frame bytes: type, channel, payload, frame-end.
pub fn frame(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![frame_type];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(0xCE);
    f
}

/// Method payload: class, method, arguments.
pub fn method(class: u16, method: u16, args: &[u8]) -> Vec<u8> {
    let mut p = class.to_be_bytes().to_vec();
    p.extend_from_slice(&method.to_be_bytes());
    p.extend_from_slice(args);
    p
}

/// A short string.
pub fn short(s: &str) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// Frame type.
    pub frame_type: u8,
    /// Channel.
    pub channel: u16,
    /// Payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// (class, method) of a method frame.
    pub fn class_method(&self) -> Option<(u16, u16)> {
        if self.frame_type != 1 || self.payload.len() < 4 {
            return None;
        }
        Some((
            u16::from_be_bytes([self.payload[0], self.payload[1]]),
            u16::from_be_bytes([self.payload[2], self.payload[3]]),
        ))
    }

    /// Reply code of a connection.close or channel.close frame.
    pub fn close_code(&self) -> Option<u16> {
        match self.class_method()? {
            (10, 50) | (20, 40) => Some(u16::from_be_bytes([self.payload[4], self.payload[5]])),
            _ => None,
        }
    }
}

/// A raw client connection.
pub struct RawClient {
    /// The socket.
    pub stream: TcpStream,
}

impl RawClient {
    /// Connect (no bytes sent).
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        RawClient { stream }
    }

    /// Connect and complete the handshake as guest with the given heartbeat.
    pub fn open(addr: SocketAddr, heartbeat: u16) -> RawClient {
        Self::open_with_capabilities(addr, heartbeat, &[])
    }

    /// Same, announcing the given client capabilities (e.g. `connection.blocked`) in the
    /// client properties of start-ok.
    pub fn open_with_capabilities(
        addr: SocketAddr,
        heartbeat: u16,
        capabilities: &[&str],
    ) -> RawClient {
        let mut c = Self::connect(addr);
        c.send(b"AMQP\x00\x00\x09\x01");
        let start = c.read_frame().expect("connection.start");
        assert_eq!(start.class_method(), Some((10, 10)));
        let mut args = if capabilities.is_empty() {
            0u32.to_be_bytes().to_vec() // empty client properties
        } else {
            let mut caps = Vec::new();
            for cap in capabilities {
                caps.extend(short(cap));
                caps.extend_from_slice(&[b't', 1]);
            }
            let mut entry = short("capabilities");
            entry.push(b'F');
            entry.extend_from_slice(&(caps.len() as u32).to_be_bytes());
            entry.extend(caps);
            let mut table = (entry.len() as u32).to_be_bytes().to_vec();
            table.extend(entry);
            table
        };
        args.extend(short("PLAIN"));
        let response = b"\0guest\0guest";
        args.extend_from_slice(&(response.len() as u32).to_be_bytes());
        args.extend_from_slice(response);
        args.extend(short("en_US"));
        c.send(&frame(1, 0, &method(10, 11, &args)));
        let tune = c.read_frame().expect("connection.tune");
        assert_eq!(tune.class_method(), Some((10, 30)));
        let mut tune_ok = 2047u16.to_be_bytes().to_vec();
        tune_ok.extend_from_slice(&131_072u32.to_be_bytes());
        tune_ok.extend_from_slice(&heartbeat.to_be_bytes());
        c.send(&frame(1, 0, &method(10, 31, &tune_ok)));
        let mut open = short("/");
        open.extend(short(""));
        open.push(0);
        c.send(&frame(1, 0, &method(10, 40, &open)));
        let open_ok = c.read_frame().expect("connection.open-ok");
        assert_eq!(open_ok.class_method(), Some((10, 41)));
        c
    }

    /// Write bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Write bytes, ignoring errors (the broker may already have closed).
    pub fn send_lossy(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Read exactly `n` bytes, or None at EOF/error.
    pub fn read_exact(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0; n];
        self.stream.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    /// Read one frame, or None at EOF/error/timeout.
    pub fn read_frame(&mut self) -> Option<RawFrame> {
        let head = self.read_exact(7)?;
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        let mut payload = self.read_exact(size + 1)?;
        assert_eq!(payload.pop(), Some(0xCE), "frame end");
        Some(RawFrame {
            frame_type: head[0],
            channel: u16::from_be_bytes([head[1], head[2]]),
            payload,
        })
    }

    /// Read frames until a connection.close or channel.close arrives; heartbeats skipped.
    pub fn read_close(&mut self) -> Option<RawFrame> {
        while let Some(f) = self.read_frame() {
            if f.close_code().is_some() {
                return Some(f);
            }
        }
        None
    }

    /// True once the broker has closed the socket (reads return EOF or reset).
    pub fn is_closed_by_peer(&mut self) -> bool {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }
}
