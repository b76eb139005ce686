//! The one place a job's state changes. Each [`Step`] names the states it may leave and the one
//! it enters, and owns the columns it writes; a move is a single guarded `UPDATE`, so two paths
//! racing (a webhook and the poller, a cancel and a submit, two replicas) cannot both win: the
//! loser's update matches no row and it learns the job has moved on.

use crate::server::db::now_ms;
use crate::server::jobs::rows::{COLUMNS, JobRow, from_row};
use crate::states::{JobState, sql_list};

/// Something that happens to a job.
#[derive(Clone, Debug)]
pub enum Step {
    /// `queued → submitted`: fal accepted the request; look at it again at `next_at`.
    Submitted { request_id: String, webhook: bool, next_at: i64, queue_position: Option<i64> },
    /// `submitted | running → submitted | running`: what fal last said, and when to ask again.
    Progress { at_fal: JobState, queue_position: Option<i64>, progress: Option<String>, next_at: i64 },
    /// `submitted | running → persisting`: the result arrived and waits to be saved.
    Completed { result_json: String },
    /// `persisting → persisting`: saving failed for now (attempt `attempts` of `max_attempts`);
    /// it starts again at `next_at`.
    SaveRetry { attempts: i64, max_attempts: i64, next_at: i64, reason: String },
    /// `persisting → succeeded`, in the transaction that writes the asset rows.
    Succeeded,
    /// `queued | submitted | running | persisting → failed`, with the code and sentence the
    /// user sees.
    Failed { code: String, message: String },
    /// `queued | submitted | running → queued`: a passing failure; submitted again at `next_at`.
    Requeued { attempts: i64, max_attempts: i64, next_at: i64, reason: String },
    /// `failed | canceled → queued`: the user's retry, with fresh attempts.
    Retried { max_attempts: i64 },
    /// `queued | submitted | running → canceled`: the user's cancel.
    Canceled,
}

/// A value for a statement placeholder.
#[derive(Clone, Debug)]
enum Bind {
    Text(Option<String>),
    Int(Option<i64>),
}

