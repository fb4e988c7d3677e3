//! The pretty-printed expansion of representative endpoints, compared with a checked-in file so
//! that every change to the generated code shows up in review. Run with `UPDATE_SNAPSHOTS=1` to
//! rewrite the file after a deliberate change.

use std::path::Path;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::visit_mut::{self, VisitMut};

/// Pretty-prints an expansion. prettyplease prints a macro's tokens on as few lines as it can,
/// so the bodies of `stream!`/`try_stream!` are formatted as code of their own and put back.
fn pretty(tokens: TokenStream) -> String {
    let mut file: syn::File = syn::parse2(tokens).expect("the expansion parses as a file");
    let mut bodies = StreamBodies::default();
    bodies.visit_file_mut(&mut file);
    let mut text = prettyplease::unparse(&file);
    for (index, body) in bodies.0.iter().enumerate() {
        let placeholder = format!("__snapshot_body_{index}");
        let line = text
            .lines()
            .find(|line| line.contains(&placeholder))
            .expect("the placeholder is printed")
            .to_owned();
        // prettyplease puts the placeholder alone on a line, indented as the body should be.
        let indent = line.len() - line.trim_start().len();
        let replaced = format_body(body, indent);
        text = text.replace(&format!("{line}\n"), &replaced);
    }
    text
}

/// The statements of a stream macro, formatted as the body of a fn and indented by `indent`.
fn format_body(body: &TokenStream, indent: usize) -> String {
    let wrapper: syn::File = syn::parse2(quote!(fn body() { #body })).expect("the body parses");
    let printed = prettyplease::unparse(&wrapper);
    let mut out = String::new();
    let lines: Vec<&str> = printed.lines().collect();
    // Drop `fn body() {` and the closing `}`; the statements are indented by 4 already.
    for line in &lines[1..lines.len() - 1] {
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent - 4));
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[derive(Default)]
struct StreamBodies(Vec<TokenStream>);

impl VisitMut for StreamBodies {
    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        if crate::body::is_stream_macro(mac) {
            let placeholder = format_ident!("__snapshot_body_{}", self.0.len());
            self.0
                .push(std::mem::replace(&mut mac.tokens, quote!(#placeholder)));
        }
        visit_mut::visit_macro_mut(self, mac);
    }
}

fn check_snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "the expansion differs from {}; review the change and rerun with UPDATE_SNAPSHOTS=1 \
         to accept it\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn expansion_of_representative_endpoints_matches_the_snapshot() {
    let input = quote! {
        (::sse_runtime)

        /// Counts from `lo` to `hi`, one number a second.
        #[sse_endpoint(ping = 15, send_timeout = 2.5, sep = "\n", on_close = log_close)]
        pub async fn numbers(
            Path((lo, hi)): Path<(u32, u32)>,
            hooks: CloseHooks,
        ) {
            hooks.on_client_close(move || tracing::info!(lo, "client left"));
            for i in lo..=hi {
                tokio::time::sleep(Duration::from_secs(1)).await;
                yield ServerSentEvent::new().id(i).data(i);
            }
        }

        #[sse_endpoint(status = 201, headers("x-feed" = "prices"), retry = 3000, on_error = error_event)]
        async fn prices(State(db): State<Db>) -> Result<(), DbError> {
            let mut cursor = db.prices().await?;
            while let Some(price) = cursor.next().await? {
                if price.is_final() {
                    return Ok(());
                }
                yield Json(price);
            }
            Ok(())
        }

        #[sse_endpoint]
        async fn quotes(State(db): State<Db>) -> Result<(), DbError> {
            loop {
                tokio::select! {
                    () = db.closed() => return,
                    quote = db.next_quote() => yield format!("{}", quote?),
                }
            }
        }
    };
    check_snapshot("endpoints.expanded.rs", &pretty(crate::block(input)));
}

#[test]
fn expansion_of_fns_returning_their_stream_matches_the_snapshot() {
    let endpoints = [
        (
            quote!(ping = 15, retry = 3000, on_close = log_close),
            quote! {
                /// Every message of the room, as JSON.
                pub async fn chat(
                    State(hub): State<Hub>,
                    Path(room): Path<u32>,
                    hooks: CloseHooks,
                ) -> impl Stream<Item = Json<Message>> + Send + 'static {
                    hooks.on_client_close(move || tracing::info!(room, "left"));
                    hub.join(room).await;
                    hub.subscribe(room)
                }
            },
        ),
        (
            quote!(headers("x-feed" = "prices")),
            quote! {
                async fn prices(State(db): State<Db>) -> impl Stream<Item = Result<Price, DbError>> {
                    let since = db.last_close().await;
                    async_stream::stream! {
                        for price in db.prices(since) {
                            yield price;
                        }
                    }
                }
            },
        ),
        (
            quote!(on_error = error_event),
            quote! {
                async fn quotes() -> impl futures::TryStream<Ok = Quote, Error = FeedError> {
                    if closed() {
                        return futures::stream::empty().left_stream();
                    }
                    feed().right_stream()
                }
            },
        ),
        (
            quote!(),
            quote! {
                async fn named() -> BoxStream<'static, u32> {
                    Box::pin(futures::stream::iter(1..=3))
                }
            },
        ),
    ];
    let expansion: TokenStream = endpoints
        .into_iter()
        .map(|(args, item)| crate::attribute(args, item))
        .collect();
    check_snapshot("stream_endpoints.expanded.rs", &pretty(expansion));
}

#[test]
fn expansion_of_an_invalid_endpoint_keeps_its_signature() {
    let input = quote! {
        (::sse_runtime)

        #[sse_endpoint(pign = 15)]
        pub async fn numbers(Path(n): Path<u32>, hooks: CloseHooks) {
            yield n;
        }
    };
    let expanded = pretty(crate::block(input));
    assert!(expanded.contains("unknown option `pign`; did you mean `ping`?"));
    assert!(expanded.contains(
        "pub async fn numbers(Path(n): Path<u32>) -> ::sse_runtime::EventSourceResponse"
    ));
}
