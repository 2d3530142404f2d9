//! Contextualisation media in the original's shape (shared/spec/vm-lifecycle.md §4.4), built in memory
//! without external tools: the context ISO (`CONTEXT_INFO` volume with `CONTEXT.SH`, the same image the
//! QEMU backend uses, from `hypervisor::context`), or a 28 672-byte FloppyIO image. Too much data is an
//! error, never silently cut.

use crate::hypervisor::context::{context_iso, MAX_CONTEXT_BYTES};
use crate::hypervisor::HvError;

pub use crate::hypervisor::context::context_sh;

/// FloppyIO: image size, host→guest area size, host control byte offset.
pub const FLOPPY_SIZE: usize = 28_672;
pub const FLOPPY_DATA_MAX: usize = 14_334;
const FLOPPY_HOST_CONTROL: usize = 28_670;

/// An ISO 9660 image (volume `CONTEXT_INFO`, one file `CONTEXT.SH;1`) with `user_data`.
pub fn build_context_iso(user_data: &str) -> Result<Vec<u8>, HvError> {
    if user_data.len() > MAX_CONTEXT_BYTES {
        return Err(HvError::InvalidSpec(format!(
            "contextualisation data is {} bytes; at most {MAX_CONTEXT_BYTES} fit on the context ISO",
            user_data.len()
        )));
    }
    Ok(context_iso("CONTEXT.SH", context_sh(user_data).as_bytes()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_holds_context_sh_in_the_original_shape() {
        let img = build_context_iso("#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(img.len() % 2048, 0);
        assert_eq!(&img[0x8001..0x8006], b"CD001");
        assert_eq!(&img[0x8028..0x8034], b"CONTEXT_INFO");
        let data = &img[21 * 2048..];
        let expect = context_sh("#!/bin/sh\necho hi\n");
        assert_eq!(&data[..expect.len()], expect.as_bytes());
        assert!(expect.starts_with("EC2_USER_DATA=\"IyEvYmluL3NoCmVjaG8gaGkK\"\n"));
    }

    #[test]
    fn too_much_data_is_refused_not_truncated() {
        let big = "x".repeat(MAX_CONTEXT_BYTES + 1);
        assert!(matches!(
            build_context_iso(&big),
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
