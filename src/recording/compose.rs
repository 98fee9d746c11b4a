//! The plan of one watchable file made from a recording's per-site files: the meeting as HQ
//! saw it (the stage with the floor holder large and the other sites small, or the grid), every
//! tile named, and the mixed audio of the sites that were forwarded. Pure: the recording's
//! index, the event log and the sites' names go in; the `ffmpeg` arguments and its filter graph
//! come out. [`super::composer`] runs them; this module never starts a process or reads a file.
//!
//! Timing: each per-site file starts at its `start_ms` (wall clock of its first packet) and its
//! own timestamps count from its first frame or packet; the graph shifts each file by its start
//! within the recording, so the sites line up in meeting time. Who is on the stage follows the
//! event log (`floor_granted`, `floor_revoked`, `floor_released`, `layout`), replayed from the
//! conference's start so a floor held before recording began is known.

use super::{Index, TrackEntry};
use crate::store::Event;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The composed picture (16:9, the pages' tile shape).
pub(crate) const WIDTH: u32 = 1280;
pub(crate) const HEIGHT: u32 = 720;
pub(crate) const FPS: u32 = 25;
/// The stage in the stage layout, top left; thumbnails fill the right column, then the row
/// below the stage.
const STAGE: Rect = Rect { x: 0, y: 0, w: 960, h: 540 };
const THUMB_W: u32 = 320;
const THUMB_H: u32 = 180;
/// Background between tiles, and of a tile with no picture at that moment.
const BACKGROUND: &str = "0x1e2226";
const TILE: &str = "0x000000";

/// Fonts tried for the sites' names, in order; each has the Vietnamese letters. Debian's
/// `fonts-dejavu-core` comes with Chromium and ffmpeg's own dependencies.
pub(crate) const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Rect {
    pub(crate) x: u32,
    pub(crate) y: u32,
    pub(crate) w: u32,
    pub(crate) h: u32,
}

/// What HQ's screen showed from `from_s` to `to_s` (seconds since the recording started).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Span {
    pub(crate) from_s: f64,
    pub(crate) to_s: f64,
    /// Every tile the same size (the chair's grid layout).
    pub(crate) grid: bool,
    /// The site on the stage (stage layout): the first floor holder, else the chair.
    pub(crate) stage: Option<String>,
}

/// Who held the floor and which layout was chosen over the recording, from the event log.
/// `events` are in the order written; those before `started_ms` only set the state at the
/// start. With no floor holder the chair is on the stage: it is who the sites were watching.
pub(crate) fn timeline(events: &[Event], started_ms: i64, stopped_ms: i64, chair: &str, max_holders: usize) -> Vec<Span> {
    let mut grid = false;
    let mut holders: Vec<String> = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    let duration = (stopped_ms - started_ms).max(0) as f64 / 1000.0;
    let mut from = 0.0;
    let stage_of = |holders: &[String]| Some(holders.first().cloned().unwrap_or_else(|| chair.to_string()));
    for e in events.iter().filter(|e| e.at_ms <= stopped_ms) {
        let (was_grid, was_stage) = (grid, stage_of(&holders));
        let site = e.site_id.clone().unwrap_or_default();
        match e.kind.as_str() {
            "floor_granted" => {
                holders.retain(|h| *h != site);
                if holders.len() >= max_holders.max(1) {
                    holders.remove(0);
                }
                holders.push(site);
            }
            "floor_revoked" | "floor_released" | "seat_released" => holders.retain(|h| *h != site),
            "layout" => grid = e.detail.eq_ignore_ascii_case("grid"),
            "conference_started" | "conference_ended" => {
                holders.clear();
                grid = false;
            }
            _ => continue,
        }
        let at = ((e.at_ms - started_ms) as f64 / 1000.0).clamp(0.0, duration);
        if (grid, stage_of(&holders)) != (was_grid, was_stage.clone()) && at > from {
            spans.push(Span { from_s: from, to_s: at, grid: was_grid, stage: if was_grid { None } else { was_stage } });
            from = at;
        }
    }
    spans.push(Span { from_s: from, to_s: duration, grid, stage: if grid { None } else { stage_of(&holders) } });
    // Two spans that show the same merge (a change before the recording started, say).
    let mut merged: Vec<Span> = Vec::new();
    for s in spans {
        match merged.last_mut() {
            Some(last) if last.grid == s.grid && last.stage == s.stage => last.to_s = s.to_s,
            _ => merged.push(s),
        }
    }
    merged
}

