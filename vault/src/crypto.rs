//! Key material and the authenticated encryption every other part of the vault builds on.
//!
//! [`SecretKey`] holds 32 bytes of key material that are wiped when dropped, never printed and
//! compared in constant time. [`wrap_key`] and [`seal_bytes`] seal small values (data keys,
//! credential secrets) with AES-256-GCM-SIV under a caller-chosen context string, and
//! [`derive_key`] derives subkeys with HKDF-SHA256. The blob format seals its segments through
//! `AeadKey`, so this module is the only one that touches the cipher crates.
//!
//! Sealed values have the layout `version (1) || nonce (12) || ciphertext || tag (16)`. The
//! context is bound as associated data: a value sealed for one purpose (say, the data key of
//! vault 7 version 1) does not open under another context, even with the right key.

use std::fmt;

use aes_gcm_siv::aead::{AeadInPlace, KeyInit};
use aes_gcm_siv::{Aes256GcmSiv, Nonce, Tag};
use hkdf::Hkdf;
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Length in bytes of every key: AES-256 keys, HKDF outputs and wrapped data keys.
pub const KEY_LEN: usize = 32;

/// Length in bytes of an AES-256-GCM-SIV nonce.
pub const NONCE_LEN: usize = 12;

/// Length in bytes of an AES-256-GCM-SIV authentication tag.
pub const TAG_LEN: usize = 16;

/// Version byte that starts every value sealed by [`seal_bytes`] or [`wrap_key`].
///
/// Frozen: version 1 of the sealed-value layout is stored in the metadata database, so changing
/// what this version means would make existing wrapped keys and secrets unreadable.
pub const SEALED_VERSION: u8 = 1;

/// Bytes a sealed value adds to its plaintext: version, nonce and tag.
pub const SEALED_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Errors from sealing, opening and handling key material.
///
/// None of them carries key material or plaintext, so they are safe to log.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// An authentication tag did not verify: the data was tampered with, or the key or the
    /// context is not the one it was sealed with.
    #[error("integrity check failed: wrong key, wrong context or tampered data")]
    IntegrityCheckFailed,

    /// The sealed value cannot be valid whatever the key (too short, for example).
    #[error("malformed sealed data: {what}")]
    Malformed {
        /// What is wrong with it.
        what: &'static str,
    },

    /// The sealed value starts with a version byte this build does not know.
    #[error("unsupported sealed data version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },

    /// Key material of the wrong length was offered.
    #[error("bad key length {len}, expected {KEY_LEN} bytes")]
    BadKeyLength {
        /// The length offered.
        len: usize,
    },
}

/// A 256-bit secret key.
///
/// The bytes are wiped when the key is dropped (clones are wiped too), `Debug` prints
/// `SecretKey(..)`, and equality takes constant time. The only way to reach the bytes is
/// [`SecretKey::expose_secret`], so every use of raw key material is easy to find.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// Generates a fresh key from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes; carrying on without a key
    /// is not an option for any caller.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(bytes.as_mut_slice());
        Self(bytes)
    }

    /// Takes ownership of raw key bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies key bytes out of a slice.
    ///
    /// # Errors
    ///
    /// [`CryptoError::BadKeyLength`] if the slice is not exactly [`KEY_LEN`] bytes long.
    pub fn try_from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::BadKeyLength { len: bytes.len() });
        }

        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(bytes);
        Ok(Self(key))
    }

    /// The raw key bytes. Do not log them, copy them into unwiped memory or keep them longer
    /// than the call that needs them.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for SecretKey {}

/// Seals `key` under `wrapping` for storage; `context` names what the key is for and must be
/// given again to unwrap it (for example `b"vault-key:7:v1"`).
///
/// The output is [`SEALED_OVERHEAD`] + [`KEY_LEN`] bytes.
#[must_use]
pub fn wrap_key(wrapping: &SecretKey, key: &SecretKey, context: &[u8]) -> Vec<u8> {
    seal_bytes(wrapping, key.expose_secret(), context)
}

/// Opens a key sealed by [`wrap_key`].
///
/// # Errors
///
/// [`CryptoError::IntegrityCheckFailed`] for a wrong wrapping key, a wrong context or tampered
/// bytes; [`CryptoError::Malformed`] or [`CryptoError::UnsupportedVersion`] for bytes that are
/// no sealed value at all; [`CryptoError::BadKeyLength`] if the sealed value is not a key.
pub fn unwrap_key(
    wrapping: &SecretKey,
    wrapped: &[u8],
    context: &[u8],
) -> Result<SecretKey, CryptoError> {
    let plaintext = open_bytes(wrapping, wrapped, context)?;
    SecretKey::try_from_slice(&plaintext)
}

