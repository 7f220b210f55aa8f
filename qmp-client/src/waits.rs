//! Event helpers on [`Client`]: the cursor, the history, subscriptions,
//! `unplug`, and the per-event waits that [`Client::events_of`] replaced
//! (deprecated, kept as thin wrappers over it).

use std::sync::Arc;
use std::time::Duration;

use qmp_types::{AnyEvent, DeviceDeleted, Event, Timestamp};

use crate::client::Client;
use crate::error::Result;
use crate::events::{self, EventStream};
use crate::history::{EventRecord, Since};

impl Client {
    /// The position the next event will have: pass `Since::Cursor(c)` to
    /// wait for events that arrive after this call.
    pub fn event_cursor(&self) -> Since {
        Since::Cursor(self.shared().hub.cursor())
    }

    /// Subscribes to every event from now on. The stream does not keep
    /// the connection open; once it ends, the stream says why.
    pub fn events(&self) -> EventStream {
        EventStream::new(self.shared().clone())
    }

    /// Events of type `E` in the history admitted by `since`.
    #[deprecated(note = "use `events_of::<E>(since).found()`")]
    pub fn find_events<E: Event<Any = AnyEvent> + Clone>(
        &self,
        since: Since,
    ) -> Vec<(Timestamp, E)> {
        self.events_of::<E>(since).found()
    }

    /// Every event in the history admitted by `since`.
    pub fn history(&self, since: Since) -> Vec<Arc<EventRecord>> {
        self.shared().hub.find(since, &mut |_| true)
    }

    /// Waits for an event of type `E` admitted by `since` that matches
    /// `pred`, history first.
    #[deprecated(note = "use `events_of::<E>(since).matching(pred).wait(timeout)`")]
    pub async fn wait_for<E, F>(
        &self,
        since: Since,
        timeout: Duration,
        pred: F,
    ) -> Result<(Timestamp, E)>
    where
        E: Event<Any = AnyEvent> + Clone,
        F: Fn(&E) -> bool + Sync,
    {
        let pred = &pred;
        self.events_of::<E>(since)
            .matching(move |e| pred(e))
            .wait(timeout)
            .await
    }

    /// The first event admitted by `since` for which `pred` holds (the
    /// history first, then live events), or [`Error::Timeout`](crate::Error::Timeout) naming
    /// `what` after `timeout`.
    pub(crate) async fn wait_for_record(
        &self,
        since: Since,
        timeout: Duration,
        what: impl FnOnce() -> String,
        pred: &(dyn Fn(&EventRecord) -> bool + Sync),
    ) -> Result<Arc<EventRecord>> {
        events::wait_for_record(self.shared(), since, timeout, what, pred).await
    }

    /// Events of type `E` admitted by `since`: all of them in the
    /// history, or else the first to arrive.
    #[deprecated(note = "use `events_of::<E>(since)`: `found()`, else `wait(timeout)`")]
    pub async fn get_events<E: Event<Any = AnyEvent> + Clone>(
        &self,
        since: Since,
        timeout: Duration,
    ) -> Result<Vec<(Timestamp, E)>> {
        let events = self.events_of::<E>(since);
        let found = events.found();
        if !found.is_empty() {
            return Ok(found);
        }
        Ok(vec![events.wait(timeout).await?])
    }