/// Where each shown site's tile is during one span: `shown` in the order tiles are filled.
pub(crate) fn tiles(span: &Span, shown: &[String]) -> Vec<(String, Rect)> {
    match &span.stage {
        Some(stage) if !span.grid => {
            let mut out = vec![(stage.clone(), STAGE)];
            let slots = (0..HEIGHT / THUMB_H)
                .map(|k| Rect { x: WIDTH - THUMB_W, y: k * THUMB_H, w: THUMB_W, h: THUMB_H })
                .chain((0..(WIDTH - THUMB_W) / THUMB_W).map(|k| Rect { x: k * THUMB_W, y: STAGE.h, w: THUMB_W, h: THUMB_H }));
            out.extend(shown.iter().filter(|s| *s != stage).cloned().zip(slots));
            out
        }
        _ => {
            let n = shown.len().max(1) as u32;
            let cols = (1..=n).find(|c| c * c >= n).unwrap_or(1);
            let rows = n.div_ceil(cols);
            // Even sizes (4:2:0 chroma), 16:9, centred.
            let w = (WIDTH / cols) & !1;
            let h = (w * 9 / 16).min(HEIGHT / rows) & !1;
            let (x0, y0) = ((WIDTH - w * cols) / 2, (HEIGHT - h * rows) / 2);
            shown
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let (c, r) = (i as u32 % cols, i as u32 / cols);
                    (s.clone(), Rect { x: x0 + c * w, y: y0 + r * h, w, h })
                })
                .collect()
        }
    }
}

/// A composition ready to run: input files (in order) and the filter graph that makes
/// `[vout]` and `[aout]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) inputs: Vec<PathBuf>,
    pub(crate) graph: String,
    pub(crate) duration_s: f64,
}

/// How the encoder is held back so a meeting running at the same time keeps its cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub(crate) threads: u32,
}

/// Plans the composed file of recording `index` (its files in `dir`). `sites`: every
/// configured site as (id, name), in config order; `spans` from [`timeline`]; `font`: a TTF
/// with Vietnamese letters, or `None` (tiles then carry no names).
pub(crate) fn plan(index: &Index, dir: &Path, sites: &[(String, String)], spans: &[Span], font: Option<&Path>) -> Plan {
    let duration_s = (index.stopped_ms.unwrap_or(index.started_ms) - index.started_ms).max(0) as f64 / 1000.0;
    let recorded = |t: &TrackEntry| t.bytes > 0 || t.units > 0;
    let video: Vec<&TrackEntry> = index.tracks.iter().filter(|t| t.kind == "video" && recorded(t)).collect();
    let audio: Vec<&TrackEntry> = index.tracks.iter().filter(|t| t.kind == "audio" && recorded(t)).collect();
    // Sites with media in the recording, plus whoever was on the stage, in config order
    // (then any site the config no longer has).
    let mut ids: Vec<String> = sites.iter().map(|(id, _)| id.clone()).collect();
    for t in &index.tracks {
        if !ids.contains(&t.site) {
            ids.push(t.site.clone());
        }
    }
    let shown: Vec<String> =
        ids.into_iter().filter(|id| index.tracks.iter().any(|t| &t.site == id && recorded(t)) || spans.iter().any(|s| s.stage.as_ref() == Some(id))).collect();
    let name = |id: &str| sites.iter().find(|(s, _)| s == id).map_or(id.to_string(), |(_, n)| n.clone());

    // Each site's distinct places, with the spans it is there (ffmpeg's `enable`).
    let mut places: Vec<(String, Rect, String)> = Vec::new();
    for span in spans.iter().filter(|s| s.to_s > s.from_s) {
        for (site, rect) in tiles(span, &shown) {
            let between = format!("between(t,{:.3},{:.3})", span.from_s, span.to_s);
            match places.iter_mut().find(|(s, r, _)| *s == site && *r == rect) {
                Some((_, _, enable)) => {
                    enable.push('+');
                    enable.push_str(&between);
                }
                None => places.push((site, rect, between)),
            }
        }
    }

    let mut g = String::new();
    let mut inputs = Vec::new();
    let _ = write!(g, "color=c={BACKGROUND}:s={WIDTH}x{HEIGHT}:r={FPS}:d={duration_s:.3}");
    for (_, r, enable) in &places {
        let _ = write!(g, ",drawbox=x={}:y={}:w={}:h={}:color={TILE}:t=fill:enable='{enable}'", r.x, r.y, r.w, r.h);
    }
    g.push_str("[bg];\n");
    let mut last = "bg".to_string();
    let mut n = 0;
    for t in &video {
        let k = inputs.len();
        inputs.push(dir.join(&t.file));
        let mine: Vec<&(String, Rect, String)> = places.iter().filter(|(s, _, _)| *s == t.site).collect();
        if mine.is_empty() {
            let _ = writeln!(g, "[{k}:v]nullsink;");
            continue;
        }
        let offset = (t.start_ms - index.started_ms) as f64 / 1000.0;
        let _ = write!(g, "[{k}:v]setpts=PTS+{offset:.3}/TB,split={}", mine.len());
        (0..mine.len()).for_each(|j| {
            let _ = write!(g, "[s{k}_{j}]");
        });
        g.push_str(";\n");
        for (j, (_, r, enable)) in mine.iter().enumerate() {
            let _ = writeln!(g, "[s{k}_{j}]scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}[v{k}_{j}];", w = r.w, h = r.h);
            n += 1;
            let next = format!("o{n}");
            let _ = writeln!(g, "[{last}][v{k}_{j}]overlay=x={}:y={}:eof_action=pass:enable='{enable}'[{next}];", r.x, r.y);
            last = next;
        }
    }
    let _ = write!(g, "[{last}]");
    if let Some(font) = font {
        for (site, r, enable) in &places {
            let size = if r.h >= 360 { 26 } else { 16 };
            let _ = write!(
                g,
                "drawtext=fontfile={}:expansion=none:text={}:x={}:y={}:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw={}:enable='{enable}',",
                escape(&font.to_string_lossy()),
                escape(&name(site)),
                r.x + size / 2,
                r.y + r.h - size * 3 / 2,
                size / 4,
            );
        }
    }
    g.push_str("format=yuv420p[vout];\n");

    // Audio: each file shifted to its start, its pauses filled with silence, all mixed at
    // their own level (what a site heard, less itself, is close enough to HQ's mix).
    let mut mixed = Vec::new();
    for t in &audio {
        let k = inputs.len();
        inputs.push(dir.join(&t.file));
        let offset = (t.start_ms - index.started_ms) as f64 / 1000.0;
        let _ = writeln!(g, "[{k}:a]asetpts=PTS+{offset:.3}/TB,aresample=48000:async=1:first_pts=0[a{k}];");
        mixed.push(format!("[a{k}]"));
    }
    match mixed.len() {
        0 => {
            let _ = write!(g, "anullsrc=r=48000:cl=stereo,atrim=0:{duration_s:.3}[aout]");
        }
        1 => {
            let _ = write!(g, "{}anull[aout]", mixed[0]);
        }
        k => {
            let _ = write!(g, "{}amix=inputs={k}:duration=longest:normalize=0[aout]", mixed.concat());
        }
    }
    Plan { inputs, graph: g, duration_s }
}

