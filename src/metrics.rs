//! `captchaify_metrics`: what the module counts and holds, in Prometheus's text exposition
//! format (version 0.0.4).
//!
//! Conventions: every name starts with `captchaify_`; counters end in `_total`; times are
//! seconds and timestamps Unix seconds; labels take a bounded set of values (location names
//! come from the configuration, see [`crate::state::metrics`]).

use core::fmt::Write;

use crate::challenge::ChallengeKind;
use crate::state::metrics::{ChallengeEvent, RequestVerdict, Snapshot, SOLVE_BUCKETS};
use crate::state::table::Stats;

/// The `Content-Type` of the exposition (nginx adds `; charset=utf-8`).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// One shared table: which zone, which table, and its counters.
#[derive(Debug, Clone)]
pub struct TableGauge {
    pub zone: String,
    pub table: &'static str,
    pub stats: Stats,
}

/// A reputation source's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGauge {
    pub source: &'static str,
    /// Addresses in the list in force (bulk lists), or answers kept (per-address sources).
    pub entries: u64,
    /// When it last succeeded (Unix seconds); 0 for never.
    pub refreshed_at: u64,
    /// Answers received so far (per-address sources only).
    pub answers: Option<u64>,
}

/// CrowdSec's state, when a Local API is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrowdsecGauge {
    /// Decisions held (bans and captchas for addresses, ranges, countries and networks).
    pub decisions: u64,
    /// When the last pull succeeded (Unix seconds); 0 for never.
    pub pulled_at: u64,
}

