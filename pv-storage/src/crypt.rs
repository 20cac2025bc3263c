//! Client-side encryption of uploaded objects: AES-256-GCM in independent 64 KiB chunks.
//!
//! A module with an encryption key uploads every segment encrypted, so the storage provider only
//! ever holds ciphertext. The format is small enough to decrypt with any AES-GCM library:
//!
//! ```text
//! object  = header chunk+
//! header  = "PVENC1" (6 bytes, ASCII) || prefix (8 random bytes, new for every object)
//! chunk   = AES-256-GCM(key, nonce, aad, plaintext) = ciphertext (len(plaintext) bytes) || tag (16 bytes)
//! nonce   = prefix (8 bytes) || counter (4 bytes, big-endian, 0 for the first chunk)
//! aad     = header (14 bytes) || last (1 byte: 0x01 for the final chunk, 0x00 otherwise)
//! ```
//!
//! - Every chunk but the last holds exactly [`CHUNK`] (65,536) plaintext bytes, so it is 65,552
//!   bytes on the wire. The last chunk holds 0 to 65,536 bytes; an empty file is one empty final
//!   chunk (a bare 16-byte tag). There are `max(1, ceil(len / 65536))` chunks.
//! - The ciphertext length is therefore `14 + len + 16 × chunks` ([`encrypted_len`]).
//! - To decrypt: read the 14-byte header, check the magic; then read 65,552-byte blocks. A block
//!   followed by end of data is the final chunk (the `last` byte of its AAD is 1); a final block
//!   may be shorter (at least 16 bytes). Each block's nonce uses its index as the counter.
//! - Because the header is authenticated in every chunk and the final chunk is marked, reordered,
//!   swapped (between objects), truncated or extended data fails to decrypt rather than giving
//!   wrong plaintext.
//!
//! The key is the module's 32-byte key. A random 8-byte prefix per object plus a 32-bit counter
//! keeps nonces unique for 2^32 chunks per object (256 TiB) and, by the birthday bound on the
//! prefix, for billions of objects under one key.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};

use crate::{Error, Result};

/// The magic bytes at the start of every encrypted object.
pub const MAGIC: &[u8; 6] = b"PVENC1";
/// Header length: magic and nonce prefix.
pub const HEADER_LEN: usize = 14;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Authentication tag per chunk.
pub const TAG_LEN: usize = 16;
/// Ciphertext bytes of a full chunk.
pub const ENCRYPTED_CHUNK: usize = CHUNK + TAG_LEN;

/// Number of chunks for a plaintext of `plain_len` bytes.
fn chunk_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(CHUNK as u64).max(1)
}

/// Length of the encrypted object for a plaintext of `plain_len` bytes.
pub fn encrypted_len(plain_len: u64) -> u64 {
    HEADER_LEN as u64 + plain_len + TAG_LEN as u64 * chunk_count(plain_len)
}

fn nonce(prefix: &[u8], counter: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn aad(header: &[u8; HEADER_LEN], last: bool) -> [u8; HEADER_LEN + 1] {
    let mut a = [0u8; HEADER_LEN + 1];
    a[..HEADER_LEN].copy_from_slice(header);
    a[HEADER_LEN] = u8::from(last);
    a
}

/// Encrypts one object chunk by chunk.
pub struct Encryptor {
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    counter: u32,
    done: bool,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor").field("counter", &self.counter).finish_non_exhaustive()
    }
}

impl Encryptor {
    /// A new encryptor with a fresh random nonce prefix.
    pub fn new(key: &[u8; 32]) -> Self {
        let prefix: [u8; 8] = rand::random();
        Self::with_prefix(key, prefix)
    }

    fn with_prefix(key: &[u8; 32], prefix: [u8; 8]) -> Self {
        let mut header = [0u8; HEADER_LEN];
        header[..6].copy_from_slice(MAGIC);
        header[6..].copy_from_slice(&prefix);
        Encryptor { cipher: Aes256Gcm::new(key.into()), header, counter: 0, done: false }
    }

