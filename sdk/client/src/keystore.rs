//! Encrypted key files in the Ethereum v3 keystore format (scrypt key
//! derivation, AES-128-CTR, Keccak-256 MAC), the format of the `stele` CLI.

use aes::cipher::{KeyIvInit, StreamCipher};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use stele_types::{Address, SecretKey, keccak256};
use thiserror::Error;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Largest scrypt cost accepted from a file (2^20; the usual is 2^18), so a
/// crafted file cannot make decryption take unbounded time or memory.
pub const SCRYPT_LOG_N_MAX: u8 = 20;
/// Largest scrypt `r` and `p` accepted from a file.
pub const SCRYPT_R_MAX: u32 = 16;
pub const SCRYPT_P_MAX: u32 = 16;
/// Most memory scrypt may take for a file, `128·n·r` bytes: 256 MiB, what
/// the usual n = 2^18, r = 8 takes (the bounds above alone would allow
/// 2 GiB).
pub const SCRYPT_MEMORY_BYTES_MAX: u64 = 256 << 20;
/// Most work scrypt may do for a file, as `n·r·p`: four times the usual
/// n = 2^18, r = 8, p = 1.
pub const SCRYPT_WORK_MAX: u64 = 1 << 23;

/// Why a key file could not be read or written.
#[derive(Debug, Error)]
pub enum KeystoreError {
    #[error("invalid keystore JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported keystore version {0} (only 3)")]
    Version(u32),
    #[error("unsupported {what} {got:?}")]
    Unsupported { what: &'static str, got: String },
    #[error("invalid hex in {0}")]
    Hex(&'static str),
    #[error("scrypt parameters out of range: {0}")]
    Params(String),
    #[error("wrong password (MAC mismatch)")]
    WrongPassword,
    #[error("decrypted key is not a valid secret key")]
    BadKey,
    #[error("the file's address {file} does not match its key's {key}")]
    AddressMismatch { file: String, key: Address },
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    id: String,
    #[serde(default)]
    address: Option<String>,
    crypto: Crypto,
}

#[derive(Debug, Serialize, Deserialize)]
struct Crypto {
    cipher: String,
    cipherparams: CipherParams,
    ciphertext: String,
    kdf: String,
    kdfparams: KdfParams,
    mac: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CipherParams {
    iv: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct KdfParams {
    dklen: u32,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
}

fn unhex(s: &str, what: &'static str) -> Result<Vec<u8>, KeystoreError> {
    hex::decode(s.trim_start_matches("0x")).map_err(|_| KeystoreError::Hex(what))
}

fn derive(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<[u8; 32], KeystoreError> {
    let params =
        scrypt::Params::new(log_n, r, p, 32).map_err(|e| KeystoreError::Params(e.to_string()))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|e| KeystoreError::Params(e.to_string()))?;
    Ok(out)
}

fn mac(derived: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    let mut m = derived[16..32].to_vec();
    m.extend_from_slice(ciphertext);
    keccak256(&m).0
}

/// Decrypts a v3 keystore JSON document with `password`.
pub fn decrypt_keystore(json: &str, password: &str) -> Result<SecretKey, KeystoreError> {
    let file: File = serde_json::from_str(json)?;
    if file.version != 3 {
        return Err(KeystoreError::Version(file.version));
    }
    let c = &file.crypto;
    if c.cipher != "aes-128-ctr" {
        return Err(KeystoreError::Unsupported {
            what: "cipher",
            got: c.cipher.clone(),
        });
    }
    if c.kdf != "scrypt" {
        return Err(KeystoreError::Unsupported {
            what: "kdf",
            got: c.kdf.clone(),
        });
    }
    let k = &c.kdfparams;
    if k.dklen != 32 {
        return Err(KeystoreError::Params(format!(
            "dklen {} (must be 32)",
            k.dklen
        )));
    }
    if !k.n.is_power_of_two() || k.n < 2 {
        return Err(KeystoreError::Params(format!(
            "n {} is not a power of two",
            k.n
        )));
    }
    let log_n = k.n.trailing_zeros() as u8;
    if log_n > SCRYPT_LOG_N_MAX || k.r == 0 || k.r > SCRYPT_R_MAX || k.p == 0 || k.p > SCRYPT_P_MAX
    {
        return Err(KeystoreError::Params(format!(
            "n = {}, r = {}, p = {} (at most n = 2^{SCRYPT_LOG_N_MAX}, r = {SCRYPT_R_MAX}, p = {SCRYPT_P_MAX})",
            k.n, k.r, k.p
        )));
    }
    let memory = 128 * k.n * u64::from(k.r);
    if memory > SCRYPT_MEMORY_BYTES_MAX {
        return Err(KeystoreError::Params(format!(
            "n = {}, r = {} needs {} MiB (128 n r bytes; at most {} MiB)",
            k.n,
            k.r,
            memory >> 20,
            SCRYPT_MEMORY_BYTES_MAX >> 20
        )));
    }
    let work = k.n * u64::from(k.r) * u64::from(k.p);
    if work > SCRYPT_WORK_MAX {
        return Err(KeystoreError::Params(format!(
            "n = {}, r = {}, p = {}: n r p = {work} is over {SCRYPT_WORK_MAX} (four times n = 2^18, r = 8, p = 1)",
            k.n, k.r, k.p
        )));
    }
    let salt = unhex(&k.salt, "salt")?;
    let iv = unhex(&c.cipherparams.iv, "iv")?;
    let mut data = unhex(&c.ciphertext, "ciphertext")?;
    let want_mac = unhex(&c.mac, "mac")?;
    if iv.len() != 16 || data.len() != 32 {
        return Err(KeystoreError::Params(
            "iv must be 16 bytes and ciphertext 32".into(),
        ));
    }
    let derived = derive(password.as_bytes(), &salt, log_n, k.r, k.p)?;
    if mac(&derived, &data) != want_mac.as_slice() {
        return Err(KeystoreError::WrongPassword);
    }
    let mut cipher = Aes128Ctr::new_from_slices(&derived[..16], &iv)
        .map_err(|_| KeystoreError::Params("key or iv length".into()))?;
    cipher.apply_keystream(&mut data);
    let bytes: [u8; 32] = data.try_into().map_err(|_| KeystoreError::BadKey)?;
    let key = SecretKey::from_bytes(&bytes).map_err(|_| KeystoreError::BadKey)?;
    if let Some(addr) = &file.address {
        let want = hex::encode(key.address().0);
        if addr.trim_start_matches("0x").to_ascii_lowercase() != want {
            return Err(KeystoreError::AddressMismatch {
                file: addr.clone(),
                key: key.address(),
            });
        }
    }
    Ok(key)
}

/// Encrypts `key` with `password` as a v3 keystore JSON document, with
/// scrypt cost 2^`log_n` (18 is the usual; tests use less), r = 8, p = 1.
pub fn encrypt_keystore(
    key: &SecretKey,
    password: &str,
    log_n: u8,
) -> Result<String, KeystoreError> {
    // n = 2^0 = 1 is no scrypt cost: the reader would refuse the file.
    if log_n == 0 || log_n > SCRYPT_LOG_N_MAX {
        return Err(KeystoreError::Params(format!(
            "log_n {log_n} is not in 1..={SCRYPT_LOG_N_MAX}"
        )));
    }
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    OsRng.fill_bytes(&mut id);
    // A version 4 (random) UUID.
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let h = hex::encode(id);
    let id = format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );
    let derived = derive(password.as_bytes(), &salt, log_n, 8, 1)?;
    let mut data = key.to_bytes().to_vec();
    let mut cipher = Aes128Ctr::new_from_slices(&derived[..16], &iv)
        .map_err(|_| KeystoreError::Params("key or iv length".into()))?;
    cipher.apply_keystream(&mut data);
    let file = File {
        version: 3,
        id,
        address: Some(hex::encode(key.address().0)),
        crypto: Crypto {
            cipher: "aes-128-ctr".into(),
            cipherparams: CipherParams {
                iv: hex::encode(iv),
            },
            mac: hex::encode(mac(&derived, &data)),
            ciphertext: hex::encode(&data),
            kdf: "scrypt".into(),
            kdfparams: KdfParams {
                dklen: 32,
                n: 1u64 << log_n,
                r: 8,
                p: 1,
                salt: hex::encode(salt),
            },
        },
    };
    Ok(serde_json::to_string_pretty(&file)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let json = encrypt_keystore(&key, "pw", 10).unwrap();
        assert_eq!(
            decrypt_keystore(&json, "pw").unwrap().to_bytes(),
            key.to_bytes()
        );
        assert!(matches!(
            decrypt_keystore(&json, "px"),
            Err(KeystoreError::WrongPassword)
        ));
        let huge = json.replace("\"n\": 1024", "\"n\": 1073741824");
        assert!(matches!(
            decrypt_keystore(&huge, "pw"),
            Err(KeystoreError::Params(_))
        ));
        let v2 = json.replace("\"version\": 3", "\"version\": 2");
        assert!(matches!(
            decrypt_keystore(&v2, "pw"),
            Err(KeystoreError::Version(2))
        ));
        assert!(matches!(
            decrypt_keystore("{", "pw"),
            Err(KeystoreError::Json(_))
        ));
    }
}
