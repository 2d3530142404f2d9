//! Tests of the footprint release: which mappings qualify (parsed from real-format text), and on this
//! very process that unmapped pages come back intact, private pages are never touched and only loaded
//! objects' segments are.

use super::*;

const SMAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 fd:01 1001                       /opt/app/bin/tray
Rss:                 400 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd mr mw me dw sd
55d0c0100000-55d0c0800000 r-xp 00100000 fd:01 1001                       /opt/app/bin/tray
Rss:                2048 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me dw sd
55d0c0800000-55d0c0900000 r--p 00800000 fd:01 1001                       /opt/app/bin/tray
Rss:                 256 kB
Anonymous:           256 kB
Locked:                0 kB
VmFlags: rd mr mw me dw ac sd
55d0c0900000-55d0c0910000 rw-p 00900000 fd:01 1001                       /opt/app/bin/tray
Rss:                  64 kB
Anonymous:            64 kB
Locked:                0 kB
VmFlags: rd wr mr mw me dw ac sd
55d0c1000000-55d0c2000000 rw-p 00000000 00:00 0                          [heap]
Rss:                8192 kB
Anonymous:          8192 kB
Locked:                0 kB
VmFlags: rd wr mr mw me ac sd
7f0000000000-7f0000200000 r-xp 00000000 fd:01 2002                       /usr/lib/libwebkit2gtk-4.1.so.0.17.6
Rss:                1024 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me sd
7f0000200000-7f0000300000 r-xp 00000000 fd:01 3003                       /usr/lib/gio/modules/libdconfsettings.so
Rss:                 128 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me sd
7f0000300000-7f0000400000 r--p 00000000 fd:01 4004                       /usr/share/locale/locale archive
Rss:                  32 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd mr mw me sd
7f0000400000-7f0000410000 r-xp 00000000 fd:01 5005                       /usr/lib/libgone.so (deleted)
Rss:                  64 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me sd
7f0000410000-7f0000420000 r-xp 00000000 fd:01 6006                       /usr/lib/liblocked.so
Rss:                  64 kB
Anonymous:             0 kB
Locked:               64 kB
VmFlags: rd ex mr mw me lo sd
7f0000420000-7f0000430000 r-xp 00000000 fd:01 7007                       /usr/lib/libcold.so
Rss:                   0 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me sd
7f0000430000-7f0000440000 r--p 00000000 00:05 8                          /dev/dri/renderD128
Rss:                  64 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd mr mw me io pf sd
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me de sd
";

/// The load segments of the objects that stay loaded: the program and two libraries (not the GIO
/// module, not the data files).
fn segments() -> Vec<Range<usize>> {
    vec![
        0x55d0c0000000..0x55d0c0910000,
        0x7f0000000000..0x7f0000200000,
        0x7f0000400000..0x7f0000430000,
    ]
}

#[test]
fn smaps_entries_are_parsed_with_their_counters() {
    let all = parse_smaps(SMAPS);
    assert_eq!(all.len(), 13);
    let text = &all[1];
    assert_eq!(text.range, 0x55d0c0100000..0x55d0c0800000);
    assert_eq!(text.perms, "r-xp");
    assert_eq!(text.path, "/opt/app/bin/tray");
    assert_eq!(
        (text.rss_kb, text.anonymous_kb, text.locked_kb),
        (2048, 0, 0)
    );
    assert_eq!(text.vm_flags, "rd ex mr mw me dw sd");
    // paths with spaces stay whole, the "(deleted)" mark included
    assert_eq!(all[7].path, "/usr/share/locale/locale archive");
    assert_eq!(all[8].path, "/usr/lib/libgone.so (deleted)");
    assert_eq!(all[4].path, "[heap]");
}

#[test]
fn other_lines_are_skipped() {
    let smaps = "garbage line\n\
                 Rss: 12 kB\n\
                 00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n\
                 Rss:   12 kB\n\
                 Unknown: what\n\
                 00700000-00600000 r--p 00000000 08:02 1 /backwards\n\
                 7fff5e1f0000-7fff5e211000 rw-p 00000000 00:00 0\n";
    let parsed = parse_smaps(smaps);
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].rss_kb, 12);
    assert_eq!(parsed[1].path, "");
}

#[test]
fn only_clean_segments_of_permanent_objects_qualify() {
    let now = parse_smaps(SMAPS);
    let chosen: Vec<(&str, &str)> = releasable(&segments(), &now)
        .into_iter()
        .map(|m| (m.perms.as_str(), m.path.as_str()))
        .collect();
    assert_eq!(
        chosen,
        vec![
            ("r--p", "/opt/app/bin/tray"),  // read-only data of the program, no private page
            ("r-xp", "/opt/app/bin/tray"),  // its code
            ("r-xp", "/usr/lib/libwebkit2gtk-4.1.so.0.17.6"), // a library's code
        ],
        "left out: RELRO with private pages, writable data, heap, a library that may be unloaded, a \
         data file, a deleted file, locked pages, nothing resident, device memory, the vdso"
    );
}

