/// Every message of the room, as JSON.
pub async fn chat(
    __sse_context: ::sse_runtime::SseContext,
    State(hub): State<Hub>,
    Path(room): Path<u32>,
) -> ::sse_runtime::EventSourceResponse {
    let __sse_hooks = ::sse_runtime::CloseHooks::new();
    let hooks: CloseHooks = ::core::clone::Clone::clone(&__sse_hooks);
    #[allow(unused_imports)]
    use Stream as _;
    let __sse_events = async move {
        hooks.on_client_close(move || tracing::info!(room, "left"));
        hub.join(room).await;
        hub.subscribe(room)
    }
        .await;
    ::sse_runtime::__private::stream::item::<Json<Message>, _>(&__sse_events);
    ::sse_runtime::EventSourceResponse::new(::core::convert::identity(__sse_events))
        .ping(::core::time::Duration::new(15, 0))
        .retry(3000)
        .on_close(|__sse_reason| {
            #[allow(unused_imports)]
            use ::sse_runtime::__private::hook::{
                FutureHook as _, OtherHook as _, UnitHook as _,
            };
            #[allow(clippy::let_unit_value)]
            let __sse_output = log_close(__sse_reason);
            (&__sse_output).__sse_hook_kind().run(__sse_output)
        })
        .close_hooks(&__sse_hooks)
        .context(__sse_context)
}
async fn prices(
    __sse_context: ::sse_runtime::SseContext,
    State(db): State<Db>,
) -> ::sse_runtime::EventSourceResponse {
    #[allow(unused_imports)]
    use Stream as _;
    let __sse_events = async move {
        let since = db.last_close().await;
        async_stream::stream! {
            for price in db.prices(since) {
                yield price;
            }
        }
    }
        .await;
    ::sse_runtime::__private::stream::item::<Result<Price, DbError>, _>(&__sse_events);
    ::sse_runtime::__private::stream::from_try_stream(
            ::core::convert::identity(__sse_events),
        )
        .header("x-feed", "prices")
        .context(__sse_context)
}
async fn quotes(
    __sse_context: ::sse_runtime::SseContext,
) -> ::sse_runtime::EventSourceResponse {
    #[allow(unused_imports)]
    use futures::TryStream as _;
    let __sse_events = async move {
        if closed() {
            return futures::stream::empty().left_stream();
        }
        feed().right_stream()
    }
        .await;
    ::sse_runtime::__private::stream::try_items::<Quote, FeedError, _>(&__sse_events);
    ::sse_runtime::EventSourceResponse::new(
            ::sse_runtime::__private::stream::recover(
                ::core::convert::identity(__sse_events),
                error_event,
            ),
        )
        .context(__sse_context)
}
async fn named(
    __sse_context: ::sse_runtime::SseContext,
) -> ::sse_runtime::EventSourceResponse {
    let __sse_events: BoxStream<'static, u32> = async move {
        Box::pin(futures::stream::iter(1..=3))
    }
        .await;
    ::sse_runtime::EventSourceResponse::new(::core::convert::identity(__sse_events))
        .context(__sse_context)
}
