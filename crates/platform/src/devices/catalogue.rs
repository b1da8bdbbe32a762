//! The catalogue's CSV files: the shipped ones and operators' imports.
//!
//! `makers.csv`: `maker,wallet_app,source`. `devices.csv`:
//! `maker,model,aliases,nfc,secure_element,cities,source` — `aliases` `|`-separated, `nfc`
//! `yes`/`no`, `secure_element` `ese`/`nfc-sim`/`none`, `cities` space-separated names or `all`
//! (empty only when the phone cannot carry a card), `source` `brief`/`example`. Lines starting
//! with `#` are comments. An import is all or nothing: the first bad row stops it with its file,
//! line and field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use csv::{ReaderBuilder, StringRecord, Trim};

use super::{lookup_key, CitySupport, DeviceModel, DeviceRegistry, Maker, SecureElementKind, Source};
use crate::cities::Cities;

/// The shipped makers.
pub const MAKERS_CSV: &str = include_str!("../../data/makers.csv");
/// The shipped models.
pub const DEVICES_CSV: &str = include_str!("../../data/devices.csv");

/// Rows one import may hold: a bound on what an operator's file can make the service hold.
pub const IMPORT_ROWS_MAX: usize = 10_000;

/// A catalogue file that cannot be imported, located by file, line and field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueError {
    /// The file's name.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// The column, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for CatalogueError {}

/// What an import changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Rows that were new.
    pub added: usize,
    /// Rows that replaced an existing maker or model.
    pub updated: usize,
}

/// Rows of one CSV file, each with its line, read by column name.
struct Table<'a> {
    file: &'a str,
    columns: BTreeMap<&'static str, usize>,
    rows: Vec<(u64, StringRecord)>,
}

impl<'a> Table<'a> {
    fn read(text: &str, file: &'a str, wanted: &[&'static str]) -> Result<Self, CatalogueError> {
        let error =
            |line: Option<u64>, message: String| CatalogueError { file: file.into(), line, field: None, message };
        let mut reader =
            ReaderBuilder::new().comment(Some(b'#')).trim(Trim::All).flexible(false).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| error(None, format!("no header row: {e}")))?.clone();
        let mut columns = BTreeMap::new();
        for &name in wanted {
            let index = headers.iter().position(|h| h == name).ok_or_else(|| CatalogueError {
                field: Some(name.into()),
                ..error(None, format!("the header has no `{name}` column (expected {})", wanted.join(",")))
            })?;
            columns.insert(name, index);
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line());
                error(line, format!("not a CSV row of {} fields: {e}", headers.len()))
            })?;
            let line = record.position().map_or(0, |p| p.line());
            if rows.len() == IMPORT_ROWS_MAX {
                return Err(error(Some(line), format!("more than {IMPORT_ROWS_MAX} rows; split the file")));
            }
            rows.push((line, record));
        }
        Ok(Table { file, columns, rows })
    }

    /// An error in `field` of the row at `line`.
    fn error(&self, line: u64, field: &str, message: String) -> CatalogueError {
        CatalogueError { file: self.file.into(), line: Some(line), field: Some(field.into()), message }
    }

    /// The value of `field` in `record`; empty values are refused unless `optional`.
    fn get<'r>(
        &self,
        line: u64,
        record: &'r StringRecord,
        field: &'static str,
        optional: bool,
    ) -> Result<&'r str, CatalogueError> {
        let value = self.columns.get(field).and_then(|&i| record.get(i)).unwrap_or("");
        if value.is_empty() && !optional {
            return Err(self.error(line, field, "is empty".into()));
        }
        Ok(value)
    }

    fn source(&self, line: u64, record: &StringRecord) -> Result<Source, CatalogueError> {
        match self.get(line, record, "source", false)? {
            "brief" => Ok(Source::Brief),
            "example" => Ok(Source::Example),
            other => Err(self.error(line, "source", format!("`{other}` is not brief or example"))),
        }
    }
}

impl DeviceRegistry {
    /// Imports makers (`maker,wallet_app,source`); a maker already known is replaced.
    pub fn import_makers_csv(&mut self, text: &str, file: &str) -> Result<ImportSummary, CatalogueError> {
        let table = Table::read(text, file, &["maker", "wallet_app", "source"])?;
        let mut makers = Vec::new();
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        for (line, record) in &table.rows {
            let name = table.get(*line, record, "maker", false)?;
            if let Some(first) = seen.insert(lookup_key(name), *line) {
                return Err(table.error(*line, "maker", format!("`{name}` is already on line {first}")));
            }
            let wallet_app = table.get(*line, record, "wallet_app", false)?.to_owned();
            makers.push(Maker { name: name.to_owned(), wallet_app, source: table.source(*line, record)? });
        }
        let mut summary = ImportSummary::default();
        for maker in makers {
            match self.upsert_maker(maker) {
                true => summary.updated += 1,
                false => summary.added += 1,
            }
        }
        Ok(summary)
    }

