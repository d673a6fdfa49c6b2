//! What every group of the hostile suite shares: an arena (the devnet, an honest provider
//! with short payment terms, an honest consumer, and a rental between them that runs while
//! the attacks happen), a hand-driven rogue consumer (a real node key and network layer that
//! signs whatever a test crafts, with a wallet of its own), and the checks that follow every
//! attack: the books balance and every QU reconciles with the chain.

use std::time::Duration;

use qubix_ledger::qubic::{Identity, KeyPair, Seed};
use qubix_ledger::rpc::RpcConfig;
use qubix_ledger::settle::{
    FinalTransfer, PaymentPurpose, QubicSettlement, Settlement, SettlementConfig,
};
use qubix_node::config::NodeConfig;
use qubix_protocol::api::{Instance, LaunchRequest};
use qubix_protocol::control::{JobAction, JobControl, JobMessage, JobReply, JobState};
use qubix_protocol::job::{
    Agreement, AgreementTerms, JobRequest, NegotiateRequest, NegotiateResponse, RejectCode,
};
use qubix_protocol::offer::{Isolation, Offer};
use qubix_protocol::topics::Network;
use qubix_protocol::{AgreementId, Nonce, Qu, Signed, UnixMillis};
use qubix_testnet::{NodeSpec, Rogue, Testnet, wait_until};

/// How long any awaited event may take.
pub const WAIT: Duration = Duration::from_secs(60);
/// The provider's price: 3,600 QU per GPU-hour, 1 QU a second per GPU.
pub const PRICE: u64 = 3_600;

/// Short payment terms, so attacks play out in seconds: 60 s windows (60 QU at 1 QU/s), a
/// 3 s billing interval, a 30 s stop grace and 6 s terminate grace, 5 s to countersign and
/// 6 s to pay; three unfunded
/// reservations per payer and 20 `job/2` requests a second per peer.
pub fn short_terms(c: &mut NodeConfig) {
    let p = &mut c.provider.payment;
    p.window_secs = 60;
    p.billing_interval_secs = 3;
    // Long enough that an honest rental rides out a stall of a loaded machine: a job stopped
    // for late receipts or payment resumes when they come within it.
    p.stop_grace_secs = 30;
    p.terminate_grace_secs = 6;
    p.countersign_secs = 5;
    p.fund_secs = 6;
    c.provider.max_unfunded_per_payer = 3;
    // Far above what the honest consumer's polls need, far below a flood.
    c.provider.job_requests_per_sec = 20;
    c.provider.cpu_cores = 16;
}

/// The devnet, an honest provider (`provider`, four simulated GPUs, short terms), an honest
/// consumer (`consumer`), and what the group adds.
pub struct Arena {
    pub net: Testnet,
    pub provider: usize,
    pub consumer: usize,
}

impl Arena {
    pub async fn start(name: &str) -> Arena {
        Self::start_configured(name, short_terms).await
    }

    /// An arena whose provider is configured by `configure` (which should apply
    /// [`short_terms`]).
    pub async fn start_configured(name: &str, configure: fn(&mut NodeConfig)) -> Arena {
        qubix_testnet::init_test_logging();
        assert!(
            qubix_testnet::docker_available(),
            "the hostile suite runs real containers: run ./scripts/setup-test-env"
        );
        let mut net = Testnet::with_devnet(name, Duration::from_millis(100))
            .await
            .unwrap();
        let spec =
            NodeSpec::provider("provider", "RTX 4090:24:4", PRICE, "DE").configured(configure);
        let provider = net.add(spec).await.unwrap();
        let consumer = net.add(NodeSpec::consumer("consumer")).await.unwrap();
        let arena = Arena {
            net,
            provider,
            consumer,
        };
        arena.offers_reach(arena.consumer, 1).await;
        arena
    }

    pub fn network(&self) -> Network {
        self.net.network()
    }

