//! Wire format of image-pull progress on `job/1`: golden bytes of the request and reply
//! variants, and the proof that adding them left every earlier encoding as it was.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{golden, read_golden};
use qubix_protocol::AgreementId;
use qubix_protocol::codec;
use qubix_protocol::control::{JobMessage, JobReply, JobState, PullSummary};
use qubix_protocol::testing::NOW;

fn summary() -> PullSummary {
    PullSummary {
        layers_done: 3,
        layers_total: 7,
        bytes_done: 12_500_000,
        bytes_total: Some(48_000_000),
        complete: false,
    }
}

#[test]
fn pull_progress_variants_match_their_golden_bytes() {
    let id = AgreementId::from_bytes([0xa5; 16]);
    golden(
        "job_message_pull_progress",
        &codec::encode(&JobMessage::PullProgress { agreement_id: id }).unwrap(),
    );
    golden(
        "job_reply_pull_progress",
        &codec::encode(&JobReply::PullProgress(Some(summary()))).unwrap(),
    );
}

#[test]
fn pull_progress_round_trips_and_stays_small() {
    for reply in [
        JobReply::PullProgress(None),
        JobReply::PullProgress(Some(summary())),
        JobReply::PullProgress(Some(PullSummary {
            layers_done: u32::MAX,
            layers_total: u32::MAX,
            bytes_done: u64::MAX,
            bytes_total: None,
            complete: true,
        })),
    ] {
        let bytes = codec::encode(&reply).unwrap();
        assert!(bytes.len() < 64, "{} bytes", bytes.len());
        assert_eq!(codec::decode::<JobReply>(&bytes).unwrap(), reply);
    }
}

#[test]
fn status_replies_encoded_before_pull_progress_still_decode() {
    // `job_reply.hex` was written before the pull variants existed.
    match codec::decode::<JobReply>(&read_golden("job_reply")).unwrap() {
        JobReply::Status(status) => {
            assert_eq!(status.state, JobState::Running);
            assert_eq!(status.since, NOW);
        }
        other => panic!("decoded as {other:?}"),
    }
}
