//! Database rows as events: each row of an SQLite table (in memory) becomes a JSON event with its
//! id, 0.3 s apart, with filters as query parameters (sse-starlette's example 03).
//!
//! ```sh
//! cargo run -p examples --example database
//! curl -N http://127.0.0.1:8000/tasks/stream
//! curl -N 'http://127.0.0.1:8000/tasks/stream?completed=false&limit=2'
//! curl -N http://127.0.0.1:8000/tasks/stream-function   # the same, with the runtime API
//! curl http://127.0.0.1:8000/tasks/list                 # plain JSON
//! curl http://127.0.0.1:8000/status
//! ```
//!
//! The lesson: acquire the database connection *inside* the stream. The stream outlives the
//! handler that created it, so a connection taken by the handler would be held for as long as the
//! client stays, or not be available at all.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::{Json, Router, routing::get};
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::{Row, SqliteConnection};
use sse_runtime::{BoxError, EventSourceResponse, ServerSentEvent, SseContext, sse};

#[derive(Serialize)]
struct Task {
    id: i64,
    title: String,
    description: String,
    completed: bool,
    created_at: String,
}

#[derive(Deserialize)]
struct Filters {
    completed: Option<bool>,
    limit: Option<i64>,
}

async fn fetch_tasks(
    connection: &mut SqliteConnection,
    filters: &Filters,
) -> sqlx::Result<Vec<Task>> {
    let rows = sqlx::query(
        "SELECT id, title, description, completed, created_at FROM tasks \
         WHERE ?1 IS NULL OR completed = ?1 ORDER BY id LIMIT ?2",
    )
    .bind(filters.completed)
    .bind(filters.limit.unwrap_or(-1))
    .fetch_all(connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Task {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                description: row.try_get("description")?,
                completed: row.try_get("completed")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

fn task_event(task: &Task) -> Result<ServerSentEvent, BoxError> {
    Ok(ServerSentEvent::json(task)?.event("task").id(task.id))
}

/// A failure becomes a last `event: error`, then the stream ends cleanly.
fn error_event(error: BoxError) -> ServerSentEvent {
    tracing::error!(%error, "task stream failed");
    ServerSentEvent::new().event("error").data(error)
}

sse! {
    /// One `event: task` per row, 0.3 s apart.
    #[sse_endpoint(on_error = error_event)]
    async fn stream_tasks(State(pool): State<SqlitePool>, Query(filters): Query<Filters>) -> Result<(), BoxError> {
        let mut connection = pool.acquire().await?;
        for task in fetch_tasks(&mut connection, &filters).await? {
            tokio::time::sleep(Duration::from_millis(300)).await;
            yield task_event(&task)?;
        }
        Ok(())
    }
}

/// The same stream written as a plain function, for the runtime API.
fn task_stream(
    pool: SqlitePool,
    filters: Filters,
) -> impl Stream<Item = Result<ServerSentEvent, BoxError>> {
    async_stream::try_stream! {
        let mut connection = pool.acquire().await?;
        for task in fetch_tasks(&mut connection, &filters).await? {
            tokio::time::sleep(Duration::from_millis(300)).await;
            yield task_event(&task)?;
        }
    }
}

async fn stream_function(
    State(pool): State<SqlitePool>,
    Query(filters): Query<Filters>,
    context: SseContext,
) -> EventSourceResponse {
    EventSourceResponse::from_try_stream(task_stream(pool, filters)).context(context)
}

async fn list_tasks(State(pool): State<SqlitePool>, Query(filters): Query<Filters>) -> Json<Value> {
    let tasks = match pool.acquire().await {
        Ok(mut connection) => fetch_tasks(&mut connection, &filters).await,
        Err(error) => Err(error),
    };
    match tasks {
        Ok(tasks) => Json(json!({ "tasks": tasks })),
        Err(error) => Json(json!({ "error": error.to_string() })),
    }
}

async fn status(State(pool): State<SqlitePool>) -> Json<Value> {
    let count: Result<i64, _> = sqlx::query_scalar("SELECT COUNT(*) FROM tasks")
        .fetch_one(&pool)
        .await;
    match count {
        Ok(tasks) => Json(json!({ "status": "ok", "tasks": tasks })),
        Err(error) => Json(json!({ "status": "error", "error": error.to_string() })),
    }
}

/// An in-memory database shared by the pool's connections, with five tasks.
async fn database() -> sqlx::Result<SqlitePool> {
    let pool = SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(4)
        .connect("sqlite:file:sse_tasks?mode=memory&cache=shared")
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS tasks (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            description TEXT NOT NULL,
            completed BOOLEAN NOT NULL,
            created_at TEXT NOT NULL
        )",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT OR IGNORE INTO tasks (id, title, description, completed, created_at)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5)
         SELECT i, 'Task ' || i, 'Description for task ' || i, i % 2 = 0, '2026-01-0' || i || 'T09:00:00Z'
         FROM n",
    )
    .execute(&pool)
    .await?;
    Ok(pool)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let pool = database().await?;
    let app = Router::new()
        .route("/tasks/stream", get(stream_tasks))
        .route("/tasks/stream-function", get(stream_function))
        .route("/tasks/list", get(list_tasks))
        .route("/status", get(status))
        .with_state(pool);
    examples::serve(app).await?;
    Ok(())
}
