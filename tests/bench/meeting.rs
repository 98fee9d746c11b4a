//! The generated meeting the benchmarks start the bridge on: HQ (`hq`, the chair) and wards
//! `p001`, `p002`, … with fixed keys.

pub fn site_id(i: usize) -> String {
    if i == 0 {
        "hq".into()
    } else {
        format!("p{i:03}")
    }
}

pub fn key(i: usize) -> String {
    format!("{}-load-key-0123456789", site_id(i))
}

/// A config of `sites` sites with these output slots per page, no join limits in the way.
pub fn config(sites: usize, video_slots: usize, audio_slots: usize) -> String {
    let mut c = format!(
        "[conference]\ntitle = \"Tải thử {sites} điểm cầu\"\nvideo_slots = {}\naudio_slots = {}\n\n\
         [limits]\njoins_per_minute = 100000\nsockets_per_ip = 10000\n\n",
        video_slots.clamp(1, 25),
        audio_slots.clamp(1, 16)
    );
    for i in 0..sites {
        let role = if i == 0 { "chair" } else { "site" };
        c.push_str(&format!("[[sites]]\nid = \"{}\"\nname = \"Điểm {i}\"\nrole = \"{role}\"\nkey = \"{}\"\n\n", site_id(i), key(i)));
    }
    c
}
