//! gRPC over HTTP/2: service/method from `:path`, `grpc-status` values, and the
//! length-prefixed message framing inside DATA frames.
//!
//! There is no gRPC parser of its own: [`crate::http2::Http2Parser`] reads the connection
//! and recognises a gRPC call per stream from its `content-type`, then reports it with the
//! pieces from this module. Message bodies are never buffered: [`MessageFramer`] counts
//! messages and checks their declared lengths as DATA bytes stream past.

/// Largest message length accepted before [`FramerEvents::too_large`] is raised: gRPC's own
/// default receive limit (4 MiB), so a legitimate peer never reaches it.
pub const MAX_MESSAGE: u32 = 4 * 1024 * 1024;

/// Splits a gRPC `:path` (`/package.Service/Method`) into service and method. Both must be
/// non-empty and the path must hold exactly two `/`; anything else is not a gRPC method
/// name and gets `None` (policy then matches no gRPC rule against it).
pub fn split_path(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = path.strip_prefix(b"/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let service = rest.get(..slash)?;
    let method = rest.get(slash + 1..)?;
    if service.is_empty() || method.is_empty() || method.contains(&b'/') {
        return None;
    }
    Some((service, method))
}

/// Whether a `content-type` value makes the stream a gRPC call (`application/grpc`,
/// `application/grpc+proto`, `application/grpc-web`, ...). Media types are
/// case-insensitive.
pub fn is_grpc_content_type(ct: &[u8]) -> bool {
    const P: &[u8] = b"application/grpc";
    ct.get(..P.len()).is_some_and(|h| h.eq_ignore_ascii_case(P))
}

/// Parses a `grpc-status` value (a decimal code, 0 = OK). Unknown codes are data.
pub fn parse_status(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 9 {
        return None;
    }
    let mut n = 0u32;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// What one [`MessageFramer::push`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FramerEvents {
    /// Messages whose last byte was in this push.
    pub completed: u32,
    /// Of the message headers read in this push, how many had the compressed flag set.
    pub compressed: u32,
    /// A message declared a length over [`MAX_MESSAGE`] (raised once per framer).
    pub too_large: bool,
    /// A compressed-flag byte other than 0 or 1 (raised once per framer).
    pub bad_flag: bool,
}

/// Follows the 5-byte message prefix (compressed flag, 4-byte big-endian length) through
/// one direction of one stream, across DATA frames and feeds, skipping message bodies by
/// counting. A few bytes of state, no buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct MessageFramer {
    head: [u8; 5],
    have: u8,
    /// Body bytes of the current message still to skip.
    left: u32,
    messages: u32,
    flagged_large: bool,
    flagged_flag: bool,
    /// After a reassembly gap the prefix boundaries are unknown: stop counting.
    lost: bool,
}

impl MessageFramer {
    /// Messages completed so far.
    pub fn messages(&self) -> u32 {
        self.messages
    }

    /// True between messages (no partial prefix or body pending).
    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.left == 0
    }

    /// The framing can no longer be followed (bytes were lost).
    pub fn lose_sync(&mut self) {
        self.lost = true;
    }

    /// Consumes DATA payload bytes.
    pub fn push(&mut self, mut data: &[u8]) -> FramerEvents {
        let mut ev = FramerEvents::default();
        if self.lost {
            return ev;
        }
        while !data.is_empty() {
            if self.left > 0 {
                let take = data.len().min(self.left as usize);
                self.left -= take as u32;
                data = data.get(take..).unwrap_or_default();
                if self.left == 0 {
                    self.complete(&mut ev);
                }
                continue;
            }
            let want = 5 - usize::from(self.have);
            let take = want.min(data.len());
            if let (Some(dst), Some(src)) = (
                self.head
                    .get_mut(usize::from(self.have)..usize::from(self.have) + take),
                data.get(..take),
            ) {
                dst.copy_from_slice(src);
            }
            self.have += take as u8;
            data = data.get(take..).unwrap_or_default();
            if self.have < 5 {
                break;
            }
            self.have = 0;
            let [flag, a, b, c, d] = self.head;
            match flag {
                0 => {}
                1 => ev.compressed += 1,
                _ => {
                    if !self.flagged_flag {
                        self.flagged_flag = true;
                        ev.bad_flag = true;
                    }
                }
            }
            let len = u32::from_be_bytes([a, b, c, d]);
            if len > MAX_MESSAGE && !self.flagged_large {
                self.flagged_large = true;
                ev.too_large = true;
            }
            self.left = len;
            if len == 0 {
                self.complete(&mut ev);
            }
        }
        ev
    }

    fn complete(&mut self, ev: &mut FramerEvents) {
        self.messages = self.messages.saturating_add(1);
        ev.completed = ev.completed.saturating_add(1);
    }
}

#[cfg(test)]
mod tests;
