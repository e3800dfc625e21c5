//! Streaming decoder for `Content-Encoding: aws-chunked` request bodies.
//!
//! The body is a sequence of `size-hex[;chunk-signature=sig]\r\n data \r\n`, a final
//! zero-size chunk, optional trailer lines (`x-amz-checksum-crc32:BASE64\r\n`, and for signed
//! trailers `x-amz-trailer-signature:hex\r\n`) and a closing `\r\n`. See
//! [chunked upload](https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html) and
//! [trailing headers](https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html).
//!
//! [`ChunkedDecoder`] accepts input split at any byte boundary and never holds chunk data: data
//! goes straight to the caller while its SHA-256 is computed incrementally, so memory stays
//! bounded by [`MAX_LINE_LEN`] and [`MAX_TRAILERS`] whatever the client sends. Each chunk's
//! signature is checked when its last byte arrives, so bytes already handed out are
//! authenticated only once [`ChunkedDecoder::finish`] succeeds; the caller must not commit
//! anything before that. Checking `x-amz-decoded-content-length` against
//! [`ChunkedDecoder::decoded_len`] and a trailing checksum against the data is left to the
//! caller.

use http::StatusCode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::checksum::ChecksumAlgorithm;
use crate::sigv4::StreamingContext;

/// Longest accepted chunk header or trailer line, without its CRLF. A signed chunk header is
/// under 100 bytes; the cap keeps hostile input from growing the line buffer.
pub const MAX_LINE_LEN: usize = 4096;

/// Largest accepted chunk size: 5 GiB, the most one S3 request (`PutObject` or `UploadPart`)
/// may carry. Chunk data is never buffered, so this bounds nonsense sizes, not memory. Chunks
/// below S3's 8 KiB minimum for non-final chunks are accepted.
pub const MAX_CHUNK_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Most trailer lines accepted, not counting `x-amz-trailer-signature`.
pub const MAX_TRAILERS: usize = 16;

const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Whether chunks carry signatures.
#[derive(Debug)]
pub enum ChunkMode {
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: chunk signatures are neither required nor checked.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: every chunk, and the trailer if any,
    /// must carry a valid signature chained from the verified seed signature.
    Signed(StreamingContext),
}

/// Why an `aws-chunked` body was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// `IncompleteBody`, 400: the body ended before the final chunk and trailers.
    #[error("The request body terminated unexpectedly")]
    Truncated,

    /// `IncompleteBody`, 400: the chunk framing is malformed (bad size, missing CRLF, line too
    /// long, data after the end). The payload names the problem.
    #[error("The aws-chunked request body is malformed: {0}")]
    Malformed(&'static str),

    /// `EntityTooLarge`, 400: a chunk declares more than [`MAX_CHUNK_SIZE`] bytes.
    #[error("Your proposed upload exceeds the maximum allowed object size.")]
    ChunkTooLarge,

    /// `SignatureDoesNotMatch`, 403: a chunk or trailer signature is missing or wrong.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check \
         your key and signing method."
    )]
    SignatureDoesNotMatch,

    /// `MalformedTrailerError`, 400: the trailer section is not well-formed, is missing although
    /// announced, or is present although not announced. The payload names the problem.
    #[error(
        "The request contained trailing data that was not well-formed or did not conform to our \
         published schema: {0}"
    )]
    MalformedTrailer(&'static str),
}

impl ChunkedError {
    /// The S3 error code sent in the `<Code>` element.
    #[must_use]
    pub fn s3_code(&self) -> &'static str {
        match self {
            Self::Truncated | Self::Malformed(_) => "IncompleteBody",
            Self::ChunkTooLarge => "EntityTooLarge",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::MalformedTrailer(_) => "MalformedTrailerError",
        }
    }

    /// The HTTP status S3 answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Truncated
            | Self::Malformed(_)
            | Self::ChunkTooLarge
            | Self::MalformedTrailer(_) => StatusCode::BAD_REQUEST,
            Self::SignatureDoesNotMatch => StatusCode::FORBIDDEN,
        }
    }
}

