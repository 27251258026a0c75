//! The crawler hints read from the protected page's HTML, their shared-memory record, and the
//! `<meta>` tags made from them.
#![no_main]

use captchaify::crawler::hints::{decode, encode, extract, head_html, HINTS_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(hints) = extract(data) {
        // The record reads back as what it keeps, and keeps it again unchanged.
        let record = encode(&hints);
        let kept = decode(&record).expect("a record we wrote reads back");
        assert_eq!(encode(&kept), record);
        // Every value is escaped: the only markup is our own tags.
        let html = head_html(&kept);
        let tags = html.matches("<meta ").count();
        assert_eq!(html.matches('<').count(), tags, "{html}");
        assert_eq!(html.matches('>').count(), tags, "{html}");
    }
    // Any record, torn or foreign, is refused or read without harm.
    let mut record = [0u8; HINTS_BYTES];
    let n = data.len().min(HINTS_BYTES);
    record[..n].copy_from_slice(&data[..n]);
    let _ = decode(&record);
    if data.len() >= 10 {
        record[..4].copy_from_slice(b"CHH\x01");
        let _ = decode(&record);
    }
});
