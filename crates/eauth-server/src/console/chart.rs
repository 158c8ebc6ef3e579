//! The outcome chart on an application's page: sign-ins per hour (or day), stacked by how
//! they ended, as an SVG drawn by the server.
//!
//! This module does the arithmetic (buckets, scale, coordinates); the template
//! (`console/chart.html`) only writes the numbers into elements, escaped like everything
//! else, and the stylesheet colours them.

use eauth_core::SessionStatus;
use eauth_store::OutcomeCount;

use super::views::civil_from_days;

/// An hour, in seconds.
pub(super) const HOUR: i64 = 3600;
/// A day, in seconds.
pub(super) const DAY: i64 = 86_400;

/// How sessions end, in stacking order (bottom first).
pub(super) const OUTCOMES: [SessionStatus; 4] = [
    SessionStatus::Approved,
    SessionStatus::Rejected,
    SessionStatus::TimedOut,
    SessionStatus::Error,
];

/// The word for an outcome on the pages.
pub(super) fn label(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Pending => "Pending",
        SessionStatus::Approved => "Approved",
        SessionStatus::Rejected => "Rejected",
        SessionStatus::TimedOut => "Timeout",
        SessionStatus::Error => "Error",
    }
}

/// The CSS class that colours an outcome.
pub(super) fn class(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Pending => "pending",
        SessionStatus::Approved => "approved",
        SessionStatus::Rejected => "rejected",
        SessionStatus::TimedOut => "timeout",
        SessionStatus::Error => "error",
    }
}

/// The start of the first of `count` buckets of `bucket` seconds, the last of which holds
/// `now`; and `count`.
pub(super) fn window(now: i64, bucket: i64, count: usize) -> (i64, usize) {
    let back = i64::try_from(count).unwrap_or(1).saturating_sub(1);
    ((now.div_euclid(bucket) - back) * bucket, count)
}

/// `14:00`, for the hourly chart's axis.
fn hour_label(start: i64) -> String {
    format!("{:02}:00", start.rem_euclid(DAY) / HOUR)
}

/// `11-29`, for the daily chart's axis.
fn day_label(start: i64) -> String {
    let (_, month, day) = civil_from_days(start.div_euclid(DAY));
    format!("{month:02}-{day:02}")
}

// The drawing's coordinate system; the stylesheet scales it to the page's width. Its margins
// hold the labels at the phone's larger font (24 units) too: the top of the scale's highest
// number, and the day under the bar next to the scale's "0", which sits below that "0".
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 30.0;
/// The axis labels' baseline, above the drawing's bottom edge.
const LABEL_BASELINE_FROM_BOTTOM: f64 = 4.0;

/// One coloured part of a bar.
pub(super) struct Segment {
    pub(super) y: String,
    pub(super) height: String,
    pub(super) class: &'static str,
}

/// One bucket's bar.
pub(super) struct Bar {
    pub(super) x: String,
    pub(super) width: String,
    /// What a pointer over it shows: the bucket and its counts in words.
    pub(super) title: String,
    pub(super) segments: Vec<Segment>,
}

/// A horizontal line of the scale, with its value.
pub(super) struct Gridline {
    pub(super) y: String,
    pub(super) label: String,
}

/// A label under the bars.
pub(super) struct AxisLabel {
    pub(super) x: String,
    pub(super) text: String,
}

/// A chart, ready for the template.
pub(super) struct Chart {
    pub(super) title: &'static str,
    pub(super) width: String,
    pub(super) height: String,
    pub(super) left: String,
    pub(super) right: String,
    pub(super) top: String,
    pub(super) plot_height: String,
    pub(super) label_y: String,
    pub(super) middle_x: String,
    pub(super) middle_y: String,
    pub(super) bars: Vec<Bar>,
    pub(super) gridlines: Vec<Gridline>,
    pub(super) labels: Vec<AxisLabel>,
    /// Finished sessions in the whole window.
    pub(super) total: u64,
    /// The chart in words, for screen readers.
    pub(super) summary: String,
}

