//! Where a tile's values lie in its file: recorded once when the tile is
//! written (or by `tessera reindex`), kept in its catalogue row, and used
//! by the pool to read windows with positioned reads and its own inflater,
//! on every core, without libnetcdf's process-wide lock.
//!
//! A NetCDF-4 tile variable is an HDF5 chunked dataset: each chunk lies at a
//! byte offset, stored through a filter pipeline (shuffle, then deflate, for
//! tessera's deflate tiles). A NetCDF-3 tile variable is contiguous,
//! big-endian, from its `begin` offset. [`TileLayout`] says which, with the
//! offsets, sizes and filter masks of every chunk, in a compact binary form
//! (about 70 bytes for a 1024 x 1024 tile of 16 chunks): the catalogue's
//! target is tens of millions of tiles.
//!
//! This module does no I/O: it encodes and decodes layouts, undoes a
//! chunk's filters, and copies decoded chunks into a window. Finding the
//! layout of a file is [`super::inspect`]; reading is
//! [`super::reader::PoolTiles`]. A layout whose storage this module cannot
//! decode (another filter, a compact dataset) is never recorded: such tiles
//! are read through libnetcdf, as before.

use crate::model::{DataType, IntoTyped, TypedArray};
use crate::with_data_type;
use std::ops::Range;

/// HDF5 filters the direct reader undoes, by their HDF5 ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `H5Z_FILTER_DEFLATE` (1): zlib streams.
    Deflate,
    /// `H5Z_FILTER_SHUFFLE` (2): byte planes.
    Shuffle,
}

impl Filter {
    pub fn id(self) -> u8 {
        match self {
            Filter::Deflate => 1,
            Filter::Shuffle => 2,
        }
    }

    pub fn from_id(id: u8) -> Option<Filter> {
        match id {
            1 => Some(Filter::Deflate),
            2 => Some(Filter::Shuffle),
            _ => None,
        }
    }
}

/// One stored chunk: where its bytes are, how many, and which filters of
/// the pipeline were skipped when it was written (bit i: filter i).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub size: u64,
    pub mask: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// HDF5 chunks, row-major over the chunk grid; `None` for a chunk never
    /// written (the reader then refuses the direct path).
    Chunked { chunk: Vec<u64>, filters: Vec<Filter>, chunks: Vec<Option<Chunk>> },
    /// All values in row-major order from `offset` (NetCDF-3 variables,
    /// HDF5 contiguous datasets).
    Contiguous { offset: u64 },
}

/// The layout of one variable in one tile file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileLayout {
    /// The variable's dimensions in the file (`[time?, level?, y, x]`).
    pub shape: Vec<u64>,
    /// Bytes per value.
    pub elem: u8,
    pub big_endian: bool,
    pub storage: Storage,
}

