//! A minimal ISO 9660 image writer: one file in the root directory, volume label `CONTEXT_INFO`, as the
//! original's context CD (vm-lifecycle.md §4.4) but sized to its content instead of silently truncating.
//! Dates are a fixed value so equal contexts give equal images.

const SECTOR: usize = 2048;
const ROOT_SECTOR: usize = 20;
const FILE_SECTOR: usize = 21;
/// 2000-01-01 00:00:00 UTC as a directory-record date.
const DIR_DATE: [u8; 7] = [100, 1, 1, 0, 0, 0, 0];
const VOL_DATE: &[u8; 17] = b"2000010100000000\0";

/// Builds an ISO 9660 image with the single file `name` (an ISO level-1 name such as `CONTEXT.SH`).
pub fn context_iso(name: &str, content: &[u8]) -> Vec<u8> {
    let file_sectors = content.len().div_ceil(SECTOR);
    let total = FILE_SECTOR + file_sectors.max(1);
    let mut img = vec![0u8; total * SECTOR];

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
        ROOT_SECTOR as u32,
        SECTOR as u32,
        true,
        &[0],
    );
    for range in [
        190..318,
        318..446,
        446..574,
        574..702,
        702..739,
        739..776,
        776..813,
    ] {
        pad(&mut pvd[range], b"");
    }
    pad(&mut pvd[318..446], b"CERNVM WEBAPI");
    for at in [813, 830, 864] {
        pvd[at..at + 17].copy_from_slice(VOL_DATE);
    }
    pvd[847..863].copy_from_slice(b"0000000000000000");
    pvd[881] = 1;

    let term = &mut img[17 * SECTOR..18 * SECTOR];
    term[0] = 255;
    term[1..6].copy_from_slice(b"CD001");
    term[6] = 1;

    // path tables (root only): L (little-endian) at 18, M (big-endian) at 19
    for (sector, be) in [(18usize, false), (19, true)] {
        let t = &mut img[sector * SECTOR..sector * SECTOR + 10];
        t[0] = 1;
        let loc = ROOT_SECTOR as u32;
        t[2..6].copy_from_slice(&if be {
            loc.to_be_bytes()
        } else {
            loc.to_le_bytes()
        });
        t[6..8].copy_from_slice(&if be {
            1u16.to_be_bytes()
        } else {
            1u16.to_le_bytes()
        });
    }

    let root = &mut img[ROOT_SECTOR * SECTOR..(ROOT_SECTOR + 1) * SECTOR];
    let mut at = dir_record(
        &mut root[0..],
        ROOT_SECTOR as u32,
        SECTOR as u32,
        true,
        &[0],
    );
    at += dir_record(
        &mut root[at..],
        ROOT_SECTOR as u32,
        SECTOR as u32,
        true,
        &[1],
    );
    let id = format!("{};1", name.to_ascii_uppercase());
    dir_record(
        &mut root[at..],
        FILE_SECTOR as u32,
        content.len() as u32,
        false,
        id.as_bytes(),
    );

    img[FILE_SECTOR * SECTOR..FILE_SECTOR * SECTOR + content.len()].copy_from_slice(content);
    img
}

/// Writes a directory record at the start of `buf`; returns its length.
fn dir_record(buf: &mut [u8], extent: u32, size: u32, dir: bool, id: &[u8]) -> usize {
    let len = 33 + id.len() + usize::from(id.len() % 2 == 0);
    buf[0] = len as u8;
    both32(&mut buf[2..10], extent);
    both32(&mut buf[10..18], size);
    buf[18..25].copy_from_slice(&DIR_DATE);
    buf[25] = if dir { 2 } else { 0 };
    both16(&mut buf[28..32], 1);
    buf[32] = id.len() as u8;
    buf[33..33 + id.len()].copy_from_slice(id);
    len
}

fn pad(field: &mut [u8], text: &[u8]) {
    field.fill(b' ');
    field[..text.len()].copy_from_slice(text);
}

fn both16(field: &mut [u8], v: u16) {
    field[0..2].copy_from_slice(&v.to_le_bytes());
    field[2..4].copy_from_slice(&v.to_be_bytes());
}

fn both32(field: &mut [u8], v: u32) {
    field[0..4].copy_from_slice(&v.to_le_bytes());
    field[4..8].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_has_descriptors_root_and_file() {
        let img = context_iso("context.sh", b"EC2_USER_DATA=\"eA==\"\n");
        assert_eq!(img.len(), 22 * SECTOR);
        assert_eq!(&img[16 * SECTOR + 1..16 * SECTOR + 6], b"CD001");
        assert_eq!(&img[16 * SECTOR + 40..16 * SECTOR + 52], b"CONTEXT_INFO");
        assert_eq!(img[17 * SECTOR], 255);
        let root = &img[ROOT_SECTOR * SECTOR..];
        let file_rec = &root[34 + 34..];
        assert_eq!(&file_rec[33..45], b"CONTEXT.SH;1");
        assert_eq!(u32::from_le_bytes(file_rec[10..14].try_into().unwrap()), 21);
        assert_eq!(
            &img[FILE_SECTOR * SECTOR..FILE_SECTOR * SECTOR + 4],
            b"EC2_"
        );
    }

    #[test]
    fn large_content_is_not_truncated() {
        let content = vec![b'x'; 5000];
        let img = context_iso("CONTEXT.SH", &content);
        assert_eq!(img.len(), (FILE_SECTOR + 3) * SECTOR);
        assert_eq!(
            &img[FILE_SECTOR * SECTOR..FILE_SECTOR * SECTOR + 5000],
            &content[..]
        );
    }
}
