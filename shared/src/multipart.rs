//! `multipart/form-data` bodies (RFC 7578, framed as RFC 2046 §5.1.1 says): what a browser sends
//! for a form with a file input. Only what the console's upload needs: each part's field name,
//! file name and bytes.

/// One part of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The `name` of its `Content-Disposition: form-data`.
    pub name: String,
    /// The `filename`, for a file input.
    pub filename: Option<String>,
    /// The part's bytes, as sent.
    pub data: Vec<u8>,
}

/// Why a body is not `multipart/form-data`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the Content-Type names no multipart boundary")]
    NoBoundary,
    #[error("the body is not framed by its multipart boundary")]
    Framing,
    #[error("a part has no Content-Disposition: form-data with a name")]
    Disposition,
}

/// The boundary of a `multipart/form-data` Content-Type (RFC 2046 §5.1.1: 1-70 characters,
/// possibly quoted).
pub fn boundary(content_type: &str) -> Option<&str> {
    let mut parts = content_type.split(';');
    let essence = parts.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts
        .filter_map(|parameter| parameter.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| (1..=70).contains(&value.len()))
}

/// The parts of `body`, framed by `boundary`.
pub fn parse(boundary: &str, body: &[u8]) -> Result<Vec<Part>, MultipartError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // A preamble may come before the first delimiter (RFC 2046); the delimiter starts a line.
    let start = find(body, delimiter).ok_or(MultipartError::Framing)?;
    if start != 0 && !body[..start].ends_with(b"\r\n") {
        return Err(MultipartError::Framing);
    }
    let mut rest = &body[start + delimiter.len()..];
    let next_delimiter = [b"\r\n".as_slice(), delimiter].concat();
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or(MultipartError::Framing)?;
        let end = find(rest, &next_delimiter).ok_or(MultipartError::Framing)?;
        parts.push(part(&rest[..end])?);
        rest = &rest[end + next_delimiter.len()..];
    }
}

fn part(raw: &[u8]) -> Result<Part, MultipartError> {
    let split = find(raw, b"\r\n\r\n").ok_or(MultipartError::Framing)?;
    let headers = String::from_utf8_lossy(&raw[..split]);
    let disposition = headers
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-disposition"))
        .map(|(_, value)| value.trim())
        .ok_or(MultipartError::Disposition)?;
    let mut fields = disposition.split(';').map(str::trim);
    if !fields
        .next()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("form-data"))
    {
        return Err(MultipartError::Disposition);
    }
    let mut name = None;
    let mut filename = None;
    for field in fields {
        if let Some((key, value)) = field.split_once('=') {
            let value = value.trim().trim_matches('"').to_owned();
            match key.trim().to_ascii_lowercase().as_str() {
                "name" => name = Some(value),
                "filename" => filename = Some(value),
                _ => {}
            }
        }
    }
    Ok(Part {
        name: name.ok_or(MultipartError::Disposition)?,
        filename,
        data: raw[split + 4..].to_vec(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

    fn body(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, data) in parts {
            out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let file = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
            out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n").as_bytes(),
            );
            if filename.is_some() {
                out.extend_from_slice(b"Content-Type: text/csv\r\n");
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        out
    }

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={BOUNDARY}")),
            Some(BOUNDARY)
        );
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("text/plain; boundary=x"), None);
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            None
        );
    }

    #[test]
    fn a_browsers_upload_reads_as_its_fields() {
        let csv = b"name,email\r\nAda,ada@example.com\r\n";
        let parts = parse(
            BOUNDARY,
            &body(&[("csrf", None, b"tok"), ("file", Some("people.csv"), csv)]),
        )
        .expect("a well-framed body");
        assert_eq!(
            parts,
            vec![
                Part {
                    name: "csrf".into(),
                    filename: None,
                    data: b"tok".to_vec()
                },
                Part {
                    name: "file".into(),
                    filename: Some("people.csv".into()),
                    data: csv.to_vec()
                },
            ]
        );
    }

    #[test]
    fn a_body_without_its_frame_is_refused() {
        assert_eq!(parse(BOUNDARY, b"name=value"), Err(MultipartError::Framing));
        let mut cut = body(&[("a", None, b"1")]);
        cut.truncate(cut.len() - 12);
        assert_eq!(parse(BOUNDARY, &cut), Err(MultipartError::Framing));
        let nameless = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
        );
        assert_eq!(
            parse(BOUNDARY, nameless.as_bytes()),
            Err(MultipartError::Disposition)
        );
    }

    proptest! {
        #[test]
        fn any_bytes_come_back_as_sent(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            // A browser picks a boundary that does not occur in the data.
            prop_assume!(!data.windows(BOUNDARY.len()).any(|w| w == BOUNDARY.as_bytes()));
            let parts = parse(BOUNDARY, &body(&[("file", Some("f.csv"), &data)])).expect("a well-framed body");
            prop_assert_eq!(&parts[0].data, &data);
        }
    }
}
