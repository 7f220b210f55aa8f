//! The five unit tests of `tests/disks.rs`, written as they had to be
//! before the double played jobs and devices itself: every event of the
//! job and the device spelt out in QEMU's order. Kept to measure the
//! difference (README's figures count the lines of both files' tests)
//! and as a check that the scripts play what a careful test writes by
//! hand.

#![allow(
    clippy::unwrap_used,
    reason = "the testing guide's tests, written as the guide writes them"
)]

use std::time::Duration;

use qmp_client::testing::MockQemu;
use qmp_client::{Client, Error, ErrorClass, Options};
use qmp_examples::disks::{back_up_disk, hot_plug_disk, unplug_disk};
use qmp_types::*;

const T: Duration = Duration::from_secs(10);

async fn double(v: &str) -> (MockQemu, Client) {
    let mock = MockQemu::with_version(v).unwrap();
    let qmp = mock.connect(Options::default()).await.unwrap();
    (mock, qmp)
}

fn status(s: JobStatus) -> JobStatusChange {
    JobStatusChange::new("vd0-backup", s)
}

#[tokio::test]
async fn plugs_backs_up_and_unplugs() {
    for v in ["10.0.2", "7.2"] {
        let (mock, qmp) = double(v).await;
        mock.expect::<BlockdevAdd>();
        mock.expect::<DeviceAdd>();
        mock.expect::<BlockdevBackup>()
            .emit_before(status(JobStatus::Created))
            .emit_before(status(JobStatus::Running))
            .emit_before(status(JobStatus::Paused))
            .emit_before(status(JobStatus::Running))
            .then_emit(status(JobStatus::Waiting))
            .then_emit(status(JobStatus::Pending))
            .then_emit(BlockJobCompleted::new(
                JobType::Backup,
                "vd0-backup",
                16 << 20,
                16 << 20,
                0,
            ))
            .then_emit(status(JobStatus::Concluded))
            .then_emit(status(JobStatus::Null));
        mock.expect::<DeviceDel>()
            .with(|c| c.id == "vd0")
            .then_emit(DeviceDeleted::new("/machine/peripheral/vd0").with_device("vd0"));
        mock.expect::<BlockdevDel>();
        hot_plug_disk(&qmp, "vd0", "/images/vd0.qcow2", "virtio-blk-pci")
            .await
            .unwrap();
        back_up_disk(&qmp, "vd0", "tgt", T).await.unwrap();
        unplug_disk(&qmp, "vd0", T).await.unwrap();
        mock.verify().unwrap();
    }
}

#[tokio::test]
async fn a_refused_blockdev_add_adds_no_device() {
    let (mock, qmp) = double("10.0.2").await;
    mock.expect::<BlockdevAdd>()
        .fail(ErrorClass::GenericError, "Could not open '/nope'");
    let err = hot_plug_disk(&qmp, "vd0", "/nope", "virtio-blk-pci")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Could not open"), "{err}");
    mock.verify().unwrap();
}

#[tokio::test]
async fn a_device_never_deleted_times_out_and_keeps_its_node() {
    let (mock, qmp) = double("10.0.2").await;
    mock.expect::<BlockdevAdd>();
    mock.expect::<DeviceAdd>();
    mock.expect::<DeviceDel>().with(|c| c.id == "vd0");
    hot_plug_disk(&qmp, "vd0", "/images/vd0.qcow2", "virtio-blk-pci")
        .await
        .unwrap();
    let err = unplug_disk(&qmp, "vd0", Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    mock.verify().unwrap();
}

#[tokio::test]
async fn a_failing_backup_says_why() {
    let (mock, qmp) = double("7.2").await;
    mock.expect::<BlockdevAdd>();
    mock.expect::<DeviceAdd>();
    mock.expect::<BlockdevBackup>()
        .emit_before(status(JobStatus::Created))
        .emit_before(status(JobStatus::Running))
        .emit_before(status(JobStatus::Paused))
        .emit_before(status(JobStatus::Running))
        .then_emit(BlockJobError::new(
            "vd0-backup",
            IoOperationType::Write,
            BlockErrorAction::Report,
        ))
        .then_emit(status(JobStatus::Aborting))
        .then_emit(
            BlockJobCompleted::new(JobType::Backup, "vd0-backup", 16 << 20, 12 << 20, 0)
                .with_error("Input/output error"),
        )
        .then_emit(status(JobStatus::Concluded))
        .then_emit(status(JobStatus::Null));
    hot_plug_disk(&qmp, "vd0", "/images/vd0.qcow2", "virtio-blk-pci")
        .await
        .unwrap();
    let err = back_up_disk(&qmp, "vd0", "tgt", T).await.unwrap_err();
    assert!(matches!(&err, Error::JobFailed { error, .. } if error == "Input/output error"));
    mock.verify().unwrap();
}

#[tokio::test]
async fn qemu_dying_mid_backup_is_reported() {
    let (mock, qmp) = double("10.0.2").await;
    mock.expect::<BlockdevAdd>();
    mock.expect::<DeviceAdd>();
    mock.expect::<BlockdevBackup>()
        .emit_before(status(JobStatus::Created))
        .emit_before(status(JobStatus::Running))
        .emit_before(status(JobStatus::Paused))
        .emit_before(status(JobStatus::Running));
    let running = vec![JobInfo::new(
        "vd0-backup",
        JobType::Backup,
        JobStatus::Running,
        0,
        16 << 20,
    )];
    mock.allow::<QueryJobs>().reply(running);
    hot_plug_disk(&qmp, "vd0", "/images/vd0.qcow2", "virtio-blk-pci")
        .await
        .unwrap();
    let running = qmp.events_of::<JobStatusChange>(qmp.event_cursor());
    let dies = async { running.wait(T).await.map(|_| mock.close()) };
    let (err, _) = tokio::join!(back_up_disk(&qmp, "vd0", "tgt", T), dies);
    let err = err.unwrap_err();
    assert!(matches!(err, Error::Closed(_)), "{err}");
    mock.verify().unwrap();
}
