//! One preview request: route, authenticate, make the preview on a blocking thread, answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use tracing::Instrument;
use vault::Engine;

use super::error::PreviewError;
use super::thumbnail::ImageLimits;
use super::{PreviewConfig, auth, source, text, thumbnail};

/// Thumbnail edge when the request names none.
const DEFAULT_THUMBNAIL_SIZE: u32 = 256;
/// The smallest and largest thumbnail edges; requests outside are clamped.
const THUMBNAIL_SIZES: (u32, u32) = (16, 1024);
/// Excerpt length when the request names none.
const DEFAULT_EXCERPT_BYTES: usize = 4096;
/// The longest excerpt; longer requests are clamped.
const MAX_EXCERPT_BYTES: usize = 65_536;

/// What every request shares.
pub struct Shared {
    pub engine: Arc<Engine>,
    pub config: PreviewConfig,
    /// Previews being made at once; each holds a source object and a decoded image in memory.
    pub renders: tokio::sync::Semaphore,
    next_request: AtomicU64,
}

impl Shared {
    pub fn new(engine: Arc<Engine>, config: PreviewConfig) -> Self {
        let renders = tokio::sync::Semaphore::new(config.max_concurrent_previews.max(1));
        Self {
            engine,
            config,
            renders,
            next_request: AtomicU64::new(1),
        }
    }
}

/// The previews offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Thumbnail,
    Text,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Thumbnail => "thumbnail",
            Self::Text => "text",
        }
    }
}

/// A routed request: which preview of which object.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    kind: Kind,
    bucket: String,
    key: String,
}

/// Serves one request; every failure becomes its JSON answer here.
pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let id = shared.next_request.fetch_add(1, Ordering::Relaxed);
    let span = tracing::debug_span!(
        "preview",
        request_id = id,
        op = tracing::field::Empty,
        bucket = tracing::field::Empty,
        key = tracing::field::Empty,
    );
    let (parts, _body) = request.into_parts();
    let outcome = dispatch(&shared, &parts).instrument(span.clone()).await;
    let response = match outcome {
        Ok(response) => response,
        Err(error) => {
            let _entered = span.enter();
            if error.is_internal() {
                tracing::error!(error = %ErrorChain(&error), "preview failed");
            } else {
                let status = error.status_and_code().0.as_u16();
                tracing::debug!(status, error = %error, "preview refused");
            }
            error.into_response()
        }
    };
    with_common_headers(response)
}

async fn dispatch(shared: &Arc<Shared>, parts: &Parts) -> Result<Response, PreviewError> {
    let target = route(parts.uri.path())?;
    let span = tracing::Span::current();
    span.record("op", target.kind.name());
    span.record("bucket", target.bucket.as_str());
    span.record("key", target.key.as_str());
    if parts.method != Method::GET {
        return Err(PreviewError::MethodNotAllowed);
    }
    let access_key = auth::authenticate(&shared.engine, parts).await?;
    tracing::debug!(%access_key, "request authenticated");

    let query = s3::router::parse_query(parts.uri.query());
    let response = match target.kind {
        Kind::Thumbnail => {
            let size = thumbnail_size(s3::router::query_value(&query, "size"))?;
            thumbnail(shared, target, size).await?
        }
        Kind::Text => {
            let bytes = excerpt_bytes(s3::router::query_value(&query, "bytes"))?;
            text(shared, target, bytes).await?
        }
    };
    tracing::debug!(status = response.status().as_u16(), "preview served");
    Ok(response)
}

/// `/thumbnail/{bucket}/{key...}` or `/text/{bucket}/{key...}`, percent-decoded.
fn route(path: &str) -> Result<Target, PreviewError> {
    let (kind, rest) = if let Some(rest) = path.strip_prefix("/thumbnail/") {
        (Kind::Thumbnail, rest)
    } else if let Some(rest) = path.strip_prefix("/text/") {
        (Kind::Text, rest)
    } else {
        return Err(PreviewError::NoSuchRoute);
    };
    let Some((bucket, key)) = rest.split_once('/') else {
        return Err(PreviewError::NoSuchRoute);
    };
    if bucket.is_empty() || key.is_empty() {
        return Err(PreviewError::NoSuchRoute);
    }
    let decode = |raw: &str| {
        percent_decode_str(raw)
            .decode_utf8()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| PreviewError::BadRequest("the path is not valid UTF-8".to_owned()))
    };
    Ok(Target {
        kind,
        bucket: decode(bucket)?,
        key: decode(key)?,
    })
}

