//! The demo site's files: its development key pair and keystore in `<data dir>/demo/` (made on first
//! run, reused after), and the guest image it serves (loaded once, bounded, with its SHA-256).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::trust::tools::{self, NewKey};
use crate::trust::SigningKey;

use super::DemoError;

/// The largest image the demo site serves (it keeps the image in memory).
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// Where the demo keeps its key pair and keystore.
#[derive(Debug, Clone)]
pub struct DemoFiles {
    /// `<data dir>/demo`
    pub dir: PathBuf,
    /// The private key (PKCS#8 PEM, mode 0600).
    pub private_key: PathBuf,
    /// The public key (one-line base64 SPKI).
    pub public_key: PathBuf,
    /// `host=<public key>`: pass it to the daemon with `--keystore`.
    pub keystore: PathBuf,
}

impl DemoFiles {
    /// Makes `<data_dir>/demo` (mode 0700), a development key pair there unless one exists, and
    /// (re)writes `keystore.txt` trusting that key for `host`. Returns the files and the key.
    pub fn prepare(data_dir: &Path, host: &str) -> Result<(Self, SigningKey), DemoError> {
        let dir = data_dir.join("demo");
        std::fs::create_dir_all(&dir)
            .map_err(|e| DemoError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| DemoError::Setup(format!("cannot restrict {}: {e}", dir.display())))?;
        }
        let prefix = dir.join("site");
        let (private_key, public_key) = tools::key_paths(&prefix);
        match (private_key.exists(), public_key.exists()) {
            (false, false) => {
                tools::keygen(NewKey::Ed25519, &prefix)?;
            }
            (true, true) => {}
            _ => {
                return Err(DemoError::Setup(format!(
                    "{} holds only half a key pair; delete {} and {} to make a new one",
                    dir.display(),
                    private_key.display(),
                    public_key.display()
                )))
            }
        }
        let key = tools::load_signing_key(&private_key)?;
        let public = tools::load_public_key(&public_key)?;
        let derived = key
            .public_key()
            .map_err(|e| DemoError::Setup(format!("{}: {e}", private_key.display())))?;
        if derived != public {
            return Err(DemoError::Setup(format!(
                "{} does not belong to {}; delete both to make a new pair",
                public_key.display(),
                private_key.display()
            )));
        }
        let keystore = dir.join("keystore.txt");
        let text = format!(
            "# The CernVM WebAPI demo site's development key (made by `cvmwebapi demo-site`).\n\
             # Trust it only on this computer: cernvm-webapi --keystore {}\n\
             {host}={}\n",
            keystore.display(),
            public.to_base64()
        );
        crate::store::write_atomic(&keystore, text.as_bytes())
            .map_err(|e| DemoError::Setup(format!("{e:#}")))?;
        Ok((
            Self {
                dir,
                private_key,
                public_key,
                keystore,
            },
            key,
        ))
    }
}

/// The image the demo VMCP points at.
pub struct GuestImage {
    pub bytes: bytes::Bytes,
    pub sha256_hex: String,
}

impl GuestImage {
    /// Reads `path` (at most [`MAX_IMAGE_BYTES`]) and hashes it.
    pub fn load(path: &Path) -> Result<Self, DemoError> {
        let err = |e: std::io::Error| DemoError::Image(format!("{}: {e}", path.display()));
        let file = std::fs::File::open(path).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if !meta.is_file() {
            return Err(DemoError::Image(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        if meta.len() == 0 || meta.len() > MAX_IMAGE_BYTES {
            return Err(DemoError::Image(format!(
                "{} has {} bytes; the demo serves images of 1 byte to {MAX_IMAGE_BYTES} bytes",
                path.display(),
                meta.len()
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_IMAGE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(err)?;
        if bytes.len() as u64 > MAX_IMAGE_BYTES {
            return Err(DemoError::Image(format!(
                "{} grew beyond {MAX_IMAGE_BYTES} bytes while being read",
                path.display()
            )));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        Ok(Self {
            sha256_hex: hex::encode(digest.as_ref()),
            bytes: bytes.into(),
        })
    }
}

/// The test guest of a source checkout: runs `tests/guest/build.sh tests/.cache/guest` from the
/// current directory (cached: a no-op once built) and returns the ISO path it prints last.
pub fn find_test_guest() -> Result<PathBuf, DemoError> {
    let script = Path::new("tests/guest/build.sh");
    if !script.is_file() {
        return Err(DemoError::Image(
            "no --image given and tests/guest/build.sh is not here; pass --image PATH, or run \
             from a source checkout so the test guest can be built"
                .into(),
        ));
    }
    eprintln!("cvmwebapi demo-site: building or reusing the test guest (tests/guest/build.sh)…");
    let out = std::process::Command::new("sh")
        .arg(script)
        .arg("tests/.cache/guest")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| DemoError::Image(format!("cannot run {}: {e}", script.display())))?;
    if !out.status.success() {
        return Err(DemoError::Image(format!(
            "{} failed ({}); pass --image PATH instead",
            script.display(),
            out.status
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let iso = stdout
        .lines()
        .last()
        .map(|l| PathBuf::from(l.trim()))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            DemoError::Image(format!(
                "{} did not print the path of an image",
                script.display()
            ))
        })?;
    Ok(iso)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_makes_a_private_key_and_later_runs_reuse_it() {
        let data = tempfile::tempdir().unwrap();
        let (a, _) = DemoFiles::prepare(data.path(), "127.0.0.1").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a.private_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the private key is the user's only");
        }
        let ks1 = std::fs::read_to_string(&a.keystore).unwrap();
        let pubkey = std::fs::read_to_string(&a.public_key).unwrap();
        assert!(
            ks1.contains(&format!("\n127.0.0.1={}", pubkey.trim())),
            "{ks1}"
        );
        let (b, _) = DemoFiles::prepare(data.path(), "127.0.0.1").unwrap();
        assert_eq!(
            std::fs::read_to_string(&b.keystore).unwrap(),
            ks1,
            "same key reused"
        );
    }

    #[test]
    fn half_a_key_pair_is_a_clear_error_and_nothing_is_overwritten() {
        let data = tempfile::tempdir().unwrap();
        let (a, _) = DemoFiles::prepare(data.path(), "127.0.0.1").unwrap();
        std::fs::remove_file(&a.public_key).unwrap();
        let before = std::fs::read(&a.private_key).unwrap();
        let err = DemoFiles::prepare(data.path(), "127.0.0.1")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("half a key pair"), "{err}");
        assert_eq!(std::fs::read(&a.private_key).unwrap(), before);
    }

    #[test]
    fn images_are_bounded_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        std::fs::write(&path, b"abc").unwrap();
        let img = GuestImage::load(&path).unwrap();
        assert_eq!(
            img.sha256_hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(GuestImage::load(&path).is_err(), "empty image refused");
        assert!(GuestImage::load(dir.path()).is_err(), "a folder is refused");
        let missing = GuestImage::load(&dir.path().join("nope"))
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("nope"), "{missing}");
    }
}
