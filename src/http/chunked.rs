//! An answer built as a list of small chunks and sent chunk by chunk.
//!
//! A list page of 500 incidents is megabytes. Built as one `Vec`, it doubles its way up
//! (copying itself each time) and is held whole until the client has read the last byte;
//! a dozen clients walking the list hold a dozen of them. As chunks, it is never copied
//! and each chunk is freed as soon as it is written to the socket.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};

/// Bytes per chunk: small enough that a chunk comes from the allocator's free lists and
/// goes back to them, big enough that a page is tens of writes, not thousands.
const CHUNK: usize = 32 * 1024;

/// Collects bytes into chunks of [`CHUNK`]; [`Chunks::into_body`] sends them.
#[derive(Default)]
pub struct Chunks {
    done: VecDeque<Bytes>,
    open: Vec<u8>,
    len: u64,
}

impl Chunks {
    pub fn extend(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        while !bytes.is_empty() {
            if self.open.capacity() == 0 {
                self.open.reserve_exact(CHUNK);
            }
            let room = CHUNK - self.open.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.open.extend_from_slice(now);
            bytes = rest;
            if self.open.len() == CHUNK {
                self.done
                    .push_back(Bytes::from(std::mem::take(&mut self.open)));
            }
        }
    }

    pub fn into_body(mut self) -> Body {
        if !self.open.is_empty() {
            self.done.push_back(Bytes::from(self.open));
        }
        Body::new(Sending {
            chunks: self.done,
            left: self.len,
        })
    }
}

struct Sending {
    chunks: VecDeque<Bytes>,
    left: u64,
}

impl http_body::Body for Sending {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.left -= chunk.len() as u64;
        }
        Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    // Exact, so the answer carries a Content-Length as a whole body would.
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_body_sent_in_chunks_is_the_bytes_written_in_order() {
        let mut chunks = Chunks::default();
        let written: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for piece in written.chunks(7_777) {
            chunks.extend(piece);
        }
        chunks.extend(b"");
        let body = chunks.into_body();
        assert_eq!(
            http_body::Body::size_hint(&body).exact(),
            Some(written.len() as u64)
        );
        let sent = body.collect().await.unwrap().to_bytes();
        assert_eq!(sent.len(), written.len());
        assert!(sent == written, "the bytes sent differ from those written");
    }
}
