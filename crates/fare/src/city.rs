//! City profiles: documented TOML files, so that a city changes its fares without a release.
//! The project ships one per region (`cities/*.toml`), each with a small sample network.

use serde::Deserialize;

use crate::codes::CodeTable;
use crate::error::LoadError;
use crate::rules::{
    BandTable, LineRule, MetroRules, MonthlyTier, OffPeak, Overstay, Pricing, DOUBLE_TAP_WINDOW_S_DEFAULT,
    DOUBLE_TAP_WINDOW_S_MAX,
};

/// Bus fares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusRules {
    /// Flat fare, fen.
    pub flat_fare_fen: u32,
    /// Off a bus ride boarded within the window after another.
    pub transfer_discount_fen: u32,
    /// Minutes after the previous boarding within which the discount applies.
    pub transfer_window_minutes: u32,
}

impl BusRules {
    /// The fare of a bus ride boarded at `now`, after a previous bus boarding at `previous`.
    pub fn fare_fen(&self, previous: Option<&yitong_profile::DateTime>, now: &yitong_profile::DateTime) -> u32 {
        let window_s = i64::from(self.transfer_window_minutes) * 60;
        let transfer = previous.is_some_and(|p| {
            let gap = now.seconds_since_epoch() - p.seconds_since_epoch();
            (0..=window_s).contains(&gap) && window_s > 0
        });
        if transfer {
            self.flat_fare_fen.saturating_sub(self.transfer_discount_fen)
        } else {
            self.flat_fare_fen
        }
    }
}

/// The wallet platform's sign-up fee when a city file names none: 29 yuan, Beijing's standard
/// fee for a phone card.
pub const SIGNUP_FEE_FEN_DEFAULT: u32 = 2_900;
/// The largest sign-up fee a city file may set: 1,000 yuan, the default balance limit.
pub const SIGNUP_FEE_FEN_MAX: u32 = 100_000;

/// What the wallet platform needs of a city beyond its fares (the `[platform]` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformRules {
    /// The standard fee for a phone card of this city, fen, before promotions.
    pub signup_fee_fen: u32,
    /// The city's own card app, where riders with an embedded-SE phone may also sign up.
    pub card_app: Option<String>,
}

impl Default for PlatformRules {
    fn default() -> Self {
        PlatformRules { signup_fee_fen: SIGNUP_FEE_FEN_DEFAULT, card_app: None }
    }
}