/// The ffmpeg arguments (after the program) that run `plan` with its graph in `graph_file`,
/// writing MP4 (H.264 + AAC) to `out`, progress as `key=value` lines on stdout.
pub(crate) fn args(plan: &Plan, graph_file: &Path, out: &Path, limits: Limits) -> Vec<OsString> {
    let mut a: Vec<OsString> = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"].map(OsString::from).to_vec();
    for input in &plan.inputs {
        a.push("-i".into());
        a.push(input.into());
    }
    let threads = limits.threads.max(1).to_string();
    let rest = ["-filter_complex_threads", "1", "-filter_complex_script"];
    a.extend(rest.map(OsString::from));
    a.push(graph_file.into());
    let rest = [
        "-map",
        "[vout]",
        "-map",
        "[aout]",
        "-t",
        &format!("{:.3}", plan.duration_s),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        &threads,
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-ac",
        "2",
        "-movflags",
        "+faststart",
        "-progress",
        "pipe:1",
        "-stats_period",
        "1",
        "-f",
        "mp4",
    ];
    a.extend(rest.map(OsString::from));
    a.push(out.into());
    a
}

/// A value for a filter graph: escaped for the filter's option parser, then for the graph's
/// (ffmpeg-filters(1), "Notes on filtergraph escaping").
pub(crate) fn escape(s: &str) -> String {
    let mut level1 = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '\'' | ':') {
            level1.push('\\');
        }
        level1.push(c);
    }
    let mut level2 = String::with_capacity(level1.len());
    for c in level1.chars() {
        if matches!(c, '\\' | '\'' | '[' | ']' | ',' | ';') {
            level2.push('\\');
        }
        level2.push(c);
    }
    level2
}

/// Microseconds of output written, from one line of `-progress` (`out_time_us=…`).
pub(crate) fn progress_us(line: &str) -> Option<u64> {
    line.trim().strip_prefix("out_time_us=")?.parse().ok()
}

