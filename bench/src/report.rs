//! The scenarios' figures, their targets, and the table of medians.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::Side;
use crate::scenarios::Figures;

/// What a figure must satisfy.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Goal {
    /// No target: shown for context.
    Info,
    /// The ratio of the medians (ours/axum, ours/floor, a row over its peer) must be at most
    /// this.
    RatioAtMost(f64),
    /// The ratio of the medians must be at least this (a rate).
    RatioAtLeast(f64),
    /// Our median must be at most this (an absolute bound).
    OursAtMost(f64),
}

/// One figure of a scenario.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metric {
    pub(crate) key: &'static str,
    pub(crate) label: &'static str,
    /// The target of ours against axum.
    pub(crate) goal: Goal,
    /// The target of ours against the floor (where the scenario has it as a side).
    pub(crate) floor: Goal,
    pub(crate) digits: usize,
}

/// A scenario as the report shows it.
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub(crate) id: char,
    /// What each run measures, in the order of the first run.
    pub(crate) sides: &'static [Side],
    pub(crate) title: String,
    /// The rows of the table against axum (none for a scenario of ours only).
    pub(crate) metrics: Vec<Metric>,
}

/// One figure of one scenario and side (a [`Side`] of the table against axum, or another
/// set of sides, such as the cluster benchmark's).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Figure<S = Side> {
    pub(crate) scenario: char,
    pub(crate) side: S,
    pub(crate) key: &'static str,
}

/// A row of the second table: a figure against another of the same run.
#[derive(Clone, Debug)]
pub(crate) struct Comparison<S = Side> {
    /// The scenario that must have run for the row to be shown.
    pub(crate) scenario: char,
    /// The first cell (empty to continue the group above).
    pub(crate) title: String,
    pub(crate) label: String,
    pub(crate) value: Figure<S>,
    pub(crate) peer_label: &'static str,
    pub(crate) peer: Figure<S>,
    /// `RatioAtMost` and `RatioAtLeast` bound value/peer; `OursAtMost` bounds the value.
    pub(crate) goal: Goal,
    pub(crate) digits: usize,
}

/// Every run's figures, by scenario and side.
pub(crate) struct Results<S = Side> {
    figures: BTreeMap<(char, S), Vec<Figures>>,
}

impl<S> Default for Results<S> {
    fn default() -> Self {
        Self {
            figures: BTreeMap::new(),
        }
    }
}

impl<S: Copy + Ord> Results<S> {
    pub(crate) fn add(&mut self, scenario: char, side: S, figures: Figures) {
        self.figures
            .entry((scenario, side))
            .or_default()
            .push(figures);
    }