    /// Waits until node `i` holds at least `n` offers.
    pub async fn offers_reach(&self, i: usize, n: usize) {
        let h = self.net.nodes[i].handle().clone();
        wait_until(WAIT, "offers to reach the node", || {
            let h = h.clone();
            async move {
                (h.offers(String::new(), None, None, None).await.ok()?.total >= n).then_some(())
            }
        })
        .await
        .unwrap();
    }

    /// The honest provider's offer, as node `i` holds it.
    pub async fn provider_offer(&self, i: usize) -> Offer {
        let me = self.net.nodes[self.provider].handle().node_id();
        let page = self.net.nodes[i]
            .handle()
            .offers(String::new(), None, Some(100), None)
            .await
            .unwrap();
        page.offers
            .into_iter()
            .map(|v| v.offer)
            .find(|o| o.provider == me)
            .expect("the honest provider's offer")
    }

    /// Starts the honest rental that runs through the attacks; returns it once running.
    pub async fn honest_rental(&self) -> AgreementId {
        let c = self.net.nodes[self.consumer].handle().clone();
        let offer = self.provider_offer(self.consumer).await;
        let mut launch = long_job(1);
        launch.offer_id = Some(qubix_protocol::OfferRef::new(
            offer.provider,
            offer.offer_id,
        ));
        let instance = c.launch(launch).await.unwrap();
        self.wait_state(self.consumer, instance.id, JobState::Running)
            .await;
        instance.id
    }

    /// Waits until node `i`'s instance `id` is in `state`.
    pub async fn wait_state(&self, i: usize, id: AgreementId, state: JobState) -> Instance {
        let h = self.net.nodes[i].handle().clone();
        let waited = wait_until(
            WAIT,
            &format!("instance {id} to be {}", state.as_str()),
            || {
                let h = h.clone();
                async move { h.instance(id).await.ok().filter(|x| x.state == state) }
            },
        )
        .await;
        match waited {
            Ok(instance) => instance,
            Err(e) => {
                let last = h
                    .instance(id)
                    .await
                    .map(|x| (x.state, x.reason, x.paid, x.spent));
                panic!("{e}; the instance is {last:?}");
            }
        }
    }

    /// Ends the honest rental: it is still running, has been receipted, terminates, and its
    /// refund arrives.
    pub async fn finish_honest_rental(&self, id: AgreementId) {
        let c = self.net.nodes[self.consumer].handle().clone();
        let running = c.instance(id).await.unwrap();
        assert_eq!(
            running.state,
            JobState::Running,
            "the honest rental ran through"
        );
        wait_until(WAIT, "the honest rental's usage to be receipted", || {
            let c = c.clone();
            async move { c.instance(id).await.ok().filter(|x| x.spent.0 > 0) }
        })
        .await
        .unwrap();
        let ended = c.act(id, JobAction::Terminate).await.unwrap();
        assert_eq!(ended.state, JobState::Terminated);
        let ledger = self.net.nodes[self.consumer].ledger().clone();
        wait_until(WAIT, "the honest rental's refund", || {
            let ledger = ledger.clone();
            async move {
                let owed = ledger
                    .balance(&qubix_ledger::Account::RefundReceivable(id))
                    .ok()?;
                let line = ledger.instance_billing(&id).ok()??;
                (owed == 0 && line.refunded.0 > 0).then_some(())
            }
        })
        .await
        .unwrap();
    }

    /// Node `i`'s wallet identity.
    pub fn identity(&self, i: usize) -> Identity {
        let n = &self.net.nodes[i];
        qubix_testnet::harness::wallet_for(self.net.network().name(), i, &n.spec.name).identity()
    }

