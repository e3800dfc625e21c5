//! The listener: accepts connections under a cap, gives each request an id and a span, routes
//! it and turns its outcome into a response.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::auth::authenticate_addressed;
use crate::error::{S3Error, S3ErrorCode};
use crate::ops::{bucket, copy, delete_objects, list, multipart, object, probes, versions};
use crate::router::{self, Operation, Target};
use crate::{Gateway, listener};

/// How long open connections get to finish their requests at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves S3 on `listener` until `shutdown` resolves, then lets open requests finish. With
/// `tls` set in the gateway's config, every connection speaks HTTPS.
///
/// # Errors
/// Fails only when accepting connections fails for good.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(gateway.config.max_connections));
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(Arc::clone(&gateway));
    let overloaded = axum::Router::new().fallback(slow_down);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Running out of file descriptors is transient; back off instead of spinning.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let permit = Arc::clone(&slots).try_acquire_owned().ok();
        let service = if permit.is_some() {
            app.clone()
        } else {
            gateway.metrics.refused_connection();
            overloaded.clone()
        };
        let metrics = Arc::clone(&gateway.metrics);
        metrics.connection(1);
        let connection = listener::serve_connection(
            stream,
            peer,
            gateway.config.tls.clone(),
            service,
            graceful.watcher(),
            permit,
        );
        tokio::spawn(async move {
            connection.await;
            metrics.connection(-1);
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some S3 connections were still open at shutdown and were closed");
    }
    Ok(())
}

/// The answer on a connection past `max_connections`: a clean 503 that tells the client to
/// back off, then the connection closes.
async fn slow_down(request: Request) -> Response {
    let request_id = new_request_id();
    let error = S3Error::new(S3ErrorCode::SlowDown, "Please reduce your request rate.");
    let mut response = error_response(
        &error,
        request.uri().path(),
        &request_id,
        request.method() == Method::HEAD,
    );
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn new_request_id() -> String {
    format!("{:016X}", rand::rng().random::<u64>())
}

async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let request_id = new_request_id();
    let span = tracing::debug_span!("s3", request_id = %request_id, op = tracing::field::Empty, bucket = tracing::field::Empty, key = tracing::field::Empty);
    let is_head = request.method() == Method::HEAD;
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let declared_in = content_length(request.headers());
    let (op, result) = dispatch(&gateway, request).instrument(span.clone()).await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            span.in_scope(|| tracing::debug!(code = error.code.as_str(), "request refused"));
            error_response(&error, &path, &request_id, is_head)
        }
    };
    let headers = response.headers_mut();
    let id = HeaderValue::from_str(&request_id).expect("hex request id");
    headers.insert("x-amz-request-id", id.clone());
    headers.insert("x-amz-id-2", id);
    headers.insert(http::header::SERVER, HeaderValue::from_static("Vaulthalla"));
    let metrics = &gateway.metrics;
    metrics.record(
        op.map_or("Unrouted", Operation::name),
        response.status().as_u16(),
        started.elapsed(),
    );
    metrics.add_bytes_in(declared_in);
    if !is_head {
        metrics.add_bytes_out(content_length(response.headers()));
    }
    response
}

/// The `Content-Length` of a message, 0 when absent (bytes of streamed bodies without one are
/// not counted).
fn content_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn error_response(error: &S3Error, resource: &str, request_id: &str, is_head: bool) -> Response {
    let status = error.code.status();
    let body = if is_head {
        Body::empty()
    } else {
        Body::from(error.to_xml(resource, request_id))
    };
    let mut response = Response::builder().status(status);
    if !is_head {
        response = response.header(http::header::CONTENT_TYPE, "application/xml");
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response = response.header(http::header::RETRY_AFTER, "1");
    }
    response.body(body).expect("valid response")
}

/// Routes, authenticates and serves one request; also returns the operation, once known, for
/// the metrics.
async fn dispatch(
    gateway: &Gateway,
    request: Request,
) -> (Option<Operation>, Result<Response, S3Error>) {
    let (parts, body) = request.into_parts();
    let (target, query, op) = match resolve(gateway, &parts) {
        Ok(routed) => routed,
        Err(error) => return (None, Err(error)),
    };
    let span = tracing::Span::current();
    span.record("op", op.name());
    if let Some(bucket) = &target.bucket {
        span.record("bucket", bucket.as_str());
    }
    if let Some(key) = &target.key {
        span.record("key", key.as_str());
    }
    let result = authenticate_and_route(gateway, op, &target, &parts, &query, body).await;
    tracing::debug!(
        status = result
            .as_ref()
            .map_or_else(|e| e.code.status().as_u16(), |r| r.status().as_u16()),
        "request done"
    );
    (Some(op), result)
}

/// Headers asking for features the gateway does not have; accepting them silently would
/// promise protection (a customer key, a retention lock) that is not there.
const UNSUPPORTED_HEADERS: &[&str] = &[
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "x-amz-tagging",
    "x-amz-website-redirect-location",
];

/// The first header of a request that asks for a feature the gateway does not offer. Server-side
/// encryption with a node-managed key (`AES256`) is what the node always does, so only
/// `aws:kms` is refused.
fn unsupported_header(headers: &http::HeaderMap) -> Option<&'static str> {
    if let Some(found) = UNSUPPORTED_HEADERS
        .iter()
        .find(|name| headers.contains_key(**name))
    {
        return Some(found);
    }
    let sse = headers
        .get("x-amz-server-side-encryption")
        .and_then(|v| v.to_str().ok());
    sse.filter(|v| !v.eq_ignore_ascii_case("AES256"))
        .map(|_| "x-amz-server-side-encryption")
}