    fn values(&self, scenario: char, side: S, key: &str) -> Vec<f64> {
        self.figures
            .get(&(scenario, side))
            .map(|runs| {
                runs.iter()
                    .filter_map(|figures| figures.iter().find(|(k, _)| *k == key).map(|&(_, v)| v))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The second table: each row's median [min-max], its peer's, the ratio of the medians.
    pub(crate) fn comparison_table(&self, rows: &[Comparison<S>]) -> String {
        let mut out = String::new();
        out.push_str(
            "| scenario | metric | median [min-max] | peer (same run) | peer: median [min-max] | ratio | target | |\n",
        );
        out.push_str("| --- | --- | ---: | --- | ---: | ---: | --- | --- |\n");
        for row in rows {
            let of = |figure: Figure<S>| {
                Summary::of(self.values(figure.scenario, figure.side, figure.key))
            };
            let (value, peer) = (of(row.value), of(row.peer));
            let (ratio, target, verdict) = judge(value.as_ref(), peer.as_ref(), row.goal, "value");
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {ratio} | {target} | {verdict} |",
                row.title,
                row.label,
                Summary::show(value.as_ref(), row.digits),
                row.peer_label,
                Summary::show(peer.as_ref(), row.digits),
            );
        }
        out
    }
}

impl Results<Side> {
    /// The table: medians, spreads (min-max), ratios, targets and verdicts, in Markdown; with
    /// the floor's columns when a scenario has the floor as a side.
    pub(crate) fn table(&self, scenarios: &[Scenario]) -> String {
        let floor = scenarios.iter().any(|s| s.sides.contains(&Side::Floor));
        let mut out = String::new();
        out.push_str(
            "| scenario | metric | ours: median [min-max] | axum: median [min-max] | ours/axum | target | |",
        );
        out.push_str(if floor {
            " floor: median [min-max] | ours/floor | target | |\n"
        } else {
            "\n"
        });
        out.push_str("| --- | --- | ---: | ---: | ---: | --- | --- |");
        out.push_str(if floor {
            " ---: | ---: | --- | --- |\n"
        } else {
            "\n"
        });
        for scenario in scenarios {
            for (i, metric) in scenario.metrics.iter().enumerate() {
                let of = |side| Summary::of(self.values(scenario.id, side, metric.key));
                let ours = of(Side::Ours);
                let title = if i == 0 {
                    format!("({}) {}", scenario.id, scenario.title)
                } else {
                    String::new()
                };
                let _ = write!(
                    out,
                    "| {title} | {} | {} |",
                    metric.label,
                    Summary::show(ours.as_ref(), metric.digits)
                );
                let mut peers = vec![(Side::Axum, metric.goal)];
                if floor {
                    peers.push((Side::Floor, metric.floor));
                }
                for (side, goal) in peers {
                    let peer = of(side);
                    let (ratio, target, verdict) =
                        judge(ours.as_ref(), peer.as_ref(), goal, "ours");
                    let _ = write!(
                        out,
                        " {} | {ratio} | {target} | {verdict} |",
                        Summary::show(peer.as_ref(), metric.digits),
                    );
                }
                out.push('\n');
            }
        }
        out
    }
}

/// The ratio of two medians as shown, and the target and verdict of `goal` on it; an
/// `OursAtMost` goal bounds `value` instead, named `who` in the target.
fn judge(
    value: Option<&Summary>,
    peer: Option<&Summary>,
    goal: Goal,
    who: &str,
) -> (String, String, &'static str) {
    let ratio = match (value, peer) {
        (Some(v), Some(p)) if p.median > 0.0 => Some(v.median / p.median),
        _ => None,
    };
    let (target, verdict) = match goal {
        Goal::OursAtMost(bound) => (
            format!("{who} <= {bound}"),
            verdict(value.map(|v| v.median <= bound)),
        ),
        goal => ratio_goal(goal, ratio),
    };
    let ratio = ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
    (ratio, target, verdict)
}

/// The target and verdict of a goal on a ratio (`Info`: none).
fn ratio_goal(goal: Goal, ratio: Option<f64>) -> (String, &'static str) {
    match goal {
        Goal::RatioAtMost(bound) => (
            format!("ratio <= {bound}"),
            verdict(ratio.map(|r| r <= bound)),
        ),
        Goal::RatioAtLeast(bound) => (
            format!("ratio >= {bound}"),
            verdict(ratio.map(|r| r >= bound)),
        ),
        Goal::Info | Goal::OursAtMost(_) => (String::from("-"), ""),
    }
}

fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "pass",
        Some(false) => "FAIL",
        None => "n/a",
    }
}

struct Summary {
    median: f64,
    min: f64,
    max: f64,
    runs: usize,
}

impl Summary {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
            runs: n,
        })
    }

    fn show(summary: Option<&Self>, digits: usize) -> String {
        match summary {
            None => "-".to_owned(),
            Some(s) if s.runs == 1 => number(s.median, digits),
            Some(s) => format!(
                "{} [{}-{}]",
                number(s.median, digits),
                number(s.min, digits),
                number(s.max, digits)
            ),
        }
    }
}

/// One run's figures as `name value, name value`, for the progress lines.
pub(crate) fn figures_line(figures: &[(&'static str, f64)]) -> String {
    let shown: Vec<String> = figures
        .iter()
        .map(|(key, value)| format!("{key} {}", number(*value, 3)))
        .collect();
    shown.join(", ")
}

/// `digits` decimals, with thousands separators for large values.
pub(crate) fn number(value: f64, digits: usize) -> String {
    let text = format!("{value:.digits$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, int) = int.strip_prefix('-').map_or(("", int), |rest| ("-", rest));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}
