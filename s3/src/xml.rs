//! XML for S3 bodies: a small writer for responses and a parser for the request bodies the
//! gateway takes.
//!
//! Responses are written by hand rather than derived so that element order, the namespace and
//! the empty-element forms are exactly what clients were tested against on AWS.

use quick_xml::escape::escape;

/// The namespace AWS puts on every response document.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// An XML document built element by element.
pub struct XmlWriter {
    out: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    /// A document with the XML declaration written.
    #[must_use]
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    /// Opens the root element with the S3 namespace.
    pub fn open_root(&mut self, name: &str) {
        self.out
            .push_str(&format!("<{name} xmlns=\"{S3_NAMESPACE}\">"));
    }

    /// Opens an element.
    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Opens an element with attributes, values escaped (a root in another namespace, an ACL
    /// `Grantee` with its `xsi:type`).
    pub fn open_with_attributes(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (attribute, value) in attributes {
            self.out
                .push_str(&format!(" {attribute}=\"{}\"", escape(*value)));
        }
        self.out.push('>');
    }

    /// Closes an element.
    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Writes `<name>text</name>` with `text` escaped.
    pub fn element(&mut self, name: &str, text: &str) {
        self.open(name);
        self.out.push_str(&escape(text));
        self.close(name);
    }

    /// The finished document.
    #[must_use]
    pub fn finish(self) -> String {
        self.out
    }
}

/// The text an entity or character reference stands for (`&amp;` → `&`, `&#x0a;` → a newline).
///
/// quick-xml reports references as events of their own, between the text events around them.
///
/// # Errors
/// `MalformedXml` for an unknown entity or an invalid character reference.
pub fn resolve_reference(
    reference: &quick_xml::events::BytesRef<'_>,
) -> Result<String, MalformedXml> {
    if let Some(character) = reference.resolve_char_ref().map_err(|_| MalformedXml)? {
        return Ok(character.to_string());
    }
    let name = reference.decode().map_err(|_| MalformedXml)?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_owned)
        .ok_or(MalformedXml)
}

/// A request body that is not the XML document the operation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedXml;

/// Reads the `LocationConstraint` of a CreateBucket body; an empty body means none.
///
/// # Errors
/// `MalformedXml` when the body is not well-formed XML or has another root element.
pub fn parse_location_constraint(body: &[u8]) -> Result<Option<String>, MalformedXml> {
    use quick_xml::events::Event;

    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut depth = 0usize;
    let mut in_constraint = false;
    let mut constraint = None;
    let mut saw_root = false;
    loop {
        match reader.read_event().map_err(|_| MalformedXml)? {
            Event::Start(start) => {
                let name = start.local_name();
                if depth == 0 {
                    if name.as_ref() != b"CreateBucketConfiguration" || saw_root {
                        return Err(MalformedXml);
                    }
                    saw_root = true;
                }
                in_constraint = depth == 1 && name.as_ref() == b"LocationConstraint";
                depth += 1;
            }
            Event::Empty(empty) if depth == 0 => {
                return if empty.local_name().as_ref() == b"CreateBucketConfiguration" {
                    Ok(None)
                } else {
                    Err(MalformedXml)
                };
            }
            Event::End(_) => {
                depth = depth.checked_sub(1).ok_or(MalformedXml)?;
                in_constraint = false;
            }
            Event::Text(text) if in_constraint => {
                let text = text.xml_content().map_err(|_| MalformedXml)?;
                constraint.get_or_insert_with(String::new).push_str(&text);
            }
            Event::GeneralRef(reference) if in_constraint => {
                constraint
                    .get_or_insert_with(String::new)
                    .push_str(&resolve_reference(&reference)?);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root || depth != 0 {
        return Err(MalformedXml);
    }
    Ok(constraint
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_escapes_text() {
        let mut xml = XmlWriter::new();
        xml.open_root("R");
        xml.element("Key", "a<b>&\"c'");
        xml.close("R");
        let doc = xml.finish();
        assert!(
            doc.contains("<Key>a&lt;b&gt;&amp;&quot;c&apos;</Key>"),
            "{doc}"
        );
    }

    #[test]
    fn writer_escapes_attribute_values() {
        let mut xml = XmlWriter::new();
        xml.open_with_attributes("G", &[("xsi:type", "Canonical\"User"), ("a", "<&>")]);
        xml.close("G");
        assert!(
            xml.finish()
                .ends_with("<G xsi:type=\"Canonical&quot;User\" a=\"&lt;&amp;&gt;\"></G>")
        );
    }

    #[test]
    fn location_constraint_parses_and_rejects_garbage() {
        let body = br#"<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"#;
        assert_eq!(
            parse_location_constraint(body),
            Ok(Some("eu-west-1".to_owned()))
        );
        assert_eq!(parse_location_constraint(b""), Ok(None));
        assert_eq!(
            parse_location_constraint(b"<CreateBucketConfiguration/>"),
            Ok(None)
        );
        assert_eq!(
            parse_location_constraint(b"<Nope></Nope>"),
            Err(MalformedXml)
        );
        assert!(parse_location_constraint(b"<CreateBucketConfiguration>").is_err());
        assert!(parse_location_constraint(b"not xml <<<").is_err());
    }
}
