//! A card's answer read by the platform's hosts (the over-the-air load host, the service desk):
//! the data of a `9000` answer, or why not, naming the command.

use yitong_profile::StatusWord;

/// A card answer that is malformed or not a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadAnswer {
    /// The command answered.
    pub command: &'static str,
    /// What is wrong.
    pub why: String,
}

/// The data of `answer` to `command` when its status word is `9000`.
pub(crate) fn ok_data<'a>(answer: &'a [u8], command: &'static str) -> Result<&'a [u8], BadAnswer> {
    let (data, sw) =
        StatusWord::split(answer).ok_or(BadAnswer { command, why: "shorter than a status word".to_owned() })?;
    if sw != StatusWord::OK {
        return Err(BadAnswer { command, why: format!("status {sw}") });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_9000_answer_has_data() {
        assert_eq!(ok_data(&[1, 2, 0x90, 0x00], "GET BALANCE"), Ok(&[1u8, 2][..]));
        assert_eq!(ok_data(&[0x90], "GET BALANCE").map_err(|e| e.why), Err("shorter than a status word".to_owned()));
        let refused = ok_data(&[0x62, 0x83], "INITIALIZE FOR LOAD").expect_err("not a success");
        assert_eq!(refused.command, "INITIALIZE FOR LOAD");
        assert!(refused.why.starts_with("status "), "{}", refused.why);
    }
}
