//! A short tour of Stele's core types: make a key, sign a transfer, show its
//! canonical bytes, hash and JSON form, decode it back and verify it.
//!
//! Run with `cargo run -p stele-types --example demo`.

use stele_types::{
    Address, Encode, Limits, SecretKey, SignedTransaction, Transaction, TxPayload, decode,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chain_id = 1;
    let key = SecretKey::generate();
    let to: Address = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf".parse()?;
    let tx = Transaction {
        chain_id,
        nonce: 0,
        gas_limit: 21_000,
        gas_price: 1,
        payload: TxPayload::Transfer { to, amount: 1_000 },
    }
    .sign(&key);

    let bytes = tx.to_bytes();
    println!("sender:   {}", key.address());
    println!("tx hash:  {}", tx.hash());
    println!("encoded:  {} bytes", bytes.len());
    println!("json:     {}", serde_json::to_string_pretty(&tx)?);

    let back: SignedTransaction = decode(&bytes, &Limits::default())?;
    let sender = back.verify(chain_id)?;
    println!("verified: signed by {sender}");
    assert_eq!(sender, key.address());
    Ok(())
}
