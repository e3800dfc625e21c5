//! DeleteObjects (`POST /bucket?delete`): up to 1000 keys in one request.
//!
//! The body is a `<Delete>` document; each key is deleted as DeleteObject deletes it (a missing
//! key, or one that cannot be a path, counts as deleted) and reported in a `<DeleteResult>`,
//! successes left out in quiet mode. A failure on one key does not stop the others.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use quick_xml::events::{BytesRef, Event};
use vault::{BucketRow, Engine, ObjectKey};

use super::bucket::xml_response;
use crate::Gateway;
use crate::auth::Authenticated;
use crate::error::{S3Error, S3ErrorCode};
use crate::xml::{MalformedXml, XmlWriter};
use crate::xml_body::{self, Integrity};

/// The most keys one request may name, as in S3.
pub const MAX_KEYS: usize = 1000;
/// The largest `<Delete>` document read: 1000 keys of 1024 bytes each, with room for escapes.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// One `<Object>` of the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectToDelete {
    /// The key, entities decoded.
    pub key: String,
    /// The version asked for; only `null`, the version of every object here, can exist.
    pub version_id: Option<String>,
}

/// A parsed `<Delete>` document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteRequest {
    /// Report only failures.
    pub quiet: bool,
    /// The keys, in request order.
    pub objects: Vec<ObjectToDelete>,
}

/// What happened to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Gone (or never there).
    Deleted(ObjectToDelete),
    /// Not deleted, with the S3 code and message.
    Failed(ObjectToDelete, S3ErrorCode, String),
}

/// `POST /bucket?delete`.
///
/// # Errors
/// `MalformedXML` for a body that is not a `<Delete>` of 1 to 1000 keys, the integrity checks of
/// [`xml_body::read`]; failures on single keys are reported inside the result instead.
pub async fn delete_objects(
    gateway: &Gateway,
    bucket: &BucketRow,
    parts: &Parts,
    body: Body,
    auth: Authenticated,
) -> Result<Response, S3Error> {
    let body = xml_body::read(body, &parts.headers, auth, MAX_BODY, Integrity::Required).await?;
    let request = parse_delete(&body).map_err(|MalformedXml| malformed())?;

    let engine = Arc::clone(&gateway.engine);
    let vault = bucket.vault;
    let objects = request.objects;
    let outcomes = tokio::task::spawn_blocking(move || {
        objects
            .into_iter()
            .map(|object| delete_one(&engine, vault, object))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|err| S3Error::internal(&err))?;
    Ok(xml_response(delete_result(&outcomes, request.quiet)))
}

fn malformed() -> S3Error {
    S3Error::new(
        S3ErrorCode::MalformedXML,
        "The XML you provided was not well-formed or did not validate against our published schema",
    )
}

/// Deletes one key the way DeleteObject does.
fn delete_one(engine: &Engine, vault: vault::VaultId, object: ObjectToDelete) -> Outcome {
    if object.version_id.as_deref().is_some_and(|v| v != "null") {
        return Outcome::Failed(
            object,
            S3ErrorCode::NoSuchVersion,
            "The specified version does not exist.".to_owned(),
        );
    }
    // A key that cannot be a path names no object, so deleting it succeeds as for any absent key.
    let Ok(key) = ObjectKey::parse(&object.key) else {
        return Outcome::Deleted(object);
    };
    match engine.delete_object(vault, &key) {
        Ok(_) => Outcome::Deleted(object),
        Err(err) => {
            let error = S3Error::from(err);
            Outcome::Failed(object, error.code, error.message)
        }
    }
}

/// The `<DeleteResult>` document, entries in request order.
#[must_use]
pub fn delete_result(outcomes: &[Outcome], quiet: bool) -> String {
    let mut xml = XmlWriter::new();
    xml.open_root("DeleteResult");
    for outcome in outcomes {
        match outcome {
            Outcome::Deleted(_) if quiet => {}
            Outcome::Deleted(object) => {
                xml.open("Deleted");
                xml.element("Key", &object.key);
                if let Some(version_id) = &object.version_id {
                    xml.element("VersionId", version_id);
                }
                xml.close("Deleted");
            }
            Outcome::Failed(object, code, message) => {
                xml.open("Error");
                xml.element("Key", &object.key);
                if let Some(version_id) = &object.version_id {
                    xml.element("VersionId", version_id);
                }
                xml.element("Code", code.as_str());
                xml.element("Message", message);
                xml.close("Error");
            }
        }
    }
    xml.close("DeleteResult");
    xml.finish()
}

/// The field whose text is being collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Quiet,
    Key,
    VersionId,
}

