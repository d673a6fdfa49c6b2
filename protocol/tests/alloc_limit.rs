//! Hostile bytes never make a decoder allocate past the codec's limit: a counting global
//! allocator records the peak bytes allocated while decoding forged length prefixes.
#![allow(unsafe_code)] // A global allocator is unsafe by definition; it only counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use qubix_protocol::codec::{self, MAX_DECODE_BYTES, WireMessage};
use qubix_protocol::job::JobRequest;
use qubix_protocol::market::OfferSyncResponse;
use qubix_protocol::offer::Offer;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        // SAFETY: forwarded verbatim to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: forwarded verbatim to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak bytes allocated above the level at the start of `f`.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - base
}

/// bincode's varint: 0xfd then a u64 little-endian length.
fn huge_len() -> Vec<u8> {
    let mut v = vec![0xfd];
    v.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
    v
}

#[test]
fn forged_lengths_do_not_allocate_past_the_limit() {
    // An offer-sync page claiming 2^63 envelopes, then a few bytes.
    let mut page = huge_len();
    page.extend_from_slice(&[0u8; 64]);
    let peak = peak_during(|| assert!(codec::decode::<OfferSyncResponse>(&page).is_err()));
    assert!(
        peak <= MAX_DECODE_BYTES,
        "decoding a forged page allocated {peak} bytes"
    );

    // A job request whose first string claims 2^63 bytes.
    let mut req = vec![0u8; 32];
    req.extend_from_slice(&huge_len());
    let peak = peak_during(|| assert!(codec::decode::<JobRequest>(&req).is_err()));
    assert!(
        peak <= MAX_DECODE_BYTES,
        "decoding a forged request allocated {peak} bytes"
    );

    // An oversize input is refused before anything is read.
    let big = vec![0u8; Offer::MAX_SIZE + 1];
    let peak = peak_during(|| assert!(codec::decode::<Offer>(&big).is_err()));
    assert!(
        peak < 1024,
        "refusing an oversize offer allocated {peak} bytes"
    );
}
