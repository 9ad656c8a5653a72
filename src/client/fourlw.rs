//! Four-letter words: a word sent in place of a handshake, answered in text
//! and followed by the server closing the connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::Error;

/// The most text accepted in answer; `dump` and `cons` on a busy server are
/// the long ones.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Sends `word` (`ruok`, `srvr`, `mntr`, …) to `addr` (`host:port`) and
/// returns the whole answer, within `limit`.
pub async fn four_letter(addr: &str, word: &str, limit: Duration) -> Result<String, Error> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(word.as_bytes()).await?;
        let mut answer = Vec::new();
        (&mut stream)
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::Timeout(limit)),
    }
}
