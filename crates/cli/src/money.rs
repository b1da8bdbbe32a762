//! Yuan as people type them, fen as the system counts them: no floating point anywhere.

use anyhow::{bail, Context};

/// Parses `12`, `12.3` or `12.34` yuan into fen. `field` names the flag in errors.
pub fn parse_yuan(text: &str, field: &str) -> anyhow::Result<u32> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || fraction.len() > 2 {
        bail!("{field}: `{text}` is not an amount in yuan (like 50 or 12.50)");
    }
    let yuan: u32 = whole.parse().with_context(|| format!("{field}: `{text}` is too large"))?;
    let fen: u32 = format!("{fraction:0<2}").parse().expect("two digits");
    yuan.checked_mul(100).and_then(|f| f.checked_add(fen)).with_context(|| format!("{field}: `{text}` is too large"))
}

/// Formats fen as yuan with two decimals, `-` for negative balances.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.unsigned_abs() / 100, fen.unsigned_abs() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_whole_and_fractional_yuan() {
        assert_eq!(parse_yuan("50", "--amount").unwrap(), 5_000);
        assert_eq!(parse_yuan("0.5", "--amount").unwrap(), 50);
        assert_eq!(parse_yuan("12.34", "--amount").unwrap(), 1_234);
        assert_eq!(parse_yuan("42949672.95", "--amount").unwrap(), u32::MAX);
    }

    #[test]
    fn rejects_what_is_not_an_amount_naming_the_field() {
        for bad in ["", "-1", "1.234", "1e3", "abc", ".5", "5.", "42949673"] {
            let e = parse_yuan(bad, "--amount").unwrap_err().to_string();
            assert!(e.starts_with("--amount"), "{bad}: {e}");
        }
    }

    #[test]
    fn formats_fen() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(1_234), "12.34");
        assert_eq!(yuan(-450), "-4.50");
    }
}
