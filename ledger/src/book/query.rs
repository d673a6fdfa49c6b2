//! Read-only views for the console, the CLI and the SDK, in the `qubix_protocol::api`
//! shapes: [`Billing`], [`LedgerEntry`] pages, [`Earnings`] by UTC day, per-instance
//! [`InstanceBilling`], kept receipts, and a CSV export of every posting.

use std::collections::BTreeMap;
use std::io::Write;

use qubix_protocol::api::{
    Billing, Earnings, InstanceBilling, LedgerEntry, Posting, SignedReceipt,
};
use qubix_protocol::billing::Receipt;
use qubix_protocol::{AgreementId, Envelope, Qu};

use super::Ledger;
use super::account::Account;
use super::error::LedgerError;
use super::operation::{Operation, Side};
use super::store::{
    AgreementRecord, StoredTxn, WithdrawalRecord, agreement_key, decode, fixed, log_key,
    receipt_prefix, withdrawal_key,
};

const DAY_MILLIS: u64 = 86_400_000;

/// The API view of a stored transaction.
pub(crate) fn entry_of(txn: &StoredTxn) -> LedgerEntry {
    LedgerEntry {
        id: txn.op.id(),
        at: txn.at,
        kind: txn.op.kind().to_owned(),
        agreement_id: txn.op.agreement(),
        postings: txn
            .postings
            .iter()
            .map(|(account, delta)| Posting {
                account: account.clone(),
                delta: *delta,
            })
            .collect(),
    }
}

fn qu(balance: i64) -> Qu {
    Qu(u64::try_from(balance).unwrap_or(0))
}

fn sat_add(a: Qu, b: Qu) -> Qu {
    Qu(a.0.saturating_add(b.0))
}

impl Ledger {
    /// The balance of one account (QU; only `external` can be negative).
    pub fn balance(&self, account: &Account) -> Result<i64, LedgerError> {
        self.store().balance(account)
    }

    /// Every non-zero balance, by account name.
    pub fn balances(&self) -> Result<BTreeMap<String, i64>, LedgerError> {
        let mut out = BTreeMap::new();
        for item in self.store().tree().scan_prefix(b"b/") {
            let (key, raw) = item?;
            let balance = i64::from_be_bytes(fixed(&raw, &key)?);
            if balance != 0 {
                out.insert(String::from_utf8_lossy(&key[2..]).into_owned(), balance);
            }
        }
        Ok(out)
    }

    /// Sum of the balances of every account with this purpose (e.g. all `escrow/…`).
    fn total(&self, purpose: &str) -> Result<Qu, LedgerError> {
        let sum: i64 = self
            .balances()?
            .into_iter()
            .filter(|(name, _)| name.split('/').next() == Some(purpose))
            .map(|(_, b)| b)
            .sum();
        Ok(qu(sum))
    }

    /// The recorded agreement, if any.
    pub fn agreement(&self, id: &AgreementId) -> Result<Option<AgreementRecord>, LedgerError> {
        self.store().agreement(id)
    }

    /// Every recorded agreement, in id order.
    pub fn agreements(&self) -> Result<Vec<AgreementRecord>, LedgerError> {
        self.store()
            .tree()
            .scan_prefix(b"a/")
            .map(|item| {
                let (key, raw) = item?;
                decode(&key, &raw)
            })
            .collect()
    }

    /// The withdrawal, if any.
    pub fn withdrawal(&self, id: &str) -> Result<Option<WithdrawalRecord>, LedgerError> {
        self.store().withdrawal(id)
    }

    /// Every recorded withdrawal, in id order (ids start with their creation time when the
    /// node makes them).
    pub fn withdrawals(&self) -> Result<Vec<WithdrawalRecord>, LedgerError> {
        self.store()
            .tree()
            .scan_prefix(withdrawal_key(""))
            .map(|item| {
                let (key, raw) = item?;
                decode(&key, &raw)
            })
            .collect()
    }

    /// `GET /api/v1/billing`: the consumer's money, with one line per rental.
    pub fn billing(&self, deposit_identity: Option<String>) -> Result<Billing, LedgerError> {
        let mut instances = Vec::new();
        for record in self.agreements()? {
            if record.info.side == Side::Consumer {
                instances.push(self.instance_of(&record)?);
            }
        }
        Ok(Billing {
            deposit_identity,
            available: qu(self.balance(&Account::Available)?),
            escrow: self.total("escrow")?,
            prepaid: self.total("prepaid")?,
            spent: self.total("spent")?,
            instances,
        })
    }