    /// The 14-byte header, written before the first chunk.
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// Encrypt the next chunk: exactly [`CHUNK`] bytes unless `last`, at most [`CHUNK`] if `last`.
    pub fn chunk(&mut self, plain: &[u8], last: bool) -> Result<Vec<u8>> {
        if self.done {
            return Err(Error::Crypt(
                "encryption already finished with the final chunk".to_owned(),
            ));
        }
        if plain.len() > CHUNK || (!last && plain.len() != CHUNK) {
            return Err(Error::Crypt("an encryption chunk has the wrong size".to_owned()));
        }
        let n = nonce(&self.header[6..], self.counter);
        let a = aad(&self.header, last);
        let out = self
            .cipher
            .encrypt(&Nonce::from(n), Payload { msg: plain, aad: &a })
            .map_err(|_| Error::Crypt("encryption failed".to_owned()))?;
        self.counter = self.counter.checked_add(1).ok_or_else(|| {
            Error::Crypt("the file is too large to encrypt (over 256 TiB)".to_owned())
        })?;
        self.done = last;
        Ok(out)
    }
}

/// Decrypts one object from pieces of any size.
pub struct Decryptor {
    cipher: Aes256Gcm,
    header: Option<[u8; HEADER_LEN]>,
    buf: Vec<u8>,
    counter: u32,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor").field("counter", &self.counter).finish_non_exhaustive()
    }
}

fn damaged() -> Error {
    Error::Crypt(
        "the encrypted object cannot be decrypted: the key is wrong or the data is damaged or truncated".to_owned(),
    )
}

impl Decryptor {
    /// A decryptor for data encrypted with `key`.
    pub fn new(key: &[u8; 32]) -> Self {
        Decryptor { cipher: Aes256Gcm::new(key.into()), header: None, buf: Vec::new(), counter: 0 }
    }

    fn open(&mut self, block: &[u8], last: bool) -> Result<Vec<u8>> {
        let header = self.header.ok_or_else(damaged)?;
        let n = nonce(&header[6..], self.counter);
        let a = aad(&header, last);
        let plain = self
            .cipher
            .decrypt(&Nonce::from(n), Payload { msg: block, aad: &a })
            .map_err(|_| damaged())?;
        self.counter = self.counter.checked_add(1).ok_or_else(damaged)?;
        Ok(plain)
    }

    /// Feed more ciphertext; returns the plaintext that can be released so far.
    pub fn update(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.buf.extend_from_slice(data);
        if self.header.is_none() {
            if self.buf.len() < HEADER_LEN {
                return Ok(Vec::new());
            }
            if &self.buf[..6] != MAGIC {
                return Err(Error::Crypt(
                    "the object is not encrypted by PentaVision (its first bytes are not PVENC1)"
                        .to_owned(),
                ));
            }
            let mut h = [0u8; HEADER_LEN];
            h.copy_from_slice(&self.buf[..HEADER_LEN]);
            self.header = Some(h);
            self.buf.drain(..HEADER_LEN);
        }
        let mut out = Vec::new();
        // Keep at least one byte past a full block: only the block before end of data is last.
        let mut start = 0;
        while self.buf.len() - start > ENCRYPTED_CHUNK {
            let block = self.buf[start..start + ENCRYPTED_CHUNK].to_vec();
            out.extend_from_slice(&self.open(&block, false)?);
            start += ENCRYPTED_CHUNK;
        }
        self.buf.drain(..start);
        Ok(out)
    }

    /// End of data: decrypt the final chunk.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        if self.header.is_none() || self.buf.len() < TAG_LEN {
            return Err(damaged());
        }
        let block = std::mem::take(&mut self.buf);
        self.open(&block, true)
    }
}

