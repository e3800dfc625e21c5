//! The TPM 2.0 key sealer. A key is sealed as a keyed-hash data object under a storage key that
//! the TPM re-derives from its owner seed on every start, so nothing but the sealed blob is kept
//! on disk and the blob can only be loaded by the TPM that made it. Works with a hardware TPM
//! (`device:/dev/tpmrm0`) or swtpm (`swtpm:host=127.0.0.1,port=2321`). The blob layout is in
//! [`blob`].

mod blob;

use std::str::FromStr;

use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::constants::response_code::Tss2ResponseCode;
use tss_esapi::handles::{KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{
    Digest, EccPoint, KeyedHashScheme, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    PublicKeyedHashParameters, SensitiveData, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::{Context, TctiNameConf, WrapperErrorKind};

use crate::crypto::SecretKey;
use crate::keys::{KeyError, KeyProvider, KeySealer};

/// Seals keys to a TPM 2.0 reached through a TCTI.
///
/// Each operation opens its own TPM context, so the sealer keeps working across a restart of
/// the TPM resource manager or of swtpm, and holds no TPM resources between calls.
pub struct TpmSealer {
    tcti: String,
}

impl TpmSealer {
    /// Connects to the TPM at `tcti` (e.g. `device:/dev/tpmrm0`,
    /// `swtpm:host=127.0.0.1,port=2321`) and checks that it can derive the storage key.
    ///
    /// # Errors
    /// [`KeyError::TpmUnavailable`] if the TCTI string is invalid, the TPM cannot be reached,
    /// or its owner hierarchy refuses an empty password.
    pub fn connect(tcti: &str) -> Result<Self, KeyError> {
        let sealer = Self {
            tcti: tcti.to_owned(),
        };

        // Deriving the storage key proves the owner hierarchy is usable; a TPM that merely
        // answers would otherwise only fail at the first seal.
        let mut ctx = sealer.context()?;
        let primary = create_primary(&mut ctx).map_err(|e| sealer.unavailable(e))?;
        flush(&mut ctx, primary.into());

        Ok(sealer)
    }

    /// The TCTI string this sealer talks to.
    #[must_use]
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    fn context(&self) -> Result<Context, KeyError> {
        let conf = TctiNameConf::from_str(&self.tcti).map_err(|e| self.unavailable(e))?;
        Context::new(conf).map_err(|e| self.unavailable(e))
    }

    fn unavailable(&self, source: tss_esapi::Error) -> KeyError {
        KeyError::TpmUnavailable {
            tcti: self.tcti.clone(),
            source: Box::new(source),
        }
    }
}

impl KeySealer for TpmSealer {
    fn provider(&self) -> KeyProvider {
        KeyProvider::Tpm
    }

    fn seal(&self, key: &SecretKey) -> Result<Vec<u8>, KeyError> {
        let mut ctx = self.context()?;
        let primary = create_primary(&mut ctx).map_err(step("create_primary"))?;

        let created = with_salted_session(&mut ctx, primary, |ctx| {
            let template = sealed_object_template().map_err(step("build template"))?;
            let data = SensitiveData::try_from(&key.expose_secret()[..])
                .map_err(step("prepare sealed data"))?;
            ctx.create(primary, template, None, Some(data), None, None)
                .map_err(step("create"))
        });
        flush(&mut ctx, primary.into());

        let created = created?;
        let public = created
            .out_public
            .marshall()
            .map_err(step("marshal public area"))?;
        Ok(blob::encode(&public, created.out_private.value()))
    }

    fn unseal(&self, sealed: &[u8]) -> Result<SecretKey, KeyError> {
        let Some((public, private)) = parse_blob(sealed) else {
            return Err(KeyError::Unseal {
                provider: KeyProvider::Tpm,
            });
        };

        let mut ctx = self.context()?;
        let primary = create_primary(&mut ctx).map_err(step("create_primary"))?;

        let unsealed = with_salted_session(&mut ctx, primary, |ctx| {
            let object = ctx.load(primary, private, public).map_err(step("load"))?;
            let data = ctx.unseal(object.into()).map_err(step("unseal"));
            flush(ctx, object.into());
            data
        });
        flush(&mut ctx, primary.into());

        let data = unsealed?;
        // A sealed object that does not hold 32 bytes was not made by this sealer.
        SecretKey::try_from_slice(data.value()).map_err(|_| KeyError::Unseal {
            provider: KeyProvider::Tpm,
        })
    }
}

/// A failed TPM step: which command, and the TSS error.
struct Step {
    op: &'static str,
    source: tss_esapi::Error,
}

fn step(op: &'static str) -> impl Fn(tss_esapi::Error) -> Step {
    move |source| Step { op, source }
}

impl From<Step> for KeyError {
    fn from(step: Step) -> Self {
        let Step { op, source } = step;
        // Format-one response codes blame a parameter, handle or session of the command. For
        // `load` the only caller-controlled input is the blob, so it is damaged or belongs to
        // another TPM.
        let bad_blob = op == "load"
            && matches!(
                source,
                tss_esapi::Error::Tss2Error(Tss2ResponseCode::FormatOne(_))
            );
        if bad_blob {
            return KeyError::Unseal {
                provider: KeyProvider::Tpm,
            };
        }
        KeyError::Tpm {
            op,
            source: Box::new(source),
        }
    }
}

/// Template of the storage key: an ECC P-256 restricted decryption key with AES-128-CFB for
/// its children, as in the TCG storage root key template. Frozen: the TPM derives the same
/// key from the same template and owner seed, and a different key cannot load old blobs.
fn primary_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    let parameters = PublicEccParametersBuilder::new_restricted_decryption_key(
        SymmetricDefinitionObject::AES_128_CFB,
        EccCurve::NistP256,
    )
    .build()?;

    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(parameters)
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// Template of the sealed data object: no policy and an empty auth value, so the TPM itself
/// is the only guard; `fixed_tpm` and `fixed_parent` keep it from being duplicated.
fn sealed_object_template() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .build()?;

    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(Digest::default())
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
}

/// Derives the storage key in the owner hierarchy (empty owner password assumed).
fn create_primary(ctx: &mut Context) -> tss_esapi::Result<KeyHandle> {
    let template = primary_template()?;
    ctx.execute_with_nullauth_session(|ctx| {
        ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
    })
    .map(|created| created.key_handle)
}

/// Runs `f` under an HMAC session salted with the storage key, with parameter encryption
/// both ways, so the key bytes never cross the bus to the TPM in the clear.
fn with_salted_session<T>(
    ctx: &mut Context,
    primary: KeyHandle,
    f: impl FnOnce(&mut Context) -> Result<T, Step>,
) -> Result<T, Step> {
    let session = ctx
        .start_auth_session(
            Some(primary),
            None,
            None,
            SessionType::Hmac,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .map_err(step("start_auth_session"))?
        .ok_or(Step {
            op: "start_auth_session",
            source: tss_esapi::Error::WrapperError(WrapperErrorKind::WrongValueFromTpm),
        })?;

    let (attributes, mask) = SessionAttributesBuilder::new()
        .with_decrypt(true)
        .with_encrypt(true)
        .build();
    let result = match ctx.tr_sess_set_attributes(session, attributes, mask) {
        Ok(()) => ctx.execute_with_session(Some(session), f),
        Err(e) => Err(step("tr_sess_set_attributes")(e)),
    };
    flush(ctx, SessionHandle::from(session).into());

    result
}

/// Flushes a transient handle. A failure only leaks the handle until the context closes,
/// which flushes it again, so it is logged rather than returned over the real result.
fn flush(ctx: &mut Context, handle: ObjectHandle) {
    if let Err(error) = ctx.flush_context(handle) {
        tracing::warn!(%error, "could not flush a TPM transient handle");
    }
}

/// Splits a sealed blob into the TPM structures; `None` if it is not a well-formed blob.
fn parse_blob(sealed: &[u8]) -> Option<(Public, Private)> {
    let (public, private) = blob::decode(sealed)?;
    let public = Public::unmarshall(public).ok()?;
    let private = Private::try_from(private).ok()?;
    Some((public, private))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_swtpm::{Swtpm, free_port_pair};

    #[test]
    fn seal_then_unseal_returns_the_same_key() {
        let tpm = Swtpm::start();
        let sealer = TpmSealer::connect(&tpm.tcti()).unwrap();
        let key = SecretKey::generate();

        let sealed = sealer.seal(&key).unwrap();

        assert!(sealer.unseal(&sealed).unwrap() == key);
        assert!(
            !sealed.windows(32).any(|w| w == key.expose_secret()),
            "key sealed in clear"
        );
    }

    #[test]
    fn unseal_works_after_tpm_restart() {
        let mut tpm = Swtpm::start();
        let key = SecretKey::generate();
        let sealed = TpmSealer::connect(&tpm.tcti()).unwrap().seal(&key).unwrap();

        tpm.restart();
        let sealer = TpmSealer::connect(&tpm.tcti()).unwrap();

        assert!(sealer.unseal(&sealed).unwrap() == key);
    }

    #[test]
    fn tampered_blob_fails_to_unseal() {
        let tpm = Swtpm::start();
        let sealer = TpmSealer::connect(&tpm.tcti()).unwrap();
        let sealed = sealer.seal(&SecretKey::generate()).unwrap();

        // Flip a byte inside the encrypted private area, then one in the public area.
        let mut private_flip = sealed.clone();
        let last = private_flip.len() - 1;
        private_flip[last] ^= 0x01;
        let mut public_flip = sealed.clone();
        public_flip[6] ^= 0x01;

        for bad in [
            private_flip,
            public_flip,
            sealed[..sealed.len() - 1].to_vec(),
        ] {
            let result = sealer.unseal(&bad);
            assert!(
                matches!(result, Err(KeyError::Unseal { .. })),
                "{:?}",
                result.err()
            );
        }
    }

    #[test]
    fn another_tpm_cannot_unseal() {
        let (tpm_a, tpm_b) = (Swtpm::start(), Swtpm::start());
        let sealed = TpmSealer::connect(&tpm_a.tcti())
            .unwrap()
            .seal(&SecretKey::generate());

        let result = TpmSealer::connect(&tpm_b.tcti())
            .unwrap()
            .unseal(&sealed.unwrap());

        assert!(
            matches!(result, Err(KeyError::Unseal { .. })),
            "{:?}",
            result.err()
        );
    }

    #[test]
    fn connect_to_nothing_reports_tpm_unavailable() {
        let port = free_port_pair();
        let tcti = format!("swtpm:host=127.0.0.1,port={port}");

        let Err(err) = TpmSealer::connect(&tcti) else {
            panic!("connected to a TPM that is not running");
        };

        assert!(matches!(err, KeyError::TpmUnavailable { .. }), "{err:?}");
        assert!(err.to_string().contains(&tcti));
    }
}
