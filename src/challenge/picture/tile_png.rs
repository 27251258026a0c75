//! A PNG writer for one shape of image: 8-bit palette indices, the tiles' fixed palette. Made
//! for speed, since every tile is encoded once and served once.
//!
//! The general encoders spend most of a 64-pixel tile's time outside the image: miniz zeroes
//! its hash tables (hundreds of kB) for every stream, and the ultra-fast `fdeflate` mode is
//! tuned for filtered RGB and grows palette data. Tiles are flat backgrounds, runs and copies
//! of the row above, so a greedy search for exactly those two matches (distance 1 and one
//! row) with DEFLATE's fixed Huffman codes compresses them about as well as zlib's level 1 at
//! a tenth of the time (`captcha-pictures speed`).

/// Appends a PNG of `width` × `height` palette `indices` (row-major, one byte a pixel) with
/// `palette` (RGB triples) to `out`.
pub fn write_indexed(out: &mut Vec<u8>, width: u32, height: u32, palette: &[u8], indices: &[u8]) {
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut header = [0u8; 13];
    header[..4].copy_from_slice(&width.to_be_bytes());
    header[4..8].copy_from_slice(&height.to_be_bytes());
    header[8] = 8; // bit depth
    header[9] = 3; // colour type: palette
    chunk(out, b"IHDR", &header);
    chunk(out, b"PLTE", palette);
    // The rows, each behind its filter byte (0: none).
    let row = width as usize;
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in indices.chunks_exact(row) {
        raw.push(0);
        raw.extend_from_slice(line);
    }
    let mut data = Vec::with_capacity(raw.len() / 2 + 64);
    zlib(&raw, row + 1, &mut data);
    chunk(out, b"IDAT", &data);
    chunk(out, b"IEND", &[]);
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Bits written least significant first, as DEFLATE packs them.
struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    count: u32,
}

impl Bits<'_> {
    #[inline]
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= (value as u64) << self.count;
        self.count += bits;
        while self.count >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.count -= 8;
        }
    }

    /// A Huffman code: written most significant bit first.
    #[inline]
    fn code(&mut self, code: u32, bits: u32) {
        self.put(code.reverse_bits() >> (32 - bits), bits);
    }

    fn flush(&mut self) {
        if self.count > 0 {
            self.out.push(self.acc as u8);
        }
        self.acc = 0;
        self.count = 0;
    }
}

/// The fixed literal/length codes (RFC 1951, 3.2.6), bit-reversed for writing, with their
/// lengths.
static LITERAL_LENGTH: std::sync::LazyLock<[(u16, u8); 288]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|symbol| {
        let symbol = symbol as u32;
        let (code, bits) = match symbol {
            0..=143 => (0x30 + symbol, 8),
            144..=255 => (0x190 + symbol - 144, 9),
            256..=279 => (symbol - 256, 7),
            _ => (0xC0 + symbol - 280, 8),
        };
        ((code.reverse_bits() >> (32 - bits)) as u16, bits as u8)
    })
});

#[inline]
fn literal_length(bits: &mut Bits<'_>, symbol: u32) {
    let (code, length) = LITERAL_LENGTH[symbol as usize];
    bits.put(code as u32, length as u32);
}

