//! Several capture files read as one, merged by timestamp.

use std::path::PathBuf;

use super::{CaptureError, CaptureFile, RawPacket};

/// Several capture files read as one, in timestamp order (a k-way merge on each file's next
/// timestamp; ties go to the file named first).
pub struct CaptureSet {
    files: Vec<CaptureFile>,
    heads: Vec<Option<u64>>,
    primed: bool,
    /// Errors met so far; the set keeps reading the other files.
    pub errors: Vec<CaptureError>,
}

impl CaptureSet {
    /// Opens every file up front, so a missing file fails before any packet is processed.
    pub fn open(paths: &[PathBuf]) -> Result<Self, CaptureError> {
        let files = paths
            .iter()
            .map(|p| CaptureFile::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut set = Self::from_files(files);
        // Read every file's header now, so a file that is not a usable capture fails before
        // any packet is judged.
        set.prime();
        match set.errors.pop() {
            Some(e) => Err(e),
            None => Ok(set),
        }
    }

    fn prime(&mut self) {
        if !self.primed {
            for i in 0..self.files.len() {
                self.refresh(i);
            }
            self.primed = true;
        }
    }

    pub fn from_files(files: Vec<CaptureFile>) -> Self {
        let n = files.len();
        CaptureSet {
            files,
            heads: vec![None; n],
            primed: false,
            errors: Vec::new(),
        }
    }

    fn refresh(&mut self, i: usize) {
        let Some(file) = self.files.get_mut(i) else {
            return;
        };
        let head = match file.peek_ts() {
            Ok(ts) => ts,
            Err(e) => {
                self.errors.push(e);
                None
            }
        };
        if let Some(h) = self.heads.get_mut(i) {
            *h = head;
        }
    }

    /// Hands the next packet (in timestamp order across files) to `f`; false at the end.
    pub fn next_packet(&mut self, f: &mut dyn FnMut(RawPacket<'_>)) -> bool {
        self.prime();
        if let ([file], [head]) = (self.files.as_mut_slice(), self.heads.as_mut_slice()) {
            // One file: nothing to merge, so no peek at the next record (a peek parses each
            // record twice, ~400 instructions a packet for pcapng).
            if head.is_none() {
                return false;
            }
            return match file.next_packet(f) {
                Ok(Some(_)) => true,
                Ok(None) => {
                    *head = None;
                    false
                }
                Err(e) => {
                    self.errors.push(e);
                    *head = None;
                    false
                }
            };
        }
        let mut best: Option<(usize, u64)> = None;
        for (i, h) in self.heads.iter().enumerate() {
            if let Some(ts) = *h
                && best.is_none_or(|(_, b)| ts < b)
            {
                best = Some((i, ts));
            }
        }
        let Some((i, _)) = best else {
            return false;
        };
        if let Some(file) = self.files.get_mut(i)
            && let Err(e) = file.next_packet(f)
        {
            self.errors.push(e);
        }
        self.refresh(i);
        true
    }
}