/// Seals a small secret (a credential secret, say) under `key`, binding `context` as
/// associated data.
///
/// The whole value is held in memory; blob content uses the segmented format in
/// [`crate::blob`] instead.
///
/// # Panics
///
/// Panics if `plaintext` exceeds the AES-GCM-SIV limit of 64 GiB, or if the operating system
/// cannot provide random bytes for the nonce.
#[must_use]
pub fn seal_bytes(key: &SecretKey, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
    let nonce = random_nonce();
    let mut out = Vec::with_capacity(SEALED_OVERHEAD + plaintext.len());
    out.push(SEALED_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);

    let tag = AeadKey::new(key).seal_in_place(&nonce, context, &mut out[1 + NONCE_LEN..]);
    out.extend_from_slice(&tag);
    out
}

/// Opens a value sealed by [`seal_bytes`]. The plaintext is wiped when dropped.
///
/// # Errors
///
/// [`CryptoError::IntegrityCheckFailed`] for a wrong key, a wrong context or tampered bytes;
/// [`CryptoError::Malformed`] if `sealed` is too short to hold a sealed value;
/// [`CryptoError::UnsupportedVersion`] for an unknown version byte.
pub fn open_bytes(
    key: &SecretKey,
    sealed: &[u8],
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let Some((&version, rest)) = sealed.split_first() else {
        return Err(CryptoError::Malformed {
            what: "empty sealed value",
        });
    };
    if version != SEALED_VERSION {
        return Err(CryptoError::UnsupportedVersion { version });
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed {
            what: "sealed value shorter than nonce and tag",
        });
    }

    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().expect("split_at took exactly NONCE_LEN");
    let tag: &[u8; TAG_LEN] = tag.try_into().expect("split_at left exactly TAG_LEN");

    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    AeadKey::new(key).open_in_place(nonce, context, &mut plaintext, tag)?;
    Ok(plaintext)
}

/// Derives a subkey from `parent` with HKDF-SHA256.
///
/// `salt` makes the subkey unique to one object (a blob id, say) and `info` names its purpose,
/// so subkeys for different objects or purposes are independent.
#[must_use]
pub fn derive_key(parent: &SecretKey, salt: &[u8], info: &[u8]) -> SecretKey {
    let hkdf = Hkdf::<Sha256>::new(Some(salt), parent.expose_secret());
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    hkdf.expand(info, okm.as_mut_slice())
        .expect("32 bytes is far below the HKDF-SHA256 output limit of 8160 bytes");
    SecretKey(okm)
}

/// A fresh random nonce from the operating system's generator.
///
/// AES-GCM-SIV stays secure if a nonce ever repeats (it then only reveals whether two
/// plaintexts were equal), so 96 random bits per message are ample.
pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    nonce
}

/// Fills `buf` from the operating system's random number generator.
///
/// # Panics
///
/// Panics if the operating system cannot provide random bytes: no caller can go on safely
/// without them, and on Linux this only happens before the kernel's pool is first seeded.
pub(crate) fn fill_random(buf: &mut [u8]) {
    OsRng
        .try_fill_bytes(buf)
        .expect("the operating system's random number generator failed");
}

/// An AES-256-GCM-SIV key with its key schedule expanded once, for sealing many messages.
pub(crate) struct AeadKey(Aes256GcmSiv);

impl AeadKey {
    /// Expands `key` for use.
    pub(crate) fn new(key: &SecretKey) -> Self {
        Self(Aes256GcmSiv::new(key.expose_secret().into()))
    }

