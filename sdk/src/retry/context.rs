//! The ambient run context: the flow run a task is called in (and where
//! its task runs are collected), and the cancellation token that runs
//! started inside a flow or a [`with_cancellation`] scope obey.
//!
//! Async code carries it in a tokio task-local; blocking flows set a
//! thread-local for the duration of each attempt. Sync code called while an
//! async scope is being polled sees the task-local too.

use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::run::{RunId, TaskRun};

/// What a run inherits from its caller.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// The enclosing flow run.
    pub(crate) flow_run: Option<RunId>,
    /// The token that cancels runs started in this scope.
    pub(crate) cancel: Option<CancellationToken>,
    /// Where the task runs of the enclosing flow run are collected.
    pub(crate) task_runs: Option<Arc<Mutex<Vec<TaskRun>>>>,
}

tokio::task_local! {
    static ASYNC_CONTEXT: Context;
}

thread_local! {
    static THREAD_CONTEXT: RefCell<Option<Context>> = const { RefCell::new(None) };
}

/// The innermost context, if any.
pub(crate) fn current() -> Option<Context> {
    ASYNC_CONTEXT
        .try_with(Context::clone)
        .ok()
        .or_else(|| THREAD_CONTEXT.with(|c| c.borrow().clone()))
}

/// Polls `fut` with `context` installed.
pub(crate) async fn scope<F: Future>(context: Context, fut: F) -> F::Output {
    ASYNC_CONTEXT.scope(context, fut).await
}

/// Calls `f` with `context` installed on this thread.
pub(crate) fn scope_blocking<R>(context: Context, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Context>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            THREAD_CONTEXT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = THREAD_CONTEXT.with(|c| c.borrow_mut().replace(context));
    let _restore = Restore(previous);
    f()
}

/// Runs `fut` so that every task and flow run started inside it (including
/// those the `#[task]` and `#[flow]` macros generate) is cancelled when
/// `token` is: a run waiting or running then ends `Cancelled`, and is not
/// retried.
///
/// The token replaces an outer scope's; pass a
/// [`child_token`](CancellationToken::child_token) of the outer one to obey
/// both.
pub async fn with_cancellation<F: Future>(token: CancellationToken, fut: F) -> F::Output {
    let mut context = current().unwrap_or_default();
    context.cancel = Some(token);
    scope(context, fut).await
}

/// The cancellation tokens a run obeys: its own and the ambient one.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    pub(crate) own: Option<CancellationToken>,
    pub(crate) ambient: Option<CancellationToken>,
}

impl Tokens {
    /// Whether there is any token to watch.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.own.is_some() || self.ambient.is_some()
    }

    /// Whether either token is cancelled.
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.own
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
            || self
                .ambient
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
    }

    /// Resolves when either token is cancelled; never when there is none.
    pub(crate) async fn cancelled(&self) {
        match (&self.own, &self.ambient) {
            (Some(a), Some(b)) => {
                tokio::select! {
                    () = a.cancelled() => {}
                    () = b.cancelled() => {}
                }
            }
            (Some(t), None) | (None, Some(t)) => t.cancelled().await,
            (None, None) => std::future::pending().await,
        }
    }

    /// Sleeps the thread for `wait`, waking early when a token fires;
    /// `false` if one did.
    pub(crate) fn sleep_blocking(&self, wait: Duration) -> bool {
        // Tokens have no blocking wait, so a watched sleep polls them.
        const POLL: Duration = Duration::from_millis(10);
        if !self.any() {
            std::thread::sleep(wait);
            return true;
        }
        let start = Instant::now();
        loop {
            if self.is_cancelled() {
                return false;
            }
            let left = wait.saturating_sub(start.elapsed());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scopes_nest_and_restore() {
        assert!(current().is_none());
        let token = CancellationToken::new();
        with_cancellation(token.clone(), async {
            let ctx = current().unwrap();
            assert!(ctx.cancel.is_some());
            // Sync code polled inside the scope sees it too.
            fn sync_code_sees_the_token() -> bool {
                current().and_then(|c| c.cancel).is_some()
            }
            assert!(sync_code_sees_the_token());
        })
        .await;
        assert!(current().is_none());
        let id = RunId::next();
        let inner = scope_blocking(
            Context {
                flow_run: Some(id),
                ..Context::default()
            },
            || current().and_then(|c| c.flow_run),
        );
        assert_eq!(inner, Some(id));
        assert!(current().is_none());
    }

    #[tokio::test]
    async fn either_token_cancels() {
        let a = CancellationToken::new();
        let b = CancellationToken::new();
        let both = Tokens {
            own: Some(a.clone()),
            ambient: Some(b.clone()),
        };
        assert!(!both.is_cancelled());
        b.cancel();
        assert!(both.is_cancelled());
        both.cancelled().await;
        assert!(!both.sleep_blocking(Duration::from_secs(3600)));
        let ambient_only = Tokens {
            own: None,
            ambient: Some(b),
        };
        ambient_only.cancelled().await;
        assert!(Tokens::default().sleep_blocking(Duration::ZERO));
    }
}