/// Everything one scrape shows.
#[derive(Debug, Clone)]
pub struct Exposition<'a> {
    pub counters: &'a Snapshot,
    pub tables: Vec<TableGauge>,
    pub sources: Vec<SourceGauge>,
    pub crowdsec: Option<CrowdsecGauge>,
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
fn label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample: `name{k="v",...} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl core::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            out.push_str("=\"");
            label(out, value);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

const HARDNESS_NAMES: [&str; 3] = ["1", "2", "3"];

impl Exposition<'_> {
    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        let counters = self.counters;

        family(
            &mut out,
            "captchaify_requests_total",
            "counter",
            "Requests the module decided, by location and verdict (dry_run: a refusal logged, not carried out).",
        );
        for (location, counts) in &counters.locations {
            for verdict in RequestVerdict::ALL {
                let labels = [("location", location.as_str()), ("verdict", verdict.name())];
                sample(&mut out, "captchaify_requests_total", &labels, counts[verdict as usize]);
            }
        }

        family(
            &mut out,
            "captchaify_challenges_total",
            "counter",
            "Captcha challenges by kind, hardness and event: issued (page sent), solved, failed (wrong answer), expired (answered too late).",
        );
        for kind in ChallengeKind::ALL {
            for (h, hardness) in HARDNESS_NAMES.iter().enumerate() {
                for event in ChallengeEvent::ALL {
                    let labels = [
                        ("kind", kind.name()),
                        ("hardness", *hardness),
                        ("event", event.name()),
                    ];
                    let value = counters.challenges[kind as usize][h][event as usize];
                    sample(&mut out, "captchaify_challenges_total", &labels, value);
                }
            }
        }

        family(
            &mut out,
            "captchaify_challenge_solve_seconds",
            "histogram",
            "Time from a captcha page to its right answer, by kind (whole seconds).",
        );
        for kind in ChallengeKind::ALL {
            let times = &counters.solve_time[kind as usize];
            let mut cumulative = 0;
            for (i, count) in times.buckets.iter().enumerate() {
                cumulative += count;
                let bound = SOLVE_BUCKETS.get(i).map_or("+Inf".to_string(), u64::to_string);
                let labels = [("kind", kind.name()), ("le", bound.as_str())];
                sample(&mut out, "captchaify_challenge_solve_seconds_bucket", &labels, cumulative);
            }
            let labels = [("kind", kind.name())];
            sample(&mut out, "captchaify_challenge_solve_seconds_sum", &labels, times.sum);
            sample(&mut out, "captchaify_challenge_solve_seconds_count", &labels, cumulative);
        }

        family(
            &mut out,
            "captchaify_precheck_sent_total",
            "counter",
            "Pre-check pages sent (the cookie a client must keep before any captcha is drawn).",
        );
        sample(&mut out, "captchaify_precheck_sent_total", &[], counters.precheck_sent);
        family(
            &mut out,
            "captchaify_precheck_passed_total",
            "counter",
            "Requests that came back with the pre-check's proof and went on to the captcha.",
        );
        sample(&mut out, "captchaify_precheck_passed_total", &[], counters.precheck_passed);

        self.render_tables(&mut out);
        self.render_sources(&mut out);

        family(
            &mut out,
            "captchaify_crowdsec_alerts_sent_total",
            "counter",
            "Alerts the CrowdSec Local API accepted from this server.",
        );
        sample(&mut out, "captchaify_crowdsec_alerts_sent_total", &[], counters.crowdsec_alerts);
        if let Some(crowdsec) = self.crowdsec {
            family(
                &mut out,
                "captchaify_crowdsec_decisions",
                "gauge",
                "CrowdSec decisions held (in force or expiring).",
            );
            sample(&mut out, "captchaify_crowdsec_decisions", &[], crowdsec.decisions);
            family(
                &mut out,
                "captchaify_crowdsec_last_pull_timestamp_seconds",
                "gauge",
                "When the last pull of decisions from the Local API succeeded (0: never).",
            );
            sample(
                &mut out,
                "captchaify_crowdsec_last_pull_timestamp_seconds",
                &[],
                crowdsec.pulled_at,
            );
        }
        out
    }

    fn render_tables(&self, out: &mut String) {
        let families: [(&str, &str, &str, fn(&Stats) -> u64); 4] = [
            ("captchaify_table_capacity", "gauge", "Entries a shared table can hold.", |s| {
                s.capacity as u64
            }),
            (
                "captchaify_table_entries",
                "gauge",
                "Entries a shared table holds (expired ones count until their slot is reused).",
                |s| s.len as u64,
            ),
            (
                "captchaify_table_evictions_total",
                "counter",
                "Live entries evicted to make room: above zero, the zone is too small.",
                |s| s.evictions,
            ),
            (
                "captchaify_table_lock_takeovers_total",
                "counter",
                "Times a table's lock was taken over from a process that died holding it.",
                |s| s.takeovers,
            ),
        ];
        for (name, kind, help, value) in families {
            family(out, name, kind, help);
            for table in &self.tables {
                let labels = [("zone", table.zone.as_str()), ("table", table.table)];
                sample(out, name, &labels, value(&table.stats));
            }
        }
    }

    fn render_sources(&self, out: &mut String) {
        family(
            out,
            "captchaify_reputation_entries",
            "gauge",
            "Addresses a reputation source's list holds (tor), or its answers kept (ipapi, stopforumspam together).",
        );
        for source in &self.sources {
            sample(out, "captchaify_reputation_entries", &[("source", source.source)], source.entries);
        }
        family(
            out,
            "captchaify_reputation_last_success_timestamp_seconds",
            "gauge",
            "When a reputation source last succeeded: the list fetched, or an answer received (0: never).",
        );
        for source in &self.sources {
            let labels = [("source", source.source)];
            let name = "captchaify_reputation_last_success_timestamp_seconds";
            sample(out, name, &labels, source.refreshed_at);
        }
        family(
            out,
            "captchaify_reputation_answers_total",
            "counter",
            "Answers a per-address reputation source gave.",
        );
        for source in &self.sources {
            if let Some(answers) = source.answers {
                let labels = [("source", source.source)];
                sample(out, "captchaify_reputation_answers_total", &labels, answers);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::metrics::{Metrics, PrecheckEvent};

    fn stats(capacity: usize, len: usize, evictions: u64) -> Stats {
        Stats {
            capacity,
            len,
            evictions,
            refusals: 0,
            takeovers: 0,
            dead_holder: None,
            lock_holder: None,
        }
    }

    fn exposition(snapshot: &Snapshot) -> String {
        Exposition {
            counters: snapshot,
            tables: vec![TableGauge {
                zone: "captchaify".into(),
                table: "rate",
                stats: stats(1000, 12, 3),
            }],
            sources: vec![SourceGauge {
                source: "tor",
                entries: 1234,
                refreshed_at: 1_800_000_000,
                answers: None,
            }],
            crowdsec: Some(CrowdsecGauge {
                decisions: 7,
                pulled_at: 1_800_000_100,
            }),
        }
        .render()
    }

    #[test]
    fn the_exposition_says_what_was_counted() {
        let metrics = Metrics::default();
        let login = metrics.location("example.com /login");
        metrics.count_request(login, RequestVerdict::Challenged);
        metrics.count_request(login, RequestVerdict::Challenged);
        metrics.count_challenge(1, 2, ChallengeEvent::Issued);
        metrics.observe_solve(0, 4);
        metrics.count_precheck(PrecheckEvent::Sent);
        metrics.count_crowdsec_alerts(2);
        let text = exposition(&metrics.snapshot());
        for line in [
            "captchaify_requests_total{location=\"example.com /login\",verdict=\"challenged\"} 2",
            "captchaify_requests_total{location=\"example.com /login\",verdict=\"passed\"} 0",
            "captchaify_challenges_total{kind=\"emoji\",hardness=\"2\",event=\"issued\"} 1",
            "captchaify_challenges_total{kind=\"text\",hardness=\"1\",event=\"solved\"} 0",
            "captchaify_challenge_solve_seconds_bucket{kind=\"text\",le=\"2\"} 0",
            "captchaify_challenge_solve_seconds_bucket{kind=\"text\",le=\"5\"} 1",
            "captchaify_challenge_solve_seconds_bucket{kind=\"text\",le=\"+Inf\"} 1",
            "captchaify_challenge_solve_seconds_sum{kind=\"text\"} 4",
            "captchaify_challenge_solve_seconds_count{kind=\"text\"} 1",
            "captchaify_precheck_sent_total 1",
            "captchaify_precheck_passed_total 0",
            "captchaify_table_capacity{zone=\"captchaify\",table=\"rate\"} 1000",
            "captchaify_table_entries{zone=\"captchaify\",table=\"rate\"} 12",
            "captchaify_table_evictions_total{zone=\"captchaify\",table=\"rate\"} 3",
            "captchaify_reputation_entries{source=\"tor\"} 1234",
            "captchaify_reputation_last_success_timestamp_seconds{source=\"tor\"} 1800000000",
            "captchaify_crowdsec_alerts_sent_total 2",
            "captchaify_crowdsec_decisions 7",
            "captchaify_crowdsec_last_pull_timestamp_seconds 1800000100",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn every_sample_belongs_to_a_family_declared_once() {
        let metrics = Metrics::default();
        metrics.count_request(metrics.location("/"), RequestVerdict::Passed);
        let text = exposition(&metrics.snapshot());
        let mut declared: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!declared.contains(&name), "{name} declared twice");
                declared.push(name);
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| declared.contains(base))
                .unwrap_or(name);
            assert_eq!(declared.last(), Some(&family), "{line} outside its family");
            assert!(
                name.ends_with("_total") == declared_kind(&text, family).eq("counter"),
                "{name}: counters, and only they, end in _total"
            );
        }
    }

    fn declared_kind<'a>(text: &'a str, family: &str) -> &'a str {
        let prefix = format!("# TYPE {family} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or("")
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.count_request(metrics.location("a\"b\\c\nd"), RequestVerdict::Blocked);
        let text = exposition(&metrics.snapshot());
        assert!(text.contains("location=\"a\\\"b\\\\c\\nd\",verdict=\"blocked\"} 1"));
    }

    #[test]
    fn kinds_are_in_the_counters_order() {
        for (index, kind) in ChallengeKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index);
        }
    }
}