    /// Every listed node's books balance and reconcile with its wallet on chain, once the
    /// deposits that arrived are adopted and what was in flight has landed.
    pub async fn books_reconcile(&self, nodes: &[usize]) {
        let devnet = self.net.devnet().unwrap().clone();
        for &i in nodes {
            let node = &self.net.nodes[i];
            let (h, ledger) = (node.handle().clone(), node.ledger().clone());
            let identity = self.identity(i);
            let name = node.spec.name.clone();
            let audit = ledger.audit().unwrap();
            assert!(audit.is_clean(), "{name}'s ledger: {:?}", audit.problems);
            let devnet = devnet.clone();
            wait_until(
                WAIT,
                &format!("{name}'s books to reconcile with the chain"),
                || {
                    let (h, ledger, devnet, identity) =
                        (h.clone(), ledger.clone(), devnet.clone(), identity.clone());
                    async move {
                        h.refresh_deposits().await.ok()?;
                        let chain = Qu(devnet.balance(&identity));
                        (ledger.reconcile(chain).ok()?.difference == 0).then_some(())
                    }
                },
            )
            .await
            .unwrap();
        }
    }
}

/// A job that runs until terminated.
pub fn long_job(gpus: u32) -> LaunchRequest {
    LaunchRequest {
        offer_id: None,
        query: None,
        image: "qubix/test:latest".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "while true; do sleep 1; done".into(),
        ],
        env: Default::default(),
        ports: vec![],
        gpus,
        duration_secs: 3600,
        max_price_per_gpu_hour: None,
        cpu_cores: Some(1),
        ram_mib: Some(128),
        disk_gib: Some(1),
        capabilities: Vec::new(),
    }
}

/// A rogue consumer driven by hand: a node key and network layer that sign and send what
/// the test crafts, and a wallet of its own on the devnet.
pub struct Manual {
    pub rogue: Rogue,
    pub network: Network,
    pub wallet: KeyPair,
    pub settlement: QubicSettlement,
    _db: sled::Db,
}

impl Manual {
    /// A rogue with key `seed`, connected to the arena, its wallet funded with `funds`.
    pub async fn join(arena: &Arena, seed: u8, funds: u64) -> Manual {
        let rogue = arena.net.add_rogue(seed).await.unwrap();
        let devnet = arena.net.devnet().unwrap();
        let letter = char::from(b'a' + seed % 26);
        let wallet = KeyPair::from_seed(&Seed::new(&letter.to_string().repeat(55)).unwrap());
        let tick = devnet.tick();
        devnet.fund(&wallet.identity(), funds);
        devnet.wait_for_tick(tick + 1, WAIT).await.unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let config = SettlementConfig {
            rpc: RpcConfig::with_base_url(devnet.url()),
            ..SettlementConfig::default()
        };
        let settlement = QubicSettlement::start(config, wallet.clone(), &db).unwrap();
        let manual = Manual {
            rogue,
            network: arena.network(),
            wallet,
            settlement,
            _db: db,
        };
        let provider = arena.net.nodes[arena.provider]
            .handle()
            .node_id()
            .to_peer_id();
        wait_until(WAIT, "the rogue to reach the provider", || {
            let net = manual.rogue.net.clone();
            async move {
                let peers = net.peers().await.ok()?;
                peers.iter().any(|p| p.peer == provider).then_some(())
            }
        })
        .await
        .unwrap();
        manual
    }

    pub fn identity(&self) -> String {
        self.wallet.identity().to_string()
    }

    /// A request for `offer` paid from `pay_from`, signed by the rogue's key.
    pub fn request(&self, offer: &Offer, pay_from: &str) -> Signed<JobRequest> {
        let now = UnixMillis::now();
        let request = JobRequest {
            consumer: self.rogue.key.node_id(),
            provider: offer.provider,
            offer_id: offer.offer_id,
            image: "qubix/test:latest".into(),
            command: vec![
                "sh".into(),
                "-c".into(),
                "while true; do sleep 1; done".into(),
            ],
            env: vec![],
            ports: vec![],
            gpus: 1,
            cpu_cores: 1,
            ram_mib: 128,
            disk_gib: 1,
            max_price_per_gpu_hour: offer.price_per_gpu_hour,
            duration_secs: 3600,
            refund_to: self.identity(),
            pay_from: pay_from.into(),
            capabilities: vec![],
            isolation: Isolation::Container,
            ssh_keys: vec![],
            standby: false,
            checkpoint_interval_secs: None,
            checkpoint_retention_secs: 0,
            interruptible: false,
            nonce: Nonce::random(),
            issued_at: now,
            expires_at: now.saturating_add(Duration::from_secs(60)),
        };
        Signed::sign(request, self.rogue.key.signing_key(), &self.network).unwrap()
    }

