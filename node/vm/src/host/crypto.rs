//! Crypto: hashes and secp256k1 signatures.

use sha3::{Digest, Sha3_256};
use stele_types::{Hash, PublicKey, Signature};

use crate::abi::HOST_MODULE;
use crate::world::World;

use super::mem::{check, read, read_array, write};
use super::{C, L, R, charge};

pub(super) fn link<W: World + 'static>(l: &mut L<W>) -> wasmtime::Result<()> {
    l.func_wrap(HOST_MODULE, "keccak256", keccak256::<W>)?;
    l.func_wrap(HOST_MODULE, "sha3_256", sha3_256::<W>)?;
    l.func_wrap(HOST_MODULE, "secp256k1_recover", secp256k1_recover::<W>)?;
    l.func_wrap(HOST_MODULE, "secp256k1_verify", secp256k1_verify::<W>)?;
    Ok(())
}

fn keccak256<W: World + 'static>(mut c: C<'_, W>, p: i32, len: i32, dst: i32) -> R<()> {
    let len = len as u32;
    let gas = c.data().gas().clone();
    check(&mut c, p, u64::from(len))?;
    charge(
        &mut c,
        gas.hash(u64::from(len)) + gas.host(u64::from(len) + 32),
    )?;
    let input = read(&mut c, p, len)?;
    write(&mut c, dst, &stele_types::keccak256(&input).0)
}

fn sha3_256<W: World + 'static>(mut c: C<'_, W>, p: i32, len: i32, dst: i32) -> R<()> {
    let len = len as u32;
    let gas = c.data().gas().clone();
    check(&mut c, p, u64::from(len))?;
    charge(
        &mut c,
        gas.hash(u64::from(len)) + gas.host(u64::from(len) + 32),
    )?;
    let input = read(&mut c, p, len)?;
    let digest: [u8; 32] = Sha3_256::digest(&input).into();
    write(&mut c, dst, &digest)
}

fn secp256k1_recover<W: World + 'static>(mut c: C<'_, W>, dp: i32, sp: i32, dst: i32) -> R<i32> {
    let gas = c.data().gas().clone();
    charge(&mut c, gas.secp256k1 + gas.host(32 + 65 + 33))?;
    let digest = Hash(read_array(&mut c, dp)?);
    let sig = Signature(read_array(&mut c, sp)?);
    check(&mut c, dst, 33)?;
    match sig.recover(&digest) {
        Ok(pk) => {
            write(&mut c, dst, &pk.0)?;
            Ok(0)
        }
        Err(_) => Ok(1),
    }
}

fn secp256k1_verify<W: World + 'static>(mut c: C<'_, W>, dp: i32, sp: i32, pkp: i32) -> R<i32> {
    let gas = c.data().gas().clone();
    charge(&mut c, gas.secp256k1 + gas.host(32 + 65 + 33))?;
    let digest = Hash(read_array(&mut c, dp)?);
    let sig = Signature(read_array(&mut c, sp)?);
    let pk = PublicKey(read_array(&mut c, pkp)?);
    // The protocol's rule for this host function: plain ECDSA, `v` not
    // compared (docs/vm.md).
    Ok(i32::from(pk.verify_ecdsa(&digest, &sig).is_ok()))
}
