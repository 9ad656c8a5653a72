//! A deliberately small, blocking ZooKeeper wire client.
//!
//! It exists for what the `zookeeper-client` crate hides: the exact order of notifications
//! relative to replies on one connection, the per-operation results of a failed multi, and
//! requests the crate never sends on its own (removeWatches for a watch it does not track).
//! It is written from the protocol description, independently of the server under test, so a
//! bug in the server's codec cannot cancel out against the same bug here.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Operation codes used by the tests.
pub mod op {
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const SET_AUTH: i32 = 100;
    pub const ADD_WATCH: i32 = 106;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const RECONFIG: i32 = 16;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const CREATE_TTL: i32 = 21;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const SET_WATCHES2: i32 = 105;
    pub const WHO_AM_I: i32 = 107;
    pub const CLOSE_SESSION: i32 = -11;
    pub const MULTI_ERROR: i32 = -1;
}

/// Watcher types of removeWatches/checkWatches.
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
}

/// Builds a request body in jute encoding.
#[derive(Default, Clone)]
pub struct Body(pub Vec<u8>);

impl Body {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn int(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn long(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn boolean(mut self, v: bool) -> Self {
        self.0.push(u8::from(v));
        self
    }
    pub fn buffer(self, v: &[u8]) -> Self {
        let mut s = self.int(v.len() as i32);
        s.0.extend_from_slice(v);
        s
    }
    pub fn string(self, v: &str) -> Self {
        self.buffer(v.as_bytes())
    }
    /// An ACL vector of (perms, scheme, id).
    pub fn acls(self, acls: &[(i32, &str, &str)]) -> Self {
        let mut s = self.int(acls.len() as i32);
        for (perms, scheme, id) in acls {
            s = s.int(*perms).string(scheme).string(id);
        }
        s
    }
    /// world:anyone with all permissions.
    pub fn open_acl(self) -> Self {
        self.acls(&[(31, "world", "anyone")])
    }
}

/// Reads jute values from a reply body.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.buf.len() >= n,
            "reply too short: need {n} bytes, have {}",
            self.buf.len()
        );
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        head
    }
    pub fn int(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    pub fn long(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    pub fn boolean(&mut self) -> bool {
        self.take(1)[0] != 0
    }
    pub fn buffer(&mut self) -> Option<Vec<u8>> {
        let len = self.int();
        if len < 0 {
            return None;
        }
        Some(self.take(len as usize).to_vec())
    }
    pub fn string(&mut self) -> String {
        String::from_utf8(self.buffer().unwrap_or_default()).unwrap()
    }
    pub fn strings(&mut self) -> Vec<String> {
        let n = self.int();
        (0..n.max(0)).map(|_| self.string()).collect()
    }
    pub fn stat(&mut self) -> RawStat {
        RawStat {
            czxid: self.long(),
            mzxid: self.long(),
            ctime: self.long(),
            mtime: self.long(),
            version: self.int(),
            cversion: self.int(),
            aversion: self.int(),
            ephemeral_owner: self.long(),
            data_length: self.int(),
            num_children: self.int(),
            pzxid: self.long(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The Stat record as it travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawStat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

/// One reply to a request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

/// Something that arrived on the connection, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// A watch notification: (event type, keeper state, path).
    Event {
        event_type: i32,
        state: i32,
        path: String,
    },
    /// The reply to the request with this xid.
    Reply { xid: i32, err: i32 },
}

/// What a client asks for in its handshake (`ConnectRequest`).
#[derive(Debug, Clone)]
pub struct ConnectParams {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    /// 0 asks for a new session; anything else resumes that session.
    pub session_id: i64,
    pub password: Vec<u8>,
    /// `None` leaves the optional trailing flag out, as old clients do.
    pub read_only: Option<bool>,
}

impl Default for ConnectParams {
    fn default() -> Self {
        ConnectParams {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0,
            password: vec![0; 16],
            read_only: Some(false),
        }
    }
}

/// The server's `ConnectResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectAnswer {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    /// `None` when the server sent no read-only flag.
    pub read_only: Option<bool>,
}

/// A blocking session on one TCP connection.
pub struct RawClient {
    stream: TcpStream,
    next_xid: i32,
    /// Every notification and reply seen so far, in wire order.
    pub arrivals: Vec<Arrival>,
    pub session_id: i64,
    pub negotiated_timeout: i32,
    /// The session password the server handed out (all zeros until a session exists).
    pub password: Vec<u8>,
    /// The highest zxid seen in any reply or notification header, as a client tracks it for
    /// reconnection.
    pub last_zxid: i64,
}

impl RawClient {
    /// Connects and establishes a new session, every step bounded by `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut client = RawClient {
            stream,
            next_xid: 1,
            arrivals: Vec::new(),
            session_id: 0,
            negotiated_timeout: 0,
            password: vec![0; 16],
            last_zxid: 0,
        };
        let connect = Body::new()
            .int(0) // protocol version
            .long(0) // last zxid seen
            .int(10_000) // requested session timeout
            .long(0) // session id: new session
            .buffer(&[0u8; 16]) // password
            .boolean(false); // read-only not allowed
        client.write_frame(&connect.0)?;
        let frame = client.read_frame()?;
        if frame.len() < 4 + 4 + 8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("connect response too short ({} bytes)", frame.len()),
            ));
        }
        let mut r = Reader::new(&frame);
        let _protocol = r.int();
        client.negotiated_timeout = r.int();
        client.session_id = r.long();
        if let Some(password) = r.buffer() {
            client.password = password;
        }
        if client.negotiated_timeout <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "server refused the session (timeout <= 0)",
            ));
        }
        Ok(client)
    }

    /// Opens a TCP connection without a handshake, for tests that send their own bytes.
    pub fn connect_bare(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            next_xid: 1,
            arrivals: Vec::new(),
            session_id: 0,
            negotiated_timeout: 0,
            password: vec![0; 16],
            last_zxid: 0,
        })
    }

    /// Connects and sends `params` as the handshake; returns the client and the server's
    /// answer whatever it says (a refusal is an answer with timeout 0). Fails when the server
    /// closes the connection without answering.
    pub fn connect_with(
        addr: SocketAddr,
        timeout: Duration,
        params: &ConnectParams,
    ) -> io::Result<(Self, ConnectAnswer)> {
        let mut client = Self::connect_bare(addr, timeout)?;
        let mut connect = Body::new()
            .int(params.protocol_version)
            .long(params.last_zxid_seen)
            .int(params.timeout_ms)
            .long(params.session_id)
            .buffer(&params.password);
        if let Some(read_only) = params.read_only {
            connect = connect.boolean(read_only);
        }
        client.write_frame(&connect.0)?;
        let frame = client.read_frame()?;
        let mut r = Reader::new(&frame);
        let answer = ConnectAnswer {
            protocol_version: r.int(),
            timeout_ms: r.int(),
            session_id: r.long(),
            password: r.buffer().unwrap_or_default(),
            read_only: (!r.is_empty()).then(|| r.boolean()),
        };
        client.session_id = answer.session_id;
        client.negotiated_timeout = answer.timeout_ms;
        client.password = answer.password.clone();
        client.last_zxid = params.last_zxid_seen;
        Ok((client, answer))
    }

    /// Resumes this client's session on a new TCP connection, telling the server the last
    /// zxid this client saw.
    pub fn reconnect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> io::Result<(Self, ConnectAnswer)> {
        Self::connect_with(
            addr,
            timeout,
            &ConnectParams {
                last_zxid_seen: self.last_zxid,
                timeout_ms: self.negotiated_timeout,
                session_id: self.session_id,
                password: self.password.clone(),
                ..ConnectParams::default()
            },
        )
    }

    /// Drops the TCP connection without closing the session, as a client that loses its
    /// network does.
    pub fn disconnect(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Sends `bytes` as they are, no framing.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one length-prefixed frame holding `payload`.
    pub fn send_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        self.write_frame(payload)
    }

    /// Sends a request with a chosen xid (pings, setWatches and other special xids).
    pub fn send_with_xid(&mut self, xid: i32, opcode: i32, body: &Body) -> io::Result<()> {
        let mut payload = Body::new().int(xid).int(opcode).0;
        payload.extend_from_slice(&body.0);
        self.write_frame(&payload)
    }

    /// Sends a ping (xid -2) and waits for its answer.
    pub fn ping(&mut self) -> io::Result<Reply> {
        self.send_with_xid(-2, op::PING, &Body::new())?;
        self.wait_reply_including_pings(-2)
    }

    /// Sends setWatches2 (xid -8) and waits for its reply; notifications that the server fires
    /// on the way are recorded in `arrivals`.
    pub fn set_watches2(&mut self, relative_zxid: i64, watches: &WatchSet) -> io::Result<Reply> {
        let strings = |body: Body, paths: &[&str]| {
            let mut body = body.int(paths.len() as i32);
            for p in paths {
                body = body.string(p);
            }
            body
        };
        let mut body = Body::new().long(relative_zxid);
        body = strings(body, &watches.data);
        body = strings(body, &watches.exist);
        body = strings(body, &watches.child);
        body = strings(body, &watches.persistent);
        body = strings(body, &watches.persistent_recursive);
        self.send_with_xid(-8, op::SET_WATCHES2, &body)?;
        self.wait_reply(-8)
    }

    /// Reads until a notification arrives or `timeout` passes; returns the notifications
    /// recorded so far (and clears them), which is empty on timeout.
    pub fn wait_events(&mut self, timeout: Duration) -> io::Result<Vec<(i32, String)>> {
        let deadline = std::time::Instant::now() + timeout;
        let restore = self.stream.read_timeout()?;
        let result = loop {
            if self
                .arrivals
                .iter()
                .any(|a| matches!(a, Arrival::Event { .. }))
            {
                break Ok(());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break Ok(());
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.read_one() {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break Ok(())
                }
                Err(e) => break Err(e),
            }
        };
        self.stream.set_read_timeout(restore)?;
        result.map(|()| self.take_events())
    }

    /// Whether the server closes this connection within `timeout` (EOF or reset), reading
    /// and discarding whatever it still sends first.
    pub fn closed_by_server(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }

    /// Reads one frame and records it in `arrivals` (pings included as replies with xid -2).
    fn read_one(&mut self) -> io::Result<()> {
        let frame = self.read_frame()?;
        let mut r = Reader::new(&frame);
        let xid = r.int();
        let zxid = r.long();
        let err = r.int();
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
        if xid == -1 {
            let event_type = r.int();
            let state = r.int();
            let path = r.string();
            self.arrivals.push(Arrival::Event {
                event_type,
                state,
                path,
            });
        } else {
            self.arrivals.push(Arrival::Reply { xid, err });
        }
        Ok(())
    }

    fn wait_reply_including_pings(&mut self, xid: i32) -> io::Result<Reply> {
        loop {
            let frame = self.read_frame()?;
            let mut r = Reader::new(&frame);
            let got_xid = r.int();
            let zxid = r.long();
            let err = r.int();
            if zxid > self.last_zxid {
                self.last_zxid = zxid;
            }
            if got_xid == -1 {
                let event_type = r.int();
                let state = r.int();
                let path = r.string();
                self.arrivals.push(Arrival::Event {
                    event_type,
                    state,
                    path,
                });
                continue;
            }
            if got_xid == xid {
                return Ok(Reply {
                    xid: got_xid,
                    zxid,
                    err,
                    body: frame[16..].to_vec(),
                });
            }
            self.arrivals.push(Arrival::Reply { xid: got_xid, err });
        }
    }

    fn write_frame(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 4);
        frame.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame)
    }

    fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        if !(0..=64 << 20).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad frame length {len}"),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Sends a request without waiting; returns its xid.
    pub fn send(&mut self, opcode: i32, body: &Body) -> io::Result<i32> {
        let xid = if opcode == op::SET_AUTH {
            -4
        } else {
            self.next_xid
        };
        if opcode != op::SET_AUTH {
            self.next_xid += 1;
        }
        let mut payload = Body::new().int(xid).int(opcode).0;
        payload.extend_from_slice(&body.0);
        self.write_frame(&payload)?;
        Ok(xid)
    }

    /// Reads until the reply to `xid` arrives, recording notifications on the way.
    pub fn wait_reply(&mut self, xid: i32) -> io::Result<Reply> {
        loop {
            let frame = self.read_frame()?;
            let mut r = Reader::new(&frame);
            let got_xid = r.int();
            let zxid = r.long();
            let err = r.int();
            if zxid > self.last_zxid {
                self.last_zxid = zxid;
            }
            if got_xid == -1 {
                let event_type = r.int();
                let state = r.int();
                let path = r.string();
                self.arrivals.push(Arrival::Event {
                    event_type,
                    state,
                    path,
                });
                continue;
            }
            if got_xid == -2 {
                continue; // ping reply
            }
            self.arrivals.push(Arrival::Reply { xid: got_xid, err });
            let body = frame[16..].to_vec();
            if got_xid == xid {
                return Ok(Reply {
                    xid: got_xid,
                    zxid,
                    err,
                    body,
                });
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub fn call(&mut self, opcode: i32, body: &Body) -> io::Result<Reply> {
        let xid = self.send(opcode, body)?;
        self.wait_reply(xid)
    }

    /// Notifications received since the last call, in arrival order; clears them.
    pub fn take_events(&mut self) -> Vec<(i32, String)> {
        let events = self
            .arrivals
            .iter()
            .filter_map(|a| match a {
                Arrival::Event {
                    event_type, path, ..
                } => Some((*event_type, path.clone())),
                Arrival::Reply { .. } => None,
            })
            .collect();
        self.arrivals.clear();
        events
    }

    /// Closes the session politely so the server drops its ephemerals now.
    pub fn close(mut self) -> io::Result<()> {
        let xid = self.send(op::CLOSE_SESSION, &Body::new())?;
        // The server may close the socket right after (or instead of) replying.
        match self.wait_reply(xid) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The watches a reconnecting client re-registers with setWatches2.
#[derive(Debug, Clone, Default)]
pub struct WatchSet<'a> {
    pub data: Vec<&'a str>,
    pub exist: Vec<&'a str>,
    pub child: Vec<&'a str>,
    pub persistent: Vec<&'a str>,
    pub persistent_recursive: Vec<&'a str>,
}

/// Encodes one multi: a list of (opcode, body) ops.
pub fn multi_body(ops: &[(i32, Body)]) -> Body {
    let mut body = Body::new();
    for (opcode, op_body) in ops {
        body = body.int(*opcode).boolean(false).int(-1);
        body.0.extend_from_slice(&op_body.0);
    }
    body.int(-1).boolean(true).int(-1)
}

/// One decoded multi result: (opcode of the result, error code, extra text).
pub fn decode_multi(reply: &Reply) -> Vec<(i32, i32, String)> {
    let mut r = Reader::new(&reply.body);
    let mut out = Vec::new();
    loop {
        let opcode = r.int();
        let done = r.boolean();
        let err = r.int();
        if done {
            break;
        }
        let extra = match opcode {
            op::MULTI_ERROR => format!("err={}", r.int()),
            op::CREATE => r.string(),
            op::CREATE2 => {
                let path = r.string();
                let stat = r.stat();
                format!("{path} {}", super::transcript::raw_stat_line(&stat))
            }
            op::SET_DATA => super::transcript::raw_stat_line(&r.stat()),
            _ => String::new(),
        };
        out.push((opcode, err, extra));
    }
    out
}
