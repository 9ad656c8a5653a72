//! The server. (Filled in by the server work.)