/// The trailer headers of a decoded body, names in lower case, values trimmed, in the order
/// sent; `x-amz-trailer-signature` is verified and left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trailers {
    entries: Vec<(String, String)>,
}

impl Trailers {
    /// The value of trailer `name` (any letter case).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut matching = self
            .entries
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name));
        matching.next().map(|(_, value)| value.as_str())
    }

    /// The value of the `x-amz-checksum-*` trailer for `algorithm`.
    #[must_use]
    pub fn checksum(&self, algorithm: ChecksumAlgorithm) -> Option<&str> {
        self.get(algorithm.header_name())
    }

    /// The first `x-amz-checksum-*` trailer with a known algorithm.
    #[must_use]
    pub fn first_checksum(&self) -> Option<(ChecksumAlgorithm, &str)> {
        self.entries.iter().find_map(|(name, value)| {
            ChecksumAlgorithm::from_header_name(name).map(|algorithm| (algorithm, value.as_str()))
        })
    }

    /// All trailers as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// Whether no trailer was sent.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where the decoder is in the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    ChunkHeader,
    Data { remaining: u64 },
    DataEnd { seen_cr: bool },
    Trailer,
    Done,
}

/// The signature chain of a signed body.
struct Chain {
    context: StreamingContext,
    previous: String,
    claimed: String,
    hasher: Sha256,
}

/// Incremental `aws-chunked` decoder; see the [module docs](self).
pub struct ChunkedDecoder {
    chain: Option<Chain>,
    expects_trailer: bool,
    state: State,
    line: Vec<u8>,
    trailers: Trailers,
    trailer_signature: Option<String>,
    blank_before_trailers: bool,
    decoded: u64,
    failed: Option<ChunkedError>,
}

impl ChunkedDecoder {
    /// A decoder for a body in `mode`; `expects_trailer` says whether the request announced
    /// trailers (`x-amz-trailer`, a `-TRAILER` payload mode).
    #[must_use]
    pub fn new(mode: ChunkMode, expects_trailer: bool) -> Self {
        let chain = match mode {
            ChunkMode::Unsigned => None,
            ChunkMode::Signed(context) => Some(Chain {
                previous: context.seed_signature().to_owned(),
                context,
                claimed: String::new(),
                hasher: Sha256::new(),
            }),
        };
        Self {
            chain,
            expects_trailer,
            state: State::ChunkHeader,
            line: Vec::new(),
            trailers: Trailers::default(),
            trailer_signature: None,
            blank_before_trailers: false,
            decoded: 0,
            failed: None,
        }
    }

