//! Contextualisation media in the original's shape (shared/spec/vm-lifecycle.md §4.4), built in memory
//! without external tools: an ISO 9660 image labelled `CONTEXT_INFO` holding `CONTEXT.SH` with
//! `EC2_USER_DATA="<base64>"` and `ONE_CONTEXT_PATH="/var/lib/amiconfig"` (OpenNebula/amiconfig
//! convention), or a 28 672-byte FloppyIO image. Too much data is an error, never silently cut.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;

use crate::hypervisor::HvError;

const SECTOR: usize = 2048;
/// The most user data the ISO carries (the original cut silently at ~302 KiB; we refuse instead).
pub const MAX_ISO_USER_DATA: usize = 1 << 20;
/// FloppyIO: image size, host→guest area size, host control byte offset.
pub const FLOPPY_SIZE: usize = 28_672;
pub const FLOPPY_DATA_MAX: usize = 14_334;
const FLOPPY_HOST_CONTROL: usize = 28_670;

/// The text of `CONTEXT.SH` for `user_data`.
pub fn context_sh(user_data: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(user_data.as_bytes());
    format!("EC2_USER_DATA=\"{b64}\"\nONE_CONTEXT_PATH=\"/var/lib/amiconfig\"\n")
}

/// An ISO 9660 image (volume `CONTEXT_INFO`, one file `CONTEXT.SH;1`) with `user_data`, dated `now`.
pub fn build_context_iso(user_data: &str, now: SystemTime) -> Result<Vec<u8>, HvError> {
    if user_data.len() > MAX_ISO_USER_DATA {
        return Err(HvError::InvalidSpec(format!(
            "contextualisation data is {} bytes; at most {MAX_ISO_USER_DATA} fit on the context ISO",
            user_data.len()
        )));
    }
    let file = context_sh(user_data).into_bytes();
    // Sectors: 0-15 system area, 16 primary descriptor, 17 terminator, 18 L path table,
    // 19 M path table, 20 root directory, 21.. file data.
    let (root_lba, file_lba) = (20u32, 21u32);
    let file_sectors = file.len().div_ceil(SECTOR).max(1);
    let total = 21 + file_sectors;
    let mut img = vec![0u8; total * SECTOR];
    let date = DateTime::from(now);

    // Primary volume descriptor.
    let pvd = &mut img[16 * SECTOR..17 * SECTOR];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pad(&mut pvd[8..40], b"LINUX");
    pad(&mut pvd[40..72], b"CONTEXT_INFO");
    both32(&mut pvd[80..88], total as u32);
    both16(&mut pvd[120..124], 1);
    both16(&mut pvd[124..128], 1);
    both16(&mut pvd[128..132], SECTOR as u16);
    both32(&mut pvd[132..140], 10);
    pvd[140..144].copy_from_slice(&18u32.to_le_bytes());
    pvd[148..152].copy_from_slice(&19u32.to_be_bytes());
    dir_record(
        &mut pvd[156..190],
        root_lba,
        SECTOR as u32,
        &date,
        true,
        &[0],
    );
    for (from, to) in [
        (190, 318),
        (318, 446),
        (446, 574),
        (574, 702),
        (702, 739),
        (739, 776),
        (776, 813),
    ] {
        pad(&mut pvd[from..to], b"");
    }
    pad(&mut pvd[574..702], b"CERNVM WEBAPI");
    let stamp = date.volume_stamp();
    pvd[813..830].copy_from_slice(&stamp);
    pvd[830..847].copy_from_slice(&stamp);
    pvd[847..863].fill(b'0');
    pvd[864..880].fill(b'0');
    pvd[881] = 1;

    // Volume descriptor set terminator.
    let term = &mut img[17 * SECTOR..18 * SECTOR];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;

    // Path tables: one entry, the root (directory number 1, its own parent).
    for (sector, big_endian) in [(18usize, false), (19, true)] {
        let e = &mut img[sector * SECTOR..sector * SECTOR + 10];
        e[0] = 1;
        let lba = if big_endian {
            root_lba.to_be_bytes()
        } else {
            root_lba.to_le_bytes()
        };
        e[2..6].copy_from_slice(&lba);
        let parent = if big_endian {
            1u16.to_be_bytes()
        } else {
            1u16.to_le_bytes()
        };
        e[6..8].copy_from_slice(&parent);
    }

    // Root directory: ".", "..", CONTEXT.SH;1.
    let root = &mut img[root_lba as usize * SECTOR..(root_lba as usize + 1) * SECTOR];
    dir_record(&mut root[0..34], root_lba, SECTOR as u32, &date, true, &[0]);
    dir_record(
        &mut root[34..68],
        root_lba,
        SECTOR as u32,
        &date,
        true,
        &[1],
    );
    dir_record(
        &mut root[68..114],
        file_lba,
        file.len() as u32,
        &date,
        false,
        b"CONTEXT.SH;1",
    );

    let start = file_lba as usize * SECTOR;
    img[start..start + file.len()].copy_from_slice(&file);
    Ok(img)
}

