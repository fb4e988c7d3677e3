//! `?` and `return` inside other macros' input in a `-> Result<(), E>` body are the fn's own, as
//! in any fn returning a `Result`: format-style macros, `vec!`, `assert!`, a macro of the crate's
//! own, nested macros, and the arms of `tokio::select!` (`?`, `return Err(..)`, `return Ok(())`
//! and a bare `return`). A `return` of a closure or an `async` block inside a macro's input stays
//! theirs. The attribute alone takes such a body too, when its `yield`s are all inside macros.

#![deny(unreachable_code, unused)]

use std::fmt::Write as _;
use std::num::ParseIntError;
use std::time::Duration;

use axum::{Router, routing::get};
use sse_runtime::{ShutdownSignal, sse, sse_endpoint};

fn parse(text: &str) -> Result<u32, ParseIntError> {
    text.parse()
}

/// A macro whose expansion uses `?`.
macro_rules! parsed {
    ($text:expr) => {
        parse($text)?
    };
}

sse! {
    async fn format_style() -> Result<(), ParseIntError> {
        yield format!("{}", parse("1")?);
        println!("{}", parse("2")?);
        let mut text = String::new();
        write!(text, "{}", parse("3")?).expect("writing to a String succeeds");
        yield text;
        assert!(parse("4")? == 4, "{}", parse("4")?);
        yield vec![parse("5")?, parsed!("6")].len();
        yield format!("{:?}", vec![format!("{}", parse("7")?)]);
        if parse("8")? > 7 {
            return;
        }
        Ok(())
    }

    async fn select_arms(shutdown: ShutdownSignal) -> Result<(), std::io::Error> {
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {
                    ticks += 1;
                    let meta = std::fs::metadata("/")?;
                    yield meta.is_dir();
                }
                result = async { std::fs::metadata("/") } => match result {
                    Ok(_) if ticks > 5 => return Ok(()),
                    Ok(meta) => yield meta.len(),
                    Err(error) => return Err(error),
                },
                text = async { "9" } => yield parse(text).map_err(std::io::Error::other)?,
            }
        }
    }

    async fn own_returns_in_macros() -> Result<(), ParseIntError> {
        let values = vec![parse("1")?, 2, 3];
        tokio::select! {
            total = async {
                if values.is_empty() {
                    return 0;
                }
                values.iter().sum::<u32>()
            } => {
                let mut small = 0;
                values.iter().for_each(|value| {
                    if *value > 1 {
                        return;
                    }
                    small += 1;
                });
                let first = move || -> Option<u32> {
                    return values.first().copied();
                };
                yield format!("{total} {small} {:?}", first());
            }
        }
        Ok(())
    }
}

/// `yield`s only inside macros, so rustc parses the fn before the attribute runs.
#[sse_endpoint(ping = 0)]
async fn attribute_alone(shutdown: ShutdownSignal) -> Result<(), ParseIntError> {
    loop {
        tokio::select! {
            () = shutdown.wait() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => yield parse("1")?,
        }
    }
}

fn main() {
    let _app: Router = Router::new()
        .route("/format", get(format_style))
        .route("/select", get(select_arms))
        .route("/own", get(own_returns_in_macros))
        .route("/attribute", get(attribute_alone));
}
