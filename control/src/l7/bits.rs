//! Fixed-size bitsets over the clauses of one table, and postings (which clauses accept a
//! value) in a sparse or dense form.
//!
//! A table holds at most [`MAX_CLAUSES`] clauses so that every working bitset of a decision
//! fits in a stack array of [`MAX_WORDS`] words: the decision never allocates, whatever the
//! policy.

/// Clauses per table; larger (destination, kind) lists are split into several tables.
pub(crate) const MAX_CLAUSES: usize = 4096;
pub(crate) const MAX_WORDS: usize = MAX_CLAUSES / 64;

pub(crate) fn words_for(n: usize) -> usize {
    n.div_ceil(64)
}

/// Tables up to this many words wide (128 clauses) are *narrow*: their bitsets are inline
/// ([`Bits`]), their postings rows of bits, and a decision's scratch bitsets are this wide
/// when no table is wider.
pub(crate) const NARROW_WORDS: usize = 2;

/// A bitset over one table's clauses, kept inline up to [`NARROW_WORDS`] words (tables of
/// up to 128 clauses, most of them), so that reading it is no pointer chase to a cold line
/// of its own; boxed beyond.
#[derive(Clone, Debug)]
pub(crate) enum Bits {
    Inline { words: [u64; NARROW_WORDS], len: u8 },
    Boxed(Box<[u64]>),
}

impl Bits {
    pub(crate) fn new(v: Vec<u64>) -> Bits {
        match u8::try_from(v.len()) {
            Ok(len) if v.len() <= NARROW_WORDS => {
                let mut words = [0; NARROW_WORDS];
                for (w, x) in words.iter_mut().zip(&v) {
                    *w = *x;
                }
                Bits::Inline { words, len }
            }
            _ => Bits::Boxed(v.into_boxed_slice()),
        }
    }

    #[inline]
    pub(crate) fn words(&self) -> &[u64] {
        match self {
            Bits::Inline { words, len } => words.get(..usize::from(*len)).unwrap_or(&[]),
            Bits::Boxed(b) => b,
        }
    }
}

/// Every bit of clauses `0..n` set.
pub(crate) fn ones(n: usize) -> Bits {
    let mut v = vec![0u64; words_for(n)];
    for i in 0..n {
        set(&mut v, i);
    }
    Bits::new(v)
}

#[inline]
pub(crate) fn set(w: &mut [u64], i: usize) {
    if let Some(x) = w.get_mut(i / 64) {
        *x |= 1 << (i % 64);
    }
}

#[inline]
pub(crate) fn clear(w: &mut [u64], i: usize) {
    if let Some(x) = w.get_mut(i / 64) {
        *x &= !(1 << (i % 64));
    }
}

#[inline]
pub(crate) fn get(w: &[u64], i: usize) -> bool {
    w.get(i / 64).is_some_and(|x| x >> (i % 64) & 1 == 1)
}

#[inline]
pub(crate) fn and_into(acc: &mut [u64], other: &[u64]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a &= b;
    }
}

#[inline]
pub(crate) fn or_into(acc: &mut [u64], other: &[u64]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a |= b;
    }
}

/// Whether every bit set in `w` is also set in `of` (missing words of `of` are zero).
#[inline]
pub(crate) fn within(w: &[u64], of: &[u64]) -> bool {
    w.iter()
        .enumerate()
        .all(|(i, &x)| x & !of.get(i).copied().unwrap_or(0) == 0)
}

#[inline]
pub(crate) fn is_empty(w: &[u64]) -> bool {
    w.iter().all(|&x| x == 0)
}

/// Calls `f` with the index of every set bit, ascending.
#[inline]
pub(crate) fn for_each_set(w: &[u64], mut f: impl FnMut(usize)) {
    for (wi, &word) in w.iter().enumerate() {
        let mut x = word;
        while x != 0 {
            let b = x.trailing_zeros() as usize;
            f(wi * 64 + b);
            x &= x - 1;
        }
    }
}

/// The clauses of one table that accept one dictionary value.
#[derive(Debug)]
pub(crate) enum Posting {
    /// Few clauses: set their bits one by one.
    Sparse(Box<[u16]>),
    /// Many clauses: OR whole words (never more work than the table's width).
    Dense(Box<[u64]>),
}

impl Posting {
    /// `clauses` ascending, each below `n`.
    pub(crate) fn new(clauses: &[u16], n: usize) -> Posting {
        let words = words_for(n);
        if clauses.len() > words {
            let mut v = vec![0u64; words];
            for &c in clauses {
                set(&mut v, usize::from(c));
            }
            Posting::Dense(v.into_boxed_slice())
        } else {
            Posting::Sparse(clauses.into())
        }
    }

    #[inline]
    pub(crate) fn or_into(&self, out: &mut [u64]) {
        match self {
            Posting::Sparse(cs) => {
                for &c in cs.iter() {
                    set(out, usize::from(c));
                }
            }
            Posting::Dense(ws) => or_into(out, ws),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_and_iteration() {
        let n = 200;
        let sparse = Posting::new(&[1, 70], n);
        assert!(matches!(sparse, Posting::Sparse(_)));
        let dense = Posting::new(&[0, 2, 4, 6, 199], n);
        assert!(matches!(dense, Posting::Dense(_)));
        let mut w = [0u64; MAX_WORDS];
        let w = &mut w[..words_for(n)];
        sparse.or_into(w);
        dense.or_into(w);
        let mut seen = Vec::new();
        for_each_set(w, |i| seen.push(i));
        assert_eq!(seen, [0, 1, 2, 4, 6, 70, 199]);
        clear(w, 70);
        clear(w, 3);
        assert!(!get(w, 70) && get(w, 199) && get(w, 0));
        let all = ones(n);
        let mut count = 0;
        for_each_set(all.words(), |_| count += 1);
        assert_eq!(count, n);
        assert!(within(w, w) && within(&[0b0101], &[0b0111]) && !within(&[0b1000], &[0b0111]));
        assert!(!within(&[0, 1], &[!0]) && within(&[!0, 0], &[!0]));
        and_into(w, &[0, 0, 0, 0]);
        assert!(is_empty(w));
        // Out of range bits are ignored, not a panic.
        set(w, 10_000);
        clear(w, 10_000);
    }

    #[test]
    fn bitsets_inline_up_to_two_words() {
        for n in [0, 1, 64, 65, 128, 129, 4096] {
            let all = ones(n);
            assert_eq!(all.words().len(), words_for(n), "{n}");
            assert_eq!(matches!(all, Bits::Inline { .. }), n <= 128, "{n}");
            let mut count = 0;
            for_each_set(all.words(), |_| count += 1);
            assert_eq!(count, n);
        }
    }
}
