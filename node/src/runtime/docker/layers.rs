//! Folding the engine's pull messages into a [`PullProgress`]: per layer the engine sends
//! `Pulling fs layer`, `Waiting`, `Downloading` (with the bytes so far and the layer's
//! size), `Verifying Checksum`, `Download complete`, `Extracting` and `Pull complete`, or
//! only `Already exists`. [`LayerTally`] keeps one small record per layer, up to
//! [`MAX_TRACKED_LAYERS`]; layers past that are still counted (each sends exactly one
//! `Pulling fs layer` or `Already exists` and one `Pull complete`) but their bytes are not,
//! so the byte total becomes unknown. No IO: the pull feeds it message by message.

use std::collections::HashMap;

use bollard::models::CreateImageInfo;

use crate::runtime::types::PullProgress;

/// Layers followed one by one. Images have at most 127 (overlayfs stacks no more), so
/// reaching this means a misbehaving engine or registry.
pub(crate) const MAX_TRACKED_LAYERS: usize = 256;
/// Longest layer id kept (engines send 12 hex digits).
const MAX_ID_LEN: usize = 72;
/// Longest status text kept.
const MAX_STATUS_LEN: usize = 64;

/// One layer's download.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Layer {
    /// Bytes downloaded.
    current: u64,
    /// Its size, once the engine said.
    total: Option<u64>,
    /// Nothing more to download (downloaded, verified, or already present).
    downloaded: bool,
    /// Extracted, or already present.
    done: bool,
}

impl Layer {
    fn absorb(&mut self, status: &str, current: Option<u64>, total: Option<u64>) {
        match status {
            "Downloading" => {
                if let Some(t) = total.filter(|t| *t > 0) {
                    self.total = Some(t);
                }
                if let Some(c) = current {
                    self.current = self.total.map_or(c, |t| c.min(t));
                }
            }
            // The byte figures of `Extracting` count unpacked bytes, not downloaded ones.
            "Verifying Checksum" | "Download complete" | "Extracting" => self.finish_download(),
            "Pull complete" | "Already exists" => {
                self.finish_download();
                self.done = true;
            }
            _ => {}
        }
    }

    fn finish_download(&mut self) {
        self.downloaded = true;
        if let Some(t) = self.total {
            self.current = t;
        }
    }
}

/// The running fold of one pull.
#[derive(Debug, Default)]
pub(crate) struct LayerTally {
    layers: HashMap<String, Layer>,
    /// Layers past [`MAX_TRACKED_LAYERS`] that announced themselves.
    untracked_seen: u32,
    /// Of those, the ones that finished.
    untracked_done: u32,
}

impl LayerTally {
    /// Takes one engine message and returns the pull's progress after it.
    pub(crate) fn absorb(&mut self, message: &CreateImageInfo) -> PullProgress {
        let status = message.status.as_deref().unwrap_or_default();
        if let Some(id) = message.id.as_deref().filter(|_| is_layer_status(status)) {
            let detail = message.progress_detail.as_ref();
            let bytes = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok());
            let current = bytes(detail.and_then(|d| d.current));
            let total = bytes(detail.and_then(|d| d.total));
            self.layer(id, status, current, total);
        }
        self.progress(status)
    }

    fn layer(&mut self, id: &str, status: &str, current: Option<u64>, total: Option<u64>) {
        let id = truncate(id, MAX_ID_LEN);
        if let Some(layer) = self.layers.get_mut(id) {
            layer.absorb(status, current, total);
        } else if self.layers.len() < MAX_TRACKED_LAYERS {
            let mut layer = Layer::default();
            layer.absorb(status, current, total);
            self.layers.insert(id.to_owned(), layer);
        } else {
            if matches!(status, "Pulling fs layer" | "Already exists") {
                self.untracked_seen = self.untracked_seen.saturating_add(1);
            }
            if matches!(status, "Pull complete" | "Already exists") {
                self.untracked_done = self.untracked_done.saturating_add(1);
            }
        }
    }

    /// The progress so far, with `status` as the latest engine text.
    pub(crate) fn progress(&self, status: &str) -> PullProgress {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let tracked_done = self.layers.values().filter(|l| l.done).count();
        let sum =
            |f: fn(&Layer) -> u64| self.layers.values().map(f).fold(0u64, u64::saturating_add);
        let sizes_known = !self.layers.is_empty()
            && self.untracked_seen == 0
            && self
                .layers
                .values()
                .all(|l| l.downloaded || l.total.is_some());
        PullProgress {
            status: truncate(status, MAX_STATUS_LEN).to_owned(),
            layers_done: count(tracked_done).saturating_add(self.untracked_done),
            layers_total: count(self.layers.len()).saturating_add(self.untracked_seen),
            bytes_done: sum(|l| l.current),
            bytes_total: sizes_known.then(|| sum(|l| l.total.unwrap_or(l.current))),
            complete: false,
        }
    }

    /// Bytes known to be part of the pull so far: each followed layer's size where the
    /// engine said it, else what it downloaded of it (a lower bound of the image's size).
    pub(crate) fn known_bytes(&self) -> u64 {
        self.layers
            .values()
            .map(|l| l.total.unwrap_or(l.current).max(l.current))
            .fold(0u64, u64::saturating_add)
    }

    /// Layers followed one by one.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.layers.len()
    }
}

