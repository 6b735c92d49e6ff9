//! Arbitrary bytes as a capture file (pcap in either byte order and resolution, pcapng):
//! reading never panics, always makes progress, ends with `None` or an error and stays
//! ended, hands out only supported link types, and every packet decodes without panicking.
#![no_main]

use std::hint::black_box;
use std::io::Cursor;
use std::path::Path;

use dataplane::decode::decode;
use dataplane::io::pcap::CaptureFile;
use libfuzzer_sys::fuzz_target;

/// The smallest record either format has (a pcap record header, a pcapng simple packet
/// block): every packet handed out must have consumed at least this many bytes.
const MIN_RECORD: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = CaptureFile::from_reader(Path::new("fuzz"), Cursor::new(data.to_vec()))
    else {
        return;
    };
    let mut records = 0usize;
    loop {
        let next = file.next_packet(&mut |p| {
            assert!(p.data.len() <= data.len(), "a record larger than the file");
            assert!(
                p.linktype.is_supported(),
                "unsupported link type {} handed out",
                p.linktype.0
            );
            let _ = black_box(decode(p.linktype, p.data));
        });
        match next {
            Ok(Some(_)) => {
                records += 1;
                assert!(
                    records * MIN_RECORD <= data.len(),
                    "{records} records from {} bytes: the reader repeats itself",
                    data.len()
                );
            }
            Ok(None) | Err(_) => break,
        }
    }
    assert!(
        matches!(file.next_packet(&mut |_| {}), Ok(None)),
        "the reader goes on after its end or an error"
    );
});