/// A FloppyIO image: the raw user data at offset 0 (zero padded) and the host control byte set.
pub fn build_floppy(user_data: &str) -> Result<Vec<u8>, HvError> {
    let data = user_data.as_bytes();
    if data.len() > FLOPPY_DATA_MAX {
        return Err(HvError::InvalidSpec(format!(
            "contextualisation data is {} bytes; at most {FLOPPY_DATA_MAX} fit on a FloppyIO floppy",
            data.len()
        )));
    }
    let mut img = vec![0u8; FLOPPY_SIZE];
    img[..data.len()].copy_from_slice(data);
    img[FLOPPY_HOST_CONTROL] = 1;
    Ok(img)
}

/// Writes a directory record into `out` (which is exactly the record's padded length).
fn dir_record(out: &mut [u8], lba: u32, len: u32, date: &DateTime, is_dir: bool, name: &[u8]) {
    let rec_len = 33 + name.len() + (name.len() + 1) % 2;
    debug_assert_eq!(out.len(), rec_len);
    out[0] = rec_len as u8;
    both32(&mut out[2..10], lba);
    both32(&mut out[10..18], len);
    out[18..25].copy_from_slice(&date.record_stamp());
    out[25] = if is_dir { 2 } else { 0 };
    both16(&mut out[28..32], 1);
    out[32] = name.len() as u8;
    out[33..33 + name.len()].copy_from_slice(name);
}

fn both32(out: &mut [u8], v: u32) {
    out[..4].copy_from_slice(&v.to_le_bytes());
    out[4..8].copy_from_slice(&v.to_be_bytes());
}
fn both16(out: &mut [u8], v: u16) {
    out[..2].copy_from_slice(&v.to_le_bytes());
    out[2..4].copy_from_slice(&v.to_be_bytes());
}
fn pad(out: &mut [u8], text: &[u8]) {
    out.fill(b' ');
    out[..text.len()].copy_from_slice(text);
}

/// A UTC calendar date (months 1-12; the original wrote 0-based months).
struct DateTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl From<SystemTime> for DateTime {
    fn from(t: SystemTime) -> Self {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }
}

impl DateTime {
    fn record_stamp(&self) -> [u8; 7] {
        let y = (self.year - 1900).clamp(0, 255) as u8;
        [
            y,
            self.month as u8,
            self.day as u8,
            self.hour as u8,
            self.minute as u8,
            self.second as u8,
            0,
        ]
    }
    fn volume_stamp(&self) -> [u8; 17] {
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            self.year.clamp(0, 9999),
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second
        );
        let mut out = [0u8; 17];
        out[..16].copy_from_slice(text.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso_layout_matches_the_original_shape() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000); // 2023-11-14 22:13:20 UTC
        let img = build_context_iso("#!/bin/sh\necho hi\n", t).unwrap();
        assert_eq!(img.len() % SECTOR, 0);
        assert_eq!(&img[0x8001..0x8006], b"CD001");
        assert_eq!(&img[0x8028..0x8034], b"CONTEXT_INFO");
        assert_eq!(
            &img[0x8000 + 813..0x8000 + 827],
            b"20231114221320",
            "1-based month"
        );
        let data = &img[21 * SECTOR..];
        let expect = context_sh("#!/bin/sh\necho hi\n");
        assert_eq!(&data[..expect.len()], expect.as_bytes());
        assert!(expect.starts_with("EC2_USER_DATA=\"IyEvYmluL3NoCmVjaG8gaGkK\"\n"));
    }

    #[test]
    fn too_much_data_is_refused_not_truncated() {
        let big = "x".repeat(MAX_ISO_USER_DATA + 1);
        assert!(matches!(
            build_context_iso(&big, UNIX_EPOCH),
            Err(HvError::InvalidSpec(_))
        ));
        let big = "x".repeat(FLOPPY_DATA_MAX + 1);
        assert!(matches!(build_floppy(&big), Err(HvError::InvalidSpec(_))));
    }

    #[test]
    fn floppy_layout() {
        let img = build_floppy("key=value").unwrap();
        assert_eq!(img.len(), FLOPPY_SIZE);
        assert_eq!(&img[..9], b"key=value");
        assert_eq!(img[9], 0);
        assert_eq!(img[FLOPPY_HOST_CONTROL], 1);
    }
}
