//! Framing between the evaluator and its worker processes: each frame is a little-endian
//! `u32` length followed by that many bytes of JSON.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame accepted (a compiled module travels in one frame).
pub const MAX_FRAME: usize = 1 << 30;

/// Writes one JSON frame (not flushed).
pub fn write_frame<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    write_raw(out, &serde_json::to_vec(message).map_err(io::Error::other)?)
}

/// Writes one frame of raw bytes (not flushed).
pub fn write_raw(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| io::Error::other("frame too large"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(bytes)
}

/// Reads one frame of raw bytes into `buf`; false at a clean end of stream.
pub fn read_raw(input: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    // Up to 16 MiB is reserved at once (no reallocation: the compiling child counts every
    // byte of its address space); a longer frame grows as it arrives.
    buf.clear();
    buf.reserve_exact(len.min(16 << 20));
    input.take(len as u64).read_to_end(buf)?;
    if buf.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a frame of {len} bytes ended after {}", buf.len()),
        ));
    }
    Ok(true)
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<T: DeserializeOwned>(
    input: &mut impl Read,
    buf: &mut Vec<u8>,
) -> io::Result<Option<T>> {
    if !read_raw(input, buf)? {
        return Ok(None);
    }
    serde_json::from_slice(buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_frames_are_errors() {
        let mut wire = Vec::new();
        write_frame(&mut wire, &("job", 7u64)).unwrap();
        write_frame(&mut wire, &vec![1.5f64, 2.5]).unwrap();
        let mut r = wire.as_slice();
        let mut buf = Vec::new();
        assert_eq!(
            read_frame::<(String, u64)>(&mut r, &mut buf).unwrap(),
            Some(("job".into(), 7))
        );
        assert_eq!(
            read_frame::<Vec<f64>>(&mut r, &mut buf).unwrap(),
            Some(vec![1.5, 2.5])
        );
        assert_eq!(read_frame::<Vec<f64>>(&mut r, &mut buf).unwrap(), None);
        let huge = (u32::MAX).to_le_bytes();
        assert!(read_frame::<u8>(&mut huge.as_slice(), &mut buf).is_err());
        let mut garbage = 3u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"{{{");
        assert!(read_frame::<u8>(&mut garbage.as_slice(), &mut buf).is_err());
        let truncated = [5u8, 0, 0, 0, b'1'];
        assert!(read_frame::<u8>(&mut truncated.as_slice(), &mut buf).is_err());
    }

    #[test]
    fn a_length_without_its_bytes_is_an_error_not_an_allocation() {
        // Claims 1 GiB - 1 and carries 3 bytes: at most 16 MiB is reserved before bytes arrive.
        let wire = [0xff, 0xff, 0xff, 0x3f, 1, 2, 3];
        let mut buf = Vec::new();
        let e = read_raw(&mut &wire[..], &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(buf.capacity() <= 16 << 20, "{}", buf.capacity());
    }
}
