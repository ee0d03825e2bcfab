//! Keeps personal data out of free text bound for the logs. Depends on nothing in the crate, so
//! every module that logs what another system said (`external`, the mail worker, the error edge)
//! can use it.

/// Masks what looks like an email address or a phone number in free text — error messages from
/// other systems (an SMTP server's rejection, say) may quote what we sent them, and no personal
/// data may reach the logs.
pub fn redact(text: &str) -> String {
    let is_separator = |c: char| c.is_whitespace() || "<>\"'(),;[]".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let digits = word.chars().filter(char::is_ascii_digit).count();
        if word.contains('@') || digits >= 10 {
            out.push_str("[redacted]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_separator(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_addresses_and_phone_numbers() {
        assert_eq!(redact("550 5.1.1 <taro@example.jp>: user unknown"), "550 5.1.1 <[redacted]>: user unknown");
        assert_eq!(redact("call 090-1234-5678 now"), "call [redacted] now");
        assert_eq!(redact("timed out after 2000 ms"), "timed out after 2000 ms");
    }
}