impl Step {
    /// The states this step may leave.
    pub fn leaves(&self) -> &'static [JobState] {
        match self {
            Self::Submitted { .. } => &[JobState::Queued],
            Self::Progress { .. } | Self::Completed { .. } => &JobState::AT_FAL,
            Self::SaveRetry { .. } | Self::Succeeded => &[JobState::Persisting],
            Self::Failed { .. } => &JobState::ACTIVE,
            Self::Requeued { .. } | Self::Canceled => &JobState::CANCELABLE,
            Self::Retried { .. } => &JobState::RETRIABLE,
        }
    }

    /// The state this step enters.
    pub fn enters(&self) -> JobState {
        match self {
            Self::Submitted { .. } => JobState::Submitted,
            Self::Progress { at_fal, .. } => *at_fal,
            Self::Completed { .. } | Self::SaveRetry { .. } => JobState::Persisting,
            Self::Succeeded => JobState::Succeeded,
            Self::Failed { .. } => JobState::Failed,
            Self::Requeued { .. } | Self::Retried { .. } => JobState::Queued,
            Self::Canceled => JobState::Canceled,
        }
    }

    /// The step on job `id`, from any state it may leave.
    pub fn of(self, id: &str) -> Move<'_> {
        Move { id, from: self.leaves(), lease: None, owner: None, step: self }
    }

    /// The columns written besides `state` and `updated_at` (`$1` is the time of the move),
    /// with their values from `$3` on.
    fn set(&self) -> (&'static str, Vec<Bind>) {
        use Bind::{Int, Text};
        // Every step that leaves a worker's hands clears the lease and the retry note; a step
        // that only records progress keeps both.
        match self {
            Self::Submitted { request_id, webhook, next_at, queue_position } => (
                "fal_request_id = $3, webhook = $4, submitted_at = $1, polls = 0, next_attempt_at = $5, \
                 queue_position = $6, error_message = NULL, retry_reason = NULL",
                vec![
                    Text(Some(request_id.clone())),
                    Int(Some(i64::from(*webhook))),
                    Int(Some(*next_at)),
                    Int(*queue_position),
                ],
            ),
            Self::Progress { queue_position, progress, next_at, .. } => (
                "queue_position = $3, progress = $4, polls = polls + 1, next_attempt_at = $5",
                vec![Int(*queue_position), Text(progress.clone()), Int(Some(*next_at))],
            ),
            Self::Completed { result_json } => (
                "result_json = $3, attempts = 0, next_attempt_at = $1, completed_at = $1, queue_position = NULL, \
                 progress = NULL, error_message = NULL, retry_reason = NULL",
                vec![Text(Some(result_json.clone()))],
            ),
            Self::SaveRetry { attempts, max_attempts, next_at, reason } => {
                let reason = format!("saving the results failed ({reason})");
                (
                    "attempts = $3, next_attempt_at = $4, error_message = $5, retry_reason = $6, \
                     lease_owner = NULL, lease_until = NULL",
                    vec![
                        Int(Some(*attempts)),
                        Int(Some(*next_at)),
                        Text(Some(retry_message(*attempts, *max_attempts, &reason))),
                        Text(Some(reason)),
                    ],
                )
            }
            Self::Succeeded => (
                "lease_owner = NULL, lease_until = NULL, error_message = NULL, progress = NULL, retry_reason = NULL",
                vec![],
            ),
            Self::Failed { code, message } => (
                "error_code = $3, error_message = $4, lease_owner = NULL, lease_until = NULL, completed_at = $1, \
                 progress = NULL, queue_position = NULL, retry_reason = NULL",
                vec![Text(Some(code.clone())), Text(Some(message.clone()))],
            ),
            Self::Requeued { attempts, max_attempts, next_at, reason } => (
                "fal_request_id = NULL, attempts = $3, next_attempt_at = $4, error_message = $5, retry_reason = $6, \
                 lease_owner = NULL, lease_until = NULL, queue_position = NULL, progress = NULL",
                vec![
                    Int(Some(*attempts)),
                    Int(Some(*next_at)),
                    Text(Some(retry_message(*attempts, *max_attempts, reason))),
                    Text(Some(reason.clone())),
                ],
            ),
            Self::Retried { max_attempts } => (
                "fal_request_id = NULL, webhook = 0, attempts = 0, polls = 0, next_attempt_at = $1, \
                 lease_owner = NULL, lease_until = NULL, queue_position = NULL, progress = NULL, result_json = NULL, \
                 error_code = NULL, error_message = NULL, retry_reason = NULL, submitted_at = NULL, \
                 completed_at = NULL, max_attempts = $3, queued_at = $1",
                vec![Int(Some(*max_attempts))],
            ),
            Self::Canceled => (
                "error_code = 'job.canceled', error_message = 'Canceled.', lease_owner = NULL, lease_until = NULL, \
                 completed_at = $1, retry_reason = NULL",
                vec![],
            ),
        }
    }
}

/// "Retrying (2/5): fal was unavailable": `attempts` passing failures so far, so the next try is
/// number `attempts + 1`.
fn retry_message(attempts: i64, max_attempts: i64, reason: &str) -> String {
    format!("Retrying ({}/{max_attempts}): {reason}", attempts + 1)
}

/// A step about to be applied to one job, with its guards.
pub struct Move<'a> {
    id: &'a str,
    step: Step,
    from: &'a [JobState],
    lease: Option<&'a str>,
    owner: Option<&'a str>,
}

impl<'a> Move<'a> {
    /// Narrows the states the job may be in (a worker moves a job only from the state it found).
    pub fn from(mut self, states: &'a [JobState]) -> Self {
        debug_assert!(states.iter().all(|s| self.step.leaves().contains(s)), "{:?} cannot leave {states:?}", self.step);
        self.from = states;
        self
    }

    /// Only while the worker's lease token still holds the job (when a token is given).
    pub fn under(mut self, lease: impl Into<Option<&'a str>>) -> Self {
        self.lease = lease.into();
        self
    }

    /// Only when `user_id` owns the job.
    pub fn owned_by(mut self, user_id: &'a str) -> Self {
        self.owner = Some(user_id);
        self
    }