/// Length 3..=258 → (symbol, extra bits, extra value).
const fn length_code(length: u32) -> (u32, u32, u32) {
    const BASE: [u32; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const EXTRA: [u32; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    let mut i = 28;
    while BASE[i] > length {
        i -= 1;
    }
    (257 + i as u32, EXTRA[i], length - BASE[i])
}

/// Distance 1..=32768 → (symbol, extra bits, extra value).
fn distance_code(distance: u32) -> (u32, u32, u32) {
    if distance <= 4 {
        return (distance - 1, 0, 0);
    }
    let d = distance - 1;
    let high = 31 - d.leading_zeros(); // position of the top bit, ≥ 2
    let second = (d >> (high - 1)) & 1;
    let symbol = 2 * high + second;
    let extra = high - 1;
    (symbol, extra, d & ((1 << extra) - 1))
}

/// A zlib stream of `raw`: one fixed-Huffman block, greedy matches at distance 1 (runs) and
/// `row` (the row above).
fn zlib(raw: &[u8], row: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x78, 0x01]);
    let mut bits = Bits {
        out,
        acc: 0,
        count: 0,
    };
    bits.put(1, 1); // the last block
    bits.put(1, 2); // fixed Huffman codes
    let codes = &*LITERAL_LENGTH;
    let literal = |bits: &mut Bits<'_>, symbol: usize| {
        let (code, length) = codes[symbol];
        bits.put(code as u32, length as u32);
    };
    let mut i = 0;
    let n = raw.len();
    while i < n {
        let limit = (n - i).min(258);
        let run = |distance: usize| -> usize {
            if i < distance {
                return 0;
            }
            let (ahead, behind) = (&raw[i..i + limit], &raw[i - distance..i - distance + limit]);
            ahead
                .iter()
                .zip(behind)
                .position(|(a, b)| a != b)
                .unwrap_or(limit)
        };
        let (by_run, by_row) = (run(1), run(row));
        let (length, distance) = if by_row > by_run {
            (by_row, row)
        } else {
            (by_run, 1)
        };
        if length >= 3 {
            let (symbol, extra, value) = length_code(length as u32);
            literal_length(&mut bits, symbol);
            bits.put(value, extra);
            let (symbol, extra, value) = distance_code(distance as u32);
            bits.code(symbol, 5);
            bits.put(value, extra);
            i += length;
        } else {
            literal(&mut bits, raw[i] as usize);
            i += 1;
        }
    }
    literal_length(&mut bits, 256);
    bits.flush();
    out.extend_from_slice(&adler32(raw).to_be_bytes());
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for block in data.chunks(5552) {
        for &byte in block {
            a += byte as u32;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("a valid PNG header");
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).expect("valid image data");
        let palette = reader.info().palette.as_ref().unwrap().to_vec();
        (info.width, info.height, palette, pixels)
    }

    #[test]
    fn what_is_written_decodes_to_the_same_indices() {
        let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
        let mut seed = 12345u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as u8
        };
        for (w, h) in [(64, 64), (1, 1), (7, 3), (300, 2)] {
            let n = (w * h) as usize;
            // Runs, copies of the row above, noise, and long runs past 258.
            let mut indices = vec![0u8; n];
            for (i, v) in indices.iter_mut().enumerate() {
                *v = match i % 97 {
                    0..=40 => 9,
                    41..=60 => (i % 5) as u8,
                    _ => next(),
                };
            }
            for i in (w as usize)..n {
                if i % 11 == 0 {
                    indices[i] = indices[i - w as usize];
                }
            }
            let mut out = Vec::new();
            write_indexed(&mut out, w, h, &palette, &indices);
            let (dw, dh, dp, pixels) = decode(&out);
            assert_eq!((dw, dh), (w, h));
            assert_eq!(dp, palette);
            assert_eq!(pixels, indices);
        }
        // A flat image compresses to almost nothing.
        let mut out = Vec::new();
        write_indexed(&mut out, 64, 64, &palette[..6], &[1; 4096]);
        assert!(out.len() < 200, "{}", out.len());
        assert_eq!(decode(&out).3, vec![1; 4096]);
    }

    #[test]
    fn lengths_and_distances_have_their_codes() {
        assert_eq!(length_code(3), (257, 0, 0));
        assert_eq!(length_code(10), (264, 0, 0));
        assert_eq!(length_code(12), (265, 1, 1));
        assert_eq!(length_code(257), (284, 5, 30));
        assert_eq!(length_code(258), (285, 0, 0));
        assert_eq!(distance_code(1), (0, 0, 0));
        assert_eq!(distance_code(4), (3, 0, 0));
        assert_eq!(distance_code(5), (4, 1, 0));
        assert_eq!(distance_code(6), (4, 1, 1));
        assert_eq!(distance_code(7), (5, 1, 0));
        assert_eq!(distance_code(65), (12, 5, 0));
        assert_eq!(distance_code(96), (12, 5, 31));
        assert_eq!(distance_code(97), (13, 5, 0));
        assert_eq!(distance_code(32768), (29, 13, 8191));
    }
}