#[test]
fn a_mapping_reaching_past_a_segment_is_left_alone() {
    let now = parse_smaps(SMAPS);
    // The program's code mapping ends one page beyond the known segment.
    let short: Range<usize> = 0x55d0c0000000..0x55d0c07ff000;
    let chosen = releasable(std::slice::from_ref(&short), &now);
    assert_eq!(
        chosen.len(),
        1,
        "only the read-only data at the start: {chosen:?}"
    );
    assert_eq!(chosen[0].perms, "r--p");
    assert!(
        releasable(&[], &now).is_empty(),
        "no segment, nothing released"
    );
}

#[cfg(target_os = "linux")]
mod on_this_process {
    use super::super::*;
    use std::io::Write;

    const PAGE: usize = 4096;
    const PAGES: usize = 8;

    /// A private file mapping of `file`, read-only unless `writable`.
    fn map(file: &std::fs::File, writable: bool) -> *mut u8 {
        use std::os::fd::AsRawFd;
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh private mapping of an open file; the tests only read and write inside it.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE * PAGES,
                prot,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(
            addr,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        addr.cast()
    }

    fn smaps_of(addr: usize) -> Mapping {
        let text = std::fs::read_to_string("/proc/self/smaps").unwrap();
        parse_smaps(&text)
            .into_iter()
            .find(|m| m.range.start == addr)
            .expect("the mapping is listed")
    }

    fn read_all(addr: *const u8) -> Vec<u8> {
        // SAFETY: `addr` is a live mapping of PAGE * PAGES readable bytes.
        unsafe { std::slice::from_raw_parts(addr, PAGE * PAGES) }.to_vec()
    }

    #[test]
    fn clean_pages_come_back_intact_and_private_pages_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("library.so");
        let content: Vec<u8> = (0..PAGE * PAGES).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&content)
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();

        // A clean read-only mapping, all pages touched.
        let clean = map(&file, false);
        assert_eq!(read_all(clean), content);
        // A mapping with a private page, then made read-only: like a relocated RELRO segment.
        let relro = map(&file, true);
        // SAFETY: inside the writable mapping just made.
        unsafe { *relro.add(PAGE) = 0xAB };
        // SAFETY: the mapping made above, whole.
        let rc = unsafe { libc::mprotect(relro.cast(), PAGE * PAGES, libc::PROT_READ) };
        assert_eq!(rc, 0);
        let _ = read_all(relro);

        let before_clean = smaps_of(clean as usize);
        let before_relro = smaps_of(relro as usize);
        assert_eq!(before_clean.rss_kb as usize, PAGE * PAGES / 1024);
        assert!(before_relro.anonymous_kb > 0, "the written page is private");

        // Both mappings stand in for segments of a library that stays loaded.
        let segments = [
            clean as usize..clean as usize + PAGE * PAGES,
            relro as usize..relro as usize + PAGE * PAGES,
        ];
        let released = release_within(&segments).unwrap();
        assert_eq!(released.mappings, 1, "the clean mapping only");
        assert_eq!(released.kb, before_clean.rss_kb);

        assert_eq!(
            smaps_of(clean as usize).rss_kb,
            0,
            "the clean pages were unmapped"
        );
        let after_relro = smaps_of(relro as usize);
        assert_eq!(
            after_relro.rss_kb, before_relro.rss_kb,
            "the private mapping is untouched"
        );
        // Read back: the file's bytes, and the written byte still there.
        assert_eq!(read_all(clean), content);
        let mut expected = content.clone();
        expected[PAGE] = 0xAB;
        assert_eq!(read_all(relro), expected);

        // SAFETY: both mappings were made above and are no longer used.
        unsafe {
            libc::munmap(clean.cast(), PAGE * PAGES);
            libc::munmap(relro.cast(), PAGE * PAGES);
        }
    }

    #[test]
    fn the_program_and_its_libraries_are_found_pinned_and_released() {
        let objects = loaded_objects();
        let program = objects
            .iter()
            .find(|o| o.name.is_empty())
            .expect("the program");
        let libc_object = objects
            .iter()
            .find(|o| o.name.contains("libc.so"))
            .expect("libc");
        let smaps = parse_smaps(&std::fs::read_to_string("/proc/self/smaps").unwrap());
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy();
        let code = smaps
            .iter()
            .find(|m| m.path == exe && m.perms == "r-xp")
            .expect("the program's code is mapped");
        assert!(
            program
                .segments
                .iter()
                .any(|s| s.start <= code.range.start && code.range.end <= s.end),
            "the program's code mapping lies in one of its load segments"
        );

        assert!(pin(&libc_object.name), "a loaded library can be pinned");
        assert!(!pin("libnot-loaded-anywhere.so.9"), "pinning never loads");
        assert!(!pin("bad\0name"));

        // Releasing on this running, multi-threaded test program leaves it working (this test goes
        // on, and so do the others running beside it).
        let released = release_code_pages().unwrap();
        assert!(released.mappings > 0 && released.kb > 0, "{released:?}");
        assert_eq!(format!("{}", 6 * 7), "42");
    }
}
