//! Header names and values, checked at compile time with the rules of the `http` crate, so that
//! a header the response could not send is a compile error instead of a 500 at run time.

/// Why a header name is invalid.
pub(crate) fn header_name_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("a header name cannot be empty".to_owned());
    }
    if name.len() > MAX_HEADER_NAME_LEN {
        return Some(format!(
            "a header name is at most {MAX_HEADER_NAME_LEN} bytes long"
        ));
    }
    let bad = name.chars().find(|&c| !is_token_char(c))?;
    Some(format!(
        "{} is not allowed in a header name (letters, digits and {TOKEN_PUNCTUATION} only)",
        describe(bad)
    ))
}

/// Why a header value is invalid.
pub(crate) fn header_value_error(value: &str) -> Option<String> {
    let bad = value.chars().find(|&c| !is_value_char(c))?;
    Some(format!(
        "{} is not allowed in a header value (control characters other than tab cannot be sent)",
        describe(bad)
    ))
}

const MAX_HEADER_NAME_LEN: usize = 1 << 16;

/// The punctuation of RFC 9110 `tchar`, which `http::HeaderName` accepts.
const TOKEN_PUNCTUATION: &str = "!#$%&'*+-.^_`|~";

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || TOKEN_PUNCTUATION.contains(c)
}

/// `http::HeaderValue` accepts every byte but the controls other than tab; a UTF-8 string is
/// made of such bytes exactly when its chars are not ASCII controls.
fn is_value_char(c: char) -> bool {
    c == '\t' || !(c.is_ascii_control())
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\r' => "a carriage return (`\\r`)".to_owned(),
        '\n' => "a line feed (`\\n`)".to_owned(),
        c if c.is_ascii_control() => format!("the control character `{}`", c.escape_default()),
        c => format!("`{c}`"),
    }
}

/// Headers the response always sets itself; setting them would silently have no effect or
/// break the stream.
pub(crate) fn reserved_header_hint(lowercase_name: &str) -> Option<&'static str> {
    match lowercase_name {
        "connection" => Some(
            "`connection` is set by the response itself (`keep-alive` on HTTP/1.x, absent on HTTP/2); remove it",
        ),
        "x-accel-buffering" => {
            Some("`x-accel-buffering` is always `no` on an SSE response; remove it")
        }
        "content-length" | "transfer-encoding" => Some(
            "an SSE body is streamed and its length is not known in advance; remove this header",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_exactly_as_http_checks_them() {
        for byte in 0u8..=255 {
            let c = char::from(byte);
            let name = format!("x{c}");
            let ours = header_name_error(&name).is_none();
            let theirs = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
            assert_eq!(ours, theirs, "header name {name:?}");
        }
    }

    #[test]
    fn values_are_checked_exactly_as_http_checks_them() {
        for byte in 0u8..=255 {
            let c = char::from(byte);
            let value = format!("v{c}v");
            let ours = header_value_error(&value).is_none();
            let theirs = http::HeaderValue::from_str(&value).is_ok();
            assert_eq!(ours, theirs, "header value {value:?}");
        }
    }

    #[test]
    fn an_empty_name_is_rejected() {
        assert!(header_name_error("").is_some());
    }

    #[test]
    fn the_message_names_the_offending_character() {
        assert_eq!(
            header_name_error("x custom").unwrap(),
            "a space is not allowed in a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
        );
        assert!(
            header_value_error("a\nb")
                .unwrap()
                .starts_with("a line feed")
        );
    }
}
