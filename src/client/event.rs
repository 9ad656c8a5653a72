//! What the client reports besides replies: watch notifications, session
//! state changes, and the connection status.

use std::fmt;
use std::net::SocketAddr;

use crate::proto::{EventType, KeeperState};

/// A watch notification or a session state change, as Apache's client hands
/// them to its default watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: EventType,
    pub state: KeeperState,
    /// The node the event is about (chroot removed); `None` for session
    /// state changes.
    pub path: Option<String>,
    /// The zxid of the change that fired the watch; -1 when there is none
    /// (state changes, watch removals).
    pub zxid: i64,
}

impl WatchedEvent {
    /// A session state change.
    pub fn state(state: KeeperState) -> WatchedEvent {
        WatchedEvent {
            event_type: EventType::None,
            state,
            path: None,
            zxid: -1,
        }
    }
}

/// Apache 3.9's `WatchedEvent.toString()`, which zkCli prints.
impl fmt::Display for WatchedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WatchedEvent state:{:?} type:{:?} path:{} zxid: {}",
            self.state,
            self.event_type,
            self.path.as_deref().unwrap_or("null"),
            self.zxid
        )
    }
}

/// Where the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// No session yet: the first connection is being made.
    Connecting,
    /// Connected with a live session.
    Connected,
    /// Connected to a read-only server (asked for with `read_only`).
    ConnectedReadOnly,
    /// The connection was lost; the client is reconnecting to resume the
    /// session. Requests wait or fail with `ConnectionLoss`.
    Disconnected,
    /// The server declared the session expired. Final.
    Expired,
    /// The server refused our credentials. Final.
    AuthFailed,
    /// Closed by [`super::Client::close`]. Final.
    Closed,
}

impl SessionState {
    /// Whether the client will never serve a request again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }

    /// Whether a server is connected.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }

    /// The name Apache's `ZooKeeper.States` gives this state, as the zkCli
    /// prompt shows it.
    pub fn apache_name(self) -> &'static str {
        match self {
            SessionState::Connecting | SessionState::Disconnected => "CONNECTING",
            SessionState::Connected => "CONNECTED",
            SessionState::ConnectedReadOnly => "CONNECTEDREADONLY",
            SessionState::Expired | SessionState::Closed => "CLOSED",
            SessionState::AuthFailed => "AUTH_FAILED",
        }
    }
}

/// A snapshot of the connection, published on every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: SessionState,
    /// The server connected to, or last tried while reconnecting.
    pub server: Option<SocketAddr>,
    /// 0 until the first session is established.
    pub session_id: i64,
    /// The session timeout the server granted, in milliseconds.
    pub negotiated_timeout_ms: u32,
    /// Why the last connection ended or the last attempt failed.
    pub last_error: Option<String>,
}

impl Status {
    pub(crate) fn initial() -> Status {
        Status {
            state: SessionState::Connecting,
            server: None,
            session_id: 0,
            negotiated_timeout_ms: 0,
            last_error: None,
        }
    }
}
