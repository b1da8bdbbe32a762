//! How outcomes and card reports are printed, for people and as JSON.

use serde_json::json;
use yitong_terminal::{CardReport, RecordStatus, TapOutcome, TapResult};

use crate::money::yuan;

pub fn outcome_json(o: &TapOutcome) -> serde_json::Value {
    let (result, reason) = match &o.result {
        TapResult::Completed(kind) => (serde_json::to_value(kind).expect("kind serializes"), None),
        TapResult::Refused(why) => (json!("refused"), Some(why.to_string())),
    };
    let mut v = json!({
        "result": result,
        "amount_fen": o.amount_fen,
        "balance_fen": o.balance_fen,
        "card_number": o.card_number,
        "recovered": o.records.iter().any(|r| r.status == RecordStatus::Recovered),
        "unconfirmed": o.records.iter().any(|r| r.status == RecordStatus::Unconfirmed),
        "apdus": o.apdus,
        "records": o.records,
    });
    if let Some(fare) = &o.fare {
        v["fare"] = json!(fare);
        v["fare_explained"] = json!(fare.to_string());
    }
    if let Some(reason) = reason {
        v["reason"] = json!(reason);
    }
    if let Some(alarm) = &o.alarm {
        v["alarm"] = json!(alarm);
    }
    v
}

pub fn outcome_text(o: &TapOutcome) -> String {
    let card = o.card_number.as_deref().unwrap_or("?");
    let mut line = match &o.result {
        TapResult::Completed(kind) => {
            let kind = serde_json::to_value(kind).expect("kind serializes");
            let recovered = if o.records.iter().any(|r| r.status == RecordStatus::Recovered) {
                " (recovered from an interrupted tap)"
            } else {
                ""
            };
            let mut line = format!(
                "{} card {card}: {} yuan, balance {} yuan{recovered}",
                kind.as_str().unwrap_or("?"),
                yuan(i64::from(o.amount_fen)),
                o.balance_fen.map(yuan).unwrap_or_else(|| "?".into())
            );
            if let Some(fare) = &o.fare {
                line.push_str(&format!("\n  fare: {fare}"));
            }
            line
        }
        TapResult::Refused(why) => format!("refused card {card}: {why}"),
    };
    for r in o.records.iter().filter(|r| r.status == RecordStatus::Unconfirmed) {
        line.push_str(&format!(
            "\nan earlier {} of {} yuan (counter {}) could not be confirmed from the card: recorded as unconfirmed \
             for the back office",
            serde_json::to_value(r.kind).expect("kind serializes").as_str().unwrap_or("?"),
            yuan(i64::from(r.amount_fen)),
            r.counter
        ));
    }
    if let Some(alarm) = &o.alarm {
        line.push_str(&format!("\nALARM: {alarm}"));
    }
    line
}

pub fn report_text(r: &CardReport, station_name: &dyn Fn(&str, u16, u16) -> String) -> String {
    let mut s = String::new();
    let counter = |c: Option<u16>| c.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
    s += &format!("card number   {}\n", r.card_number);
    s += &format!("serial        {}\n", r.serial);
    s += &format!("issuer ID     {} (city {})\n", r.issuer_id, r.city_code);
    s += &format!("valid         {} to {}{}\n", r.valid_from, r.valid_to, if r.locked { "  LOCKED" } else { "" });
    s += &format!(
        "balance       {} yuan (overdraft limit {} yuan)\n",
        yuan(r.balance_fen),
        yuan(i64::from(r.overdraft_limit_fen))
    );
    s += &format!("counters      online {}, offline {}\n", counter(r.online_counter), counter(r.offline_counter));
    match &r.metro.entry {
        Some(e) => {
            s += &format!("metro         inside since {} at {}\n", e.at, station_name(&e.city_code, e.line, e.station))
        }
        None => s += "metro         outside\n",
    }
    if let Some(month) = &r.metro.month {
        s += &format!(
            "month         {month}: {} yuan in {} rides\n",
            yuan(i64::from(r.metro.month_spent_fen)),
            r.metro.month_rides
        );
    }
    s += "transactions (newest first)\n";
    for e in &r.log {
        s += &format!(
            "  #{:<5} {:<10} {:>9} yuan  terminal {}  {}\n",
            e.counter,
            e.kind,
            yuan(i64::from(e.amount_fen)),
            e.terminal_id,
            e.at
        );
    }
    s += "trips (newest first)\n";
    for t in &r.trips {
        s += &format!(
            "  {:<6} {:<18} {:>9} yuan  balance {:>9}  {}\n",
            t.kind,
            station_name(&t.city_code, t.line, t.station),
            yuan(i64::from(t.amount_fen)),
            yuan(t.balance_after_fen),
            t.at
        );
    }
    s
}
