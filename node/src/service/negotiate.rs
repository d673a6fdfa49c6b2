//! The consumer's side of negotiation: a launch (propose, check terms, countersign, confirm)
//! runs in a spawned task whose result comes back as [`Internal::Agreed`]. The provider's
//! side is in `admission`.

use libp2p::PeerId;
use qubix_protocol::api::{ErrorCode, Event, Instance, LaunchRequest};
use qubix_protocol::codec::CodecError;
use qubix_protocol::control::JobState;
use qubix_protocol::job::{Agreement, NegotiateRequest, NegotiateResponse};
use qubix_protocol::offer::Offer;
use qubix_protocol::signed::SignError;
use qubix_protocol::topics::Network;
use qubix_protocol::{OfferRef, Qu, UnixMillis};
use tracing::warn;

use super::{Internal, Service, ServiceError};
use crate::negotiation::{TermsError, TermsLimits, build_request, check_terms, countersign};
use crate::network::NetworkHandle;
use crate::store::{JobRecord, Role};

impl Service {
    /// Starts a launch: resolves the offer, signs the request, negotiates in a task.
    pub(super) fn launch(
        &mut self,
        launch: LaunchRequest,
        reply: tokio::sync::oneshot::Sender<Result<Instance, ServiceError>>,
    ) {
        let offer = match self.resolve_offer(&launch) {
            Ok(offer) => offer,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let now = UnixMillis::now();
        let request = match build_request(
            self.key.signing_key(),
            &self.network_name,
            &offer,
            &launch,
            &self.wallet_identity,
            now,
        ) {
            Ok(r) => r,
            Err(e) => {
                let _ = reply.send(Err(sign_error(e)));
                return;
            }
        };
        if let Err(e) = request.payload().validate(now) {
            let _ = reply.send(Err(ServiceError::Api(
                ErrorCode::InvalidValue,
                e.to_string(),
                Some(e.field),
            )));
            return;
        }
        let net = self.net.clone();
        let network = self.network_name.clone();
        let key = self.key.clone();
        let tx = self.internal_tx.clone();
        let ledger = self.ledger.clone();
        let deposits = self.deposits();
        let held = self.held_sources();
        let limits = self.terms_limits;
        self.spawn(async move {
            // The most the rental can cost; the agreed budget is at most this.
            let budget = request.payload().max_budget().unwrap_or(Qu(u64::MAX));
            if let Err(e) =
                super::accounts::ensure_available(&ledger, deposits.as_ref(), &held, budget).await
            {
                let _ = reply.send(Err(e));
                return;
            }
            let session = Session {
                net: &net,
                network: &network,
                key: &key,
                limits: &limits,
            };
            match negotiate(session, request, &offer, &ledger).await {
                Ok(record) => {
                    let _ = tx
                        .send(Internal::Agreed {
                            record: Box::new(record),
                            reply,
                        })
                        .await;
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        });
    }

    fn resolve_offer(&self, launch: &LaunchRequest) -> Result<Offer, ServiceError> {
        if launch.gpus == 0 {
            return Err(ServiceError::Api(
                ErrorCode::InvalidValue,
                "gpus must be at least 1".into(),
                Some("gpus".into()),
            ));
        }
        if let Some(named) = launch.offer_id {
            return self.named_offer(named);
        }
        let q = launch.query.clone().unwrap_or_default();
        let query = qubix_protocol::query::Query::parse(&format!("{q} num_gpus>={}", launch.gpus))
            .map_err(|e| {
                ServiceError::Api(
                    ErrorCode::InvalidQuery,
                    e.describe(&q),
                    Some("query".into()),
                )
            })?;
        let page = self.book.search(&query, |_| None);
        page.items.first().map(|f| f.offer.clone()).ok_or_else(|| {
            let explanation = self.book.explain(&query, |_| None);
            ServiceError::Api(
                ErrorCode::NoMatch,
                explanation.summary(),
                Some("query".into()),
            )
        })
    }

    /// The offer `named` names: the provider's own offer, or the only one published under
    /// a bare offer id.
    fn named_offer(&self, named: OfferRef) -> Result<Offer, ServiceError> {
        let missing = || {
            ServiceError::Api(
                ErrorCode::NotFound,
                format!("no offer {named} in the market; it may have expired or been rented"),
                Some("offer_id".into()),
            )
        };
        if let Some(provider) = named.provider {
            let offer = self
                .book
                .get(&(provider, named.offer_id))
                .ok_or_else(missing)?;
            return Ok(offer.payload().clone());
        }
        match self.book.with_offer_id(&named.offer_id).as_slice() {
            [] => Err(missing()),
            [one] => Ok(one.payload().clone()),
            several => {
                let names: Vec<String> = several
                    .iter()
                    .map(|o| OfferRef::new(o.payload().provider, o.payload().offer_id).to_string())
                    .collect();
                Err(ServiceError::Api(
                    ErrorCode::InvalidValue,
                    format!(
                        "{} providers publish offer id {}; name one: {}",
                        several.len(),
                        named.offer_id,
                        names.join(", ")
                    ),
                    Some("offer_id".into()),
                ))
            }
        }
    }

    pub(super) fn record_agreement(&mut self, record: JobRecord) -> Result<Instance, ServiceError> {
        let id = record.id(&self.network_name)?;
        self.store.put_job(&id, &record)?;
        let instance = super::commands::instance_of(&self.network_name, &id, &record)?;
        self.jobs.insert(id, record);
        let _ = self.events.send(Event::InstanceState {
            id,
            state: JobState::Negotiated,
        });
        Ok(instance)
    }
}

/// What a consumer's negotiation needs of the node.
#[derive(Clone, Copy)]
struct Session<'a> {
    net: &'a NetworkHandle,
    network: &'a Network,
    key: &'a crate::keys::NodeKey,
    limits: &'a TermsLimits,
}

/// Why terms were not countersigned, for the API: out-of-bounds terms name their field.
fn refused_terms(e: TermsError) -> ServiceError {
    match e {
        TermsError::Unacceptable { field, .. } => ServiceError::Api(
            ErrorCode::UnacceptableTerms,
            e.to_string(),
            Some(field.into()),
        ),
        other => ServiceError::Api(ErrorCode::ProviderRefused, other.to_string(), None),
    }
}

/// The consumer's negotiation round trips.
async fn negotiate(
    session: Session<'_>,
    request: qubix_protocol::Signed<qubix_protocol::job::JobRequest>,
    offer: &Offer,
    ledger: &qubix_ledger::book::Ledger,
) -> Result<JobRecord, ServiceError> {
    let peer = offer.provider.to_peer_id();
    let refused = |code: qubix_protocol::job::RejectCode| {
        ServiceError::Api(ErrorCode::ProviderRefused, code.explain().into(), None)
    };
    let unreachable = |e: crate::network::NetworkError| {
        ServiceError::Api(
            ErrorCode::Unavailable,
            format!("provider unreachable: {e}"),
            None,
        )
    };
    let Session {
        net,
        network,
        key,
        limits,
    } = session;
    let answer = net
        .negotiate(peer, NegotiateRequest::Propose(request.envelope().clone()))
        .await
        .map_err(unreachable)?;
    let terms = match answer {
        NegotiateResponse::Terms(envelope) => {
            check_terms(network, &envelope, &request, limits, UnixMillis::now())
                .map_err(refused_terms)?
        }
        NegotiateResponse::Rejected(r) => return Err(refused(r.code)),
        NegotiateResponse::Confirmed(_) => {
            return Err(ServiceError::Internal(
                "provider confirmed before terms".into(),
            ));
        }
    };
    // The budget is locked before the agreement is countersigned: a rental never starts
    // without its escrow. Another launch may have taken the funds since the check.
    ledger
        .lock_escrow(terms.payload(), UnixMillis::now())
        .map_err(|e| match e {
            qubix_ledger::LedgerError::InsufficientFunds { .. } => ServiceError::Api(
                ErrorCode::InsufficientFunds,
                format!("cannot lock the budget: {e}"),
                Some("budget".into()),
            ),
            e => ServiceError::Internal(format!("cannot lock the budget: {e}")),
        })?;
    let agreement_id = terms.payload().agreement_id;
    let agreement = match confirm(net, network, key, peer, &terms).await {
        Ok(agreement) => agreement,
        Err(e) => {
            // No agreement: the budget goes back to available.
            if let Err(unlock) = ledger.end_agreement(agreement_id, Qu::ZERO, UnixMillis::now()) {
                warn!(agreement = %agreement_id, error = %unlock, "cannot release the escrow of a failed negotiation");
            }
            return Err(e);
        }
    };
    // `since` is on the provider's clock: later statuses are compared with it.
    let since = terms.payload().accepted_at;
    let mut record = JobRecord::new(agreement, Role::Consumer, offer.offer_id, since);
    record.gpu_model = offer.gpu.model.clone();
    record.simulated = offer.simulated;
    Ok(record)
}

/// Countersigns the provider's terms and has the provider confirm the agreement.
async fn confirm(
    net: &crate::network::NetworkHandle,
    network: &Network,
    key: &crate::keys::NodeKey,
    peer: PeerId,
    terms: &qubix_protocol::Signed<qubix_protocol::job::AgreementTerms>,
) -> Result<Agreement, ServiceError> {
    let agreement = countersign(network, terms, key.signing_key())
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let answer = net
        .negotiate(peer, NegotiateRequest::Countersign(agreement.clone()))
        .await
        .map_err(|e| {
            ServiceError::Api(
                ErrorCode::Unavailable,
                format!("provider unreachable: {e}"),
                None,
            )
        })?;
    match answer {
        NegotiateResponse::Confirmed(id) if id == terms.payload().agreement_id => Ok(agreement),
        NegotiateResponse::Rejected(r) => Err(ServiceError::Api(
            ErrorCode::ProviderRefused,
            r.code.explain().into(),
            None,
        )),
        _ => Err(ServiceError::Internal(
            "provider answered the countersignature oddly".into(),
        )),
    }
}

/// A launch whose signed request would not fit the wire is the caller's to shorten (400),
/// not a failure of the node.
fn sign_error(e: SignError) -> ServiceError {
    match e {
        SignError::Codec(CodecError::TooLarge { len, max, .. }) => ServiceError::Api(
            ErrorCode::InvalidValue,
            format!(
                "the job request would be {len} bytes once signed, over the wire limit of {max} bytes (32 KiB) for a job request; shorten the command, the environment or the ports"
            ),
            None,
        ),
        other => ServiceError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod sign_error_tests {
    use super::*;

    #[test]
    fn a_request_over_the_wire_limit_is_the_callers_error_and_names_the_limit() {
        let e = sign_error(SignError::Codec(CodecError::TooLarge {
            kind: "job-request/",
            len: 40_000,
            max: 32 * 1024,
        }));
        let ServiceError::Api(code, message, _) = e else {
            panic!("not an API error: {e:?}");
        };
        assert_eq!(code, ErrorCode::InvalidValue);
        assert!(
            message.contains("40000 bytes") && message.contains("32 KiB"),
            "{message}"
        );
    }
}
