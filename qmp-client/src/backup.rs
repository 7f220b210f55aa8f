//! Incremental backup as backup tools do it: a persistent dirty bitmap
//! added atomically with a full backup (one transaction, so no write
//! falls between the two), incremental backups of what the bitmap
//! recorded since (QEMU clears it when one succeeds), the bitmaps of each
//! node listed, and a clear path when a bitmap is `inconsistent` (QEMU
//! did not close its image cleanly) or `busy`: an error naming it, and a
//! fresh full backup that starts the chain again.

use std::collections::BTreeMap;

use qmp_types::{
    BlockDirtyBitmap, BlockDirtyBitmapAdd, BlockDirtyBitmapRemove, BlockDirtyInfo, BlockdevBackup,
    MirrorSyncMode, QueryNamedBlockNodes,
};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::jobs::Job;
use crate::transaction::TransactionBuilder;

/// A dirty bitmap of a node, as `query-named-block-nodes` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bitmap {
    /// Its name.
    pub name: String,
    /// Bytes marked dirty.
    pub dirty_bytes: u64,
    /// Bytes each bit covers.
    pub granularity: u32,
    /// Whether writes are recorded in it now.
    pub recording: bool,
    /// Whether an operation (a backup) holds it.
    pub busy: bool,
    /// Whether it is stored in the image (qcow2) and survives QEMU.
    pub persistent: bool,
    /// Whether it was found in use when its image was opened (QEMU did
    /// not close the image cleanly): it can't be trusted, only removed.
    pub inconsistent: bool,
}

impl From<BlockDirtyInfo> for Bitmap {
    fn from(b: BlockDirtyInfo) -> Bitmap {
        Bitmap {
            name: b.name.unwrap_or_default(),
            dirty_bytes: u64::try_from(b.count).unwrap_or(0),
            granularity: b.granularity,
            recording: b.recording,
            busy: b.busy,
            persistent: b.persistent,
            inconsistent: b.inconsistent.unwrap_or(false),
        }
    }
}

impl Client {
    /// Every node's dirty bitmaps, by node name (nodes without any are
    /// left out).
    pub async fn bitmaps(&self) -> Result<BTreeMap<String, Vec<Bitmap>>> {
        let nodes = self
            .execute(QueryNamedBlockNodes::new().with_flat(true))
            .await?;
        Ok(nodes
            .into_iter()
            .filter_map(|n| {
                let bitmaps: Vec<Bitmap> = n.dirty_bitmaps?.into_iter().map(Bitmap::from).collect();
                Some((n.node_name?, bitmaps))
            })
            .filter(|(_, b)| !b.is_empty())
            .collect())
    }

    /// Bitmap `name` of `node`, if it has one.
    pub async fn bitmap(&self, node: &str, name: &str) -> Result<Option<Bitmap>> {
        Ok(self
            .bitmaps()
            .await?
            .remove(node)
            .and_then(|b| b.into_iter().find(|b| b.name == name)))
    }

    /// Starts a full backup of `node` to `target` (a node) as job
    /// `job_id`, and a persistent bitmap `bitmap` on `node` that records
    /// every write from that point: one transaction, so the bitmap and
    /// the backup start at the same instant. A bitmap of that name that
    /// is there already (an older chain, or one left `inconsistent`) is
    /// removed first (QEMU refuses to add it again in the same
    /// transaction); a `busy` one is an [`Error::Bitmap`]. Wait for the
    /// backup with [`Job::wait`].
    pub async fn start_full_backup(
        &self,
        node: &str,
        target: &str,
        bitmap: &str,
        job_id: &str,
    ) -> Result<Job> {
        if let Some(old) = self.bitmap(node, bitmap).await? {
            if old.busy {
                return Err(bitmap_error(node, bitmap, BUSY));
            }
            // Not in the transaction: QEMU checks its `add` against the
            // bitmaps as they are before any action runs.
            self.execute(BlockDirtyBitmapRemove(BlockDirtyBitmap::new(node, bitmap)))
                .await?;
        }
        let t = TransactionBuilder::new()
            .action(BlockDirtyBitmapAdd::new(node, bitmap).with_persistent(true))
            .action(BlockdevBackup::new(node, MirrorSyncMode::Full, target).with_job_id(job_id));
        self.start_job_with(job_id, async { self.transaction(t).await })
            .await
    }

    /// Starts an incremental backup of `node` to `target` as job
    /// `job_id`: what bitmap `bitmap` recorded since the last backup of
    /// the chain (QEMU clears the bitmap when the job succeeds, and keeps
    /// it as it was when it fails). The target is usually a new image
    /// whose backing file is the previous backup. A missing, `busy` or
    /// `inconsistent` bitmap is an [`Error::Bitmap`] naming it (after an
    /// unclean stop, start again with [`Client::start_full_backup`]).
    pub async fn start_incremental_backup(
        &self,
        node: &str,
        target: &str,
        bitmap: &str,
        job_id: &str,
    ) -> Result<Job> {
        match self.bitmap(node, bitmap).await? {
            None => {
                return Err(bitmap_error(
                    node,
                    bitmap,
                    "not found: start the chain with a full backup",
                ));
            }
            Some(b) if b.inconsistent => {
                return Err(bitmap_error(
                    node,
                    bitmap,
                    "inconsistent (QEMU did not close the image cleanly), so it can't say what \
                     changed: start again with a full backup",
                ));
            }
            Some(b) if b.busy => {
                return Err(bitmap_error(node, bitmap, BUSY));
            }
            Some(_) => {}
        }
        self.start_job(
            BlockdevBackup::new(node, MirrorSyncMode::Incremental, target)
                .with_job_id(job_id)
                .with_bitmap(bitmap),
        )
        .await
    }
}

/// What [`Error::Bitmap`] says of a bitmap a backup holds.
const BUSY: &str = "busy: another operation holds it";

fn bitmap_error(node: &str, name: &str, problem: &str) -> Error {
    Error::Bitmap {
        node: node.to_string(),
        name: name.to_string(),
        problem: problem.to_string(),
    }
}
