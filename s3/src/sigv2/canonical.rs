//! The SigV2 string to sign: the exact bytes a signature covers.
//!
//! ```text
//! HTTP-Verb \n Content-MD5 \n Content-Type \n Date (or Expires) \n
//! CanonicalizedAmzHeaders CanonicalizedResource
//! ```
//!
//! Clients disagree on a few details the specification leaves open, so [`strings_to_sign`]
//! yields every variant a known client produces for the request as received; each decodes to the
//! same request, so accepting any of them never lets a signature cover a different request:
//!
//! - with `x-amz-date` present, the Date line is empty (the S3 rule, s3cmd, boto 2) or, when a
//!   `Date` header came too, its value (botocore and MinIO keep it);
//! - a bucket-only path-style path `/bucket` is signed as sent or as `/bucket/` (botocore);
//! - a sub-resource sent with an empty value (`uploads=`) is signed as sent (botocore) or bare
//!   (`uploads`, minio-go).

use std::collections::BTreeMap;

use http::header::{CONTENT_TYPE, DATE};
use http::request::Parts;
use percent_encoding::percent_decode_str;

use super::parse::expires_param;
use super::{SUBRESOURCES, V2Kind, V2Request};

const CONTENT_MD5: &str = "content-md5";
const X_AMZ_DATE: &str = "x-amz-date";
const AMZ_PREFIX: &str = "x-amz-";

/// How a sub-resource with an empty value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EmptyValue {
    /// As the client sent it: `uploads` stays `uploads`, `uploads=` stays `uploads=`.
    AsSent,
    /// Always bare: `uploads=` becomes `uploads`.
    Bare,
}

/// Every string to sign the request may have been signed as, most common first, deduplicated.
pub(super) fn strings_to_sign(req: &V2Request, parts: &Parts) -> Vec<Vec<u8>> {
    let presigned = matches!(req.kind, V2Kind::Presigned { .. });
    let mut head = format!("{}\n", parts.method.as_str()).into_bytes();
    head.extend_from_slice(header_bytes(parts, CONTENT_MD5));
    head.push(b'\n');
    head.extend_from_slice(header_bytes(parts, CONTENT_TYPE.as_str()));
    head.push(b'\n');

    let amz_headers = canonical_amz_headers(parts, presigned);
    let resources = canonical_resources(parts, req.virtual_host_bucket.as_deref());

    let mut candidates: Vec<Vec<u8>> = Vec::new();
    for date in date_lines(req, parts) {
        for resource in &resources {
            let mut candidate = head.clone();
            candidate.extend_from_slice(&date);
            candidate.push(b'\n');
            candidate.extend_from_slice(&amz_headers);
            candidate.extend_from_slice(resource.as_bytes());
            if !candidates.contains(&candidate) {
                candidates.push(candidate);
            }
        }
    }
    candidates
}

/// The first value of a header without surrounding blanks, or nothing.
fn header_bytes<'a>(parts: &'a Parts, name: &str) -> &'a [u8] {
    parts
        .headers
        .get(name)
        .map_or(&[][..], |value| value.as_bytes().trim_ascii())
}

/// The Date lines to try: the `Expires` value as sent for a presigned URL; for a header-signed
/// request the `Date` header, or with `x-amz-date` (which then goes in the amz headers) an empty
/// line and, for botocore, the `Date` header.
fn date_lines(req: &V2Request, parts: &Parts) -> Vec<Vec<u8>> {
    if let V2Kind::Presigned { .. } = req.kind {
        let expires = expires_param(parts.uri.query().unwrap_or("")).unwrap_or_default();
        return vec![expires.into_bytes()];
    }

    let date = header_bytes(parts, DATE.as_str()).to_vec();
    if !parts.headers.contains_key(X_AMZ_DATE) {
        return vec![date];
    }
    if parts.headers.contains_key(DATE) {
        vec![Vec::new(), date]
    } else {
        vec![Vec::new()]
    }
}

/// `name:value\n` for every `x-amz-*` header, names lower case and sorted, values trimmed and
/// repeated headers joined with `,`.
///
/// A presigned URL also carries the `x-amz-*` headers it was signed with as query parameters
/// (botocore moves them there); a header sent with the request takes precedence over the
/// parameter of the same name. Its `x-amz-date` header is not signed (S3 ignores it for query
/// authentication).
fn canonical_amz_headers(parts: &Parts, presigned: bool) -> Vec<u8> {
    let mut headers: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if !name.starts_with(AMZ_PREFIX) || (presigned && name == X_AMZ_DATE) {
            continue;
        }
        headers
            .entry(name.to_owned())
            .or_default()
            .push(value.as_bytes().trim_ascii().to_vec());
    }

    if presigned {
        let mut from_query: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for (name, value) in query_pairs(parts.uri.query().unwrap_or("")) {
            let name = name.to_ascii_lowercase();
            if name.starts_with(AMZ_PREFIX) && !headers.contains_key(&name) {
                let value = value.unwrap_or_default();
                from_query
                    .entry(name)
                    .or_default()
                    .push(value.trim().as_bytes().to_vec());
            }
        }
        headers.extend(from_query);
    }

    let mut block = Vec::new();
    for (name, values) in headers {
        block.extend_from_slice(name.as_bytes());
        block.push(b':');
        block.extend_from_slice(&values.join(&b","[..]));
        block.push(b'\n');
    }
    block
}