/// Encrypt a whole buffer.
pub fn encrypt_bytes(key: &[u8; 32], plain: &[u8]) -> Result<Vec<u8>> {
    let mut enc = Encryptor::new(key);
    let mut out =
        Vec::with_capacity(usize::try_from(encrypted_len(plain.len() as u64)).unwrap_or(0));
    out.extend_from_slice(enc.header());
    let chunks = chunk_count(plain.len() as u64);
    for (i, part) in plain.chunks(CHUNK).enumerate() {
        out.extend_from_slice(&enc.chunk(part, i as u64 + 1 == chunks)?);
    }
    if plain.is_empty() {
        out.extend_from_slice(&enc.chunk(&[], true)?);
    }
    Ok(out)
}

/// Decrypt a whole buffer.
pub fn decrypt_bytes(key: &[u8; 32], data: &[u8]) -> Result<Vec<u8>> {
    let mut dec = Decryptor::new(key);
    let mut out = dec.update(data)?;
    out.extend_from_slice(&dec.finish()?);
    Ok(out)
}

/// Read up to `buf.len()` bytes, fewer only at end of file.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Encrypt the file `src` into `dst`; returns the bytes written. Blocking: run it on a blocking
/// thread from async code.
pub fn encrypt_file(src: &Path, dst: &Path, key: &[u8; 32]) -> Result<u64> {
    let input = File::open(src).map_err(|e| Error::io(src, e))?;
    let len = input.metadata().map_err(|e| Error::io(src, e))?.len();
    let mut reader = BufReader::new(input);
    let mut writer = BufWriter::new(File::create(dst).map_err(|e| Error::io(dst, e))?);
    let mut enc = Encryptor::new(key);
    writer.write_all(enc.header()).map_err(|e| Error::io(dst, e))?;
    let chunks = chunk_count(len);
    let mut buf = vec![0u8; CHUNK];
    let mut written = HEADER_LEN as u64;
    for i in 0..chunks {
        let n = read_full(&mut reader, &mut buf).map_err(|e| Error::io(src, e))?;
        let last = i + 1 == chunks;
        if (!last && n != CHUNK) || (last && n as u64 != len - i * CHUNK as u64) {
            return Err(Error::io(
                src,
                std::io::Error::other("the file changed size while it was being encrypted"),
            ));
        }
        let out = enc.chunk(&buf[..n], last)?;
        writer.write_all(&out).map_err(|e| Error::io(dst, e))?;
        written += out.len() as u64;
    }
    writer.flush().map_err(|e| Error::io(dst, e))?;
    writer.get_ref().sync_all().map_err(|e| Error::io(dst, e))?;
    Ok(written)
}

/// Decrypt the file `src` into `dst`; returns the plaintext bytes written. Blocking.
pub fn decrypt_file(src: &Path, dst: &Path, key: &[u8; 32]) -> Result<u64> {
    let mut reader = BufReader::new(File::open(src).map_err(|e| Error::io(src, e))?);
    let mut writer = BufWriter::new(File::create(dst).map_err(|e| Error::io(dst, e))?);
    let mut dec = Decryptor::new(key);
    let mut buf = vec![0u8; ENCRYPTED_CHUNK];
    let mut written = 0u64;
    loop {
        let n = read_full(&mut reader, &mut buf).map_err(|e| Error::io(src, e))?;
        if n == 0 {
            break;
        }
        let out = dec.update(&buf[..n])?;
        writer.write_all(&out).map_err(|e| Error::io(dst, e))?;
        written += out.len() as u64;
    }
    let out = dec.finish()?;
    writer.write_all(&out).map_err(|e| Error::io(dst, e))?;
    written += out.len() as u64;
    writer.flush().map_err(|e| Error::io(dst, e))?;
    writer.get_ref().sync_all().map_err(|e| Error::io(dst, e))?;
    Ok(written)
}