    /// Waits for `DEVICE_DELETED` of device `id` (qdev id or QOM path).
    #[deprecated(note = "use `events_of::<DeviceDeleted>(since).matching(..).wait(timeout)`")]
    pub async fn wait_device_deleted(
        &self,
        id: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<DeviceDeleted> {
        self.device_deleted(id, since, timeout).await
    }

    /// `DEVICE_DELETED` of device `id` (qdev id or QOM path).
    async fn device_deleted(
        &self,
        id: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<DeviceDeleted> {
        self.events_of::<DeviceDeleted>(since)
            .matching(|e| e.device.as_deref() == Some(id) || e.path == id)
            .wait(timeout)
            .await
            .map(|(_, e)| e)
    }

    /// Unplugs device `id` (qdev id or QOM path): `device_del`, then its
    /// `DEVICE_DELETED`, with the cursor taken before sending (QEMU may
    /// send the event before the reply). Without a guest to answer, only
    /// devices QEMU removes itself go: USB devices, and PCIe devices on
    /// native PCIe hotplug (`q35` with `-global
    /// ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off`); ACPI PCI
    /// hotplug (a `pc` machine's PCI bus, and `q35`'s root ports by
    /// default) waits for the guest, so the wait ends with
    /// [`Error::Timeout`](crate::Error::Timeout).
    pub async fn unplug(&self, id: &str, timeout: Duration) -> Result<DeviceDeleted> {
        let since = self.event_cursor();
        self.execute(qmp_types::DeviceDel::new(id)).await?;
        self.device_deleted(id, since, timeout).await
    }

    /// Waits for `JOB_STATUS_CHANGE` of job `job_id` to `status`.
    #[deprecated(note = "use `events_of::<JobStatusChange>(since).matching(..).wait(timeout)`")]
    pub async fn wait_job_status_change(
        &self,
        job_id: &str,
        status: qmp_types::JobStatus,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::JobStatusChange> {
        self.events_of::<qmp_types::JobStatusChange>(since)
            .matching(|e| e.id == job_id && e.status == status)
            .wait(timeout)
            .await
            .map(|(_, e)| e)
    }

    /// Waits for `DEVICE_TRAY_MOVED` of `device` (qdev id or block
    /// device name); `open`: `Some(true)` opened, `Some(false)` closed,
    /// `None` either.
    #[deprecated(note = "use `events_of::<DeviceTrayMoved>(since).matching(..).wait(timeout)`")]
    pub async fn wait_device_tray_moved(
        &self,
        device: &str,
        open: Option<bool>,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        self.events_of::<qmp_types::DeviceTrayMoved>(since)
            .matching(|e| {
                (e.id == device || e.device == device) && open.is_none_or(|o| e.tray_open == o)
            })
            .wait(timeout)
            .await
            .map(|(_, e)| e)
    }

    /// Waits for the tray of `device` to open.
    #[deprecated(note = "use `events_of::<DeviceTrayMoved>(since).matching(..).wait(timeout)`")]
    pub async fn wait_device_tray_opened(
        &self,
        device: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        #[allow(deprecated)]
        self.wait_device_tray_moved(device, Some(true), since, timeout)
            .await
    }

    /// Waits for the tray of `device` to close.
    #[deprecated(note = "use `events_of::<DeviceTrayMoved>(since).matching(..).wait(timeout)`")]
    pub async fn wait_device_tray_closed(
        &self,
        device: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        #[allow(deprecated)]
        self.wait_device_tray_moved(device, Some(false), since, timeout)
            .await
    }

    /// Waits for `RESUME` (the machine runs again).
    #[deprecated(note = "use `events_of::<Resume>(since).wait(timeout)`")]
    pub async fn wait_machine_resume(&self, since: Since, timeout: Duration) -> Result<Timestamp> {
        self.events_of::<qmp_types::Resume>(since)
            .wait(timeout)
            .await
            .map(|(t, _)| t)
    }

    /// `BLOCK_JOB_COMPLETED` of block job `job_id` in the history, if
    /// any.
    #[deprecated(note = "use `events_of::<BlockJobCompleted>(since).matching(..).found()`")]
    pub fn find_block_job_completed(
        &self,
        job_id: &str,
        since: Since,
    ) -> Option<(Timestamp, qmp_types::BlockJobCompleted)> {
        self.events_of::<qmp_types::BlockJobCompleted>(since)
            .matching(|e| e.device == job_id)
            .found()
            .into_iter()
            .next()
    }

    /// `BLOCK_JOB_ERROR` of block job `job_id` in the history, if any.
    #[deprecated(note = "use `events_of::<BlockJobError>(since).matching(..).found()`")]
    pub fn find_block_job_error(
        &self,
        job_id: &str,
        since: Since,
    ) -> Option<(Timestamp, qmp_types::BlockJobError)> {
        self.events_of::<qmp_types::BlockJobError>(since)
            .matching(|e| e.device == job_id)
            .found()
            .into_iter()
            .next()
    }

    /// Waits for `BLOCK_JOB_COMPLETED` of block job `job_id`. The event
    /// also ends a job that failed: `Ok` here says it ended, its `error`
    /// whether it failed.
    #[deprecated(
        note = "use `events_of::<BlockJobCompleted>(since).matching(..).wait(timeout)`, or a `Job`"
    )]
    pub async fn wait_block_job_completed(
        &self,
        job_id: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::BlockJobCompleted> {
        self.events_of::<qmp_types::BlockJobCompleted>(since)
            .matching(|e| e.device == job_id)
            .wait(timeout)
            .await
            .map(|(_, e)| e)
    }
}