    pub async fn negotiate(&self, offer: &Offer, message: NegotiateRequest) -> NegotiateResponse {
        self.rogue
            .net
            .negotiate(offer.provider.to_peer_id(), message)
            .await
            .unwrap()
    }

    /// Proposes; the provider's signed terms, or its refusal.
    pub async fn propose(
        &self,
        offer: &Offer,
        pay_from: &str,
    ) -> Result<Signed<AgreementTerms>, RejectCode> {
        let request = self.request(offer, pay_from);
        match self
            .negotiate(offer, NegotiateRequest::Propose(request.envelope().clone()))
            .await
        {
            NegotiateResponse::Terms(terms) => {
                Ok(terms.open::<AgreementTerms>(&self.network).unwrap())
            }
            NegotiateResponse::Rejected(r) => Err(r.code),
            other => panic!("unexpected answer {other:?}"),
        }
    }

    /// Countersigns `terms` and sends the countersignature.
    pub async fn countersign(
        &self,
        offer: &Offer,
        terms: &Signed<AgreementTerms>,
    ) -> NegotiateResponse {
        let agreement =
            Agreement::countersign(terms, self.rogue.key.signing_key(), &self.network).unwrap();
        self.negotiate(offer, NegotiateRequest::Countersign(agreement))
            .await
    }

    /// A confirmed agreement with `offer`'s provider, paid from the rogue's wallet.
    pub async fn agree(&self, offer: &Offer) -> Signed<AgreementTerms> {
        let terms = self.propose(offer, &self.identity()).await.unwrap();
        let confirmed = self.countersign(offer, &terms).await;
        assert!(
            matches!(confirmed, NegotiateResponse::Confirmed(_)),
            "{confirmed:?}"
        );
        terms
    }

    /// A transfer from the rogue's wallet, final on chain.
    pub async fn pay(&self, to: &str, amount: u64, key: &str) -> FinalTransfer {
        let to: Identity = to.parse().unwrap();
        let purpose = PaymentPurpose::Other { key: key.into() };
        let id = self.settlement.pay(&to, Qu(amount), purpose).await.unwrap();
        self.settlement.wait_final(&id, WAIT).await.unwrap()
    }

    pub async fn job(&self, offer: &Offer, message: JobMessage) -> JobReply {
        self.rogue
            .net
            .job(offer.provider.to_peer_id(), message)
            .await
            .unwrap()
    }

    /// A signed control request for agreement `id`.
    pub fn control(&self, id: AgreementId, action: JobAction) -> JobMessage {
        let control = JobControl {
            agreement_id: id,
            consumer: self.rogue.key.node_id(),
            action,
            nonce: Nonce::random(),
            issued_at: UnixMillis::now(),
        };
        let signed = Signed::sign(control, self.rogue.key.signing_key(), &self.network).unwrap();
        JobMessage::Control(signed.envelope().clone())
    }

    /// The provider's state of agreement `id`.
    pub async fn state(&self, offer: &Offer, id: AgreementId) -> JobState {
        match self.job(offer, self.control(id, JobAction::Status)).await {
            JobReply::Status(s) => s.state,
            other => panic!("no status: {other:?}"),
        }
    }

    pub async fn leave(self) {
        self.settlement.shutdown().await;
    }
}