    /// Decodes the next piece of the body, appending chunk data to `out`.
    ///
    /// # Errors
    ///
    /// The first [`ChunkedError`] met; the decoder then keeps returning it.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkedError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        while !input.is_empty() {
            match self.step(input, out) {
                Ok(consumed) => input = &input[consumed..],
                Err(error) => {
                    self.failed = Some(error.clone());
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Ends the body and returns its trailers.
    ///
    /// A missing closing CRLF is tolerated once everything it would close has arrived.
    ///
    /// # Errors
    ///
    /// [`ChunkedError::Truncated`] if the body ended early, or the error [`push`](Self::push)
    /// reported, or a trailer problem found at the end.
    pub fn finish(self) -> Result<Trailers, ChunkedError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        match self.state {
            State::Done => Ok(self.trailers),
            State::Trailer if self.may_end_without_closing_line() => {
                self.check_trailers()?;
                Ok(self.trailers)
            }
            _ => Err(ChunkedError::Truncated),
        }
    }

    /// Bytes of chunk data decoded so far.
    #[must_use]
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Whether the closing line has been read.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes a prefix of `input` (at least one byte) and returns its length.
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkedError> {
        match self.state {
            State::ChunkHeader => self.read_line(input, Self::on_chunk_header),
            State::Trailer => self.read_line(input, Self::on_trailer_line),
            State::Data { remaining } => self.read_data(input, remaining, out),
            State::DataEnd { seen_cr } => {
                self.state = match (seen_cr, input[0]) {
                    (false, b'\r') => State::DataEnd { seen_cr: true },
                    (true, b'\n') => State::ChunkHeader,
                    _ => {
                        return Err(ChunkedError::Malformed(
                            "chunk data is not followed by CRLF",
                        ));
                    }
                };
                Ok(1)
            }
            State::Done => Err(ChunkedError::Malformed("data after the end of the body")),
        }
    }

    fn read_data(
        &mut self,
        input: &[u8],
        remaining: u64,
        out: &mut Vec<u8>,
    ) -> Result<usize, ChunkedError> {
        let take =
            usize::try_from(remaining).map_or(input.len(), |remaining| remaining.min(input.len()));
        let data = &input[..take];
        out.extend_from_slice(data);
        if let Some(chain) = &mut self.chain {
            chain.hasher.update(data);
        }
        self.decoded += take as u64;

        let remaining = remaining - take as u64;
        self.state = State::Data { remaining };
        if remaining == 0 {
            self.verify_chunk()?;
            self.state = State::DataEnd { seen_cr: false };
        }
        Ok(take)
    }

    /// Accumulates one CRLF-terminated line, capped at [`MAX_LINE_LEN`], and hands it to
    /// `on_line` once complete.
    fn read_line(
        &mut self,
        input: &[u8],
        on_line: fn(&mut Self, &[u8]) -> Result<(), ChunkedError>,
    ) -> Result<usize, ChunkedError> {
        let end = input.iter().position(|&b| b == b'\n');
        let consumed = end.map_or(input.len(), |end| end + 1);
        if self.line.len() + consumed > MAX_LINE_LEN + 2 {
            return Err(ChunkedError::Malformed("line too long"));
        }
        self.line.extend_from_slice(&input[..consumed]);
        if end.is_none() {
            return Ok(consumed);
        }

        let line = std::mem::take(&mut self.line);
        let Some(content) = line.strip_suffix(b"\r\n") else {
            return Err(ChunkedError::Malformed("line is not terminated by CRLF"));
        };
        on_line(self, content)?;
        self.line = line;
        self.line.clear();
        Ok(consumed)
    }

    fn on_chunk_header(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        let text = std::str::from_utf8(line)
            .map_err(|_| ChunkedError::Malformed("chunk header is not ASCII"))?;
        let mut pieces = text.split(';');
        let size = parse_chunk_size(pieces.next().unwrap_or_default())?;

        let mut signature = None;
        for extension in pieces {
            let (name, value) = extension.split_once('=').unwrap_or((extension, ""));
            if name.trim() == "chunk-signature" && signature.replace(value.trim()).is_some() {
                return Err(ChunkedError::Malformed("repeated chunk-signature"));
            }
        }
        if let Some(chain) = &mut self.chain {
            let signature = signature.filter(|signature| is_signature(signature));
            chain.claimed = signature
                .ok_or(ChunkedError::SignatureDoesNotMatch)?
                .to_ascii_lowercase();
        }

        if size == 0 {
            self.verify_chunk()?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        let malformed = ChunkedError::MalformedTrailer;
        if line.is_empty() {
            // AWS's documented trailer example puts a blank line between the final chunk and
            // the trailers; SDKs do not. Accept it once, before any trailer.
            let nothing_yet = self.trailers.is_empty() && self.trailer_signature.is_none();
            if self.expects_trailer && nothing_yet && !self.blank_before_trailers {
                self.blank_before_trailers = true;
                return Ok(());
            }
            self.check_trailers()?;
            self.state = State::Done;
            return Ok(());
        }

        let text = std::str::from_utf8(line).map_err(|_| malformed("trailer is not UTF-8"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or(malformed("trailer is not name:value"))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
        if name.is_empty() {
            return Err(malformed("trailer name is empty"));
        }
        if name == TRAILER_SIGNATURE {
            if self.chain.is_none() {
                return Err(malformed("trailer signature in an unsigned body"));
            }
            if self.trailer_signature.replace(value).is_some() {
                return Err(malformed("repeated trailer signature"));
            }
            return Ok(());
        }
        if self.trailer_signature.is_some() {
            return Err(malformed("trailer after the trailer signature"));
        }
        if self.trailers.entries.len() >= MAX_TRAILERS {
            return Err(malformed("too many trailers"));
        }
        self.trailers.entries.push((name, value));
        Ok(())
    }

    /// Checks the signature of the chunk just completed and advances the chain.
    fn verify_chunk(&mut self) -> Result<(), ChunkedError> {
        let Some(chain) = &mut self.chain else {
            return Ok(());
        };
        let digest: [u8; 32] = chain.hasher.finalize_reset().into();
        let expected = chain.context.chunk_signature(&chain.previous, &digest);
        if !bool::from(expected.as_bytes().ct_eq(chain.claimed.as_bytes())) {
            return Err(ChunkedError::SignatureDoesNotMatch);
        }
        chain.previous = expected;
        Ok(())
    }

    /// Checks the complete trailer section against what was announced and, for a signed body,
    /// its signature over the sorted `name:value\n` lines.
    fn check_trailers(&self) -> Result<(), ChunkedError> {
        let malformed = ChunkedError::MalformedTrailer;
        let has_trailer = !self.trailers.is_empty() || self.trailer_signature.is_some();
        if self.expects_trailer && self.trailers.is_empty() {
            return Err(malformed("the announced trailer is missing"));
        }
        if !self.expects_trailer && has_trailer {
            return Err(malformed("a trailer was sent but not announced"));
        }
        let Some(chain) = self.chain.as_ref().filter(|_| has_trailer) else {
            return Ok(());
        };

        let claimed = self
            .trailer_signature
            .as_deref()
            .filter(|signature| is_signature(signature));
        let claimed = claimed
            .ok_or(ChunkedError::SignatureDoesNotMatch)?
            .to_ascii_lowercase();
        let mut sorted: Vec<&(String, String)> = self.trailers.entries.iter().collect();
        sorted.sort();
        let mut hasher = Sha256::new();
        for (name, value) in sorted {
            hasher.update(format!("{name}:{value}\n"));
        }
        let expected = chain
            .context
            .trailer_signature(&chain.previous, &hasher.finalize().into());
        if !bool::from(expected.as_bytes().ct_eq(claimed.as_bytes())) {
            return Err(ChunkedError::SignatureDoesNotMatch);
        }
        Ok(())
    }

    /// Whether the body may stop before its closing line: everything that line would close
    /// has arrived (some clients leave it out after trailers or after the final chunk).
    fn may_end_without_closing_line(&self) -> bool {
        if !self.line.is_empty() {
            return false;
        }
        let nothing_yet = self.trailers.is_empty() && self.trailer_signature.is_none();
        if !self.expects_trailer {
            return nothing_yet;
        }
        if nothing_yet {
            // The blank line after the final chunk closed an empty trailer section.
            return self.blank_before_trailers;
        }
        !self.trailers.is_empty() && (self.chain.is_none() || self.trailer_signature.is_some())
    }
}

/// Parses the hex chunk size (either letter case, leading zeros allowed).
fn parse_chunk_size(text: &str) -> Result<u64, ChunkedError> {
    let text = text.trim_matches([' ', '\t']);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ChunkedError::Malformed("chunk size is not hexadecimal"));
    }
    let significant = text.trim_start_matches('0');
    if significant.len() > 16 {
        return Err(ChunkedError::ChunkTooLarge);
    }
    let size = u64::from_str_radix(
        if significant.is_empty() {
            "0"
        } else {
            significant
        },
        16,
    )
    .map_err(|_| ChunkedError::Malformed("chunk size is not hexadecimal"))?;
    if size > MAX_CHUNK_SIZE {
        return Err(ChunkedError::ChunkTooLarge);
    }
    Ok(size)
}

fn is_signature(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

impl std::fmt::Debug for ChunkedDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedDecoder")
            .field("signed", &self.chain.is_some())
            .field("expects_trailer", &self.expects_trailer)
            .field("state", &self.state)
            .field("decoded", &self.decoded)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;
    use crate::checksum::ChecksumHasher;
    use crate::sigv4::CredentialScope;

    const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";

    fn context(seed: &str) -> StreamingContext {
        let scope = CredentialScope {
            date: "20130524".into(),
            region: "us-east-1".into(),
            service: "s3".into(),
        };
        StreamingContext::new(SECRET, &scope, datetime!(2013-05-24 0:00 UTC), seed)
    }

    fn signed(seed: &str, expects_trailer: bool) -> ChunkedDecoder {
        ChunkedDecoder::new(ChunkMode::Signed(context(seed)), expects_trailer)
    }

    /// Feeds `body` in pieces of `piece` bytes.
    fn decode(
        mut decoder: ChunkedDecoder,
        body: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, Trailers), ChunkedError> {
        let mut out = Vec::new();
        for part in body.chunks(piece.max(1)) {
            decoder.push(part, &mut out)?;
        }
        assert_eq!(decoder.decoded_len(), out.len() as u64);
        Ok((out, decoder.finish()?))
    }

    /// The body of AWS's chunked upload example: 64 KiB and 1 KiB of `a`, then the final chunk.
    fn documented_body(signatures: [&str; 3], between: &[u8], trailer: &[u8]) -> Vec<u8> {
        let mut body = format!("10000;chunk-signature={}\r\n", signatures[0]).into_bytes();
        body.extend([b'a'; 65_536]);
        body.extend(format!("\r\n400;chunk-signature={}\r\n", signatures[1]).bytes());
        body.extend([b'a'; 1024]);
        body.extend(format!("\r\n0;chunk-signature={}\r\n", signatures[2]).bytes());
        body.extend_from_slice(between);
        body.extend_from_slice(trailer);
        body
    }

    const SIGNATURES: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];
    const TRAILER_SIGNATURES: [&str; 3] = [
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
    ];
    const TRAILER: &[u8] = b"x-amz-checksum-crc32c:sOO8/Q==\r\n\
        x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n";

    /// Encodes `data` as a client would, in chunks of the given sizes (cycled).
    fn encode(
        data: &[u8],
        sizes: &[usize],
        signer: Option<&StreamingContext>,
        trailer: Option<(&str, &str)>,
    ) -> Vec<u8> {
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut rest = data;
        let mut sizes = sizes.iter().cycle();
        while let (false, Some(size)) = (rest.is_empty(), sizes.next()) {
            let (chunk, tail) = rest.split_at((*size).clamp(1, rest.len()));
            chunks.push(chunk);
            rest = tail;
        }
        chunks.push(b"");

        let mut body = Vec::new();
        let mut previous = signer.map(|context| context.seed_signature().to_owned());
        for chunk in chunks {
            body.extend(format!("{:X}", chunk.len()).bytes());
            if let (Some(context), Some(prev)) = (signer, previous.as_mut()) {
                *prev = context.chunk_signature(prev, &Sha256::digest(chunk).into());
                body.extend(format!(";chunk-signature={prev}").bytes());
            }
            body.extend_from_slice(b"\r\n");
            if !chunk.is_empty() {
                body.extend_from_slice(chunk);
                body.extend_from_slice(b"\r\n");
            }
        }
        if let Some((name, value)) = trailer {
            body.extend(format!("{name}:{value}\r\n").bytes());
            if let (Some(context), Some(prev)) = (signer, previous.as_ref()) {
                let hash = Sha256::digest(format!("{name}:{value}\n")).into();
                body.extend(
                    format!(
                        "x-amz-trailer-signature:{}\r\n",
                        context.trailer_signature(prev, &hash)
                    )
                    .bytes(),
                );
            }
        }
        body.extend_from_slice(b"\r\n");
        body
    }

    #[test]
    fn aws_example_signed_body_decodes_at_any_split() {
        let body = documented_body(SIGNATURES, b"\r\n", b"");
        assert_eq!(body.len(), 66_824);
        for piece in [1, 2, 7, 88, 1000, 65_536, body.len()] {
            let (data, trailers) = decode(signed(SEED, false), &body, piece).unwrap();
            assert_eq!(data, vec![b'a'; 66_560]);
            assert!(trailers.is_empty());
        }
    }

    #[test]
    fn aws_example_signed_trailer_decodes_in_sdk_and_documented_layouts() {
        let sdk = documented_body(TRAILER_SIGNATURES, b"", &[TRAILER, b"\r\n"].concat());
        let documented = documented_body(TRAILER_SIGNATURES, b"\r\n", TRAILER);
        for body in [sdk, documented] {
            let (data, trailers) = decode(signed(TRAILER_SEED, true), &body, 3).unwrap();
            assert_eq!(trailers.get("X-Amz-Checksum-CRC32C"), Some("sOO8/Q=="));
            let (algorithm, value) = trailers.first_checksum().unwrap();
            assert_eq!(trailers.checksum(ChecksumAlgorithm::Crc32c), Some(value));
            let mut hasher = ChecksumHasher::new(algorithm);
            hasher.update(&data);
            assert_eq!(hasher.finish(), value);
        }
    }

    #[test]
    fn tampered_data_or_signatures_are_refused() {
        let mut body = documented_body(SIGNATURES, b"\r\n", b"");
        body[500] = b'b';
        assert_eq!(
            decode(signed(SEED, false), &body, 4096).unwrap_err(),
            ChunkedError::SignatureDoesNotMatch
        );

        let swapped = documented_body([SIGNATURES[1], SIGNATURES[0], SIGNATURES[2]], b"\r\n", b"");
        assert_eq!(
            decode(signed(SEED, false), &swapped, 4096).unwrap_err(),
            ChunkedError::SignatureDoesNotMatch
        );

        let unsigned = encode(b"hello", &[5], None, None);
        assert_eq!(
            decode(signed(SEED, false), &unsigned, 9).unwrap_err(),
            ChunkedError::SignatureDoesNotMatch
        );

        let trailer = TRAILER
            .to_vec()
            .iter()
            .map(|&b| if b == b'Q' { b'R' } else { b })
            .collect::<Vec<u8>>();
        let body = documented_body(TRAILER_SIGNATURES, b"", &[&trailer[..], b"\r\n"].concat());
        assert_eq!(
            decode(signed(TRAILER_SEED, true), &body, 99).unwrap_err(),
            ChunkedError::SignatureDoesNotMatch
        );

        let unsigned_trailer = documented_body(
            TRAILER_SIGNATURES,
            b"",
            b"x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n",
        );
        let error = decode(signed(TRAILER_SEED, true), &unsigned_trailer, 99).unwrap_err();
        assert_eq!(error, ChunkedError::SignatureDoesNotMatch);
    }

    #[test]
    fn unsigned_body_with_trailer_decodes() {
        let body =
            b"5\r\nhello\r\nB\r\n world!!!!!\r\n0\r\nx-amz-checksum-crc32: DUoRhQ== \r\n\r\n";
        let decoder = ChunkedDecoder::new(ChunkMode::Unsigned, true);
        let (data, trailers) = decode(decoder, body, 1).unwrap();
        assert_eq!(data, b"hello world!!!!!");
        assert_eq!(
            trailers.first_checksum(),
            Some((ChecksumAlgorithm::Crc32, "DUoRhQ=="))
        );
        assert_eq!(
            trailers.checksum(ChecksumAlgorithm::Crc32),
            Some("DUoRhQ==")
        );
        assert_eq!(trailers.iter().count(), 1);
    }

    #[test]
    fn truncated_bodies_are_incomplete() {
        let body = encode(b"hello world", &[4], None, None);
        for cut in 0..body.len() - 2 {
            let error = decode(
                ChunkedDecoder::new(ChunkMode::Unsigned, false),
                &body[..cut],
                3,
            )
            .unwrap_err();
            assert_eq!(error, ChunkedError::Truncated, "cut at {cut}");
            assert_eq!(
                (error.s3_code(), error.status()),
                ("IncompleteBody", StatusCode::BAD_REQUEST)
            );
        }
        // Only the closing CRLF missing: tolerated, everything has arrived.
        decode(
            ChunkedDecoder::new(ChunkMode::Unsigned, false),
            &body[..body.len() - 2],
            3,
        )
        .unwrap();
    }

    #[test]
    fn malformed_framing_is_refused() {
        let cases: [(&[u8], ChunkedError); 7] = [
            (
                b"zz\r\n",
                ChunkedError::Malformed("chunk size is not hexadecimal"),
            ),
            (
                b"\r\n",
                ChunkedError::Malformed("chunk size is not hexadecimal"),
            ),
            (
                b"3\r\nabcX",
                ChunkedError::Malformed("chunk data is not followed by CRLF"),
            ),
            (
                b"3\nabc",
                ChunkedError::Malformed("line is not terminated by CRLF"),
            ),
            (b"140000001\r\n", ChunkedError::ChunkTooLarge),
            (
                b"0\r\n\r\nextra",
                ChunkedError::Malformed("data after the end of the body"),
            ),
            (
                b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
                ChunkedError::MalformedTrailer("a trailer was sent but not announced"),
            ),
        ];
        for (body, expected) in cases {
            let mut decoder = ChunkedDecoder::new(ChunkMode::Unsigned, false);
            let error = decoder.push(body, &mut Vec::new()).unwrap_err();
            assert_eq!(error, expected, "{}", String::from_utf8_lossy(body));
            assert_eq!(
                decoder.push(b"0\r\n\r\n", &mut Vec::new()).unwrap_err(),
                expected
            );
        }
        let missing = decode(
            ChunkedDecoder::new(ChunkMode::Unsigned, true),
            b"0\r\n\r\n",
            1,
        )
        .unwrap_err();
        assert_eq!(missing.s3_code(), "MalformedTrailerError");
    }

    #[test]
    fn endless_lines_are_cut_off_early() {
        let mut decoder = ChunkedDecoder::new(ChunkMode::Unsigned, false);
        let junk = vec![b'f'; 1024];
        let mut fed = 0;
        let error = loop {
            match decoder.push(&junk, &mut Vec::new()) {
                Ok(()) => fed += junk.len(),
                Err(error) => break error,
            }
        };
        assert_eq!(error, ChunkedError::Malformed("line too long"));
        assert!(fed <= MAX_LINE_LEN);
        assert!(decoder.line.capacity() <= 2 * (MAX_LINE_LEN + 2));
    }

    #[test]
    fn error_codes_follow_s3() {
        assert_eq!(
            ChunkedError::SignatureDoesNotMatch.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(ChunkedError::ChunkTooLarge.s3_code(), "EntityTooLarge");
        assert_eq!(ChunkedError::Malformed("x").s3_code(), "IncompleteBody");
    }

    proptest! {
        #[test]
        fn any_split_of_a_valid_body_decodes(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            sizes in proptest::collection::vec(1usize..700, 1..5),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
            mode in 0u8..4,
        ) {
            let signer = (mode % 2 == 1).then(|| context(SEED));
            let trailer = (mode >= 2).then(|| {
                let mut hasher = ChecksumHasher::new(ChecksumAlgorithm::Sha256);
                hasher.update(&data);
                ("x-amz-checksum-sha256", hasher.finish())
            });
            let trailer_ref = trailer.as_ref().map(|(name, value)| (*name, value.as_str()));
            let body = encode(&data, &sizes, signer.as_ref(), trailer_ref);

            let mut cuts: Vec<usize> =
                cuts.iter().map(|index| index.index(body.len() + 1)).collect();
            cuts.extend([0, body.len()]);
            cuts.sort_unstable();
            let mode = signer.map_or(ChunkMode::Unsigned, ChunkMode::Signed);
            let mut decoder = ChunkedDecoder::new(mode, trailer.is_some());
            let mut out = Vec::new();
            for window in cuts.windows(2) {
                decoder.push(&body[window[0]..window[1]], &mut out).unwrap();
            }
            prop_assert!(decoder.is_finished());
            let trailers = decoder.finish().unwrap();
            prop_assert_eq!(out, data);
            let expected = trailer.as_ref().map(|(_, value)| value.as_str());
            prop_assert_eq!(trailers.get("x-amz-checksum-sha256"), expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..600),
            signed in any::<bool>(),
        ) {
            let mode = if signed { ChunkMode::Signed(context(SEED)) } else { ChunkMode::Unsigned };
            let mut decoder = ChunkedDecoder::new(mode, signed);
            let mut out = Vec::new();
            if decoder.push(&body, &mut out).is_ok() {
                let _ = decoder.finish();
            }
        }
    }
}