    /// One rental's money as its consumer sees it; `None` for unknown or provider-side
    /// agreements.
    pub fn instance_billing(
        &self,
        id: &AgreementId,
    ) -> Result<Option<InstanceBilling>, LedgerError> {
        match self.agreement(id)? {
            Some(record) if record.info.side == Side::Consumer => {
                self.instance_of(&record).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn instance_of(&self, record: &AgreementRecord) -> Result<InstanceBilling, LedgerError> {
        let id = record.info.id;
        Ok(InstanceBilling {
            id,
            budget: record.info.budget,
            escrow: qu(self.balance(&Account::Escrow(id))?),
            paid: record.paid,
            spent: qu(self.balance(&Account::Spent(id))?),
            refunded: record.refunded,
        })
    }

    /// `GET /api/v1/ledger/entries`: newest first, `offset` skipped, at most `limit`.
    pub fn entries(&self, limit: usize, offset: usize) -> Result<Vec<LedgerEntry>, LedgerError> {
        self.log_rev()
            .skip(offset)
            .take(limit)
            .map(|txn| txn.map(|t| entry_of(&t)))
            .collect()
    }

    /// One entry by id.
    pub fn entry(&self, id: &str) -> Result<Option<LedgerEntry>, LedgerError> {
        Ok(self.store().txn(id)?.map(|t| entry_of(&t)))
    }

    /// Every stored transaction, newest first.
    pub(crate) fn log_rev(&self) -> impl Iterator<Item = Result<StoredTxn, LedgerError>> + '_ {
        let end = log_key(u64::MAX);
        self.store()
            .tree()
            .range(log_key(0)..=end)
            .rev()
            .map(move |item| {
                let (key, id) = item?;
                let id = String::from_utf8_lossy(&id).into_owned();
                self.store().txn(&id)?.ok_or(LedgerError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: format!("log names transaction {id}, which is missing"),
                })
            })
    }

    /// `GET /api/v1/provider/earnings`: earned in total and per UTC day, held and owed.
    pub fn earnings(&self) -> Result<Earnings, LedgerError> {
        let mut earned = Qu::ZERO;
        let mut by_day: BTreeMap<String, Qu> = BTreeMap::new();
        for txn in self.log_rev() {
            let txn = txn?;
            // Receipts, and usage the consumer never signed for, booked at the end.
            if !matches!(
                txn.op,
                Operation::Receipt { .. } | Operation::EndAgreement { .. }
            ) {
                continue;
            }
            let delta = txn
                .postings
                .iter()
                .find(|(account, _)| account == "earned")
                .map_or(Qu::ZERO, |(_, d)| qu(*d));
            earned = sat_add(earned, delta);
            let day = by_day.entry(utc_day(txn.at.0)).or_default();
            *day = sat_add(*day, delta);
        }
        Ok(Earnings {
            earned,
            prepaid_held: self.total("prepaid_held")?,
            refunds_due: self.total("refunds_due")?,
            by_day: by_day.into_iter().filter(|(_, q)| *q != Qu::ZERO).collect(),
        })
    }

    /// The signed receipts kept for an agreement, oldest first.
    pub fn receipts(&self, id: &AgreementId) -> Result<Vec<Envelope>, LedgerError> {
        self.store()
            .tree()
            .scan_prefix(receipt_prefix(id))
            .map(|item| {
                let (key, raw) = item?;
                Envelope::from_bytes(raw.to_vec()).map_err(|e| LedgerError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// `GET /api/v1/ledger/receipts/{id}`: the agreement's kept receipts, oldest first, each
    /// with its signature checked again (a receipt that no longer verifies is reported as
    /// corrupt rather than served).
    pub fn signed_receipts(
        &self,
        id: &AgreementId,
        network: &qubix_protocol::topics::Network,
    ) -> Result<Vec<SignedReceipt>, LedgerError> {
        self.receipts(id)?
            .into_iter()
            .map(|envelope| {
                envelope
                    .open::<Receipt>(network)
                    .map(|signed| SignedReceipt::from_signed(&signed))
                    .map_err(|e| LedgerError::Corrupt {
                        key: format!("receipt of {id}"),
                        reason: e.to_string(),
                    })
            })
            .collect()
    }

    /// Writes every posting as CSV, oldest first:
    /// `id,at,kind,agreement_id,account,delta`.
    pub fn export_csv<W: Write>(&self, mut out: W) -> Result<(), LedgerError> {
        writeln!(out, "id,at,kind,agreement_id,account,delta").map_err(LedgerError::Export)?;
        let mut all: Vec<StoredTxn> = self.log_rev().collect::<Result<_, _>>()?;
        all.reverse();
        for txn in all {
            let entry = entry_of(&txn);
            let agreement = entry
                .agreement_id
                .map(|a| a.to_string())
                .unwrap_or_default();
            for p in &entry.postings {
                writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    csv_field(&entry.id),
                    entry.at.0,
                    entry.kind,
                    agreement,
                    csv_field(&p.account),
                    p.delta
                )
                .map_err(LedgerError::Export)?;
            }
        }
        Ok(())
    }

    /// How many transactions the log holds (cheap).
    pub fn transaction_count(&self) -> Result<u64, LedgerError> {
        self.store().last_seq()
    }

    /// Whether an agreement is recorded (cheap).
    pub fn knows_agreement(&self, id: &AgreementId) -> Result<bool, LedgerError> {
        Ok(self.store().tree().contains_key(agreement_key(id))?)
    }
}

/// Quotes a CSV field when it needs it (ids are restricted, so this is belt and braces).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// `YYYY-MM-DD` (UTC) of a unix-millisecond time (proleptic Gregorian, H. Hinnant's
/// days-to-civil algorithm).
pub(crate) fn utc_day(millis: u64) -> String {
    let days = i64::try_from(millis / DAY_MILLIS).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_767_225_600_000), "2026-01-01");
        assert_eq!(utc_day(1_767_225_600_000 - 1), "2025-12-31");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("in/abc"), "in/abc");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
