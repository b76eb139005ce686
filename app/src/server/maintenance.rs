//! Background upkeep every replica runs: the upload sweeper, pruning of old rate-limit
//! windows, unfinished multipart uploads, trash that is due and account deletions. `darkroom sweep` runs one pass by hand.

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

/// Runs `run_once` every `sweep_every` until the process ends.
pub fn spawn(state: super::state::AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config.uploads.sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = run_once(&state).await {
                tracing::warn!(%err, "maintenance pass failed; retrying next time");
            }
        }
    })
}
