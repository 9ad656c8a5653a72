//! The small fixed records that frame everything else.

use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};

/// The header in front of every request after the handshake
/// (`RequestHeader{int xid; int type}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestHeader {
    /// The client's request id, echoed in the reply; negative values are the
    /// special xids of [`crate::proto::xid`].
    pub xid: i32,
    /// The opcode (`type` on the wire).
    pub op: i32,
}

impl RequestHeader {
    /// Encoded size: two ints.
    pub const LEN: usize = 8;
}

impl Record for RequestHeader {
    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.xid);
        w.write_i32(self.op);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(RequestHeader {
            xid: r.read_i32()?,
            op: r.read_i32()?,
        })
    }
}

/// The header in front of every reply and notification
/// (`ReplyHeader{int xid; long zxid; int err}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyHeader {
    pub xid: i32,
    /// The last zxid the server had processed when it answered.
    pub zxid: i64,
    /// An [`crate::proto::ErrorCode`] value; 0 on success.
    pub err: i32,
}

impl ReplyHeader {
    /// Encoded size: int, long, int.
    pub const LEN: usize = 16;
}

impl Record for ReplyHeader {
    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.xid);
        w.write_i64(self.zxid);
        w.write_i32(self.err);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ReplyHeader {
            xid: r.read_i32()?,
            zxid: r.read_i64()?,
            err: r.read_i32()?,
        })
    }
}

/// Precedes each operation of a multi request and each result of a multi reply
/// (`MultiHeader{int type; boolean done; int err}`); a header with `done` set
/// ends the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MultiHeader {
    /// The member's opcode, or -1 for an error result and for the end marker.
    pub op: i32,
    pub done: bool,
    /// -1 in requests; in replies 0, or the error code of an error result.
    pub err: i32,
}

impl MultiHeader {
    /// Encoded size: int, boolean, int.
    pub const LEN: usize = 9;

    /// The marker that ends both multi requests and multi replies.
    pub const END: MultiHeader = MultiHeader {
        op: -1,
        done: true,
        err: -1,
    };

    /// The header of a request member: Apache's client always sends err -1.
    pub fn member(op: i32) -> MultiHeader {
        MultiHeader {
            op,
            done: false,
            err: -1,
        }
    }
}

impl Record for MultiHeader {
    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.op);
        w.write_bool(self.done);
        w.write_i32(self.err);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(MultiHeader {
            op: r.read_i32()?,
            done: r.read_bool()?,
            err: r.read_i32()?,
        })
    }
}

/// A watch notification's body (`WatcherEvent{int type; int state; ustring path}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatcherEvent {
    /// An [`crate::proto::EventType`] value.
    pub event_type: i32,
    /// A [`crate::proto::KeeperState`] value.
    pub state: i32,
    pub path: String,
}

impl Record for WatcherEvent {
    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.event_type);
        w.write_i32(self.state);
        w.write_string(&self.path);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(WatcherEvent {
            event_type: r.read_i32()?,
            state: r.read_i32()?,
            // Session-state events (type None) may carry a null path.
            path: r.read_opt_string()?.unwrap_or_default(),
        })
    }
}