/// Parse a 32-byte key written as 64 hex digits or standard base64.
pub fn parse_key(text: &str) -> Result<[u8; 32]> {
    use base64::Engine as _;
    let text = text.trim();
    let bytes = hex::decode(text)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
        .ok_or_else(|| {
            Error::Crypt(
                "the encryption key must be 64 hex digits or 44 base64 characters".to_owned(),
            )
        })?;
    bytes.try_into().map_err(|_| {
        Error::Crypt(
            "the encryption key must be 32 bytes (64 hex digits or 44 base64 characters)"
                .to_owned(),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];

    #[test]
    fn round_trip_all_sizes() {
        for len in [0usize, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let enc = encrypt_bytes(&KEY, &plain).unwrap();
            assert_eq!(enc.len() as u64, encrypted_len(len as u64), "len {len}");
            assert_eq!(&enc[..6], MAGIC);
            assert_eq!(decrypt_bytes(&KEY, &enc).unwrap(), plain, "len {len}");
            // Fed in odd pieces.
            let mut dec = Decryptor::new(&KEY);
            let mut out = Vec::new();
            for piece in enc.chunks(1000) {
                out.extend(dec.update(piece).unwrap());
            }
            out.extend(dec.finish().unwrap());
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn encrypted_len_values() {
        assert_eq!(encrypted_len(0), 14 + 16);
        assert_eq!(encrypted_len(65536), 14 + 65536 + 16);
        assert_eq!(encrypted_len(65537), 14 + 65537 + 32);
    }

    #[test]
    fn tampering_is_detected() {
        let plain = vec![1u8; 3 * CHUNK + 5];
        let enc = encrypt_bytes(&KEY, &plain).unwrap();
        // A flipped bit anywhere.
        for pos in [0, 7, HEADER_LEN + 3, HEADER_LEN + ENCRYPTED_CHUNK + 9, enc.len() - 1] {
            let mut bad = enc.clone();
            bad[pos] ^= 1;
            assert!(decrypt_bytes(&KEY, &bad).is_err(), "flip at {pos}");
        }
        // Truncated at a chunk boundary: the new last chunk was not marked final.
        let cut = &enc[..HEADER_LEN + 2 * ENCRYPTED_CHUNK];
        assert!(decrypt_bytes(&KEY, cut).is_err());
        // Chunks swapped.
        let mut swapped = enc[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(
            &enc[HEADER_LEN + ENCRYPTED_CHUNK..HEADER_LEN + 2 * ENCRYPTED_CHUNK],
        );
        swapped.extend_from_slice(&enc[HEADER_LEN..HEADER_LEN + ENCRYPTED_CHUNK]);
        swapped.extend_from_slice(&enc[HEADER_LEN + 2 * ENCRYPTED_CHUNK..]);
        assert!(decrypt_bytes(&KEY, &swapped).is_err());
        // Extended.
        let mut longer = enc.clone();
        longer.extend_from_slice(&[0u8; 20]);
        assert!(decrypt_bytes(&KEY, &longer).is_err());
        // Wrong key.
        assert!(decrypt_bytes(&[8u8; 32], &enc).is_err());
        // Not ours.
        let msg = decrypt_bytes(&KEY, b"plain mp4 data here").unwrap_err().to_string();
        assert!(msg.contains("not encrypted by PentaVision"), "{msg}");
    }

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 256) as u8).collect();
        std::fs::write(dir.path().join("p"), &plain).unwrap();
        let n = encrypt_file(&dir.path().join("p"), &dir.path().join("e"), &KEY).unwrap();
        assert_eq!(n, encrypted_len(plain.len() as u64));
        let m = decrypt_file(&dir.path().join("e"), &dir.path().join("d"), &KEY).unwrap();
        assert_eq!(m, plain.len() as u64);
        assert_eq!(std::fs::read(dir.path().join("d")).unwrap(), plain);
    }

    #[test]
    fn keys_parse() {
        assert_eq!(parse_key(&"07".repeat(32)).unwrap(), KEY);
        assert!(parse_key("abc").is_err());
    }
}