/// One city or region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CityProfile {
    /// Lower-case name (`beijing`).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// City code (BCD, as on cards).
    pub city_code: u16,
    /// IANA time zone of its gates.
    pub time_zone: String,
    /// True when the fare numbers are example values, not checked against published rules.
    pub example_values: bool,
    /// Sources, and what the file leaves out.
    pub notes: String,
    /// The card issuer.
    pub issuer: String,
    /// Acceptor institution code written into trip records.
    pub institution: [u8; 8],
    /// AIDs of the cards accepted.
    pub card_aids: Vec<Vec<u8>>,
    /// The built-in sample network, if the city has a metro.
    pub network: Option<String>,
    /// Metro rules; `None` for a city without metro.
    pub metro: Option<MetroRules>,
    /// Bus rules.
    pub bus: BusRules,
    /// The wallet platform's rules for phone cards of this city.
    pub platform: PlatformRules,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CityFile {
    name: String,
    display_name: String,
    city_code: String,
    time_zone: String,
    #[serde(default)]
    example_values: bool,
    #[serde(default)]
    notes: String,
    issuer: String,
    institution: String,
    card_aids: Vec<String>,
    network: Option<String>,
    metro: Option<MetroFile>,
    bus: BusFile,
    #[serde(default)]
    platform: PlatformFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlatformFile {
    signup_fee_fen: Option<u32>,
    card_app: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetroFile {
    #[serde(default)]
    entry_charge_fen: u32,
    min_entry_balance_fen: u32,
    same_station_fare_fen: Option<u32>,
    overstay: Option<OverstayFile>,
    bands: Vec<BandFile>,
    beyond: Option<StepFile>,
    #[serde(default)]
    monthly: Vec<TierFile>,
    off_peak: Option<OffPeakFile>,
    #[serde(default)]
    lines: Vec<LineRuleFile>,
    #[serde(default = "double_tap_window_s")]
    double_tap_window_s: u32,
    incomplete_trip_fare_fen: Option<u32>,
    #[serde(default)]
    codes: CodeTable,
}

fn double_tap_window_s() -> u32 {
    DOUBLE_TAP_WINDOW_S_DEFAULT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BandFile {
    up_to_m: Option<u32>,
    fare_fen: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    every_m: u32,
    fare_fen: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    from_spent_fen: u32,
    percent: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OffPeakFile {
    percent: u8,
    weekdays_before: String,
    #[serde(default)]
    stations: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverstayFile {
    after_minutes: u32,
    surcharge_fen: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineRuleFile {
    name: String,
    lines: Vec<String>,
    flat_fen: Option<u32>,
    #[serde(default)]
    bands: Vec<BandFile>,
    beyond: Option<StepFile>,
    #[serde(default = "yes")]
    monthly: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BusFile {
    flat_fare_fen: u32,
    #[serde(default)]
    transfer_discount_fen: u32,
    #[serde(default)]
    transfer_window_minutes: u32,
}

/// The built-in city files, by name.
pub const BUILTIN_CITIES: &[(&str, &str)] = &[
    ("beijing", include_str!("../cities/beijing.toml")),
    ("shanghai", include_str!("../cities/shanghai.toml")),
    ("shenzhen", include_str!("../cities/shenzhen.toml")),
    ("guangzhou", include_str!("../cities/guangzhou.toml")),
    ("wuhan", include_str!("../cities/wuhan.toml")),
    ("jilin", include_str!("../cities/jilin.toml")),
    ("tianjin", include_str!("../cities/tianjin.toml")),
    ("chengdu", include_str!("../cities/chengdu.toml")),
    ("hangzhou", include_str!("../cities/hangzhou.toml")),
    ("chongqing", include_str!("../cities/chongqing.toml")),
];

impl CityProfile {
    /// A built-in city.
    pub fn builtin(name: &str) -> Option<Result<Self, LoadError>> {
        let name = name.to_ascii_lowercase();
        BUILTIN_CITIES.iter().find(|(n, _)| *n == name).map(|(n, text)| Self::parse(text, &format!("cities/{n}.toml")))
    }

    /// Parses a city file; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, LoadError> {
        let raw: CityFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let err = LoadError::new(file, e.message().to_string());
            match line {
                Some(l) => err.at_line(l),
                None => err,
            }
        })?;
        let bad = |field: &str, message: String| {
            let line = find_line(text, field.rsplit('.').next().unwrap_or(field));
            let e = LoadError::new(file, message).in_field(field);
            match line {
                Some(l) => e.at_line(l),
                None => e,
            }
        };
        let city_code = u16::from_str_radix(&raw.city_code, 16)
            .ok()
            .filter(|_| raw.city_code.len() == 4 && raw.city_code.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad("city_code", format!("`{}` is not 4 BCD digits", raw.city_code)))?;
        if raw.institution.is_empty() || raw.institution.len() > 8 || !raw.institution.is_ascii() {
            return Err(bad("institution", "must be 1 to 8 ASCII characters".into()));
        }
        let mut institution = [0u8; 8];
        institution[..raw.institution.len()].copy_from_slice(raw.institution.as_bytes());
        let card_aids = raw
            .card_aids
            .iter()
            .map(|a| {
                let aid = hex_bytes(a).filter(|b| (5..=16).contains(&b.len()));
                aid.ok_or_else(|| bad("card_aids", format!("`{a}` is not an AID of 5 to 16 bytes in hex")))
            })
            .collect::<Result<_, _>>()?;
        let metro = match raw.metro {
            None => None,
            Some(m) => Some(metro_rules(m).map_err(|(field, message)| bad(&field, message))?),
        };
        let signup_fee_fen = raw.platform.signup_fee_fen.unwrap_or(SIGNUP_FEE_FEN_DEFAULT);
        if signup_fee_fen > SIGNUP_FEE_FEN_MAX {
            return Err(bad(
                "platform.signup_fee_fen",
                format!("{signup_fee_fen} fen is more than {SIGNUP_FEE_FEN_MAX} fen (1,000 yuan)"),
            ));
        }
        if metro.is_some() != raw.network.is_some() {
            return Err(bad("network", "a city with metro rules names its sample network, and only then".into()));
        }
        Ok(CityProfile {
            name: raw.name,
            display_name: raw.display_name,
            city_code,
            time_zone: raw.time_zone,
            example_values: raw.example_values,
            notes: raw.notes,
            issuer: raw.issuer,
            institution,
            card_aids,
            network: raw.network,
            metro,
            bus: BusRules {
                flat_fare_fen: raw.bus.flat_fare_fen,
                transfer_discount_fen: raw.bus.transfer_discount_fen,
                transfer_window_minutes: raw.bus.transfer_window_minutes,
            },
            platform: PlatformRules { signup_fee_fen, card_app: raw.platform.card_app },
        })
    }
}

fn bands(bands: Vec<BandFile>, beyond: Option<StepFile>, at: &str) -> Result<BandTable, (String, String)> {
    let table = BandTable {
        bands: bands.into_iter().map(|b| (b.up_to_m, b.fare_fen)).collect(),
        beyond: beyond.map(|s| (s.every_m, s.fare_fen)),
    };
    table.validate().map_err(|e| (format!("{at}.bands"), e))?;
    Ok(table)
}

fn metro_rules(m: MetroFile) -> Result<MetroRules, (String, String)> {
    let main = bands(m.bands, m.beyond, "metro")?;
    let mut lines = Vec::new();
    for (i, l) in m.lines.into_iter().enumerate() {
        let at = format!("metro.lines[{i}]");
        let pricing = match (l.flat_fen, l.bands.is_empty()) {
            (Some(fen), true) if l.beyond.is_none() => Pricing::Flat(fen),
            (None, false) => Pricing::Distance(bands(l.bands, l.beyond, &at)?),
            _ => return Err((format!("{at}.flat_fen"), "give either flat_fen or bands".into())),
        };
        if l.lines.is_empty() {
            return Err((format!("{at}.lines"), "names no line".into()));
        }
        lines.push(LineRule { name: l.name, lines: l.lines, pricing, monthly: l.monthly });
    }
    for (i, w) in m.monthly.windows(2).enumerate() {
        if w[1].from_spent_fen <= w[0].from_spent_fen {
            return Err((format!("metro.monthly[{}].from_spent_fen", i + 1), "tiers must increase".into()));
        }
    }
    if let Some(t) = m.monthly.iter().find(|t| t.percent > 100) {
        return Err(("metro.monthly.percent".into(), format!("{} % is more than the fare", t.percent)));
    }
    let off_peak = match m.off_peak {
        None => None,
        Some(o) => {
            let before = parse_hhmm(&o.weekdays_before).ok_or_else(|| {
                ("metro.off_peak.weekdays_before".to_string(), format!("`{}` is not HH:MM", o.weekdays_before))
            })?;
            if o.percent > 100 {
                return Err(("metro.off_peak.percent".into(), "more than 100".into()));
            }
            Some(OffPeak { percent: o.percent, before, stations: o.stations })
        }
    };
    if m.double_tap_window_s > DOUBLE_TAP_WINDOW_S_MAX {
        return Err((
            "metro.double_tap_window_s".into(),
            format!("{} s is more than {DOUBLE_TAP_WINDOW_S_MAX} s", m.double_tap_window_s),
        ));
    }
    if let Some((name, _)) = m.codes.stations.iter().chain(&m.codes.lines).find(|(_, &code)| code == 0) {
        return Err(("metro.codes".into(), format!("`{name}`: code 0 is reserved")));
    }
    Ok(MetroRules {
        double_tap_window_s: m.double_tap_window_s,
        incomplete_trip_fare_fen: m.incomplete_trip_fare_fen,
        codes: m.codes,
        entry_charge_fen: m.entry_charge_fen,
        min_entry_balance_fen: m.min_entry_balance_fen,
        same_station_fare_fen: m.same_station_fare_fen,
        overstay: m.overstay.map(|o| Overstay { after_minutes: o.after_minutes, surcharge_fen: o.surcharge_fen }),
        main,
        lines,
        monthly: m
            .monthly
            .into_iter()
            .map(|t| MonthlyTier { from_spent_fen: t.from_spent_fen, percent: t.percent })
            .collect(),
        off_peak,
    })
}

fn parse_hhmm(s: &str) -> Option<(u8, u8)> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5).then_some((h, m))
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// The first line of `text` where `key` is assigned, for error messages.
fn find_line(text: &str, key: &str) -> Option<usize> {
    let key = key.split('[').next().unwrap_or(key);
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with(key) && l[key.len()..].trim_start().starts_with('=')
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_table_is_optional_and_its_fee_bounded() {
        let beijing = CityProfile::builtin("beijing").unwrap().unwrap();
        assert_eq!(beijing.platform.signup_fee_fen, 2_900);
        assert_eq!(beijing.platform.card_app.as_deref(), Some("北京一卡通 (Beijing All-in-One Card)"));
        let jilin = CityProfile::builtin("jilin").unwrap().unwrap();
        assert_eq!(jilin.platform, PlatformRules::default());
        let text = BUILTIN_CITIES.iter().find(|(n, _)| *n == "jilin").map(|(_, t)| *t).unwrap();
        let free = format!("{text}\n[platform]\nsignup_fee_fen = 0\n");
        assert_eq!(CityProfile::parse(&free, "x.toml").unwrap().platform.signup_fee_fen, 0);
        let dear = format!("{text}\n[platform]\nsignup_fee_fen = 100001\n");
        let err = CityProfile::parse(&dear, "x.toml").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("platform.signup_fee_fen"), "{err}");
        assert!(err.line.is_some(), "{err}");
    }

    #[test]
    fn every_builtin_city_loads() {
        for (name, _) in BUILTIN_CITIES {
            let city = CityProfile::builtin(name).unwrap().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&city.name, name);
            assert_eq!(city.time_zone, "Asia/Shanghai");
            assert!(!city.card_aids.is_empty());
        }
        assert_eq!(BUILTIN_CITIES.len(), 10);
        assert!(CityProfile::builtin("gotham").is_none());
    }

    #[test]
    fn malformed_files_name_file_line_and_field() {
        let good = BUILTIN_CITIES[0].1;
        let e =
            CityProfile::parse(&good.replace("city_code = \"1000\"", "city_code = \"10x0\""), "b.toml").unwrap_err();
        assert_eq!((e.file.as_str(), e.field.as_deref()), ("b.toml", Some("city_code")));
        assert!(e.line.is_some(), "{e}");
        let e = CityProfile::parse("name = 5", "c.toml").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.to_string().starts_with("c.toml:1: "), "{e}");
        let e = CityProfile::parse(&good.replace("up_to_m = 12099", "up_to_m = 5000"), "d.toml").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("metro.bands"), "{e}");
        let e = CityProfile::parse(&format!("{good}\nsurprise = 1\n"), "e.toml").unwrap_err();
        assert!(e.message.contains("surprise"), "{e}");
    }

    #[test]
    fn double_tap_window_and_incomplete_trip_fare() {
        let beijing = CityProfile::builtin("beijing").unwrap().unwrap().metro.unwrap();
        assert_eq!((beijing.double_tap_window_s, beijing.incomplete_trip_fare_fen), (300, None));
        let shanghai = CityProfile::builtin("shanghai").unwrap().unwrap().metro.unwrap();
        assert_eq!((shanghai.double_tap_window_s, shanghai.incomplete_trip_fare_fen), (300, None));
        let good = BUILTIN_CITIES[0].1;
        let set = good.replace("double_tap_window_s = 300", "double_tap_window_s = 90\nincomplete_trip_fare_fen = 600");
        let m = CityProfile::parse(&set, "b.toml").unwrap().metro.unwrap();
        assert_eq!((m.double_tap_window_s, m.incomplete_trip_fare_fen), (90, Some(600)));
        let e = CityProfile::parse(&good.replace("double_tap_window_s = 300", "double_tap_window_s = 3601"), "b.toml")
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("metro.double_tap_window_s"), "{e}");
        assert!(e.line.is_some(), "{e}");
        let e = CityProfile::parse(&good.replace("double_tap_window_s = 300", "double_tap_window_s = -1"), "b.toml")
            .unwrap_err();
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn a_code_table_in_the_city_file_overrides_the_network() {
        let good = BUILTIN_CITIES[0].1;
        let with =
            |table: &str| good.replace("double_tap_window_s = 300", &format!("double_tap_window_s = 300\n{table}"));
        let city = |text: &str| {
            let profile = CityProfile::parse(text, "b.toml")?;
            let network = crate::network_file::sample("beijing").unwrap().unwrap();
            crate::City::new(profile, Some(network), None)
        };
        let c = city(&with(r#"codes = { stations = { "西单" = 4000 }, lines = { "西郊线" = 29 } }"#)).unwrap();
        let n = c.engine().unwrap().network();
        let xidan = n.lookup("西单").unwrap();
        assert_eq!((n.stations()[xidan].code, n.station_by_code(4000)), (4000, Some(xidan)));
        assert_eq!(n.lines()[n.line_index("西郊线").unwrap()].code, 29);
        let e = city(&with(r#"codes = { stations = { "西四" = 4000 } }"#)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("metro.codes"), "{e}");
        assert!(e.message.contains("no station `西四`"), "{e}");
        let e = city(&with(r#"codes = { stations = { "西单" = 0 } }"#)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("metro.codes"), "{e}");
        // 国贸 keeps its code from the sample file; giving 西单 the same is refused.
        let guomao = crate::network_file::sample("beijing").unwrap().unwrap();
        let guomao = guomao.stations()[guomao.lookup("国贸").unwrap()].code;
        let e = city(&with(&format!(r#"codes = {{ stations = {{ "西单" = {guomao} }} }}"#))).unwrap_err();
        assert!(
            e.message.contains("`西单` and `国贸` share code") || e.message.contains("`国贸` and `西单` share code"),
            "{e}"
        );
    }

    #[test]
    fn bus_transfer_discount_within_the_window() {
        let bus = BusRules { flat_fare_fen: 200, transfer_discount_fen: 100, transfer_window_minutes: 90 };
        let t = |s: &str| yitong_profile::DateTime::parse(s).unwrap();
        assert_eq!(bus.fare_fen(None, &t("2026-11-25 08:00")), 200);
        assert_eq!(bus.fare_fen(Some(&t("2026-11-25 07:00")), &t("2026-11-25 08:30")), 100);
        assert_eq!(bus.fare_fen(Some(&t("2026-11-25 07:00")), &t("2026-11-25 08:31")), 200);
    }
}
