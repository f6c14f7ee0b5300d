//! The core's adapter conformance suite on tokio's multi-thread runtime and, in a module of its own, on the
//! current-thread runtime.

pool_core::conformance_tests!(pool_tokio::TokioRuntime, |fut| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
        .block_on(fut)
});

/// The same cases on the current-thread runtime.
mod current_thread {
    pool_core::conformance_tests!(pool_tokio::TokioRuntime, |fut| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(fut)
    });
}
