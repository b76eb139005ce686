//! The audit log for the admin: filtered by who acted, what they did, to which thing and on
//! which days; newest first, a page at a time, with the actor's address where the account still
//! exists.

use sqlx::Row;

use crate::server::db::Db;
use crate::server::gallery::query::{Bind, Cursor, Sql};

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor_id: Option<String>,
    /// An action (`auth.login`), or a family of them ending in a dot (`auth.`).
    pub action: Option<String>,
    pub subject_id: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub id: String,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub ip: Option<String>,
    pub detail_json: String,
}

pub async fn page(
    db: &Db,
    filter: &AuditFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<Entry>, Option<String>), sqlx::Error> {
    let limit = limit.clamp(1, 500);
    let mut sql = Sql::default();
    let mut wheres = vec!["1 = 1".to_owned()];
    if let Some(actor) = &filter.actor_id {
        wheres.push(format!("e.actor_id = {}", sql.bind(Bind::Text(actor.clone()))));
    }
    match filter.action.as_deref() {
        Some(family) if family.ends_with('.') => {
            // Action names are lowercase words and dots: nothing in them is a LIKE wildcard.
            wheres.push(format!("e.action LIKE {}", sql.bind(Bind::Text(format!("{family}%")))));
        }
        Some(action) => wheres.push(format!("e.action = {}", sql.bind(Bind::Text(action.to_owned())))),
        None => {}
    }
    if let Some(subject) = &filter.subject_id {
        wheres.push(format!("e.subject_id = {}", sql.bind(Bind::Text(subject.clone()))));
    }
    if let Some(since) = filter.since {
        wheres.push(format!("e.at >= {}", sql.bind(Bind::Int(since))));
    }
    if let Some(until) = filter.until {
        wheres.push(format!("e.at < {}", sql.bind(Bind::Int(until))));
    }
    if let Some(cursor) = after {
        let (at, id) = (sql.bind(Bind::Int(cursor.created_at)), sql.bind(Bind::Text(cursor.id.clone())));
        wheres.push(format!("(e.at, e.id) < ({at}, {id})"));
    }
    let limit_at = sql.bind(Bind::Int(limit + 1));
    sql.text = format!(
        "SELECT e.id, e.at, e.actor_id, u.email AS actor_email, e.action, e.subject_type, e.subject_id, e.ip, \
         e.detail_json FROM audit_events e LEFT JOIN users u ON u.id = e.actor_id \
         WHERE {} ORDER BY e.at DESC, e.id DESC LIMIT {limit_at}",
        wheres.join(" AND ")
    );
    let found = sql.query().fetch_all(&db.pool).await?;
    let mut entries = found
        .iter()
        .map(|row| {
            Ok(Entry {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                actor_id: row.try_get("actor_id")?,
                actor_email: row.try_get("actor_email")?,
                action: row.try_get("action")?,
                subject_type: row.try_get("subject_type")?,
                subject_id: row.try_get("subject_id")?,
                ip: row.try_get("ip")?,
                detail_json: row.try_get("detail_json")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let next = (entries.len() as i64 > limit).then(|| {
        entries.truncate(limit as usize);
        entries.last().map(|e| Cursor { created_at: e.at, id: e.id.clone() }.encode())
    });
    Ok((entries, next.flatten()))
}