    fn sql(&self, binds: usize) -> String {
        let (set, _) = self.step.set();
        let mut sql = format!(
            "UPDATE jobs SET state = '{}', {set}, updated_at = $1 WHERE id = $2 AND state IN ({})",
            self.step.enters().as_str(),
            sql_list(self.from, JobState::as_str)
        );
        let mut next = 3 + binds;
        for (column, guard) in [("lease_owner", self.lease), ("user_id", self.owner)] {
            if guard.is_some() {
                sql.push_str(&format!(" AND {column} = ${next}"));
                next += 1;
            }
        }
        sql
    }

    /// Applies the step; whether the job was where the step could take it from.
    pub async fn run<'e, E>(self, executor: E) -> Result<bool, sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        Ok(self.run_returning(executor).await?.is_some())
    }

    /// Like [`Move::run`], answering the row as this move left it: a later read could already
    /// see what a worker did next.
    pub async fn run_returning<'e, E>(self, executor: E) -> Result<Option<JobRow>, sqlx::Error>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let (_, binds) = self.step.set();
        let sql = format!("{} RETURNING {COLUMNS}", self.sql(binds.len()));
        let mut query = sqlx::query(&sql).bind(now_ms()).bind(self.id.to_owned());
        for bind in binds {
            query = match bind {
                Bind::Text(v) => query.bind(v),
                Bind::Int(v) => query.bind(v),
            };
        }
        for guard in [self.lease, self.owner].into_iter().flatten() {
            query = query.bind(guard.to_owned());
        }
        let row = query.fetch_optional(executor).await?;
        if let Some(row) = &row {
            tracing::debug!(from = ?self.from, to = self.step.enters().as_str(), "job moved");
            return Ok(Some(from_row(row)?));
        }
        Ok(None)
    }
}

/// Asks the worker to look at the job with fal request `request_id` now (a webhook arrived that
/// cannot complete it by itself). Not a state change.
pub async fn due_now(db: &crate::server::db::Db, request_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET next_attempt_at = 0 WHERE fal_request_id = $1")
        .bind(request_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_step() -> Vec<Step> {
        vec![
            Step::Submitted { request_id: "r".into(), webhook: true, next_at: 1, queue_position: Some(0) },
            Step::Progress { at_fal: JobState::Running, queue_position: None, progress: None, next_at: 1 },
            Step::Completed { result_json: "{}".into() },
            Step::SaveRetry { attempts: 1, max_attempts: 5, next_at: 1, reason: "x".into() },
            Step::Succeeded,
            Step::Failed { code: "c".into(), message: "m".into() },
            Step::Requeued { attempts: 1, max_attempts: 5, next_at: 1, reason: "x".into() },
            Step::Retried { max_attempts: 5 },
            Step::Canceled,
        ]
    }

    #[test]
    fn guarded_moves_number_their_placeholders() {
        let step = Step::Completed { result_json: "{}".into() };
        let binds = step.set().1.len();
        let sql = step.of("j").under("w").owned_by("u").sql(binds);
        assert!(sql.starts_with("UPDATE jobs SET state = 'persisting', result_json = $3,"), "{sql}");
        assert!(
            sql.ends_with("updated_at = $1 WHERE id = $2 AND state IN ('submitted', 'running') AND lease_owner = $4 AND user_id = $5"),
            "{sql}"
        );
    }

    #[test]
    fn every_step_binds_exactly_its_placeholders() {
        for step in every_step() {
            let (set, binds) = step.set();
            let highest = (3..20).filter(|n| set.contains(&format!("${n}"))).max().unwrap_or(2);
            assert_eq!(highest, 2 + binds.len(), "{step:?}");
            assert!(!set.contains("state ="), "{step:?} writes the state itself");
        }
    }

    #[test]
    fn no_step_leaves_a_final_state_except_a_retry() {
        for step in every_step() {
            let leaves_final = step.leaves().iter().any(|s| s.is_final());
            assert_eq!(leaves_final, matches!(step, Step::Retried { .. }), "{step:?}");
            assert!(
                !step.leaves().contains(&step.enters())
                    || matches!(step, Step::Progress { .. } | Step::SaveRetry { .. } | Step::Requeued { .. })
            );
        }
    }

    #[test]
    fn a_retry_says_which_try_comes_next() {
        assert_eq!(retry_message(1, 5, "fal was unavailable"), "Retrying (2/5): fal was unavailable");
    }
}