fn thumbnail_size(value: Option<&str>) -> Result<u32, PreviewError> {
    let Some(value) = value else {
        return Ok(DEFAULT_THUMBNAIL_SIZE);
    };
    let size: u64 = value.trim().parse().map_err(|_| {
        PreviewError::BadRequest(format!(
            "size must be a whole number of pixels ({} to {})",
            THUMBNAIL_SIZES.0, THUMBNAIL_SIZES.1
        ))
    })?;
    let (min, max) = THUMBNAIL_SIZES;
    Ok(u32::try_from(size).unwrap_or(max).clamp(min, max))
}

fn excerpt_bytes(value: Option<&str>) -> Result<usize, PreviewError> {
    let Some(value) = value else {
        return Ok(DEFAULT_EXCERPT_BYTES);
    };
    let bytes: u64 = value.trim().parse().map_err(|_| {
        PreviewError::BadRequest(format!(
            "bytes must be a whole number (1 to {MAX_EXCERPT_BYTES})"
        ))
    })?;
    Ok(usize::try_from(bytes)
        .unwrap_or(MAX_EXCERPT_BYTES)
        .clamp(1, MAX_EXCERPT_BYTES))
}

async fn thumbnail(
    shared: &Arc<Shared>,
    target: Target,
    size: u32,
) -> Result<Response, PreviewError> {
    let limits = ImageLimits {
        max_source_bytes: shared.config.max_source_bytes,
        max_pixels: shared.config.max_pixels,
    };
    let jpeg = render(shared, move |engine| {
        let reader = source::open(engine, &target.bucket, &target.key)?;
        thumbnail::from_object(&reader, size, limits)
    })
    .await?;
    Ok(ok_response("image/jpeg", jpeg))
}

async fn text(
    shared: &Arc<Shared>,
    target: Target,
    bytes: usize,
) -> Result<Response, PreviewError> {
    let excerpt = render(shared, move |engine| {
        let reader = source::open(engine, &target.bucket, &target.key)?;
        text::from_object(&reader, bytes)
    })
    .await?;
    let mut response = ok_response("text/plain; charset=utf-8", excerpt.text.into_bytes());
    response.headers_mut().insert(
        "x-vh-truncated",
        HeaderValue::from_static(if excerpt.truncated { "true" } else { "false" }),
    );
    Ok(response)
}

/// Runs `make` on a blocking thread once a render slot is free, so that memory stays bounded
/// by `max_concurrent_previews` whatever the number of clients.
async fn render<T: Send + 'static>(
    shared: &Arc<Shared>,
    make: impl FnOnce(&Engine) -> Result<T, PreviewError> + Send + 'static,
) -> Result<T, PreviewError> {
    let _slot = shared
        .renders
        .acquire()
        .await
        .map_err(|_| PreviewError::Busy)?;
    let engine = Arc::clone(&shared.engine);
    tokio::task::spawn_blocking(move || make(&engine))
        .await
        .map_err(PreviewError::Task)?
}

fn ok_response(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Previews are decrypted content: no cache may keep them (a browser's cache is on disk), and
/// no browser may read an excerpt as anything but plain text.
fn with_common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static("Vaulthalla"));
    response
}

/// Displays an error with all its causes, `a: b: c`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_the_preview_the_bucket_and_the_key() {
        let target = route("/thumbnail/pics/a/b%20c.png").unwrap();
        assert_eq!(
            target,
            Target {
                kind: Kind::Thumbnail,
                bucket: "pics".into(),
                key: "a/b c.png".into()
            }
        );
        assert_eq!(route("/text/docs/readme.md").unwrap().kind, Kind::Text);
        for path in [
            "/",
            "/thumbnail/pics",
            "/thumbnail/pics/",
            "/text//k",
            "/other/b/k",
        ] {
            assert!(
                matches!(route(path), Err(PreviewError::NoSuchRoute)),
                "{path}"
            );
        }
        assert!(matches!(
            route("/text/b/%ff"),
            Err(PreviewError::BadRequest(_))
        ));
    }

    #[test]
    fn sizes_default_and_clamp() {
        assert_eq!(thumbnail_size(None).unwrap(), 256);
        assert_eq!(thumbnail_size(Some("1")).unwrap(), 16);
        assert_eq!(thumbnail_size(Some("99999999999")).unwrap(), 1024);
        assert_eq!(thumbnail_size(Some("300")).unwrap(), 300);
        assert!(thumbnail_size(Some("big")).is_err());
        assert_eq!(excerpt_bytes(None).unwrap(), 4096);
        assert_eq!(excerpt_bytes(Some("0")).unwrap(), 1);
        assert_eq!(excerpt_bytes(Some("1000000")).unwrap(), 65_536);
        assert!(excerpt_bytes(Some("-1")).is_err());
    }
}
