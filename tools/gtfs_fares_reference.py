#!/usr/bin/env python3
"""Expected GTFS Fares v2 leg fares, computed from the GTFS Schedule reference alone.

Usage: gtfs_fares_reference.py FEED_DIR DATE [DATE ...]

For every trip in stop_times.txt, every ride from one of its stops to a later one (a real leg:
boarding at stop i, alighting at stop j > i, at the trip's own times) is priced on each DATE
(YYYY-MM-DD) and printed as CSV: trip_id,from_stop_id,to_stop_id,departure,arrival,fare
(`departure`/`arrival` as "YYYY-MM-DD HH:MM:SS"; `fare` in hundredths of the currency, or
`none` when no rule applies).

This file deliberately shares no code with the Rust importer (crates/fare-import): it is the
independent side of the importer's agreement test. It follows https://gtfs.org/schedule/reference/
  - fare_leg_rules.txt: a leg matches on network_id (the route's network, routes.network_id or
    route_networks.txt), from_area_id / to_area_id (stop_areas.txt, for the stop or its parent
    station), from_timeframe_group_id / to_timeframe_group_id (timeframes.txt: start inclusive,
    end exclusive, empty start 00:00:00 and end 24:00:00, on the dates its service_id runs per
    calendar.txt / calendar_dates.txt).
  - Empty network_id / area fields: without a rule_priority column they match only when no rule
    names a value that matches the leg (the reference's "matched by default"); with the column
    they do not affect matching. Empty timeframe fields never affect matching.
  - rule_priority: the highest value among matching rules wins (empty is 0).
  - fare_products.txt: rows for the default rider category (is_default_fare_category = 1) or for
    no category. Where the reference leaves the choice to the rider (several products or media),
    this script takes, like the house rule of docs/fares.md, a physical transit card
    (fare_media_type 2) when offered, then the cheapest amount.
Amounts are parsed as decimal strings into integer hundredths, never floats.
"""

import csv
import datetime
import os
import sys


def read(feed, name):
    path = os.path.join(feed, name)
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8-sig") as f:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in csv.DictReader(f)]


def has_column(feed, name, column):
    path = os.path.join(feed, name)
    if not os.path.exists(path):
        return False
    with open(path, newline="", encoding="utf-8-sig") as f:
        header = next(csv.reader(f), [])
    return column in [h.strip() for h in header]


def hundredths(text):
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    whole, _, fraction = digits.partition(".")
    fraction = (fraction + "00")[:2] if len(fraction) <= 2 else None
    if fraction is None or not whole.isdigit() or not fraction.isdigit():
        raise ValueError(f"bad amount {text!r}")
    value = int(whole) * 100 + int(fraction)
    return -value if negative else value


def seconds(text):
    h, m, s = (int(p) for p in text.split(":"))
    return h * 3600 + m * 60 + s


class Calendar:
    def __init__(self, feed):
        self.weekly = {r["service_id"]: r for r in read(feed, "calendar.txt")}
        self.exceptions = {}
        for r in read(feed, "calendar_dates.txt"):
            self.exceptions[(r["service_id"], r["date"])] = r["exception_type"]

    def runs(self, service_id, date):
        key = date.strftime("%Y%m%d")
        exception = self.exceptions.get((service_id, key))
        if exception == "1":
            return True
        if exception == "2":
            return False
        w = self.weekly.get(service_id)
        if w is None:
            return False
        day = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][date.weekday()]
        return w["start_date"] <= key <= w["end_date"] and w[day] == "1"


