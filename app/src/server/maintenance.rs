//! Background upkeep every replica runs: the upload sweeper, pruning of old rate-limit
//! windows, unfinished multipart uploads, trash that is due and account deletions, and now and
//! then a check of all of storage against the rows. `darkroom sweep` runs one pass by hand.

use std::time::Duration;

use super::rate_limit;
use super::state::Services;
use super::uploads::{self, Sweep, SweepReport, UploadError, Uploads};

/// One pass of every kind of upkeep; one kind failing does not keep the others from running.
pub async fn run_once(services: &Services) -> Result<SweepReport, UploadError> {
    run_once_at(services, super::db::now_ms()).await
}

/// [`run_once`] judging every age and expiry as of `now` (milliseconds since the epoch): the
/// clock tests move forward.
pub async fn run_once_at(services: &Services, now: i64) -> Result<SweepReport, UploadError> {
    let options = Sweep::for_ticket_ttl(services.config.uploads.ticket_ttl);
    let swept = uploads::sweep(Uploads::from(services), options, &services.sweep_position, now).await;
    if let Ok(report) = &swept {
        for (what, n) in [
            ("expired", report.expired),
            ("source_expired", report.sources_expired),
            ("interrupted", report.interrupted),
            ("retried_delete", report.retried_deletes),
            ("orphan", report.orphans),
            ("failed", report.failed),
        ] {
            metrics::counter!("sweep_items_total", "kind" => what).increment(n);
        }
        metrics::counter!("sweep_runs_total").increment(1);
    } else {
        metrics::counter!("sweep_runs_total", "outcome" => "failed").increment(1);
    }
    if let Err(err) = rate_limit::prune(&services.db, Duration::from_secs(24 * 3600)).await {
        tracing::warn!(%err, "pruning rate-limit windows failed; trying again next run");
    }
    // Multipart uploads a crash left open, once no worker is saving their job any more.
    let hour_ago = now - 3_600_000;
    match super::storage::multipart::abort_recorded(&services.storage, &services.db, None, hour_ago).await {
        Ok(aborted) => metrics::counter!("sweep_items_total", "kind" => "multipart_aborted").increment(aborted),
        Err(err) => tracing::warn!(%err, "looking for unfinished uploads failed; trying again next run"),
    }
    // Results in the trash longer than the trash keeps them, and objects of deleted results
    // that storage did not confirm deleting at the time.
    let gallery = &services.config.gallery;
    match super::gallery::curate::purge_due(&services.db, &services.storage, gallery.trash_ttl, now).await {
        Ok(purged) => metrics::counter!("sweep_items_total", "kind" => "trash_emptied").increment(purged),
        Err(err) => tracing::warn!(%err, "emptying due trash failed; trying again next run"),
    }
    // Results past their expiry that are not favorites (none when results are kept).
    if !services.config.jobs.result_ttl.is_zero() {
        match super::gallery::curate::expire_due(&services.db, &services.storage, now).await {
            Ok(expired) => metrics::counter!("sweep_items_total", "kind" => "result_expired").increment(expired),
            Err(err) => tracing::warn!(%err, "deleting expired results failed; trying again next run"),
        }
    }
    // Account deletions a crash interrupted, and the last storage pass of recent ones.
    let last_pass = services.config.uploads.erase_last_pass_after;
    match super::erase::finish_pending(&services.db, &services.storage, last_pass).await {
        Ok(finished) => metrics::counter!("sweep_items_total", "kind" => "account_erased").increment(finished),
        Err(err) => tracing::warn!(%err, "finishing account deletions failed; trying again next run"),
    }
    swept
}

/// How long an object no row needs must have been stored before a periodic check deletes it.
pub const RECONCILE_GRACE: Duration = Duration::from_secs(24 * 3600);

/// One check of all of storage against the rows (see `reconcile`), logged and counted: orphans
/// deleted, rows whose object is missing (at warn: the rows stay, someone should look).
pub async fn reconcile_at(
    services: &Services,
    now: i64,
) -> Result<super::reconcile::Report, super::reconcile::ReconcileError> {
    let report = super::reconcile::run(&services.db, &services.storage, now, RECONCILE_GRACE).await?;
    metrics::counter!("sweep_items_total", "kind" => "reconcile_orphan").increment(report.orphans_deleted);
    metrics::gauge!("storage_missing_objects").set(report.missing.len() as f64);
    if let Some(first) = report.missing.first() {
        tracing::warn!(
            missing = report.missing.len(),
            area = ?first.area,
            id = %first.id,
            "reconcile: rows whose object storage does not hold (kept; `darkroom storage reconcile` lists them)"
        );
    }
    tracing::info!(objects = report.objects, orphans_deleted = report.orphans_deleted, "reconcile: storage checked");
    Ok(report)
}

/// When the next periodic check is due: the first a tenth of the period after start (a server
/// restarted by every deploy still gets to it), then every period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Schedule {
    every: Duration,
    next: tokio::time::Instant,
}

impl Schedule {
    fn starting(every: Duration, now: tokio::time::Instant) -> Self {
        Self { every, next: now + every / 10 }
    }

    /// Whether a check is due at `now`; when it is, the next one is a period later.
    fn due(&mut self, now: tokio::time::Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

/// Runs `run_once` every `sweep_every`, and the storage check every `reconcile_every`, until the
/// process ends.
pub fn spawn(state: super::state::AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.uploads.sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconcile =
            state.config.uploads.reconcile_every.map(|every| Schedule::starting(every, tokio::time::Instant::now()));
        loop {
            tick.tick().await;
            if let Err(err) = run_once(&state).await {
                tracing::warn!(%err, "maintenance pass failed; retrying next time");
            }
            if reconcile.as_mut().is_some_and(|schedule| schedule.due(tokio::time::Instant::now()))
                && let Err(err) = reconcile_at(&state, super::db::now_ms()).await
            {
                tracing::warn!(%err, "reconcile: checking storage failed; trying again next period");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_check_runs_a_tenth_of_a_period_after_start_then_every_period() {
        let start = tokio::time::Instant::now();
        let day = Duration::from_secs(24 * 3600);
        let mut schedule = Schedule::starting(day, start);
        assert!(!schedule.due(start));
        assert!(!schedule.due(start + day / 10 - Duration::from_secs(1)));
        assert!(schedule.due(start + day / 10));
        assert!(!schedule.due(start + day / 10 + Duration::from_secs(60)), "not again at the next tick");
        assert!(!schedule.due(start + day / 10 + day - Duration::from_secs(1)));
        assert!(schedule.due(start + day / 10 + day));
    }
}