    /// Imports models (`maker,model,aliases,nfc,secure_element,cities,source`); makers must be
    /// known, cities must be among `cities`; a model already known is replaced.
    pub fn import_models_csv(
        &mut self,
        text: &str,
        file: &str,
        cities: &Cities,
    ) -> Result<ImportSummary, CatalogueError> {
        let table =
            Table::read(text, file, &["maker", "model", "aliases", "nfc", "secure_element", "cities", "source"])?;
        let mut models = Vec::new();
        // Every spelling of a model (name or alias) of this file, with the line that claims it.
        let mut spellings: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
        for (line, record) in &table.rows {
            let line = *line;
            let maker = table.get(line, record, "maker", false)?;
            if self.maker(maker).is_none() {
                let known: Vec<&str> = self.makers().map(|m| m.name.as_str()).collect();
                return Err(table.error(
                    line,
                    "maker",
                    format!("unknown maker `{maker}`; known: {}", known.join(", ")),
                ));
            }
            let model = table.get(line, record, "model", false)?;
            let aliases: Vec<String> = table
                .get(line, record, "aliases", true)?
                .split('|')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
            let model_key = lookup_key(model);
            if model_key.is_empty() {
                return Err(table.error(line, "model", format!("`{model}` has no letters or digits")));
            }
            for (field, spelling) in
                std::iter::once(("model", model)).chain(aliases.iter().map(|a| ("aliases", a.as_str())))
            {
                let key = (lookup_key(maker), lookup_key(spelling));
                if let Some((first, _)) = spellings.get(&key) {
                    return Err(table.error(line, field, format!("`{spelling}` is already on line {first}")));
                }
                let known = self.model(maker, spelling).filter(|m| lookup_key(&m.model) != model_key);
                if let Some(other) = known {
                    return Err(table.error(
                        line,
                        field,
                        format!("`{spelling}` already names {} {}", other.maker, other.model),
                    ));
                }
                spellings.insert(key, (line, model_key.clone()));
            }
            let nfc = match table.get(line, record, "nfc", false)? {
                "yes" => true,
                "no" => false,
                other => return Err(table.error(line, "nfc", format!("`{other}` is not yes or no"))),
            };
            let kind = table.get(line, record, "secure_element", false)?;
            let secure_element = SecureElementKind::parse(kind)
                .ok_or_else(|| table.error(line, "secure_element", format!("`{kind}` is not ese, nfc-sim or none")))?;
            if !nfc && secure_element != SecureElementKind::None {
                return Err(table.error(line, "secure_element", format!("`{kind}` needs NFC, but nfc is no")));
            }
            let city_text = table.get(line, record, "cities", true)?;
            let city_support = match city_text {
                "all" => CitySupport::All,
                text => {
                    let mut names = BTreeSet::new();
                    for name in text.split_whitespace() {
                        let city = cities.get(name).ok_or_else(|| {
                            let known: Vec<&str> = cities.names().collect();
                            table.error(
                                line,
                                "cities",
                                format!("unknown city `{name}`; known: all, {}", known.join(", ")),
                            )
                        })?;
                        names.insert(city.name().to_owned());
                    }
                    CitySupport::Only(names)
                }
            };
            let carries = secure_element != SecureElementKind::None;
            if carries && city_support == CitySupport::Only(BTreeSet::new()) {
                return Err(table.error(
                    line,
                    "cities",
                    format!("a phone with secure element `{kind}` names its cities (or all)"),
                ));
            }
            if !carries && city_support != CitySupport::Only(BTreeSet::new()) {
                return Err(table.error(line, "cities", "a phone that cannot carry a card supports no city".into()));
            }
            models.push(DeviceModel {
                maker: maker.to_owned(),
                model: model.to_owned(),
                aliases,
                nfc,
                secure_element,
                cities: city_support,
                source: table.source(line, record)?,
            });
        }
        let mut summary = ImportSummary::default();
        for model in models {
            match self.upsert_model(model) {
                true => summary.updated += 1,
                false => summary.added += 1,
            }
        }
        Ok(summary)
    }
}
