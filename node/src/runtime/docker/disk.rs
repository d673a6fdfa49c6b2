//! Disk use of a job's workspace, measured from the host: a walk of the volume's directory
//! that follows no link and stops counting after [`MAX_ENTRIES`] entries (a job cannot make
//! the walk itself a burden: past that, it is stopped as if it were over its bound).

use std::path::Path;

/// Whether a storage driver, as `docker info` describes it, can bound a container's
/// writable layer (`--storage-opt size=`): btrfs and zfs can, and overlay2 on xfs (with
/// project quotas; creation says so when they are off). vfs, used by tests, cannot: there
/// the size is watched.
pub(crate) fn driver_has_quota(driver: &str, status: &[Vec<String>]) -> bool {
    match driver {
        "btrfs" | "zfs" => true,
        "overlay2" => status.iter().any(|kv| {
            kv.first().is_some_and(|k| k == "Backing Filesystem")
                && kv.get(1).is_some_and(|v| v == "xfs")
        }),
        _ => false,
    }
}

/// The most directory entries one walk visits.
pub(crate) const MAX_ENTRIES: usize = 2_000_000;

/// Bytes held by the regular files under `root` (as their lengths say); `u64::MAX` when the
/// tree has more than [`MAX_ENTRIES`] entries.
pub(crate) fn tree_size(root: &Path) -> u64 {
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                return u64::MAX;
            }
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_used_where_the_driver_has_them() {
        let xfs = vec![vec!["Backing Filesystem".to_owned(), "xfs".to_owned()]];
        let ext4 = vec![vec!["Backing Filesystem".to_owned(), "extfs".to_owned()]];
        assert!(driver_has_quota("overlay2", &xfs));
        assert!(!driver_has_quota("overlay2", &ext4));
        assert!(driver_has_quota("btrfs", &[]));
        assert!(!driver_has_quota("vfs", &[]));
    }

    #[test]
    fn a_tree_counts_its_files_once_and_follows_no_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/one"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.path().join("a/b/two"), vec![0u8; 24]).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("a/link")).unwrap();
        assert_eq!(tree_size(dir.path()), 1024);
        assert_eq!(tree_size(&dir.path().join("missing")), 0);
    }
}
