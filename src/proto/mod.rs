//! The ZooKeeper client wire protocol: constants, shared data records, and the
//! request and reply records. Pure encoding and decoding; no I/O.

pub mod codes;
pub mod data;
pub mod records;

pub use codes::*;
pub use data::{Acl, Id, Stat};
pub use records::{
    decode_reply, decode_reply_header, decode_request, decode_watch_event, encode_reply,
    encode_watch_event, ClientInfo, ConnectRequest, ConnectResponse, CreateRequest, MultiHeader,
    MultiOp, MultiResult, ReadOp, ReconfigRequest, ReplyHeader, Request, RequestDecodeError,
    RequestHeader, Response, SetWatches, WatcherEvent,
};