/// Parser state: where in the document the reader is and what it has collected.
#[derive(Default)]
struct Parser {
    /// Local names of the open elements.
    path: Vec<Vec<u8>>,
    saw_root: bool,
    quiet: Option<bool>,
    objects: Vec<ObjectToDelete>,
    key: Option<String>,
    version_id: Option<String>,
    text: String,
}

impl Parser {
    /// The field the current element holds, if it is one the request is made of.
    fn field(&self) -> Option<Field> {
        match self.path.iter().map(Vec::as_slice).collect::<Vec<_>>()[..] {
            [b"Delete", b"Quiet"] => Some(Field::Quiet),
            [b"Delete", b"Object", b"Key"] => Some(Field::Key),
            [b"Delete", b"Object", b"VersionId"] => Some(Field::VersionId),
            _ => None,
        }
    }

    fn open(&mut self, name: &[u8]) -> Result<(), MalformedXml> {
        if self.path.is_empty() {
            if name != b"Delete" || self.saw_root {
                return Err(MalformedXml);
            }
            self.saw_root = true;
        }
        self.path.push(name.to_vec());
        if self.path.len() == 2 && name == b"Object" {
            self.key = None;
            self.version_id = None;
        }
        self.text.clear();
        Ok(())
    }

    fn close(&mut self) -> Result<(), MalformedXml> {
        let field = self.field();
        let text = std::mem::take(&mut self.text);
        match field {
            Some(Field::Quiet) => self.quiet = Some(parse_bool(&text)?),
            Some(Field::Key) => self.key = Some(text),
            Some(Field::VersionId) => self.version_id = Some(text),
            None => {}
        }
        let name = self.path.pop().ok_or(MalformedXml)?;
        if self.path.len() == 1 && name == b"Object" {
            let key = self.key.take().ok_or(MalformedXml)?;
            if self.objects.len() == MAX_KEYS {
                return Err(MalformedXml);
            }
            self.objects.push(ObjectToDelete {
                key,
                version_id: self.version_id.take(),
            });
        }
        Ok(())
    }

    fn text(&mut self, text: &str) {
        if self.field().is_some() {
            self.text.push_str(text);
        }
    }

    fn reference(&mut self, reference: &BytesRef<'_>) -> Result<(), MalformedXml> {
        let resolved = crate::xml::resolve_reference(reference)?;
        self.text(&resolved);
        Ok(())
    }
}

fn parse_bool(text: &str) -> Result<bool, MalformedXml> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("true") => Ok(true),
        t if t.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(MalformedXml),
    }
}

