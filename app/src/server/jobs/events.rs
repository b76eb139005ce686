//! Job changes, fanned out to the open pages of the job's owner. In one process a broadcast
//! channel carries them; on PostgreSQL every replica publishes with `NOTIFY` and relays what its
//! `LISTEN` connection hears, so a page sees changes made by any replica.

use tokio::sync::broadcast;

use crate::server::db::{Backend, Db};

const CHANNEL: &str = "darkroom_jobs";

/// "Job `job_id` of `user_id` changed": pages reload that job (by owner) when they hear it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobEvent {
    pub user_id: String,
    pub job_id: String,
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<JobEvent>,
    db: Db,
    /// True once a `LISTEN` connection relays notifications into `tx`.
    relayed: bool,
}

impl Events {
    /// Starts relaying notifications on PostgreSQL; the returned task runs until aborted.
    pub async fn start(db: &Db, database_url: &str) -> (Self, Option<tokio::task::JoinHandle<()>>) {
        let (tx, _) = broadcast::channel(1024);
        if db.backend == Backend::Sqlite {
            return (Self { tx, db: db.clone(), relayed: false }, None);
        }
        match sqlx::postgres::PgListener::connect(database_url).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    let relay = tx.clone();
                    let task = tokio::spawn(async move {
                        loop {
                            // `recv` reconnects by itself after a dropped connection.
                            match listener.recv().await {
                                Ok(note) => {
                                    if let Some(event) = parse(note.payload()) {
                                        let _ = relay.send(event);
                                    }
                                }
                                Err(err) => {
                                    tracing::warn!(%err, "job notifications interrupted; reconnecting");
                                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                                }
                            }
                        }
                    });
                    (Self { tx, db: db.clone(), relayed: true }, Some(task))
                }
                Err(err) => {
                    tracing::error!(%err, "LISTEN failed; live updates stay within this replica");
                    (Self { tx, db: db.clone(), relayed: false }, None)
                }
            },
            Err(err) => {
                tracing::error!(%err, "no LISTEN connection; live updates stay within this replica");
                (Self { tx, db: db.clone(), relayed: false }, None)
            }
        }
    }

    pub async fn publish(&self, user_id: &str, job_id: &str) {
        if self.relayed {
            let payload = format!("{user_id} {job_id}");
            match sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(&self.db.pool).await {
                Ok(_) => return,
                Err(err) => tracing::warn!(%err, "NOTIFY failed; telling this replica only"),
            }
        }
        let _ = self.tx.send(JobEvent { user_id: user_id.to_owned(), job_id: job_id.to_owned() });
    }

    /// Something about the account changed (disabled, signed out everywhere): each of its
    /// streams, on every replica, checks its session at once instead of at its next check.
    pub async fn account_changed(&self, user_id: &str) {
        self.publish(user_id, "").await;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.tx.subscribe()
    }
}

fn parse(payload: &str) -> Option<JobEvent> {
    let (user_id, job_id) = payload.split_once(' ')?;
    Some(JobEvent { user_id: user_id.to_owned(), job_id: job_id.to_owned() })
}
