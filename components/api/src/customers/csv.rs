//! A small RFC 4180 reader: comma-separated fields, CRLF or LF line ends, `"`-quoted fields
//! that may hold commas, quotes (doubled) and line breaks. Each record carries the physical
//! line it starts on, so errors can point at it.
//!
//! Lenient where the RFC leaves room and strict where data could be lost: a quote inside an
//! unquoted field is kept as text; text after a closing quote, or a quote never closed, marks
//! that record as malformed (the others are unaffected, except that an unclosed quote runs to
//! the end of the input).

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    /// The 1-based physical line the record starts on.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
    /// Why the record is malformed, if it is.
    pub error: Option<String>,
}

/// Every record of `text`, skipping empty lines. A leading UTF-8 byte-order mark is ignored.
pub fn records(text: &str) -> Vec<CsvRecord> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start_line = line;
        // An empty physical line is no record.
        match chars.peek() {
            Some('\n') => {
                chars.next();
                line += 1;
                continue;
            }
            Some('\r') => {
                chars.next();
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                line += 1;
                continue;
            }
            _ => {}
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut error = None;
        let mut quoted = false;
        let mut in_quotes = false;
        let mut after_quote = false;
        loop {
            let Some(c) = chars.next() else {
                if in_quotes {
                    error = Some("a quoted field is never closed".to_owned());
                }
                fields.push(std::mem::take(&mut field));
                break;
            };
            if in_quotes {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => {
                        in_quotes = false;
                        after_quote = true;
                    }
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    quoted = false;
                    after_quote = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' | '\r' => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                '"' if field.is_empty() && !quoted => {
                    quoted = true;
                    in_quotes = true;
                }
                _ if after_quote => {
                    if error.is_none() {
                        error = Some("text after a closing quote".to_owned());
                    }
                }
                _ => field.push(c),
            }
        }
        out.push(CsvRecord {
            line: start_line,
            fields,
            error,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<(usize, Vec<String>)> {
        records(text)
            .into_iter()
            .map(|r| (r.line, r.fields))
            .collect()
    }

    fn row(line: usize, fields: &[&str]) -> (usize, Vec<String>) {
        (line, fields.iter().map(|f| (*f).to_owned()).collect())
    }

    #[test]
    fn plain_records_split_on_commas_and_line_ends() {
        assert_eq!(
            fields("a,b\r\n1,2\n3,\n"),
            [row(1, &["a", "b"]), row(2, &["1", "2"]), row(3, &["3", ""])]
        );
    }

    #[test]
    fn quoted_fields_hold_commas_quotes_and_line_breaks() {
        assert_eq!(
            fields("name,notes\n\"Doe, Jane\",\"said \"\"hi\"\"\nthen left\"\nNext,x"),
            [
                row(1, &["name", "notes"]),
                row(2, &["Doe, Jane", "said \"hi\"\nthen left"]),
                row(4, &["Next", "x"]),
            ]
        );
    }

    #[test]
    fn empty_lines_are_skipped_but_counted() {
        assert_eq!(fields("a\n\n\r\nb\n"), [row(1, &["a"]), row(4, &["b"])]);
    }

    #[test]
    fn a_bom_is_ignored() {
        assert_eq!(fields("\u{feff}a,b"), [row(1, &["a", "b"])]);
    }

    #[test]
    fn malformed_quoting_marks_only_that_record() {
        let parsed = records("a,b\n\"x\"y,2\nok,3\n\"never closed,4\nlost");
        assert_eq!(parsed[0].error, None);
        assert_eq!(
            parsed[1].error.as_deref(),
            Some("text after a closing quote")
        );
        assert_eq!(parsed[2].error, None);
        assert_eq!(parsed[2].fields, ["ok", "3"]);
        assert_eq!(parsed[3].line, 4);
        assert_eq!(
            parsed[3].error.as_deref(),
            Some("a quoted field is never closed")
        );
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_text() {
        assert_eq!(fields("5\" pipe,x"), [row(1, &["5\" pipe", "x"])]);
    }
}
