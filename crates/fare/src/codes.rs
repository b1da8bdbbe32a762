//! Code tables: the station and line codes an operator sets by hand, overriding the network
//! data's and the derived ones (see [`crate::derived_code`]). A table sits in the city file under
//! `[metro.codes]`, or beside an imported network as `codes.toml`, in the same layout:
//!
//! ```toml
//! [stations]
//! "西单" = 4
//! [lines]
//! "S1线" = 41
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::LoadError;

/// Station and line codes by name (a station may be named by an alias, as riders name it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeTable {
    /// Station name → code.
    #[serde(default)]
    pub stations: BTreeMap<String, u16>,
    /// Line name → code.
    #[serde(default)]
    pub lines: BTreeMap<String, u16>,
}

impl CodeTable {
    /// Parses a `codes.toml`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, LoadError> {
        toml::from_str(text).map_err(|e| {
            let err = LoadError::new(file, e.message().to_string());
            match e.span() {
                Some(s) => err.at_line(text[..s.start.min(text.len())].matches('\n').count() + 1),
                None => err,
            }
        })
    }

    /// Whether the table sets nothing.
    pub fn is_empty(&self) -> bool {
        self.stations.is_empty() && self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_locates_errors() {
        let t = CodeTable::parse("[stations]\n\"西单\" = 4\n[lines]\n\"S1线\" = 41\n", "codes.toml").unwrap();
        assert_eq!((t.stations["西单"], t.lines["S1线"]), (4, 41));
        let e = CodeTable::parse("[stations]\n\"西单\" = 70000\n", "codes.toml").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("codes.toml", Some(2)));
        assert!(CodeTable::parse("[platforms]\n", "codes.toml").is_err());
        assert!(CodeTable::parse("", "codes.toml").unwrap().is_empty());
    }
}
