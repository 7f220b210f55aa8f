//! Event helpers on [`Client`]: the history, subscriptions, and typed
//! waits that can't miss an event QEMU sent before the reply to the
//! command that caused it.

use std::sync::Arc;
use std::time::Duration;

use qmp_types::{AnyEvent, Event, Timestamp};

use crate::client::Client;
use crate::error::{Error, Result};
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

    /// Events of type `E` in the history admitted by `since`. Events of
    /// that name whose data did not decode are left out (see
    /// [`Client::history`] for every record).
    pub fn find_events<E: Event<Any = AnyEvent> + Clone>(
        &self,
        since: Since,
    ) -> Vec<(Timestamp, E)> {
        let mut f = |r: &EventRecord| E::from_any_ref(&r.event).is_some();
        self.shared()
            .hub
            .find(since, &mut f)
            .iter()
            .filter_map(|r| E::from_any_ref(&r.event).map(|e| (r.timestamp, e.clone())))
            .collect()
    }

    /// Every event in the history admitted by `since`.
    pub fn history(&self, since: Since) -> Vec<Arc<EventRecord>> {
        self.shared().hub.find(since, &mut |_| true)
    }

    /// Waits for an event of type `E` admitted by `since` that matches
    /// `pred`, looking at the history first (QEMU often sends an event
    /// before the reply to the command that caused it). An `E` whose
    /// data did not decode ends the wait with [`Error::EventDecode`];
    /// the end of the connection with [`Error::Closed`].
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
        tokio::time::timeout(timeout, events::wait_for::<E>(self.shared(), since, &pred))
            .await
            .map_err(|_| Error::Timeout {
                what: format!("event {}", E::NAME),
                after: timeout,
            })?
    }

    /// The first event admitted by `since` for which `pred` holds (the
    /// history first, then live events), or [`Error::Timeout`] naming
    /// `what` after `timeout`.
    pub(crate) async fn wait_for_record(
        &self,
        since: Since,
        timeout: Duration,
        what: impl FnOnce() -> String,
        pred: &(dyn Fn(&EventRecord) -> bool + Sync),
    ) -> Result<Arc<EventRecord>> {
        tokio::time::timeout(timeout, events::wait_for_record(self.shared(), since, pred))
            .await
            .map_err(|_| Error::Timeout {
                what: what(),
                after: timeout,
            })?
    }

    /// Events of type `E` admitted by `since`: all of them in the
    /// history, or else the first to arrive.
    pub async fn get_events<E: Event<Any = AnyEvent> + Clone>(
        &self,
        since: Since,
        timeout: Duration,
    ) -> Result<Vec<(Timestamp, E)>> {
        let found = self.find_events::<E>(since);
        if !found.is_empty() {
            return Ok(found);
        }
        Ok(vec![self.wait_for::<E, _>(since, timeout, |_| true).await?])
    }

    /// Waits for `DEVICE_DELETED` of device `id` (qdev id or QOM path).
    pub async fn wait_device_deleted(
        &self,
        id: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceDeleted> {
        self.wait_for::<qmp_types::DeviceDeleted, _>(since, timeout, |e| {
            e.device.as_deref() == Some(id) || e.path == id
        })
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
    /// [`Error::Timeout`].
    pub async fn unplug(&self, id: &str, timeout: Duration) -> Result<qmp_types::DeviceDeleted> {
        let since = self.event_cursor();
        self.execute(qmp_types::DeviceDel::new(id)).await?;
        self.wait_device_deleted(id, since, timeout).await
    }

    /// Waits for `JOB_STATUS_CHANGE` of job `job_id` to `status`.
    pub async fn wait_job_status_change(
        &self,
        job_id: &str,
        status: qmp_types::JobStatus,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::JobStatusChange> {
        self.wait_for::<qmp_types::JobStatusChange, _>(since, timeout, |e| {
            e.id == job_id && e.status == status
        })
        .await
        .map(|(_, e)| e)
    }

    /// Waits for `DEVICE_TRAY_MOVED` of `device` (qdev id or block
    /// device name); `open`: `Some(true)` opened, `Some(false)` closed,
    /// `None` either.
    pub async fn wait_device_tray_moved(
        &self,
        device: &str,
        open: Option<bool>,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        self.wait_for::<qmp_types::DeviceTrayMoved, _>(since, timeout, |e| {
            (e.id == device || e.device == device) && open.is_none_or(|o| e.tray_open == o)
        })
        .await
        .map(|(_, e)| e)
    }

    /// Waits for the tray of `device` to open.
    pub async fn wait_device_tray_opened(
        &self,
        device: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        self.wait_device_tray_moved(device, Some(true), since, timeout)
            .await
    }

    /// Waits for the tray of `device` to close.
    pub async fn wait_device_tray_closed(
        &self,
        device: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::DeviceTrayMoved> {
        self.wait_device_tray_moved(device, Some(false), since, timeout)
            .await
    }

    /// Waits for `RESUME` (the machine runs again).
    pub async fn wait_machine_resume(&self, since: Since, timeout: Duration) -> Result<Timestamp> {
        self.wait_for::<qmp_types::Resume, _>(since, timeout, |_| true)
            .await
            .map(|(t, _)| t)
    }

    /// `BLOCK_JOB_COMPLETED` of block job `job_id` in the history, if
    /// any.
    pub fn find_block_job_completed(
        &self,
        job_id: &str,
        since: Since,
    ) -> Option<(Timestamp, qmp_types::BlockJobCompleted)> {
        self.find_events::<qmp_types::BlockJobCompleted>(since)
            .into_iter()
            .find(|(_, e)| e.device == job_id)
    }

    /// `BLOCK_JOB_ERROR` of block job `job_id` in the history, if any.
    pub fn find_block_job_error(
        &self,
        job_id: &str,
        since: Since,
    ) -> Option<(Timestamp, qmp_types::BlockJobError)> {
        self.find_events::<qmp_types::BlockJobError>(since)
            .into_iter()
            .find(|(_, e)| e.device == job_id)
    }

    /// Waits for `BLOCK_JOB_COMPLETED` of block job `job_id` (the event
    /// names it `device`, for historical reasons). The event also ends a
    /// job that failed: `Ok` here says it ended, its `error` whether it
    /// failed. [`crate::Job::wait`] turns that into an error, and sees
    /// `BLOCK_JOB_CANCELLED` too.
    pub async fn wait_block_job_completed(
        &self,
        job_id: &str,
        since: Since,
        timeout: Duration,
    ) -> Result<qmp_types::BlockJobCompleted> {
        self.wait_for::<qmp_types::BlockJobCompleted, _>(since, timeout, |e| e.device == job_id)
            .await
            .map(|(_, e)| e)
    }
}
