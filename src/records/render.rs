//! Minutes as CSV (one table, a `section` column) and as a printable Vietnamese HTML page.

use super::minutes::Minutes;
use std::fmt::Write;

fn time(ms: i64) -> String {
    // Local wall-clock time is not known here; print HH:MM:SS in UTC+7 (Hà Nội).
    let s = (ms / 1000 + 7 * 3600).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn opt_time(ms: Option<i64>) -> String {
    ms.map(time).unwrap_or_else(|| "–".into())
}

fn duration(secs: f64) -> String {
    let s = secs.round() as i64;
    format!("{}:{:02}", s / 60, s % 60)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(crate) fn csv(m: &Minutes) -> String {
    let mut out = String::from("section,site,item,start,end,seconds,detail\n");
    let mut row = |cols: [&str; 7]| {
        let _ = writeln!(out, "{}", cols.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
    };
    for i in &m.programme {
        row([
            "programme",
            "",
            &i.title,
            &opt_time(Some(i.started_ms)),
            &opt_time(i.ended_ms),
            &format!("{:.0}", i.actual_seconds),
            &format!("planned {} min", i.planned_minutes),
        ]);
    }
    for s in &m.speakers {
        row(["speech", &s.site, "", &opt_time(Some(s.started_ms)), &opt_time(s.ended_ms), &format!("{:.0}", s.seconds), &format!("request {}", s.request)]);
    }
    for p in &m.not_reached {
        row(["programme", p.site.as_deref().unwrap_or(""), &p.title, "", "", "", &format!("planned {} min; not reached", p.planned_minutes)]);
    }
    for r in &m.requests {
        row(["request", &r.site, r.topic.as_deref().unwrap_or(""), &opt_time(Some(r.at_ms)), "", "", &r.outcome]);
    }
    for a in &m.attendance {
        let detail = format!("reconnects {}; headcount {}; {}", a.reconnects, a.headcount.map(|h| h.to_string()).unwrap_or_default(), a.attendees);
        row(["attendance", &a.site, &a.name, &opt_time(a.first_join_ms), &opt_time(a.last_leave_ms), &format!("{:.0}", a.present_seconds), &detail]);
    }
    for i in &m.incidents {
        let secs = i.cleared_ms.map(|c| format!("{:.0}", (c - i.raised_ms) as f64 / 1000.0)).unwrap_or_default();
        row(["incident", &i.site, &i.alarm, &opt_time(Some(i.raised_ms)), &opt_time(i.cleared_ms), &secs, &i.detail]);
    }
    for r in &m.recordings {
        let secs = r.stopped_ms.map(|s| format!("{:.0}", (s - r.started_ms) as f64 / 1000.0)).unwrap_or_default();
        row(["recording", "", &r.id, &opt_time(Some(r.started_ms)), &opt_time(r.stopped_ms), &secs, r.error.as_deref().unwrap_or("")]);
    }
    for v in &m.votes {
        let result = |counts: &[u64]| v.options.iter().zip(counts).map(|(o, c)| format!("{o}: {c}")).collect::<Vec<_>>().join("; ");
        row(["vote", "", &v.question, &opt_time(Some(v.opened_ms)), &opt_time(v.closed_ms), "", &result(&v.totals)]);
        for (site, counts) in &v.tallies {
            row(["vote_site", site, &v.question, "", "", "", &result(counts)]);
        }
    }
    out
}

/// The Vietnamese page's own words for alarm codes (`alarm.*` in `web/i18n/vi.json`): one
/// list for the pages and the minutes.
fn alarm_name(code: &str) -> String {
    static WORDS: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(|| serde_json::from_str(include_str!("../../web/i18n/vi.json")).unwrap_or_default());
    match code {
        "bridge_restarted" => "máy chủ khởi động lại".into(),
        _ => WORDS[format!("alarm.{code}")].as_str().map_or_else(|| code.to_string(), str::to_owned),
    }
}

/// `ngày 04 tháng 12 năm 2026` in Hà Nội time.
fn date_words(ms: i64) -> String {
    let day = crate::recording::hanoi_time(ms);
    let (y, rest) = day.split_at(4);
    format!("ngày {} tháng {} năm {y}", &rest[7..9], &rest[4..6])
}

const PRINT_STYLE: &str = "body{font-family:'Times New Roman','Noto Serif','DejaVu Serif',serif;margin:2rem auto;max-width:60rem;color:#111;line-height:1.35}\
table{border-collapse:collapse;width:100%;margin:.4rem 0 1.2rem}td,th{border:1px solid #777;padding:.25rem .45rem;text-align:left;vertical-align:top}\
th{background:#eee}h1{font-size:1.35rem;text-align:center;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .3rem}\
.head{display:flex;justify-content:space-between;text-align:center}.head p{margin:0}.meta{text-align:center;margin:.6rem 0 1rem}\
.not-reached{color:#555;font-style:italic}.sign{display:flex;justify-content:space-around;text-align:center;margin-top:2.5rem;break-inside:avoid}\
.sign p{margin:.2rem}.sign .space{height:5rem}.appendix{font-size:.85rem;break-before:page}\
@page{size:A4;margin:18mm 15mm 18mm 20mm}@media print{body{margin:0;max-width:none}th{background:#ddd!important;-webkit-print-color-adjust:exact;print-color-adjust:exact}tr{break-inside:avoid}h2{break-after:avoid}}";

pub(crate) fn html(m: &Minutes, site_name: impl Fn(&str) -> String) -> String {
    let c = &m.conference;
    let chair = m.chair.as_deref().map(&site_name).unwrap_or_default();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Biên bản — {t}</title><style>{PRINT_STYLE}</style></head><body>\
         <div class=\"head\"><p><b>{chair}</b></p><p><b>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</b><br><u>Độc lập – Tự do – Hạnh phúc</u></p></div>\
         <h1>BIÊN BẢN HỘI NGHỊ TRỰC TUYẾN</h1><p class=\"meta\"><b>{t}</b><br>Hà Nội, {d}<br>Địa điểm chủ trì: {chair}; \
         các điểm cầu trực tuyến (mục 4)<br>Bắt đầu: {s} — Kết thúc: {e}</p>",
        t = esc(&c.title),
        chair = esc(&chair),
        d = date_words(c.started_ms),
        s = time(c.started_ms),
        e = opt_time(c.ended_ms)
    );
    h.push_str("<h2>1. Chương trình</h2><table><tr><th>Mục</th><th>Dự kiến</th><th>Bắt đầu</th><th>Kết thúc</th><th>Thực tế</th></tr>");
    for i in &m.programme {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{} phút</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&i.title),
            i.planned_minutes,
            time(i.started_ms),
            opt_time(i.ended_ms),
            duration(i.actual_seconds)
        );
    }
    for p in &m.not_reached {
        let _ = write!(h, "<tr class=\"not-reached\"><td>{}</td><td>{} phút</td><td colspan=\"3\">chưa thực hiện</td></tr>", esc(&p.title), p.planned_minutes);
    }
    h.push_str("</table><h2>2. Phát biểu</h2><table><tr><th>Điểm cầu</th><th>Nội dung</th><th>Bắt đầu</th><th>Kết thúc</th><th>Thời lượng</th></tr>");
    for s in &m.speakers {
        let topic = match &s.item {
            Some(item) => item.clone(),
            None => m.requests.iter().find(|r| r.request == s.request).and_then(|r| r.topic.clone()).unwrap_or_default(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&site_name(&s.site)),
            esc(&topic),
            time(s.started_ms),
            opt_time(s.ended_ms),
            duration(s.seconds)
        );
    }
    h.push_str("</table><h2>3. Đăng ký phát biểu</h2><table><tr><th>Điểm cầu</th><th>Nội dung</th><th>Lúc</th><th>Kết quả</th></tr>");
    for r in &m.requests {
        let outcome = match r.outcome.as_str() {
            "granted" => "được phát biểu",
            "denied" => "không được chấp nhận",
            "cancelled" => "tự hủy",
            _ => "chưa xử lý",
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&site_name(&r.site)),
            esc(r.topic.as_deref().unwrap_or("")),
            time(r.at_ms),
            outcome
        );
    }
    h.push_str("</table><h2>4. Thành phần tham dự</h2><table><tr><th>Điểm cầu</th><th>Thành phần</th><th>Số người</th><th>Vào lần đầu</th><th>Rời lần cuối</th><th>Thời gian có mặt</th><th>Kết nối lại</th></tr>");
    for a in &m.attendance {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            esc(&a.attendees),
            a.headcount.map(|x| x.to_string()).unwrap_or_default(),
            opt_time(a.first_join_ms),
            opt_time(a.last_leave_ms),
            duration(a.present_seconds),
            a.reconnects
        );
    }
    h.push_str("</table>");
    h.push_str("<h2>5. Biểu quyết</h2>");
    for v in &m.votes {
        let state = if v.closed_ms.is_some() { "" } else { " (chưa kết thúc)" };
        let _ = write!(
            h,
            "<p><b>{}</b>{state}<br>Mở lúc {} — đóng lúc {}</p><table><tr><th>Điểm cầu</th>",
            esc(&v.question),
            time(v.opened_ms),
            opt_time(v.closed_ms)
        );
        for o in &v.options {
            let _ = write!(h, "<th>{}</th>", esc(o));
        }
        h.push_str("</tr>");
        for (site, counts) in &v.tallies {
            let _ = write!(h, "<tr><td>{}</td>", esc(&site_name(site)));
            for c in counts {
                let _ = write!(h, "<td>{c}</td>");
            }
            h.push_str("</tr>");
        }
        h.push_str("<tr><th>Tổng cộng</th>");
        for t in &v.totals {
            let _ = write!(h, "<th>{t}</th>");
        }
        h.push_str("</tr></table>");
    }
    h.push_str("<h2>6. Sự cố kỹ thuật</h2>");
    if m.notable_incidents.is_empty() {
        h.push_str("<p>Không có sự cố đáng kể.</p>");
    } else {
        h.push_str("<table><tr><th>Điểm cầu</th><th>Sự cố</th><th>Từ</th><th>Đến</th></tr>");
        for i in &m.notable_incidents {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&site_name(&i.site)),
                esc(&alarm_name(&i.alarm)),
                time(i.raised_ms),
                opt_time(i.cleared_ms)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("<h2>7. Ghi hình</h2><table><tr><th>Bản ghi</th><th>Bắt đầu</th><th>Kết thúc</th><th>Ghi chú</th></tr>");
    for r in &m.recordings {
        let note = r.error.as_deref().map(|e| format!("lỗi: {}", esc(e))).unwrap_or_default();
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&r.id), time(r.started_ms), opt_time(r.stopped_ms), note);
    }
    h.push_str(
        "</table><div class=\"sign\"><div><p><b>THƯ KÝ HỘI NGHỊ</b></p><p><i>(Ký, ghi rõ họ tên)</i></p><p class=\"space\"></p></div>\
                <div><p><b>CHỦ TRÌ HỘI NGHỊ</b></p><p><i>(Ký, ghi rõ họ tên)</i></p><p class=\"space\"></p></div></div>",
    );
    h.push_str("<section class=\"appendix\"><h2>Phụ lục: chi tiết kỹ thuật (cho cán bộ kỹ thuật)</h2><table><tr><th>Điểm cầu</th><th>Cảnh báo</th><th>Mã</th><th>Từ</th><th>Đến</th><th>Chi tiết</th></tr>");
    for i in &m.incidents {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&site_name(&i.site)),
            esc(&alarm_name(&i.alarm)),
            esc(&i.alarm),
            time(i.raised_ms),
            opt_time(i.cleared_ms),
            esc(&i.detail)
        );
    }
    h.push_str("</table></section>");
    h.push_str("</body></html>");
    h
}
