//! What a client call can fail with.

use std::time::Duration;

use thiserror::Error;

use crate::jute::DecodeError;
use crate::proto::{ErrorCode, MultiResult};

/// Why a client call failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The server answered with an error code. `path` is the path the call
    /// named, as the caller gave it (chroot not included).
    #[error("{}", keeper_message(*.code, .path.as_deref()))]
    Keeper { code: i32, path: Option<String> },
    /// A `multi` failed: `index` is the first operation that failed with
    /// `code`; `results` holds one entry per operation as the server sent
    /// them (the failing one and those after it are errors).
    #[error("multi failed at operation {index}: {}", keeper_message(*.code, None))]
    Multi {
        index: usize,
        code: i32,
        results: Vec<MultiResult>,
    },
    /// The path was refused before anything was sent (Apache's client
    /// throws `IllegalArgumentException` for the same paths).
    #[error("{0}")]
    InvalidPath(String),
    /// An argument was refused before anything was sent.
    #[error("{0}")]
    InvalidArgument(String),
    /// The connection to the server dropped while the call was in flight or
    /// waiting to be sent: whether a write was applied is unknown.
    #[error("KeeperErrorCode = ConnectionLoss")]
    ConnectionLoss,
    /// The session is gone; the client will not reconnect.
    #[error("KeeperErrorCode = Session expired")]
    SessionExpired,
    /// The server refused our credentials; the client will not reconnect.
    #[error("KeeperErrorCode = AuthFailed")]
    AuthFailed,
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// No reply within the bound the caller set.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The reply was larger than the frame limit; it was read and dropped,
    /// and the connection stays up.
    #[error("the reply of {len} bytes exceeds the frame limit of {limit} bytes")]
    FrameTooLarge { len: usize, limit: usize },
    /// The connect string could not be parsed.
    #[error("invalid connect string {input:?}: {reason}")]
    ConnectString { input: String, reason: String },
    /// No server of the list could be reached in time.
    #[error("could not connect to any of {servers}: {last_error}")]
    Unreachable { servers: String, last_error: String },
    /// The server sent something that cannot be decoded.
    #[error("protocol error: {0}")]
    Protocol(#[from] DecodeError),
    /// The server answered with a reply of the wrong kind.
    #[error("unexpected reply: {0}")]
    UnexpectedReply(String),
    /// A socket error outside a session (four-letter words).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The server's error code, for [`Error::Keeper`] and the errors that
    /// have one in Apache's client.
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::Keeper { code, .. } | Error::Multi { code, .. } => Some(*code),
            Error::ConnectionLoss => Some(ErrorCode::ConnectionLoss.code()),
            Error::SessionExpired => Some(ErrorCode::SessionExpired.code()),
            Error::AuthFailed => Some(ErrorCode::AuthFailed.code()),
            Error::Timeout(_) => Some(ErrorCode::OperationTimeout.code()),
            _ => None,
        }
    }

    /// Whether this is the server's `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.code() == Some(code.code())
    }

    /// A keeper error with a path.
    pub(crate) fn keeper(code: i32, path: &str) -> Error {
        Error::Keeper {
            code,
            path: Some(path.to_string()),
        }
    }
}

/// Apache's short text for an error code (`KeeperException.getCodeMessage`),
/// which scripts written against zkCli.sh match on.
pub fn code_message(code: i32) -> String {
    use ErrorCode::*;
    let text = match ErrorCode::from_i32(code) {
        Some(Ok) => "ok",
        Some(SystemError) => "SystemError",
        Some(RuntimeInconsistency) => "RuntimeInconsistency",
        Some(DataInconsistency) => "DataInconsistency",
        Some(ConnectionLoss) => "ConnectionLoss",
        Some(MarshallingError) => "MarshallingError",
        Some(NewConfigNoQuorum) => "NewConfigNoQuorum",
        Some(ReconfigInProgress) => "ReconfigInProgress",
        Some(Unimplemented) => "Unimplemented",
        Some(OperationTimeout) => "OperationTimeout",
        Some(BadArguments) => "BadArguments",
        Some(ApiError) => "APIError",
        Some(NoNode) => "NoNode",
        Some(NoAuth) => "NoAuth",
        Some(BadVersion) => "BadVersion",
        Some(NoChildrenForEphemerals) => "NoChildrenForEphemerals",
        Some(NodeExists) => "NodeExists",
        Some(InvalidAcl) => "InvalidACL",
        Some(AuthFailed) => "AuthFailed",
        Some(NotEmpty) => "Directory not empty",
        Some(SessionExpired) => "Session expired",
        Some(InvalidCallback) => "Invalid callback",
        Some(SessionMoved) => "Session moved",
        Some(NotReadOnly) => "Not a read-only call",
        Some(EphemeralOnLocalSession) => "Ephemeral node on local session",
        Some(NoWatcher) => "No such watcher",
        Some(ReconfigDisabled) => "Reconfig is disabled",
        Some(SessionClosedRequireSaslAuth) => {
            "Session closed because client failed to authenticate"
        }
        Some(QuotaExceeded) => "Quota has exceeded",
        Some(Throttled) => "Op throttled due to high load",
        // Apache names these by their enum constant.
        Some(UnknownSession) => "Unknown error UNKNOWNSESSION",
        Some(RequestTimeout) => "Unknown error REQUESTTIMEOUT",
        None => return format!("Unknown error {code}"),
    };
    text.to_string()
}

/// `KeeperErrorCode = <text>[ for <path>]`, Apache's `KeeperException` message.
pub fn keeper_message(code: i32, path: Option<&str>) -> String {
    match path {
        Some(path) if !path.is_empty() => {
            format!("KeeperErrorCode = {} for {path}", code_message(code))
        }
        _ => format!("KeeperErrorCode = {}", code_message(code)),
    }
}

/// Shorthand for results of client calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