/// Where a request goes: its target, its decoded query and its operation.
type Routed = (Target, Vec<(String, String)>, Operation);

fn resolve(gateway: &Gateway, parts: &http::request::Parts) -> Result<Routed, S3Error> {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str));
    let target = router::resolve_target(host, parts.uri.path(), &gateway.config.addressing)?;
    let query = router::parse_query(parts.uri.query());
    let is_copy = parts.headers.contains_key("x-amz-copy-source");
    let op = router::operation(&parts.method, &target, &query, is_copy)?;
    Ok((target, query, op))
}

async fn authenticate_and_route(
    gateway: &Gateway,
    op: Operation,
    target: &Target,
    parts: &http::request::Parts,
    query: &[(String, String)],
    body: Body,
) -> Result<Response, S3Error> {
    if let Some(header) = unsupported_header(&parts.headers) {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            format!(
                "A header you provided implies functionality that is not implemented: {header}"
            ),
        )
        .with_field("Header", header));
    }
    let host_bucket = target.bucket.as_deref().filter(|_| target.bucket_in_host);
    let auth = authenticate_addressed(
        &gateway.engine,
        parts,
        gateway.config.require_sigv4,
        host_bucket,
    )
    .await?;
    route(gateway, op, target, parts, query, body, auth).await
}

async fn route(
    gateway: &Gateway,
    op: Operation,
    target: &Target,
    parts: &http::request::Parts,
    query: &[(String, String)],
    body: Body,
    auth: crate::auth::Authenticated,
) -> Result<Response, S3Error> {
    if let Operation::NotImplemented(what) = op {
        return Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            format!("The '{what}' feature is not offered by this gateway."),
        ));
    }
    if op == Operation::ListBuckets {
        return bucket::list_buckets(gateway).await;
    }
    let name = target
        .bucket
        .as_deref()
        .expect("bucket operations have a bucket");
    if op == Operation::CreateBucket {
        return bucket::create_bucket(gateway, name, body).await;
    }
    let bucket_row = lookup_bucket(gateway, name).await?;
    match op {
        Operation::HeadBucket => Ok(bucket::head_bucket(gateway)),
        Operation::DeleteBucket => bucket::delete_bucket(gateway, name).await,
        Operation::GetBucketLocation => Ok(bucket::get_bucket_location(gateway)),
        Operation::GetBucketVersioning => Ok(bucket::get_bucket_versioning()),
        Operation::ListObjectsV2 => list::list_objects_v2(gateway, &bucket_row, query).await,
        Operation::ListObjects => list::list_objects(gateway, &bucket_row, query).await,
        Operation::PutObject => {
            object::put_object(gateway, &bucket_row, target, parts, body, auth).await
        }
        Operation::GetObject => {
            object::get_object(gateway, &bucket_row, target, parts, query).await
        }
        Operation::HeadObject => {
            object::head_object(gateway, &bucket_row, target, parts, query).await
        }
        Operation::DeleteObject => object::delete_object(gateway, &bucket_row, target).await,
        Operation::CopyObject => copy::copy_object(gateway, &bucket_row, target, parts).await,
        Operation::CreateMultipartUpload => {
            multipart::create_multipart_upload(gateway, &bucket_row, target, parts).await
        }
        Operation::UploadPart => {
            multipart::upload_part(gateway, &bucket_row, target, parts, query, body, auth).await
        }
        Operation::UploadPartCopy => {
            copy::upload_part_copy(gateway, &bucket_row, target, parts, query).await
        }
        Operation::CompleteMultipartUpload => {
            multipart::complete_multipart_upload(gateway, &bucket_row, target, parts, query, body)
                .await
        }
        Operation::AbortMultipartUpload => {
            multipart::abort_multipart_upload(gateway, &bucket_row, target, query).await
        }
        Operation::ListMultipartUploads => {
            multipart::list_multipart_uploads(gateway, &bucket_row, query).await
        }
        Operation::ListParts => multipart::list_parts(gateway, &bucket_row, target, query).await,
        Operation::DeleteObjects => {
            delete_objects::delete_objects(gateway, &bucket_row, parts, body, auth).await
        }
        Operation::ListObjectVersions => {
            versions::list_object_versions(gateway, &bucket_row, query).await
        }
        Operation::GetSubresource(probe) => {
            probes::get_subresource(gateway, &bucket_row, target, probe).await
        }
        // Handled above, before the bucket lookup.
        Operation::ListBuckets | Operation::CreateBucket | Operation::NotImplemented(_) => Err(
            S3Error::new(S3ErrorCode::InternalError, "unrouted operation"),
        ),
    }
}

async fn lookup_bucket(gateway: &Gateway, name: &str) -> Result<vault::BucketRow, S3Error> {
    let engine = Arc::clone(&gateway.engine);
    let name = name.to_owned();
    tokio::task::spawn_blocking(move || engine.bucket(&name))
        .await
        .map_err(|err| S3Error::internal(&err))?
        .map_err(S3Error::from)
}