/// Parses a `<Delete>` document. Keys keep their exact text, whitespace included, with entity
/// and character references decoded; elements S3 added later (`ETag`, `Size`, ...) are
/// ignored.
///
/// # Errors
/// `MalformedXml` for a body that is not well-formed, has another root, an `<Object>` without
/// a `<Key>`, a `<Quiet>` that is not a boolean, or no key or more than [`MAX_KEYS`].
pub fn parse_delete(body: &[u8]) -> Result<DeleteRequest, MalformedXml> {
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut parser = Parser::default();
    loop {
        match reader.read_event().map_err(|_| MalformedXml)? {
            Event::Start(start) => parser.open(start.local_name().as_ref())?,
            Event::Empty(empty) => {
                parser.open(empty.local_name().as_ref())?;
                parser.close()?;
            }
            Event::End(_) => parser.close()?,
            Event::Text(text) => parser.text(&text.xml10_content().map_err(|_| MalformedXml)?),
            Event::CData(data) => parser.text(&data.xml10_content().map_err(|_| MalformedXml)?),
            Event::GeneralRef(reference) => parser.reference(&reference)?,
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !parser.saw_root || !parser.path.is_empty() || parser.objects.is_empty() {
        return Err(MalformedXml);
    }
    Ok(DeleteRequest {
        quiet: parser.quiet.unwrap_or(false),
        objects: parser.objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, version_id: Option<&str>) -> ObjectToDelete {
        ObjectToDelete {
            key: key.to_owned(),
            version_id: version_id.map(str::to_owned),
        }
    }

    #[test]
    fn parses_keys_versions_and_quiet() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
            <Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Object><Key>a.txt</Key></Object>
              <Object><Key>dir/b</Key><VersionId>null</VersionId><ETag>"x"</ETag></Object>
              <Quiet>true</Quiet>
            </Delete>"#;
        let request = parse_delete(body).unwrap();
        assert!(request.quiet);
        assert_eq!(
            request.objects,
            vec![object("a.txt", None), object("dir/b", Some("null"))]
        );
        let request = parse_delete(b"<Delete><Object><Key>k</Key></Object></Delete>").unwrap();
        assert!(!request.quiet);
    }

    #[test]
    fn keys_decode_entities_and_keep_whitespace() {
        let body = b"<Delete><Object><Key> a&amp;b&lt;&#x0a;c&#13;&#233;\t</Key></Object>\
                     <Object><Key><![CDATA[x<y]]></Key></Object>\
                     <Object><Key/></Object></Delete>";
        let request = parse_delete(body).unwrap();
        assert_eq!(
            request.objects,
            vec![
                object(" a&b<\nc\r\u{e9}\t", None),
                object("x<y", None),
                object("", None)
            ]
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        for body in [
            &b""[..],
            b"<Delete></Delete>",
            b"<Delete><Quiet>true</Quiet></Delete>",
            b"<Delete><Object><VersionId>null</VersionId></Object></Delete>",
            b"<Delete><Quiet>yes</Quiet><Object><Key>k</Key></Object></Delete>",
            b"<Other><Object><Key>k</Key></Object></Other>",
            b"<Delete><Object><Key>k</Key></Object>",
            b"<Delete><Object><Key>k</Object></Key></Delete>",
            b"<Delete><Object><Key>&unknown;</Key></Object></Delete>",
            b"<Delete><Object><Key>k</Key></Object></Delete><Delete/>",
        ] {
            assert_eq!(parse_delete(body), Err(MalformedXml), "{body:?}");
        }
    }

    #[test]
    fn at_most_a_thousand_keys() {
        let document = |n: usize| {
            let objects = "<Object><Key>k</Key></Object>".repeat(n);
            format!("<Delete>{objects}</Delete>")
        };
        assert_eq!(
            parse_delete(document(MAX_KEYS).as_bytes())
                .unwrap()
                .objects
                .len(),
            MAX_KEYS
        );
        assert_eq!(
            parse_delete(document(MAX_KEYS + 1).as_bytes()),
            Err(MalformedXml)
        );
    }

    #[test]
    fn result_lists_outcomes_in_order_and_hides_successes_when_quiet() {
        let outcomes = vec![
            Outcome::Deleted(object("a&b", None)),
            Outcome::Failed(
                object("c", Some("v1")),
                S3ErrorCode::NoSuchVersion,
                "The specified version does not exist.".to_owned(),
            ),
            Outcome::Deleted(object("d", Some("null"))),
        ];
        let head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                    <DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
        let error = "<Error><Key>c</Key><VersionId>v1</VersionId><Code>NoSuchVersion</Code>\
                     <Message>The specified version does not exist.</Message></Error>";
        assert_eq!(
            delete_result(&outcomes, false),
            format!(
                "{head}<Deleted><Key>a&amp;b</Key></Deleted>{error}\
                 <Deleted><Key>d</Key><VersionId>null</VersionId></Deleted></DeleteResult>"
            )
        );
        assert_eq!(
            delete_result(&outcomes, true),
            format!("{head}{error}</DeleteResult>")
        );
    }
}
