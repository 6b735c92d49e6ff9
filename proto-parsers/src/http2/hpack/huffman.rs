//! HPACK's Huffman code (RFC 7541 section 5.2, Appendix B): the code table, the code tree
//! and the 4-bit-at-a-time decoding state machine built from it at compile time, and
//! [`huffman_decode`].

use super::Error;

/// RFC 7541 Appendix B: for each symbol (0-255, then EOS), its code (aligned to the least
/// significant bit) and the code's length in bits.
#[rustfmt::skip]
pub(super) const HUFFMAN_CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), // 0
    (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), // 4
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28), // 8
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), // 12
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28), // 16
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), // 20
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), // 24
    (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28), // 28
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12), // 32
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), // 36
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), // 40
    (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), // 44
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), // 48
    (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6), // 52
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8), // 56
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), // 60
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7), // 64
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), // 68
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), // 72
    (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), // 76
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), // 80
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), // 84
    (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13), // 88
    (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), // 92
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), // 96
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), // 100
    (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7), // 104
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), // 108
    (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5), // 112
    (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), // 116
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), // 120
    (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), // 124
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), // 128
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), // 132
    (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23), // 136
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), // 140
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), // 144
    (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23), // 148
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23), // 152
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), // 156
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), // 160
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), // 164
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), // 168
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23), // 172
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), // 176
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), // 180
    (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), // 184
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23), // 188
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), // 192
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), // 196
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), // 200
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), // 204
    (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27), // 208
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24), // 212
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), // 216
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), // 220
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), // 224
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), // 228
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25), // 232
    (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), // 236
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), // 240
    (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), // 244
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27), // 248
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), // 252
    (0x3fffffff, 30), // 256
];

/// Symbol number of EOS.
const EOS: u16 = 256;
/// Marks a leaf in [`huffman_tree`]'s child slots (the symbol is in the low bits).
const LEAF: u16 = 0x8000;

/// The code as a binary tree: 256 internal nodes (node 0 is the root), each with its two
/// children, an internal node's number or `LEAF | symbol`.
// Compile-time only: an index out of bounds or a panic here fails the build, never a running
// parser.
#[allow(clippy::indexing_slicing, clippy::panic)]
const fn huffman_tree() -> [[u16; 2]; 256] {
    let mut tree = [[0u16; 2]; 256];
    let mut nodes = 1;
    let mut sym = 0;
    while sym < HUFFMAN_CODES.len() {
        let (code, len) = HUFFMAN_CODES[sym];
        let mut node = 0;
        let mut bit = len;
        while bit > 1 {
            bit -= 1;
            let b = ((code >> bit) & 1) as usize;
            if tree[node][b] == 0 {
                // Node 0 is the root, never a child: 0 is an empty slot.
                tree[node][b] = nodes as u16;
                nodes += 1;
            } else if tree[node][b] & LEAF != 0 {
                panic!("the Huffman code is not prefix-free");
            }
            node = tree[node][b] as usize;
        }
        let b = (code & 1) as usize;
        if tree[node][b] != 0 {
            panic!("two symbols share a Huffman code");
        }
        tree[node][b] = LEAF | sym as u16;
        sym += 1;
    }
    // 257 leaves of a complete code hang from exactly 256 internal nodes.
    if nodes != 256 {
        panic!("the Huffman code is not complete");
    }
    tree
}

/// One step of the Huffman decoder, what 4 more input bits do in a state, packed in a
/// `u32`: bits 0-7 the state after them (an internal node of the tree), bits 8-15 the symbol
/// they completed (when [`EMIT`]), bits 16-18 the flags below.
type Step = u32;

/// A symbol was completed (at most one: the shortest code has 5 bits).
const EMIT: Step = 1 << 16;
/// EOS was completed: the string is invalid.
const FAIL: Step = 2 << 16;
/// The string may end in the state after this step: no partial code pending, or a partial
/// code of at most 7 one-bits (valid padding, section 5.2).
const ACCEPT: Step = 4 << 16;