class Fares:
    def __init__(self, feed):
        self.calendar = Calendar(feed)
        stops = {r["stop_id"]: r for r in read(feed, "stops.txt")}
        self.parent = {s: r.get("parent_station", "") for s, r in stops.items()}
        self.areas = {}
        for r in read(feed, "stop_areas.txt"):
            self.areas.setdefault(r["stop_id"], set()).add(r["area_id"])
        self.route_network = {r["route_id"]: r.get("network_id", "") for r in read(feed, "routes.txt")}
        for r in read(feed, "route_networks.txt"):
            self.route_network[r["route_id"]] = r["network_id"]
        self.trip_route = {r["trip_id"]: r["route_id"] for r in read(feed, "trips.txt")}
        self.timeframes = {}
        for r in read(feed, "timeframes.txt"):
            start = seconds(r["start_time"]) if r.get("start_time") else 0
            end = seconds(r["end_time"]) if r.get("end_time") else 86400
            self.timeframes.setdefault(r["timeframe_group_id"], []).append((start, end, r["service_id"]))
        categories = read(feed, "rider_categories.txt")
        self.default_rider = next((r["rider_category_id"] for r in categories if r.get("is_default_fare_category") == "1"), "")
        self.media_type = {r["fare_media_id"]: r.get("fare_media_type", "") for r in read(feed, "fare_media.txt")}
        self.products = {}
        for r in read(feed, "fare_products.txt"):
            self.products.setdefault(r["fare_product_id"], []).append(r)
        self.rules = read(feed, "fare_leg_rules.txt")
        self.priority_column = has_column(feed, "fare_leg_rules.txt", "rule_priority")

    def stop_areas(self, stop):
        return self.areas.get(stop, set()) | self.areas.get(self.parent.get(stop, ""), set())

    def in_timeframe(self, group, when):
        t = when.hour * 3600 + when.minute * 60 + when.second
        return any(s <= t < e and self.calendar.runs(service, when.date()) for s, e, service in self.timeframes.get(group, []))

    def product_amount(self, product_id):
        rows = self.products.get(product_id, [])
        rider = self.default_rider
        own = [r for r in rows if r.get("rider_category_id", "") == rider and rider]
        rows = own if own else [r for r in rows if not r.get("rider_category_id")]
        if not rows:
            return None
        cards = [r for r in rows if self.media_type.get(r.get("fare_media_id", "")) == "2"]
        return min(hundredths(r["amount"]) for r in (cards or rows))

    def fare(self, trip_id, from_stop, to_stop, departure, arrival):
        network = self.route_network.get(self.trip_route[trip_id], "")
        from_areas, to_areas = self.stop_areas(from_stop), self.stop_areas(to_stop)

        def field_matches(field, leg_values):
            # A named value must be among the leg's; an empty field depends on rule_priority.
            named = {r[field] for r in self.rules if r.get(field)}
            def match(rule):
                value = rule.get(field, "")
                if value:
                    return value in leg_values
                if self.priority_column:
                    return True
                return not (named & leg_values)
            return match

        network_ok = field_matches("network_id", {network} if network else set())
        from_ok = field_matches("from_area_id", from_areas)
        to_ok = field_matches("to_area_id", to_areas)
        matched = []
        for rule in self.rules:
            if not (network_ok(rule) and from_ok(rule) and to_ok(rule)):
                continue
            if rule.get("from_timeframe_group_id") and not self.in_timeframe(rule["from_timeframe_group_id"], departure):
                continue
            if rule.get("to_timeframe_group_id") and not self.in_timeframe(rule["to_timeframe_group_id"], arrival):
                continue
            amount = self.product_amount(rule["fare_product_id"])
            if amount is not None:
                matched.append((int(rule.get("rule_priority") or 0), amount))
        if not matched:
            return None
        top = max(p for p, _ in matched)
        return min(a for p, a in matched if p == top)


def main():
    feed, dates = sys.argv[1], [datetime.date.fromisoformat(d) for d in sys.argv[2:]]
    fares = Fares(feed)
    trips = {}
    for r in read(feed, "stop_times.txt"):
        trips.setdefault(r["trip_id"], []).append(r)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["trip_id", "from_stop_id", "to_stop_id", "departure", "arrival", "fare"])
    for trip_id in sorted(trips):
        rows = sorted(trips[trip_id], key=lambda r: int(r["stop_sequence"]))
        for date in dates:
            midnight = datetime.datetime.combine(date, datetime.time())
            for i in range(len(rows)):
                for j in range(i + 1, len(rows)):
                    a, b = rows[i], rows[j]
                    if a["stop_id"] == b["stop_id"]:
                        continue
                    departure = midnight + datetime.timedelta(seconds=seconds(a["departure_time"] or a["arrival_time"]))
                    arrival = midnight + datetime.timedelta(seconds=seconds(b["arrival_time"] or b["departure_time"]))
                    fare = fares.fare(trip_id, a["stop_id"], b["stop_id"], departure, arrival)
                    out.writerow([trip_id, a["stop_id"], b["stop_id"], departure.strftime("%Y-%m-%d %H:%M:%S"),
                                  arrival.strftime("%Y-%m-%d %H:%M:%S"), "none" if fare is None else fare])


if __name__ == "__main__":
    main()
