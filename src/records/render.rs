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

pub fn csv(m: &Minutes) -> String {
    let mut out = String::from("section,site,item,start,end,seconds,detail\n");
    let mut row = |cols: [&str; 7]| {
        let _ = writeln!(out, "{}", cols.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
    };
    for i in &m.programme {
        row(["programme", "", &i.title, &opt_time(Some(i.started_ms)), &opt_time(i.ended_ms), &format!("{:.0}", i.actual_seconds), &format!("planned {} min", i.planned_minutes)]);
    }
    for s in &m.speakers {
        row(["speech", &s.site, "", &opt_time(Some(s.started_ms)), &opt_time(s.ended_ms), &format!("{:.0}", s.seconds), &format!("request {}", s.request)]);
    }
    for r in &m.requests {
        row(["request", &r.site, "", &opt_time(Some(r.at_ms)), "", "", &r.outcome]);
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

pub fn html(m: &Minutes, site_name: impl Fn(&str) -> String) -> String {
    let c = &m.conference;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Biên bản — {t}</title>\
         <style>body{{font-family:'Noto Sans','DejaVu Sans',sans-serif;margin:2rem;color:#111}}table{{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}}\
         td,th{{border:1px solid #999;padding:.3rem .5rem;text-align:left}}th{{background:#eee}}h1{{font-size:1.4rem}}h2{{font-size:1.1rem}}</style></head><body>\
         <h1>BIÊN BẢN HỘI NGHỊ TRỰC TUYẾN</h1><p><b>{t}</b><br>Bắt đầu: {s} — Kết thúc: {e}</p>",
        t = esc(&c.title),
        s = time(c.started_ms),
        e = opt_time(c.ended_ms)
    );
    h.push_str("<h2>1. Chương trình</h2><table><tr><th>Mục</th><th>Dự kiến</th><th>Bắt đầu</th><th>Kết thúc</th><th>Thực tế</th></tr>");
    for i in &m.programme {
        let _ = write!(h, "<tr><td>{}</td><td>{} phút</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&i.title), i.planned_minutes, time(i.started_ms), opt_time(i.ended_ms), duration(i.actual_seconds));
    }
    h.push_str("</table><h2>2. Phát biểu</h2><table><tr><th>Điểm cầu</th><th>Bắt đầu</th><th>Kết thúc</th><th>Thời lượng</th></tr>");
    for s in &m.speakers {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&site_name(&s.site)), time(s.started_ms), opt_time(s.ended_ms), duration(s.seconds));
    }
    h.push_str("</table><h2>3. Đăng ký phát biểu</h2><table><tr><th>Điểm cầu</th><th>Lúc</th><th>Kết quả</th></tr>");
    for r in &m.requests {
        let outcome = match r.outcome.as_str() {
            "granted" => "được phát biểu",
            "denied" => "không được chấp nhận",
            "cancelled" => "tự hủy",
            _ => "chưa xử lý",
        };
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&site_name(&r.site)), time(r.at_ms), outcome);
    }
    h.push_str("</table><h2>4. Thành phần tham dự</h2><table><tr><th>Điểm cầu</th><th>Vào lần đầu</th><th>Rời lần cuối</th><th>Thời gian có mặt</th><th>Số lần kết nối lại</th><th>Số người</th><th>Thành phần</th></tr>");
    for a in &m.attendance {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.name),
            opt_time(a.first_join_ms),
            opt_time(a.last_leave_ms),
            duration(a.present_seconds),
            a.reconnects,
            a.headcount.map(|x| x.to_string()).unwrap_or_default(),
            esc(&a.attendees)
        );
    }
    h.push_str("</table><h2>5. Sự cố kỹ thuật</h2><table><tr><th>Điểm cầu</th><th>Cảnh báo</th><th>Từ</th><th>Đến</th><th>Chi tiết</th></tr>");
    for i in &m.incidents {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&site_name(&i.site)), esc(&i.alarm), time(i.raised_ms), opt_time(i.cleared_ms), esc(&i.detail));
    }
    h.push_str("</table><h2>6. Ghi hình</h2><table><tr><th>Bản ghi</th><th>Bắt đầu</th><th>Kết thúc</th><th>Ghi chú</th></tr>");
    for r in &m.recordings {
        let note = r.error.as_deref().map(|e| format!("lỗi: {}", esc(e))).unwrap_or_default();
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&r.id), time(r.started_ms), opt_time(r.stopped_ms), note);
    }
    h.push_str("</table><h2>7. Biểu quyết</h2>");
    for v in &m.votes {
        let state = if v.closed_ms.is_some() { "" } else { " (chưa kết thúc)" };
        let _ = write!(h, "<p><b>{}</b>{state}<br>Mở lúc {} — đóng lúc {}</p><table><tr><th>Điểm cầu</th>", esc(&v.question), time(v.opened_ms), opt_time(v.closed_ms));
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
    h.push_str("</body></html>");
    h
}