fn n(value: f64) -> String {
    format!("{value:.1}")
}

/// The smallest "round" number at least `max`, for the top of the scale: 4, 10, 20, 50, 100,
/// 200, 500, ... (each with a whole half, for the middle line).
fn scale_top(max: u64) -> u64 {
    if max <= 4 {
        return 4;
    }
    let mut magnitude = 10u64;
    loop {
        for step in [1, 2, 5] {
            let top = step * magnitude;
            if top >= max {
                return top;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

impl Chart {
    /// The chart of `counts` over `buckets` buckets of [`HOUR`] or [`DAY`] from `since`.
    pub(super) fn build(
        title: &'static str,
        counts: &[OutcomeCount],
        since: i64,
        buckets: usize,
        bucket_secs: i64,
    ) -> Self {
        let label = if bucket_secs == HOUR {
            hour_label
        } else {
            day_label
        };
        let per_bucket: Vec<[u64; 4]> = (0..buckets)
            .map(|i| {
                let start = since + i64::try_from(i).unwrap_or(0) * bucket_secs;
                let mut row = [0u64; 4];
                for count in counts.iter().filter(|c| c.bucket_start == start) {
                    if let Some(k) = OUTCOMES.iter().position(|s| *s == count.status) {
                        row[k] += count.count;
                    }
                }
                row
            })
            .collect();
        let top = scale_top(per_bucket.iter().map(|r| r.iter().sum()).max().unwrap_or(0));
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        let baseline = TOP + plot_height;
        // Counts are small enough for f64 to hold exactly.
        #[allow(clippy::cast_precision_loss)]
        let scale = |value: u64| value as f64 / top as f64 * plot_height;
        #[allow(clippy::cast_precision_loss)]
        let slot = plot_width / buckets.max(1) as f64;

        let mut bars = Vec::new();
        let mut labels = Vec::new();
        for (i, row) in per_bucket.iter().enumerate() {
            let start = since + i64::try_from(i).unwrap_or(0) * bucket_secs;
            #[allow(clippy::cast_precision_loss)]
            let x = LEFT + slot * i as f64;
            let mut y = baseline;
            let mut segments = Vec::new();
            for (k, &count) in row.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                let height = scale(count);
                y -= height;
                segments.push(Segment {
                    y: n(y),
                    height: n(height),
                    class: class(OUTCOMES[k]),
                });
            }
            bars.push(Bar {
                x: n(x + slot * 0.15),
                width: n(slot * 0.7),
                title: describe_bucket(start, bucket_secs, row),
                segments,
            });
            // Every sixth hour, every seventh day counted back from today.
            let labelled = if bucket_secs == HOUR {
                start.rem_euclid(DAY) / HOUR % 6 == 0
            } else {
                (buckets - 1 - i).is_multiple_of(7)
            };
            if labelled {
                labels.push(AxisLabel {
                    x: n(x + slot / 2.0),
                    text: label(start),
                });
            }
        }
        let gridlines = [top, top / 2, 0]
            .into_iter()
            .map(|value| Gridline {
                y: n(baseline - scale(value)),
                label: value.to_string(),
            })
            .collect();
        let totals: Vec<u64> = (0..4)
            .map(|k| per_bucket.iter().map(|r| r[k]).sum())
            .collect();
        let total = totals.iter().sum();
        let summary = format!(
            "{title}: {total} finished sign-ins; {}",
            describe_counts(&totals)
        );
        Self {
            title,
            width: n(WIDTH),
            height: n(HEIGHT),
            left: n(LEFT),
            right: n(WIDTH - RIGHT),
            top: n(TOP),
            plot_height: n(plot_height),
            label_y: n(HEIGHT - LABEL_BASELINE_FROM_BOTTOM),
            middle_x: n(LEFT + plot_width / 2.0),
            middle_y: n(TOP + plot_height / 2.0),
            bars,
            gridlines,
            labels,
            total,
            summary,
        }
    }
}

/// "3 approved, 1 rejected" (outcomes that did not occur are left out).
fn describe_counts(counts: &[u64]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .zip(OUTCOMES)
        .filter(|(count, _)| **count > 0)
        .map(|(count, status)| format!("{count} {}", label(status).to_lowercase()))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

fn describe_bucket(start: i64, bucket_secs: i64, counts: &[u64; 4]) -> String {
    let (year, month, day) = civil_from_days(start.div_euclid(DAY));
    let when = if bucket_secs == HOUR {
        format!(
            "{year:04}-{month:02}-{day:02} {}–{} UTC",
            hour_label(start),
            hour_label(start + HOUR)
        )
    } else {
        format!("{year:04}-{month:02}-{day:02}")
    };
    format!("{when}: {}", describe_counts(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(bucket_start: i64, status: SessionStatus, count: u64) -> OutcomeCount {
        OutcomeCount {
            bucket_start,
            status,
            count,
        }
    }

    #[test]
    fn the_window_ends_with_the_current_bucket() {
        let now = 1_800_000_000 + 1234; // 08:20:34 UTC
        let (since, buckets) = window(now, HOUR, 24);
        assert_eq!(buckets, 24);
        assert_eq!(since, 1_800_000_000 - 23 * HOUR);
        let (since, _) = window(now, DAY, 30);
        assert_eq!(since % DAY, 0);
        assert_eq!((now - since) / DAY, 29);
    }

    #[test]
    fn the_scale_rounds_up_to_a_number_with_a_whole_half() {
        let cases = [
            (0, 4),
            (3, 4),
            (5, 10),
            (10, 10),
            (11, 20),
            (21, 50),
            (51, 100),
            (999, 1000),
        ];
        for (max, top) in cases {
            assert_eq!(scale_top(max), top, "{max}");
        }
    }

    #[test]
    fn bars_stack_their_outcomes_to_scale() {
        let since = 1_800_000_000;
        let counts = [
            count(since, SessionStatus::Approved, 6),
            count(since, SessionStatus::Rejected, 2),
            count(since + 2 * HOUR, SessionStatus::TimedOut, 1),
            // Outside the window: ignored.
            count(since + 30 * HOUR, SessionStatus::Approved, 100),
        ];
        let chart = Chart::build("t", &counts, since, 24, HOUR);
        assert_eq!(chart.bars.len(), 24);
        assert_eq!(chart.total, 9);
        // 8 in the busiest hour: the scale goes to 10; the plot is 190 units high.
        let first = &chart.bars[0];
        let heights: Vec<&str> = first.segments.iter().map(|s| s.height.as_str()).collect();
        assert_eq!(heights, ["114.0", "38.0"]);
        let classes: Vec<&str> = first.segments.iter().map(|s| s.class).collect();
        assert_eq!(classes, ["approved", "rejected"]);
        // Stacked: the second starts where the first ends.
        assert_eq!(first.segments[0].y, "96.0");
        assert_eq!(first.segments[1].y, "58.0");
        assert!(chart.bars[1].segments.is_empty());
        assert_eq!(
            first.title,
            "2027-01-15 08:00–09:00 UTC: 6 approved, 2 rejected"
        );
        let scale: Vec<&str> = chart.gridlines.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(scale, ["10", "5", "0"]);
        assert_eq!(
            chart.summary,
            "t: 9 finished sign-ins; 6 approved, 2 rejected, 1 timeout"
        );
        // 08:00 is not a multiple of six hours; 12:00, 18:00, 00:00 and 06:00 are labelled.
        let labels: Vec<&str> = chart.labels.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(labels, ["12:00", "18:00", "00:00", "06:00"]);
    }

    #[test]
    fn daily_charts_label_every_seventh_day_back_from_today() {
        let (since, buckets) = window(1_800_000_000, DAY, 30);
        let chart = Chart::build("t", &[], since, buckets, DAY);
        let labels: Vec<&str> = chart.labels.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(labels, ["12-18", "12-25", "01-01", "01-08", "01-15"]);
        assert_eq!(chart.total, 0);
        assert!(chart.summary.ends_with("0 finished sign-ins; none"));
    }
}