/// Statuses the engine sends with a layer id (others carry the tag or digest as id).
fn is_layer_status(status: &str) -> bool {
    matches!(
        status,
        "Pulling fs layer"
            | "Waiting"
            | "Downloading"
            | "Verifying Checksum"
            | "Download complete"
            | "Extracting"
            | "Pull complete"
            | "Already exists"
    )
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use bollard::models::ProgressDetail;

    use super::*;

    fn message(id: &str, status: &str) -> CreateImageInfo {
        CreateImageInfo {
            id: Some(id.into()),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    fn downloading(id: &str, current: i64, total: i64) -> CreateImageInfo {
        CreateImageInfo {
            progress_detail: Some(ProgressDetail {
                current: Some(current),
                total: Some(total),
            }),
            ..message(id, "Downloading")
        }
    }

    /// (layers done, layers total, bytes done, bytes total).
    fn figures(p: &PullProgress) -> (u32, u32, u64, Option<u64>) {
        (p.layers_done, p.layers_total, p.bytes_done, p.bytes_total)
    }

    #[test]
    fn a_typical_pull_folds_into_layers_and_bytes() {
        let mut t = LayerTally::default();
        let p = t.absorb(&message("latest", "Pulling from library/python"));
        assert_eq!(figures(&p), (0, 0, 0, None), "the tag line is not a layer");
        t.absorb(&message("aaa", "Already exists"));
        t.absorb(&message("bbb", "Pulling fs layer"));
        t.absorb(&message("ccc", "Pulling fs layer"));
        let p = t.absorb(&message("ccc", "Waiting"));
        assert_eq!(
            figures(&p),
            (1, 3, 0, None),
            "sizes unknown before downloads start"
        );
        t.absorb(&downloading("bbb", 1_000, 10_000));
        let p = t.absorb(&downloading("ccc", 500, 4_000));
        assert_eq!(figures(&p), (1, 3, 1_500, Some(14_000)));
        assert_eq!(p.status, "Downloading");
        t.absorb(&downloading("bbb", 10_000, 10_000));
        t.absorb(&message("bbb", "Verifying Checksum"));
        t.absorb(&message("bbb", "Download complete"));
        let p = t.absorb(&message("bbb", "Extracting"));
        assert_eq!(figures(&p), (1, 3, 10_500, Some(14_000)));
        let p = t.absorb(&message("bbb", "Pull complete"));
        assert_eq!(figures(&p), (2, 3, 10_500, Some(14_000)));
        t.absorb(&message("ccc", "Download complete"));
        let p = t.absorb(&message("ccc", "Pull complete"));
        assert_eq!(figures(&p), (3, 3, 14_000, Some(14_000)));
        let p = t.absorb(&message("sha256:00", "Digest: sha256:00"));
        assert_eq!(figures(&p), (3, 3, 14_000, Some(14_000)));
    }

    #[test]
    fn a_layer_without_a_size_keeps_the_total_unknown_until_it_is_downloaded() {
        let mut t = LayerTally::default();
        t.absorb(&downloading("big", 100, 1_000));
        t.absorb(&message("tiny", "Pulling fs layer"));
        let p = t.absorb(&downloading("odd", 50, 0));
        assert_eq!(figures(&p), (0, 3, 150, None), "a zero size is no size");
        t.absorb(&message("tiny", "Download complete"));
        let p = t.absorb(&message("odd", "Download complete"));
        assert_eq!(
            figures(&p),
            (0, 3, 150, Some(1_050)),
            "downloaded layers count with what they downloaded"
        );
    }

    #[test]
    fn odd_figures_never_count_more_than_a_layer_holds() {
        let mut t = LayerTally::default();
        let p = t.absorb(&downloading("a", 5_000, 1_000));
        assert_eq!(figures(&p), (0, 1, 1_000, Some(1_000)));
        let p = t.absorb(&downloading("a", -1, -1));
        assert_eq!(figures(&p), (0, 1, 1_000, Some(1_000)), "negatives ignored");
        let p = t.absorb(&message("a", "Pull complete"));
        assert_eq!(figures(&p), (1, 1, 1_000, Some(1_000)));
        let p = t.absorb(&message("a", "Pull complete"));
        assert_eq!(
            figures(&p),
            (1, 1, 1_000, Some(1_000)),
            "repeats count once"
        );
    }

    #[test]
    fn an_image_already_present_downloads_nothing() {
        let mut t = LayerTally::default();
        t.absorb(&message("a", "Already exists"));
        let p = t.absorb(&message("b", "Already exists"));
        assert_eq!(figures(&p), (2, 2, 0, Some(0)));
    }

    #[test]
    fn a_huge_number_of_layers_stays_bounded_and_counted() {
        let layers = 10_000;
        let mut t = LayerTally::default();
        for i in 0..layers {
            t.absorb(&message(&format!("{i:012x}"), "Pulling fs layer"));
        }
        for i in 0..layers {
            let id = format!("{i:012x}");
            t.absorb(&downloading(&id, 10, 10));
            t.absorb(&message(&id, "Pull complete"));
        }
        assert_eq!(t.tracked(), MAX_TRACKED_LAYERS);
        let p = t.progress("Pull complete");
        assert_eq!((p.layers_done, p.layers_total), (layers, layers));
        assert_eq!(p.bytes_done, 10 * MAX_TRACKED_LAYERS as u64);
        assert_eq!(p.bytes_total, None, "untracked layers' bytes are unknown");
    }

    #[test]
    fn long_ids_and_statuses_are_cut() {
        let mut t = LayerTally::default();
        let long = "é".repeat(100);
        t.absorb(&message(&long, "Pulling fs layer"));
        t.absorb(&message(&format!("{long}x"), "Pulling fs layer"));
        assert_eq!(
            t.tracked(),
            1,
            "ids equal in their first bytes are one layer"
        );
        let p = t.progress(&"s".repeat(1_000));
        assert_eq!(p.status.len(), MAX_STATUS_LEN);
    }
}
