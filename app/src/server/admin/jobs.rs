//! Jobs across every account, for the admin: filtered by state, model, account and days, newest
//! first a page at a time, with the queue's depth by state. Retries and cancels go through the
//! owner's own paths (`jobs::retry`, `jobs::cancel`: the same transitions and spending caps),
//! with the admin recorded as who asked.

use sqlx::Row;

use crate::server::db::Db;
use crate::server::gallery::query::{Bind, Cursor, Sql};
use crate::server::jobs::rows::{self, JobRow};
use crate::states::{JobState, sql_list};

#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub model: Option<String>,
    pub user_id: Option<String>,
    /// Created at or after / before (milliseconds).
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// A job with its owner's address.
#[derive(Clone, Debug)]
pub struct Listed {
    pub job: JobRow,
    pub email: String,
}

/// One page of jobs matching `filter`, newest first, after `after`; with the next cursor.
pub async fn page(
    db: &Db,
    filter: &JobFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<Listed>, Option<String>), sqlx::Error> {
    let limit = limit.clamp(1, 200);
    let mut sql = Sql::default();
    let mut wheres = vec!["1 = 1".to_owned()];
    if let Some(state) = filter.state {
        wheres.push(format!("j.state = {}", sql.bind(Bind::Text(state.as_str().to_owned()))));
    }
    if let Some(model) = &filter.model {
        wheres.push(format!("j.model = {}", sql.bind(Bind::Text(model.clone()))));
    }
    if let Some(user) = &filter.user_id {
        wheres.push(format!("j.user_id = {}", sql.bind(Bind::Text(user.clone()))));
    }
    if let Some(since) = filter.since {
        wheres.push(format!("j.created_at >= {}", sql.bind(Bind::Int(since))));
    }
    if let Some(until) = filter.until {
        wheres.push(format!("j.created_at < {}", sql.bind(Bind::Int(until))));
    }
    if let Some(cursor) = after {
        let (at, id) = (sql.bind(Bind::Int(cursor.created_at)), sql.bind(Bind::Text(cursor.id.clone())));
        wheres.push(format!("(j.created_at, j.id) < ({at}, {id})"));
    }
    let columns = rows::COLUMNS.split(", ").map(|c| format!("j.{c}")).collect::<Vec<_>>().join(", ");
    let limit_at = sql.bind(Bind::Int(limit + 1));
    sql.text = format!(
        "SELECT {columns}, u.email AS owner_email FROM jobs j JOIN users u ON u.id = j.user_id \
         WHERE {} ORDER BY j.created_at DESC, j.id DESC LIMIT {limit_at}",
        wheres.join(" AND ")
    );
    let found = sql.query().fetch_all(&db.pool).await?;
    let mut listed = found
        .iter()
        .map(|row| Ok(Listed { job: rows::from_row(row)?, email: row.try_get("owner_email")? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let next = (listed.len() as i64 > limit).then(|| {
        listed.truncate(limit as usize);
        listed.last().map(|l| Cursor { created_at: l.job.created_at, id: l.job.id.clone() }.encode())
    });
    Ok((listed, next.flatten()))
}

/// How many jobs wait in each unfinished state.
pub async fn queue_depth(db: &Db) -> Result<Vec<(JobState, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT state, COUNT(*) AS n FROM jobs WHERE state IN ({}) GROUP BY state",
        sql_list(&JobState::ACTIVE, JobState::as_str)
    );
    let counted = sqlx::query(&sql).fetch_all(&db.pool).await?;
    let mut depth: Vec<(JobState, i64)> = JobState::ACTIVE.iter().map(|s| (*s, 0)).collect();
    for row in counted {
        let state = crate::server::db::word_column(&row, "state", JobState::parse)?;
        if let Some(slot) = depth.iter_mut().find(|(s, _)| *s == state) {
            slot.1 = row.try_get("n")?;
        }
    }
    Ok(depth)
}
