//! The devnet's faucet: a fixed identity with a genesis balance far beyond any test's needs,
//! whose signed transfers are how the devnet funds identities. A funding is therefore an
//! ordinary included transaction (`moneyFlew: true`, input type 0) that the archive lists
//! and a scan of incoming transfers finds, not a balance that appears from nowhere.

use crate::qubic::k12::k12_32;
use crate::qubic::tx::MAX_AMOUNT;
use crate::qubic::{KeyPair, PublicKey, SignedTransaction, Subseed, TxError, UnsignedTransaction};

/// The faucet's genesis balance, 2^62 QU: thousands of times the real supply.
pub(crate) const GENESIS: u64 = 1 << 62;

/// The faucet's key pair: the same on every devnet, derived from a fixed label.
pub(crate) fn key_pair() -> KeyPair {
    KeyPair::from_subseed(Subseed::from_bytes(k12_32(b"qubix devnet faucet v1")))
}

/// Splits `amount` into transfers the network accepts (at most [`MAX_AMOUNT`] each).
pub(crate) fn parts(amount: u64) -> impl Iterator<Item = u64> {
    let full = amount / MAX_AMOUNT;
    let rest = amount % MAX_AMOUNT;
    std::iter::repeat_n(MAX_AMOUNT, usize::try_from(full).unwrap_or(usize::MAX))
        .chain((rest > 0).then_some(rest))
}

/// A signed transfer of `amount` from the faucet to `destination` in `tick`, with an id
/// for which `taken` is false. Identical bytes are one transaction, so a second funding of
/// the same amount to the same identity in the same tick carries a counter as input (still
/// input type 0: a plain transfer).
pub(crate) fn transfer(
    faucet: &KeyPair,
    destination: PublicKey,
    amount: u64,
    tick: u32,
    taken: impl Fn(&str) -> bool,
) -> Result<SignedTransaction, TxError> {
    let mut counter = 0u64;
    loop {
        let input = if counter == 0 {
            Vec::new()
        } else {
            counter.to_le_bytes().to_vec()
        };
        let body = UnsignedTransaction::with_input(
            faucet.public_key(),
            destination,
            amount,
            tick,
            0,
            input,
        )?;
        let tx = body.sign(faucet)?;
        if !taken(tx.id().as_str()) {
            return Ok(tx);
        }
        counter += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_amounts_split_into_accepted_transfers() {
        assert_eq!(parts(0).count(), 0);
        assert_eq!(parts(5).collect::<Vec<_>>(), vec![5]);
        assert_eq!(parts(MAX_AMOUNT).collect::<Vec<_>>(), vec![MAX_AMOUNT]);
        let big: Vec<u64> = parts(2 * MAX_AMOUNT + 7).collect();
        assert_eq!(big, vec![MAX_AMOUNT, MAX_AMOUNT, 7]);
    }

    #[test]
    fn repeated_fundings_get_distinct_ids() {
        let faucet = key_pair();
        let to = KeyPair::from_seed_str(&"b".repeat(55))
            .unwrap()
            .public_key();
        let first = transfer(&faucet, to, 10, 7, |_| false).unwrap();
        let first_id = first.id().to_string();
        let second = transfer(&faucet, to, 10, 7, |id| id == first_id).unwrap();
        assert_ne!(first.id(), second.id());
        assert_eq!(second.body().input_type(), 0);
        assert_eq!(second.body().amount(), 10);
        assert_eq!(key_pair().identity(), faucet.identity(), "fixed");
    }
}