    /// Encrypts `buf` in place and returns the tag authenticating it and `aad`.
    ///
    /// # Panics
    ///
    /// Panics if `buf` exceeds the AES-GCM-SIV limit of 64 GiB; callers seal far less.
    pub(crate) fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let tag = self
            .0
            .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf)
            .expect("messages sealed here are far below the AES-GCM-SIV limit of 64 GiB");
        tag.into()
    }

    /// Verifies and decrypts `buf` in place.
    ///
    /// # Errors
    ///
    /// [`CryptoError::IntegrityCheckFailed`] if the tag does not verify; `buf` then holds the
    /// ciphertext again, never unauthenticated plaintext.
    pub(crate) fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.0
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, buf, Tag::from_slice(tag))
            .map_err(|_| CryptoError::IntegrityCheckFailed)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CONTEXT: &[u8] = b"vault-key:7:v1";

    #[test]
    fn wrap_then_unwrap_returns_the_key() {
        let wrapping = SecretKey::generate();
        let key = SecretKey::generate();

        let wrapped = wrap_key(&wrapping, &key, CONTEXT);

        assert_eq!(wrapped.len(), SEALED_OVERHEAD + KEY_LEN);
        assert_eq!(wrapped[0], SEALED_VERSION);
        assert_eq!(unwrap_key(&wrapping, &wrapped, CONTEXT).unwrap(), key);
    }

    #[test]
    fn wrapping_twice_gives_different_bytes() {
        let wrapping = SecretKey::generate();
        let key = SecretKey::generate();

        assert_ne!(
            wrap_key(&wrapping, &key, CONTEXT),
            wrap_key(&wrapping, &key, CONTEXT)
        );
    }

    #[test]
    fn unwrap_with_wrong_context_fails_integrity() {
        let wrapping = SecretKey::generate();
        let wrapped = wrap_key(&wrapping, &SecretKey::generate(), CONTEXT);

        let err = unwrap_key(&wrapping, &wrapped, b"vault-key:7:v2").unwrap_err();

        assert!(matches!(err, CryptoError::IntegrityCheckFailed), "{err:?}");
    }

    #[test]
    fn unwrap_with_wrong_key_fails_integrity() {
        let wrapped = wrap_key(&SecretKey::generate(), &SecretKey::generate(), CONTEXT);

        let err = unwrap_key(&SecretKey::generate(), &wrapped, CONTEXT).unwrap_err();

        assert!(matches!(err, CryptoError::IntegrityCheckFailed), "{err:?}");
    }

    #[test]
    fn flipping_any_bit_of_a_wrapped_key_is_detected() {
        let wrapping = SecretKey::generate();
        let wrapped = wrap_key(&wrapping, &SecretKey::generate(), CONTEXT);

        for index in 1..wrapped.len() {
            for bit in 0..8 {
                let mut tampered = wrapped.clone();
                tampered[index] ^= 1 << bit;
                let err = unwrap_key(&wrapping, &tampered, CONTEXT).unwrap_err();
                assert!(
                    matches!(err, CryptoError::IntegrityCheckFailed),
                    "byte {index}"
                );
            }
        }
    }

    #[test]
    fn unknown_version_byte_is_reported_as_such() {
        let wrapping = SecretKey::generate();
        let mut wrapped = wrap_key(&wrapping, &SecretKey::generate(), CONTEXT);
        wrapped[0] = 2;

        let err = unwrap_key(&wrapping, &wrapped, CONTEXT).unwrap_err();

        assert!(
            matches!(err, CryptoError::UnsupportedVersion { version: 2 }),
            "{err:?}"
        );
    }

    #[test]
    fn short_inputs_are_malformed() {
        let key = SecretKey::generate();

        for len in 0..SEALED_OVERHEAD {
            let mut sealed = vec![0u8; len];
            if let Some(first) = sealed.first_mut() {
                *first = SEALED_VERSION;
            }
            let err = open_bytes(&key, &sealed, CONTEXT).unwrap_err();
            assert!(
                matches!(err, CryptoError::Malformed { .. }),
                "len {len}: {err:?}"
            );
        }
    }

    #[test]
    fn sealed_value_that_is_not_a_key_has_bad_key_length() {
        let wrapping = SecretKey::generate();
        let sealed = seal_bytes(&wrapping, b"not a key", CONTEXT);

        let err = unwrap_key(&wrapping, &sealed, CONTEXT).unwrap_err();

        assert!(
            matches!(err, CryptoError::BadKeyLength { len: 9 }),
            "{err:?}"
        );
    }

    #[test]
    fn opens_a_value_sealed_by_an_independent_implementation() {
        // Sealed with Python's `cryptography` (AESGCMSIV), key 0x11 * 32, nonce 01..0c: pins
        // the frozen layout version || nonce || ciphertext || tag with the context as AAD.
        let sealed = hex::decode(
            "010102030405060708090a0b0ce6933e70b81f278f3765cf64bdba99928a5f38fce0a665584db9068\
             0ffb79a6b1e",
        )
        .unwrap();
        let key = SecretKey::from_bytes([0x11; KEY_LEN]);

        let plaintext = open_bytes(&key, &sealed, CONTEXT).unwrap();

        assert_eq!(&**plaintext, b"credential secret");
    }

    #[test]
    fn empty_plaintext_round_trips() {
        let key = SecretKey::generate();

        let sealed = seal_bytes(&key, b"", CONTEXT);

        assert_eq!(sealed.len(), SEALED_OVERHEAD);
        assert!(open_bytes(&key, &sealed, CONTEXT).unwrap().is_empty());
    }

    #[test]
    fn try_from_slice_checks_the_length() {
        assert!(SecretKey::try_from_slice(&[7u8; KEY_LEN]).is_ok());
        for len in [0, 16, 31, 33, 64] {
            let err = SecretKey::try_from_slice(&vec![0u8; len]).unwrap_err();
            assert!(matches!(err, CryptoError::BadKeyLength { len: l } if l == len));
        }
    }

    #[test]
    fn debug_does_not_print_key_bytes() {
        let key = SecretKey::from_bytes([0xab; KEY_LEN]);

        assert_eq!(format!("{key:?}"), "SecretKey(..)");
        assert_eq!(format!("{key:#?}"), "SecretKey(..)");
    }

    #[test]
    fn equality_compares_the_bytes() {
        let key = SecretKey::from_bytes([1; KEY_LEN]);

        assert_eq!(key, key.clone());
        assert_ne!(key, SecretKey::from_bytes([2; KEY_LEN]));
        assert_ne!(SecretKey::generate(), SecretKey::generate());
    }

    #[test]
    fn derive_key_depends_on_parent_salt_and_info() {
        let parent = SecretKey::from_bytes([3; KEY_LEN]);
        let base = derive_key(&parent, b"salt", b"info");

        assert_eq!(base, derive_key(&parent, b"salt", b"info"));
        assert_ne!(base, derive_key(&parent, b"salt2", b"info"));
        assert_ne!(base, derive_key(&parent, b"salt", b"info2"));
        assert_ne!(
            base,
            derive_key(&SecretKey::from_bytes([4; KEY_LEN]), b"salt", b"info")
        );
        assert_ne!(&base, &parent);
    }

    #[test]
    fn derive_key_is_hkdf_sha256() {
        // Known answer computed independently (Python's hmac module) with the RFC 5869 salt and
        // info of test case 1 and a 32-byte input key; derived keys are stored implicitly in
        // every blob, so this output must never change.
        let parent = SecretKey::from_bytes([0x0b; KEY_LEN]);
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();

        let derived = derive_key(&parent, &salt, &info);

        assert_eq!(
            hex::encode(derived.expose_secret()),
            "d4100799f26a09615a72af3e58fa3841a2ff20d5ace3fb392e562e207fe6b718"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn seal_then_open_round_trips(
            plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
            context in proptest::collection::vec(any::<u8>(), 0..64),
            key_bytes in any::<[u8; KEY_LEN]>(),
        ) {
            let key = SecretKey::from_bytes(key_bytes);

            let sealed = seal_bytes(&key, &plaintext, &context);

            prop_assert_eq!(sealed.len(), SEALED_OVERHEAD + plaintext.len());
            prop_assert_eq!(&**open_bytes(&key, &sealed, &context).unwrap(), &plaintext[..]);
        }

        #[test]
        fn any_flipped_byte_fails_integrity(
            plaintext in proptest::collection::vec(any::<u8>(), 0..256),
            index in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let key = SecretKey::generate();
            let mut sealed = seal_bytes(&key, &plaintext, CONTEXT);
            // Byte 0 is the version; changing it is reported as an unknown version instead.
            let at = 1 + index.index(sealed.len() - 1);
            sealed[at] ^= flip;

            let err = open_bytes(&key, &sealed, CONTEXT).unwrap_err();

            prop_assert!(matches!(err, CryptoError::IntegrityCheckFailed), "{:?}", err);
        }

        #[test]
        fn wrap_then_unwrap_round_trips(
            wrapping in any::<[u8; KEY_LEN]>(),
            key in any::<[u8; KEY_LEN]>(),
            context in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let wrapping = SecretKey::from_bytes(wrapping);
            let key = SecretKey::from_bytes(key);

            let wrapped = wrap_key(&wrapping, &key, &context);

            prop_assert_eq!(unwrap_key(&wrapping, &wrapped, &context).unwrap(), key);
        }
    }
}
