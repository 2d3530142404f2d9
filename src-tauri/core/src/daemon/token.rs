//! The local token for non-browser clients (BOINC's `gui_rpc_auth.cfg` idea): a random secret written
//! at start to `<data dir>/api-token`, readable only by the user. A WebSocket upgrade without an `Origin`
//! header must present it (`?token=` or the `X-CVMWebAPI-Token` header), or it gets 401.

use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

use crate::store::{write_atomic, DataDir};

/// The header a non-browser client may carry the token in.
pub const TOKEN_HEADER: &str = "x-cvmwebapi-token";
/// The query parameter a non-browser client may carry the token in.
pub const TOKEN_QUERY: &str = "token";

/// Where the token lives.
pub fn token_path(data_dir: &DataDir) -> PathBuf {
    data_dir.root().join("api-token")
}

/// Generates a fresh token and writes it (mode 0600 on Unix).
pub fn write_new_token(data_dir: &DataDir) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let token = hex::encode(bytes);
    let path = token_path(data_dir);
    write_atomic(&path, token.as_bytes())?;
    restrict(&path)?;
    Ok(token)
}

#[cfg(unix)]
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| anyhow::anyhow!("cannot restrict {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Compares a presented token with the real one in constant time.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len()
        && expected
            .bytes()
            .zip(presented.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_private_and_matches() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path()).unwrap();
        let t = write_new_token(&data).unwrap();
        assert_eq!(std::fs::read_to_string(token_path(&data)).unwrap(), t);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(token_path(&data))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(token_matches(&t, &t));
        assert!(!token_matches(&t, ""));
        assert!(!token_matches(&t, &t.replace(&t[..1], "z")));
    }
}
