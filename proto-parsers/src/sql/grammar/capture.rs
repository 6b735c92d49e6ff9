//! The statements' texts, copied as the bytes stream past ([`Capture`]).

use crate::sql::TEXT_MAX;

/// The texts of the statements of the batch being built, and of the part of the request it
/// covers: each the first [`TEXT_MAX`] bytes, copied as the bytes stream past.
#[derive(Default)]
pub(crate) struct Capture {
    /// The batch's part of the request text, raw, from its first byte.
    pub part: Vec<u8>,
    /// The statements' texts, one run per `;`-separated part, without the whitespace
    /// around it.
    pub texts: Vec<u8>,
    seg_start: usize,
    /// How far into the current chunk the text has been copied.
    pub(super) from: usize,
    /// The part continues a text reported in earlier batches: it starts at its first
    /// non-blank byte, as a statement's text does.
    pub(super) trim_part: bool,
}

impl Capture {
    /// Copies the chunk's bytes up to `to`.
    pub(super) fn take(&mut self, chunk: &[u8], to: usize) {
        let bytes = chunk.get(self.from..to).unwrap_or_default();
        self.from = to.max(self.from);
        if bytes.is_empty() {
            return;
        }
        let part = if self.trim_part && self.part.is_empty() {
            let lead = bytes
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(bytes.len());
            bytes.get(lead..).unwrap_or_default()
        } else {
            bytes
        };
        let room = TEXT_MAX.saturating_sub(self.part.len());
        self.part
            .extend_from_slice(part.get(..room.min(part.len())).unwrap_or_default());
        let seg = self.texts.len().saturating_sub(self.seg_start);
        if seg < TEXT_MAX {
            let bytes = if seg == 0 {
                let lead = bytes
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(bytes.len());
                bytes.get(lead..).unwrap_or_default()
            } else {
                bytes
            };
            let room = TEXT_MAX - seg;
            self.texts
                .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
        }
    }

    /// The chunk is read: the rest of it is copied and the next starts at its first byte.
    pub fn take_rest(&mut self, chunk: &[u8]) {
        self.take(chunk, chunk.len());
        self.from = 0;
    }

    /// The current `;`-separated part ends: its text's range, trailing whitespace cut.
    pub(super) fn end_segment(&mut self) -> (u32, u32) {
        let seg = self.texts.get(self.seg_start..).unwrap_or_default();
        let keep = seg.trim_ascii_end().len();
        self.texts.truncate(self.seg_start + keep);
        let range = (self.seg_start as u32, self.texts.len() as u32);
        self.seg_start = self.texts.len();
        range
    }

    /// The current `;`-separated part ends without a statement: its text is not kept.
    pub(super) fn drop_segment(&mut self) {
        self.texts.truncate(self.seg_start);
    }

    pub(super) fn clear(&mut self) {
        self.part.clear();
        self.texts.clear();
        self.seg_start = 0;
    }
}
