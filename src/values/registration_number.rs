//! 受付番号: the registration number a person is shown on the 完了 page and in the mail.

use rand::Rng;

/// Crockford-like alphabet without 0/O and 1/I/L, which people misread on the phone.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// `XXXX-XXXX-XXXX`: 12 random symbols (~59 bits), so numbers cannot be guessed in sequence.
pub fn new_registration_number() -> String {
    let mut rng = rand::rng();
    let symbols: Vec<char> = (0..12).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    symbols.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_numbers_are_readable_and_random() {
        let a = new_registration_number();
        assert_eq!(a.len(), 14);
        assert!(a.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))), "{a}");
        let many: std::collections::HashSet<String> = (0..1000).map(|_| new_registration_number()).collect();
        assert_eq!(many.len(), 1000);
    }
}
