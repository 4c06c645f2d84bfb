//! The one bounded fan-out the matrix layer uses (every reconcile phase, attendance): at most `limit` requests in flight, results as they complete.

use std::future::Future;

use futures_util::stream::{self, Stream, StreamExt};

/// Runs `work` on every item, at most `limit` at a time; yields each result when it is ready.
pub fn fan_out<'a, T, R, Fut>(items: impl IntoIterator<Item = T> + 'a, limit: usize, work: impl FnMut(T) -> Fut + 'a) -> impl Stream<Item = R> + 'a
where
    T: 'a,
    Fut: Future<Output = R> + 'a,
{
    stream::iter(items).map(work).buffer_unordered(limit.max(1))
}

/// [`fan_out`], collected.
pub async fn all<'a, T, R, Fut>(items: impl IntoIterator<Item = T> + 'a, limit: usize, work: impl FnMut(T) -> Fut + 'a) -> Vec<R>
where
    T: 'a,
    Fut: Future<Output = R> + 'a,
{
    fan_out(items, limit, work).collect().await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn never_more_than_the_limit_in_flight_and_every_item_done() {
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let out = all(0..50u64, 4, |i| {
            let (now, most) = (&now, &most);
            async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(i % 3)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                i
            }
        })
        .await;
        let mut sorted = out.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 4);
    }
}
