//! Decompression of verified `.gz` images into the cache (write a temp file, fsync, rename).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::error::{is_no_space, MediaError};

/// Decompresses `src` into `dest` through `tmp`; `dest` appears only complete. Returns its size.
pub fn gunzip_atomically(src: &Path, tmp: &Path, dest: &Path) -> Result<u64, MediaError> {
    let result = (|| -> io::Result<u64> {
        let input = File::open(src)?;
        let mut decoder = MultiGzDecoder::new(BufReader::with_capacity(1 << 20, input));
        let mut out = BufWriter::with_capacity(1 << 20, File::create(tmp)?);
        let size = io::copy(&mut decoder, &mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(size)
    })();
    match result {
        Ok(size) => {
            fs::rename(tmp, dest).map_err(|e| MediaError::io(dest, e))?;
            Ok(size)
        }
        Err(e) => {
            let _ = fs::remove_file(tmp);
            if is_no_space(&e) {
                let dir = dest.parent().unwrap_or(Path::new("."));
                Err(MediaError::NoSpace {
                    dir: dir.to_path_buf(),
                    needed: 0,
                    available: super::space::available_bytes(dir).unwrap_or(0),
                })
            } else {
                Err(MediaError::Gunzip {
                    path: src.to_path_buf(),
                    detail: e.to_string(),
                })
            }
        }
    }
}

/// Flushes a folder's entries (the rename) to disk.
pub fn sync_dir(dir: &Path) -> Result<(), MediaError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| MediaError::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    #[test]
    fn decompresses_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("a.gz");
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&[7u8; 100_000]).unwrap();
        fs::write(&gz, enc.finish().unwrap()).unwrap();
        let (tmp, dest) = (dir.path().join("a.tmp"), dir.path().join("a.img"));
        assert_eq!(gunzip_atomically(&gz, &tmp, &dest).unwrap(), 100_000);
        assert_eq!(fs::read(&dest).unwrap(), vec![7u8; 100_000]);
        assert!(!tmp.exists());

        fs::write(&gz, b"not gzip at all").unwrap();
        let dest2 = dir.path().join("b.img");
        let err = gunzip_atomically(&gz, &tmp, &dest2).unwrap_err();
        assert!(matches!(err, MediaError::Gunzip { .. }), "{err}");
        assert!(!tmp.exists() && !dest2.exists());
    }
}