const VERSION: u8 = 1;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.0.split_first().ok_or("layout ends early")?;
        self.0 = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("layout has an overlong number".into())
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl TileLayout {
    /// Values in the variable.
    pub fn len(&self) -> u64 {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The compact form kept in the catalogue: a version byte, then
    /// varints; chunk offsets as the distance from the previous chunk's end
    /// (zigzag), so that chunks written one after the other cost a byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        let kind = match self.storage {
            Storage::Chunked { .. } => 0,
            Storage::Contiguous { .. } => 1,
        };
        out.push(kind);
        out.push(self.elem);
        out.push(u8::from(self.big_endian));
        put_varint(&mut out, self.shape.len() as u64);
        for &d in &self.shape {
            put_varint(&mut out, d);
        }
        match &self.storage {
            Storage::Contiguous { offset } => put_varint(&mut out, *offset),
            Storage::Chunked { chunk, filters, chunks } => {
                for &c in chunk {
                    put_varint(&mut out, c);
                }
                out.push(filters.len() as u8);
                out.extend(filters.iter().map(|f| f.id()));
                put_varint(&mut out, chunks.len() as u64);
                // Tiles written by tessera store every chunk, one after the
                // other, none with a filter skipped: then offsets and masks
                // are implied (a size per chunk is all that is left).
                let no_masks = chunks.iter().flatten().all(|c| c.mask == 0);
                let packed = chunks.iter().all(Option::is_some)
                    && chunks.windows(2).all(|w| matches!(w, [Some(a), Some(b)] if a.offset + a.size == b.offset));
                out.push(u8::from(no_masks) | (u8::from(packed) << 1));
                if packed {
                    put_varint(&mut out, chunks.first().copied().flatten().map_or(0, |c| c.offset));
                }
                let mut end = 0u64;
                for c in chunks {
                    match c {
                        None => put_varint(&mut out, 0),
                        Some(c) => {
                            // size + 1, so that 0 can mean "not written".
                            put_varint(&mut out, c.size + 1);
                            if !packed {
                                put_varint(&mut out, zigzag(c.offset as i64 - end as i64));
                            }
                            if !no_masks {
                                put_varint(&mut out, u64::from(c.mask));
                            }
                            end = c.offset + c.size;
                        }
                    }
                }
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<TileLayout, String> {
        let mut i = Input(bytes);
        let version = i.byte()?;
        if version != VERSION {
            return Err(format!("layout version {version} is not known"));
        }
        let kind = i.byte()?;
        let elem = i.byte()?;
        if !matches!(elem, 1 | 2 | 4 | 8) {
            return Err(format!("layout has values of {elem} bytes"));
        }
        let big_endian = i.byte()? != 0;
        let ndims = i.varint()? as usize;
        if !(1..=8).contains(&ndims) {
            return Err(format!("layout has {ndims} dimensions"));
        }
        let shape = (0..ndims).map(|_| i.varint()).collect::<Result<Vec<_>, _>>()?;
        let storage = match kind {
            1 => Storage::Contiguous { offset: i.varint()? },
            0 => {
                let chunk = (0..ndims).map(|_| i.varint()).collect::<Result<Vec<_>, _>>()?;
                if chunk.contains(&0) {
                    return Err("layout has an empty chunk".into());
                }
                let nf = i.byte()?;
                let filters = (0..nf)
                    .map(|_| i.byte().and_then(|id| Filter::from_id(id).ok_or(format!("layout names filter {id}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                let n = i.varint()?;
                let grid = shape.iter().zip(&chunk).try_fold(1u64, |acc, (&d, &c)| acc.checked_mul(d.div_ceil(c))).ok_or("layout has an impossible chunk grid")?;
                // Every chunk takes at least a byte: a damaged count cannot
                // make this allocate more than the layout's own size.
                if n != grid || n > i.0.len() as u64 {
                    return Err(format!("layout lists {n} chunks for a grid of {grid}"));
                }
                let n = n as usize;
                let flags = i.byte()?;
                if flags > 3 {
                    return Err(format!("layout has flags {flags}"));
                }
                let (no_masks, packed) = (flags & 1 != 0, flags & 2 != 0);
                let mut end = if packed { i.varint()? } else { 0 };
                let mut chunks = Vec::with_capacity(n);
                for _ in 0..n {
                    let size = i.varint()?;
                    if size == 0 {
                        if packed {
                            return Err("a packed layout lacks a chunk".into());
                        }
                        chunks.push(None);
                        continue;
                    }
                    let offset = if packed { end } else { end.checked_add_signed(unzigzag(i.varint()?)).ok_or("layout has a bad offset")? };
                    let mask = if no_masks { 0 } else { u32::try_from(i.varint()?).map_err(|_| "layout has a bad filter mask".to_string())? };
                    let c = Chunk { offset, size: size - 1, mask };
                    end = c.offset.checked_add(c.size).ok_or("layout has a bad size")?;
                    chunks.push(Some(c));
                }
                Storage::Chunked { chunk, filters, chunks }
            }
            k => return Err(format!("layout kind {k} is not known")),
        };
        if !i.0.is_empty() {
            return Err("layout has trailing bytes".into());
        }
        Ok(TileLayout { shape, elem, big_endian, storage })
    }

    /// The layout's value size and byte order fit values of `dtype`.
    pub fn fits(&self, dtype: DataType) -> bool {
        usize::from(self.elem) == dtype.size()
    }

    /// Bytes of one decoded chunk.
    fn chunk_bytes(chunk: &[u64], elem: u8) -> usize {
        chunk.iter().product::<u64>() as usize * usize::from(elem)
    }

    /// The chunks (indices into the chunk list) a window touches, in
    /// row-major order. Empty for contiguous storage.
    pub fn chunks_touching(&self, window: &[Range<usize>]) -> Vec<usize> {
        let Storage::Chunked { chunk, .. } = &self.storage else { return Vec::new() };
        if window.iter().any(|r| r.is_empty()) {
            return Vec::new();
        }
        let grid: Vec<usize> = self.shape.iter().zip(chunk).map(|(&d, &c)| d.div_ceil(c) as usize).collect();
        let spans: Vec<Range<usize>> =
            window.iter().zip(chunk).map(|(r, &c)| r.start / c as usize..(r.end - 1) / c as usize + 1).collect();
        let mut out = Vec::new();
        let (lo, hi): (Vec<usize>, Vec<usize>) = spans.iter().map(|s| (s.start, s.end)).unzip();
        let n = lo.len();
        let mut idx = lo.clone();
        loop {
            out.push(idx.iter().zip(&grid).fold(0, |acc, (&i, &g)| acc * g + i));
            // Next index, last dimension fastest.
            if !advance(&mut idx, &lo, &hi, n) {
                return out;
            }
        }
    }

    /// Undoes a chunk's filters and brings its values to native byte order:
    /// `raw` is the chunk as stored; the result holds every value of the
    /// (full-size) chunk.
    pub fn decode_chunk(&self, raw: &[u8], mask: u32) -> Result<Vec<u8>, String> {
        let Storage::Chunked { chunk, filters, .. } = &self.storage else {
            return Err("not a chunked layout".into());
        };
        let want = Self::chunk_bytes(chunk, self.elem);
        let mut data: Option<Vec<u8>> = None;
        // The pipeline runs in reverse when reading.
        for (i, f) in filters.iter().enumerate().rev() {
            if mask & (1 << i) != 0 {
                continue;
            }
            let input: &[u8] = data.as_deref().unwrap_or(raw);
            let next = match f {
                Filter::Deflate => inflate(input, want)?,
                Filter::Shuffle => unshuffle(input, usize::from(self.elem)),
            };
            data = Some(next);
        }
        let mut data = data.unwrap_or_else(|| raw.to_vec());
        if data.len() != want {
            return Err(format!("a chunk holds {} bytes, {want} expected", data.len()));
        }
        if self.big_endian != cfg!(target_endian = "big") {
            swap_bytes(&mut data, usize::from(self.elem));
        }
        Ok(data)
    }

    /// Copies the part of each decoded chunk that lies in `window` into a
    /// new array of the window's shape. `decoded` holds the chunks
    /// [`Self::chunks_touching`] named, in its order.
    pub fn assemble(&self, dtype: DataType, window: &[Range<usize>], decoded: &[(usize, &[u8])]) -> Result<TypedArray, String> {
        if !self.fits(dtype) {
            return Err(format!("the tile holds values of {} bytes, {} expected", self.elem, dtype.size()));
        }
        let out_shape: Vec<usize> = window.iter().map(|r| r.len()).collect();
        let total: usize = out_shape.iter().product();
        with_data_type!(dtype, T => {
            let mut values: Vec<T> = vec![T::default(); total];
            // SAFETY: T is a plain numeric type (no padding, every bit
            // pattern valid), so its storage may be written as bytes.
            let out: &mut [u8] = unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), total * dtype.size()) };
            self.copy_chunks(window, decoded, out)?;
            let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&out_shape), values).map_err(|e| e.to_string())?;
            Ok(IntoTyped::typed(a))
        })
    }

    /// The byte copies of [`Self::assemble`], row by row of each chunk's
    /// intersection with the window.
    fn copy_chunks(&self, window: &[Range<usize>], decoded: &[(usize, &[u8])], out: &mut [u8]) -> Result<(), String> {
        const MAX: usize = 8;
        let Storage::Chunked { chunk, .. } = &self.storage else {
            return Err("not a chunked layout".into());
        };
        let n = window.len();
        if n != self.shape.len() || n == 0 || n > MAX {
            return Err(format!("a window of {n} dimensions for a variable of {}", self.shape.len()));
        }
        let elem = usize::from(self.elem);
        let want = Self::chunk_bytes(chunk, self.elem);
        let (mut c, mut grid, mut out_shape) = ([0usize; MAX], [0usize; MAX], [0usize; MAX]);
        for d in 0..n {
            c[d] = chunk[d] as usize;
            grid[d] = (self.shape[d] as usize).div_ceil(c[d]);
            out_shape[d] = window[d].len();
        }
        for &(ci, bytes) in decoded {
            if bytes.len() != want {
                return Err("a decoded chunk has the wrong size".into());
            }
            // The chunk's origin, then its intersection with the window.
            let (mut origin, mut lo, mut hi) = ([0usize; MAX], [0usize; MAX], [0usize; MAX]);
            let mut rest = ci;
            for d in (0..n).rev() {
                origin[d] = (rest % grid[d]) * c[d];
                rest /= grid[d];
            }
            for d in 0..n {
                lo[d] = window[d].start.max(origin[d]);
                hi[d] = window[d].end.min(origin[d] + c[d]);
                if lo[d] >= hi[d] {
                    return Err("a decoded chunk lies outside the window".into());
                }
            }
            let run = (hi[n - 1] - lo[n - 1]) * elem;
            let mut idx = lo;
            loop {
                let (mut src, mut dst) = (0usize, 0usize);
                for d in 0..n {
                    src = src * c[d] + (idx[d] - origin[d]);
                    dst = dst * out_shape[d] + (idx[d] - window[d].start);
                }
                out[dst * elem..dst * elem + run].copy_from_slice(&bytes[src * elem..src * elem + run]);
                // Next row: every dimension but the last.
                if !advance(&mut idx[..n], &lo[..n], &hi[..n], n - 1) {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The byte runs of a window of contiguous storage, in the window's
    /// row-major order, adjacent runs merged: `(file offset, length)`.
    pub fn runs(&self, window: &[Range<usize>]) -> Vec<(u64, usize)> {
        let Storage::Contiguous { offset } = self.storage else { return Vec::new() };
        let n = window.len();
        if window.iter().any(|r| r.is_empty()) {
            return Vec::new();
        }
        let elem = u64::from(self.elem);
        let run = window[n - 1].len() * usize::from(self.elem);
        let mut out: Vec<(u64, usize)> = Vec::new();
        let (lo, hi): (Vec<usize>, Vec<usize>) = window.iter().map(|r| (r.start, r.end)).unzip();
        let mut idx = lo.clone();
        loop {
            let linear = idx.iter().zip(&self.shape).fold(0u64, |acc, (&i, &d)| acc * d + i as u64);
            let at = offset + linear * elem;
            match out.last_mut() {
                Some((o, len)) if *o + *len as u64 == at => *len += run,
                _ => out.push((at, run)),
            }
            // Next row: every dimension but the last.
            if !advance(&mut idx, &lo, &hi, n - 1) {
                return out;
            }
        }
    }

    /// Values of a window of contiguous storage from the bytes of its
    /// [`Self::runs`], concatenated.
    pub fn values_from_runs(&self, dtype: DataType, window: &[Range<usize>], mut bytes: Vec<u8>) -> Result<TypedArray, String> {
        if !self.fits(dtype) {
            return Err(format!("the tile holds values of {} bytes, {} expected", self.elem, dtype.size()));
        }
        let shape: Vec<usize> = window.iter().map(|r| r.len()).collect();
        let total: usize = shape.iter().product();
        if bytes.len() != total * dtype.size() {
            return Err("the window's bytes have the wrong length".into());
        }
        if self.big_endian != cfg!(target_endian = "big") {
            swap_bytes(&mut bytes, usize::from(self.elem));
        }
        with_data_type!(dtype, T => {
            let mut values: Vec<T> = vec![T::default(); total];
            // SAFETY: as in `assemble`; lengths checked above.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), values.as_mut_ptr().cast::<u8>(), bytes.len());
            }
            let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), values).map_err(|e| e.to_string())?;
            Ok(IntoTyped::typed(a))
        })
    }
}

/// Advances `idx` odometer-style over `lo[d]..hi[d]` in the dimensions
/// before `upto` (the last one fastest); `false` once every index was seen.
fn advance(idx: &mut [usize], lo: &[usize], hi: &[usize], upto: usize) -> bool {
    let mut d = upto;
    while d > 0 {
        d -= 1;
        idx[d] += 1;
        if idx[d] < hi[d] {
            return true;
        }
        idx[d] = lo[d];
    }
    false
}

/// One chunk of a variable's values, cut out and padded to the full chunk
/// shape (HDF5 stores edge chunks whole): `values` holds the variable in
/// row-major order, `elem` bytes per value; `index` counts chunks
/// row-major over the chunk grid.
pub fn cut_chunk(values: &[u8], shape: &[usize], chunk: &[usize], elem: usize, index: usize) -> Vec<u8> {
    let n = shape.len();
    let grid: Vec<usize> = shape.iter().zip(chunk).map(|(&d, &c)| d.div_ceil(c)).collect();
    let mut origin = vec![0usize; n];
    let mut rest = index;
    for d in (0..n).rev() {
        origin[d] = (rest % grid[d]) * chunk[d];
        rest /= grid[d];
    }
    let mut out = vec![0u8; chunk.iter().product::<usize>() * elem];
    let run = chunk[n - 1].min(shape[n - 1] - origin[n - 1]) * elem;
    // Every row of the chunk that lies in the variable.
    let zero = vec![0usize; n];
    let mut idx = zero.clone();
    loop {
        let inside = (0..n - 1).all(|d| origin[d] + idx[d] < shape[d]);
        if inside {
            let (mut src, mut dst) = (0usize, 0usize);
            for d in 0..n {
                src = src * shape[d] + origin[d] + idx[d];
                dst = dst * chunk[d] + idx[d];
            }
            out[dst * elem..dst * elem + run].copy_from_slice(&values[src * elem..src * elem + run]);
        }
        if !advance(&mut idx, &zero, chunk, n - 1) {
            return out;
        }
    }
}

/// A chunk through HDF5's shuffle and deflate filters, as HDF5 would store
/// it (a zlib stream of the byte planes), compressed with libdeflate at
/// `level`.
pub fn encode_chunk(raw: &[u8], elem: usize, shuffle: bool, level: i32) -> Result<Vec<u8>, String> {
    let shuffled;
    let input = if shuffle && elem > 1 {
        let n = raw.len() / elem;
        let mut out = vec![0u8; raw.len()];
        for (i, v) in raw.chunks_exact(elem).enumerate() {
            for (b, &x) in v.iter().enumerate() {
                out[b * n + i] = x;
            }
        }
        let tail = n * elem;
        out[tail..].copy_from_slice(&raw[tail..]);
        shuffled = out;
        &shuffled[..]
    } else {
        raw
    };
    let lvl = libdeflater::CompressionLvl::new(level).map_err(|_| format!("deflate level {level}"))?;
    let mut c = libdeflater::Compressor::new(lvl);
    let mut out = vec![0u8; c.zlib_compress_bound(input.len())];
    let n = c.zlib_compress(input, &mut out).map_err(|e| format!("deflate: {e}"))?;
    out.truncate(n);
    Ok(out)
}

/// zlib-wrapped deflate (HDF5's deflate filter) into exactly `want` bytes,
/// with libdeflate.
fn inflate(input: &[u8], want: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; want];
    let n = libdeflater::Decompressor::new()
        .zlib_decompress(input, &mut out)
        .map_err(|e| format!("a chunk does not inflate: {e}"))?;
    if n != want {
        return Err(format!("a chunk inflates to {n} bytes, {want} expected"));
    }
    Ok(out)
}

/// HDF5's shuffle undone: byte b of value i is at `b * n + i`.
fn unshuffle(input: &[u8], elem: usize) -> Vec<u8> {
    if elem <= 1 {
        return input.to_vec();
    }
    let n = input.len() / elem;
    let mut out = vec![0u8; input.len()];
    for b in 0..elem {
        let plane = &input[b * n..(b + 1) * n];
        for (i, &v) in plane.iter().enumerate() {
            out[i * elem + b] = v;
        }
    }
    // Bytes past the last whole value are left as they are (HDF5 does so).
    let tail = n * elem;
    out[tail..].copy_from_slice(&input[tail..]);
    out
}

fn swap_bytes(data: &mut [u8], elem: usize) {
    if elem > 1 {
        for v in data.chunks_exact_mut(elem) {
            v.reverse();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(shape: &[u64], chunk: &[u64]) -> TileLayout {
        let grid: u64 = shape.iter().zip(chunk).map(|(&d, &c)| d.div_ceil(c)).product();
        let size = chunk.iter().product::<u64>() * 4;
        let chunks = (0..grid).map(|i| Some(Chunk { offset: 4096 + i * size, size, mask: 0 })).collect();
        TileLayout { shape: shape.to_vec(), elem: 4, big_endian: false, storage: Storage::Chunked { chunk: chunk.to_vec(), filters: vec![], chunks } }
    }

    #[test]
    fn layouts_round_trip_compactly() {
        let mut l = chunked(&[1, 1024, 1024], &[1, 256, 256]);
        if let Storage::Chunked { chunks, filters, .. } = &mut l.storage {
            *filters = vec![Filter::Shuffle, Filter::Deflate];
            chunks[3] = None;
            chunks[5] = Some(Chunk { offset: 10, size: 7, mask: 2 });
        }
        let bytes = l.encode();
        assert!(bytes.len() <= 110, "{} bytes", bytes.len());
        assert_eq!(TileLayout::decode(&bytes).unwrap(), l);
        // Chunks one after the other, no filter skipped: a size each.
        let packed = chunked(&[1, 1024, 1024], &[1, 256, 256]);
        let bytes = packed.encode();
        assert!(bytes.len() <= 70, "{} bytes", bytes.len());
        assert_eq!(TileLayout::decode(&bytes).unwrap(), packed);
        let c = TileLayout { shape: vec![3, 5], elem: 8, big_endian: true, storage: Storage::Contiguous { offset: 1234 } };
        assert_eq!(TileLayout::decode(&c.encode()).unwrap(), c);
        // Damage is refused, never misread.
        assert!(TileLayout::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(TileLayout::decode(&[]).is_err());
        let mut extra = c.encode();
        extra.push(0);
        assert!(TileLayout::decode(&extra).is_err());
        // Counts no layout of this size could hold are refused before
        // anything is allocated for them, and grids that overflow too.
        let mut huge = vec![VERSION, 0, 4, 0];
        for v in [2u64, 1 << 40, 1 << 40, 1, 1] {
            put_varint(&mut huge, v);
        }
        huge.push(0);
        put_varint(&mut huge, 1 << 62);
        assert!(TileLayout::decode(&huge).is_err());
        let mut overflow = vec![VERSION, 0, 4, 0];
        for v in [3u64, 1 << 40, 1 << 40, 1 << 40, 1, 1, 1] {
            put_varint(&mut overflow, v);
        }
        overflow.push(0);
        put_varint(&mut overflow, 1);
        assert!(TileLayout::decode(&overflow).is_err());
    }

    #[test]
    fn chunks_touching_a_window() {
        let l = chunked(&[1, 10, 10], &[1, 4, 4]);
        // Grid 1 x 3 x 3.
        assert_eq!(l.chunks_touching(&[0..1, 0..1, 0..1]), vec![0]);
        assert_eq!(l.chunks_touching(&[0..1, 3..5, 9..10]), vec![2, 5]);
        assert_eq!(l.chunks_touching(&[0..1, 0..10, 0..10]), (0..9).collect::<Vec<_>>());
        assert!(l.chunks_touching(&[0..1, 2..2, 0..10]).is_empty());
    }

    /// Chunks cut from a known array and assembled again give every window
    /// of it, edge chunks (padded past the variable) included.
    #[test]
    fn assembled_windows_equal_the_source() {
        let (h, w, c) = (10usize, 7usize, 4usize);
        let l = chunked(&[1, h as u64, w as u64], &[1, c as u64, c as u64]);
        let value = |y: usize, x: usize| (y * 100 + x) as f32;
        let (gy, gx) = (h.div_ceil(c), w.div_ceil(c));
        let mut chunks = Vec::new();
        for cy in 0..gy {
            for cx in 0..gx {
                let mut b = Vec::new();
                for y in 0..c {
                    for x in 0..c {
                        let v = if cy * c + y < h && cx * c + x < w { value(cy * c + y, cx * c + x) } else { -1.0 };
                        b.extend_from_slice(&v.to_ne_bytes());
                    }
                }
                chunks.push(b);
            }
        }
        for (ys, xs) in [(0..10, 0..7), (3..4, 5..6), (2..9, 1..7), (8..10, 0..3)] {
            let window = [0..1, ys.clone(), xs.clone()];
            let need = l.chunks_touching(&window);
            let decoded: Vec<(usize, &[u8])> = need.iter().map(|&i| (i, chunks[i].as_slice())).collect();
            let a = l.assemble(DataType::F32, &window, &decoded).unwrap();
            assert_eq!(a.shape(), &[1, ys.len(), xs.len()]);
            let want: Vec<f64> = ys.clone().flat_map(|y| xs.clone().map(move |x| value(y, x) as f64)).collect();
            assert_eq!(a.to_f64_vec(), want, "{ys:?} {xs:?}");
        }
    }

    #[test]
    fn contiguous_runs_merge() {
        let l = TileLayout { shape: vec![1, 4, 5], elem: 2, big_endian: true, storage: Storage::Contiguous { offset: 100 } };
        assert_eq!(l.runs(&[0..1, 0..4, 0..5]), vec![(100, 40)]);
        assert_eq!(l.runs(&[0..1, 1..3, 2..4]), vec![(114, 4), (124, 4)]);
        let a = l.values_from_runs(DataType::I16, &[0..1, 0..1, 0..2], vec![0x01, 0x02, 0xff, 0xfe]).unwrap();
        assert_eq!(a.to_f64_vec(), vec![258.0, -2.0]);
    }

    /// Chunks cut, shuffled and deflated come back through decode_chunk
    /// as the variable's values.
    #[test]
    fn cut_and_encoded_chunks_decode_to_the_source() {
        let shape = [1usize, 10, 7];
        let chunk = [1usize, 4, 4];
        let values: Vec<u8> = (0..70u32).flat_map(|v| (v * 3).to_ne_bytes()).collect();
        let mut l = chunked(&[1, 10, 7], &[1, 4, 4]);
        if let Storage::Chunked { filters, .. } = &mut l.storage {
            *filters = vec![Filter::Shuffle, Filter::Deflate];
        }
        let mut parts = Vec::new();
        for i in 0..9 {
            let raw = cut_chunk(&values, &shape, &chunk, 4, i);
            assert_eq!(raw.len(), 64);
            let z = encode_chunk(&raw, 4, true, 4).unwrap();
            parts.push(l.decode_chunk(&z, 0).unwrap());
        }
        let decoded: Vec<(usize, &[u8])> = parts.iter().enumerate().map(|(i, b)| (i, b.as_slice())).collect();
        let a = l.assemble(DataType::U32, &[0..1, 0..10, 0..7], &decoded).unwrap();
        assert_eq!(a.to_f64_vec(), (0..70).map(|v| f64::from(v * 3)).collect::<Vec<_>>());
    }

    #[test]
    fn filters_are_undone_in_reverse() {
        let values: Vec<u8> = (0..64u32).flat_map(|v| (v * 1000).to_le_bytes()).collect();
        // Shuffle by hand, then deflate (zlib) with libdeflate.
        let n = values.len() / 4;
        let mut shuffled = vec![0u8; values.len()];
        for i in 0..n {
            for b in 0..4 {
                shuffled[b * n + i] = values[i * 4 + b];
            }
        }
        let mut comp = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut z = vec![0u8; comp.zlib_compress_bound(shuffled.len())];
        let m = comp.zlib_compress(&shuffled, &mut z).unwrap();
        z.truncate(m);
        let mut l = chunked(&[8, 8], &[8, 8]);
        if let Storage::Chunked { filters, .. } = &mut l.storage {
            *filters = vec![Filter::Shuffle, Filter::Deflate];
        }
        assert_eq!(l.decode_chunk(&z, 0).unwrap(), values);
        // Deflate skipped for this chunk (mask bit 1): only unshuffled.
        assert_eq!(l.decode_chunk(&shuffled, 0b10).unwrap(), values);
        assert!(l.decode_chunk(&z[..z.len() / 2], 0).is_err());
    }
}
