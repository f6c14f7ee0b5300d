//! The adapter conformance cases that bound how long a run takes on the wall clock
//! (`pool_core::wall_clock_conformance_tests!`), on tokio's multi-thread and current-thread runtimes, smol and
//! async-std. The other cases stay in each adapter's own `tests/conformance.rs`.

/// tokio's multi-thread runtime.
mod on_tokio_multi_thread {
    pool_core::wall_clock_conformance_tests!(pool_tokio::TokioRuntime, |fut| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap()
            .block_on(fut)
    });
}

/// tokio's current-thread runtime.
mod on_tokio_current_thread {
    pool_core::wall_clock_conformance_tests!(pool_tokio::TokioRuntime, |fut| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(fut)
    });
}

/// smol.
mod on_smol {
    pool_core::wall_clock_conformance_tests!(pool_smol::SmolRuntime, smol::block_on);
}

/// async-std.
mod on_async_std {
    pool_core::wall_clock_conformance_tests!(
        pool_async_std::AsyncStdRuntime,
        async_std::task::block_on
    );
}