/// The first font of [`FONTS`] present on this machine.
pub(crate) fn find_font() -> Option<PathBuf> {
    FONTS.iter().map(PathBuf::from).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: i64, site: &str, kind: &str, detail: &str) -> Event {
        Event { at_ms, site_id: Some(site.into()), kind: kind.into(), detail: detail.into(), params: None }
    }

    fn track(file: &str, site: &str, kind: &str, start_ms: i64) -> TrackEntry {
        TrackEntry {
            file: file.into(),
            site: site.into(),
            kind: kind.into(),
            codec: if kind == "audio" { "opus" } else { "vp8" }.into(),
            clock_rate: 90_000,
            start_ms,
            end_ms: start_ms + 1000,
            first_rtp_timestamp: 0,
            ssrc: 1,
            packets: 10,
            lost_packets: 0,
            units: 10,
            frames_dropped: 0,
            width: None,
            height: None,
            bytes: 1000,
        }
    }

    #[test]
    fn the_stage_follows_the_floor_and_the_layout() {
        let events = [
            ev(500, "hq", "conference_started", ""),
            ev(900, "phuong-2", "floor_granted", "1"), // before the recording: the state at its start
            ev(3_000, "phuong-2", "floor_released", "1"),
            ev(6_000, "hang-gai", "floor_requested", "2"),
            ev(7_000, "hang-gai", "floor_granted", "2"),
            ev(9_000, "hq", "layout", "Grid"),
            ev(10_000, "hq", "layout", "Stage"),
            ev(99_000, "hq", "floor_revoked", "2"), // after it: ignored
        ];
        let spans = timeline(&events, 1_000, 12_000, "hq", 1);
        let shape: Vec<(f64, f64, bool, Option<&str>)> = spans.iter().map(|s| (s.from_s, s.to_s, s.grid, s.stage.as_deref())).collect();
        assert_eq!(
            shape,
            [
                (0.0, 2.0, false, Some("phuong-2")),
                (2.0, 6.0, false, Some("hq")),
                (6.0, 8.0, false, Some("hang-gai")),
                (8.0, 9.0, true, None),
                (9.0, 11.0, false, Some("hang-gai")),
            ]
        );
        // A recording with no events: the chair on the stage throughout.
        assert_eq!(timeline(&[], 0, 5_000, "hq", 1), [Span { from_s: 0.0, to_s: 5.0, grid: false, stage: Some("hq".into()) }]);
        // One holder at a time: a grant replaces the holder.
        let replaced = timeline(&[ev(1_000, "a", "floor_granted", "1"), ev(2_000, "b", "floor_granted", "2")], 0, 3_000, "hq", 1);
        assert_eq!(replaced.last().unwrap().stage.as_deref(), Some("b"));
    }

    #[test]
    fn tiles_put_the_stage_large_and_the_others_small() {
        let shown: Vec<String> = ["hq", "hang-gai", "cua-nam"].map(String::from).to_vec();
        let stage = Span { from_s: 0.0, to_s: 1.0, grid: false, stage: Some("hang-gai".into()) };
        assert_eq!(
            tiles(&stage, &shown),
            [("hang-gai".into(), STAGE), ("hq".into(), Rect { x: 960, y: 0, w: 320, h: 180 }), ("cua-nam".into(), Rect { x: 960, y: 180, w: 320, h: 180 }),]
        );
        let grid = Span { grid: true, stage: None, ..stage };
        let g = tiles(&grid, &shown);
        assert_eq!(g.len(), 3);
        assert!(g.iter().all(|(_, r)| r.w == 640 && r.h == 360 && r.x + r.w <= WIDTH && r.y + r.h <= HEIGHT), "{g:?}");
        // Seven thumbnails fit beside and below the stage; an eighth other site is not shown.
        let many: Vec<String> = (0..9).map(|i| format!("s{i}")).collect();
        let t = tiles(&Span { grid: false, stage: Some("s0".into()), from_s: 0.0, to_s: 1.0 }, &many);
        assert_eq!(t.len(), 8);
        assert!(t.iter().all(|(_, r)| r.x + r.w <= WIDTH && r.y + r.h <= HEIGHT));
    }

    #[test]
    fn the_plan_lines_up_the_files_and_names_the_tiles() {
        let index = Index {
            id: "2026-12-05_08-00-00".into(),
            title: "Giao ban".into(),
            conference_id: Some(1),
            started_ms: 10_000,
            stopped_ms: Some(20_000),
            complete: true,
            error: None,
            dropped_packets: 0,
            tracks: vec![
                track("hq-video-01.ivf", "hq", "video", 10_200),
                track("hq-audio-01.ogg", "hq", "audio", 10_100),
                track("hang-gai-video-01.ivf", "hang-gai", "video", 11_500),
                track("hang-gai-audio-01.ogg", "hang-gai", "audio", 11_400),
            ],
        };
        let sites =
            [("hq", "Hội trường UBND"), ("hang-gai", "Phường Hàng Gai: tổ 1, 'A'"), ("cua-nam", "Cửa Nam")].map(|(a, b)| (a.to_string(), b.to_string()));
        let spans = timeline(&[ev(15_000, "hang-gai", "floor_granted", "1")], 10_000, 20_000, "hq", 1);
        let dir = Path::new("/rec/x");
        let p = plan(&index, dir, &sites, &spans, Some(Path::new("/fonts/DejaVuSans.ttf")));
        assert_eq!(p.duration_s, 10.0);
        // Videos first, then audio; a site without media (Cửa Nam) gets no tile.
        assert_eq!(p.inputs, ["hq-video-01.ivf", "hang-gai-video-01.ivf", "hq-audio-01.ogg", "hang-gai-audio-01.ogg"].map(|f| dir.join(f)));
        let g = &p.graph;
        assert!(g.starts_with("color=c=0x1e2226:s=1280x720:r=25:d=10.000"), "{g}");
        assert!(g.contains("[0:v]setpts=PTS+0.200/TB,split=2[s0_0][s0_1]"), "{g}");
        assert!(g.contains("[1:v]setpts=PTS+1.500/TB,split=2"), "{g}");
        // HQ large until the grant at 5 s, then small; Hàng Gai the other way round.
        assert!(g.contains("[bg][v0_0]overlay=x=0:y=0:eof_action=pass:enable='between(t,0.000,5.000)'"), "{g}");
        assert!(g.contains("overlay=x=960:y=0:eof_action=pass:enable='between(t,5.000,10.000)'"), "{g}");
        assert!(g.contains("scale=960:540:force_original_aspect_ratio=increase,crop=960:540"), "{g}");
        assert!(g.contains("text=Hội trường UBND:x=13:y=501"), "{g}");
        assert!(g.contains(r"text=Phường Hàng Gai\\: tổ 1\, \\\'A\\\':"), "names are escaped: {g}");
        assert!(!g.contains("Cửa Nam"), "{g}");
        assert!(g.contains("[2:a]asetpts=PTS+0.100/TB,aresample=48000:async=1:first_pts=0[a2];"), "{g}");
        assert!(g.ends_with("[a2][a3]amix=inputs=2:duration=longest:normalize=0[aout]"), "{g}");
        // Without a font the tiles carry no names; the rest is the same.
        assert!(!plan(&index, dir, &sites, &spans, None).graph.contains("drawtext"));

        let a: Vec<String> = args(&p, Path::new("/tmp/g.txt"), Path::new("/rec/x/out.mp4.part"), Limits { threads: 2 })
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let line = a.join(" ");
        assert!(line.contains("-i /rec/x/hq-video-01.ivf -i /rec/x/hang-gai-video-01.ivf"), "{line}");
        assert!(line.contains("-filter_complex_script /tmp/g.txt -map [vout] -map [aout] -t 10.000"), "{line}");
        assert!(line.contains("-c:v libx264") && line.contains("-threads 2") && line.contains("-c:a aac"), "{line}");
        assert!(line.ends_with("-progress pipe:1 -stats_period 1 -f mp4 /rec/x/out.mp4.part"), "{line}");
    }

    #[test]
    fn a_recording_without_audio_still_has_a_silent_track() {
        let index = Index {
            id: "x".into(),
            title: String::new(),
            conference_id: None,
            started_ms: 0,
            stopped_ms: Some(3_000),
            complete: true,
            error: None,
            dropped_packets: 0,
            tracks: vec![track("hq-video-01.ivf", "hq", "video", 0)],
        };
        let spans = timeline(&[], 0, 3_000, "hq", 1);
        let p = plan(&index, Path::new("/r"), &[], &spans, None);
        assert!(p.graph.ends_with("anullsrc=r=48000:cl=stereo,atrim=0:3.000[aout]"), "{}", p.graph);
    }

    #[test]
    fn progress_lines_give_the_time_written() {
        assert_eq!(progress_us("out_time_us=10005333"), Some(10_005_333));
        assert_eq!(progress_us("out_time_us=N/A"), None);
        assert_eq!(progress_us("frame=250"), None);
    }

    #[test]
    fn filter_values_are_escaped_twice() {
        assert_eq!(escape("Hàng Gai"), "Hàng Gai");
        // The example of ffmpeg-filters(1).
        assert_eq!(
            escape("this is a 'string': may contain one, or more, special characters"),
            r"this is a \\\'string\\\'\\: may contain one\, or more\, special characters"
        );
    }
}