/// The decoder's transitions for every state (internal node) and every 4-bit input, at
/// `state << 4 | input`.
// Compile-time only, as `huffman_tree`.
#[allow(clippy::indexing_slicing)]
const fn huffman_fsm() -> [Step; 4096] {
    let tree = huffman_tree();
    // States on the all-ones path from the root, at depth 0 to 7, are valid ends.
    let mut accept = [false; 256];
    accept[0] = true;
    let mut node = 0;
    let mut depth = 0;
    while depth < 7 {
        node = tree[node][1] as usize;
        accept[node] = true;
        depth += 1;
    }
    let mut fsm = [0; 4096];
    let mut state = 0;
    while state < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut step = 0;
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                let child = tree[node][(nibble >> bit) & 1];
                if child & LEAF == 0 {
                    node = child as usize;
                } else if child & !LEAF == EOS {
                    step |= FAIL;
                    node = 0;
                    break;
                } else {
                    step |= EMIT | ((child & !LEAF) as Step) << 8;
                    node = 0;
                }
            }
            if step & FAIL == 0 && accept[node] {
                step |= ACCEPT;
            }
            fsm[state << 4 | nibble] = step | node as Step;
            nibble += 1;
        }
        state += 1;
    }
    fsm
}

/// 256 states x 16 inputs, 4 bytes each (16 KiB).
static HUFFMAN_FSM: [Step; 4096] = huffman_fsm();

/// One 4-bit step from the state in the low byte of `from` (a previous step).
#[inline(always)]
fn step(from: Step, nibble: u8) -> Step {
    // Below 256 * 16: the bounds check compiles away.
    let i = ((from & 0xff) << 4 | Step::from(nibble & 0xf)) as usize;
    HUFFMAN_FSM.get(i).copied().unwrap_or(FAIL)
}

/// Decodes the Huffman-coded `src` onto the end of `out` and returns the decoded length.
/// Past `cap` decoded bytes nothing more is written: the rest is still checked and counted
/// (a string too long to be kept or indexed costs no memory).
pub fn huffman_decode(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<usize, Error> {
    // The shortest code has 5 bits: at most 8/5 symbols per input byte.
    let bound = src.len().saturating_mul(8) / 5;
    if bound > cap {
        return huffman_count(src, out, cap);
    }
    // Decode into a slice sized for the longest outcome: stores into a slice need no
    // capacity check, and the symbol is stored whether a step completes one or not (the
    // count only moves when it does), so the loop has no branch but the rare failure.
    let start = out.len();
    out.resize(start + bound + 1, 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    let mut n = 0;
    let mut at = ACCEPT;
    let mut seen = 0;
    for &b in src {
        let hi = step(at, b >> 4);
        if let Some(d) = dst.get_mut(n) {
            *d = (hi >> 8) as u8;
        }
        n += usize::from(hi & EMIT != 0);
        at = step(hi, b);
        if let Some(d) = dst.get_mut(n) {
            *d = (at >> 8) as u8;
        }
        n += usize::from(at & EMIT != 0);
        seen |= hi | at;
    }
    out.truncate(start + n);
    // A failed step goes back to the root and decoding goes on: checked once, here.
    if seen & FAIL != 0 || at & ACCEPT == 0 {
        return Err(Error::BadHuffman);
    }
    Ok(n)
}

/// [`huffman_decode`] for a string that may decode to more than `cap` bytes.
#[cold]
fn huffman_count(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<usize, Error> {
    let mut at = ACCEPT;
    let mut n = 0usize;
    for &b in src {
        for nibble in [b >> 4, b & 0xf] {
            at = step(at, nibble);
            if at & FAIL != 0 {
                return Err(Error::BadHuffman);
            }
            if at & EMIT != 0 {
                if n < cap {
                    out.push((at >> 8) as u8);
                }
                n += 1;
            }
        }
    }
    if at & ACCEPT == 0 {
        return Err(Error::BadHuffman);
    }
    Ok(n)
}
