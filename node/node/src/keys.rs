//! The validator's identity key file: JSON with the address, the public key
//! and the secret key, written readable by its owner only.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use stele_types::{Address, PublicKey, SecretKey};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyFileError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("{path} is not a valid key file: {reason}")]
    Invalid { path: String, reason: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    address: Address,
    public_key: PublicKey,
    secret_key: String,
}

/// Writes `key` to `path` (mode 0600); refuses to overwrite.
pub fn save(path: &Path, key: &SecretKey) -> Result<(), KeyFileError> {
    let err = |reason: String| KeyFileError::Write {
        path: path.display().to_string(),
        reason,
    };
    let public_key = key.public_key();
    let file = KeyFile {
        address: public_key.address(),
        public_key,
        secret_key: format!("0x{}", hex::encode(key.to_bytes())),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| err(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(|e| err(e.to_string()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(|e| err(e.to_string()))
}

/// Reads a key file and checks its address and public key match the secret.
pub fn load(path: &Path) -> Result<SecretKey, KeyFileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| KeyFileError::Read {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    let invalid = |reason: String| KeyFileError::Invalid {
        path: name.clone(),
        reason,
    };
    let file: KeyFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let hex_str = file
        .secret_key
        .strip_prefix("0x")
        .unwrap_or(&file.secret_key);
    let bytes: [u8; 32] = hex::decode(hex_str)
        .map_err(|e| invalid(format!("secret_key: {e}")))?
        .try_into()
        .map_err(|_| invalid("secret_key: not 32 bytes".into()))?;
    let key = SecretKey::from_bytes(&bytes).map_err(|e| invalid(format!("secret_key: {e}")))?;
    if key.public_key() != file.public_key || key.public_key().address() != file.address {
        return Err(invalid(
            "address or public_key does not match secret_key".into(),
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        save(&path, &key).unwrap();
        assert_eq!(load(&path).unwrap().public_key(), key.public_key());
        assert!(save(&path, &key).is_err(), "never overwrites a key");
        let text = std::fs::read_to_string(&path).unwrap();
        let other = SecretKey::from_bytes(&[8; 32]).unwrap();
        let tampered = text.replace(&hex::encode(key.to_bytes()), &hex::encode(other.to_bytes()));
        std::fs::write(&path, tampered).unwrap();
        assert!(
            load(&path)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
    }
}
