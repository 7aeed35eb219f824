//! CSV as RFC 4180 writes it, for the import and export of records: a reader that splits a text into records of
//! fields (quoted fields may hold commas, quotes and line breaks) and a writer that quotes what needs it. Pure: no
//! I/O, no other module of the crate.
//!
//! A crate would do the same; this is the small part of it the import and export need, with the errors naming the
//! line a client can look up in their file.

/// The records of `text`, each a list of fields, with the line each starts on (1-based). A blank line is no record.
/// A byte-order mark at the start is skipped (spreadsheets write one). Fails, naming the line, on a quote that is
/// never closed or text after a closing quote.
pub fn parse(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('"') if field.is_empty() && !quoted => {
                    quoted = true;
                    loop {
                        match chars.next() {
                            None => return Err(format!("line {start}: a quoted field is never closed")),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    if !matches!(chars.peek(), None | Some(',' | '\r' | '\n')) {
                        return Err(format!("line {line}: text after a closing quote"));
                    }
                }
                Some(',') => {
                    fields.push(std::mem::take(&mut field));
                    quoted = false;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some(c) => field.push(c),
            }
        }
        if !(fields.len() == 1 && fields[0].is_empty() && !quoted) {
            records.push((start, fields));
        }
    }
    Ok(records)
}

/// Appends one record to `out`: the fields joined by commas, each quoted when it holds a comma, a quote, a line
/// break or leading or trailing space, and ended by CRLF as RFC 4180 asks. A field that a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@` first) is prefixed by a quote character inside the quotes (OWASP's advice on CSV
/// injection), so opening an export in a spreadsheet runs nothing a user typed; the import takes that prefix away.
pub fn write_record<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let formula = field.starts_with(['=', '+', '-', '@']) && !looks_numeric(field);
        let quote = formula || field.contains([',', '"', '\r', '\n']) || field.starts_with(' ') || field.ends_with(' ');
        if !quote {
            out.push_str(field);
            continue;
        }
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    }
    out.push_str("\r\n");
}

/// A field as written by [`write_record`], with the formula guard taken away.
pub fn unguard(field: &str) -> &str {
    match field.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => field,
    }
}

/// A negative number is no formula: `-5` stays as it is.
fn looks_numeric(field: &str) -> bool {
    field.len() > 1 && field[1..].bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text).unwrap().into_iter().map(|(_, f)| f).collect()
    }

    #[test]
    fn splits_quoted_and_plain_fields() {
        assert_eq!(
            fields("a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\n\"two\nlines\",\n"),
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["x,1".into(), "say \"hi\"".into()],
                vec!["two\nlines".into(), "".into()],
            ]
        );
        let lines: Vec<usize> = parse("a\n\"b\nc\"\nd").unwrap().iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 2, 4]);
        assert_eq!(fields("\u{feff}ip\n"), vec![vec!["ip".to_string()]]);
    }

    #[test]
    fn refuses_broken_quotes_naming_the_line() {
        assert_eq!(parse("a\n\"b").unwrap_err(), "line 2: a quoted field is never closed");
        assert_eq!(parse("\"b\"c").unwrap_err(), "line 1: text after a closing quote");
    }

    #[test]
    fn writes_what_it_reads_and_guards_formulas() {
        let mut out = String::new();
        write_record(&mut out, ["plain", "a,b", "q\"q", "two\nlines", "=cmd()", "-5", " pad"]);
        assert_eq!(
            out,
            "plain,\"a,b\",\"q\"\"q\",\"two\nlines\",\"'=cmd()\",-5,\" pad\"\r\n"
        );
        let back: Vec<String> = fields(&out).remove(0).iter().map(|f| unguard(f).to_string()).collect();
        assert_eq!(back, ["plain", "a,b", "q\"q", "two\nlines", "=cmd()", "-5", " pad"]);
    }
}