/// The canonicalized resources to try: the path (behind `/bucket` for a virtual-hosted
/// request) plus the sorted sub-resources.
fn canonical_resources(parts: &Parts, virtual_host_bucket: Option<&str>) -> Vec<String> {
    let raw_path = match parts.uri.path() {
        "" => "/",
        path => path,
    };
    let mut paths = Vec::with_capacity(2);
    match virtual_host_bucket {
        Some(bucket) => paths.push(format!("/{bucket}{raw_path}")),
        None => {
            paths.push(raw_path.to_owned());
            let bucket_only = raw_path.len() > 1 && !raw_path[1..].contains('/');
            if bucket_only {
                paths.push(format!("{raw_path}/"));
            }
        }
    }

    let subresources = subresources(parts.uri.query().unwrap_or(""));
    let forms = if subresources
        .iter()
        .any(|(_, value)| value.as_deref() == Some(""))
    {
        vec![EmptyValue::AsSent, EmptyValue::Bare]
    } else {
        vec![EmptyValue::AsSent]
    };

    let mut resources = Vec::with_capacity(paths.len() * forms.len());
    for path in &paths {
        for form in &forms {
            let query = subresource_query(&subresources, *form);
            resources.push(format!("{path}{query}"));
        }
    }
    resources
}

/// The sub-resources of the query, decoded as the router reads them, sorted by name (stable, so
/// repeated names keep their order).
fn subresources(raw_query: &str) -> Vec<(String, Option<String>)> {
    let mut found: Vec<(String, Option<String>)> = query_pairs(raw_query)
        .filter(|(name, _)| SUBRESOURCES.contains(&name.as_str()))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// `?a&b=v` for the sub-resources, or nothing when there are none.
fn subresource_query(subresources: &[(String, Option<String>)], form: EmptyValue) -> String {
    if subresources.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = subresources
        .iter()
        .map(|(name, value)| match (value.as_deref(), form) {
            (None, _) | (Some(""), EmptyValue::Bare) => name.clone(),
            (Some(value), _) => format!("{name}={value}"),
        })
        .collect();
    format!("?{}", pairs.join("&"))
}

/// Query pairs decoded as the router decodes them (`+` is a space), with `None` for a name sent
/// without `=`.
fn query_pairs(raw_query: &str) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (decode(name), Some(decode(value))),
            None => (decode(pair), None),
        })
}

fn decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str) -> Parts {
        http::Request::builder()
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn resources(uri: &str, bucket: Option<&str>) -> Vec<String> {
        canonical_resources(&parts(uri), bucket)
    }

    #[test]
    fn resources_keep_the_raw_path_and_sorted_decoded_subresources() {
        assert_eq!(resources("/", None), ["/"]);
        assert_eq!(resources("/b/k%20%C3%BC?prefix=a", None), ["/b/k%20%C3%BC"]);
        assert_eq!(resources("/b", None), ["/b", "/b/"]);
        assert_eq!(resources("/b/", None), ["/b/"]);
        assert_eq!(
            resources("/b/k?uploadId=x%20y%2Fz&partNumber=1&list-type=2", None),
            ["/b/k?partNumber=1&uploadId=x y/z"]
        );
        assert_eq!(
            resources("/b/k?versionId=v+1&acl", None),
            ["/b/k?acl&versionId=v 1"]
        );
        assert_eq!(resources("/k", Some("bkt")), ["/bkt/k"]);
        assert_eq!(resources("/?acl", Some("bkt")), ["/bkt/?acl"]);
        assert_eq!(
            resources("/b/k?uploads=", None),
            ["/b/k?uploads=", "/b/k?uploads"]
        );
        assert_eq!(
            resources("/b/k?%61cl&Signature=s&X-Amz-Date=1", None),
            ["/b/k?acl"]
        );
    }

    #[test]
    fn amz_headers_are_sorted_trimmed_and_joined() {
        let (mut parts, ()) = http::Request::builder()
            .uri("/b/k?x-amz-meta-q=1&X-Amz-Meta-B=from%20query&x-amz-security-token=t")
            .header("x-amz-meta-b", " two ")
            .header("X-Amz-Meta-A", "1")
            .header("x-amz-meta-b", "one  words")
            .header("x-amz-date", "d")
            .header("content-type", "text/plain")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(
            String::from_utf8(canonical_amz_headers(&parts, false)).unwrap(),
            "x-amz-date:d\nx-amz-meta-a:1\nx-amz-meta-b:two,one  words\n"
        );
        assert_eq!(
            String::from_utf8(canonical_amz_headers(&parts, true)).unwrap(),
            "x-amz-meta-a:1\nx-amz-meta-b:two,one  words\nx-amz-meta-q:1\n\
             x-amz-security-token:t\n"
        );
        parts.headers.clear();
        assert!(canonical_amz_headers(&parts, false).is_empty());
    }
}
