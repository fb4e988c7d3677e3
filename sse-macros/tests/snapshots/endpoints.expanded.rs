/// Counts from `lo` to `hi`, one number a second.
pub async fn numbers(
    __sse_context: ::sse_runtime::SseContext,
    Path((lo, hi)): Path<(u32, u32)>,
) -> ::sse_runtime::EventSourceResponse {
    use ::sse_runtime::IntoEvent as __SseIntoEvent;
    let __sse_hooks = ::sse_runtime::CloseHooks::new();
    let hooks: CloseHooks = ::core::clone::Clone::clone(&__sse_hooks);
    let __sse_events = ::sse_runtime::__private::generator::stream::<
        (),
        _,
    >(async move {
        let __sse_result: () = '__sse_body: {
            hooks.on_client_close(move || tracing::info!(lo, "client left"));
            for i in lo..=hi {
                tokio::time::sleep(Duration::from_secs(1)).await;
                {
                    #[allow(unreachable_code)]
                    if false {
                        break '__sse_body (loop {});
                    }
                    ({
                        #[allow(unused_imports)]
                        use ::sse_runtime::__private::generator::{
                            NotPlain as _, PlainText as _,
                        };
                        let mut __sse_event = ::sse_runtime::__private::generator::Fused::new(
                            ServerSentEvent::new,
                        );
                        match i {
                            __sse_value_0 => {
                                let mut __sse_digits_0 = ::sse_runtime::__private::generator::Digits::new();
                                let __sse_plain_0 = (&&::sse_runtime::__private::generator::Probe(
                                    &__sse_value_0,
                                ))
                                    .__sse_plain(&mut __sse_digits_0);
                                if __sse_plain_0.is_none() {
                                    __sse_event.id(&[], &__sse_value_0, false);
                                }
                                match i {
                                    __sse_value_1 => {
                                        let mut __sse_digits_1 = ::sse_runtime::__private::generator::Digits::new();
                                        let __sse_plain_1 = (&&::sse_runtime::__private::generator::Probe(
                                            &__sse_value_1,
                                        ))
                                            .__sse_plain(&mut __sse_digits_1);
                                        if __sse_plain_1.is_none() {
                                            __sse_event
                                                .data(
                                                    &[
                                                        ::sse_runtime::__private::generator::Field::new(
                                                            ::sse_runtime::__private::generator::Name::Id,
                                                            __sse_plain_0,
                                                        ),
                                                    ],
                                                    &__sse_value_1,
                                                    true,
                                                );
                                        }
                                        __sse_event
                                            .finish(
                                                &[
                                                    ::sse_runtime::__private::generator::Field::new(
                                                        ::sse_runtime::__private::generator::Name::Id,
                                                        __sse_plain_0,
                                                    ),
                                                    ::sse_runtime::__private::generator::Field::new(
                                                        ::sse_runtime::__private::generator::Name::Data,
                                                        __sse_plain_1,
                                                    ),
                                                ],
                                            )
                                    }
                                }
                            }
                        }
                    })
                        .await
                };
            }
        };
        #[allow(unreachable_code)] return __sse_result;
    });
    ::sse_runtime::__private::fallible::<(), _>(__sse_events)
        .ping(::core::time::Duration::new(15, 0))
        .send_timeout(::core::time::Duration::new(2, 500000000))
        .separator(::sse_runtime::Separator::Lf)
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
    use ::sse_runtime::IntoEvent as __SseIntoEvent;
    let __sse_events = ::sse_runtime::__private::generator::stream::<
        Result<(), DbError>,
        _,
    >(async move {
        let __sse_result: Result<(), DbError> = '__sse_body: {
            let mut cursor = db.prices().await?;
            while let Some(price) = cursor.next().await? {
                if price.is_final() {
                    return Ok(());
                }
                {
                    #[allow(unreachable_code)]
                    if false {
                        break '__sse_body (loop {});
                    }
                    __SseIntoEvent::__sse_send(Json(price)).await
                };
            }
            Ok(())
        };
        #[allow(unreachable_code)] return __sse_result;
    });
    ::sse_runtime::EventSourceResponse::new(
            ::sse_runtime::__private::recover::<
                Result<(), DbError>,
                _,
                _,
                _,
            >(__sse_events, error_event),
        )
        .status(::sse_runtime::__private::status(201))
        .header("x-feed", "prices")
        .retry(3000)
        .context(__sse_context)
}
async fn quotes(
    __sse_context: ::sse_runtime::SseContext,
    State(db): State<Db>,
) -> ::sse_runtime::EventSourceResponse {
    use ::sse_runtime::IntoEvent as __SseIntoEvent;
    let __sse_events = ::sse_runtime::__private::generator::stream::<
        Result<(), DbError>,
        _,
    >(async move {
        let __sse_result: Result<(), DbError> = '__sse_body: {
            loop {
                tokio::select! {
                    () = db.closed() => return ::core::result::Result::Ok(()), quote = db
                    .next_quote() => { #[allow(unreachable_code)] if false { break
                    '__sse_body(loop {}); } __SseIntoEvent::__sse_send(format!("{}",
                    quote ?)). await },
                }
            }
        };
        #[allow(unreachable_code)] return __sse_result;
    });
    ::sse_runtime::__private::fallible::<Result<(), DbError>, _>(__sse_events)
        .context(__sse_context)
}
