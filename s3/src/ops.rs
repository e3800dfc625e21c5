//! The S3 operations, one module per family, each handler named after its operation.

pub mod bucket;
pub mod conditional;
pub mod copy;
pub mod delete_objects;
pub mod list;
pub mod multipart;
pub mod object;
pub mod probes;
pub mod versions;

use std::sync::Arc;

use http::HeaderValue;
use vault::{Engine, VaultError};

use crate::error::S3Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Runs an engine call on a blocking thread; engine errors become S3 errors.
///
/// # Errors
/// The engine's error mapped to S3, or `InternalError` if the task failed.
pub async fn blocking<T: Send + 'static>(
    engine: &Arc<Engine>,
    f: impl FnOnce(&Engine) -> Result<T, VaultError> + Send + 'static,
) -> Result<T, S3Error> {
    let engine = Arc::clone(engine);
    tokio::task::spawn_blocking(move || f(&engine))
        .await
        .map_err(|err| S3Error::internal(&err))?
        .map_err(S3Error::from)
}

/// An S3 timestamp as listings show it: `2024-01-31T12:34:56.789Z`.
#[must_use]
pub fn iso8601_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let time =
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let text = time.format(&Rfc3339).unwrap_or_default();
    // RFC 3339 from `time` drops trailing zero fractions; S3 always shows milliseconds.
    let (seconds, _) = text.split_once(['.', 'Z']).unwrap_or((&text, ""));
    format!("{seconds}.{:03}Z", ms.rem_euclid(1000))
}

/// An HTTP date (`Last-Modified`) for a millisecond timestamp.
#[must_use]
pub fn http_date_ms(ms: i64) -> HeaderValue {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    HeaderValue::from_str(&httpdate::fmt_http_date(time)).expect("HTTP dates are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_millisecond_precision() {
        assert_eq!(iso8601_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            http_date_ms(1_700_000_000_999),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
    }
}
