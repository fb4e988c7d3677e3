//! `-> Result<(), E>` bodies: aliases, boxed errors, strings, `?` and `return Err(..)`, with and
//! without `on_error`.

use axum::{Json, Router, routing::get};
use serde_json::json;
use sse_runtime::{BoxError, ServerSentEvent, sse};

type FeedResult = Result<(), BoxError>;

fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

fn error_json(error: String) -> Json<serde_json::Value> {
    Json(json!({ "error": error }))
}

fn error_text(error: std::io::Error) -> String {
    error.to_string()
}

sse! {
    async fn io_alias() -> std::io::Result<()> {
        let file = std::fs::read_to_string("/nonexistent")?;
        yield file;
        Ok(())
    }

    async fn boxed() -> FeedResult {
        let n = parse("7")?;
        yield n;
        if n > 5 {
            return Err("too large".into());
        }
        Ok(())
    }

    async fn string_error() -> Result<(), String> {
        for text in ["1", "x"] {
            let n = parse(text).map_err(|error| error.to_string())?;
            yield n;
        }
        Ok(())
    }

    #[sse_endpoint(on_error = error_json)]
    async fn json_error() -> Result<(), String> {
        yield 1;
        Err("boom".to_owned())
    }

    #[sse_endpoint(on_error = error_text)]
    async fn loops_forever() -> std::io::Result<()> {
        loop {
            yield ServerSentEvent::new().data("tick");
            std::fs::metadata("/")?;
        }
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/io", get(io_alias))
        .route("/boxed", get(boxed))
        .route("/string", get(string_error))
        .route("/json", get(json_error))
        .route("/loop", get(loops_forever));
}
